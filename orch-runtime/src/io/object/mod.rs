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

mod sweep;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use orch_core::__private::Value;
use orch_core::frame::{FrameCodec, FrameFormat, FrameOptions, ParquetCompression};
use orch_core::{AssetKey, BoxError, MetadataValue};

use super::fs::{decode_output, frames_to_combine, hash_file, hex, with_header};
use super::{InputContext, IoManager, LoadError, OutputContext, StagedOutput, Stored, Storing};
use crate::storage::{EventRecord, Storage};

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

    /// Where the outputs of `key` (one partition's, for a partition) go.
    fn dir_of(&self, key: &AssetKey, partition: Option<&str>) -> ObjectPath {
        let mut path = self.prefix.clone();
        for segment in key.path() {
            path = path.join(segment.as_str());
        }
        if let Some(partition) = partition {
            // One segment: `PathPart` percent-encodes what a key may not hold (`/`, ...).
            path = path.join(partition);
        }
        path
    }

    /// A new object for an output of `ctx`, never written before: the run and a random token
    /// (retries, and every delivery of a step to a worker, write their own). An op job's step
    /// output keeps a fixed key.
    fn new_object(&self, ctx: &OutputContext<'_>, extension: &str) -> (ObjectPath, PutMode) {
        if is_element(ctx.key) {
            return (self.fixed_object(ctx.key, extension), PutMode::Overwrite);
        }
        let mut token = [0u8; 4];
        // Without the OS's randomness the clock's nanoseconds are nearly as unlikely to repeat
        // within one run's asset, and `PutMode::Create` refuses a repeat anyway.
        if getrandom::fill(&mut token).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            token = nanos.to_le_bytes();
        }
        let name = format!(
            "{}.{:08x}.{extension}",
            ctx.run_id,
            u32::from_le_bytes(token)
        );
        (
            self.dir_of(ctx.key, ctx.partition).join(name),
            PutMode::Create,
        )
    }

    /// The fixed key of an op job's step output.
    fn fixed_object(&self, key: &AssetKey, extension: &str) -> ObjectPath {
        let mut path = self.prefix.clone();
        let segments = key.path();
        for (i, segment) in segments.iter().enumerate() {
            path = match i + 1 == segments.len() {
                true => path.join(format!("{segment}.{extension}")),
                false => path.join(segment.as_str()),
            };
        }
        path
    }

    /// An object's location as recorded: the configured URL and the key under the prefix.
    fn location_of(&self, object: &ObjectPath) -> String {
        let relative: Vec<String> = match object.prefix_match(&self.prefix) {
            Some(parts) => parts.map(|p| p.as_ref().to_owned()).collect(),
            None => object.parts().map(|p| p.as_ref().to_owned()).collect(),
        };
        format!("{}/{}", self.url, relative.join("/"))
    }

    /// The object a recorded location names; `None` when it is not under this manager's URL.
    fn object_at(&self, location: &str) -> Option<ObjectPath> {
        let relative = location.strip_prefix(&self.url)?.strip_prefix('/')?;
        let full = match self.prefix.as_ref() {
            "" => relative.to_owned(),
            prefix => format!("{prefix}/{relative}"),
        };
        ObjectPath::parse(full).ok()
    }

    /// The object of the committed materialization `record` of `key`.
    fn object_of(&self, key: &AssetKey, record: &EventRecord) -> Result<ObjectPath, LoadError> {
        let location =
            record
                .metadata
                .iter()
                .find_map(|(label, value)| match (label.as_str(), value) {
                    (LOCATION, MetadataValue::Text(text)) => Some(text.as_str()),
                    _ => None,
                });
        let Some(location) = location else {
            return Err(LoadError::Failed {
                key: key.clone(),
                source: format!(
                    "its latest materialization (run {}) recorded no object: it was stored by another I/O manager, before `[storage] url` was set; materialize `{key}` again",
                    record.run_id
                )
                .into(),
            });
        };
        self.object_at(location).ok_or_else(|| LoadError::Failed {
            key: key.clone(),
            source: format!(
                "its latest materialization (run {}) is stored at {location}, which is not under the configured storage URL {}; set `[storage] url` back, or materialize `{key}` again",
                record.run_id, self.url
            )
            .into(),
        })
    }

    /// The object holding the committed output of `key` (of one partition).
    fn committed_object(
        &self,
        key: &AssetKey,
        partition: Option<&str>,
        frame: bool,
    ) -> Result<ObjectPath, LoadError> {
        if is_element(key) {
            return Ok(self.fixed_object(key, if frame { "frame" } else { "bin" }));
        }
        let failed = |e: crate::storage::StorageError| LoadError::Failed {
            key: key.clone(),
            source: format!("could not read its latest materialization from the run store: {e}")
                .into(),
        };
        let record = match (step_output_of(key), partition) {
            // An op job's step output: the step's materialization in its run.
            (Some((run, step)), _) => self
                .committed
                .events(&run)
                .map_err(failed)?
                .into_iter()
                .rev()
                .find(|e| e.kind == crate::storage::EventKind::Materialized && e.is_of(&step)),
            (None, partition) => match partition {
                None => self
                    .committed
                    .materializations(&key.to_string(), 1)
                    .map_err(failed)?
                    .pop(),
                Some(partition) => self
                    .committed
                    .partition_materializations(&key.to_string())
                    .map_err(failed)?
                    .remove(partition),
            },
        };
        let Some(record) = record else {
            return Err(LoadError::Missing {
                key: key.clone(),
                location: format!(
                    "{} (no materialization is committed)",
                    self.location_of(&self.dir_of(key, partition))
                ),
            });
        };
        self.object_of(key, &record)
    }

    /// Uploads `bytes` to `object`.
    fn put(&self, object: &ObjectPath, bytes: Vec<u8>, mode: PutMode) -> Result<(), BoxError> {
        let store = Arc::clone(&self.store);
        let path = object.clone();
        let len = bytes.len();
        let result = self.block(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
        })?;
        result.map_err(|e| {
            transient(
                e,
                format!(
                    "could not upload {} ({len} bytes)",
                    self.location_of(object)
                ),
            )
        })?;
        self.mark_written();
        Ok(())
    }

    /// Uploads the file at `file` to `object`: in one request, or in parts when it is large.
    fn upload_file(&self, file: &Path, object: &ObjectPath, mode: PutMode) -> Result<(), BoxError> {
        let read_failed = |e: std::io::Error| -> BoxError {
            format!("could not read {}: {e}", file.display()).into()
        };
        let len = std::fs::metadata(file).map_err(read_failed)?.len();
        if len as usize <= PART {
            let bytes = std::fs::read(file).map_err(read_failed)?;
            return self.put(object, bytes, mode);
        }
        let store = Arc::clone(&self.store);
        let path = object.clone();
        let source = file.to_owned();
        let result = self.block(async move {
            use std::io::Read;
            let upload = store.put_multipart(&path).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            let mut file = match std::fs::File::open(&source) {
                Ok(file) => file,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(io_error(&source)(e));
                }
            };
            let mut buf = vec![0u8; PART];
            let written = loop {
                if let Err(e) = writer.wait_for_capacity(2).await {
                    break Err(e);
                }
                match file.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => writer.write(&buf[..n]),
                    Err(e) => break Err(io_error(&source)(e)),
                }
            };
            match written {
                // The parts uploaded so far are discarded, not left billed and unlisted.
                Err(e) => {
                    let _ = writer.abort().await;
                    Err(e)
                }
                Ok(()) => writer.finish().await.map(drop),
            }
        })?;
        result.map_err(|e| {
            transient(
                e,
                format!(
                    "could not upload {} ({len} bytes)",
                    self.location_of(object)
                ),
            )
        })
    }

    /// Downloads `object` whole.
    fn get(&self, key: &AssetKey, object: &ObjectPath) -> Result<Vec<u8>, LoadError> {
        let store = Arc::clone(&self.store);
        let path = object.clone();
        let result = self
            .block(async move {
                let got = store.get(&path).await?;
                got.bytes().await
            })
            .map_err(|source| LoadError::Failed {
                key: key.clone(),
                source,
            })?;
        result
            .map(|bytes| bytes.to_vec())
            .map_err(|e| self.get_error(key, object, e))
    }

    fn get_error(&self, key: &AssetKey, object: &ObjectPath, e: object_store::Error) -> LoadError {
        match e {
            object_store::Error::NotFound { .. } => self.gone(key, object),
            e @ (object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }) => {
                LoadError::Unavailable {
                    key: key.clone(),
                    source: format!("could not download {}: {e}", self.location_of(object)).into(),
                }
            }
            e => LoadError::Failed {
                key: key.clone(),
                source: format!("could not download {}: {e}", self.location_of(object)).into(),
            },
        }
    }

    /// The error for a committed object that is not there.
    fn gone(&self, key: &AssetKey, object: &ObjectPath) -> LoadError {
        LoadError::Corrupt {
            key: key.clone(),
            location: self.location_of(object),
            source: "the object its committed materialization names is gone (deleted by hand, or swept by a process whose run store is another one: give each run store a storage URL of its own)".into(),
        }
    }

    /// A local file with the contents of `object` (a frame, to scan): the object itself on a
    /// file system store, else a copy in the cache, downloaded once (objects never change).
    /// `fresh`: download it again even if the cache has a copy (one that did not scan: torn by
    /// a power loss, say).
    fn local_file(
        &self,
        key: &AssetKey,
        object: &ObjectPath,
        fresh: bool,
    ) -> Result<PathBuf, LoadError> {
        if let Some((local, _)) = &self.local {
            let path = local
                .path_to_filesystem(object)
                .map_err(|e| LoadError::Failed {
                    key: key.clone(),
                    source: e.into(),
                })?;
            return match path.exists() {
                true => Ok(path),
                false => Err(self.gone(key, object)),
            };
        }
        let cached = self.cached_path(object);
        if cached.exists() && !fresh {
            return Ok(cached);
        }
        let failed = |what: String| LoadError::Failed {
            key: key.clone(),
            source: what.into(),
        };
        let dir = cached.parent().unwrap_or(&self.cache).to_owned();
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed(format!("could not create {}: {e}", dir.display())))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| failed(format!("could not create a file in {}: {e}", dir.display())))?;
        let store = Arc::clone(&self.store);
        let path = object.clone();
        let target = tmp.path().to_owned();
        let result = self
            .block(async move {
                use std::io::Write;
                let got = store.get(&path).await?;
                let mut stream = got.into_stream();
                let mut out = std::fs::File::create(&target).map_err(io_error(&target))?;
                while let Some(chunk) =
                    std::future::poll_fn(|cx| futures_core::Stream::poll_next(stream.as_mut(), cx))
                        .await
                {
                    out.write_all(&chunk?).map_err(io_error(&target))?;
                }
                Ok(())
            })
            .map_err(|source| LoadError::Failed {
                key: key.clone(),
                source,
            })?;
        result.map_err(|e| self.get_error(key, object, e))?;
        tmp.persist(&cached)
            .map_err(|e| failed(format!("could not keep {}: {e}", cached.display())))?;
        Ok(cached)
    }

    /// `scan` of a local file of `object`; a cached copy that does not scan (torn by a power
    /// loss, say) is downloaded again once.
    fn scan_object(
        &self,
        key: &AssetKey,
        object: &ObjectPath,
        scan: impl Fn(&Path) -> Result<Value, BoxError>,
    ) -> Result<Value, LoadError> {
        let corrupt = |source| LoadError::Corrupt {
            key: key.clone(),
            location: self.location_of(object),
            source,
        };
        let path = self.local_file(key, object, false)?;
        match scan(&path) {
            Ok(value) => Ok(value),
            Err(_) if self.local.is_none() => {
                scan(&self.local_file(key, object, true)?).map_err(corrupt)
            }
            Err(e) => Err(corrupt(e)),
        }
    }

    /// Where the cache keeps a copy of `object`.
    fn cached_path(&self, object: &ObjectPath) -> PathBuf {
        let mut path = self.cache.clone();
        for part in object.parts() {
            path.push(part.as_ref());
        }
        path
    }

    /// Writes a frame to a local file, uploads it to a new object, and keeps the file as the
    /// object's cached copy (or, on a file system store, puts it in place without a copy).
    fn write_frame(
        &self,
        ctx: &OutputContext<'_>,
        frame: &FrameCodec,
        value: &Value,
    ) -> Result<(Stored, Option<PathBuf>), BoxError> {
        let extension = match is_element(ctx.key) {
            true => "frame",
            false => self.frames.format.extension(),
        };
        let (object, mode) = self.new_object(ctx, extension);
        let final_path = match &self.local {
            Some((local, _)) => local.path_to_filesystem(&object)?,
            None => self.cached_path(&object),
        };
        let dir = final_path.parent().unwrap_or(&self.cache).to_owned();
        std::fs::create_dir_all(&dir).map_err(|e| -> BoxError {
            format!("could not create {}: {e}", dir.display()).into()
        })?;
        // Beside its object (a hard link does not cross file systems); the sweep removes one
        // a killed process left.
        let mut builder = tempfile::Builder::new();
        builder.prefix(TMP_PREFIX);
        // Readable by the other users of a shared file system, as a `put` would make it.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let tmp = builder
            .tempfile_in(&dir)
            .map_err(|e| -> BoxError {
                format!("could not create a file in {}: {e}", dir.display()).into()
            })?
            .into_temp_path();
        let written = (frame.write)(value, &tmp, &self.frames).map_err(|e| -> BoxError {
            format!("could not write {}: {e}", tmp.display()).into()
        })?;
        let hash = match written.hash {
            Some(hash) => hash,
            None => hash_file(&tmp).map_err(|e| -> BoxError {
                format!("could not read {}: {e}", tmp.display()).into()
            })?,
        };
        match &self.local {
            // In place: a hard link creates the object only if it does not exist, as
            // `PutMode::Create` does.
            Some(_) if mode == PutMode::Create => {
                std::fs::hard_link(&tmp, &final_path).map_err(|e| -> BoxError {
                    format!("could not create {}: {e}", final_path.display()).into()
                })?;
                self.mark_written();
            }
            Some(_) => {
                tmp.persist(&final_path).map_err(|e| -> BoxError {
                    format!("could not write {}: {e}", final_path.display()).into()
                })?;
                self.mark_written();
            }
            None => {
                self.upload_file(&tmp, &object, mode)?;
                // The upload's source becomes the object's cached copy: not needed, so a
                // failure to keep it costs only a download later.
                if let Err(e) = tmp.persist(&final_path) {
                    tracing::warn!("could not keep {} in the cache: {e}", final_path.display());
                }
            }
        }
        let mut metadata = vec![
            ("rows".to_owned(), written.rows.into()),
            ("schema".to_owned(), written.schema.into()),
            ("preview".to_owned(), written.preview.into()),
        ];
        metadata.push((LOCATION.to_owned(), self.location_of(&object).into()));
        let scan = written.lazy.then_some(final_path);
        Ok((
            Stored {
                data_version: Some(hex(hash)),
                metadata,
                ..Stored::default()
            },
            scan,
        ))
    }
}

