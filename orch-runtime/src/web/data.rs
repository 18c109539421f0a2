//! What the pages show, read from the instance and the store: one function per view, each
//! returning a serializable value that `/api/...` sends as JSON and the HTML pages render.
//! Nothing here writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::Timestamp;
use orch_core::{AssetGraph, AssetId, AssetKey, FreshnessState, MetadataValue};
use serde::Serialize;

use super::{Ui, WebError};
use crate::automation::{JOB_TAG, freshness_states, target_text};
use crate::daemon::DAEMON_LEASE;
use crate::run::{PartitionSpanState, partition_states};
use crate::staleness::{StaleInputs, staleness};
use crate::storage::{
    EventKind, EventRecord, InstigatorStatus, LogPage, LogRecord, RunFilter, RunRecord, RunStatus,
    Storage,
};

/// An instant as RFC 3339 (UTC, milliseconds).
pub(super) fn instant(t: SystemTime) -> String {
    Timestamp::try_from(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Milliseconds since the epoch (for plots and timelines).
fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One run, as lists show it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct RunSummary {
    pub(crate) id: String,
    pub(crate) short: String,
    pub(crate) status: &'static str,
    pub(crate) finished: bool,
    pub(crate) target: String,
    pub(crate) trigger: String,
    pub(crate) job: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) started: String,
    pub(crate) started_ms: i64,
    pub(crate) ended: Option<String>,
    pub(crate) duration_ms: Option<i64>,
    pub(crate) planned: u32,
    pub(crate) materialized: u32,
    pub(crate) failed: u32,
    pub(crate) skipped: u32,
    pub(crate) parent: Option<String>,
}

impl RunSummary {
    pub(crate) fn of(run: &RunRecord) -> RunSummary {
        RunSummary {
            id: run.id.to_string(),
            short: run.id.short().to_owned(),
            status: run.status.as_str(),
            finished: run.status.is_finished(),
            target: run.describe(),
            trigger: run.trigger.to_string(),
            job: run.tags.get(JOB_TAG).cloned(),
            tags: run
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            started: instant(run.started),
            started_ms: millis(run.started),
            ended: run.ended.map(instant),
            duration_ms: run.ended.map(|e| millis(e) - millis(run.started)),
            planned: run.planned,
            materialized: run.counts.0,
            failed: run.counts.1,
            skipped: run.counts.2,
            parent: run.parent.as_ref().map(ToString::to_string),
        }
    }
}

/// The latest check results of one asset, counted.
#[derive(Serialize, Debug, Default, Clone, Copy)]
pub(crate) struct CheckCounts {
    pub(crate) passed: u32,
    pub(crate) warned: u32,
    pub(crate) failed: u32,
}

/// One asset, as the list and the graph show it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct AssetSummary {
    pub(crate) key: String,
    pub(crate) group: &'static str,
    pub(crate) description: Option<&'static str>,
    /// `materialized`, `failed`, `running` or `never`.
    pub(crate) status: &'static str,
    pub(crate) last_materialized: Option<String>,
    /// Why it is stale, if it is.
    pub(crate) stale: Option<String>,
    /// `pass`, `warn`, `fail` or `unknown` (only with a freshness policy).
    pub(crate) freshness: Option<&'static str>,
    pub(crate) freshness_detail: Option<String>,
    pub(crate) checks: CheckCounts,
    pub(crate) partitions: Option<String>,
    pub(crate) upstream: Vec<String>,
    pub(crate) downstream: Vec<String>,
}

/// Everything the asset list, the graph and the overview need about every asset, read in a
/// few queries (not one per asset).
pub(crate) fn asset_summaries(ui: &Ui) -> Result<Arc<Vec<AssetSummary>>, WebError> {
    // Every open page refreshes on every event: the summaries are computed once per change
    // of the store (its latest event), and at least every few seconds (freshness is a
    // matter of time too).
    let seq = ui.instance.storage().latest_seq()?;
    let mut cache = ui.summaries.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at_seq, at, summaries)) = &*cache
        && *at_seq == seq
        && at.elapsed() < SUMMARIES_FOR
    {
        return Ok(Arc::clone(summaries));
    }
    let summaries = Arc::new(compute_summaries(ui)?);
    *cache = Some((seq, std::time::Instant::now(), Arc::clone(&summaries)));
    Ok(summaries)
}

