//! [`FileAsset`]: a file an asset wrote itself (an export, a report, a model file), outside
//! orch's storage, tracked like any output.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A file an asset wrote, returned as (part of) its output. It holds the file's path, size
/// and content hash, so the output's data version changes when the contents (or the path) do,
/// and only then, and a consumer can check that the file is still what was materialized.
///
/// ```ignore
/// use orch::prelude::*;
///
/// #[asset]
/// fn report(ctx: &AssetContext) -> Result<FileAsset, BoxError> {
///     std::fs::write("report.html", "<h1>sales</h1>")?;
///     Ok(ctx.track_file("report.html")?) // records path and bytes as metadata too
/// }
///
/// #[asset]
/// fn published(report: &FileAsset) -> Result<u64, BoxError> {
///     report.verify()?; // still the file `report` materialized?
///     Ok(std::fs::metadata(report.path())?.len())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileAsset {
    path: PathBuf,
    bytes: u64,
    hash: String,
}

/// A tracked file is gone or no longer has the contents that were materialized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileChanged {
    /// The file cannot be read.
    #[error(
        "{} cannot be read ({source}); materialize the asset that writes it again",
        path.display()
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The contents differ from the materialized ones.
    #[error(
        "{} changed since it was materialized (its contents differ: {was} bytes then, {now} now); materialize the asset that writes it again",
        path.display()
    )]
    Modified {
        /// The file.
        path: PathBuf,
        /// Its size when materialized.
        was: u64,
        /// Its size now.
        now: u64,
    },
}

impl FileAsset {
    /// Tracks the file at `path` as it is now: reads it to hash its contents (xxh3-128).
    pub fn new(path: impl Into<PathBuf>) -> std::io::Result<FileAsset> {
        let path = path.into();
        let (bytes, hash) = hash_file(&path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("could not read {} to track it: {e}", path.display()),
            )
        })?;
        Ok(FileAsset { path, bytes, hash })
    }

    /// The file's path, as the asset gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes when it was tracked.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hash of its contents when it was tracked (32 hex digits).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Checks that the file still has the contents it was tracked with.
    pub fn verify(&self) -> Result<(), FileChanged> {
        match hash_file(&self.path) {
            Err(source) => Err(FileChanged::Unreadable {
                path: self.path.clone(),
                source,
            }),
            Ok((_, hash)) if hash == self.hash => Ok(()),
            Ok((now, _)) => Err(FileChanged::Modified {
                path: self.path.clone(),
                was: self.bytes,
                now,
            }),
        }
    }
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((bytes, format!("{:032x}", hasher.digest128())));
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
}

impl crate::AssetContext {
    /// Tracks a file this asset wrote ([`FileAsset::new`]) and records its path and size as
    /// metadata of this materialization.
    pub fn track_file(&self, path: impl Into<PathBuf>) -> std::io::Result<FileAsset> {
        let file = FileAsset::new(path)?;
        // A second tracked file records `path 2`, `bytes 2`, and so on.
        let tracked = self
            .output_metadata()
            .iter()
            .filter(|(l, _)| l == "path" || l.starts_with("path "))
            .count();
        let label = |name: &str| match tracked {
            0 => name.to_owned(),
            n => format!("{name} {}", n + 1),
        };
        let (path, bytes) = (label("path"), label("bytes"));
        self.add_output_metadata(path, file.path.display().to_string());
        self.add_output_metadata(bytes, file.bytes);
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_file_knows_when_it_changed_or_went() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let file = FileAsset::new(&path).unwrap();
        assert_eq!(file.bytes(), 8);
        assert_eq!(file.hash().len(), 32);
        file.verify().unwrap();
        // Same contents again: the same value (so the same data version).
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert_eq!(FileAsset::new(&path).unwrap(), file);
        std::fs::write(&path, "a,b\n1,3\n").unwrap();
        let err = file.verify().unwrap_err().to_string();
        assert!(err.contains("changed since it was materialized"), "{err}");
        assert_ne!(FileAsset::new(&path).unwrap(), file);
        std::fs::remove_file(&path).unwrap();
        let err = file.verify().unwrap_err().to_string();
        assert!(err.contains("cannot be read"), "{err}");
        let err = FileAsset::new(&path).unwrap_err().to_string();
        assert!(err.starts_with("could not read"), "{err}");
    }
}
