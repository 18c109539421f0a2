//! Schedules: when the jobs run (`daemon` or `dev` runs them).

use orch::prelude::*;

use crate::jobs::{refresh_users, weekly_report};

schedule!(
    nightly_users,
    job = refresh_users,
    cron = "0 2 * * *",
    timezone = "Europe/Paris"
);

schedule!(
    monday_report,
    job = weekly_report,
    cron = "0 9 * * MON",
    timezone = "UTC",
    decide = last_week
);

/// Each Monday's run reports on the 7 days before it: the op job's config, per tick.
fn last_week(ctx: &ScheduleContext) -> Result<ScheduleDecision, BoxError> {
    let config = RunConfig::parse("[ops.collect_signups]\ndays = 7")?;
    let run = SensorRun::new()
        .tag("week_of", ctx.scheduled().date().to_string())
        .config(config);
    Ok(ScheduleDecision::runs([run]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monday_tick_asks_for_seven_days() {
        let tick: orch::jiff::Zoned = "2024-01-08T09:00:00+00:00[UTC]".parse().unwrap();
        let decision = last_week(&ScheduleContext::for_test(tick)).unwrap();
        let run = &decision.requested_runs()[0];
        assert_eq!(run.tags()["week_of"], "2024-01-08");
        let days = run.run_config().unwrap().op("collect_signups").unwrap();
        assert_eq!(days["days"], 7);
    }
}