/// How long cached summaries stand when nothing was recorded.
const SUMMARIES_FOR: std::time::Duration = std::time::Duration::from_secs(5);

fn compute_summaries(ui: &Ui) -> Result<Vec<AssetSummary>, WebError> {
    let graph = ui.graph;
    let store = &**ui.instance.storage();
    let states = store.asset_states()?;
    let inputs = StaleInputs::load(graph, store)?;
    let stale = staleness(graph, &inputs);
    let freshness: HashMap<String, (FreshnessState, String)> =
        freshness_states(&ui.instance, ui.automation, Timestamp::now())?
            .into_iter()
            .map(|f| (f.asset.to_string(), (f.state, f.detail)))
            .collect();
    let mut checks: HashMap<String, CheckCounts> = HashMap::new();
    for e in store.check_results(None, true, 0)? {
        let (Some(asset), Some(check)) = (&e.asset, &e.check) else {
            continue;
        };
        let counts = checks.entry(asset.to_string()).or_default();
        match (check.passed, check.severity) {
            (true, _) => counts.passed += 1,
            (false, orch_core::CheckSeverity::Warn) => counts.warned += 1,
            (false, _) => counts.failed += 1,
        }
    }
    let running = running_assets(store)?;
    let keys = |ids: &[AssetId]| -> Vec<String> {
        ids.iter().map(|&i| graph.node(i).key.to_string()).collect()
    };
    Ok(graph
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let key = node.key.to_string();
            let state = states.get(&key);
            let status = match state.and_then(|s| s.last_status) {
                _ if running.contains(&key) => "running",
                Some(EventKind::Materialized) => "materialized",
                Some(EventKind::Failed) => "failed",
                _ if state.and_then(|s| s.last_materialized).is_some() => "materialized",
                _ => "never",
            };
            let fresh = freshness.get(&key);
            AssetSummary {
                group: node.group(),
                description: node.def.description(),
                status,
                last_materialized: state.and_then(|s| s.last_materialized).map(instant),
                stale: stale.of(i).map(ToString::to_string),
                freshness: fresh.map(|(s, _)| s.as_str()),
                freshness_detail: fresh.map(|(_, d)| d.clone()),
                checks: checks.get(&key).copied().unwrap_or_default(),
                partitions: node.partitions.as_ref().map(|p| p.describe()),
                upstream: keys(&node.upstream),
                downstream: keys(&node.downstream),
                key,
            }
        })
        .collect())
}

/// The assets that a run in progress is materializing now (started, not yet ended).
fn running_assets(store: &dyn Storage) -> Result<std::collections::HashSet<String>, WebError> {
    let mut running = std::collections::HashSet::new();
    let filter = RunFilter::recent(50).status(RunStatus::Running);
    for run in store.runs(&filter)? {
        let mut open: HashMap<String, bool> = HashMap::new();
        for e in store.events(run.id.as_str())? {
            let Some(asset) = &e.asset else { continue };
            match e.kind {
                EventKind::Started | EventKind::Retried => {
                    open.insert(asset.to_string(), true);
                }
                EventKind::Materialized
                | EventKind::Failed
                | EventKind::Skipped
                | EventKind::Canceled => {
                    open.insert(asset.to_string(), false);
                }
                _ => {}
            }
        }
        running.extend(open.into_iter().filter(|(_, o)| *o).map(|(k, _)| k));
    }
    Ok(running)
}

/// The overview: what is running, what failed, the assets' health, what ticks next and
/// whether a daemon is alive.
#[derive(Serialize, Debug)]
pub(crate) struct Overview {
    pub(crate) in_progress: Vec<RunSummary>,
    pub(crate) recent_failures: Vec<RunSummary>,
    pub(crate) recent_runs: Vec<RunSummary>,
    pub(crate) health: Health,
    pub(crate) next_ticks: Vec<NextTick>,
    pub(crate) daemon: Option<DaemonStatus>,
    pub(crate) paused: bool,
}

