//! What a run produced: per-asset outcomes and, when kept, the outputs themselves.

use std::fmt;
use std::time::Duration;

use orch_core::__private::Value;
use orch_core::{Asset, AssetGraph, AssetId, AssetKey, LogLine, MetadataValue, RunId};

pub use crate::events::AssetFailure;

/// How one asset of a run ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AssetStatus {
    /// It produced its output.
    Succeeded,
    /// Its last attempt failed.
    Failed(AssetFailure),
    /// It did not run because this upstream failed, or a blocking check of it failed.
    Skipped {
        /// The failed upstream.
        because_of: AssetKey,
        /// The blocking check of `because_of` that failed, if that was why.
        check: Option<&'static str>,
    },
    /// The run was canceled before it ran, or (an async asset) while it ran.
    Canceled,
    /// It did not run because this upstream op's optional output was `None` (an op job's
    /// way to skip a branch; the run still succeeds).
    NotRequired {
        /// The op that produced no output.
        because_of: AssetKey,
    },
    /// Its value was injected by the caller instead of computed.
    Injected,
    /// Its value was loaded from its I/O manager (stored by an earlier run) because a
    /// selected asset needed it.
    Loaded,
}

impl AssetStatus {
    /// A one-word label: `ok`, `FAILED`, `skipped`, `injected`.
    pub fn label(&self) -> &'static str {
        match self {
            AssetStatus::Succeeded => "ok",
            AssetStatus::Failed(_) => "FAILED",
            AssetStatus::Skipped { .. } => "skipped",
            AssetStatus::Canceled => "canceled",
            AssetStatus::NotRequired { .. } => "not run",
            AssetStatus::Injected => "injected",
            AssetStatus::Loaded => "loaded",
        }
    }
}

/// One asset's record in a run.
#[derive(Clone, Debug)]
pub struct AssetOutcome {
    /// The asset.
    pub key: AssetKey,
    /// How it ended.
    pub status: AssetStatus,
    /// How many attempts were made (0 if it never ran).
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub duration: Duration,
    /// Metadata attached by the asset.
    pub metadata: Vec<(String, MetadataValue)>,
    /// Log lines written by the asset (all attempts).
    pub logs: Vec<LogLine>,
    /// The stored output's data version (a content hash), when an I/O manager stored it.
    pub data_version: Option<String>,
    /// The data versions of the upstream values it consumed, by upstream key.
    pub input_versions: Vec<(AssetKey, Option<String>)>,
    /// In a run over a range of partitions: each stored partition, with its own data version
    /// and metadata.
    pub partitions: Vec<crate::io::StoredPartition>,
    /// Its checks' results, run right after it materialized (in name order).
    pub checks: Vec<crate::checks::CheckOutcome>,
    /// Where its last attempt's time went (zero if it never ran).
    pub timings: crate::events::AssetTimings,
}

impl AssetOutcome {
    /// An outcome with no attempt, metadata, logs or versions.
    pub(crate) fn decided(key: AssetKey, status: AssetStatus) -> Self {
        AssetOutcome {
            key,
            status,
            attempts: 0,
            duration: Duration::ZERO,
            metadata: Vec::new(),
            logs: Vec::new(),
            data_version: None,
            input_versions: Vec::new(),
            partitions: Vec::new(),
            checks: Vec::new(),
            timings: crate::events::AssetTimings::default(),
        }
    }
}

/// The result of a run: one [`AssetOutcome`] per planned asset, in execution order, and the
/// outputs if the run kept them.
pub struct RunResult {
    pub(crate) run_id: RunId,
    pub(crate) graph: &'static AssetGraph,
    pub(crate) outcomes: Vec<AssetOutcome>,
    pub(crate) outputs: Vec<Option<Value>>,
    pub(crate) duration: Duration,
    pub(crate) storage_error: Option<crate::storage::StorageError>,
    pub(crate) canceled: bool,
    /// Where a recorded run's time went (`None` for an unrecorded run).
    pub(crate) timings: Option<crate::events::RunTimings>,
    /// Handed to workers and not waited for ([`crate::Materialize::detach`]).
    pub(crate) detached: bool,
}

