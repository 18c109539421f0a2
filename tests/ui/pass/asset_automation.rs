//! Automation conditions: the composites, the primitives, `&`, `|`, `!`, a time zone, and a
//! condition built by a function of the user's.
use orch::prelude::*;

fn hourly_unless_busy() -> AutomationCondition {
    orch::conditions::on_cron("0 * * * *") & !orch::conditions::any_deps_in_progress()
}

#[asset(automation = on_missing())]
fn raw() -> u32 {
    1
}

#[asset(automation = eager())]
fn cleaned(raw: &u32) -> u32 {
    *raw
}

#[asset(automation = (eager() | on_cron_in("0 9 * * 1-5", "Europe/Paris")) & !in_progress())]
fn report(cleaned: &u32) -> u32 {
    *cleaned
}

#[asset(automation = hourly_unless_busy())]
fn summary(report: &u32) -> u32 {
    *report
}

fn main() {
    let automation = orch::automation::automation().unwrap();
    let written: Vec<&str> = automation
        .conditions()
        .iter()
        .map(|(_, _, text)| text.as_str())
        .collect();
    assert_eq!(
        written,
        [
            "on_missing()",
            "eager()",
            "(eager() | on_cron_in(\"0 9 * * 1-5\", \"Europe/Paris\")) & !in_progress()",
            "on_cron(\"0 * * * *\") & !any_deps_in_progress()",
        ]
    );
}