/// Counts of assets by state.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Health {
    pub(crate) assets: usize,
    pub(crate) materialized: usize,
    pub(crate) never: usize,
    pub(crate) failed: usize,
    pub(crate) stale: usize,
    pub(crate) fresh: usize,
    pub(crate) freshness_warn: usize,
    pub(crate) freshness_fail: usize,
    pub(crate) checks_failed: usize,
}

/// A schedule's next tick.
#[derive(Serialize, Debug)]
pub(crate) struct NextTick {
    pub(crate) schedule: &'static str,
    pub(crate) at: String,
    pub(crate) running: bool,
}

/// Who holds the daemon lease, and whether it is alive.
#[derive(Serialize, Debug)]
pub(crate) struct DaemonStatus {
    pub(crate) holder: String,
    pub(crate) heartbeat: String,
    pub(crate) alive: bool,
}

pub(crate) fn overview(ui: &Ui) -> Result<Overview, WebError> {
    let store = &**ui.instance.storage();
    let summaries = asset_summaries(ui)?;
    let mut health = Health {
        assets: summaries.len(),
        ..Health::default()
    };
    for a in summaries.iter() {
        match a.status {
            "materialized" => health.materialized += 1,
            "failed" => health.failed += 1,
            "never" => health.never += 1,
            _ => {}
        }
        if a.stale.is_some() {
            health.stale += 1;
        }
        match a.freshness {
            Some("pass") => health.fresh += 1,
            Some("warn") => health.freshness_warn += 1,
            Some("fail") => health.freshness_fail += 1,
            _ => {}
        }
        if a.checks.failed > 0 {
            health.checks_failed += 1;
        }
    }
    let in_progress = store
        .runs(
            &RunFilter::recent(20)
                .status(RunStatus::Queued)
                .status(RunStatus::Starting)
                .status(RunStatus::Running),
        )?
        .iter()
        .map(RunSummary::of)
        .collect();
    let recent_failures = store
        .runs(
            &RunFilter::recent(5)
                .status(RunStatus::Failed)
                .status(RunStatus::Crashed),
        )?
        .iter()
        .map(RunSummary::of)
        .collect();
    let recent_runs = store
        .runs(&RunFilter::recent(10))?
        .iter()
        .map(RunSummary::of)
        .collect();
    let states = store.instigator_states()?;
    let now = Timestamp::now();
    let mut next_ticks: Vec<(Timestamp, NextTick)> = ui
        .automation
        .schedules()
        .iter()
        .filter_map(|(s, cron)| {
            let next = cron.next_after(now)?;
            Some((
                next.timestamp(),
                NextTick {
                    schedule: s.name(),
                    at: next.strftime("%Y-%m-%d %H:%M %Z").to_string(),
                    running: status_of(&states, s.name(), s.default_status())
                        == InstigatorStatus::Running,
                },
            ))
        })
        .collect();
    next_ticks.sort_by_key(|(t, _)| *t);
    let daemon = store.lease(DAEMON_LEASE)?.map(|l| DaemonStatus {
        holder: l.description,
        heartbeat: instant(l.heartbeat),
        alive: l.expires > SystemTime::now(),
    });
    Ok(Overview {
        in_progress,
        recent_failures,
        recent_runs,
        health,
        next_ticks: next_ticks.into_iter().take(5).map(|(_, t)| t).collect(),
        daemon,
        paused: store.automation_paused()?,
    })
}

/// A schedule's or sensor's status: as set in the store, or its declared default.
pub(crate) fn status_of(
    states: &HashMap<String, crate::storage::InstigatorState>,
    name: &str,
    default: orch_core::DefaultStatus,
) -> InstigatorStatus {
    match states.get(name) {
        Some(state) => state.status,
        None => match default {
            orch_core::DefaultStatus::Running => InstigatorStatus::Running,
            orch_core::DefaultStatus::Stopped => InstigatorStatus::Stopped,
        },
    }
}

