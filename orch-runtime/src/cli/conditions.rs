//! `automation explain ASSET`: why declarative automation did or did not request an asset,
//! as the daemon's latest evaluation recorded it (or, before any daemon evaluated it, as an
//! evaluation now would decide, launching nothing).

use jiff::Timestamp;

use super::history::timestamp;
use super::schedules::{checked, unknown};
use super::{EXIT_OK, Env, fail_usage};
use crate::automation::{AutomationEvaluator, ConditionNode};

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
        let exists = asset.parse().ok().and_then(|k| graph.id_of(&k)).is_some();
        if exists {
            return fail_usage(&format!(
                "asset `{asset}` has no automation condition: declarative automation never requests it (add e.g. `#[asset(automation = eager())]`)"
            ));
        }
        let keys: Vec<String> = graph.nodes().iter().map(|n| n.key.to_string()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        return fail_usage(&unknown("an asset", asset, &keys, "list"));
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
                "latest evaluation {}: {}",
                timestamp(record.evaluated),
                match record.result {
                    true => "requested",
                    false => "not requested",
                }
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
