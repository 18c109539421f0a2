//! Asset checks at run time: the registered `#[asset_check]`s by asset, running them on an
//! asset's value (an error or a panic is a failed result, never a crashed run), and what a
//! result means for the run ([`CheckOutcome::blocks`]). The executor runs an asset's checks
//! right after it materializes; [`Instance::check`](crate::Instance::check) runs them alone on
//! the stored value (`check run ASSET`).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use orch_core::__private::Value;
use orch_core::{AssetKey, CheckDef, CheckSeverity, MetadataValue};

use crate::events::AssetFailure;

/// One check's result.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The check's name.
    pub name: &'static str,
    /// The asset it checked.
    pub asset: AssetKey,
    /// Whether it passed.
    pub passed: bool,
    /// The severity of a failure (the result's own, or the check's declared one).
    pub severity: CheckSeverity,
    /// Whether the check is blocking.
    pub blocking: bool,
    /// What it found, or why it errored.
    pub description: Option<String>,
    /// Metadata it recorded.
    pub metadata: Vec<(String, MetadataValue)>,
    /// How long it took.
    pub duration: Duration,
    /// It returned an error or panicked (and so did not pass).
    pub errored: bool,
}

impl CheckOutcome {
    /// Whether this result skips the asset's downstream: a blocking check that failed with
    /// error severity. A warning never blocks.
    pub fn blocks(&self) -> bool {
        self.blocking && !self.passed && self.severity == CheckSeverity::Error
    }

    /// `passed`, `failed` (error severity), `warned` (warn severity): one word for people.
    pub fn label(&self) -> &'static str {
        match (self.passed, self.severity) {
            (true, _) => "passed",
            (false, CheckSeverity::Warn) => "warned",
            (false, _) => "failed",
        }
    }
}

/// The checks by asset, and the problems found.
type Registry = (HashMap<AssetKey, Vec<&'static CheckDef>>, Vec<String>);

/// Every registered check, by the asset it checks, in name order; each asset's checks with
/// one name at most once (a second one with the same name is reported by
/// [`check_problems`], and not run).
fn registry() -> &'static Registry {
    static CHECKS: OnceLock<Registry> = OnceLock::new();
    CHECKS.get_or_init(|| {
        let mut by_asset: HashMap<AssetKey, Vec<&'static CheckDef>> = HashMap::new();
        let mut problems = Vec::new();
        let mut all: Vec<&'static CheckDef> = orch_core::check::registered_checks().collect();
        all.sort_by_key(|c| (c.asset().to_key(), c.name()));
        for check in all {
            let checks = by_asset.entry(check.asset().to_key()).or_default();
            match checks.iter().find(|c| c.name() == check.name()) {
                Some(first) => problems.push(format!(
                    "asset `{}` has two checks named `{}`: at {} and at {}; rename one",
                    check.asset().to_key(),
                    check.name(),
                    first.location(),
                    check.location()
                )),
                None => checks.push(check),
            }
        }
        (by_asset, problems)
    })
}

/// The checks of `asset`, in name order.
pub fn checks_of(asset: &AssetKey) -> &'static [&'static CheckDef] {
    registry().0.get(asset).map_or(&[], Vec::as_slice)
}

/// Whether any check is registered (the executor's fast path).
pub(crate) fn any() -> bool {
    !registry().0.is_empty()
}

/// What is wrong with the registered checks (two with one name on one asset), for startup.
pub fn check_problems() -> &'static [String] {
    &registry().1
}

/// Runs every check of `asset` on its value, in name order.
pub fn run_checks(asset: &AssetKey, value: &Value) -> Vec<CheckOutcome> {
    checks_of(asset)
        .iter()
        .map(|check| run_check(asset, check, value))
        .collect()
}

/// Runs one check: an error or a panic is a failure with the check's severity, saying so.
pub(crate) fn run_check(asset: &AssetKey, check: &CheckDef, value: &Value) -> CheckOutcome {
    let start = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| check.run(value)));
    let duration = start.elapsed();
    let outcome = |passed, severity, description, metadata, errored| CheckOutcome {
        name: check.name(),
        asset: asset.clone(),
        passed,
        severity,
        blocking: check.blocking(),
        description,
        metadata,
        duration,
        errored,
    };
    match result {
        Ok(Ok(result)) => outcome(
            result.is_passed(),
            result.severity_override().unwrap_or(check.severity()),
            result.description_text().map(str::to_owned),
            result.into_metadata(),
            false,
        ),
        Ok(Err(error)) => outcome(
            false,
            check.severity(),
            Some(format!(
                "the check returned an error: {}",
                AssetFailure::from_error(&*error)
            )),
            Vec::new(),
            true,
        ),
        Err(panic) => outcome(
            false,
            check.severity(),
            Some(format!("the check {}", AssetFailure::from_panic(&*panic))),
            Vec::new(),
            true,
        ),
    }
}

/// The tag on a run that only ran checks (`check run ASSET`).
pub const CHECKS_TAG: &str = "orch/checks";