/// One asset in full.
#[derive(Serialize, Debug)]
pub(crate) struct AssetDetail {
    pub(crate) summary: AssetSummary,
    pub(crate) owners: Vec<&'static str>,
    pub(crate) tags: Vec<(&'static str, &'static str)>,
    pub(crate) code_version: &'static str,
    pub(crate) output_type: &'static str,
    pub(crate) source: String,
    pub(crate) automation: Option<String>,
    pub(crate) freshness_policy: Option<String>,
    pub(crate) materializations: Vec<Materialization>,
    /// Each numeric metadata value over time, oldest first: `(name, [(ms, value)])`.
    pub(crate) series: Vec<(String, Vec<(i64, f64)>)>,
    pub(crate) checks: Vec<CheckResultView>,
    pub(crate) evaluation: Option<Evaluation>,
    pub(crate) partitions: Option<PartitionBar>,
    /// The latest materialization's preview of its frame (the first rows, as text), and its
    /// schema.
    pub(crate) preview: Option<String>,
    pub(crate) schema: Option<String>,
}

/// One materialization.
#[derive(Serialize, Debug)]
pub(crate) struct Materialization {
    pub(crate) run_id: String,
    pub(crate) run_short: String,
    pub(crate) at: String,
    pub(crate) partition: Option<String>,
    pub(crate) duration_ms: Option<u128>,
    pub(crate) data_version: Option<String>,
    pub(crate) metadata: Vec<(String, String)>,
}

/// One check result.
#[derive(Serialize, Debug)]
pub(crate) struct CheckResultView {
    pub(crate) check: String,
    pub(crate) passed: bool,
    pub(crate) severity: &'static str,
    pub(crate) blocking: bool,
    pub(crate) at: String,
    pub(crate) run_id: String,
    pub(crate) detail: String,
}

/// The latest evaluation of an asset's automation condition.
#[derive(Serialize, Debug)]
pub(crate) struct Evaluation {
    pub(crate) condition: String,
    pub(crate) evaluated: String,
    pub(crate) requested: bool,
    pub(crate) last_requested: Option<String>,
    pub(crate) last_run: Option<String>,
    /// The recorded tree, one line per sub-condition (as `automation explain` prints it).
    pub(crate) tree: String,
}

/// A partitioned asset's partitions as runs of one state, in key order.
#[derive(Serialize, Debug)]
pub(crate) struct PartitionBar {
    pub(crate) definition: String,
    pub(crate) total: usize,
    pub(crate) materialized: usize,
    pub(crate) failed: usize,
    pub(crate) missing: usize,
    /// The spans of one state in key order, or, past [`BAR_SEGMENTS`] spans, that many equal
    /// buckets of partitions, each in the state most of its partitions are in (`failed` if any
    /// failed).
    pub(crate) spans: Vec<BarSegment>,
    /// Whether `spans` are buckets rather than exact spans.
    pub(crate) bucketed: bool,
}

/// One segment of a partition bar.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct BarSegment {
    /// `materialized`, `failed` or `missing`.
    pub(crate) state: &'static str,
    pub(crate) first: String,
    pub(crate) last: String,
    pub(crate) count: usize,
}

/// At most this many segments in a partition bar (a bar is about 1,000 pixels wide).
pub(crate) const BAR_SEGMENTS: usize = 400;

/// The bar's segments: the spans as they are when there are few, else equal buckets of
/// partitions, each naming its own first and last key.
fn bar_segments(keys: &[String], states: &[PartitionSpanState]) -> (Vec<BarSegment>, bool) {
    let spans = crate::run::partitions::fold_spans(keys, states);
    if spans.len() <= BAR_SEGMENTS {
        let exact = spans
            .into_iter()
            .map(|s| BarSegment {
                state: s.state.as_str(),
                first: s.first,
                last: s.last,
                count: s.count,
            })
            .collect();
        return (exact, false);
    }
    let per = keys.len().div_ceil(BAR_SEGMENTS);
    let buckets = keys
        .chunks(per)
        .zip(states.chunks(per))
        .map(|(keys, states)| {
            let count = |want| states.iter().filter(|&&s| s == want).count();
            let state = match (
                count(PartitionSpanState::Materialized),
                count(PartitionSpanState::Failed),
                count(PartitionSpanState::Missing),
            ) {
                (_, f, _) if f > 0 => PartitionSpanState::Failed,
                (m, _, n) if m >= n => PartitionSpanState::Materialized,
                _ => PartitionSpanState::Missing,
            };
            BarSegment {
                state: state.as_str(),
                first: keys[0].clone(),
                last: keys[keys.len() - 1].clone(),
                count: keys.len(),
            }
        })
        .collect();
    (buckets, true)
}

