//! Moving bytes: uploads (create-only, in parts when large, aborted on failure), downloads
//! into the local cache, and frames written to a local file first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use orch_core::__private::Value;
use orch_core::frame::FrameCodec;
use orch_core::{AssetKey, BoxError};

use super::keys::is_element;
use super::{LOCATION, ObjectIoManager, PART, TMP_PREFIX};
use crate::io::fs::{hash_file, hex};
use crate::io::{LoadError, OutputContext, Stored};

impl ObjectIoManager {
    /// The error of an upload of `len` bytes to `object`.
    fn upload_failed(
        &self,
        error: object_store::Error,
        object: &ObjectPath,
        len: impl std::fmt::Display,
    ) -> BoxError {
        transient(
            error,
            format!(
                "could not upload {} ({len} bytes)",
                self.location_of(object)
            ),
        )
    }

    /// Uploads `bytes` to `object`.
    pub(super) fn put(
        &self,
        object: &ObjectPath,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<(), BoxError> {
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
        result.map_err(|e| self.upload_failed(e, object, len))?;
        self.mark_written();
        Ok(())
    }

    /// Uploads the file at `file` to `object`: in one request, or in parts when it is large.
    pub(super) fn upload_file(
        &self,
        file: &Path,
        object: &ObjectPath,
        mode: PutMode,
    ) -> Result<(), BoxError> {
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
        result.map_err(|e| self.upload_failed(e, object, len))
    }

    /// Downloads `object` whole.
    pub(super) fn get(&self, key: &AssetKey, object: &ObjectPath) -> Result<Vec<u8>, LoadError> {
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

    pub(super) fn get_error(
        &self,
        key: &AssetKey,
        object: &ObjectPath,
        e: object_store::Error,
    ) -> LoadError {
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
    pub(super) fn gone(&self, key: &AssetKey, object: &ObjectPath) -> LoadError {
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
    pub(super) fn local_file(
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
    pub(super) fn scan_object(
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
    pub(super) fn cached_path(&self, object: &ObjectPath) -> PathBuf {
        let mut path = self.cache.clone();
        for part in object.parts() {
            path.push(part.as_ref());
        }
        path
    }

    /// Writes a frame to a local file, uploads it to a new object, and keeps the file as the
    /// object's cached copy (or, on a file system store, puts it in place without a copy).
    pub(super) fn write_frame(
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
pub(super) fn transient(error: object_store::Error, what: String) -> BoxError {
    use object_store::Error as E;
    match error {
        E::Generic { .. } | E::JoinError { .. } => {
            Box::new(crate::io::Unavailable(format!("{what}: {error}").into()))
        }
        error => format!("{what}: {error}").into(),
    }
}

/// Retries of one request: a few, within half a minute, so that a store that is down fails
/// the step (to be tried again) instead of holding it for minutes.
pub(super) fn retry_config() -> object_store::RetryConfig {
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
