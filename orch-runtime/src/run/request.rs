//! [`RunRequest`]: what a run is asked to do, as one value that the CLI, the library, a
//! schedule or the UI builds, the run store keeps in structured columns, and re-execution reads
//! back.

use std::collections::BTreeMap;
use std::fmt;

use orch_core::{AssetSelection, RunId};

/// What a run targets: assets, or an op job.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RunTarget {
    /// The assets of a selection (`*` for everything).
    Selection(AssetSelection),
    /// An op job (`#[job]`): all its steps, or (a re-execution) only these, by name.
    Job {
        /// The job's name.
        name: String,
        /// The steps to run; empty for all of them.
        steps: Vec<String>,
    },
}

impl RunTarget {
    /// Reads a stored target: `job:NAME`, `job:NAME[a,b]`, or a selection.
    pub(crate) fn parse_stored(text: &str) -> Result<RunTarget, orch_core::SelectionError> {
        if let Some(job) = text.strip_prefix("job:") {
            let (name, steps) = match job.split_once('[') {
                Some((name, rest)) => (
                    name,
                    rest.trim_end_matches(']')
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                None => (job, Vec::new()),
            };
            return Ok(RunTarget::Job {
                name: name.to_owned(),
                steps,
            });
        }
        Ok(RunTarget::Selection(text.parse()?))
    }

    /// The op job it targets, if it does.
    pub fn job(&self) -> Option<&str> {
        match self {
            RunTarget::Job { name, .. } => Some(name),
            RunTarget::Selection(_) => None,
        }
    }
}

impl fmt::Display for RunTarget {
    /// As stored: a selection, or `job:NAME` (`job:NAME[a,b]` for some steps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunTarget::Selection(selection) => write!(f, "{selection}"),
            RunTarget::Job { name, steps } if steps.is_empty() => write!(f, "job:{name}"),
            RunTarget::Job { name, steps } => write!(f, "job:{name}[{}]", steps.join(",")),
        }
    }
}

/// Which partitions of the targeted partitioned assets a run materializes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionScope {
    /// None: the target holds no partitioned asset.
    #[default]
    None,
    /// One partition, one call of each partitioned asset.
    Key(String),
    /// Consecutive partitions in one run: each partitioned asset is called once over them
    /// (`ctx.partition_key_range()`) and its frame is split by its `partition_by` column.
    /// The keys are kept in the definition's order, never sorted as text.
    Range(Vec<String>),
}

impl PartitionScope {
    /// Every key of the scope, in order (empty for [`PartitionScope::None`]).
    pub fn keys(&self) -> &[String] {
        match self {
            PartitionScope::None => &[],
            PartitionScope::Key(key) => std::slice::from_ref(key),
            PartitionScope::Range(keys) => keys,
        }
    }

    /// The stored spelling of the scope's kind (`None` has none).
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match self {
            PartitionScope::None => None,
            PartitionScope::Key(_) => Some("key"),
            PartitionScope::Range(_) => Some("range"),
        }
    }

    /// Rebuilds a stored scope from its kind and keys.
    pub(crate) fn from_stored(kind: Option<&str>, keys: Vec<String>) -> PartitionScope {
        match (kind, keys.as_slice()) {
            (_, []) | (None, _) => PartitionScope::None,
            (Some("key"), [one]) => PartitionScope::Key(one.clone()),
            _ => PartitionScope::Range(keys),
        }
    }
}

impl fmt::Display for PartitionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionScope::None => Ok(()),
            PartitionScope::Key(key) => write!(f, "partition {key}"),
            PartitionScope::Range(keys) => match (keys.first(), keys.last()) {
                (Some(first), Some(last)) => write!(f, "partitions {first}..{last}"),
                _ => Ok(()),
            },
        }
    }
}

/// What started a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// A person or a program asked for it (`materialize`, [`Instance::submit`](crate::Instance::submit)).
    Manual,
    /// One run of a backfill.
    Backfill {
        /// The backfill's id, shared by all its runs (empty for runs recorded before backfills
        /// had ids).
        backfill_id: String,
    },
    /// A re-execution of the request's parent run.
    Reexecution,
    /// A tick of a schedule.
    Schedule {
        /// The schedule's name.
        name: String,
    },
    /// An evaluation of a sensor.
    Sensor {
        /// The sensor's name.
        name: String,
    },
    /// An evaluation of declarative automation (`#[asset(automation = ...)]`).
    Automation,
}