/// Resolves an asset key typed in a URL or a request: a 404 naming the closest asset if it
/// is not one.
pub(crate) fn asset_id(graph: &AssetGraph, key: &str) -> Result<AssetId, WebError> {
    key.parse::<AssetKey>()
        .ok()
        .and_then(|k| graph.id_of(&k))
        .ok_or_else(|| {
            let keys: Vec<String> = graph.nodes().iter().map(|n| n.key.to_string()).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            WebError::NotFound(match orch_core::__private::closest(key, &keys) {
                Some(near) => format!("`{key}` is not an asset: did you mean `{near}`?"),
                None => format!("`{key}` is not an asset"),
            })
        })
}

pub(crate) fn asset_detail(ui: &Ui, key: &str) -> Result<AssetDetail, WebError> {
    let graph = ui.graph;
    let id = asset_id(graph, key)?;
    let node = graph.node(id);
    let key = node.key.to_string();
    let store = &**ui.instance.storage();
    let summary = asset_summaries(ui)?
        .get(id)
        .cloned()
        .ok_or_else(|| WebError::NotFound(format!("`{key}` is not an asset")))?;
    let events = store.materializations(&key, 50)?;
    let mut series: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    for e in events.iter().rev() {
        let mut numbers: Vec<(String, f64)> = e
            .metadata
            .iter()
            .filter_map(|(k, v)| match v {
                MetadataValue::Int(n) => Some((k.clone(), *n as f64)),
                MetadataValue::Float(f) if f.is_finite() => Some((k.clone(), *f)),
                _ => None,
            })
            .collect();
        if let Some(d) = e.duration {
            numbers.push(("duration (s)".to_owned(), d.as_secs_f64()));
        }
        for (name, value) in numbers {
            let at = millis(e.time);
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push((at, value)),
                None => series.push((name, vec![(at, value)])),
            }
        }
    }
    let latest_text = |name: &str| {
        events.first().and_then(|e| {
            e.metadata
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let (preview, schema) = (latest_text("preview"), latest_text("schema"));
    let materializations = events.iter().map(materialization).collect();
    let checks = store
        .check_results(Some(&key), false, 50)?
        .iter()
        .filter_map(check_view)
        .collect();
    let evaluation = store.automation_asset(&key)?.map(|a| Evaluation {
        condition: a.condition,
        evaluated: instant(a.evaluated),
        requested: a.result,
        last_requested: a.requested.map(instant),
        last_run: a.requested_run.map(|r| r.to_string()),
        tree: a.tree,
    });
    let partitions = match &node.partitions {
        Some(p) => {
            let (keys, states) = partition_states(Some(store), node)?;
            let count = |want: PartitionSpanState| states.iter().filter(|&&s| s == want).count();
            let (segments, bucketed) = bar_segments(&keys, &states);
            Some(PartitionBar {
                definition: p.describe(),
                total: keys.len(),
                materialized: count(PartitionSpanState::Materialized),
                failed: count(PartitionSpanState::Failed),
                missing: count(PartitionSpanState::Missing),
                spans: segments,
                bucketed,
            })
        }
        None => None,
    };
    let location = node.def.location();
    Ok(AssetDetail {
        owners: node.def.owners().to_vec(),
        tags: node.def.tags().to_vec(),
        code_version: node.def.code_version(),
        output_type: node.def.output_type(),
        source: format!("{}:{}", location.file, location.line),
        automation: ui
            .automation
            .conditions()
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, text)| text.clone()),
        freshness_policy: ui
            .automation
            .freshness()
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, p, _)| p.to_string()),
        summary,
        materializations,
        series,
        checks,
        evaluation,
        partitions,
        preview,
        schema,
    })
}

fn materialization(e: &EventRecord) -> Materialization {
    Materialization {
        run_id: e.run_id.to_string(),
        run_short: e.run_id.short().to_owned(),
        at: instant(e.time),
        partition: e.partition.clone(),
        duration_ms: e.duration.map(|d| d.as_millis()),
        data_version: e.data_version.clone(),
        metadata: e
            .metadata
            .iter()
            .filter(|(k, _)| k != "preview" && k != "schema")
            .map(|(k, v)| {
                let text = v.to_string();
                match text.split_once('\n') {
                    Some((first, _)) => (k.clone(), format!("{first} …")),
                    None => (k.clone(), text),
                }
            })
            .collect(),
    }
}

