//! [`AssetContext`]: what an asset function may ask of the run that calls it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::key::AssetKey;

mod values;

pub use values::{LogLevel, LogLine, MetadataValue, RunId};

#[derive(Debug, Default)]
struct Captured {
    logs: Vec<LogLine>,
    metadata: Vec<(String, MetadataValue)>,
}

/// Where dynamic partition keys are kept (the run store), for
/// [`AssetContext::add_dynamic_partitions`]. The runtime implements it.
pub trait DynamicPartitionsStore: Send + Sync {
    /// Adds `keys` (those not there yet, in order) to the dynamic partitions `name`; returns
    /// how many were new.
    fn add_dynamic_partitions(
        &self,
        name: &str,
        keys: &[String],
    ) -> Result<usize, crate::asset::BoxError>;
}

#[derive(Clone)]
struct DynamicStore(Arc<dyn DynamicPartitionsStore>);

impl fmt::Debug for DynamicStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynamicPartitionsStore")
    }
}

#[derive(Debug)]
struct Inner {
    key: AssetKey,
    run: RunScope,
    partition: Option<String>,
    window: Option<crate::partitions::TimeWindow>,
    /// Every partition key this materialization covers (one, or a range's).
    keys: Option<Arc<[String]>>,
    resources: Option<Arc<crate::resources::Resources>>,
    dynamic: Option<DynamicStore>,
    attempt: u32,
    /// The element of a `Dynamic` input this context runs for (a mapped op), shown before
    /// each log line.
    mapping_key: Option<Arc<str>>,
    /// Where a mapped op keeps and finds its elements' outputs (see [`ElementCheckpoints`]).
    checkpoints: Option<Arc<dyn ElementCheckpoints>>,
    captured: Mutex<Captured>,
}

impl Inner {
    /// The same state, with nothing captured yet.
    fn copy(&self) -> Inner {
        Inner {
            key: self.key.clone(),
            run: self.run.clone(),
            partition: self.partition.clone(),
            window: self.window.clone(),
            keys: self.keys.clone(),
            resources: self.resources.clone(),
            dynamic: self.dynamic.clone(),
            attempt: self.attempt,
            mapping_key: self.mapping_key.clone(),
            checkpoints: self.checkpoints.clone(),
            captured: Mutex::default(),
        }
    }
}

/// Where a mapped op (`files.map(process)`) keeps the outputs of the elements that succeeded
/// when others failed, and finds them again when the run is re-executed, so only the failed
/// elements run again. The runtime implements it on the step's I/O manager.
#[doc(hidden)]
pub trait ElementCheckpoints: Send + Sync + fmt::Debug {
    /// Element `key`'s output as a run this one re-executes kept it, if it may be reused
    /// (the step's inputs are the ones that run read).
    fn reuse(&self, key: &str) -> Option<crate::asset::Value>;
    /// Keeps element `key`'s output for a re-execution of this run.
    fn keep(&self, key: &str, value: &crate::asset::Value) -> Result<(), crate::asset::BoxError>;
}

/// What every context of one run shares, made once per run: the run id, the run's
/// cancellation, where log lines go live, and the run's config (op jobs). One
/// reference-counted value, so a context costs one count, not one per part (the counts are
/// shared by the run's threads).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct RunScope(Arc<ScopeParts>);

#[derive(Debug, Clone)]
struct ScopeParts {
    run_id: RunId,
    cancel: Option<Cancellation>,
    live: Option<LiveLog>,
    config: Option<Arc<crate::op::RunConfig>>,
    /// How many steps the run may run at once (its `jobs`): a mapped op runs that many of
    /// its elements at a time.
    parallelism: usize,
    /// What the runtime lends a step that runs work on threads of its own.
    threads: Option<Arc<dyn StepThreads>>,
}

/// What the runtime lends a step that runs work on threads of its own (a mapped op's
/// elements): the run's free job slots, so the run never has more sync work going than its
/// `jobs`, and its async runtime, which those threads enter (an op may use its handle there,
/// as on the blocking pool).
#[doc(hidden)]
pub trait StepThreads: Send + Sync + fmt::Debug {
    /// Takes a free job slot, if there is one.
    fn try_take_slot(&self) -> bool;
    /// Gives back a slot taken with [`StepThreads::try_take_slot`].
    fn give_back_slot(&self);
    /// Runs `f` on this thread inside the run's runtime.
    fn enter(&self, f: &mut dyn FnMut());
}

