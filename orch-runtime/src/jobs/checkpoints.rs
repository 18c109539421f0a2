//! Element checkpoints of a mapped op's step: when some elements of `files.map(process)` fail,
//! the outputs of those that succeeded are kept through the step's I/O manager, beside the
//! run's step outputs (`_runs/<run>/<job>/<step>/elements/<key>`); a re-execution whose
//! mapped step reads the inputs that run read reuses them, so only the failed elements run
//! again (as Dagster re-runs only the failed mapped steps).

use std::sync::Arc;

use orch_core::__private::Value;
use orch_core::op::{ElementCheckpoints, OpDef};
use orch_core::{AssetDef, AssetKey, BoxError, RunId};

use crate::io::{InputContext, IoManagers, LoadError, OutputContext};

/// One step's checkpoints in one run.
pub(crate) struct StepCheckpoints {
    pub(crate) io: Arc<IoManagers>,
    pub(crate) step: AssetKey,
    pub(crate) def: &'static AssetDef,
    /// The op called per element: its codec stores one element's output.
    pub(crate) op: &'static OpDef,
    pub(crate) run_id: RunId,
    /// The runs this one re-executes, nearest first, whose kept outputs may be reused
    /// (empty when the step's inputs were computed again: the elements may differ).
    pub(crate) reuse_from: Arc<[RunId]>,
}

impl std::fmt::Debug for StepCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCheckpoints")
            .field("step", &self.step)
            .field("run_id", &self.run_id)
            .field("reuse_from", &self.reuse_from)
            .finish()
    }
}

impl StepCheckpoints {
    /// Where run `run` keeps element `element`'s output: beside the step's own output.
    fn key(&self, run: &RunId, element: &str) -> Result<AssetKey, BoxError> {
        let output = super::step_output_key(&self.step, run.as_str());
        let segments = output
            .path()
            .iter()
            .cloned()
            .chain(["elements".to_owned(), file_name(element)]);
        Ok(AssetKey::new(segments)?)
    }
}

/// Element `key` as a name that is one file on any file system: as it is when it has no upper
/// case letters, else lower case with a hash of the key, so `A` and `a` stay two files where
/// case does not count (macOS, Windows).
fn file_name(key: &str) -> String {
    match key.bytes().any(|b| b.is_ascii_uppercase()) {
        false => key.to_owned(),
        true => format!(
            "{}-{:016x}",
            key.to_ascii_lowercase(),
            xxhash_rust::xxh3::xxh3_64(key.as_bytes())
        ),
    }
}

impl ElementCheckpoints for StepCheckpoints {
    fn reuse(&self, element: &str) -> Option<Value> {
        let manager = self.io.for_asset(&self.step, self.def).ok()?;
        for run in self.reuse_from.iter() {
            let key = self.key(run, element).ok()?;
            let ctx = InputContext {
                key: &key,
                partition: None,
                output_type: self.op.output_type(),
                codec: self.op.codec().map(|codec| codec()),
            };
            match manager.load_input(&ctx) {
                Ok(value) => return Some(value),
                Err(LoadError::Missing { .. }) => continue,
                // Unreadable: run the element again rather than fail it.
                Err(e) => {
                    tracing::warn!(step = %self.step, element, "a kept element output is unreadable, running the element again: {e}");
                    return None;
                }
            }
        }
        None
    }

    fn keep(&self, element: &str, value: &Value) -> Result<(), BoxError> {
        let manager = self.io.for_asset(&self.step, self.def)?;
        let key = self.key(&self.run_id, element)?;
        let ctx = OutputContext {
            key: &key,
            run_id: &self.run_id,
            partition: None,
            output_type: self.op.output_type(),
            codec: self.op.codec().map(|codec| codec()),
        };
        manager.handle_output(&ctx, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_differ_only_in_case_have_their_own_files() {
        assert_eq!(file_name("a_csv"), "a_csv");
        let (upper, lower) = (file_name("A"), file_name("a"));
        assert_ne!(upper.to_lowercase(), lower.to_lowercase());
        assert!(upper.starts_with("a-"), "{upper}");
        assert!(AssetKey::new([upper.as_str()]).is_ok(), "{upper}");
    }
}
