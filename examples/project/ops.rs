//! Ops: the traditional steps of the weekly report job (see `jobs.rs`). Each is a plain
//! function too, tested below with `OpContext::for_test`.

use orch::prelude::*;

use crate::resources::Warehouse;

/// `[ops.collect_signups]` in the run config.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupsConfig {
    /// How many days back.
    pub days: u32,
}

/// `[ops.send_report]` in the run config.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendConfig {
    /// Who gets it.
    #[serde(default = "default_recipient")]
    pub to: String,
}

fn default_recipient() -> String {
    "data-team@example.com".to_owned()
}

/// Sign-ups per day over the configured window (simulated).
#[op(retries = 2, retry_delay = "200ms")]
pub fn collect_signups(ctx: &OpContext, #[config] cfg: &SignupsConfig) -> Vec<u32> {
    let signups: Vec<u32> = (0..cfg.days).map(|d| 10 + d * 3 % 7).collect();
    ctx.log()
        .info(format_args!("{} days of sign-ups", signups.len()));
    signups
}

/// Sign-ups in total and per day on average.
#[op]
pub fn summarize_signups(signups: &Vec<u32>) -> (u32, f64) {
    let total: u32 = signups.iter().sum();
    let mean = match signups.len() {
        0 => 0.0,
        n => f64::from(total) / n as f64,
    };
    (total, mean)
}

/// The best day, if there was any sign-up: `None` skips the celebration.
#[op]
pub fn best_day(signups: &Vec<u32>) -> Option<u32> {
    signups.iter().copied().filter(|&n| n > 0).max()
}

/// Posts the best day (runs only when there is one).
#[op]
pub fn celebrate(ctx: &OpContext, best: &u32) {
    ctx.log().info(format_args!("best day: {best} sign-ups"));
}

/// Writes the report to the warehouse and "sends" it.
#[op]
pub fn send_report(
    ctx: &OpContext,
    #[config] cfg: &SendConfig,
    #[resource] warehouse: &Warehouse,
    summary: &(u32, f64),
) -> String {
    let line = format!("{} sign-ups, {:.1} per day", summary.0, summary.1);
    if let Some(last) = warehouse.read("weekly_report").first() {
        ctx.log().info(format_args!("last report: {last}"));
    }
    warehouse.write("weekly_report", vec![line.clone()]);
    ctx.log().info(format_args!("sent to {}: {line}", cfg.to));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_averages_per_day() {
        assert_eq!(summarize_signups(&vec![2, 4]), (6, 3.0));
        assert_eq!(summarize_signups(&vec![]), (0, 0.0));
    }

    #[test]
    fn send_report_writes_to_the_warehouse_it_is_given() {
        let warehouse = Warehouse::default();
        let ctx = OpContext::for_test().op("send_report").build();
        let sent = send_report(
            &ctx,
            &SendConfig {
                to: "me@example.com".into(),
            },
            &warehouse,
            &(14, 2.0),
        );
        assert_eq!(sent, "14 sign-ups, 2.0 per day");
        assert_eq!(warehouse.read("weekly_report"), [sent]);
        assert!(ctx.logs()[0].message.starts_with("sent to me@example.com"));
    }
}