impl RunScope {
    /// The scope of run `run_id`, cancelled as `cancel` says.
    pub fn new(run_id: RunId, cancel: Option<Cancellation>) -> Self {
        RunScope(Arc::new(ScopeParts {
            run_id,
            cancel,
            live: None,
            config: None,
            parallelism: std::thread::available_parallelism().map_or(1, usize::from),
            threads: None,
        }))
    }

    /// The same, lending steps the run's job slots and runtime (see [`StepThreads`]).
    pub fn with_threads(self, threads: Arc<dyn StepThreads>) -> Self {
        RunScope(Arc::new(ScopeParts {
            threads: Some(threads),
            ..(*self.0).clone()
        }))
    }

    /// The same, running at most `jobs` steps (or elements of a mapped op) at once.
    pub fn with_parallelism(self, jobs: usize) -> Self {
        RunScope(Arc::new(ScopeParts {
            parallelism: jobs.max(1),
            ..(*self.0).clone()
        }))
    }

    /// The same, with every log line also handed to `live` as it is written (the run store
    /// records it at once, so a UI can show it while the asset runs).
    pub fn with_live_log(self, live: Option<LiveLog>) -> Self {
        RunScope(Arc::new(ScopeParts {
            live,
            ..(*self.0).clone()
        }))
    }

    /// The same, with the run's config (what ops' `#[config]` parameters read).
    pub fn with_config(self, config: Option<Arc<crate::op::RunConfig>>) -> Self {
        RunScope(Arc::new(ScopeParts {
            config,
            ..(*self.0).clone()
        }))
    }
}

/// Where a run's log lines go as they are written (see [`RunScope::with_live_log`]).
#[doc(hidden)]
#[derive(Clone)]
pub struct LiveLog(Arc<LiveLogFn>);

/// What a [`LiveLog`] calls with each line.
type LiveLogFn = dyn Fn(&AssetKey, &LogLine) + Send + Sync;

impl LiveLog {
    /// Hands each line to `f`.
    pub fn new(f: impl Fn(&AssetKey, &LogLine) + Send + Sync + 'static) -> Self {
        LiveLog(Arc::new(f))
    }
}

impl fmt::Debug for LiveLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiveLog")
    }
}

impl From<RunId> for RunScope {
    fn from(run_id: RunId) -> Self {
        RunScope::new(run_id, None)
    }
}

/// The run's cancellation as an asset sees it (see [`AssetContext::is_cancelled`]): a cheap
/// check the runtime backs with its cancellation token.
#[derive(Clone)]
pub struct Cancellation(Arc<dyn Fn() -> bool + Send + Sync>);

impl Cancellation {
    /// A cancellation that reads `is_cancelled`.
    pub fn new(is_cancelled: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Cancellation(Arc::new(is_cancelled))
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        (self.0)()
    }
}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cancellation")
            .field(&self.is_cancelled())
            .finish()
    }
}

/// What an asset function may ask of the run: its key, the run id, the partition, a logger
/// whose lines are kept with the asset's events, and a place to attach output metadata.
///
/// Take it as a parameter of type `&AssetContext`, in any position. It is cheap to clone.
#[derive(Clone, Debug)]
pub struct AssetContext {
    inner: Arc<Inner>,
}

impl AssetContext {
    /// The context the executor builds for one attempt at one asset.
    #[doc(hidden)]
    pub fn new(
        key: AssetKey,
        run: impl Into<RunScope>,
        partition: Option<String>,
        attempt: u32,
    ) -> Self {
        AssetContext {
            inner: Arc::new(Inner {
                key,
                run: run.into(),
                keys: partition.as_ref().map(|p| Arc::from([p.clone()])),
                partition,
                window: None,
                resources: None,
                dynamic: None,
                attempt,
                mapping_key: None,
                checkpoints: None,
                captured: Mutex::default(),
            }),
        }
    }

    /// The context for one attempt at partition `partition` of an asset partitioned by
    /// `partitions` (which gives the time window of time-window partitions).
    #[doc(hidden)]
    pub fn for_partition(
        key: AssetKey,
        run: impl Into<RunScope>,
        partitions: &crate::partitions::Partitions,
        partition: &str,
        attempt: u32,
    ) -> Self {
        AssetContext {
            inner: Arc::new(Inner {
                key,
                run: run.into(),
                partition: Some(partition.to_owned()),
                window: partitions.time_window(partition),
                keys: Some(Arc::from([partition.to_owned()])),
                resources: None,
                dynamic: None,
                attempt,
                mapping_key: None,
                checkpoints: None,
                captured: Mutex::default(),
            }),
        }
    }