fn check_view(e: &EventRecord) -> Option<CheckResultView> {
    let check = e.check.as_ref()?;
    Some(CheckResultView {
        check: check.name.clone(),
        passed: check.passed,
        severity: check.severity.as_str(),
        blocking: check.blocking,
        at: instant(e.time),
        run_id: e.run_id.to_string(),
        detail: e.message.clone().unwrap_or_default(),
    })
}

/// One run in full: its record, one step per asset (for the timeline) and its events.
#[derive(Serialize, Debug)]
pub(crate) struct RunDetail {
    pub(crate) run: RunSummary,
    pub(crate) steps: Vec<Step>,
    pub(crate) events: Vec<EventView>,
    /// The first failure's message (the error and its cause).
    pub(crate) error: Option<String>,
    pub(crate) cancel_requested: bool,
}

/// One asset (and partition) of a run: when it started and ended, how.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Step {
    pub(crate) asset: String,
    pub(crate) partition: Option<String>,
    pub(crate) status: &'static str,
    /// Milliseconds from the run's start.
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) attempts: u32,
}

/// One event, as the run page lists it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct EventView {
    pub(crate) seq: u64,
    pub(crate) at: String,
    pub(crate) asset: Option<String>,
    pub(crate) partition: Option<String>,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

pub(crate) fn event_view(e: &EventRecord) -> EventView {
    let message = e.detail();
    EventView {
        seq: e.seq.unwrap_or(0),
        at: instant(e.time),
        asset: e.asset.as_ref().map(ToString::to_string),
        partition: e.partition.clone(),
        kind: e.kind.as_str(),
        message,
    }
}

pub(crate) fn run_detail(ui: &Ui, id: &str) -> Result<RunDetail, WebError> {
    let store = &**ui.instance.storage();
    let run = store.run(id)?;
    let events = store.events(run.id.as_str())?;
    let start = millis(run.started);
    let mut steps: Vec<Step> = Vec::new();
    let mut error = None;
    for e in &events {
        let Some(asset) = &e.asset else { continue };
        if e.kind == EventKind::CheckEvaluated {
            continue;
        }
        let asset = asset.to_string();
        let at = millis(e.time) - start;
        let i = match steps
            .iter()
            .position(|s| s.asset == asset && s.partition == e.partition)
        {
            Some(i) => i,
            None => {
                steps.push(Step {
                    asset,
                    partition: e.partition.clone(),
                    status: "planned",
                    start_ms: None,
                    end_ms: None,
                    attempts: 0,
                });
                steps.len() - 1
            }
        };
        let step = &mut steps[i];
        match e.kind {
            EventKind::Started => {
                step.start_ms.get_or_insert(at);
                step.status = "running";
                step.attempts = step.attempts.max(e.attempt.unwrap_or(1));
            }
            EventKind::Retried => step.status = "retrying",
            EventKind::Materialized => {
                step.status = "materialized";
                step.end_ms = Some(at);
            }
            EventKind::Failed => {
                step.status = "failed";
                step.end_ms = Some(at);
                if error.is_none() {
                    error = Some(format!(
                        "{}: {}",
                        step.asset,
                        e.message.as_deref().unwrap_or("failed")
                    ));
                }
            }
            EventKind::Skipped => step.status = "skipped",
            EventKind::Canceled => step.status = "canceled",
            _ => {}
        }
    }
    Ok(RunDetail {
        run: RunSummary::of(&run),
        steps,
        events: events.iter().map(event_view).collect(),
        error,
        cancel_requested: store.cancel_requested(run.id.as_str())?,
    })
}

/// One log line, with its id (what a follower resumes from).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) id: u64,
    pub(crate) at: String,
    pub(crate) asset: String,
    pub(crate) level: String,
    pub(crate) message: String,
}

pub(crate) fn log_line((id, l): (u64, LogRecord)) -> LogLine {
    LogLine {
        id,
        at: instant(l.time),
        asset: l.asset,
        level: l.level.to_string(),
        message: l.message,
    }
}

