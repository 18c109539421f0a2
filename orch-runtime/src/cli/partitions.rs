//! `backfill` (a range of partitions, one run each, several at once) and `partitions ASSET`
//! (which partitions are materialized, failed or missing, as ranges).

use std::sync::Arc;

use orch_core::{AssetGraph, AssetId, AssetKey, Partitions};

use super::{EXIT_ASSET_FAILED, EXIT_OK, Env, fail_usage};
use crate::instance::Instance;
use crate::materialize::Materialize;
use crate::run::Trigger;
use crate::run::partitions::{check_range, dynamic_keys};
use crate::storage::{EventKind, Storage};

/// The one partitions definition shared by the partitioned assets among `ids`.
fn shared_partitions<'g>(
    graph: &'g AssetGraph,
    ids: &[AssetId],
) -> Result<(&'g Partitions, &'g AssetKey), String> {
    let mut found: Option<(&Partitions, &AssetKey)> = None;
    for &id in ids {
        let node = graph.node(id);
        let Some(p) = &node.partitions else { continue };
        match found {
            None => found = Some((p, &node.key)),
            Some((q, other)) if q != p => {
                return Err(format!(
                    "the selection mixes partitions: `{other}` is {} and `{}` is {}; backfill them separately",
                    q.describe(),
                    node.key,
                    p.describe()
                ));
            }
            Some(_) => {}
        }
    }
    found.ok_or_else(|| "no selected asset is partitioned".to_owned())
}

/// Every partition key of the one partitions definition the partitioned assets among `ids`
/// share.
pub(super) fn all_keys(
    graph: &AssetGraph,
    ids: &[AssetId],
    storage: &dyn Storage,
) -> Result<Vec<String>, String> {
    let (partitions, _) = shared_partitions(graph, ids)?;
    let dynamic = dynamic_keys(Some(storage), partitions).map_err(|e| e.to_string())?;
    Ok(partitions.keys(jiff::Timestamp::now(), &dynamic))
}

