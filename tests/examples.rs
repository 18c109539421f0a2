//! The examples run end to end through their command line, with the documented exit codes.

use std::process::{Command, Output};

/// Runs `cargo run --example NAME -- ARGS` (a no-op build when `cargo test` already built it)
/// with a fresh run store.
fn example(name: &str, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    example_in(home.path(), name, args)
}

/// The same, with the run store in `home`.
fn example_in(home: &std::path::Path, name: &str, args: &[&str]) -> Output {
    example_with(home, name, args, &[])
}

/// The same, with extra environment variables.
fn example_with(
    home: &std::path::Path,
    name: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env_remove("FAIL_DAY")
        .env("ORCH_HOME", home)
        .envs(envs.iter().copied())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.code().is_some(),
        "example {name} was killed: {output:?}"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

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
fn modular_example_discovers_assets_across_files() {
    let out = example("modular", &["list"]);
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
    let out = example("modular", &["materialize", "--select", "+group:exports"]);
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
    let runs = stdout(&example_in(home.path(), "quickstart", &["runs"]));
    let id = runs
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
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

#[test]
fn scheduled_example_lists_its_job_and_schedules_and_runs_the_job() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "scheduled", &["jobs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with("daily_refresh"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("group:sources | group:transforms"), "{row}");
    assert!(
        row.contains("business_hours, every_six_hours, hourly, nightly"),
        "{row}"
    );

    let out = example_in(home.path(), "scheduled", &["schedules"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{text}"))
            .to_owned()
    };
    assert!(row("nightly").contains("0 2 * * *"), "{text}");
    assert!(row("nightly").contains("Europe/Paris"), "{text}");
    assert!(row("nightly").contains("stopped (default)"), "{text}");
    assert!(
        row("quarter_hourly").contains("running (default)"),
        "{text}"
    );

    // The spring change in Paris: 02:00 does not exist on the 29th, so that tick runs at 03:00.
    let out = example_in(
        home.path(),
        "scheduled",
        &[
            "schedule",
            "next",
            "nightly",
            "--count",
            "3",
            "--after",
            "2026-03-27T12:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "2026-03-28T02:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:00:00+02:00"
        ]
    );
    let out = example_in(home.path(), "scheduled", &["schedule", "next", "nigthly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`nigthly` is not a schedule: did you mean `nightly`?"),
        "{}",
        stderr(&out)
    );
    let out = example_in(
        home.path(),
        "scheduled",
        &["schedule", "next", "nightly", "--after", "yesterday"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`yesterday` is not an RFC 3339 instant"),
        "{}",
        stderr(&out)
    );

    // Status is kept in the run store; so is the global pause.
    let out = example_in(home.path(), "scheduled", &["schedule", "start", "nightly"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("schedule `nightly` is running"),
        "{}",
        stdout(&out)
    );
    let out = example_in(home.path(), "scheduled", &["automation", "pause"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&example_in(home.path(), "scheduled", &["schedules"]));
    let nightly = text.lines().find(|l| l.starts_with("nightly")).unwrap();
    assert!(
        nightly.contains("running") && !nightly.contains("default"),
        "{text}"
    );
    assert!(text.contains("automation is paused"), "{text}");
    example_in(home.path(), "scheduled", &["automation", "resume"]);
    example_in(home.path(), "scheduled", &["schedule", "stop", "nightly"]);
    let text = stdout(&example_in(home.path(), "scheduled", &["schedules"]));
    let nightly = text.lines().find(|l| l.starts_with("nightly")).unwrap();
    assert!(
        nightly.contains("stopped") && !nightly.contains("default"),
        "{text}"
    );
    assert!(!text.contains("automation is paused"), "{text}");
    let out = example_in(home.path(), "scheduled", &["schedule", "start", "nightlly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `nightly`?"),
        "{}",
        stderr(&out)
    );

    // A preview says what the next tick would run, and runs nothing.
    let out = example_in(
        home.path(),
        "scheduled",
        &[
            "schedule",
            "preview",
            "nightly",
            "--at",
            "2026-03-28T12:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "the tick at 2026-03-29T03:00:00+02:00 would run `group:sources or group:transforms`"
        ),
        "{text}"
    );
    assert!(
        text.contains("orch/job=daily_refresh, orch/schedule=nightly"),
        "{text}"
    );
    assert!(text.contains("orders_cleaned"), "{text}");
    let runs = stdout(&example_in(home.path(), "scheduled", &["runs"]));
    assert!(!runs.contains("succeeded"), "{runs}");

    // A tick runs once: again, it says what it launched.
    let tick = [
        "schedule",
        "tick",
        "nightly",
        "--at",
        "2026-03-29T12:00:00Z",
    ];
    let out = example_in(home.path(), "scheduled", &tick);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("tick 2026-03-29T03:00:00+02:00 of `nightly`: run "),
        "{}",
        stdout(&out)
    );
    let out = example_in(home.path(), "scheduled", &tick);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("tick 2026-03-29T03:00:00+02:00 of `nightly` already ran (success: run "),
        "{}",
        stdout(&out)
    );
    let history = stdout(&example_in(
        home.path(),
        "scheduled",
        &["schedule", "history", "nightly"],
    ));
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(
        history.contains("2026-03-29T03:00:00+02:00  success"),
        "{history}"
    );
    let ticked = stdout(&example_in(
        home.path(),
        "scheduled",
        &["runs", "--tag", "orch/schedule=nightly"],
    ));
    assert_eq!(
        ticked.lines().filter(|l| l.contains("succeeded")).count(),
        1,
        "{ticked}"
    );

    // A job runs its selection, tagged with its name.
    let out = example_in(
        home.path(),
        "scheduled",
        &["materialize", "--job", "daily_refresh"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("orders_cleaned"), "{text}");
    assert!(!text.contains("revenue_report"), "{text}");
    // The tick's run and this one: both are the job's.
    let out = example_in(
        home.path(),
        "scheduled",
        &["runs", "--tag", "orch/job=daily_refresh"],
    );
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains("succeeded"))
            .count(),
        2,
        "{}",
        stdout(&out)
    );
    let out = example_in(
        home.path(),
        "scheduled",
        &["materialize", "--job", "daily_refrsh"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`daily_refrsh` is not an asset job: did you mean `daily_refresh`?"),
        "{}",
        stderr(&out)
    );
}

/// `daemon --once --at` through a simulated weekend (the spring change in Paris): successive
/// calls behave as one daemon; a running schedule runs the latest due tick once.
#[test]
fn daemon_once_runs_what_is_due_as_of_each_instant_and_never_twice() {
    let home = tempfile::tempdir().unwrap();
    let daemon = |at: &str| {
        let out = example_in(home.path(), "scheduled", &["daemon", "--once", "--at", at]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    // The report's inputs exist (its schedule runs the report alone).
    let out = example_in(home.path(), "scheduled", &["materialize"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = daemon("2026-03-28T00:00:00Z");
    assert!(
        text.contains("quarter_hourly: running from now on; next tick 2026-03-28T00:15:00+00:00"),
        "{text}"
    );
    assert!(text.contains("nightly: stopped"), "{text}");

    example_in(home.path(), "scheduled", &["schedule", "start", "nightly"]);
    let text = daemon("2026-03-28T12:00:00Z");
    assert!(
        text.contains("nightly: running from now on; next tick 2026-03-29T03:00:00+02:00"),
        "{text}"
    );
    assert!(
        text.contains("quarter_hourly: tick 2026-03-28T12:00:00+00:00: run "),
        "{text}"
    );
    assert!(
        text.contains("(47 earlier missed tick(s) not run)"),
        "{text}"
    );

    // Two days later: of the two nightly ticks missed (03:00 on the 29th, the spring gap's,
    // and 02:00 on the 30th), the latest runs.
    let text = daemon("2026-03-30T12:00:00Z");
    assert!(
        text.contains("nightly: tick 2026-03-30T02:00:00+02:00: run "),
        "{text}"
    );
    assert!(
        text.contains("succeeded (1 earlier missed tick(s) not run)"),
        "{text}"
    );
    // The same instant again: nothing is due.
    let text = daemon("2026-03-30T12:00:00Z");
    assert!(
        text.contains("nightly: nothing due; next tick 2026-03-31T02:00:00+02:00"),
        "{text}"
    );
    let history = stdout(&example_in(
        home.path(),
        "scheduled",
        &["schedule", "history", "nightly"],
    ));
    assert_eq!(history.lines().count(), 2, "{history}");
    // The first materialization, two ticks of the report, one nightly.
    let runs = stdout(&example_in(home.path(), "scheduled", &["runs"]));
    assert_eq!(
        runs.lines().filter(|l| l.contains("succeeded")).count(),
        4,
        "{runs}"
    );

    example_in(home.path(), "scheduled", &["automation", "pause"]);
    assert!(daemon("2026-03-31T12:00:00Z").contains("automation is paused"));
    let out = example_in(home.path(), "scheduled", &["daemon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("use `daemon --once`")
            || stderr(&out).contains("run `daemon --once`"),
        "{}",
        stderr(&out)
    );
}

/// The built `scheduled` example, to start and kill directly (`cargo run` would be killed
/// instead of it).
fn scheduled_binary(home: &std::path::Path) -> std::path::PathBuf {
    // Builds it if needed.
    let out = example_in(home, "scheduled", &["jobs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let deps = std::env::current_exe().unwrap();
    let debug = deps.parent().unwrap().parent().unwrap();
    debug.join("examples").join("scheduled")
}

/// `kill -9` of `daemon --once` at arbitrary points while it runs a tick, 20 times: the next
/// call resumes, and every tick's run is launched exactly once.
#[test]
fn a_killed_daemon_never_launches_a_tick_twice() {
    let home = tempfile::tempdir().unwrap();
    let binary = scheduled_binary(home.path());
    let run = |args: &[&str]| {
        let out = Command::new(&binary)
            .args(args)
            .env("ORCH_HOME", home.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&["schedule", "stop", "quarter_hourly"]);
    run(&["schedule", "start", "nightly"]);
    run(&["daemon", "--once", "--at", "2026-04-01T12:00:00Z"]);
    // A small generator for the kill delays (deterministic, so a failure can be replayed).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed_mid_way = 0;
    for day in 2..22 {
        let at = format!("2026-04-{day:02}T12:00:00Z");
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay = std::time::Duration::from_micros(seed >> 47); // 0..131 ms
        let mut child = Command::new(&binary)
            .args(["daemon", "--once", "--at", &at])
            .env("ORCH_HOME", home.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // The next call finishes what the killed one began.
        run(&["daemon", "--once", "--at", &at]);
        // The tick at 02:00 in Paris (00:00 UTC in April) has exactly one run.
        let tag = format!("orch/tick=nightly@2026-04-{day:02}T00:00:00Z");
        let runs = run(&["runs", "--tag", &tag]);
        assert_eq!(
            runs.lines().skip(1).count(),
            1,
            "day {day}, killed after {delay:?}:\n{runs}"
        );
        let history = run(&["schedule", "history", "nightly", "-n", "1"]);
        assert!(history.contains("success"), "day {day}: {history}");
    }
    // The delays must have caught some runs mid-way, or the test proves nothing.
    assert!(
        killed_mid_way >= 5,
        "only {killed_mid_way} of 20 daemons were still running"
    );
    let history = run(&["schedule", "history", "nightly", "-n", "100"]);
    assert_eq!(history.lines().count(), 21, "{history}");
}