/// An object store's error as the I/O manager reports it: one the service may not repeat (a
/// network error, a timeout, a server error, after the client's retries) is
/// [`super::Unavailable`], worth trying again; others (refused, not found) are not.
fn transient(error: object_store::Error, what: String) -> BoxError {
    use object_store::Error as E;
    match error {
        E::Generic { .. } | E::JoinError { .. } => {
            Box::new(super::Unavailable(format!("{what}: {error}").into()))
        }
        error => format!("{what}: {error}").into(),
    }
}

/// An op job's step output (`_runs/<run>/<job>/<step>`, [`crate::jobs::step_output_key`]):
/// its run and the step's key, whose materialization in that run records its object.
fn step_output_of(key: &AssetKey) -> Option<(String, String)> {
    let path = key.path();
    (crate::jobs::is_step_output_key(key) && !is_element(key))
        .then(|| (path[1].clone(), path[2..].join("/")))
}

/// An element a mapped op's step kept (`_runs/<run>/<job>/<step>/elements/<element>`): no
/// materialization records it, so its key is fixed (and overwritten by a later delivery of
/// the step, which computes it from the same inputs).
fn is_element(key: &AssetKey) -> bool {
    let path = key.path();
    crate::jobs::is_step_output_key(key) && path.len() >= 2 && path[path.len() - 2] == "elements"
}

/// Retries of one request: a few, within half a minute, so that a store that is down fails
/// the step (to be tried again) instead of holding it for minutes.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 4,
        retry_timeout: std::time::Duration::from_secs(30),
        ..object_store::RetryConfig::default()
    }
}

/// A local file error as an object store error, naming the file.
fn io_error(path: &Path) -> impl Fn(std::io::Error) -> object_store::Error + '_ {
    move |e| object_store::Error::Generic {
        store: "local file",
        source: format!("{}: {e}", path.display()).into(),
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
        let location =
            stored
                .metadata
                .iter()
                .find_map(|(label, value)| match (label.as_str(), value) {
                    (LOCATION, MetadataValue::Text(text)) => Some(text.clone()),
                    _ => None,
                });
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
