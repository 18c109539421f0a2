//! Tables printed by `list` and at the end of `materialize`.

use std::io::Write;

use orch_core::AssetGraph;

use super::progress::format_duration;
use crate::result::{AssetStatus, RunResult};
use crate::storage::AssetState;

/// Rows beyond which the summary shows only what did not succeed.
const SUMMARY_ROWS: usize = 60;

/// Prints rows with columns padded to the widest cell (the last column is not padded).
pub(super) fn print_rows(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        // A closed pipe (`| head`): nobody reads the rest.
        if writeln!(out, "{}", line.trim_end()).is_err() {
            return;
        }
    }
}

pub(super) fn print_list(
    graph: &AssetGraph,
    ids: &[usize],
    states: &std::collections::HashMap<String, AssetState>,
    stale: &[Option<crate::StaleReason>],
    checks: &super::checks::ByCheck,
) {
    // A FRESHNESS column when an asset has a policy: its state now.
    let now = jiff::Timestamp::now();
    let fresh = ids
        .iter()
        .any(|&id| graph.node(id).def.freshness_policy().is_some());
    let freshness = |node: &orch_core::AssetNode, last: Option<std::time::SystemTime>| {
        let Some(policy) = node.def.freshness_policy() else {
            return "-".to_owned();
        };
        match policy.resolve() {
            Ok(resolved) => {
                let last = last.and_then(|t| jiff::Timestamp::try_from(t).ok());
                resolved.state(last, now).0.to_string()
            }
            Err(e) => format!("invalid policy: {e}"),
        }
    };
    // A CHECKS column when an asset has checks: their latest results.
    let checked = ids
        .iter()
        .any(|&id| !crate::checks::checks_of(&graph.node(id).key).is_empty());
    let check_summary = |key: &orch_core::AssetKey| {
        let declared = crate::checks::checks_of(key);
        if declared.is_empty() {
            return "-".to_owned();
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for check in declared {
            let label = checks
                .get(&(key.to_string(), check.name().to_owned()))
                .map_or("never run", super::checks::result_label);
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
        counts
            .iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut header = vec![
        "ASSET".to_owned(),
        "GROUP".to_owned(),
        "UPSTREAM".to_owned(),
        "LAST MATERIALIZED".to_owned(),
        "STATUS".to_owned(),
        "STALE".to_owned(),
    ];
    if fresh {
        header.push("FRESHNESS".to_owned());
    }
    if checked {
        header.push("CHECKS".to_owned());
    }
    header.push("DESCRIPTION".to_owned());
    let mut rows = vec![header];
    for &id in ids {
        let node = graph.node(id);
        let upstream: Vec<String> = node
            .upstream
            .iter()
            .map(|&u| graph.node(u).key.to_string())
            .collect();
        let state = states.get(&node.key.to_string());
        let mut row = vec![
            node.key.to_string(),
            node.group().to_owned(),
            if upstream.is_empty() {
                "-".to_owned()
            } else {
                upstream.join(", ")
            },
            state
                .and_then(|s| s.last_materialized)
                .map_or_else(|| "never".to_owned(), super::history::timestamp),
            state
                .and_then(|s| s.last_status)
                .map_or("-", |k| k.as_str())
                .to_owned(),
            stale[id]
                .as_ref()
                .map_or_else(|| "up to date".to_owned(), ToString::to_string),
        ];
        if fresh {
            row.push(freshness(node, state.and_then(|s| s.last_materialized)));
        }
        if checked {
            row.push(check_summary(&node.key));
        }
        row.push(
            node.def
                .description()
                .and_then(|d| d.lines().next())
                .unwrap_or("")
                .to_owned(),
        );
        rows.push(row);
    }
    print_rows(&rows);
}

pub(super) fn print_summary(result: &RunResult) {
    let outcomes = result.outcomes();
    let show_all = outcomes.len() <= SUMMARY_ROWS;
    let steps = outcomes
        .first()
        .is_some_and(|o| crate::jobs::job_of_step(&o.key).is_some());
    let mut rows = vec![vec![
        if steps { "STEP" } else { "ASSET" }.to_owned(),
        "STATUS".to_owned(),
        "DURATION".to_owned(),
        "NOTE".to_owned(),
    ]];
    let mut hidden = 0usize;
    for outcome in outcomes {
        let ok = matches!(
            outcome.status,
            AssetStatus::Succeeded
                | AssetStatus::Injected
                | AssetStatus::Loaded
                | AssetStatus::NotRequired { .. }
        );
        if ok && !show_all && outcome.checks.iter().all(|c| c.passed) {
            hidden += 1;
            continue;
        }
        let failed_checks: Vec<String> = outcome
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("check {} {}", c.name, c.label()))
            .collect();
        let note = match &outcome.status {
            AssetStatus::Failed(failure) => failure.to_string(),
            AssetStatus::Skipped { because_of, check } => {
                crate::storage::skip_reason(because_of, *check)
            }
            AssetStatus::NotRequired { because_of } => {
                crate::storage::not_required_reason(because_of)
            }
            _ if !failed_checks.is_empty() => failed_checks.join(", "),
            _ if outcome.attempts > 1 => format!("succeeded on attempt {}", outcome.attempts),
            _ => String::new(),
        };
        rows.push(vec![
            outcome.key.to_string(),
            outcome.status.label().to_owned(),
            if outcome.attempts == 0 {
                "-".to_owned()
            } else {
                format_duration(outcome.duration)
            },
            note,
        ]);
    }
    println!();
    print_rows(&rows);
    if hidden > 0 {
        println!("… and {hidden} more that succeeded");
    }
    let count = |f: fn(&AssetStatus) -> bool| outcomes.iter().filter(|o| f(&o.status)).count();
    let succeeded = count(|s| matches!(s, AssetStatus::Succeeded));
    let failed = count(|s| matches!(s, AssetStatus::Failed(_)));
    let skipped = count(|s| matches!(s, AssetStatus::Skipped { .. }));
    let not_required = count(|s| matches!(s, AssetStatus::NotRequired { .. }));
    let loaded = count(|s| matches!(s, AssetStatus::Loaded));
    let injected = count(|s| matches!(s, AssetStatus::Injected));
    let mut line = format!(
        "\nrun {}: {succeeded} succeeded, {failed} failed, {skipped} skipped",
        result.run_id().short()
    );
    if not_required > 0 {
        line.push_str(&format!(", {not_required} not required"));
    }
    if loaded > 0 {
        line.push_str(&format!(", {loaded} loaded from storage"));
    }
    if injected > 0 {
        line.push_str(&format!(", {injected} injected"));
    }
    println!("{line} in {}", format_duration(result.duration()));
    for outcome in result.failed() {
        if outcome.logs.is_empty() {
            continue;
        }
        println!("\nlast log lines of `{}`:", outcome.key);
        let start = outcome.logs.len().saturating_sub(10);
        for line in &outcome.logs[start..] {
            println!("  {:5} {}", line.level, line.message);
        }
    }
}
