//! I/O managers: where outputs live between runs.
//!
//! Each asset's output is handed to one [`IoManager`] after the asset succeeds, and loaded back
//! from it when a later run needs the value without recomputing it (`materialize --select b`
//! with `a` unselected, `--stale`). The default is [`FsIoManager`], which stores each output as
//! a file under the state directory; `#[asset(io_manager = "memory")]` keeps it in this process
//! only; a custom manager (a database table, object storage) is registered by name with
//! [`crate::App::io_manager`] and chosen with `#[asset(io_manager = "name")]`. With
//! `[storage] url` set, the default is [`ObjectIoManager`] instead: outputs on S3 or a shared
//! file system, what workers on many machines share.

mod fs;
mod memory;
mod object;
pub(crate) mod partitioned;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::events::StoredPartition;
pub use orch_core::__private::{Codec, Value};
pub use orch_core::BoxError;
use orch_core::{AssetDef, AssetKey, RunId};

pub use fs::FsIoManager;
pub use memory::MemoryIoManager;
pub use object::{LOCATION, ObjectIoManager, SweepOptions, SweepReport};
/// The `object_store` crate, to hand [`ObjectIoManager::new`] a backend of your own.
pub use object_store;
pub use orch_core::frame::{FrameFormat, FrameOptions, ParquetCompression};

/// What an I/O manager knows about the output it stores.
#[derive(Debug)]
pub struct OutputContext<'a> {
    /// The asset.
    pub key: &'a AssetKey,
    /// The run producing it.
    pub run_id: &'a RunId,
    /// The partition, for partitioned assets.
    pub partition: Option<&'a str>,
    /// The output type as written, e.g. `Vec<User>`.
    pub output_type: &'static str,
    /// How the output becomes bytes, when its type is serde-storable.
    pub codec: Option<Codec>,
}

/// What an I/O manager knows about the value it loads.
#[derive(Debug)]
pub struct InputContext<'a> {
    /// The asset whose output is loaded.
    pub key: &'a AssetKey,
    /// The partition, for partitioned assets.
    pub partition: Option<&'a str>,
    /// The output type as written.
    pub output_type: &'static str,
    /// How bytes become the output, when its type is serde-storable.
    pub codec: Option<Codec>,
}

/// Why a stored output could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Nothing is stored for the asset.
    #[error("asset `{key}` has never been materialized (nothing at {location})")]
    Missing {
        /// The asset.
        key: AssetKey,
        /// Where the manager looked.
        location: String,
    },
    /// Something is stored but it cannot be read back.
    #[error(
        "the stored output of asset `{key}` at {location} is unreadable ({source}); materialize `{key}` again to repair it"
    )]
    Corrupt {
        /// The asset.
        key: AssetKey,
        /// The file or place.
        location: String,
        /// What is wrong.
        #[source]
        source: BoxError,
    },
    /// The service that holds it did not answer (object storage down): worth trying again.
    #[error(
        "could not load the output of asset `{key}`: its storage did not answer ({source}); try again once it is back"
    )]
    Unavailable {
        /// The asset.
        key: AssetKey,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// The manager failed for another reason.
    #[error("could not load the output of asset `{key}`: {source}")]
    Failed {
        /// The asset.
        key: AssetKey,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
}

/// An I/O manager's error when the service that stores outputs did not answer (a network
/// error, a timeout, a server error, after the client's own retries), as opposed to an error
/// that would happen again (a value that cannot be encoded, a refused request). On a worker,
/// a step that fails to store its output with this error is given up to another delivery
/// instead of failed (unless it is the last).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub BoxError);

impl Unavailable {
    /// Whether `error`, or an error it was caused by, is [`Unavailable`].
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(error);
        while let Some(e) = next {
            if e.is::<Unavailable>() {
                return true;
            }
            next = e.source();
        }
        false
    }
}

/// What storing an output produced.
#[derive(Default)]
#[non_exhaustive]
pub struct Stored {
    /// The output's data version (a content hash), or `None` if the manager cannot tell.
    pub data_version: Option<String>,
    /// Metadata to record with the materialization (row counts, schemas, previews), after
    /// the asset's own.
    pub metadata: Vec<(String, orch_core::MetadataValue)>,
    /// What the run's consumers receive instead of the value itself (a scan of the written
    /// file for a `LazyFrame`, whose plan would otherwise run again in every consumer).
    pub replacement: Option<Value>,
    /// In a run over a range of partitions: what storing each partition produced (each is
    /// recorded with its own data version and metadata).
    pub partitions: Vec<StoredPartition>,
}