/// Runs every partition from `from` to `to` (both included) of the selection, one recorded run
/// per partition (or per `per_run` consecutive partitions, each asset called once over them),
/// at most `parallel` runs at once. A failed run does not stop the others.
pub(super) fn backfill(
    instance: &Instance,
    select: &str,
    from: &str,
    to: &str,
    per_run: usize,
    parallel: usize,
) -> u8 {
    let graph = match crate::materialize::definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    let ids = match select
        .parse::<orch_core::AssetSelection>()
        .map_err(|e| e.to_string())
        .and_then(|s| s.resolve(graph).map_err(|e| e.to_string()))
    {
        Ok(ids) => ids,
        Err(e) => return fail_usage(&e),
    };
    let (partitions, key) = match shared_partitions(graph, &ids) {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    let dynamic = match dynamic_keys(Some(&**instance.storage()), partitions) {
        Ok(keys) => keys,
        Err(e) => return fail_usage(&e),
    };
    let keys = match partitions.range(from, to, jiff::Timestamp::now(), &dynamic) {
        Ok(keys) => keys,
        Err(e) => return fail_usage(&format!("asset `{key}`: {e}")),
    };
    backfill_keys(instance, select, graph, &ids, &keys, per_run, parallel)
}

/// Runs partitions `keys` (in the definition's order, not necessarily consecutive) of the
/// assets `ids`, as [`backfill`] does: unpartitioned inputs first, one run per partition (or
/// per `per_run` of them), then what reads every partition.
pub(super) fn backfill_keys(
    instance: &Instance,
    select: &str,
    graph: &'static AssetGraph,
    ids: &[AssetId],
    keys: &[String],
    per_run: usize,
    parallel: usize,
) -> u8 {
    let keys = keys.to_vec();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::materialize::default_jobs())
        .max_blocking_threads(parallel + 4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail_usage(&format!("could not start the async runtime: {e}")),
    };
    let per_run_text = match per_run {
        0 | 1 => String::new(),
        n if n >= keys.len() => ", in one run".to_owned(),
        n => format!(", {n} per run"),
    };
    eprintln!(
        "backfilling {} partitions of `{select}` ({} to {}){per_run_text}, {parallel} at a time",
        keys.len(),
        keys.first().map_or("", String::as_str),
        keys.last().map_or("", String::as_str),
    );
    let started = std::time::Instant::now();
    // Every run of the backfill carries its id, so `runs` can tell them apart from others.
    let backfill_id = orch_core::RunId::new().short().to_owned();
    let trigger = Trigger::Backfill {
        backfill_id: backfill_id.clone(),
    };
    // Unpartitioned assets upstream of the partitions (inputs every partition reads whole) run
    // once, first; then one run per partition; then the unpartitioned assets downstream of
    // them (which read every partition), once, if every partition succeeded.
    let (whole, sliced): (Vec<AssetId>, Vec<AssetId>) = ids
        .iter()
        .partition(|&&id| graph.node(id).partitions.is_none());
    let in_selection = |id: AssetId| ids.contains(&id);
    let mut downstream_of_partitions = vec![false; graph.len()];
    for &id in graph.topological_order() {
        let node = graph.node(id);
        downstream_of_partitions[id] = node.upstream.iter().any(|&up| {
            in_selection(up)
                && (graph.node(up).partitions.is_some() || downstream_of_partitions[up])
        });
    }
    let (after, whole): (Vec<AssetId>, Vec<AssetId>) = whole
        .into_iter()
        .partition(|&id| downstream_of_partitions[id]);
    let keys_of = |ids: &[AssetId]| {
        orch_core::AssetSelection::Keys(ids.iter().map(|&id| graph.node(id).key.clone()).collect())
    };
    let stages = stages_of(graph, &sliced);
    let per_run = per_run.clamp(1, keys.len().max(1));
    // Runs over ranges: every partitioned asset must take them; refused once, up front.
    if per_run > 1
        && let Err(e) = check_range(graph, &sliced)
    {
        return fail_usage(&format!(
            "{e}; backfill without `--partitions-per-run`/`--single-run`"
        ));
    }
    if !whole.is_empty() {
        let first = runtime.block_on(
            Materialize::selection(keys_of(&whole))
                .keep_outputs(false)
                .instance(instance)
                .trigger(trigger.clone())
                .run_async(),
        );
        match first {
            Ok(r) if r.success() && r.storage_error().is_none() => {}
            Ok(r) => {
                super::table::print_summary(&r);
                eprintln!(
                    "error: the unpartitioned assets the partitions read failed; no partition ran"
                );
                return EXIT_ASSET_FAILED;
            }
            Err(e) => return fail_usage(&e),
        }
    }
    // Partitioned assets that read other partitions of a partitioned input
    // (`#[partitions(offset = -1)]`, `last = 7`) wait until every partition of that input is
    // done: stage by stage, each stage over the whole range.
    let mut outcomes = Vec::new();
    for (n, stage) in stages.iter().enumerate() {
        if n > 0 {
            if outcomes
                .iter()
                .any(|(_, _, o): &(usize, String, Result<String, String>)| o.is_err())
            {
                let names: Vec<String> = stage
                    .iter()
                    .map(|&id| format!("`{}`", graph.node(id).key))
                    .collect();
                eprintln!(
                    "not materializing {} (they read other partitions, and some failed)",
                    names.join(", ")
                );
                break;
            }
            eprintln!(
                "materializing {} asset(s) that read other partitions",
                stage.len()
            );
        }
        outcomes.extend(run_partitions(
            &runtime,
            instance,
            &backfill_id,
            keys_of(stage),
            &keys,
            per_run,
            parallel,
        ));
    }
    // One outcome per partition: its first failure, if a stage failed it.
    let mut by_key = std::collections::BTreeMap::new();
    for (i, partition, outcome) in outcomes {
        let entry = by_key.entry(i).or_insert((partition, outcome.clone()));
        if entry.1.is_ok() && outcome.is_err() {
            entry.1 = outcome;
        }
    }
    let outcomes: Vec<(usize, String, Result<String, String>)> =
        by_key.into_iter().map(|(i, (p, o))| (i, p, o)).collect();
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, o)| o.is_err()).collect();
    let mut after_failed = false;
    if !after.is_empty() {
        if failed.is_empty() {
            eprintln!(
                "materializing {} asset(s) that read every partition",
                after.len()
            );
            let last = runtime.block_on(
                Materialize::selection(keys_of(&after))
                    .keep_outputs(false)
                    .instance(instance)
                    .trigger(trigger.clone())
                    .run_async(),
            );
            match last {
                Ok(r) if r.success() && r.storage_error().is_none() => {
                    super::table::print_summary(&r);
                }
                Ok(r) => {
                    super::table::print_summary(&r);
                    after_failed = true;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    after_failed = true;
                }
            }
        } else {
            let names: Vec<String> = after
                .iter()
                .map(|&id| format!("`{}`", graph.node(id).key))
                .collect();
            eprintln!(
                "not materializing {} (they read every partition, and some failed)",
                names.join(", ")
            );
        }
    }
    for (_, partition, outcome) in &failed {
        if let Err(why) = outcome {
            eprintln!("  partition {partition} FAILED: {why}");
        }
    }
    let elapsed = started.elapsed();
    println!(
        "backfill: {} of {} partitions succeeded, {} failed in {:.2} s ({:.2} ms per partition)",
        outcomes.len() - failed.len(),
        outcomes.len(),
        failed.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / outcomes.len().max(1) as f64
    );
    if failed.is_empty() && !after_failed {
        EXIT_OK
    } else if failed.is_empty() {
        EXIT_ASSET_FAILED
    } else {
        if let Some((_, partition, _)) = failed.first() {
            eprintln!(
                "re-run a failed partition with `materialize --select '{select}' --partition {partition}`, or the range again"
            );
        }
        EXIT_ASSET_FAILED
    }
}

