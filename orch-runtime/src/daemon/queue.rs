//! The run queue's rule: which queued runs may start now, oldest first, under a cap on runs
//! in progress and per-tag caps (Dagster's `QueuedRunCoordinator` with
//! `max_concurrent_runs` and `tag_concurrency_limits`). Pure, so it is tested without a
//! store; the daemon feeds it what the store says is queued and in progress.

use std::collections::BTreeMap;

use orch_core::RunId;

use crate::storage::RunRecord;

/// At most `limit` runs in progress at once among those tagged `key` (= `value`, or any value
/// when `value` is `None`; with `per_value`, `limit` applies to each value separately).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagLimit {
    /// The tag's key.
    pub key: String,
    /// The tag's value; any value when absent.
    #[serde(default)]
    pub value: Option<String>,
    /// How many such runs may be in progress at once.
    pub limit: usize,
    /// Whether `limit` applies to each value of `key` on its own.
    #[serde(default)]
    pub per_value: bool,
}

/// The queue's limits (`[queue]` in `orch.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Runs in progress at once, across everything the daemon launches (default 10).
    pub max_concurrent_runs: usize,
    /// Per-tag caps, all of which a run must fit.
    pub tag_limits: Vec<TagLimit>,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_concurrent_runs: 10,
            tag_limits: Vec::new(),
        }
    }
}

impl TagLimit {
    /// The bucket a run counts in for this limit, if it counts at all.
    fn bucket<'r>(&self, run: &'r RunRecord) -> Option<Option<&'r str>> {
        let value = run.tags.get(&self.key)?;
        match &self.value {
            Some(wanted) if wanted != value => None,
            Some(_) => Some(None),
            None if self.per_value => Some(Some(value.as_str())),
            None => Some(None),
        }
    }
}

/// The queued runs that may start now, in the order to start them: oldest first, each
/// counted against the limits as if started, so one call never overshoots. A run that does
/// not fit a tag limit waits without blocking the runs behind it.
pub(crate) fn runs_to_start(
    limits: &QueueLimits,
    queued_oldest_first: &[RunRecord],
    in_progress: &[&RunRecord],
) -> Vec<RunId> {
    let mut running = in_progress.len();
    let mut counts: Vec<BTreeMap<Option<String>, usize>> =
        vec![BTreeMap::new(); limits.tag_limits.len()];
    for run in in_progress {
        for (limit, count) in limits.tag_limits.iter().zip(&mut counts) {
            if let Some(bucket) = limit.bucket(run) {
                *count.entry(bucket.map(str::to_owned)).or_default() += 1;
            }
        }
    }
    let mut start = Vec::new();
    for run in queued_oldest_first {
        if running >= limits.max_concurrent_runs {
            break;
        }
        let fits = limits.tag_limits.iter().zip(&counts).all(|(limit, count)| {
            limit.bucket(run).is_none_or(|bucket| {
                count.get(&bucket.map(str::to_owned)).copied().unwrap_or(0) < limit.limit
            })
        });
        if !fits {
            continue;
        }
        for (limit, count) in limits.tag_limits.iter().zip(&mut counts) {
            if let Some(bucket) = limit.bucket(run) {
                *count.entry(bucket.map(str::to_owned)).or_default() += 1;
            }
        }
        running += 1;
        start.push(run.id.clone());
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunRequest;

    fn run(id: &str, tags: &[(&str, &str)]) -> RunRecord {
        let mut request = RunRequest::all();
        for (k, v) in tags {
            request = request.tag(*k, *v);
        }
        RunRecord::queued(RunId::from(id), &request)
    }

    fn ids(runs: Vec<RunId>) -> Vec<String> {
        runs.into_iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn the_cap_counts_runs_in_progress_and_those_started_now() {
        let limits = QueueLimits {
            max_concurrent_runs: 3,
            tag_limits: Vec::new(),
        };
        let queued = [run("a", &[]), run("b", &[]), run("c", &[])];
        let going = run("x", &[]);
        assert_eq!(ids(runs_to_start(&limits, &queued, &[&going])), ["a", "b"]);
        assert!(runs_to_start(&limits, &queued, &[&going, &going, &going]).is_empty());
    }

    #[test]
    fn a_tag_limit_holds_back_only_the_runs_it_covers() {
        let limits = QueueLimits {
            max_concurrent_runs: 10,
            tag_limits: vec![TagLimit {
                key: "db".into(),
                value: Some("warehouse".into()),
                limit: 1,
                per_value: false,
            }],
        };
        let queued = [
            run("a", &[("db", "warehouse")]),
            run("b", &[("db", "warehouse")]),
            run("c", &[("db", "lake")]),
            run("d", &[]),
        ];
        assert_eq!(ids(runs_to_start(&limits, &queued, &[])), ["a", "c", "d"]);
        let going = run("x", &[("db", "warehouse")]);
        assert_eq!(ids(runs_to_start(&limits, &queued, &[&going])), ["c", "d"]);
    }

    #[test]
    fn a_per_value_limit_counts_each_value_apart() {
        let limits = QueueLimits {
            max_concurrent_runs: 10,
            tag_limits: vec![TagLimit {
                key: "team".into(),
                value: None,
                limit: 1,
                per_value: true,
            }],
        };
        let queued = [
            run("a", &[("team", "data")]),
            run("b", &[("team", "data")]),
            run("c", &[("team", "ml")]),
        ];
        assert_eq!(ids(runs_to_start(&limits, &queued, &[])), ["a", "c"]);
        // Without per_value, one limit for the key as a whole.
        let whole = QueueLimits {
            tag_limits: vec![TagLimit {
                per_value: false,
                ..limits.tag_limits[0].clone()
            }],
            ..limits
        };
        assert_eq!(ids(runs_to_start(&whole, &queued, &[])), ["a"]);
    }
}
