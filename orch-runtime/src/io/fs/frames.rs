//! Frame outputs of the default I/O manager: one Arrow IPC or Parquet file per asset or
//! partition, written aside (in the background or at once), hashed as it is written, renamed
//! into place when published; loaded by a scan of whichever format is stored.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use orch_core::__private::Value;
use orch_core::BoxError;
use orch_core::frame::FrameFormat;

use super::{FsIoManager, hex, spare_of};
use crate::io::{InputContext, LoadError, OutputContext, StagedOutput, Stored};

impl FsIoManager {
    /// A frame goes to `<key>.arrow` (or `.parquet`) through a temporary file renamed into
    /// place (frame files are large: no spare copy is kept). Its data version hashes the
    /// written file.
    pub(super) fn handle_frame(
        &self,
        ctx: &OutputContext<'_>,
        frame: &orch_core::frame::FrameCodec,
        value: &Value,
    ) -> Result<Stored, BoxError> {
        let written = self.write_frame(ctx, frame, value, false)?;
        let lazy = written.lazy;
        let path = written.path.clone();
        let mut stored = Box::new(written).publish()?;
        if lazy {
            stored.replacement = Some((frame.scan)(&path)?);
        }
        Ok(stored)
    }

    /// Writes a frame beside its file (`.<name>.arrow.spare`), hashing it as it goes, and
    /// syncs it if `durable` (a background write takes its sync off the end of the run).
    pub(super) fn write_frame(
        &self,
        ctx: &OutputContext<'_>,
        frame: &orch_core::frame::FrameCodec,
        value: &Value,
        durable: bool,
    ) -> Result<StagedFrame<'_>, BoxError> {
        let path = self.frame_path_of(ctx.key, ctx.partition);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| -> BoxError {
            format!("could not create {}: {e}", dir.display()).into()
        })?;
        let tmp = spare_of(&path);
        let written = match (frame.write)(value, &tmp, &self.frames) {
            Ok(written) => written,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(format!("could not write {}: {e}", path.display()).into());
            }
        };
        // From here on, dropping it removes the file written aside.
        let mut staged = StagedFrame {
            manager: self,
            tmp,
            path,
            hash: 0,
            lazy: written.lazy,
            metadata: Vec::new(),
            published: false,
        };
        staged.hash = match written.hash {
            Some(hash) => hash,
            None => hash_file(&staged.tmp).map_err(|e| -> BoxError {
                format!("could not read {}: {e}", staged.tmp.display()).into()
            })?,
        };
        if durable {
            File::open(&staged.tmp)
                .and_then(|file| file.sync_all())
                .map_err(|e| -> BoxError {
                    format!("could not sync {}: {e}", staged.tmp.display()).into()
                })?;
        }
        staged.metadata = vec![
            ("rows".to_owned(), written.rows.into()),
            ("schema".to_owned(), written.schema.into()),
            ("preview".to_owned(), written.preview.into()),
            ("path".to_owned(), staged.path.display().to_string().into()),
        ];
        Ok(staged)
    }

    pub(super) fn load_frame(
        &self,
        ctx: &InputContext<'_>,
        frame: &orch_core::frame::FrameCodec,
    ) -> Result<Value, LoadError> {
        let Some(path) = self.stored_frame_of(ctx.key, ctx.partition) else {
            return Err(LoadError::Missing {
                key: ctx.key.clone(),
                location: self
                    .frame_path_of(ctx.key, ctx.partition)
                    .display()
                    .to_string(),
            });
        };
        (frame.scan)(&path).map_err(|source| LoadError::Corrupt {
            key: ctx.key.clone(),
            location: path.display().to_string(),
            source,
        })
    }
}

/// The xxh3-128 hash of a file, read in 1 MiB blocks.
pub(in crate::io) fn hash_file(path: &Path) -> std::io::Result<u128> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.digest128());
        }
        hasher.update(&buf[..n]);
    }
}

/// A frame written beside its file: renamed into place by `publish`, removed if dropped
/// unpublished.
pub(super) struct StagedFrame<'a> {
    manager: &'a FsIoManager,
    tmp: PathBuf,
    path: PathBuf,
    hash: u128,
    lazy: bool,
    metadata: Vec<(String, orch_core::MetadataValue)>,
    published: bool,
}

impl StagedOutput for StagedFrame<'_> {
    fn publish(mut self: Box<Self>) -> Result<Stored, BoxError> {
        fs::rename(&self.tmp, &self.path).map_err(|e| -> BoxError {
            format!("could not write {}: {e}", self.path.display()).into()
        })?;
        self.published = true;
        // The same output stored in another format before the setting changed is now stale:
        // removed at the next flush, once this file is durable. Until then it loses to this
        // newer file when loading.
        for format in FrameFormat::ALL {
            if format != self.manager.frames.format {
                let stale = self.path.with_extension(format.extension());
                if stale.exists() {
                    self.manager
                        .stale
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(stale);
                }
            }
        }
        self.manager
            .unsynced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.path.clone());
        Ok(Stored {
            data_version: Some(hex(self.hash)),
            metadata: std::mem::take(&mut self.metadata),
            ..Stored::default()
        })
    }
}

impl Drop for StagedFrame<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