/// What [`Instance::check`](crate::Instance::check) found: the recorded run and each check's
/// result.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckRun {
    /// The run that recorded the results.
    pub run_id: orch_core::RunId,
    /// The asset checked.
    pub asset: AssetKey,
    /// Each check's result, in name order.
    pub outcomes: Vec<CheckOutcome>,
}

impl CheckRun {
    /// Whether no blocking check failed with error severity: the rule a materializing run
    /// follows too (a warning, or a failed non-blocking check, is recorded and shown, and
    /// fails nothing).
    pub fn success(&self) -> bool {
        !self.outcomes.iter().any(CheckOutcome::blocks)
    }
}

/// Why checks could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The asset definitions are invalid.
    #[error("{0}")]
    Definitions(String),
    /// No asset has this key.
    #[error("`{0}` is not an asset")]
    UnknownAsset(String),
    /// The asset has no check.
    #[error("asset `{0}` has no checks (add one with `#[asset_check(asset = {0})]`)")]
    NoChecks(AssetKey),
    /// A partitioned asset needs a partition, or an unpartitioned one was given one.
    #[error("{0}")]
    Partition(String),
    /// The stored value could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::io::LoadError),
    /// The asset's I/O manager is not registered.
    #[error(transparent)]
    IoManager(#[from] crate::io::UnknownIoManager),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// The event that records one check's result, in run `run_id`.
pub(crate) fn check_event(
    run_id: &orch_core::RunId,
    partition: Option<String>,
    code_version: Option<String>,
    check: &CheckOutcome,
) -> crate::storage::EventRecord {
    crate::storage::EventRecord {
        partition,
        code_version,
        duration: Some(check.duration),
        message: check.description.clone(),
        metadata: check.metadata.clone(),
        check: Some(Box::new(crate::storage::CheckRecord {
            name: check.name.to_owned(),
            passed: check.passed,
            severity: check.severity,
            blocking: check.blocking,
        })),
        ..crate::storage::EventRecord::new(
            run_id.clone(),
            Some(check.asset.clone()),
            crate::storage::EventKind::CheckEvaluated,
        )
    }
}

impl crate::Instance {
    /// Runs the checks of `asset` on its stored value (of `partition`, for a partitioned
    /// asset), as a recorded run tagged [`CHECKS_TAG`] with one event per result: what
    /// `check run ASSET` does. Nothing is materialized.
    pub fn check(&self, asset: &str, partition: Option<&str>) -> Result<CheckRun, CheckError> {
        use crate::io::InputContext;
        use crate::storage::RunStatus;
        let graph = crate::materialize::definitions()
            .map_err(|e| CheckError::Definitions(e.to_string()))?;
        let key: AssetKey = asset
            .parse()
            .map_err(|_| CheckError::UnknownAsset(asset.to_owned()))?;
        let id = graph
            .id_of(&key)
            .ok_or_else(|| CheckError::UnknownAsset(asset.to_owned()))?;
        let node = graph.node(id);
        let checks = checks_of(&key);
        if checks.is_empty() {
            return Err(CheckError::NoChecks(key));
        }
        match (&node.partitions, partition) {
            (Some(partitions), None) => {
                return Err(CheckError::Partition(format!(
                    "asset `{key}` is partitioned ({}): say which partition to check with `--partition KEY`",
                    partitions.describe()
                )));
            }
            (None, Some(p)) => {
                return Err(CheckError::Partition(format!(
                    "asset `{key}` is not partitioned, so it has no partition `{p}`"
                )));
            }
            _ => {}
        }
        let manager = self.io_managers().for_asset(&key, node.def)?;
        let value = manager.load_input(&InputContext {
            key: &key,
            partition,
            output_type: node.def.output_type(),
            codec: node.def.storage_codec(),
        })?;
        let mut request =
            crate::RunRequest::selection(orch_core::AssetSelection::Keys(vec![key.clone()]))
                .tag(CHECKS_TAG, "true");
        if let Some(p) = partition {
            request = request.partition(p);
        }
        let run_id = orch_core::RunId::new();
        let store = self.storage();
        // Held until the run ends, as for any run: another process's crash recovery sees the
        // run's owner alive.
        let _alive = store.hold_alive(run_id.as_str())?;
        store.begin_run(
            &crate::storage::RunRecord::new(run_id.clone(), &request, 0),
            &[],
        )?;
        let outcomes: Vec<CheckOutcome> = checks
            .iter()
            .map(|check| run_check(&key, check, &value))
            .collect();
        let code_version = Some(node.def.code_version().to_owned());
        let events: Vec<_> = outcomes
            .iter()
            .map(|c| {
                check_event(
                    &run_id,
                    partition.map(str::to_owned),
                    code_version.clone(),
                    c,
                )
            })
            .collect();
        let done = CheckRun {
            run_id: run_id.clone(),
            asset: key,
            outcomes,
        };
        let recorded = store.append(&events, &[]);
        let status = match done.success() && recorded.is_ok() {
            true => RunStatus::Succeeded,
            false => RunStatus::Failed,
        };
        store.end_run(run_id.as_str(), status, std::time::SystemTime::now())?;
        recorded?;
        Ok(done)
    }
}
