//! [`Instance`]: one value that holds the configuration, the run store, the I/O managers and
//! the resources, opened once and shared by the command line, tests, programs embedding
//! orch and (next) the daemon and the web UI. It submits runs ([`Instance::submit`]) and
//! broadcasts their events to subscribers ([`Instance::subscribe`]).

mod config;
mod config_values;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use orch_core::RunId;
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;

pub use config::{CONFIG_FILE, Config, ConfigError, Executor, LaunchMode, Source, StoreConfig};

use crate::io::{IoManager, IoManagers};
use crate::materialize::{Materialize, MaterializeError};
use crate::run::{RunHandle, RunPlan, RunRequest};
use crate::storage::{EventRecord, RunRecord, RunStatus, SqliteStorage, Storage, StorageError};

/// How many events the live feed holds for a slow subscriber before it loses the oldest (it
/// is told how many with `RecvError::Lagged`, and can read them back from the store).
const FEED_CAPACITY: usize = 16_384;

/// Why an instance could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// The configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The run store could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The object storage of `[storage] url` could not be opened.
    #[error("could not open the output storage: {0}")]
    Outputs(orch_core::BoxError),
}

/// A deployment of orch as one value: configuration, run store, I/O managers, resources and
/// the live feed of events. Cheap to clone (clones share everything).
///
/// ```no_run
/// use orch_runtime::{Instance, RunRequest};
/// let instance = Instance::open(".orch")?;
/// let mut feed = instance.subscribe();
/// let run = instance.submit(RunRequest::select("+report")?);
/// println!("started run {}", run.run_id());
/// let result = run.wait()?;
/// assert!(result.success());
/// # let _ = feed.try_recv();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Instance {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    storage: Arc<dyn Storage>,
    io: Arc<IoManagers>,
    resources: Arc<orch_core::Resources>,
    ephemeral: bool,
    feed: broadcast::Sender<EventRecord>,
    /// Told when this instance queues a run (the daemon in this process, so that it starts it
    /// at once instead of at its next poll); each returns `false` once it no longer listens.
    on_enqueue: std::sync::Mutex<Vec<Box<dyn Fn() -> bool + Send + Sync>>>,
    /// The runtime submitted runs use when the caller is not on one, made on first use.
    runtime: OnceLock<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; letting its threads go does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("home", &self.inner.config.home())
            .field("ephemeral", &self.inner.ephemeral)
            .field("io", &self.inner.io)
            .field("resources", &self.inner.resources)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The instance whose state lives in `home` (the run store `home/orch.db`, outputs under
    /// `home/storage`), with the default configuration otherwise.
    pub fn open(home: impl Into<PathBuf>) -> Result<Instance, InstanceError> {
        Instance::builder().home(home).build()
    }

    /// An instance that writes nothing to disk: the run store is in memory and every output
    /// is kept in memory (as by `io_manager = "memory"`), all gone with the last clone. Like
    /// Dagster's ephemeral instance; what tests use.
    pub fn ephemeral() -> Instance {
        Instance::builder()
            .ephemeral()
            .build()
            .expect("an in-memory SQLite database always opens")
    }

    /// A builder, starting from the default configuration.
    pub fn builder() -> InstanceBuilder {
        InstanceBuilder::default()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The run store.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The I/O managers.
    pub fn io_managers(&self) -> &Arc<IoManagers> {
        &self.inner.io
    }

    /// Deletes the objects no committed materialization refers to, on the object storage of
    /// `[storage] url` (see [`crate::io::ObjectIoManager::sweep`]); `None` when outputs are
    /// files under `home` (each asset's file is replaced in place: nothing to sweep).
    pub fn sweep_outputs(
        &self,
        options: crate::io::SweepOptions,
    ) -> Option<Result<crate::io::SweepReport, orch_core::BoxError>> {
        self.inner
            .io
            .objects()
            .map(|objects| objects.sweep(options))
    }

    /// The resources `#[resource]` parameters receive.
    pub fn resources(&self) -> &Arc<orch_core::Resources> {
        &self.inner.resources
    }

    /// Whether nothing is written to disk.
    pub fn is_ephemeral(&self) -> bool {
        self.inner.ephemeral
    }

    /// A run of `request` in this instance, to configure further (injected values, a sink,
    /// `jobs`) and run in this thread.
    pub fn materialize(&self, request: RunRequest) -> Materialize<'static> {
        Materialize::request(request).instance(self)
    }

    /// What the run `request` asks for would do, without running anything or loading any
    /// value: the assets in order (with why each is stale, for a `--stale` request), and the
    /// inputs it would read from storage, each checked to be there. Every error that would
    /// stop the run from starting (a bad selection or partition, a missing resource, an
    /// unknown I/O manager) is returned here too. What `materialize --dry-run` prints.
    pub fn plan(&self, request: &RunRequest) -> Result<RunPlan, MaterializeError> {
        let graph = crate::run::launch::graph_of(request)?;
        let prepared = crate::run::prepare(graph, request, Some(self), &[], None)?;
        RunPlan::describe(graph, request, &prepared, Some(self))
    }

    /// Starts the run `request` asks for and returns at once with its id. The run goes on in
    /// the background (several may be in flight at once); its events reach every
    /// [`subscriber`](Instance::subscribe) and the store. Reasons it cannot start (a bad
    /// selection, an invalid partition, a missing resource, an asset another run holds) come
    /// from [`RunHandle::wait`].
    pub fn submit(&self, request: RunRequest) -> RunHandle {
        self.start(RunId::new(), request, false)
    }

    /// Records the run `request` asks for as queued, and returns its id at once: a daemon
    /// starts it when the queue's limits allow (`runs` shows it as queued until then).
    pub fn enqueue(&self, request: RunRequest) -> Result<RunId, StorageError> {
        let run_id = RunId::new();
        self.inner
            .storage
            .enqueue_run(&RunRecord::queued(run_id.clone(), &request))?;
        self.notify_enqueued();
        Ok(run_id)
    }

    /// Tells this process's listeners (its daemon) that a run was queued.
    pub(crate) fn notify_enqueued(&self) {
        let mut listeners = self
            .inner
            .on_enqueue
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        listeners.retain(|listener| listener());
    }

    /// Calls `listener` whenever this instance queues a run, until it returns `false`.
    pub(crate) fn on_enqueue(&self, listener: Box<dyn Fn() -> bool + Send + Sync>) {
        self.inner
            .on_enqueue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Starts the queued run `run_id` in this process, as its stored request says: what the
    /// daemon's launchers do. Exactly one caller starts a queued run; another gets
    /// [`StorageError::NotQueued`] (at once, or from [`RunHandle::wait`] if they raced).
    ///
    /// If it cannot start because another run holds one of its assets, or the store failed,
    /// it stays queued, to be started later. If it can never start (its target no longer
    /// resolves, a partition is invalid, a resource is missing), it is recorded as failed with
    /// the reason.
    pub fn launch_queued(&self, run_id: &str) -> Result<RunHandle, MaterializeError> {
        let (id, request) = self.queued_request(run_id)?;
        Ok(self.start(id, request, true))
    }

    /// The id and stored request of the queued run `run_id`: [`StorageError::NotQueued`] if
    /// it is not queued; a run whose stored target no longer parses is recorded as failed.
    pub(crate) fn queued_request(
        &self,
        run_id: &str,
    ) -> Result<(RunId, RunRequest), MaterializeError> {
        let record = self.inner.storage.run(run_id)?;
        if record.status != RunStatus::Queued {
            return Err(StorageError::NotQueued {
                run_id: record.id.to_string(),
                status: record.status.as_str().to_owned(),
            }
            .into());
        }
        match record.request() {
            Ok(request) => Ok((record.id, request)),
            Err(e) => {
                let reason = format!("its stored target no longer parses: {e}");
                self.inner.storage.end_queued_run(
                    record.id.as_str(),
                    RunStatus::Failed,
                    &reason,
                )?;
                Err(e.into())
            }
        }
    }

    /// Starts the run `run_id` of `request` in the background; a `queued` run that cannot
    /// ever start is ended in the store.
    fn start(&self, run_id: RunId, request: RunRequest, queued: bool) -> RunHandle {
        let cancel = CancellationToken::new();
        let run = Materialize::request(request)
            .instance(self)
            .run_id(run_id.clone())
            .keep_outputs(false)
            .cancel_token(cancel.clone());
        let (tx, done) = oneshot::channel();
        let storage = Arc::clone(&self.inner.storage);
        let id = run_id.clone();
        let task = async move {
            let result = run.run_async().await;
            if queued && let Err(e) = &result {
                fail_if_never_startable(&*storage, &id, e);
            }
            let _ = tx.send(result);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(task)),
            Err(_) => drop(self.runtime().spawn(task)),
        }
        RunHandle {
            run_id,
            cancel,
            done,
            _instance: self.clone(),
        }
    }

    /// A live feed of every event of every run this instance makes, from now on: run started
    /// and ended, asset started, retried, materialized, failed, skipped, canceled. Events
    /// arrive as the executor emits them, before the store commits them, so they carry no
    /// sequence number; another process follows the store instead
    /// ([`Storage::events_since`]).
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.inner.feed.subscribe()
    }

    /// The feed's sender, for the run's store sink.
    pub(crate) fn feed(&self) -> broadcast::Sender<EventRecord> {
        self.inner.feed.clone()
    }

    /// Sends an event to the live feed (if anyone listens).
    pub(crate) fn publish(&self, event: EventRecord) {
        if self.inner.feed.receiver_count() > 0 {
            let _ = self.inner.feed.send(event);
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.inner.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(crate::default_jobs())
                .thread_name("orch-run")
                .enable_all()
                .build()
                .expect("the OS can start the run threads")
        })
    }
}