    /// The context for one attempt at a range of partitions `keys` (consecutive, at least
    /// one) in a single run: [`AssetContext::partition_key_range`] and
    /// [`AssetContext::partition_keys`] give the range, the time window spans it, and
    /// [`AssetContext::partition_key`] is the key only when the range holds one.
    #[doc(hidden)]
    pub fn for_partition_range(
        key: AssetKey,
        run: impl Into<RunScope>,
        partitions: &crate::partitions::Partitions,
        keys: Arc<[String]>,
        attempt: u32,
    ) -> Self {
        let window = match (keys.first(), keys.last()) {
            (Some(first), Some(last)) => partitions
                .time_window(first)
                .zip(partitions.time_window(last))
                .map(|(a, b)| crate::partitions::TimeWindow {
                    start: a.start,
                    end: b.end,
                }),
            _ => None,
        };
        AssetContext {
            inner: Arc::new(Inner {
                key,
                run: run.into(),
                partition: (keys.len() == 1).then(|| keys[0].clone()),
                window,
                keys: Some(keys),
                resources: None,
                dynamic: None,
                attempt,
                mapping_key: None,
                checkpoints: None,
                captured: Mutex::default(),
            }),
        }
    }

    /// A context for calling an asset function directly in a unit test: key `test_asset`, a
    /// fresh run id, no partition. Its logs and metadata can be read back with
    /// [`AssetContext::logs`] and [`AssetContext::output_metadata`].
    pub fn for_test() -> Self {
        Self::new(
            AssetKey::new(["test_asset"]).expect("valid literal key"),
            RunId::new(),
            None,
            1,
        )
    }

    /// Like [`AssetContext::for_test`] with a chosen key and partition.
    pub fn for_test_with(key: AssetKey, partition: Option<&str>) -> Self {
        Self::new(key, RunId::new(), partition.map(str::to_owned), 1)
    }

    /// The key of the asset being materialized.
    pub fn asset_key(&self) -> &AssetKey {
        &self.inner.key
    }

