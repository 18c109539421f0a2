//! Why an asset was or was not requested: one asset's condition evaluated against what the
//! evaluator read of the store ([`Cx`]), as a tree of [`ConditionNode`]s that the store keeps
//! and `automation explain` prints.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use jiff::Timestamp;
use orch_core::{AssetGraph, AssetId, AutomationCondition, RunId};
use serde::{Deserialize, Serialize};

use super::Automation;
use crate::storage::AutomationAssetRecord;

/// One node of an evaluated condition: why an asset was or was not requested.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConditionNode {
    /// The condition as written (`eager()`, `!any_deps_missing()`).
    pub label: String,
    /// Whether it held.
    pub passed: bool,
    /// What it found (`updated: raw_orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The conditions it is made of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ConditionNode>,
}

impl ConditionNode {
    fn leaf(label: impl Into<String>, passed: bool, detail: String) -> ConditionNode {
        ConditionNode {
            label: label.into(),
            passed,
            detail: Some(detail),
            children: Vec::new(),
        }
    }

    fn all(label: impl Into<String>, children: Vec<ConditionNode>) -> ConditionNode {
        ConditionNode {
            label: label.into(),
            passed: children.iter().all(|c| c.passed),
            detail: None,
            children,
        }
    }

    fn any(label: impl Into<String>, children: Vec<ConditionNode>) -> ConditionNode {
        ConditionNode {
            label: label.into(),
            passed: children.iter().any(|c| c.passed),
            detail: None,
            children,
        }
    }

    fn not(self) -> ConditionNode {
        ConditionNode {
            label: format!("!{}", self.label),
            passed: !self.passed,
            detail: self.detail,
            children: self.children,
        }
    }

    /// The tree as indented lines, `✓` for a condition that held and `✗` for one that did
    /// not: what `automation explain` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, depth: usize) {
        use std::fmt::Write as _;
        let mark = if self.passed { '✓' } else { '✗' };
        let _ = write!(
            out,
            "{:indent$}{mark} {}",
            "",
            self.label,
            indent = depth * 2
        );
        if let Some(detail) = &self.detail {
            let _ = write!(out, ": {detail}");
        }
        out.push('\n');
        for child in &self.children {
            child.render_into(out, depth + 1);
        }
    }
}

