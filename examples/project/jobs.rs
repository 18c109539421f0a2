//! Jobs: an asset job (a named selection, for schedules) and an op job (steps wired by hand,
//! type-checked by the compiler), with a test that runs the op job in memory.

use orch::prelude::*;

use crate::ops::*;

// The assets from the API to the analytics, refreshed by the nightly schedule.
asset_job!(pub refresh_users, "+group:analytics");

/// The weekly sign-up report: collect, then summarize and find the best day side by side,
/// then send; celebrate the best day if there was one.
#[job(tags(team = "growth"))]
pub fn weekly_report() {
    let signups = collect_signups();
    send_report(summarize_signups(signups));
    celebrate(best_day(signups));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Warehouse;

    #[test]
    fn the_weekly_report_runs_with_a_fake_warehouse_and_injected_signups() {
        let result = orch::testing::execute_job::<weekly_report>()
            .resource(Warehouse::default())
            .inject::<collect_signups>(vec![0, 0])
            .run()
            .unwrap();
        assert!(result.success());
        assert_eq!(result.output::<send_report>(), "0 sign-ups, 0.0 per day");
        // No sign-up, no best day: `celebrate` did not run, and that is a success.
        assert!(result.try_output::<celebrate>().is_none());
    }

    #[test]
    fn a_config_without_days_is_refused_before_anything_runs() {
        let err = orch::testing::execute_job::<weekly_report>()
            .resource(Warehouse::default())
            .run()
            .unwrap_err();
        assert!(err.to_string().contains("missing field `days`"), "{err}");
    }
}