    /// The run this materialization belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.inner.run.0.run_id
    }

    /// The partition being materialized; `None` for unpartitioned assets, and in a run over
    /// a range of several partitions (see [`AssetContext::partition_key_range`]).
    pub fn partition_key(&self) -> Option<&str> {
        self.inner.partition.as_deref()
    }

    /// The first and last partition keys this materialization covers (the same key twice in
    /// a one-partition run); `None` for unpartitioned assets. An asset that can run over a
    /// range (`partition_by = "column"`) filters on it, e.g.
    /// `WHERE date BETWEEN ? AND ?`.
    pub fn partition_key_range(&self) -> Option<crate::partitions::PartitionKeyRange> {
        let keys = self.inner.keys.as_ref()?;
        Some(crate::partitions::PartitionKeyRange {
            start: keys.first()?.clone(),
            end: keys.last()?.clone(),
        })
    }

    /// Every partition key this materialization covers, in order (one in a one-partition
    /// run; empty for unpartitioned assets).
    pub fn partition_keys(&self) -> &[String] {
        self.inner.keys.as_deref().unwrap_or(&[])
    }

    /// The context's own state, to change: in place when nothing else holds it, else a copy
    /// (with nothing captured yet), so a `with_*` call never silently does nothing.
    fn inner_mut(&mut self) -> &mut Inner {
        if Arc::get_mut(&mut self.inner).is_none() {
            self.inner = Arc::new(self.inner.copy());
        }
        Arc::get_mut(&mut self.inner).expect("just made unique")
    }

    /// Gives the context these resources, for `ctx.resource::<T>()` (the executor does this;
    /// in a test, [`TestContext`](crate::TestContext) is simpler). On a context that is shared (cloned), the
    /// result is a new context with them, whose captured logs start empty.
    pub fn with_resources(mut self, resources: Arc<crate::resources::Resources>) -> Self {
        self.inner_mut().resources = Some(resources);
        self
    }

    /// The run's config (op jobs; `None` for asset runs and test contexts without one).
    #[doc(hidden)]
    pub fn run_config(&self) -> Option<&crate::op::RunConfig> {
        self.inner.run.0.config.as_deref()
    }

    /// Whether the run was asked to stop ([`RunHandle::cancel`](../orch/struct.RunHandle.html),
    /// or Ctrl-C on the command line). A long sync asset checks it between chunks of work and
    /// returns early (an error, or what it has); an async asset is also dropped at its next
    /// `.await`. Always `false` in a test context.
    pub fn is_cancelled(&self) -> bool {
        self.inner
            .run
            .0
            .cancel
            .as_ref()
            .is_some_and(Cancellation::is_cancelled)
    }

    /// Gives the context the run store's dynamic partitions (the executor does this for
    /// recorded runs).
    #[doc(hidden)]
    pub fn with_dynamic_partitions(mut self, store: Arc<dyn DynamicPartitionsStore>) -> Self {
        self.inner_mut().dynamic = Some(DynamicStore(store));
        self
    }

    /// Adds keys to the dynamic partitions `name` (e.g. the customers an asset discovered),
    /// so later runs and backfills of assets partitioned by `dynamic(name)` see them. Keys
    /// already there are skipped; returns how many were new. They are stored at once, whether
    /// or not this asset then succeeds, as `partitions ASSET --add KEY` would.
    pub fn add_dynamic_partitions<I, S>(
        &self,
        name: &str,
        keys: I,
    ) -> Result<usize, crate::asset::BoxError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        for key in &keys {
            crate::partitions::check_dynamic_key(key)?;
        }
        let Some(store) = &self.inner.dynamic else {
            return Err(format!(
                "asset `{}` adds keys to the dynamic partitions \"{name}\", but this run has no run store to keep them in; record the run (the command line always does)",
                self.inner.key
            )
            .into());
        };
        store.0.add_dynamic_partitions(name, &keys)
    }

    /// The configured resource of type `T` (what a `#[resource]` parameter receives).
    pub fn resource<T: Send + Sync + 'static>(
        &self,
    ) -> Result<&T, crate::resources::MissingResource> {
        self.inner
            .resources
            .as_ref()
            .and_then(|r| r.get::<T>())
            .ok_or_else(|| crate::resources::MissingResource {
                resource: crate::resources::short_type_name(std::any::type_name::<T>()),
            })
    }

    /// The time window of the partition being materialized, for time-window partitions
    /// (`[2024-01-05T00:00:00+00:00[UTC], 2024-01-06T00:00:00+00:00[UTC])`), spanning the
    /// whole range in a run over several; `None` otherwise.
    /// Filter on it rather than on the key's text: it carries the time zone.
    pub fn partition_time_window(&self) -> Option<&crate::partitions::TimeWindow> {
        self.inner.window.as_ref()
    }

    /// Which attempt this is, from 1 (retries count up).
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The asset's logger. Lines are kept with the asset's events and also go to `tracing`.
    pub fn log(&self) -> AssetLogger<'_> {
        AssetLogger { ctx: self }
    }

    /// Attaches a metadata entry to this materialization (a later entry with the same label
    /// replaces the earlier one).
    pub fn add_output_metadata(&self, label: impl Into<String>, value: impl Into<MetadataValue>) {
        let label = label.into();
        let value = value.into();
        let mut captured = self.captured();
        match captured.metadata.iter_mut().find(|(l, _)| *l == label) {
            Some(slot) => slot.1 = value,
            None => captured.metadata.push((label, value)),
        }
    }

    /// The metadata attached so far.
    pub fn output_metadata(&self) -> Vec<(String, MetadataValue)> {
        self.captured().metadata.clone()
    }

    /// The log lines captured so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.captured().logs.clone()
    }

    /// Records a log line against this asset without emitting it to `tracing` (the runtime's
    /// tracing layer uses this for `tracing::info!` calls made inside an asset).
    #[doc(hidden)]
    pub fn capture_log(&self, level: LogLevel, message: String) {
        self.push_line(level, self.element_line(message));
    }

    /// `message` marked with the element this context runs for, if any (`[a_csv] ..`).
    fn element_line(&self, message: String) -> String {
        match &self.inner.mapping_key {
            Some(element) => format!("[{element}] {message}"),
            None => message,
        }
    }

    /// Keeps a line (and hands it to the live log).
    fn push_line(&self, level: LogLevel, message: String) {
        let line = LogLine {
            time: SystemTime::now(),
            level,
            message,
        };
        if let Some(live) = &self.inner.run.0.live {
            (live.0)(&self.inner.key, &line);
        }
        self.captured().logs.push(line);
    }

    /// The context of one attempt at element `mapping_key` of a mapped op: the step's, with
    /// its own attempt number and captured lines (each shown with the element's key).
    #[doc(hidden)]
    pub fn for_element(&self, mapping_key: Arc<str>, attempt: u32) -> AssetContext {
        AssetContext {
            inner: Arc::new(Inner {
                attempt,
                mapping_key: Some(mapping_key),
                checkpoints: None,
                ..self.inner.copy()
            }),
        }
    }

    /// Gives a mapped op's step its element checkpoints (the executor does this).
    #[doc(hidden)]
    pub fn with_checkpoints(mut self, checkpoints: Arc<dyn ElementCheckpoints>) -> Self {
        self.inner_mut().checkpoints = Some(checkpoints);
        self
    }

    /// The step's element checkpoints, in a recorded run of a mapped op.
    #[doc(hidden)]
    pub fn checkpoints(&self) -> Option<&dyn ElementCheckpoints> {
        self.inner.checkpoints.as_deref()
    }

    /// The element of a `Dynamic` input this context runs for, in a mapped op.
    pub fn mapping_key(&self) -> Option<&str> {
        self.inner.mapping_key.as_deref()
    }

    /// How many steps the run may run at once.
    #[doc(hidden)]
    pub fn parallelism(&self) -> usize {
        self.inner.run.0.parallelism
    }

    /// The run's job slots and runtime, lent to threads a step starts (the executor's).
    #[doc(hidden)]
    pub fn step_threads(&self) -> Option<&dyn StepThreads> {
        self.inner.run.0.threads.as_deref()
    }

    /// Keeps lines and metadata captured elsewhere (an element's context) as this context's,
    /// without handing the lines on again (they went live when written).
    #[doc(hidden)]
    pub fn absorb(&self, logs: Vec<LogLine>, metadata: Vec<(String, MetadataValue)>) {
        let mut captured = self.captured();
        captured.logs.extend(logs);
        for (label, value) in metadata {
            match captured.metadata.iter_mut().find(|(l, _)| *l == label) {
                Some(slot) => slot.1 = value,
                None => captured.metadata.push((label, value)),
            }
        }
    }

    /// Moves the captured logs and metadata out (the executor calls this when the attempt ends).
    #[doc(hidden)]
    pub fn take_captured(&self) -> (Vec<LogLine>, Vec<(String, MetadataValue)>) {
        let mut captured = self.captured();
        (
            std::mem::take(&mut captured.logs),
            std::mem::take(&mut captured.metadata),
        )
    }

    fn captured(&self) -> MutexGuard<'_, Captured> {
        // A panic while holding the lock (in an asset) must not lose the lines already written.
        self.inner
            .captured
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `tracing` target of lines written through [`AssetContext::log`].
pub const LOG_TARGET: &str = "orch::asset::log";

