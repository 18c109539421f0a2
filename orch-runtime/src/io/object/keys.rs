//! Where an output's object goes (a key per write, under its asset and partition), how a
//! recorded location names it, and which object a committed materialization refers to.

use object_store::PutMode;
use object_store::path::Path as ObjectPath;
use orch_core::{AssetKey, MetadataValue};

use super::{LOCATION, ObjectIoManager};
use crate::io::{LoadError, OutputContext};
use crate::storage::EventRecord;

impl ObjectIoManager {
    /// Where the outputs of `key` (one partition's, for a partition) go.
    pub(super) fn dir_of(&self, key: &AssetKey, partition: Option<&str>) -> ObjectPath {
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
    pub(super) fn new_object(
        &self,
        ctx: &OutputContext<'_>,
        extension: &str,
    ) -> (ObjectPath, PutMode) {
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
    pub(super) fn fixed_object(&self, key: &AssetKey, extension: &str) -> ObjectPath {
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
    pub(super) fn location_of(&self, object: &ObjectPath) -> String {
        let relative: Vec<String> = match object.prefix_match(&self.prefix) {
            Some(parts) => parts.map(|p| p.as_ref().to_owned()).collect(),
            None => object.parts().map(|p| p.as_ref().to_owned()).collect(),
        };
        format!("{}/{}", self.url, relative.join("/"))
    }

    /// The object a recorded location names; `None` when it is not under this manager's URL.
    pub(super) fn object_at(&self, location: &str) -> Option<ObjectPath> {
        let relative = location.strip_prefix(&self.url)?.strip_prefix('/')?;
        let full = match self.prefix.as_ref() {
            "" => relative.to_owned(),
            prefix => format!("{prefix}/{relative}"),
        };
        ObjectPath::parse(full).ok()
    }

    /// The object of the committed materialization `record` of `key`.
    pub(super) fn object_of(
        &self,
        key: &AssetKey,
        record: &EventRecord,
    ) -> Result<ObjectPath, LoadError> {
        let location = recorded_location(&record.metadata);
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
    pub(super) fn committed_object(
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
}

/// An op job's step output (`_runs/<run>/<job>/<step>`, [`crate::jobs::step_output_key`]):
/// its run and the step's key, whose materialization in that run records its object.
pub(super) fn step_output_of(key: &AssetKey) -> Option<(String, String)> {
    let path = key.path();
    (crate::jobs::is_step_output_key(key) && !is_element(key))
        .then(|| (path[1].clone(), path[2..].join("/")))
}

/// An element a mapped op's step kept (`_runs/<run>/<job>/<step>/elements/<element>`): no
/// materialization records it, so its key is fixed (and overwritten by a later delivery of
/// the step, which computes it from the same inputs).
pub(super) fn is_element(key: &AssetKey) -> bool {
    let path = key.path();
    crate::jobs::is_step_output_key(key) && path.len() >= 2 && path[path.len() - 2] == "elements"
}

/// The location `metadata` records (`orch/location`).
pub(super) fn recorded_location(metadata: &[(String, MetadataValue)]) -> Option<&str> {
    metadata
        .iter()
        .find_map(|(label, value)| match (label.as_str(), value) {
            (LOCATION, MetadataValue::Text(text)) => Some(text.as_str()),
            _ => None,
        })
}
