//! `checks [ASSET]` (each asset check, its asset, whether it blocks, and its latest result) and
//! `check run ASSET` (its checks on the stored value, recorded as a run).

use std::collections::HashMap;

use clap::Subcommand;

use super::history::timestamp;
use super::progress::format_duration;
use super::table::print_rows;
use super::{EXIT_ASSET_FAILED, EXIT_OK, Env, fail_usage};
use crate::checks::{CheckError, check_problems, checks_of};
use crate::materialize::definitions;
use crate::storage::EventRecord;

/// `check ...`.
#[derive(Subcommand, Debug)]
pub(super) enum CheckCommand {
    /// Run an asset's checks on its stored value (nothing is materialized); the results are
    /// recorded as a run. Exit 1 if a blocking check fails with error severity.
    Run {
        /// The asset key.
        asset: String,
        /// The partition to check, for a partitioned asset.
        #[arg(long)]
        partition: Option<String>,
    },
}

/// Check results by `(asset, check)`.
pub(super) type ByCheck = HashMap<(String, String), EventRecord>;

/// `results` (the latest of each check) by `(asset, check)`.
pub(super) fn by_check(results: Vec<EventRecord>) -> ByCheck {
    results
        .into_iter()
        .filter_map(|e| {
            let asset = e.asset.as_ref()?.to_string();
            let name = e.check.as_ref()?.name.clone();
            Some(((asset, name), e))
        })
        .collect()
}

/// The latest result of each check, from the store if there is one.
fn latest_results(env: &Env<'_>) -> Result<ByCheck, String> {
    let Some(instance) = env.existing()? else {
        return Ok(HashMap::new());
    };
    let results = instance.storage().check_results(None, true, 0);
    Ok(by_check(results.map_err(|e| e.to_string())?))
}

/// `passed`, `failed`, `warned` for a recorded result.
pub(super) fn result_label(e: &EventRecord) -> &'static str {
    e.check.as_ref().map_or("-", |c| c.label())
}

/// `checks [ASSET]`.
pub(super) fn print_checks(env: &Env<'_>, asset: Option<&str>) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(e) => return fail_usage(&e),
    };
    if let Some(problem) = check_problems().first() {
        return fail_usage(problem);
    }
    let keys: Vec<orch_core::AssetKey> = match asset {
        Some(text) => match super::asset_key(graph, text) {
            Ok(key) => vec![key],
            Err(e) => return fail_usage(&e),
        },
        None => graph
            .topological_order()
            .iter()
            .map(|&id| graph.node(id).key.clone())
            .collect(),
    };
    let latest = match latest_results(env) {
        Ok(latest) => latest,
        Err(e) => return fail_usage(&e),
    };
    let mut rows = vec![
        [
            "ASSET",
            "CHECK",
            "BLOCKING",
            "SEVERITY",
            "LAST RESULT",
            "WHEN",
            "RUN",
            "DESCRIPTION",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for key in &keys {
        for check in checks_of(key) {
            let last = latest.get(&(key.to_string(), check.name().to_owned()));
            let (result, when, run) = match last {
                Some(e) => {
                    let mut result = result_label(e).to_owned();
                    if let Some(message) = e.message.as_deref().filter(|_| result != "passed") {
                        result.push_str(&format!(": {message}"));
                    }
                    (result, timestamp(e.time), e.run_id.short().to_owned())
                }
                None => ("never run".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            rows.push(vec![
                key.to_string(),
                check.name().to_owned(),
                if check.blocking() { "yes" } else { "no" }.to_owned(),
                check.severity().to_string(),
                result,
                when,
                run,
                check
                    .description()
                    .and_then(|d| d.lines().next())
                    .unwrap_or("")
                    .to_owned(),
            ]);
        }
    }
    if rows.len() == 1 {
        match asset {
            Some(a) => println!("asset `{a}` has no checks"),
            None => println!("no asset checks (`#[asset_check(asset = ASSET)]` declares one)"),
        }
        return EXIT_OK;
    }
    print_rows(&rows);
    EXIT_OK
}

/// `check run ASSET [--partition KEY]`.
pub(super) fn check_command(env: &Env<'_>, command: CheckCommand) -> u8 {
    let CheckCommand::Run { asset, partition } = command;
    if let Some(problem) = check_problems().first() {
        return fail_usage(problem);
    }
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let done = match instance.check(&asset, partition.as_deref()) {
        Ok(done) => done,
        Err(CheckError::UnknownAsset(text)) => {
            return match definitions() {
                Ok(graph) => fail_usage(&super::asset_key(graph, &text).err().unwrap_or_default()),
                Err(e) => fail_usage(&e),
            };
        }
        Err(e) => return fail_usage(&e),
    };
    println!(
        "run {}: {} check(s) of {} on its stored value",
        done.run_id.short(),
        done.outcomes.len(),
        done.asset
    );
    for c in &done.outcomes {
        let mut line = format!(
            "  {:<7} {} ({})",
            c.label(),
            c.name,
            format_duration(c.duration)
        );
        if let Some(why) = c.description.as_deref().filter(|_| !c.passed) {
            line.push_str(&format!(": {why}"));
        }
        println!("{line}");
    }
    match done.success() {
        true => EXIT_OK,
        false => EXIT_ASSET_FAILED,
    }
}
