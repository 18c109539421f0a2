//! `run show ID --timings`: where a run's time went, phase by phase (plan, load, begin, the
//! assets, waiting for the store, sync) and asset by asset (load, compute, store), read from
//! the run store.

use std::time::Duration;

use super::progress::format_duration;
use super::table::print_rows;
use crate::events::{AssetTimings, RunTimings};
use crate::storage::{EventKind, Storage, StorageError};

pub(super) fn print_timings(store: &dyn Storage, id: &str) -> Result<(), StorageError> {
    let run = super::history::find_run(store, id)?;
    let short = run.id.short();
    match &run.timings {
        Some(t) => print_phases(short, run.status.as_str(), t),
        None => println!(
            "run {short} ({}) has no recorded phases: it has not ended, its process died, or an older orch ran it",
            run.status.as_str()
        ),
    }
    // Each asset's last attempt, in the order they ended. A run over a range records one
    // event per partition with the asset's one set of timings: shown once.
    let mut assets: Vec<(String, AssetTimings, bool)> = Vec::new();
    for e in store.events(run.id.as_str())? {
        let (Some(key), Some(t)) = (&e.asset, e.timings) else {
            continue;
        };
        let failed = e.kind == EventKind::Failed;
        let name = key.to_string();
        if assets
            .last()
            .is_some_and(|(n, last, _)| *n == name && *last == t)
        {
            continue;
        }
        assets.push((name, t, failed));
    }
    if assets.is_empty() {
        return Ok(());
    }
    let job = run.target.starts_with("job:");
    let mut rows = vec![
        [
            if job { "STEP" } else { "ASSET" },
            "LOAD",
            "COMPUTE",
            "STORE",
            "TOTAL",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let cell = |d: Duration| {
        if d.is_zero() {
            "-".to_owned()
        } else {
            format_duration(d)
        }
    };
    let mut sum = AssetTimings::default();
    for (name, t, failed) in &assets {
        sum.load += t.load;
        sum.compute += t.compute;
        sum.store += t.store;
        rows.push(vec![
            if *failed {
                format!("{name} (failed)")
            } else {
                name.clone()
            },
            cell(t.load),
            cell(t.compute),
            match t.background {
                true => format!("{} (bg)", cell(t.store)),
                false => cell(t.store),
            },
            format_duration(t.total()),
        ]);
    }
    rows.push(vec![
        format!("sum of {}", assets.len()),
        cell(sum.load),
        cell(sum.compute),
        cell(sum.store),
        format_duration(sum.total()),
    ]);
    println!();
    print_rows(&rows);
    if assets.iter().any(|(_, t, _)| t.background) {
        println!("(bg: stored in the background while its consumers ran)");
    }
    Ok(())
}

/// The run's phases, one after the other, with each one's share of their sum.
fn print_phases(short: &str, status: &str, t: &RunTimings) {
    let total = t.total();
    println!(
        "run {short} ({status}): {} from planning to recorded",
        format_duration(total)
    );
    let share = |d: Duration| match total.as_secs_f64() {
        0.0 => String::new(),
        all => format!("{:.1}%", 100.0 * d.as_secs_f64() / all),
    };
    let mut rows = vec![["PHASE", "TIME", "SHARE"].map(str::to_owned).to_vec()];
    for (_, what, d) in t.phases() {
        rows.push(vec![what.to_owned(), format_duration(d), share(d)]);
    }
    println!();
    print_rows(&rows);
    println!(
        "(the store's writer committed events for {} meanwhile, on its own thread)",
        format_duration(t.record_background)
    );
}
