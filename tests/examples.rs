//! The examples run end to end through their command line, with the documented exit codes.

mod common;

use common::{example, example_in, example_with, last_run_id, stderr, stdout};

#[test]
fn quickstart_materializes_everything_by_default() {
    let out = example("quickstart", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for key in ["readings", "scaled", "count", "summary"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(key) && l.contains(" ok ")),
            "{key} missing in:\n{text}"
        );
    }
    assert!(text.contains("4 succeeded, 0 failed, 0 skipped"), "{text}");
    // Not a terminal: progress is plain lines on stderr.
    assert!(
        stderr(&out).contains("materializing 4 assets"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn quickstart_selects_lists_and_draws_lineage() {
    let out = example(
        "quickstart",
        &["materialize", "--select", "+scaled", "--jobs", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 succeeded"), "{}", stdout(&out));

    let out = example("quickstart", &["list"]);
    let text = stdout(&out);
    assert!(text.starts_with("ASSET"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("summary") && l.contains("scaled, count")),
        "{text}"
    );

    let out = example("quickstart", &["lineage", "--format", "dot"]);
    let text = stdout(&out);
    assert!(text.starts_with("digraph assets {"), "{text}");
    assert!(text.contains("\"readings\" -> \"scaled\";"), "{text}");

    let out = example(
        "quickstart",
        &["lineage", "--format", "mermaid", "--select", "summary"],
    );
    assert!(stdout(&out).contains("flowchart LR"), "{}", stdout(&out));
}

#[test]
fn usage_errors_exit_with_2() {
    let out = example("quickstart", &["materialize", "--select", "sumary"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no asset has the key `sumary`; did you mean `summary`?"),
        "{}",
        stderr(&out)
    );
    let out = example("quickstart", &["materialize", "--select", "summary and ("]);
    assert_eq!(out.status.code(), Some(2));
    let out = example("quickstart", &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = example("quickstart", &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("materialize"), "{}", stdout(&out));
}

#[test]
fn failure_example_isolates_the_failing_branch_and_exits_with_1() {
    let out = example("failure", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let row = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or("")
            .to_owned()
    };
    assert!(row("exchange_rates").contains("FAILED"), "{text}");
    assert!(
        row("exchange_rates").contains("rate service refused the connection"),
        "{text}"
    );
    assert!(row("orders_in_eur").contains("skipped"), "{text}");
    assert!(row("order_count ").contains(" ok "), "{text}");
    assert!(text.contains("2 succeeded, 1 failed, 1 skipped"), "{text}");
    assert!(text.contains("WARN  rate service unreachable"), "{text}");
}

#[test]
fn project_example_discovers_assets_across_files() {
    let out = example("project", &["list"]);
    let text = stdout(&out);
    for (key, group) in [
        ("api_users_raw", "sources"),
        ("users_cleaned", "transforms"),
        ("user_stats", "analytics"),
        ("stats_csv", "exports"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(key) && l.contains(group)),
            "{key} in {group} missing:\n{text}"
        );
    }
    let out = example("project", &["materialize", "--select", "+group:exports"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("4 succeeded"), "{}", stdout(&out));
}

#[test]
fn runs_are_recorded_and_shown() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(
        example_in(home.path(), "failure", &[]).status.code(),
        Some(1)
    );
    let out = example_in(
        home.path(),
        "quickstart",
        &["materialize", "--select", "readings"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let text = stdout(&example_in(home.path(), "quickstart", &["runs"]));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("RUN"), "{text}");
    assert!(
        rows[1].contains("succeeded") && rows[1].contains("1/0/0 of 1"),
        "{text}"
    );
    assert!(
        rows[2].contains("failed") && rows[2].contains("2/1/1 of 4"),
        "{text}"
    );

    let failed_id = rows[2].split_whitespace().next().unwrap();
    let out = example_in(home.path(), "failure", &["run", "show", failed_id]);
    let text = stdout(&out);
    assert!(text.contains("(failed, trigger manual)"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("exchange_rates")
            && l.contains("failed")
            && l.contains("rate service refused the connection")),
        "{text}"
    );
    assert!(
        text.contains("WARN  exchange_rates: rate service unreachable"),
        "{text}"
    );

    let text = stdout(&example_in(
        home.path(),
        "quickstart",
        &["history", "readings"],
    ));
    assert!(text.starts_with("MATERIALIZED"), "{text}");
    assert!(text.contains("rows=10"), "{text}");

    let text = stdout(&example_in(home.path(), "quickstart", &["list"]));
    let row = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or("")
            .to_owned()
    };
    assert!(row("readings").contains("materialized"), "{text}");
    assert!(row("summary").contains("never"), "{text}");

    // --ephemeral records nothing.
    example_in(home.path(), "quickstart", &["materialize", "--ephemeral"]);
    let text = stdout(&example_in(home.path(), "quickstart", &["runs"]));
    assert_eq!(text.lines().count(), 3, "{text}");

    let out = example_in(home.path(), "quickstart", &["run", "show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no run has the id `nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reexecute_from_failure_runs_only_what_did_not_succeed() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(
        example_in(home.path(), "failure", &[]).status.code(),
        Some(1)
    );
    let runs = stdout(&example_in(home.path(), "failure", &["runs"]));
    let failed_id = runs
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let out = example_in(
        home.path(),
        "failure",
        &["reexecute", &failed_id, "--from-failure"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    // `orders` succeeded before: it is loaded from storage, not run again.
    assert!(
        text.lines()
            .any(|l| l.starts_with("orders ") && l.contains("loaded")),
        "{text}"
    );
    assert!(
        text.contains("0 succeeded, 1 failed, 1 skipped, 1 loaded from storage"),
        "{text}"
    );
    let runs = stdout(&example_in(home.path(), "failure", &["runs"]));
    assert!(
        runs.lines().nth(1).unwrap().contains("0/1/1 of 2"),
        "{runs}"
    );

    // A run without failures has nothing to re-execute.
    let home = tempfile::tempdir().unwrap();
    example_in(home.path(), "quickstart", &[]);
    let id = last_run_id(home.path(), "quickstart");
    let out = example_in(
        home.path(),
        "quickstart",
        &["reexecute", &id, "--from-failure"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("nothing to re-execute"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_custom_io_manager_stores_a_table_and_reads_it_back() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "sql_io_manager", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The rows are in the warehouse table, checked with SQL directly.
    let db = rusqlite::Connection::open(home.path().join("warehouse.db")).unwrap();
    let (rows, cents): (i64, i64) = db
        .query_row(
            "SELECT count(*), sum(amount_cents) FROM \"orders_cleaned\"",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let expected: Vec<i64> = (1..=50).filter(|id| id % 10 != 0).collect();
    assert_eq!(rows, expected.len() as i64);
    assert_eq!(cents, expected.iter().map(|id| id * 125).sum::<i64>());

    // `revenue` alone reads `orders_cleaned` back from the table.
    let out = example_in(
        home.path(),
        "sql_io_manager",
        &["materialize", "--select", "revenue"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("orders_cleaned") && l.contains("loaded")),
        "{text}"
    );
    assert!(text.contains("1 succeeded"), "{text}");
}

#[test]
fn partitioned_backfill_reports_a_failed_day_and_reruns_it() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], fail_day: Option<&str>| match fail_day {
        Some(day) => example_with(home.path(), "partitioned", args, &[("FAIL_DAY", day)]),
        None => example_in(home.path(), "partitioned", args),
    };
    // `materialize` without a partition: the error says how to choose one.
    let out = run(&["materialize"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("choose one with `--partition KEY`"),
        "{}",
        stderr(&out)
    );

    // Runs over ranges need assets that take them: refused once, before anything runs.
    let quarter = [
        "backfill",
        "--select",
        "*",
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-31",
    ];
    let out = run(
        &[&quarter[..], &["--partitions-per-run", "10"]].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("cannot run over a range of partitions in one run: it has no `partition_by"),
        "{}",
        stderr(&out)
    );
    let out = run(&quarter, Some("2024-01-13"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("backfill: 90 of 91 partitions succeeded, 1 failed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(
            "partition 2024-01-13 FAILED: `events_raw`: the source has no data for 2024-01-13"
        ),
        "{}",
        stderr(&out)
    );
    // What reads every partition waits until they all succeed.
    assert!(
        stderr(&out).contains(
            "not materializing `quarter_counts` (they read every partition, and some failed)"
        ),
        "{}",
        stderr(&out)
    );
    // So does what reads other days.
    assert!(
        stderr(&out).contains(
            "not materializing `rolling_week` (they read other partitions, and some failed)"
        ),
        "{}",
        stderr(&out)
    );
    let text = stdout(&run(&["partitions", "events_raw"], None));
    assert!(text.contains("91 partitions"), "{text}");
    assert!(
        text.contains("materialized      90  2024-01-01..2024-01-12, 2024-01-14..2024-03-31"),
        "{text}"
    );
    assert!(text.contains("failed             1  2024-01-13"), "{text}");

    // The failed day re-runs on its own (what reads every partition cannot join that run).
    let out = run(
        &[
            "materialize",
            "--select",
            "events_raw+",
            "--partition",
            "2024-01-13",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("asset `quarter_counts` reads every partition of `daily_counts`, so it cannot run inside a one-partition run"), "{}", stderr(&out));
    let out = run(
        &[
            "materialize",
            "--select",
            "events_raw or daily_counts",
            "--partition",
            "2024-01-13",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&run(&["partitions", "daily_counts"], None));
    assert!(
        text.contains("materialized      91  2024-01-01..2024-03-31"),
        "{text}"
    );
    assert!(text.contains("missing            0"), "{text}");

    // Now every partition is there: the quarter reads them all. Day d of a month has d events
    // per region, so a region's quarter total is the sum of the days of the three months.
    let out = run(&["materialize", "--select", "quarter_counts"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let per_region: i64 = (1..=31).sum::<i64>() + (1..=29).sum::<i64>() + (1..=31).sum::<i64>();
    let text = stdout(&run(&["history", "quarter_counts"], None));
    assert!(text.contains("rows=2"), "{text}");
    assert!(text.contains(&per_region.to_string()), "{text}");

    // The rolling week, backfilled: each day reads the 7 days ending with it (day d of a
    // month has d events per region). Check the one recorded last, whichever day it is.
    let out = run(
        &[
            "backfill",
            "--select",
            "rolling_week",
            "--from",
            "2024-01-01",
            "--to",
            "2024-03-31",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&run(&["history", "rolling_week", "--limit", "1"], None));
    let day: orch::partitions::jiff::civil::Date = text
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().nth(3))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let week: Vec<_> = (0..7)
        .filter_map(|back| {
            day.checked_sub(orch::partitions::jiff::Span::new().days(back))
                .ok()
        })
        .filter(|d| d.year() == 2024)
        .collect();
    let events: i64 = week.iter().map(|d| i64::from(d.day())).sum();
    let row = format!("│ eu     ┆ {events:<6} ┆ {:<4} │", week.len());
    assert!(text.contains(&row), "{row}\n{text}");

    // Every partition of every asset is up to date now, each decided partition by partition
    // (the quarter against all days combined, the rolling week against its seven days).
    let out = run(&["materialize", "--stale"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("everything is up to date"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn orders_pipeline_matches_sql_computed_independently() {
    let home = tempfile::tempdir().unwrap();
    let out = example_with(home.path(), "orders", &[], &[("ORDERS_ROWS", "20000")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("backfill: 365 of 365 partitions succeeded, 0 failed"),
        "{}",
        stdout(&out)
    );

    // The same numbers straight from the generated table, in SQL.
    let db = rusqlite::Connection::open(home.path().join("orders.db")).unwrap();
    let clean = "FROM orders WHERE amount IS NOT NULL AND status != 'cancelled'";
    let (days, customers, revenue): (i64, i64, f64) = db
        .query_row(
            &format!(
                "SELECT count(DISTINCT date), count(DISTINCT customer_id), sum(amount) {clean}"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let total: i64 = db
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 20_000);

    let exports = home.path().join("exports");
    let daily = std::fs::read_to_string(exports.join("daily_revenue.csv")).unwrap();
    let mut lines = daily.lines();
    assert_eq!(lines.next(), Some("date,revenue"));
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let (d, r) = l.split_once(',').unwrap();
            (d.to_owned(), r.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len() as i64, days);
    let exported: f64 = rows.iter().map(|r| r.1).sum();
    assert!((exported - revenue).abs() < 0.01, "{exported} vs {revenue}");
    // One day checked on its own.
    let (day, day_revenue) = &rows[100];
    let expected: f64 = db
        .query_row(
            &format!("SELECT sum(amount) {clean} AND date = ?1"),
            [day],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        (day_revenue - expected).abs() < 1e-6,
        "{day}: {day_revenue} vs {expected}"
    );

    let summary = std::fs::read_to_string(exports.join("customer_summary.csv")).unwrap();
    let mut lines = summary.lines();
    assert_eq!(lines.next(), Some("customer_id,orders,total,mean"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(summary.lines().count() as i64 - 1, customers);
    let (orders, sum): (i64, f64) = db
        .query_row(
            &format!("SELECT count(*), sum(amount) {clean} AND customer_id = ?1"),
            [first[0].parse::<i64>().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(first[1].parse::<i64>().unwrap(), orders);
    assert!((first[2].parse::<f64>().unwrap() - sum).abs() < 1e-6);

    // The exports are tracked files: their paths and sizes are recorded.
    let history = stdout(&example_in(
        home.path(),
        "orders",
        &["history", "export_csv"],
    ));
    let size = std::fs::metadata(exports.join("customer_summary.csv"))
        .unwrap()
        .len();
    assert!(history.contains(&format!("bytes 2={size}")), "{history}");
    assert!(history.contains("daily_revenue.csv"), "{history}");
}

#[test]
fn orders_in_runs_of_a_hundred_days_export_the_same() {
    let (daily, ranged) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rows = [("ORDERS_ROWS", "5000")];
    let out = example_with(daily.path(), "orders", &[], &rows);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let year = ["--from", "2024-01-01", "--to", "2024-12-30"];
    let out = example_with(
        ranged.path(),
        "orders",
        &[
            &["backfill", "--select", "*"][..],
            &year,
            &["--partitions-per-run", "100"],
        ]
        .concat(),
        &rows,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("backfilling 365 partitions of `*` (2024-01-01 to 2024-12-30), 100 per run"),
        "{}",
        stderr(&out)
    );
    // Four runs (100, 100, 100, 65 days) stored every day apart, and the same exports.
    let text = stdout(&example_in(
        ranged.path(),
        "orders",
        &["partitions", "orders_cleaned"],
    ));
    assert!(
        text.contains("materialized     365  2024-01-01..2024-12-30"),
        "{text}"
    );
    for file in ["daily_revenue.csv", "customer_summary.csv"] {
        let read = |home: &std::path::Path| {
            std::fs::read_to_string(home.join("exports").join(file)).unwrap()
        };
        let (a, b) = (read(daily.path()), read(ranged.path()));
        assert_eq!(a.lines().count(), b.lines().count(), "{file}");
        for (x, y) in a.lines().zip(b.lines()).skip(1) {
            for (u, v) in x.split(',').zip(y.split(',')) {
                let (u, v): (f64, f64) = (u.parse().unwrap_or(0.0), v.parse().unwrap_or(0.0));
                assert!(
                    (u - v).abs() <= 1e-9 * u.abs().max(1.0),
                    "{file}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn embedded_example_submits_two_runs_follows_them_live_and_cancels_one() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "embedded", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("daily: succeeded; reports: canceled"),
        "{text}"
    );
    // The live feed showed both runs' events as they came.
    for line in [
        "orders        materialized",
        "slow_report   started",
        "report_email  canceled",
        "run           run_canceled",
    ] {
        assert!(text.contains(line), "`{line}` missing in:\n{text}");
    }
    let runs: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("recent runs"))
        .skip(1)
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(
        runs.iter()
            .any(|l| l.contains("succeeded") && l.contains("group:daily"))
    );
    assert!(
        runs.iter()
            .any(|l| l.contains("canceled") && l.contains("group:reports"))
    );
}

#[test]
fn config_says_where_each_setting_comes_from() {
    let home = tempfile::tempdir().unwrap();
    let out = example_with(
        home.path(),
        "quickstart",
        &["config"],
        &[("ORCH_JOBS", "3")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
            .to_owned()
    };
    assert!(
        row("home").contains(&*home.path().to_string_lossy()),
        "{text}"
    );
    assert!(row("home").ends_with("$ORCH_HOME"), "{text}");
    assert!(
        row("run.jobs").contains(" 3 ") && row("run.jobs").ends_with("$ORCH_JOBS"),
        "{text}"
    );
    assert!(
        row("retention.runs").contains("90d") && row("retention.runs").ends_with("default"),
        "{text}"
    );
    // A bad value is a usage error naming the variable.
    let out = example_with(
        home.path(),
        "quickstart",
        &["config"],
        &[("ORCH_JOBS", "many")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("$ORCH_JOBS: invalid run.jobs `many`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(
        home.path(),
        "quickstart",
        &["materialize", "--dry-run", "--stale"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("plan for `stale in (*)` (dry run: nothing runs)"),
        "{text}"
    );
    assert!(
        text.contains("would run 4 assets, in this order:"),
        "{text}"
    );
    assert!(text.contains("stale: never materialized"), "{text}");
    // Nothing ran: the store has no run.
    let runs = stdout(&example_in(home.path(), "quickstart", &["runs"]));
    assert!(runs.contains("no runs yet"), "{runs}");
}