/// A page of a run's log lines: the last `limit` before `before` (default: the end).
pub(crate) fn log_page(
    ui: &Ui,
    run: &str,
    before: Option<u64>,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<LogLine>, WebError> {
    let store = &**ui.instance.storage();
    let run = store.run(run)?;
    let limit = limit.clamp(1, 5_000);
    let page = match (after, before) {
        (Some(id), _) => LogPage::After { id, limit },
        (None, before) => LogPage::Before {
            id: before.unwrap_or(u64::MAX),
            limit,
        },
    };
    Ok(store
        .logs_page(run.id.as_str(), page)?
        .into_iter()
        .map(log_line)
        .collect())
}

/// One asset job.
#[derive(Serialize, Debug)]
pub(crate) struct JobView {
    pub(crate) name: &'static str,
    pub(crate) selection: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) assets: Vec<String>,
    pub(crate) schedules: Vec<&'static str>,
    pub(crate) runs: Vec<RunSummary>,
}

pub(crate) fn jobs(ui: &Ui, runs_per_job: usize) -> Result<Vec<JobView>, WebError> {
    let store = &**ui.instance.storage();
    ui.automation
        .jobs()
        .iter()
        .map(|job| {
            let assets = job
                .selection()
                .parse::<orch_core::AssetSelection>()
                .ok()
                .and_then(|s| s.resolve(ui.graph).ok())
                .map(|ids| {
                    ids.iter()
                        .map(|&i| ui.graph.node(i).key.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let schedules = ui
                .automation
                .schedules()
                .iter()
                .filter(|(s, _)| s.target() == orch_core::ScheduleTarget::Job(job.name()))
                .map(|(s, _)| s.name())
                .collect();
            let runs = match runs_per_job {
                0 => Vec::new(),
                n => store
                    .runs(&RunFilter::recent(n).tag(JOB_TAG, job.name()))?
                    .iter()
                    .map(RunSummary::of)
                    .collect(),
            };
            Ok(JobView {
                name: job.name(),
                selection: job.selection(),
                description: job.description(),
                assets,
                schedules,
                runs,
            })
        })
        .collect()
}

/// One schedule.
#[derive(Serialize, Debug)]
pub(crate) struct ScheduleView {
    pub(crate) name: &'static str,
    pub(crate) target: String,
    pub(crate) cron: &'static str,
    pub(crate) timezone: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) running: bool,
    pub(crate) next: Vec<String>,
    pub(crate) ticks: Vec<TickView>,
}

/// One recorded tick (of a schedule or a sensor).
#[derive(Serialize, Debug)]
pub(crate) struct TickView {
    pub(crate) at: String,
    pub(crate) status: &'static str,
    pub(crate) runs: Vec<String>,
    pub(crate) reason: Option<String>,
}

/// One sensor.
#[derive(Serialize, Debug)]
pub(crate) struct SensorView {
    pub(crate) name: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) interval: String,
    pub(crate) description: Option<&'static str>,
    pub(crate) running: bool,
    pub(crate) cursor: Option<String>,
    pub(crate) ticks: Vec<TickView>,
}

/// The schedules and sensors, and whether automation is paused.
#[derive(Serialize, Debug)]
pub(crate) struct Instigators {
    pub(crate) paused: bool,
    pub(crate) schedules: Vec<ScheduleView>,
    pub(crate) sensors: Vec<SensorView>,
}

fn tick_view(t: crate::storage::TickRecord, zone: Option<&jiff::tz::TimeZone>) -> TickView {
    let at = match (Timestamp::try_from(t.scheduled), zone) {
        (Ok(ts), Some(zone)) => ts
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        _ => instant(t.scheduled),
    };
    TickView {
        at,
        status: t.status.as_str(),
        runs: t.run_ids.iter().map(ToString::to_string).collect(),
        reason: t.reason,
    }
}

pub(crate) fn instigators(ui: &Ui, ticks: usize) -> Result<Instigators, WebError> {
    let store = &**ui.instance.storage();
    let states = store.instigator_states()?;
    let now = Timestamp::now();
    let schedules = ui
        .automation
        .schedules()
        .iter()
        .map(|(s, cron)| {
            Ok(ScheduleView {
                name: s.name(),
                target: target_text(s),
                cron: s.cron(),
                timezone: s.timezone(),
                description: s.description(),
                running: status_of(&states, s.name(), s.default_status())
                    == InstigatorStatus::Running,
                next: cron
                    .ticks_after(now)
                    .take(5)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M %Z").to_string())
                    .collect(),
                ticks: store
                    .ticks(s.name(), ticks)?
                    .into_iter()
                    .map(|t| tick_view(t, Some(cron.zone())))
                    .collect(),
            })
        })
        .collect::<Result<_, WebError>>()?;
    let sensors = ui
        .automation
        .sensors()
        .iter()
        .map(|s| {
            Ok(SensorView {
                name: s.name(),
                target: s.target().map(|t| match t {
                    orch_core::ScheduleTarget::Job(job) => format!("job {job}"),
                    orch_core::ScheduleTarget::Selection(text) => text.to_owned(),
                    _ => String::new(),
                }),
                interval: humantime::format_duration(s.interval()).to_string(),
                description: s.description(),
                running: status_of(&states, s.name(), s.default_status())
                    == InstigatorStatus::Running,
                cursor: store.cursor(&crate::automation::sensor_cursor_key(s.name()))?,
                ticks: store
                    .ticks(s.name(), ticks)?
                    .into_iter()
                    .map(|t| tick_view(t, None))
                    .collect(),
            })
        })
        .collect::<Result<_, WebError>>()?;
    Ok(Instigators {
        paused: store.automation_paused()?,
        schedules,
        sensors,
    })
}

/// The runs list: one page, newest first, and the cursor of the next page.
#[derive(Serialize, Debug)]
pub(crate) struct RunsPage {
    pub(crate) runs: Vec<RunSummary>,
    pub(crate) next: Option<String>,
}

pub(crate) fn runs_page(ui: &Ui, filter: &RunFilter) -> Result<RunsPage, WebError> {
    let store = &**ui.instance.storage();
    let limit = filter.limit;
    let mut more = filter.clone();
    more.limit = limit + 1;
    let mut runs = store.runs(&more)?;
    let next = (runs.len() > limit).then(|| {
        runs.truncate(limit);
        runs.last().map(|r| r.id.to_string())
    });
    Ok(RunsPage {
        runs: runs.iter().map(RunSummary::of).collect(),
        next: next.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartitionSpanState::{Failed as F, Materialized as M, Missing as N};

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    #[test]
    fn few_spans_are_drawn_as_they_are() {
        let (segments, bucketed) = bar_segments(&keys(4), &[M, M, M, N]);
        assert!(!bucketed);
        let missing = &segments[1];
        assert_eq!(
            (missing.state, missing.first.as_str(), missing.count),
            ("missing", "k3", 1)
        );
    }

    #[test]
    fn many_spans_become_equal_buckets_naming_their_own_keys_and_keeping_failures() {
        // 100,000 partitions alternating materialized and missing two by two, one failure.
        let states: Vec<PartitionSpanState> = (0..100_000)
            .map(|i| match (i / 2) % 2 {
                _ if i == 50_001 => F,
                0 => M,
                _ => N,
            })
            .collect();
        let (segments, bucketed) = bar_segments(&keys(100_000), &states);
        assert!(bucketed);
        assert_eq!(segments.len(), BAR_SEGMENTS);
        assert_eq!(segments.iter().map(|s| s.count).sum::<usize>(), 100_000);
        assert_eq!(segments.iter().filter(|s| s.state == "failed").count(), 1);
        assert_eq!(
            (segments[0].first.as_str(), segments[0].last.as_str()),
            ("k0", "k249")
        );
        assert_eq!(segments[1].first, "k250");
        assert_eq!(segments.last().unwrap().last, "k99999");
    }

    #[test]
    fn one_long_span_is_cut_into_buckets_with_their_own_ranges() {
        let (segments, bucketed) = bar_segments(&keys(10_000), &vec![M; 10_000]);
        // One span: drawn as it is.
        assert!(!bucketed && segments.len() == 1);
        let mut states = vec![M; 10_000];
        for s in states.iter_mut().step_by(2) {
            *s = N;
        }
        let (segments, _) = bar_segments(&keys(10_000), &states);
        assert_eq!(
            (segments[3].first.as_str(), segments[3].last.as_str()),
            ("k75", "k99")
        );
    }
}
