//! Deleting the objects no committed materialization refers to: the attempts of killed or
//! zombie workers, failed attempts, outputs a newer materialization replaced, and the step
//! outputs of op job runs that retention deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStoreExt};
use orch_core::BoxError;

use super::ObjectIoManager;
use crate::storage::{EventRecord, RunStatus, StorageError};

/// What [`ObjectIoManager::sweep`] may delete.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SweepOptions {
    /// Only objects at least this old, replaced at least this long ago: a step that read an
    /// asset's location just before a newer materialization replaced it can still read it.
    pub older_than: Duration,
    /// Count, but delete nothing.
    pub dry_run: bool,
}

impl Default for SweepOptions {
    /// Objects older than an hour; deleted.
    fn default() -> Self {
        SweepOptions {
            older_than: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

impl SweepOptions {
    /// Objects older than `age`.
    pub fn older_than(age: Duration) -> Self {
        SweepOptions {
            older_than: age,
            ..SweepOptions::default()
        }
    }

    /// Counts without deleting.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
}

/// What a sweep found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Objects listed under the storage URL.
    pub listed: usize,
    /// Objects a committed materialization refers to.
    pub referenced: usize,
    /// Unreferenced objects kept: too young, or of a run still going.
    pub kept: usize,
    /// The locations of the objects deleted (or, in a dry run, that would be).
    pub deleted: Vec<String>,
    /// Their size.
    pub deleted_bytes: u64,
    /// Local copies removed from the download cache.
    pub cache_files_removed: usize,
}

impl ObjectIoManager {
    /// Deletes the objects under the storage URL that no committed materialization refers
    /// to (the latest of each asset, and of each partition), once they are
    /// [`SweepOptions::older_than`] old, their asset's latest materialization is too, and their
    /// run has ended. An op job's step outputs go once retention deleted their run. Local copies
    /// of swept objects leave the download cache.
    pub fn sweep(&self, options: SweepOptions) -> Result<SweepReport, BoxError> {
        let now = SystemTime::now();
        let old_enough =
            |time: SystemTime| now.duration_since(time).unwrap_or_default() >= options.older_than;
        // In this order: the objects, then their runs' states, then what is committed. An
        // object listed whose run had ended when its state was read was committed (or not)
        // before the committed set is read, so a commit is never missed; one whose run was
        // still going is kept.
        let objects = self.list()?;
        let mut runs: HashMap<String, Option<bool>> = HashMap::new();
        for object in &objects {
            if let Some((run, _)) = self.run_of(&object.location)
                && !runs.contains_key(&run)
            {
                let ended = match self.committed.run(&run) {
                    Ok(record) => Some(!matches!(
                        record.status,
                        RunStatus::Queued | RunStatus::Starting | RunStatus::Running
                    )),
                    Err(StorageError::NoSuchRun(_)) => None,
                    Err(e) => return Err(format!("could not read run {run}: {e}").into()),
                };
                runs.insert(run, ended);
            }
        }
        let (referenced, replaced) = self.referenced()?;
        let mut report = SweepReport {
            listed: objects.len(),
            ..SweepReport::default()
        };
        let mut doomed = Vec::new();
        for object in objects {
            let raw = object.location.as_ref().to_owned();
            if referenced.contains(&raw) {
                report.referenced += 1;
                continue;
            }
            let dir = parent(&raw);
            let modified = SystemTime::from(object.last_modified);
            let young = !old_enough(modified) || replaced.get(dir).is_some_and(|t| !old_enough(*t));
            let sweepable = match self.run_of(&object.location) {
                // A file a killed process was writing, on a file system store.
                None => {
                    object
                        .location
                        .filename()
                        .is_some_and(|name| name.starts_with(super::TMP_PREFIX))
                        && !young
                }
                // A step output is its run's for as long as the store keeps the run.
                Some((run, true)) => runs.get(&run).copied().flatten().is_none() && !young,
                // Not while its run goes on; a run this store does not know (retention
                // deleted it, or it is another store's) only once old enough.
                Some((run, false)) => runs.get(&run).copied().flatten() != Some(false) && !young,
            };
            if !sweepable {
                report.kept += 1;
                continue;
            }
            report.deleted.push(self.location_of(&object.location));
            report.deleted_bytes += object.size;
            doomed.push(object.location);
        }
        if !options.dry_run {
            for object in &doomed {
                let store = Arc::clone(&self.store);
                let path = object.clone();
                match self.block(async move { store.delete(&path).await })? {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(
                            format!("could not delete {}: {e}", self.location_of(object)).into(),
                        );
                    }
                }
            }
            report.cache_files_removed = self.sweep_cache(&referenced, &old_enough);
        }
        Ok(report)
    }

    /// The objects committed materializations refer to (raw keys), and when each directory's
    /// latest output was recorded (what replaced the objects beside it).
    fn referenced(&self) -> Result<(HashSet<String>, HashMap<String, SystemTime>), BoxError> {
        let read = |e: StorageError| -> BoxError {
            format!("could not read the committed materializations: {e}").into()
        };
        let mut records: Vec<EventRecord> = Vec::new();
        for (asset, latest) in self.committed.latest_materializations().map_err(read)? {
            match latest.partition {
                Some(_) => records.extend(
                    self.committed
                        .partition_materializations(&asset)
                        .map_err(read)?
                        .into_values(),
                ),
                // The latest without its metadata: read again, whole.
                None => records.extend(self.committed.materializations(&asset, 1).map_err(read)?),
            }
        }
        let mut referenced = HashSet::new();
        let mut replaced: HashMap<String, SystemTime> = HashMap::new();
        for record in records {
            let location = super::keys::recorded_location(&record.metadata);
            let Some(object) = location.and_then(|l| self.object_at(l)) else {
                continue;
            };
            let raw = object.as_ref().to_owned();
            let newest = replaced
                .entry(parent(&raw).to_owned())
                .or_insert(record.time);
            *newest = (*newest).max(record.time);
            referenced.insert(raw);
        }
        Ok((referenced, replaced))
    }

    /// Every object under the prefix.
    fn list(&self) -> Result<Vec<ObjectMeta>, BoxError> {
        let store = Arc::clone(&self.store);
        let prefix = self.prefix.clone();
        let listed = self.block(async move {
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            let mut stream = store.list(prefix.as_ref());
            let mut objects = Vec::new();
            while let Some(object) =
                std::future::poll_fn(|cx| futures_core::Stream::poll_next(stream.as_mut(), cx))
                    .await
            {
                objects.push(object?);
            }
            Ok::<_, object_store::Error>(objects)
        })?;
        listed.map_err(|e| format!("could not list {}: {e}", self.url).into())
    }

    /// The run that wrote `object`, and whether it is an op job's step output
    /// (`_runs/<run>/...`); `None` for a name orch does not write.
    pub(super) fn run_of(&self, object: &ObjectPath) -> Option<(String, bool)> {
        let mut parts = object
            .prefix_match(&self.prefix)?
            .map(|p| p.as_ref().to_owned());
        let first = parts.next()?;
        if first == "_runs" {
            return parts.next().map(|run| (run, true));
        }
        let name = object.filename()?;
        let mut pieces = name.split('.');
        let (run, token) = (pieces.next()?, pieces.next()?);
        let hex = token.len() == 8 && token.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && pieces.next().is_some()).then(|| (run.to_owned(), false))
    }

    /// Removes the download cache's copies of objects no longer referenced, and files left
    /// behind by a killed process; returns how many went.
    fn sweep_cache(
        &self,
        referenced: &HashSet<String>,
        old_enough: &dyn Fn(SystemTime) -> bool,
    ) -> usize {
        if self.local.is_some() {
            return 0;
        }
        let mut removed = 0;
        let mut dirs = vec![self.cache.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.cache) else {
                    continue;
                };
                let key: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if !referenced.contains(&key.join("/"))
                    && old_enough(modified)
                    && std::fs::remove_file(&path).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// The directory part of a raw object key.
fn parent(raw: &str) -> &str {
    raw.rsplit_once('/').map_or("", |(dir, _)| dir)
}
