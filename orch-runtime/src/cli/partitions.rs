//! `backfill` (a range of partitions, one run each, several at once) and `partitions ASSET`
//! (which partitions are materialized, failed or missing, as ranges).

use std::time::SystemTime;

use orch_core::AssetKey;
use tokio_util::sync::CancellationToken;

use super::{EXIT_ASSET_FAILED, EXIT_CANCELED, EXIT_OK, Env, fail_usage};
use crate::instance::Instance;
use crate::run::{
    BACKFILL_TAG, BackfillPlan, BackfillStep, PartitionSpanState, PartitionStatus, partition_spans,
};
use crate::storage::{RunFilter, RunStatus};

/// Runs a planned backfill with a Ctrl-C handler, printing as it goes; `label` names
/// the selection in what it prints.
pub(super) fn run_backfill(instance: &Instance, plan: &BackfillPlan, label: &str) -> u8 {
    let keys = plan.keys();
    let per_run_text = match plan.partitions_per_run() {
        1 => String::new(),
        n if n >= keys.len() => ", in one run".to_owned(),
        n => format!(", {n} per run"),
    };
    eprintln!(
        "backfilling {} partitions of `{label}` ({} to {}){per_run_text}, {} at a time",
        keys.len(),
        keys.first().map_or("", String::as_str),
        keys.last().map_or("", String::as_str),
        plan.parallel(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::materialize::default_jobs())
        .max_blocking_threads(plan.parallel() + 4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail_usage(&format!("could not start the async runtime: {e}")),
    };
    let cancel = CancellationToken::new();
    let mut progress = |step: BackfillStep<'_>| match step {
        BackfillStep::Stage { assets } => {
            eprintln!(
                "materializing {} asset(s) that read other partitions",
                assets.len()
            );
        }
        BackfillStep::After { assets } => {
            eprintln!(
                "materializing {} asset(s) that read every partition",
                assets.len()
            );
        }
        BackfillStep::Skipped {
            assets,
            every_partition,
        } => eprintln!(
            "not materializing {} (they read {}, and some failed)",
            names(assets),
            if every_partition {
                "every partition"
            } else {
                "other partitions"
            }
        ),
    };
    let report = runtime.block_on(async {
        let watcher = tokio::spawn(cancel_backfill_on_ctrl_c(
            cancel.clone(),
            instance.clone(),
            plan.id().to_owned(),
        ));
        let report = plan.run(instance, &cancel, &mut progress).await;
        watcher.abort();
        report
    });
    let report = match report {
        Ok(report) => report,
        Err(e) => return fail_usage(&e),
    };
    if report.before_failed() {
        if let Some(before) = report.before() {
            super::table::print_summary(before);
        }
        eprintln!("error: the unpartitioned assets the partitions read failed; no partition ran");
        return if report.canceled() {
            EXIT_CANCELED
        } else {
            EXIT_ASSET_FAILED
        };
    }
    let mut after_failed = false;
    match report.after() {
        Some(Ok(r)) => {
            super::table::print_summary(r);
            after_failed = !r.success() || r.storage_error().is_some();
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            after_failed = true;
        }
        None => {}
    }
    for p in report.failed() {
        if let PartitionStatus::Failed(why) = &p.status {
            eprintln!("  partition {} FAILED: {why}", p.key);
        }
    }
    let total = report.partitions().len();
    let failed = report.failed().count();
    let elapsed = report.elapsed();
    let canceled = report
        .partitions()
        .iter()
        .filter(|p| p.status == PartitionStatus::Canceled)
        .count();
    let canceled_text = match canceled {
        0 => String::new(),
        n => format!(", {n} canceled"),
    };
    println!(
        "backfill: {} of {total} partitions succeeded, {failed} failed{canceled_text} in {:.2} s ({:.2} ms per partition)",
        report.succeeded(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / total.max(1) as f64
    );
    if report.canceled() {
        eprintln!(
            "backfill {} was canceled; `runs --tag {BACKFILL_TAG}={}` lists its runs",
            report.id(),
            report.id()
        );
        return EXIT_CANCELED;
    }
    if let Some(p) = report.failed().next() {
        eprintln!(
            "re-run a failed partition with `materialize --select '{label}' --partition {}`, or the range again",
            p.key
        );
        return EXIT_ASSET_FAILED;
    }
    if after_failed || !report.success() {
        EXIT_ASSET_FAILED
    } else {
        EXIT_OK
    }
}

fn names(assets: &[AssetKey]) -> String {
    let names: Vec<String> = assets.iter().map(|k| format!("`{k}`")).collect();
    names.join(", ")
}

/// The first Ctrl-C cancels the backfill (no new run starts; runs in flight are canceled);
/// the second records its unfinished runs as canceled and exits at once.
async fn cancel_backfill_on_ctrl_c(cancel: CancellationToken, instance: Instance, id: String) {
    if tokio::signal::ctrl_c().await.is_err() {
        return; // no signal handling here: Ctrl-C keeps its default
    }
    eprintln!(
        "\ncanceling backfill {id}: no new run starts; runs in flight are canceled (press Ctrl-C again to stop now)"
    );
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        let store = instance.storage();
        let unfinished = RunFilter::default()
            .tag(BACKFILL_TAG, id.as_str())
            .status(RunStatus::Queued)
            .status(RunStatus::Starting)
            .status(RunStatus::Running);
        if !instance.is_ephemeral()
            && let Ok(runs) = store.runs(&unfinished)
        {
            for run in runs {
                let _ = store.end_run(run.id.as_str(), RunStatus::Canceled, SystemTime::now());
            }
        }
        eprintln!("stopped: the unfinished runs of backfill {id} are recorded as canceled");
        std::process::exit(i32::from(EXIT_CANCELED));
    }
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
    let spans = match env.existing().and_then(|i| {
        partition_spans(i.as_ref().map(|i| &**i.storage()), node).map_err(|e| e.to_string())
    }) {
        Ok(spans) => spans,
        Err(e) => return fail_usage(&e),
    };
    println!(
        "{} — {}: {} partitions",
        node.key,
        partitions.describe(),
        spans.iter().map(|s| s.count).sum::<usize>()
    );
    for state in [
        PartitionSpanState::Materialized,
        PartitionSpanState::Failed,
        PartitionSpanState::Missing,
    ] {
        let found: Vec<&crate::run::PartitionSpan> =
            spans.iter().filter(|s| s.state == state).collect();
        let total: usize = found.iter().map(|s| s.count).sum();
        let shown: Vec<String> = found
            .iter()
            .take(8)
            .map(|s| match s.count {
                1 => s.first.clone(),
                _ => format!("{}..{}", s.first, s.last),
            })
            .collect();
        let more = if found.len() > 8 {
            format!(" and {} more ranges", found.len() - 8)
        } else {
            String::new()
        };
        let label = state.as_str();
        if shown.is_empty() {
            println!("  {label:<12} {total:>7}");
        } else {
            println!("  {label:<12} {total:>7}  {}{more}", shown.join(", "));
        }
    }
    EXIT_OK
}
