//! Outputs on object storage (`[storage] url = "s3://bucket/orch"`, or a shared file system,
//! `file:///mnt/shared`): what workers on many machines read each other's outputs from.
//!
//! Every write goes to a key of its own,
//! `<prefix>/<asset key path>[/<partition>]/<run>.<token>.<ext>`, created and never
//! overwritten (`PutMode::Create`), and the materialization its step commits records that key
//! (metadata `orch/location`). A load reads the location from the asset's committed
//! materialization in the run store, so an output is visible only once the step that wrote it
//! has committed: a zombie worker's late write lands under a key no materialization refers to,
//! and [`ObjectIoManager::sweep`] deletes it.
//!
//! The bytes are the default manager's: postcard behind a header with its xxh3 hash (checked on
//! load, and the data version), frames as Arrow IPC or Parquet files. Objects never change, so
//! a frame downloaded once is kept in a local cache (`<home>/cache/objects`) and scanned from
//! there; on a `file://` store, frames are scanned where they lie.
//!
//! An op job's step outputs (`_runs/<run>/<job>/<step>`) belong to one run of one process (op
//! jobs do not run on workers) and keep fixed keys.

mod keys;
mod sweep;
mod transfer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use orch_core::__private::Value;
use orch_core::BoxError;
use orch_core::frame::{FrameFormat, FrameOptions, ParquetCompression};

use super::fs::{decode_output, frames_to_combine, hex, with_header};
use super::{InputContext, IoManager, LoadError, OutputContext, StagedOutput, Stored, Storing};
use crate::storage::Storage;
use transfer::retry_config;

pub use sweep::{SweepOptions, SweepReport};

/// The metadata label under which a materialization records its output's object.
pub const LOCATION: &str = "orch/location";

/// How the names of files being written start (beside their object, on a file system store).
const TMP_PREFIX: &str = ".orch-tmp.";

/// Objects up to this size are uploaded in one request; larger ones in parts of this size.
const PART: usize = 16 << 20;

