//! What the assets' own automation says: `automation explain ASSET` (why declarative
//! automation did or did not request an asset, as the daemon's latest evaluation recorded it,
//! or, before any daemon evaluated it, as an evaluation now would decide, launching nothing)
//! and `health` (freshness).

use jiff::Timestamp;

use orch_core::FreshnessState;

use super::history::timestamp;
use super::schedules::{checked, instant_or_now};
use super::table::print_rows;
use super::{EXIT_ASSET_FAILED, EXIT_OK, Env, fail_usage};
use crate::automation::{AutomationEvaluator, ConditionNode, freshness_states};

/// `health [--at T]`: every asset whose freshness policy warns or fails as of T, with why and
/// since when the daemon has seen it so; exit 1 if one fails.
pub(super) fn health(env: &Env<'_>, at: Option<&str>) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    let at = match instant_or_now(at) {
        Ok(t) => t,
        Err(e) => return fail_usage(&e),
    };
    if automation.freshness().is_empty() {
        println!("no asset has a freshness policy (`#[asset(freshness = \"1h\")]`)");
        return EXIT_OK;
    }
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let (states, recorded) = match freshness_states(&instance, automation, at)
        .and_then(|s| Ok((s, instance.storage().freshness()?)))
    {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    let bad: Vec<_> = states
        .iter()
        .filter(|f| matches!(f.state, FreshnessState::Warn | FreshnessState::Fail))
        .collect();
    let count = |state| states.iter().filter(|f| f.state == state).count();
    let unknown = count(FreshnessState::Unknown);
    if bad.is_empty() {
        println!(
            "{} of {} asset(s) with a freshness policy pass{}",
            count(FreshnessState::Pass),
            states.len(),
            match unknown {
                0 => String::new(),
                n => format!("; {n} never materialized"),
            }
        );
        return EXIT_OK;
    }
    let mut rows = vec![vec![
        "ASSET".to_owned(),
        "STATE".to_owned(),
        "SINCE".to_owned(),
        "POLICY".to_owned(),
        "WHY".to_owned(),
    ]];
    for f in &bad {
        let since = recorded
            .get(&f.asset.to_string())
            .filter(|c| c.state == f.state)
            .map_or_else(|| "-".to_owned(), |c| timestamp(c.at));
        rows.push(vec![
            f.asset.to_string(),
            f.state.to_string(),
            since,
            f.policy.clone(),
            f.detail.clone(),
        ]);
    }
    print_rows(&rows);
    let failing = count(FreshnessState::Fail);
    println!(
        "{failing} failing, {} warning, {} passing{}",
        count(FreshnessState::Warn),
        count(FreshnessState::Pass),
        match unknown {
            0 => String::new(),
            n => format!(", {n} never materialized"),
        }
    );
    match failing {
        0 => EXIT_OK,
        _ => EXIT_ASSET_FAILED,
    }
}

/// `automation explain ASSET`.
pub(super) fn explain(env: &Env<'_>, asset: &str) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    let with_condition: Vec<String> = automation
        .conditions()
        .iter()
        .map(|(id, _, _)| automation.graph().node(*id).key.to_string())
        .collect();
    let Some(index) = with_condition.iter().position(|k| k == asset) else {
        let graph = match crate::materialize::definitions() {
            Ok(graph) => graph,
            Err(e) => return fail_usage(&e),
        };
        return fail_usage(&match super::asset_key(graph, asset) {
            Ok(_) => format!(
                "asset `{asset}` has no automation condition: declarative automation never requests it (add e.g. `#[asset(automation = eager())]`)"
            ),
            Err(e) => e,
        });
    };
    let condition = &automation.conditions()[index].2;
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let stored = match instance.storage().automation_asset(asset) {
        Ok(stored) => stored.filter(|s| s.condition == *condition),
        Err(e) => return fail_usage(&e),
    };
    println!("{asset}: automation = {condition}");
    match stored {
        Some(record) => {
            match (&record.requested, &record.requested_run) {
                (Some(at), Some(run)) => {
                    println!("last requested {} (run {})", timestamp(*at), run.short())
                }
                _ => println!("never requested"),
            }
            println!(
                "latest evaluation: {} (the same reasons since {})",
                match record.result {
                    true => "requested",
                    false => "not requested",
                },
                timestamp(record.evaluated),
            );
            match serde_json::from_str::<ConditionNode>(&record.tree) {
                Ok(tree) => print!("{}", tree.render()),
                Err(e) => println!("(its stored reasons could not be read: {e})"),
            }
        }
        None => {
            let now = Timestamp::now();
            let preview = AutomationEvaluator::new().preview(&instance, automation, now);
            match preview.map(|all| all.into_iter().find(|e| e.asset == *asset)) {
                Ok(Some(e)) => {
                    println!(
                        "not evaluated by a daemon yet; evaluated now, launching nothing: {}",
                        match e.requested {
                            true => "it would be requested",
                            false => "it would not be requested",
                        }
                    );
                    print!("{}", e.tree.render());
                }
                Ok(None) => println!("not evaluated yet"),
                Err(e) => return fail_usage(&e),
            }
        }
    }
    EXIT_OK
}