impl Trigger {
    /// The stored spelling of the trigger's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Backfill { .. } => "backfill",
            Trigger::Reexecution => "reexecution",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Sensor { .. } => "sensor",
            Trigger::Automation => "automation",
        }
    }

    /// Details beyond the kind (the backfill id), as stored.
    pub(crate) fn detail(&self) -> Option<&str> {
        match self {
            Trigger::Backfill { backfill_id } => Some(backfill_id),
            Trigger::Schedule { name } | Trigger::Sensor { name } => Some(name),
            _ => None,
        }
    }

    /// Reads a stored trigger. Runs recorded before triggers were structured said `cli`,
    /// `api`, `backfill` or `reexecute <id>`.
    pub(crate) fn from_stored(kind: &str, detail: Option<String>) -> Trigger {
        match kind {
            "backfill" => Trigger::Backfill {
                backfill_id: detail.unwrap_or_default(),
            },
            k if k == "reexecution" || k.starts_with("reexecute") => Trigger::Reexecution,
            "schedule" => Trigger::Schedule {
                name: detail.unwrap_or_default(),
            },
            "sensor" => Trigger::Sensor {
                name: detail.unwrap_or_default(),
            },
            "automation" => Trigger::Automation,
            _ => Trigger::Manual,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Backfill { backfill_id } if !backfill_id.is_empty() => {
                write!(f, "backfill {backfill_id}")
            }
            Trigger::Schedule { name } => write!(f, "schedule {name}"),
            Trigger::Sensor { name } => write!(f, "sensor {name}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// A run to make: its target, partitions, tags, trigger and parent. Built by the command
/// line, by [`Backfill`](crate::Backfill) and [`Reexecution`](crate::Reexecution), and by
/// programs embedding orch; submitted with [`Instance::submit`](crate::Instance::submit) or run
/// with [`Materialize`](crate::Materialize). The run store keeps it field by field, so a later
/// process can re-execute the run exactly.
///
/// ```
/// use orch_runtime::{RunRequest, Trigger};
/// let request = RunRequest::select("+report")?
///     .partition("2024-01-05")
///     .tag("team", "data");
/// assert_eq!(request.trigger(), &Trigger::Manual);
/// # Ok::<(), orch_core::SelectionError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RunRequest {
    pub(crate) target: RunTarget,
    pub(crate) partitions: PartitionScope,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) trigger: Trigger,
    pub(crate) parent: Option<RunId>,
    pub(crate) only_stale: bool,
    /// An op job's run config.
    pub(crate) config: Option<std::sync::Arc<orch_core::RunConfig>>,
}

impl RunRequest {
    /// Every asset.
    pub fn all() -> Self {
        Self::selection(AssetSelection::All)
    }

    /// The assets of a selection.
    pub fn selection(selection: AssetSelection) -> Self {
        RunRequest {
            target: RunTarget::Selection(selection),
            partitions: PartitionScope::None,
            tags: BTreeMap::new(),
            trigger: Trigger::Manual,
            parent: None,
            only_stale: false,
            config: None,
        }
    }

    /// All the steps of op job `name` (`#[job]`).
    pub fn job(name: impl Into<String>) -> Self {
        RunRequest {
            target: RunTarget::Job {
                name: name.into(),
                steps: Vec::new(),
            },
            ..Self::all()
        }
    }

    /// The run config an op job's `#[config]` parameters read (checked before anything runs).
    pub fn config(mut self, config: orch_core::RunConfig) -> Self {
        self.config = (!config.is_empty()).then(|| std::sync::Arc::new(config));
        self
    }

    /// The run config, if one was given.
    pub fn run_config(&self) -> Option<&orch_core::RunConfig> {
        self.config.as_deref()
    }

    /// The assets of a selection in the CLI's syntax (`"+report"`, `"group:sources"`).
    pub fn select(selection: &str) -> Result<Self, orch_core::SelectionError> {
        Ok(Self::selection(selection.parse()?))
    }

    /// Materializes partition `key` of the targeted partitioned assets.
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.partitions = PartitionScope::Key(key.into());
        self
    }

    /// Materializes consecutive partitions `keys` in one run (see [`PartitionScope::Range`]).
    pub fn partition_range<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.partitions = PartitionScope::Range(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the partition scope.
    pub fn partitions(mut self, scope: PartitionScope) -> Self {
        self.partitions = scope;
        self
    }

    /// Adds a tag (kept with the run; `runs --tag k=v` and the store's filters find it).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Says what started the run (default [`Trigger::Manual`]).
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// Sets what started the run.
    pub fn with_trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Records `parent` as the run this one repeats or follows.
    pub fn parent(mut self, parent: RunId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Narrows the target to the assets that are stale; their up-to-date inputs load from
    /// storage.
    pub fn only_stale(mut self) -> Self {
        self.only_stale = true;
        self
    }

    /// The target.
    pub fn target(&self) -> &RunTarget {
        &self.target
    }

    /// The partition scope.
    pub fn partition_scope(&self) -> &PartitionScope {
        &self.partitions
    }

    /// The tags.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// The parent run, for re-executions.
    pub fn parent_run(&self) -> Option<&RunId> {
        self.parent.as_ref()
    }

    /// Whether the target is narrowed to stale assets.
    pub fn is_only_stale(&self) -> bool {
        self.only_stale
    }
}

impl fmt::Display for RunRequest {
    /// `stale in (+report) partition 2024-01-05`: the target, the stale flag and the scope.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.only_stale {
            true => write!(f, "stale in ({})", self.target)?,
            false => write!(f, "{}", self.target)?,
        }
        if self.partitions != PartitionScope::None {
            write!(f, " {}", self.partitions)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_round_trips_through_its_stored_form_in_order() {
        let range = PartitionScope::Range(vec!["eu".into(), "us".into(), "apac".into()]);
        let back = PartitionScope::from_stored(range.kind(), range.keys().to_vec());
        assert_eq!(back, range);
        let key = PartitionScope::Key("2024-01-05".into());
        assert_eq!(
            PartitionScope::from_stored(key.kind(), key.keys().to_vec()),
            key
        );
        assert_eq!(
            PartitionScope::from_stored(None, Vec::new()),
            PartitionScope::None
        );
    }

    #[test]
    fn old_trigger_spellings_read_back() {
        assert_eq!(Trigger::from_stored("cli", None), Trigger::Manual);
        assert_eq!(
            Trigger::from_stored("reexecute 1a2b3c4d", None),
            Trigger::Reexecution
        );
        assert_eq!(
            Trigger::from_stored("backfill", Some("b1".into())),
            Trigger::Backfill {
                backfill_id: "b1".into()
            }
        );
    }

    #[test]
    fn a_request_displays_its_target_and_scope() {
        let request = RunRequest::select("+report")
            .unwrap()
            .only_stale()
            .partition("2024-01-05");
        assert_eq!(
            request.to_string(),
            "stale in (+report) partition 2024-01-05"
        );
    }
}