/// Stores outputs as objects; see the module docs for the keys and the guarantees.
pub struct ObjectIoManager {
    store: Arc<dyn ObjectStore>,
    /// The same store when it is a local file system (and its root), whose frames are
    /// scanned in place.
    local: Option<(Arc<LocalFileSystem>, PathBuf)>,
    /// Whether a file system store has files written since the last flush.
    unsynced: std::sync::atomic::AtomicBool,
    /// The configured URL, without a trailing slash: objects' locations start with it.
    url: String,
    /// Where under the store's root the objects are.
    prefix: ObjectPath,
    /// Frames downloaded, and frames being written before their upload.
    cache: PathBuf,
    /// The run store, whose committed materializations say which object is an asset's.
    committed: Arc<dyn Storage>,
    frames: FrameOptions,
    /// The object store client's own runtime: the I/O manager's methods are synchronous and
    /// may be called from any thread, in or out of another runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ObjectIoManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIoManager")
            .field("url", &self.url)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Drop for ObjectIoManager {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio refuses inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why `[storage] url` cannot be used.
fn bad_url(url: &str, why: impl std::fmt::Display) -> BoxError {
    format!("storage URL `{url}`: {why}").into()
}

impl ObjectIoManager {
    /// The manager for `url`: `s3://bucket/prefix` (credentials, region and endpoint from the
    /// standard `AWS_*` variables: `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...; an `http://`
    /// endpoint is allowed, for a local S3 server) or `file:///absolute/path` (a shared file
    /// system, created if missing). `committed` is the run store whose materializations say
    /// which object is an asset's; `cache` a local directory for downloaded frames.
    pub fn open(url: &str, committed: Arc<dyn Storage>, cache: PathBuf) -> Result<Self, BoxError> {
        let url = url.trim_end_matches('/');
        if let Some(path) = url.strip_prefix("file://") {
            let root = PathBuf::from(path);
            if !root.is_absolute() {
                return Err(bad_url(
                    url,
                    "a file URL needs an absolute path, as in file:///mnt/shared",
                ));
            }
            std::fs::create_dir_all(&root)
                .map_err(|e| bad_url(url, format!("cannot create {}: {e}", root.display())))?;
            // Without automatic cleanup: removing a directory's last object must not race a
            // write creating a file in it.
            let local =
                Arc::new(LocalFileSystem::new_with_prefix(&root).map_err(|e| bad_url(url, e))?);
            let mut manager = Self::new(local.clone(), url, committed, cache)?;
            manager.local = Some((local, root));
            return Ok(manager);
        }
        let Some(rest) = url
            .strip_prefix("s3://")
            .or_else(|| url.strip_prefix("s3a://"))
        else {
            return Err(bad_url(
                url,
                "orch opens s3:// and file:// URLs (another object_store backend plugs in with ObjectIoManager::new)",
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad_url(url, "it names no bucket (s3://bucket/prefix)"));
        }
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry_config());
        let http = [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint]
            .iter()
            .filter_map(|key| builder.get_config_value(key))
            .any(|endpoint| endpoint.starts_with("http://"));
        if http {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(|e| bad_url(url, e))?;
        let mut manager = Self::new(Arc::new(store), url, committed, cache)?;
        manager.prefix = ObjectPath::parse(prefix).map_err(|e| bad_url(url, e))?;
        Ok(manager)
    }

    /// The manager for objects at the root of `store` (any `object_store` backend), named
    /// `url` in locations and messages.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        url: &str,
        committed: Arc<dyn Storage>,
        cache: PathBuf,
    ) -> Result<Self, BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("orch-objects")
            .enable_all()
            .build()
            .map_err(|e| -> BoxError {
                format!("could not start the object store's runtime: {e}").into()
            })?;
        Ok(ObjectIoManager {
            store,
            local: None,
            url: url.trim_end_matches('/').to_owned(),
            prefix: ObjectPath::default(),
            cache,
            committed,
            frames: FrameOptions::default(),
            runtime: Some(runtime),
            unsynced: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// This manager with another file format for frame outputs (default Arrow IPC).
    pub fn frame_format(mut self, format: FrameFormat) -> Self {
        self.frames = self.frames.format(format);
        self
    }

    /// This manager with another Parquet compression for frames written as Parquet.
    pub fn parquet_compression(mut self, compression: ParquetCompression) -> Self {
        self.frames = self.frames.compression(compression);
        self
    }

    /// The URL objects' locations start with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Notes that a file system store has files to sync at the next flush.
    fn mark_written(&self) {
        if self.local.is_some() {
            self.unsynced
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Runs `fut` on the manager's runtime and waits for it, from any thread.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BoxError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the object store's runtime is shut down")?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| "the object store's request ended without an answer".into())
    }
}

impl IoManager for ObjectIoManager {
    fn handle_output(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Stored, BoxError> {
        let codec = ctx.codec.ok_or_else(|| -> BoxError {
            format!(
                "the object storage I/O manager cannot store `{}`: it is not serde-storable",
                ctx.output_type
            )
            .into()
        })?;
        if let Some(frame) = codec.frame {
            let (mut stored, scan) = self.write_frame(ctx, &frame, value)?;
            if let Some(path) = scan {
                stored.replacement = Some((frame.scan)(&path)?);
            }
            return Ok(stored);
        }
        let payload = (codec.encode)(value)?;
        let (bytes, hash) = with_header(&payload);
        let (object, mode) = self.new_object(ctx, "bin");
        self.put(&object, bytes, mode)?;
        Ok(Stored {
            data_version: Some(hex(hash)),
            metadata: vec![(LOCATION.to_owned(), self.location_of(&object).into())],
            ..Stored::default()
        })
    }

    /// As the default manager: large in-memory frames are uploaded in the background while
    /// their consumers start, lazy frames before them.
    fn storing(&self, ctx: &OutputContext<'_>, value: &Value) -> Storing {
        super::fs::storing(ctx, value)
    }

    /// An in-memory frame is uploaded at once to its own new object, which nothing refers to
    /// until its materialization is recorded: publishing it has nothing left to do, and one
    /// dropped unpublished is deleted.
    fn stage_output<'a>(
        &'a self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Option<Result<Box<dyn StagedOutput + 'a>, BoxError>> {
        let frame = ctx.codec?.frame?;
        (frame.in_memory_size)(value)?;
        Some(self.write_frame(ctx, &frame, value).map(|(stored, _)| {
            Box::new(StagedObject {
                manager: self,
                stored: Some(stored),
            }) as Box<dyn StagedOutput + 'a>
        }))
    }

    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        let frame = ctx.codec.and_then(|c| c.frame);
        let object = self.committed_object(ctx.key, ctx.partition, frame.is_some())?;
        if let Some(frame) = frame {
            return self.scan_object(ctx.key, &object, |path| (frame.scan)(path));
        }
        let bytes = self.get(ctx.key, &object)?;
        decode_output(ctx, &bytes, &self.location_of(&object))
    }

    fn load_partitions(
        &self,
        ctx: &InputContext<'_>,
        partitions: &[String],
    ) -> Result<Value, LoadError> {
        let frame = frames_to_combine(ctx)?;
        let mut committed = self
            .committed
            .partition_materializations(&ctx.key.to_string())
            .map_err(|e| LoadError::Failed {
                key: ctx.key.clone(),
                source: format!("could not read its materializations from the run store: {e}")
                    .into(),
            })?;
        let mut paths = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let Some(record) = committed.remove(partition) else {
                return Err(LoadError::Missing {
                    key: ctx.key.clone(),
                    location: format!(
                        "{} (partition {partition} has no committed materialization)",
                        self.location_of(&self.dir_of(ctx.key, Some(partition)))
                    ),
                });
            };
            let object = self.object_of(ctx.key, &record)?;
            // Each footer is checked now, so that a torn cached copy is downloaded again.
            let path = self.local_file(ctx.key, &object, false)?;
            let path = match (frame.scan)(&path) {
                Ok(_) => path,
                Err(_) => self.local_file(ctx.key, &object, true)?,
            };
            paths.push(path);
        }
        (frame.scan_many)(&paths).map_err(|source| LoadError::Corrupt {
            key: ctx.key.clone(),
            location: format!(
                "{} ({} partitions)",
                self.location_of(&self.dir_of(ctx.key, None)),
                paths.len()
            ),
            source,
        })
    }

    /// Uploads are durable once they return; a file system store's new files are synced, as
    /// the default manager's are (one `syncfs` on Linux).
    fn flush(&self) -> Result<(), BoxError> {
        use std::sync::atomic::Ordering;
        let Some((_, root)) = &self.local else {
            return Ok(());
        };
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        super::fs::sync_tree(root).map_err(|e| -> BoxError {
            format!(
                "could not sync the stored outputs under {}: {e}",
                root.display()
            )
            .into()
        })
    }
}

/// A frame uploaded by [`IoManager::stage_output`]: already in its own object.
struct StagedObject<'a> {
    manager: &'a ObjectIoManager,
    stored: Option<Stored>,
}

impl StagedOutput for StagedObject<'_> {
    fn publish(mut self: Box<Self>) -> Result<Stored, BoxError> {
        Ok(self.stored.take().unwrap_or_default())
    }
}

impl Drop for StagedObject<'_> {
    fn drop(&mut self) {
        // Unpublished: its object will never be referenced.
        let Some(stored) = self.stored.take() else {
            return;
        };
        let location = keys::recorded_location(&stored.metadata).map(str::to_owned);
        if let Some(object) = location.and_then(|l| self.manager.object_at(&l)) {
            let store = Arc::clone(&self.manager.store);
            let error = match self
                .manager
                .block(async move { store.delete(&object).await })
            {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!("could not delete an unpublished output: {error} (a sweep will)");
        }
    }
}

#[cfg(test)]
mod tests;