impl fmt::Debug for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunResult")
            .field("run_id", &self.run_id)
            .field("outcomes", &self.outcomes)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl RunResult {
    /// A run that had nothing to do (`--stale` with everything up to date).
    pub(crate) fn nothing_to_do(graph: &'static AssetGraph, run_id: RunId) -> Self {
        RunResult {
            run_id,
            graph,
            outcomes: Vec::new(),
            outputs: Vec::new(),
            duration: Duration::ZERO,
            storage_error: None,
            timings: None,
            canceled: false,
            detached: false,
        }
    }

    /// Whether the run was handed to workers and not waited for
    /// ([`crate::Materialize::detach`]): it has no outcomes yet; follow it in the store.
    pub fn detached(&self) -> bool {
        self.detached
    }

    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Wall time of the run.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Where a recorded run's time went, phase by phase (each asset's own is in its
    /// [`AssetOutcome::timings`]); `None` for an unrecorded run. Also kept in the store
    /// (`run show ID --timings`).
    pub fn timings(&self) -> Option<&crate::events::RunTimings> {
        self.timings.as_ref()
    }

    /// Why the run could not be fully recorded in the store, if it could not. The assets ran
    /// regardless; this is about the record.
    pub fn storage_error(&self) -> Option<&crate::storage::StorageError> {
        self.storage_error.as_ref()
    }

    /// Whether the run was canceled (some assets may have succeeded before it stopped).
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// How the run ends in the store: succeeded, failed or canceled.
    pub fn status(&self) -> crate::storage::RunStatus {
        use crate::storage::RunStatus;
        if self.canceled {
            RunStatus::Canceled
        } else if self.success() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        }
    }

    /// Whether every planned asset succeeded (or was injected).
    pub fn success(&self) -> bool {
        !self.canceled
            && self.outcomes.iter().all(|o| {
                matches!(
                    o.status,
                    AssetStatus::Succeeded
                        | AssetStatus::Injected
                        | AssetStatus::Loaded
                        | AssetStatus::NotRequired { .. }
                ) && !o.checks.iter().any(crate::checks::CheckOutcome::blocks)
            })
    }

    /// Every planned asset's outcome, in the order they finished being decided.
    pub fn outcomes(&self) -> &[AssetOutcome] {
        &self.outcomes
    }

    /// The outcome of one asset, by key (`"prefix/name"`).
    pub fn outcome(&self, key: &str) -> Option<&AssetOutcome> {
        self.outcomes.iter().find(|o| o.key == *key)
    }

    /// Assets that failed.
    pub fn failed(&self) -> impl Iterator<Item = &AssetOutcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, AssetStatus::Failed(_)))
    }

    /// The typed output of the step named `step` of an op job's run (the key's last segment),
    /// if it ran (or was injected) and produced one.
    pub fn step_output<T: 'static>(&self, step: &str) -> Option<&T> {
        let node = self
            .graph
            .nodes()
            .iter()
            .position(|n| n.key.name() == step)?;
        self.output_by_id(node)?.downcast_ref::<T>()
    }

    /// The typed output of asset `A`, if it was materialized (or injected) and kept.
    pub fn try_output<A: Asset>(&self) -> Option<&A::Output> {
        let id = self.graph.id_of(&A::KEY.to_key())?;
        self.output_by_id(id)?.downcast_ref::<A::Output>()
    }

    /// The typed output of asset `A`.
    ///
    /// # Panics
    /// If `A` was not materialized in this run, or its output was not kept; this is meant for
    /// tests, where a panic is the failure. Use [`RunResult::try_output`] otherwise.
    pub fn output<A: Asset>(&self) -> &A::Output {
        match self.try_output::<A>() {
            Some(v) => v,
            None => {
                let key = A::KEY.to_key();
                let why = match self.outcome(&key.to_string()) {
                    Some(o) => format!("its status is {}", o.status.label()),
                    None => "it was not part of this run".to_owned(),
                };
                panic!("no output for asset `{key}`: {why}")
            }
        }
    }

    fn output_by_id(&self, id: AssetId) -> Option<&Value> {
        self.outputs.get(id)?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("could not load users")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn failures_keep_the_cause_chain() {
        let error = Outer(std::io::Error::other("connection reset"));
        let failure = AssetFailure::from_error(&error);
        assert_eq!(failure.chain, ["could not load users", "connection reset"]);
        assert_eq!(
            failure.to_string(),
            "could not load users: connection reset"
        );
        assert_eq!(failure.message(), "could not load users");
    }

    #[test]
    fn panics_keep_their_message() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(format!("bad row {}", 3));
        let failure = AssetFailure::from_panic(&*payload);
        assert!(failure.panicked);
        assert_eq!(failure.to_string(), "panicked: bad row 3");
        let payload: Box<dyn std::any::Any + Send> = Box::new(42u8);
        assert_eq!(
            AssetFailure::from_panic(&*payload).message(),
            "a non-string panic payload"
        );
    }
}