/// Partitioned assets in stages: an asset that reads other partitions of a partitioned input
/// in the selection runs in a later stage than that input.
fn stages_of(graph: &AssetGraph, sliced: &[AssetId]) -> Vec<Vec<AssetId>> {
    let mut stage = vec![0usize; graph.len()];
    for &id in graph.topological_order() {
        if !sliced.contains(&id) {
            continue;
        }
        let node = graph.node(id);
        // Every upstream (`deps` too) runs first; one read through a mapping, a stage first.
        for &up in &node.upstream {
            if sliced.contains(&up) {
                let mapped = node.inputs.iter().enumerate().any(|(i, &u)| {
                    u == up && node.input_mapping(i) != orch_core::PartitionMapping::Identity
                });
                stage[id] = stage[id].max(stage[up] + usize::from(mapped));
            }
        }
    }
    let count = sliced.iter().map(|&id| stage[id] + 1).max().unwrap_or(0);
    (0..count)
        .map(|n| {
            sliced
                .iter()
                .copied()
                .filter(|&id| stage[id] == n)
                .collect()
        })
        .collect()
}

/// One recorded run per partition of `selection`, at most `parallel` at once; what each
/// ended with (its run id, or why it failed), in key order.
fn run_partitions(
    runtime: &tokio::runtime::Runtime,
    instance: &Instance,
    backfill_id: &str,
    selection: orch_core::AssetSelection,
    keys: &[String],
    per_run: usize,
    parallel: usize,
) -> Vec<(usize, String, Result<String, String>)> {
    runtime.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        // Runs of `per_run` consecutive partitions (one each by default).
        for (n, chunk) in keys.chunks(per_run.max(1)).enumerate() {
            let first = n * per_run.max(1);
            let chunk: Vec<String> = chunk.to_vec();
            let instance = instance.clone();
            let sliced = selection.clone();
            let trigger = Trigger::Backfill {
                backfill_id: backfill_id.to_owned(),
            };
            let gate = Arc::clone(&gate);
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let run = Materialize::selection(sliced);
                let run = match (per_run, chunk.as_slice()) {
                    (1, [one]) => run.partition(one.clone()),
                    (_, range) => run.partition_range(range.iter().cloned()),
                };
                let result = run
                    .jobs(1)
                    .keep_outputs(false)
                    .instance(&instance)
                    .trigger(trigger)
                    .run_async()
                    .await;
                let outcome = match result {
                    Ok(r) if r.success() && r.storage_error().is_none() => {
                        Ok(r.run_id().short().to_owned())
                    }
                    Ok(r) => Err(match r.storage_error() {
                        Some(e) => format!("not fully recorded: {e}"),
                        None => r
                            .failed()
                            .next()
                            .map(|o| match &o.status {
                                crate::result::AssetStatus::Failed(f) => {
                                    format!("`{}`: {f}", o.key)
                                }
                                _ => format!("`{}` failed", o.key),
                            })
                            .unwrap_or_else(|| "failed".to_owned()),
                    }),
                    Err(e) => Err(e.to_string()),
                };
                // Every partition of the run shares its outcome.
                chunk
                    .into_iter()
                    .enumerate()
                    .map(|(i, partition)| (first + i, partition, outcome.clone()))
                    .collect::<Vec<_>>()
            });
        }
        let mut outcomes = Vec::with_capacity(keys.len());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(done) => outcomes.extend(done),
                Err(e) => outcomes.push((usize::MAX, "?".to_owned(), Err(e.to_string()))),
            }
        }
        outcomes.sort_by_key(|(i, _, _)| *i);
        outcomes
    })
}