pub(super) fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2026-12-04T10:00:00Z`, to the second.
fn show(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// One asset's evaluation context.
pub(super) struct Cx<'a> {
    pub(super) graph: &'a AssetGraph,
    pub(super) id: AssetId,
    pub(super) mats: &'a [Option<(u64, Timestamp)>],
    pub(super) in_progress: &'a [Option<RunId>],
    /// Assets requested earlier in this evaluation.
    pub(super) requested: &'a [bool],
    pub(super) state: Option<&'a AutomationAssetRecord>,
    /// The store's latest event read.
    pub(super) seq: u64,
    pub(super) at: Timestamp,
}

impl Cx<'_> {
    /// A hash of everything the asset's evaluation depends on (but the condition itself, the
    /// same for the life of the process).
    pub(super) fn fingerprint<'c>(
        &self,
        crons: &'c [orch_core::automation::Cron],
        ticks: &mut HashMap<&'c orch_core::automation::Cron, Option<Timestamp>>,
        automation: &Automation,
    ) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if let Some(s) = self.state {
            (s.since_seq, s.since, s.requested_seq, s.requested).hash(&mut h);
        }
        let seq = |id: AssetId| self.mats[id].map(|(seq, _)| seq);
        (seq(self.id), &self.in_progress[self.id]).hash(&mut h);
        for &d in self.upstream() {
            (seq(d), self.requested[d], &self.in_progress[d]).hash(&mut h);
        }
        for cron in crons {
            self.latest_tick(cron, ticks, automation).hash(&mut h);
        }
        h.finish()
    }

    fn key(&self, id: AssetId) -> String {
        self.graph.node(id).key.to_string()
    }

    fn upstream(&self) -> &[AssetId] {
        &self.graph.node(self.id).upstream
    }

    /// The sequence number updates must come after to count as new: the last request, the
    /// asset's own last update, or the condition's first evaluation.
    fn reset_seq(&self) -> u64 {
        let state = self
            .state
            .map_or(self.seq, |s| s.since_seq.max(s.requested_seq.unwrap_or(0)));
        state.max(self.mats[self.id].map_or(0, |(seq, _)| seq))
    }

    /// The same as an instant, for cron ticks.
    fn reset_time(&self) -> Timestamp {
        let since = self.state.map_or(self.at, |s| {
            let requested = s.requested.map_or(s.since, |r| r.max(s.since));
            timestamp(requested)
        });
        self.mats[self.id].map_or(since, |(_, t)| since.max(t))
    }

    pub(super) fn eval<'c>(
        &self,
        condition: &'c AutomationCondition,
        ticks: &mut HashMap<&'c orch_core::automation::Cron, Option<Timestamp>>,
        automation: &Automation,
    ) -> ConditionNode {
        use AutomationCondition as C;
        match condition {
            C::Eager => ConditionNode::all(
                "eager()",
                vec![
                    ConditionNode::any(
                        "missing or any upstream updated, since last requested or updated",
                        vec![self.missing_unrequested(), self.any_deps_updated()],
                    ),
                    self.any_deps_missing().not(),
                    self.any_deps_in_progress().not(),
                    self.in_progress().not(),
                ],
            ),
            C::OnMissing => ConditionNode::all(
                "on_missing()",
                vec![
                    self.missing_unrequested(),
                    self.any_deps_missing().not(),
                    self.any_deps_in_progress().not(),
                    self.in_progress().not(),
                ],
            ),
            C::OnCron(cron) => ConditionNode::all(
                condition.to_string(),
                vec![
                    self.cron_tick_passed(cron, ticks, automation),
                    self.all_deps_updated_since_cron(cron, ticks, automation),
                ],
            ),
            C::Missing => self.missing(),
            C::InProgress => self.in_progress(),
            C::AnyDepsUpdated => self.any_deps_updated(),
            C::AnyDepsMissing => self.any_deps_missing(),
            C::AnyDepsInProgress => self.any_deps_in_progress(),
            C::CronTickPassed(cron) => self.cron_tick_passed(cron, ticks, automation),
            C::AllDepsUpdatedSinceCron(cron) => {
                self.all_deps_updated_since_cron(cron, ticks, automation)
            }
            C::And(all) => ConditionNode::all(
                condition.to_string(),
                all.iter()
                    .map(|c| self.eval(c, ticks, automation))
                    .collect(),
            ),
            C::Or(any) => ConditionNode::any(
                condition.to_string(),
                any.iter()
                    .map(|c| self.eval(c, ticks, automation))
                    .collect(),
            ),
            C::Not(c) => self.eval(c, ticks, automation).not(),
            _ => ConditionNode::leaf(
                condition.to_string(),
                false,
                "not understood by this version of orch".to_owned(),
            ),
        }
    }

    fn missing(&self) -> ConditionNode {
        match self.mats[self.id] {
            None => ConditionNode::leaf("missing()", true, "never materialized".to_owned()),
            Some((_, t)) => {
                ConditionNode::leaf("missing()", false, format!("materialized at {}", show(t)))
            }
        }
    }

    /// Missing, and not requested since it went missing (a failed request is not repeated).
    fn missing_unrequested(&self) -> ConditionNode {
        let mut node = self.missing();
        if node.passed
            && let Some(s) = self.state
            && let Some(at) = s.requested
        {
            node.passed = false;
            node.detail = Some(format!(
                "never materialized, and already requested at {}{}",
                show(timestamp(at)),
                s.requested_run
                    .as_ref()
                    .map(|r| format!(" (run {})", r.short()))
                    .unwrap_or_default()
            ));
        }
        node
    }

    fn in_progress(&self) -> ConditionNode {
        match &self.in_progress[self.id] {
            Some(run) => {
                ConditionNode::leaf("in_progress()", true, format!("in run {}", run.short()))
            }
            None => ConditionNode::leaf(
                "in_progress()",
                false,
                "in no queued or running run".to_owned(),
            ),
        }
    }

    fn any_deps_updated(&self) -> ConditionNode {
        let reset = self.reset_seq();
        let updated: Vec<String> = self
            .upstream()
            .iter()
            .filter_map(|&d| {
                if self.requested[d] {
                    Some(format!("{} (requested now)", self.key(d)))
                } else {
                    match self.mats[d] {
                        Some((seq, t)) if seq > reset => {
                            Some(format!("{} (at {})", self.key(d), show(t)))
                        }
                        _ => None,
                    }
                }
            })
            .collect();
        let detail = match (updated.is_empty(), self.upstream().is_empty()) {
            (_, true) => "it has no upstream assets".to_owned(),
            (true, false) => {
                "no upstream updated since it was last requested or updated".to_owned()
            }
            (false, false) => format!("updated: {}", list(&updated)),
        };
        ConditionNode::leaf("any_deps_updated()", !updated.is_empty(), detail)
    }

    fn any_deps_missing(&self) -> ConditionNode {
        let missing: Vec<String> = self
            .upstream()
            .iter()
            .filter(|&&d| self.mats[d].is_none() && !self.requested[d])
            .map(|&d| self.key(d))
            .collect();
        let detail = match missing.is_empty() {
            true => "every upstream is materialized or requested now".to_owned(),
            false => format!("missing: {}", list(&missing)),
        };
        ConditionNode::leaf("any_deps_missing()", !missing.is_empty(), detail)
    }

    fn any_deps_in_progress(&self) -> ConditionNode {
        let going: Vec<String> = self
            .upstream()
            .iter()
            .filter_map(|&d| {
                self.in_progress[d]
                    .as_ref()
                    .map(|run| format!("{} (run {})", self.key(d), run.short()))
            })
            .collect();
        let detail = match going.is_empty() {
            true => "no upstream in a queued or running run".to_owned(),
            false => format!("in progress: {}", list(&going)),
        };
        ConditionNode::leaf("any_deps_in_progress()", !going.is_empty(), detail)
    }

    fn latest_tick<'c>(
        &self,
        cron: &'c orch_core::automation::Cron,
        ticks: &mut HashMap<&'c orch_core::automation::Cron, Option<Timestamp>>,
        automation: &Automation,
    ) -> Option<Timestamp> {
        *ticks.entry(cron).or_insert_with(|| {
            automation
                .condition_cron(cron)
                .and_then(|s| s.latest_at_or_before(self.at))
                .map(|z| z.timestamp())
        })
    }

    fn cron_tick_passed<'c>(
        &self,
        cron: &'c orch_core::automation::Cron,
        ticks: &mut HashMap<&'c orch_core::automation::Cron, Option<Timestamp>>,
        automation: &Automation,
    ) -> ConditionNode {
        let label = format!("cron_tick_passed({cron})");
        let reset = self.reset_time();
        match self.latest_tick(cron, ticks, automation) {
            Some(tick) if tick > reset => ConditionNode::leaf(
                label,
                true,
                format!(
                    "tick at {}, after its last request or update ({})",
                    show(tick),
                    show(reset)
                ),
            ),
            Some(tick) => ConditionNode::leaf(
                label,
                false,
                format!(
                    "latest tick at {}, not after its last request or update ({})",
                    show(tick),
                    show(reset)
                ),
            ),
            None => ConditionNode::leaf(label, false, "no tick yet".to_owned()),
        }
    }

    fn all_deps_updated_since_cron<'c>(
        &self,
        cron: &'c orch_core::automation::Cron,
        ticks: &mut HashMap<&'c orch_core::automation::Cron, Option<Timestamp>>,
        automation: &Automation,
    ) -> ConditionNode {
        let label = format!("all_deps_updated_since_cron({cron})");
        let Some(tick) = self.latest_tick(cron, ticks, automation) else {
            return ConditionNode::leaf(label, false, "no tick yet".to_owned());
        };
        let stale: Vec<String> = self
            .upstream()
            .iter()
            .filter(|&&d| !self.requested[d] && self.mats[d].is_none_or(|(_, t)| t < tick))
            .map(|&d| self.key(d))
            .collect();
        let detail = match stale.is_empty() {
            true => format!("every upstream updated since {}", show(tick)),
            false => format!("not updated since {}: {}", show(tick), list(&stale)),
        };
        ConditionNode::leaf(label, stale.is_empty(), detail)
    }
}

/// `a, b, c` or `a, b, c and 4 more`.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}