impl Stored {
    /// Stored, with this data version.
    pub fn version(data_version: Option<String>) -> Self {
        Stored {
            data_version,
            ..Stored::default()
        }
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("data_version", &self.data_version)
            .field("metadata", &self.metadata)
            .field("replacement", &self.replacement.is_some())
            .field("partitions", &self.partitions)
            .finish()
    }
}

/// When an output is stored, relative to its consumers starting (see [`IoManager::storing`]).
///
/// Whatever the timing, an asset's materialization is recorded only once its output is
/// stored, after those of its upstreams; an output is never stored after an upstream whose
/// own output could not be (the asset fails instead, and the stored version stays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storing {
    /// Stored before any consumer receives the value: the default, and required when
    /// `handle_output` returns a [`Stored::replacement`]. If an upstream's output is still
    /// being written in the background, the asset's worker waits for that first.
    Inline,
    /// Cheap to store: stored at once like `Inline` unless an upstream's output is still
    /// being written in the background; then queued behind that write while the consumers
    /// already start, instead of holding a worker.
    Deferrable,
    /// Worth writing in the background (a large frame): the consumers start from the value in
    /// memory while it is written (write-behind); with [`IoManager::stage_output`], even while
    /// an upstream's output is still being written (it is published after). `bytes` is the
    /// memory the value holds until it is written, counted against the run's budget
    /// (`[io] write_behind`, `write_behind_memory`); over the budget, it is stored `Inline`.
    Background {
        /// The value's size in memory.
        bytes: usize,
    },
}

/// How much a run may write in the background while the consumers of what it writes already
/// run ([`Storing::Background`]): `[io] write_behind` and `write_behind_memory` in `orch.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBehind {
    /// Background writes at once; 0 stores every output before its consumers start.
    pub writes: usize,
    /// The memory the values being written may hold together, in bytes.
    pub memory: usize,
}

impl WriteBehind {
    /// Nothing is written in the background.
    pub const OFF: WriteBehind = WriteBehind {
        writes: 0,
        memory: 0,
    };

    /// At most `writes` background writes holding at most `memory` bytes.
    pub fn new(writes: usize, memory: usize) -> WriteBehind {
        WriteBehind { writes, memory }
    }
}

impl Default for WriteBehind {
    /// Two writes, 2 GiB.
    fn default() -> Self {
        WriteBehind {
            writes: 2,
            memory: 2 << 30,
        }
    }
}

/// An output written aside by [`IoManager::stage_output`] but not yet the stored one.
/// Dropping it unpublished discards it.
pub trait StagedOutput {
    /// Puts it in place (an atomic rename, say): from now on it is the stored output.
    fn publish(self: Box<Self>) -> Result<Stored, BoxError>;
}