/// Consecutive runs of keys with the same state, as `first..last (n)`.
fn ranges<'k>(
    keys: &'k [String],
    state: &[Option<EventKind>],
    want: Option<EventKind>,
) -> Vec<(&'k str, &'k str, usize)> {
    let mut out: Vec<(&str, &str, usize)> = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    for (i, s) in state.iter().enumerate() {
        if *s == want {
            open = Some(open.map_or((i, i), |(a, _)| (a, i)));
        } else if let Some((a, b)) = open.take() {
            out.push((&keys[a], &keys[b], b - a + 1));
        }
    }
    if let Some((a, b)) = open {
        out.push((&keys[a], &keys[b], b - a + 1));
    }
    out
}

/// Prints which partitions of `asset` are materialized, failed or missing; with `add`, first
/// adds those keys to its dynamic partitions.
pub(super) fn print_partitions(env: &Env<'_>, asset: &str, add: &[String]) -> u8 {
    let graph = match crate::materialize::definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    let node = match asset.parse::<AssetKey>().ok().and_then(|k| graph.id_of(&k)) {
        Some(id) => graph.node(id),
        None => {
            return fail_usage(&format!(
                "`{asset}` is not an asset; `list` shows the assets there are"
            ));
        }
    };
    let Some(partitions) = &node.partitions else {
        return fail_usage(&format!("asset `{}` is not partitioned", node.key));
    };
    if !add.is_empty() {
        let Some(name) = partitions.dynamic_name() else {
            return fail_usage(&format!(
                "asset `{}` has fixed partitions ({}); only dynamic partitions take new keys",
                node.key,
                partitions.describe()
            ));
        };
        if let Some(Err(e)) = add
            .iter()
            .map(|k| orch_core::partitions::check_dynamic_key(k))
            .find(Result::is_err)
        {
            return fail_usage(&e);
        }
        match env.open().and_then(|i| {
            i.storage()
                .add_dynamic_partitions(name, add)
                .map_err(|e| e.to_string())
        }) {
            Ok(n) => println!("added {n} new key(s) to dynamic partitions \"{name}\""),
            Err(e) => return fail_usage(&e),
        }
    }
    let found = env.existing().and_then(|i| match i {
        Some(i) => {
            let s = &**i.storage();
            let read = || -> Result<_, crate::storage::StorageError> {
                Ok((
                    s.partition_statuses(&node.key.to_string())?,
                    dynamic_keys(Some(s), partitions)?,
                ))
            };
            read().map_err(|e| e.to_string())
        }
        None => Ok(Default::default()),
    });
    let (statuses, dynamic) = match found {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    let keys = partitions.keys(jiff::Timestamp::now(), &dynamic);
    let by_key: std::collections::HashMap<&str, EventKind> = statuses
        .iter()
        .map(|s| (s.partition.as_str(), s.kind))
        .collect();
    let state: Vec<Option<EventKind>> = keys
        .iter()
        .map(|k| by_key.get(k.as_str()).copied())
        .collect();
    println!(
        "{} — {}: {} partitions",
        node.key,
        partitions.describe(),
        keys.len()
    );
    for (label, want) in [
        ("materialized", Some(EventKind::Materialized)),
        ("failed", Some(EventKind::Failed)),
        ("missing", None),
    ] {
        let found = ranges(&keys, &state, want);
        let total: usize = found.iter().map(|r| r.2).sum();
        let shown: Vec<String> = found
            .iter()
            .take(8)
            .map(|(a, b, n)| {
                if n == &1 {
                    (*a).to_owned()
                } else {
                    format!("{a}..{b}")
                }
            })
            .collect();
        let more = if found.len() > 8 {
            format!(" and {} more ranges", found.len() - 8)
        } else {
            String::new()
        };
        if shown.is_empty() {
            println!("  {label:<12} {total:>7}");
        } else {
            println!("  {label:<12} {total:>7}  {}{more}", shown.join(", "));
        }
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_fold_into_ranges() {
        let keys: Vec<String> = (1..=6).map(|d| format!("d{d}")).collect();
        let m = Some(EventKind::Materialized);
        let f = Some(EventKind::Failed);
        let state = [m, m, None, f, m, None];
        assert_eq!(ranges(&keys, &state, m), [("d1", "d2", 2), ("d5", "d5", 1)]);
        assert_eq!(ranges(&keys, &state, f), [("d4", "d4", 1)]);
        assert_eq!(
            ranges(&keys, &state, None),
            [("d3", "d3", 1), ("d6", "d6", 1)]
        );
    }
}