/// The logger returned by [`AssetContext::log`].
#[derive(Clone, Copy, Debug)]
pub struct AssetLogger<'a> {
    ctx: &'a AssetContext,
}

impl AssetLogger<'_> {
    /// Logs at `level`.
    pub fn log(&self, level: LogLevel, message: impl fmt::Display) {
        // Marked with the element in a mapped op, on the console as in the run's log.
        let message = self.ctx.element_line(message.to_string());
        let key = self.ctx.asset_key();
        // The target tells the runtime's capture layer that this line is already captured.
        match level {
            LogLevel::Debug => {
                tracing::debug!(target: LOG_TARGET, asset = %key, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: LOG_TARGET, asset = %key, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: LOG_TARGET, asset = %key, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: LOG_TARGET, asset = %key, "{message}")
            }
        }
        self.ctx.push_line(level, message);
    }
    /// Logs at debug level.
    pub fn debug(&self, message: impl fmt::Display) {
        self.log(LogLevel::Debug, message)
    }
    /// Logs at info level.
    pub fn info(&self, message: impl fmt::Display) {
        self.log(LogLevel::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(&self, message: impl fmt::Display) {
        self.log(LogLevel::Warn, message)
    }
    /// Logs at error level.
    pub fn error(&self, message: impl fmt::Display) {
        self.log(LogLevel::Error, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_logs_and_metadata() {
        let ctx = AssetContext::for_test();
        ctx.log().info("hello");
        ctx.log().warn(format_args!("rows: {}", 3));
        ctx.add_output_metadata("rows", 3usize);
        ctx.add_output_metadata("rows", 4usize);
        ctx.add_output_metadata("path", "/tmp/x");
        let logs = ctx.logs();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[1].level, LogLevel::Warn);
        assert_eq!(logs[1].message, "rows: 3");
        assert_eq!(
            ctx.output_metadata(),
            vec![
                ("rows".to_owned(), MetadataValue::Int(4)),
                ("path".to_owned(), MetadataValue::Text("/tmp/x".into()))
            ]
        );
        let (logs, meta) = ctx.take_captured();
        assert_eq!((logs.len(), meta.len()), (2, 2));
        assert!(ctx.logs().is_empty());
    }

    #[test]
    fn run_ids_are_unique() {
        let a = RunId::new();
        let b = RunId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(a.short().len(), 8);
    }
}
