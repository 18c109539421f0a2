//! The run lock: an advisory file lock held by the process running a run. The OS releases it
//! when the process dies, even by `kill -9`, which is how a dead run is told from a live one.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::StorageError;

fn open(path: &Path, create: bool) -> Result<File, StorageError> {
    if create && let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, e))
}

/// Tries to lock `path`; `Ok(None)` when another process holds it.
fn try_lock(path: &Path, create: bool) -> Result<Option<File>, StorageError> {
    let file = open(path, create)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(StorageError::io(path, e)),
    }
}

/// Whether `file` is the file at `path` now (not one deleted since it was opened).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Held by the process running a run; its absence after the fact means the process died.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    pub(crate) fn path_for(dir: &Path, run_id: &str) -> PathBuf {
        dir.join("runs").join(format!("{run_id}.lock"))
    }

    /// Locks the run's file; it stays locked until this is dropped.
    pub fn acquire(dir: &Path, run_id: &str) -> Result<RunLock, StorageError> {
        let path = Self::path_for(dir, run_id);
        // A holder that lets go deletes the file before closing it: a lock taken on a file it
        // just deleted proves nothing to others (they find no file, and take the run for
        // dead). Lock until the locked file is the one at the path.
        let mut tries = 0;
        let locked = loop {
            let Some(file) = try_lock(&path, true)? else {
                break None;
            };
            tries += 1;
            if same_file(&file, &path) || tries == 5 {
                break Some(file);
            }
        };
        match locked {
            Some(file) => Ok(RunLock { path, _file: file }),
            // Only a launcher racing another for the same queued run gets here.
            None => Err(StorageError::NotQueued {
                run_id: run_id.to_owned(),
                status: "starting in another launcher".to_owned(),
            }),
        }
    }

    /// Whether the process of `run_id` still holds its lock.
    pub(crate) fn is_held(dir: &Path, run_id: &str) -> Result<bool, StorageError> {
        let path = Self::path_for(dir, run_id);
        // Never create it here: a missing file means the run's process let go long ago.
        match try_lock(&path, false) {
            Ok(lock) => Ok(lock.is_none()),
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn remove(dir: &Path, run_id: &str) {
        let _ = std::fs::remove_file(Self::path_for(dir, run_id));
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_lock_is_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "abc").unwrap();
        assert!(RunLock::is_held(dir.path(), "abc").unwrap());
        drop(lock);
        assert!(!RunLock::is_held(dir.path(), "abc").unwrap());
    }
}
