//! `runs`, `run show` and `history`: what the run store remembers.

use std::time::{Duration, SystemTime};

use super::progress::format_duration;
use super::table::print_rows;
use crate::storage::{EventKind, EventRecord, RunFilter, RunRecord, Storage, StorageError};

/// How often `--follow` asks the store for new events.
const POLL: Duration = Duration::from_millis(200);

/// A time as people read it in a table: `2026-11-24 09:12:03` (UTC).
pub(super) fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// The first `n` characters of `text` (a custom I/O manager's data version may be any text,
/// so never cut it by bytes).
fn prefix(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

fn elapsed(start: SystemTime, end: Option<SystemTime>) -> String {
    match end {
        Some(end) => format_duration(end.duration_since(start).unwrap_or(Duration::ZERO)),
        None => "-".to_owned(),
    }
}

pub(super) fn print_runs(store: &dyn Storage, filter: &RunFilter) -> Result<(), StorageError> {
    let runs = store.runs(filter)?;
    if runs.is_empty() {
        println!("no runs yet; `materialize` records one");
        return Ok(());
    }
    let mut rows = vec![
        [
            "RUN",
            "STATUS",
            "STARTED",
            "DURATION",
            "OK/FAILED/SKIPPED",
            "SELECTION",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for run in runs {
        rows.push(vec![
            run.id.short().to_owned(),
            run.status.as_str().to_owned(),
            timestamp(run.started),
            elapsed(run.started, run.ended),
            format!(
                "{}/{}/{} of {}",
                run.counts.0, run.counts.1, run.counts.2, run.planned
            ),
            run.describe(),
        ]);
    }
    print_rows(&rows);
    Ok(())
}

/// The run `id` names on the command line: an id, a unique prefix, or `last` (the newest).
pub(super) fn find_run(store: &dyn Storage, id: &str) -> Result<RunRecord, StorageError> {
    if id != "last" {
        return store.run(id);
    }
    store
        .runs(&RunFilter::recent(1))?
        .into_iter()
        .next()
        .ok_or_else(|| StorageError::NoSuchRun("there is no run yet: `last` names none".into()))
}

pub(super) fn print_run(store: &dyn Storage, id: &str) -> Result<(), StorageError> {
    let run = find_run(store, id)?;
    println!(
        "run {} ({}, trigger {})",
        run.id,
        run.status.as_str(),
        run.trigger
    );
    // A run of an op job runs steps of its job, not assets.
    let job = run.target.starts_with("job:");
    println!(
        "started {}, {}, {} `{}`, {} {} planned",
        timestamp(run.started),
        match run.ended {
            Some(_) => format!("took {}", elapsed(run.started, run.ended)),
            None => "not finished".to_owned(),
        },
        if job { "target" } else { "selection" },
        run.describe(),
        run.planned,
        match (job, run.planned) {
            (true, 1) => "step",
            (true, _) => "steps",
            (false, 1) => "asset",
            (false, _) => "assets",
        }
    );
    if let Some(parent) = &run.parent {
        println!("re-executes run {parent}");
    }
    if !run.tags.is_empty() {
        let tags: Vec<String> = run.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("tags {}", tags.join(" "));
    }
    let mut rows = vec![
        [
            "AT",
            if job { "STEP" } else { "ASSET" },
            "EVENT",
            "ATTEMPT",
            "DURATION",
            "DETAIL",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for e in store.events(run.id.as_str())? {
        // The header above says when the run started and ended.
        let Some(asset) = e.asset.as_ref().map(ToString::to_string) else {
            continue;
        };
        let at = e.time.duration_since(run.started).unwrap_or(Duration::ZERO);
        let detail = e.detail();
        rows.push(vec![
            format!("+{}", format_duration(at)),
            asset,
            e.kind.as_str().to_owned(),
            e.attempt.map_or_else(String::new, |a| a.to_string()),
            e.duration.map_or_else(String::new, format_duration),
            detail,
        ]);
    }
    println!();
    print_rows(&rows);
    let logs = store.logs(run.id.as_str())?;
    if !logs.is_empty() {
        println!("\nlogs:");
        for line in logs {
            println!(
                "  {} {:5} {}: {}",
                timestamp(line.time),
                line.level,
                line.asset,
                line.message
            );
        }
    }
    Ok(())
}

/// Prints events as the store records them: of one run (by id or prefix) until it ends, or
/// of every run (`None`) until the process is stopped. Polls by sequence number, so it works
/// from another process than the one running.
pub(super) fn follow(store: &dyn Storage, run: Option<&str>) -> Result<(), StorageError> {
    let run_id = match run {
        Some(id) => Some(find_run(store, id)?),
        None => None,
    };
    if let Some(record) = &run_id
        && record.status.is_finished()
    {
        return Ok(());
    }
    // From the newest event on: what came before is already printed.
    let mut cursor = match &run_id {
        Some(record) => store
            .events(record.id.as_str())?
            .last()
            .and_then(|e| e.seq)
            .unwrap_or(0),
        None => latest_seq(store)?,
    };
    let mut quiet = 0u32;
    loop {
        let page = match &run_id {
            Some(record) => store.events_after(record.id.as_str(), cursor, 1000)?,
            None => store.events_since(cursor, 1000)?,
        };
        if page.is_empty() {
            std::thread::sleep(POLL);
            // Every few seconds of quiet, look for runs whose process died: recovery records
            // their end, which the next poll prints (and which ends a followed run).
            quiet += 1;
            if quiet.is_multiple_of(10) {
                store.recover_crashed()?;
            }
            continue;
        }
        quiet = 0;
        for event in &page {
            println!("{}", follow_line(event));
            if run_id.is_some() && matches!(event.kind, EventKind::RunEnded(_)) {
                return Ok(());
            }
        }
        cursor = page.last().and_then(|e| e.seq).unwrap_or(cursor);
    }
}

/// The sequence number of the newest event in the store.
fn latest_seq(store: &dyn Storage) -> Result<u64, StorageError> {
    // Runs are few next to events: the newest run's events end at or near the newest event.
    let mut cursor = 0;
    if let Some(newest) = store.runs(&RunFilter::recent(1))?.first() {
        cursor = store
            .events(newest.id.as_str())?
            .first()
            .and_then(|e| e.seq)
            .unwrap_or(0)
            .saturating_sub(1);
    }
    loop {
        let page = store.events_since(cursor, 10_000)?;
        match page.last().and_then(|e| e.seq) {
            Some(seq) => cursor = seq,
            None => return Ok(cursor),
        }
    }
}

/// One followed event: `12:03:04 1a2b3c4d  users_cleaned  materialized  rows=3`.
fn follow_line(e: &EventRecord) -> String {
    let asset = e
        .asset
        .as_ref()
        .map_or_else(|| "(run)".to_owned(), ToString::to_string);
    let partition = e
        .partition
        .as_ref()
        .map_or_else(String::new, |p| format!("[{p}]"));
    let detail = e.detail();
    format!(
        "{} {}  {asset}{partition}  {}  {detail}",
        timestamp(e.time),
        e.run_id.short(),
        e.kind.as_str()
    )
    .trim_end()
    .to_owned()
}

pub(super) fn print_history(
    store: &dyn Storage,
    asset: &str,
    limit: usize,
) -> Result<(), StorageError> {
    let materializations = store.materializations(asset, limit)?;
    if materializations.is_empty() {
        println!("`{asset}` has never been materialized");
        return Ok(());
    }
    let partitioned = materializations.iter().any(|e| e.partition.is_some());
    // The checks that ran with each materialization, by run.
    let checks = store.check_results(Some(asset), false, 1_000)?;
    let checked = !checks.is_empty();
    let checks_of_run = |run: &orch_core::RunId| {
        let mut found: Vec<String> = checks
            .iter()
            .filter(|e| e.run_id == *run)
            .filter_map(|e| {
                let c = e.check.as_ref()?;
                Some(format!("{} {}", c.name, super::checks::result_label(e)))
            })
            .collect();
        found.reverse(); // in the order they ran
        match found.is_empty() {
            true => "-".to_owned(),
            false => found.join(", "),
        }
    };
    let mut header = vec!["MATERIALIZED", "RUN"];
    if partitioned {
        header.push("PARTITION");
    }
    header.extend(["DURATION", "CODE VERSION", "DATA VERSION"]);
    if checked {
        header.push("CHECKS");
    }
    header.push("METADATA");
    let mut rows = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    // Multi-line values (a frame's preview) do not fit a table row: the latest one is printed
    // below it.
    let mut latest_long: Vec<(String, String)> = Vec::new();
    for (i, e) in materializations.into_iter().enumerate() {
        let mut row = vec![timestamp(e.time), e.run_id.short().to_owned()];
        if partitioned {
            row.push(e.partition.clone().unwrap_or_else(|| "-".to_owned()));
        }
        let mut short = Vec::new();
        for (k, v) in &e.metadata {
            let text = v.to_string();
            if text.contains('\n') {
                if i == 0 {
                    latest_long.push((k.clone(), text));
                }
            } else {
                short.push(format!("{k}={text}"));
            }
        }
        row.extend([
            e.duration.map_or_else(String::new, format_duration),
            e.code_version.unwrap_or_default(),
            e.data_version
                .map_or_else(|| "-".to_owned(), |v| prefix(&v, 16).to_owned()),
        ]);
        if checked {
            row.push(checks_of_run(&e.run_id));
        }
        row.push(short.join(" "));
        rows.push(row);
    }
    print_rows(&rows);
    for (label, text) in latest_long {
        println!("\n{label} (latest):\n{text}");
    }
    Ok(())
}

/// `run cancel ID`: asks the run to stop through the store; the exit code says whether there
/// was anything to cancel.
pub(super) fn cancel(store: &dyn Storage, id: &str) -> u8 {
    // A run whose process died is crashed: nothing would hear the request.
    let _ = store.recover_crashed();
    let outcome =
        find_run(store, id).and_then(|run| Ok((store.request_cancel(run.id.as_str())?, run.id)));
    match outcome {
        Ok((crate::storage::CancelOutcome::Canceled, id)) => {
            println!("run {} canceled before it started", id.short());
            super::EXIT_OK
        }
        Ok((crate::storage::CancelOutcome::Requested, id)) => {
            println!(
                "run {} asked to stop: it cancels what has not started and ends canceled (`run show {} --follow` watches it)",
                id.short(),
                id.short()
            );
            super::EXIT_OK
        }
        Ok((crate::storage::CancelOutcome::AlreadyEnded(status), id)) => {
            eprintln!(
                "run {} already ended ({status}): nothing to cancel",
                id.short()
            );
            super::EXIT_ASSET_FAILED
        }
        Err(e) => super::fail_usage(&e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_never_cuts_a_character() {
        assert_eq!(super::prefix("ééééééééé", 4), "éééé");
        assert_eq!(super::prefix("abc", 16), "abc");
    }
}
