//! Automation conditions: the composites, the primitives, `&`, `|`, `!`, a time zone, and a
//! condition built by a function of the user's; freshness policies in each form.
use orch::prelude::*;

fn hourly_unless_busy() -> AutomationCondition {
    orch::conditions::on_cron("0 * * * *") & !orch::conditions::any_deps_in_progress()
}

#[asset(automation = on_missing(), freshness = "1h")]
fn raw() -> u32 {
    1
}

#[asset(automation = eager(), freshness = freshness::window("2h").warn("1h"))]
fn cleaned(raw: &u32) -> u32 {
    *raw
}

#[asset(automation = (eager() | on_cron_in("0 9 * * 1-5", "Europe/Paris")) & !in_progress())]
fn report(cleaned: &u32) -> u32 {
    *cleaned
}

#[asset(
    automation = hourly_unless_busy(),
    freshness = cron("0 9 * * 1-5", "3h").timezone("Europe/Paris")
)]
fn summary(report: &u32) -> u32 {
    *report
}

fn main() {
    let automation = orch::automation::automation().unwrap();
    let policies: Vec<String> = automation
        .freshness()
        .iter()
        .map(|(_, policy, _)| policy.to_string())
        .collect();
    assert_eq!(
        policies,
        [
            "within 1h",
            "within 2h (warn after 1h)",
            "within 3h before each `0 9 * * 1-5` (Europe/Paris)",
        ]
    );
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
