//! The `scheduled` example's asset policies through its command line: freshness (`health`,
//! `list`, the daemon's recorded changes) and asset checks (`checks`, `check run`, `list`,
//! `history`). The schedules, the sensor and the daemon are `tests/scheduled_example.rs`.

mod common;

use common::{example_in, stderr, stdout};

/// `health --at` as `orders_cleaned` (fresh within 1h, warned after 30m) ages: pass, warn,
/// fail (exit 1); `list` shows the state; the daemon records the change it saw.
#[test]
fn health_passes_then_warns_then_fails_as_the_materialization_ages() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| example_in(home.path(), "scheduled", args);
    let health = |at: jiff::Timestamp| {
        let out = run(&["health", "--at", &at.to_string()]);
        (out.status.code(), stdout(&out))
    };
    let now = jiff::Timestamp::now();
    let (code, text) = health(now);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("0 of 1 asset(s) with a freshness policy pass; 1 never materialized"),
        "{text}"
    );

    let out = run(&["materialize", "--job", "daily_refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = jiff::Timestamp::now();
    let (code, text) = health(done + jiff::SignedDuration::from_mins(20));
    assert_eq!(code, Some(0));
    assert!(
        text.contains("1 of 1 asset(s) with a freshness policy pass"),
        "{text}"
    );
    let list = stdout(&run(&["list"]));
    assert!(list.lines().next().unwrap().contains("FRESHNESS"), "{list}");
    let row = list
        .lines()
        .find(|l| l.starts_with("orders_cleaned"))
        .unwrap();
    assert!(row.contains(" pass "), "{list}");

    let (code, text) = health(done + jiff::SignedDuration::from_mins(45));
    assert_eq!(code, Some(0), "a warning is not a failure");
    let row = text
        .lines()
        .find(|l| l.starts_with("orders_cleaned"))
        .unwrap();
    assert!(row.contains(" warn "), "{text}");
    assert!(row.contains("within 1h (warn after 30m)"), "{text}");
    assert!(row.contains("last materialized 45m"), "{text}");
    assert!(text.contains("0 failing, 1 warning, 0 passing"), "{text}");

    let late = done + jiff::SignedDuration::from_hours(2);
    let (code, text) = health(late);
    assert_eq!(code, Some(1), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("orders_cleaned"))
        .unwrap();
    assert!(row.contains(" fail "), "{text}");
    assert!(row.contains(", more than 1h"), "{text}");
    assert!(row.contains(" - "), "no daemon recorded it yet: {text}");

    // The daemon records the change it sees; `health` then says since when.
    let out = run(&["daemon", "--once", "--at", &late.to_string()]);
    assert!(
        stdout(&out).contains("freshness: orders_cleaned new -> fail: last materialized 2h"),
        "{}",
        stdout(&out)
    );
    let (_, text) = health(late);
    let row = text
        .lines()
        .find(|l| l.starts_with("orders_cleaned"))
        .unwrap();
    assert!(!row.contains(" - "), "{text}");
}

/// The asset checks through the command line: they run after `orders_cleaned` in every run,
/// `checks` lists them with their latest results, `check run` runs them alone on the stored
/// value, and `list` and `history` show them.
#[test]
fn checks_run_with_their_asset_and_alone_and_are_listed() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| example_in(home.path(), "scheduled", args);
    let text = stdout(&run(&["checks"]));
    let row = text.lines().find(|l| l.contains("orders_over_50")).unwrap();
    assert!(row.starts_with("orders_cleaned"), "{text}");
    assert!(
        row.contains(" yes ") && row.contains(" error ") && row.contains("never run"),
        "{text}"
    );

    let out = run(&["materialize", "--job", "daily_refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&run(&["checks", "orders_cleaned"]));
    let over = text.lines().find(|l| l.contains("orders_over_50")).unwrap();
    assert!(over.contains(" passed "), "{text}");
    // Three orders are over 50 (120, 80, 300): enough, so the warning check passes.
    let enough = text.lines().find(|l| l.contains("enough_orders")).unwrap();
    assert!(
        enough.contains(" warn ") && enough.contains(" passed "),
        "{text}"
    );

    let out = run(&["check", "run", "orders_cleaned"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("2 check(s) of orders_cleaned on its stored value"),
        "{text}"
    );
    assert!(text.contains("passed  orders_over_50"), "{text}");
    // Re-executing a check-only run would materialize the asset: refused, with the way.
    let id = &text["run ".len().."run ".len() + 8];
    let out = run(&["reexecute", id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("only ran asset checks")
            && stderr(&out).contains("`check run orders_cleaned`"),
        "{}",
        stderr(&out)
    );

    let list = stdout(&run(&["list"]));
    assert!(list.lines().next().unwrap().contains("CHECKS"), "{list}");
    let row = list
        .lines()
        .find(|l| l.starts_with("orders_cleaned"))
        .unwrap();
    assert!(row.contains("2 passed"), "{list}");
    let history = stdout(&run(&["history", "orders_cleaned"]));
    assert!(
        history.contains("orders_over_50 passed, enough_orders passed")
            || history.contains("enough_orders passed, orders_over_50 passed"),
        "{history}"
    );

    let out = run(&["check", "run", "orders_cleand"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `orders_cleaned`?"),
        "{}",
        stderr(&out)
    );
    let out = run(&["check", "run", "orders_raw"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no checks"), "{}", stderr(&out));
}