/// Stores outputs and loads them back.
///
/// `handle_output` runs on the blocking pool after the asset succeeds (before its consumers
/// start, or beside them: see [`IoManager::storing`]); a failure there fails the asset.
pub trait IoManager: Send + Sync + 'static {
    /// Stores `value` (of the asset's output type).
    fn handle_output(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Stored, BoxError>;
    /// When `value` may be stored. The default, [`Storing::Inline`], stores it before its
    /// consumers start; a manager that never returns a replacement can let them start first.
    /// A [`Stored::replacement`] returned for a value stored any other way is ignored.
    fn storing(&self, ctx: &OutputContext<'_>, value: &Value) -> Storing {
        let _ = (ctx, value);
        Storing::Inline
    }
    /// Writes `value` aside without making it the stored output yet, so that a background
    /// write can begin while an upstream's output is still being written: orch publishes it
    /// once the upstream's is stored, or drops it (discarding it) if that failed. `None`, the
    /// default: this manager stores in one step, and a background store begins only after its
    /// upstreams' have ended.
    fn stage_output<'a>(
        &'a self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Option<Result<Box<dyn StagedOutput + 'a>, BoxError>> {
        let _ = (ctx, value);
        None
    }
    /// Loads the stored output.
    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError>;
    /// Loads every listed partition of a partitioned asset as one value (frames: the
    /// partitions concatenated in order), for an unpartitioned consumer. The default refuses.
    fn load_partitions(
        &self,
        ctx: &InputContext<'_>,
        partitions: &[String],
    ) -> Result<Value, LoadError> {
        let _ = partitions;
        Err(LoadError::Failed {
            key: ctx.key.clone(),
            source: "this I/O manager cannot load several partitions at once".into(),
        })
    }
    /// Makes everything stored so far durable. Called once at the end of each run, before the
    /// run is recorded as ended, so managers can batch expensive syncs.
    fn flush(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The managers of a program: the two built-ins and any registered by name.
#[derive(Clone)]
pub struct IoManagers {
    /// The default, `"fs"`: files under the state directory (in memory for an ephemeral
    /// instance).
    fs: Arc<dyn IoManager>,
    memory: Arc<MemoryIoManager>,
    custom: HashMap<String, Arc<dyn IoManager>>,
    /// The default manager when outputs are on object storage (`[storage] url`).
    objects: Option<Arc<ObjectIoManager>>,
}

impl std::fmt::Debug for IoManagers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoManagers")
            .field("custom", &self.custom.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// An asset names an I/O manager that is not registered.
#[derive(Debug, thiserror::Error)]
#[error(
    "asset `{asset}` uses io_manager \"{name}\", which is not registered; register it with `orch::App::new().io_manager(\"{name}\", ...)` (built in: \"fs\", \"memory\")"
)]
pub struct UnknownIoManager {
    /// The asset.
    pub asset: AssetKey,
    /// The manager it names.
    pub name: String,
}

impl IoManagers {
    /// The built-ins, with files under `state_dir/storage`.
    pub fn new(state_dir: PathBuf) -> Self {
        IoManagers {
            fs: Arc::new(FsIoManager::new(Self::storage_dir(&state_dir))),
            memory: Arc::new(MemoryIoManager::default()),
            custom: HashMap::new(),
            objects: None,
        }
    }

    /// The built-ins with nothing on disk: `"fs"` keeps outputs in memory too (an ephemeral
    /// instance).
    pub fn in_memory() -> Self {
        IoManagers {
            fs: Arc::new(MemoryIoManager::default()),
            memory: Arc::new(MemoryIoManager::default()),
            custom: HashMap::new(),
            objects: None,
        }
    }

    /// Where the built-in `"fs"` manager keeps its files: `state_dir/storage`.
    pub fn storage_dir(state_dir: &std::path::Path) -> PathBuf {
        state_dir.join("storage")
    }

    /// Replaces the built-in `"fs"` manager (to change its frame format, say).
    pub fn set_fs(&mut self, manager: FsIoManager) {
        self.objects = None;
        self.fs = Arc::new(manager);
    }

    /// Makes `manager` the default (`"fs"`): outputs on object storage.
    pub fn set_objects(&mut self, manager: Arc<ObjectIoManager>) {
        self.fs = manager.clone();
        self.objects = Some(manager);
    }

    /// The default manager when it stores outputs on object storage (to sweep it).
    pub fn objects(&self) -> Option<&Arc<ObjectIoManager>> {
        self.objects.as_ref()
    }

    /// Registers a custom manager under `name`.
    pub fn register(&mut self, name: impl Into<String>, manager: Arc<dyn IoManager>) {
        self.custom.insert(name.into(), manager);
    }

    /// Flushes every manager (see [`IoManager::flush`]); returns the first error.
    pub fn flush(&self) -> Result<(), BoxError> {
        self.fs.flush()?;
        self.memory.flush()?;
        for manager in self.custom.values() {
            manager.flush()?;
        }
        Ok(())
    }

    /// The manager of an asset.
    pub fn for_asset(
        &self,
        key: &AssetKey,
        def: &AssetDef,
    ) -> Result<&dyn IoManager, UnknownIoManager> {
        match def.io_manager() {
            None | Some("fs") => Ok(&*self.fs),
            Some("memory") => Ok(&*self.memory),
            Some(name) => self
                .custom
                .get(name)
                .map(|m| &**m)
                .ok_or_else(|| UnknownIoManager {
                    asset: key.clone(),
                    name: name.to_owned(),
                }),
        }
    }
}
