//! The assets' views: the list (every asset's summary, computed once per change of the
//! store), one asset in full, its partition bar.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use orch_core::{AssetGraph, AssetId, AssetKey, FreshnessState, MetadataValue};
use serde::Serialize;

use crate::automation::freshness_states;
use crate::run::{PartitionSpanState, partition_states};
use crate::staleness::{StaleInputs, staleness};
use crate::storage::{EventKind, EventRecord, RunFilter, RunStatus, Storage};
use crate::web::{Ui, WebError};

use super::{instant, millis};

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