/// Records the queued run `run_id`, which could not start because of `e`, as failed, unless
/// `e` says to try again later (its assets are busy, the store failed) or another launcher
/// started it.
pub(crate) fn fail_if_never_startable(storage: &dyn Storage, run_id: &RunId, e: &MaterializeError) {
    let not_now = crate::daemon::retry_later(e)
        || matches!(e, MaterializeError::Storage(StorageError::NotQueued { .. }));
    if !not_now {
        let reason = format!("the run could not start: {e}");
        let _ = storage.end_queued_run(run_id.as_str(), RunStatus::Failed, &reason);
    }
}

/// Builds an [`Instance`]: configuration, custom I/O managers, resources.
#[derive(Default)]
pub struct InstanceBuilder {
    config: Config,
    ephemeral: bool,
    io_managers: Vec<(String, Arc<dyn IoManager>)>,
    resources: Arc<orch_core::Resources>,
    storage: Option<Arc<dyn Storage>>,
}

impl std::fmt::Debug for InstanceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceBuilder")
            .field("config", &self.config)
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

impl InstanceBuilder {
    /// Starts from `config` (e.g. [`Config::discover`]'s) instead of the defaults.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The state directory.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.config.set_home(home);
        self
    }

    /// Nothing on disk (see [`Instance::ephemeral`]).
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// How long history is kept.
    pub fn retention(mut self, retention: crate::storage::Retention) -> Self {
        self.config.set_retention(retention);
        self
    }

    /// How many sync assets a run runs at once by default.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.config.set_jobs(jobs);
        self
    }

    /// The file format the default I/O manager writes frames in.
    pub fn frame_format(mut self, format: crate::io::FrameFormat) -> Self {
        self.config.set_frame_format(format);
        self
    }

    /// How the default I/O manager compresses Parquet files.
    pub fn parquet_compression(mut self, compression: crate::io::ParquetCompression) -> Self {
        self.config.set_parquet_compression(compression);
        self
    }

    /// How much a run writes in the background while the consumers of what it writes run
    /// (`[io] write_behind` and `write_behind_memory`; [`crate::io::WriteBehind::OFF`]
    /// stores every output before its consumers start).
    pub fn write_behind(mut self, write_behind: crate::io::WriteBehind) -> Self {
        self.config.set_write_behind(write_behind);
        self
    }

    /// Registers an I/O manager under `name`, for `#[asset(io_manager = "name")]`.
    pub fn io_manager(mut self, name: impl Into<String>, manager: Arc<dyn IoManager>) -> Self {
        self.io_managers.push((name.into(), manager));
        self
    }

    /// Uses these resources (replacing any added before).
    pub fn resources(mut self, resources: Arc<orch_core::Resources>) -> Self {
        self.resources = resources;
        self
    }

    /// Adds `value` as the resource of type `T`.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.resources).insert(value);
        self
    }

    /// Records into this store instead of the one the configuration names.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Opens the store (creating and migrating it as needed) and builds the instance.
    pub fn build(self) -> Result<Instance, InstanceError> {
        let home = self.config.home().to_owned();
        let storage: Arc<dyn Storage> = match (self.storage, self.ephemeral) {
            (Some(storage), _) => storage,
            (None, true) => Arc::new(SqliteStorage::in_memory()?),
            (None, false) => match &self.config.store().url {
                Some(url) => open_server_store(url, self.config.store().schema.as_deref())?,
                None => Arc::new(SqliteStorage::open(&home)?),
            },
        };
        let mut io = if self.ephemeral {
            IoManagers::in_memory()
        } else {
            let mut io = IoManagers::new(home.clone());
            match self.config.storage_url() {
                Some(url) => io.set_objects(Arc::new(
                    crate::io::ObjectIoManager::open(
                        url,
                        Arc::clone(&storage),
                        home.join("cache").join("objects"),
                    )
                    .map_err(InstanceError::Outputs)?
                    .frame_format(self.config.frame_format())
                    .parquet_compression(self.config.parquet_compression()),
                )),
                None => io.set_fs(
                    crate::io::FsIoManager::new(IoManagers::storage_dir(&home))
                        .frame_format(self.config.frame_format())
                        .parquet_compression(self.config.parquet_compression()),
                ),
            }
            io
        };
        for (name, manager) in self.io_managers {
            io.register(name, manager);
        }
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Instance {
            inner: Arc::new(Inner {
                config: self.config,
                storage,
                io: Arc::new(io),
                resources: self.resources,
                ephemeral: self.ephemeral,
                feed,
                on_enqueue: std::sync::Mutex::new(Vec::new()),
                runtime: OnceLock::new(),
            }),
        })
    }
}

/// The PostgreSQL store at `url` (`[store] url`).
#[cfg(feature = "postgres")]
fn open_server_store(url: &str, schema: Option<&str>) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match schema {
        Some(schema) => Arc::new(crate::storage::PgStorage::connect_in_schema(url, schema)?),
        None => Arc::new(crate::storage::PgStorage::connect(url)?),
    })
}

#[cfg(not(feature = "postgres"))]
fn open_server_store(url: &str, _schema: Option<&str>) -> Result<Arc<dyn Storage>, StorageError> {
    Err(StorageError::Database {
        location: crate::storage::redact(url),
        source: "this build of orch has no PostgreSQL support; enable the `postgres` feature of the orch crate".into(),
    })
}
