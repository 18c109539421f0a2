//! The `scheduled` example through its command line: jobs, schedules and their ticks, and
//! `daemon --once` (a simulated weekend, and `kill -9` at arbitrary points).

mod common;

use std::process::Command;

use common::{example_in, stderr, stdout};

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
        text.contains("quarter_hourly: tick 2026-03-28T12:00:00+00:00: queued run "),
        "{text}"
    );
    assert!(
        text.contains("(47 earlier missed tick(s) not run)"),
        "{text}"
    );

    // Two days later: of the two nightly ticks missed (03:00 on the 29th, the spring gap's,
    // and 02:00 on the 30th), the latest runs.
    let text = daemon("2026-03-30T12:00:00Z");
    let queued = "nightly: tick 2026-03-30T02:00:00+02:00: queued run ";
    let line = text
        .lines()
        .find(|l| l.starts_with(queued))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with(" (1 earlier missed tick(s) not run)"),
        "{text}"
    );
    // The run the tick queued started and succeeded (in a child process).
    let id = &line[queued.len()..queued.len() + 8];
    assert!(text.contains(&format!("run {id} started")), "{text}");
    assert!(text.contains(&format!("run {id} succeeded")), "{text}");
    // The nightly run was in progress when automation evaluated, so the eager summary
    // waited for it.
    assert!(
        text.contains("automation: 1 asset(s) evaluated, none requested"),
        "{text}"
    );
    // The same instant again: no tick is due, and the eager summary follows the update of
    // `orders_cleaned` by the nightly run, once.
    let text = daemon("2026-03-30T12:00:00Z");
    assert!(
        text.contains("nightly: nothing due; next tick 2026-03-31T02:00:00+02:00"),
        "{text}"
    );
    assert!(
        text.contains("automation: requested order_summary (queued run "),
        "{text}"
    );
    let explain = stdout(&example_in(
        home.path(),
        "scheduled",
        &["automation", "explain", "order_summary"],
    ));
    assert!(
        explain.starts_with("order_summary: automation = eager()\nlast requested "),
        "{explain}"
    );
    assert!(
        explain.contains("✓ any_deps_updated(): updated: orders_cleaned (at "),
        "{explain}"
    );
    assert!(
        daemon("2026-03-30T12:00:00Z").contains("automation: 1 asset(s) evaluated, none requested"),
    );
    let explain = stdout(&example_in(
        home.path(),
        "scheduled",
        &["automation", "explain", "order_summary"],
    ));
    assert!(explain.contains("✗ eager()\n"), "{explain}");
    assert!(
        explain.contains(
            "✗ any_deps_updated(): no upstream updated since it was last requested or updated"
        ),
        "{explain}"
    );
    let out = example_in(
        home.path(),
        "scheduled",
        &["automation", "explain", "order_sumary"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `order_summary`?"),
        "{}",
        stderr(&out)
    );
    let out = example_in(
        home.path(),
        "scheduled",
        &["automation", "explain", "orders_raw"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no automation condition"),
        "{}",
        stderr(&out)
    );
    let history = stdout(&example_in(
        home.path(),
        "scheduled",
        &["schedule", "history", "nightly"],
    ));
    assert_eq!(history.lines().count(), 2, "{history}");
    // The first materialization, two ticks of the report, one nightly, one eager summary.
    let runs = stdout(&example_in(home.path(), "scheduled", &["runs"]));
    assert_eq!(
        runs.lines().filter(|l| l.contains("succeeded")).count(),
        5,
        "{runs}"
    );

    example_in(home.path(), "scheduled", &["automation", "pause"]);
    assert!(daemon("2026-03-31T12:00:00Z").contains("automation is paused"));
    let out = example_in(
        home.path(),
        "scheduled",
        &["daemon", "--at", "2026-03-31T12:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`--at` needs `--once`"),
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
    common::example_binary("scheduled")
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

    // The eager `order_summary` followed the nightly updates of `orders_cleaned`, killed
    // daemons or not: never requested twice for one update (between two of its automation
    // runs, `orders_cleaned` was materialized again), and up to date once settled.
    // (The first runs the day's nightly tick, the second the summary that follows it, the
    // third finds nothing to do.)
    for _ in 0..3 {
        run(&["daemon", "--once", "--at", "2026-04-22T12:00:00Z"]);
    }
    let instance = orch::Instance::open(home.path()).unwrap();
    let store = instance.storage();
    let mut automated: Vec<std::time::SystemTime> = store
        .runs(&orch::storage::RunFilter::default().tag("orch/automation", "true"))
        .unwrap()
        .iter()
        .map(|r| r.started)
        .collect();
    automated.sort();
    let updates: Vec<std::time::SystemTime> = store
        .materializations("orders_cleaned", 1_000)
        .unwrap()
        .iter()
        .map(|e| e.time)
        .collect();
    assert!(automated.len() >= 10, "{} automation runs", automated.len());
    assert!(automated.len() <= updates.len());
    for pair in automated.windows(2) {
        assert!(
            updates.iter().any(|&u| pair[0] < u && u < pair[1]),
            "two automation runs of order_summary with no update of orders_cleaned between"
        );
    }
    let explain = run(&["automation", "explain", "order_summary"]);
    assert!(explain.contains("✗ eager()"), "{explain}");
}

/// One daemon per store: a second one is refused with the holder's pid; SIGTERM stops the
/// holder cleanly (it lets go of the store), and after a `kill -9` the next daemon on this
/// machine takes over at once (the dead holder's lock file is free).
#[test]
fn one_daemon_holds_a_store_and_a_dead_ones_lease_is_taken_over() {
    use std::io::{BufRead, BufReader};
    let home = tempfile::tempdir().unwrap();
    let binary = scheduled_binary(home.path());
    let start = || {
        let mut child = Command::new(&binary)
            .arg("daemon")
            .env("ORCH_HOME", home.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.ends_with("holds the store"), "{first}");
        // Keep draining, so the daemon never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        child
    };
    let once = || {
        Command::new(&binary)
            .args(["daemon", "--once"])
            .env("ORCH_HOME", home.path())
            .output()
            .unwrap()
    };

    let mut holder = start();
    let out = once();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "another daemon holds this store: daemon pid {} on ",
            holder.id()
        )),
        "{}",
        stderr(&out)
    );
    // A sensor cannot be ticked by hand while the daemon evaluates it.
    let out = Command::new(&binary)
        .args(["sensor", "tick", "new_files"])
        .env("ORCH_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a daemon holds this store (daemon pid "),
        "{}",
        stderr(&out)
    );
    // SIGTERM: it stops and lets go.
    let term = Command::new("kill")
        .arg(holder.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    let out = once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // kill -9: no chance to let go, yet the next daemon takes over at once, well before the
    // 30 s lease would lapse.
    let mut holder = start();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The example's file-arrival sensor through the command line: each new file runs the job
/// once, the cursor is the last file seen, and `sensor history` shows every evaluation.
#[test]
fn the_file_sensor_runs_the_job_once_per_new_file() {
    let home = tempfile::tempdir().unwrap();
    let landing = tempfile::tempdir().unwrap();
    let landing_dir = landing.path().to_str().unwrap();
    let sensor = |args: &[&str]| {
        let out = common::example_with(
            home.path(),
            "scheduled",
            args,
            &[("LANDING_DIR", landing_dir)],
        );
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (_, listed, _) = sensor(&["sensors"]);
    assert!(listed.contains("new_files"), "{listed}");
    assert!(listed.contains("job daily_refresh"), "{listed}");

    for name in ["orders-2026-03-27.csv", "orders-2026-03-28.csv"] {
        std::fs::write(landing.path().join(name), "id,amount\n").unwrap();
    }
    let (code, text, err) = sensor(&["sensor", "tick", "new_files"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("sensor `new_files`: queued run "), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with(" succeeded") && l.starts_with("run "))
            .count(),
        2,
        "{text}"
    );
    let (_, cursor, _) = sensor(&["sensor", "cursor", "new_files"]);
    assert_eq!(cursor.trim(), "orders-2026-03-28.csv");

    // Nothing new; then one more file: one more run.
    let (_, text, _) = sensor(&["sensor", "tick", "new_files"]);
    assert!(text.contains("skipped: no new file"), "{text}");
    std::fs::write(landing.path().join("orders-2026-03-29.csv"), "id\n").unwrap();
    let (_, text, _) = sensor(&["sensor", "tick", "new_files"]);
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" succeeded")).count(),
        1,
        "{text}"
    );

    // Each run carries its file; the history shows the three evaluations.
    let runs = stdout(&common::example_in(
        home.path(),
        "scheduled",
        &["runs", "--tag", "orch/sensor=new_files"],
    ));
    assert_eq!(runs.lines().skip(1).count(), 3, "{runs}");
    let (_, history, _) = sensor(&["sensor", "history", "new_files"]);
    assert_eq!(history.lines().skip(1).count(), 3, "{history}");
    // A typo gets "did you mean".
    let (code, _, err) = sensor(&["sensor", "tick", "new_file"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("did you mean `new_files`?"), "{err}");
}

/// `business_hours` decides per tick: a market holiday runs nothing (recorded as skipped with
/// the reason), another day runs the job tagged with the hour.
#[test]
fn the_business_hours_schedule_decides_each_tick() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| example_in(home.path(), "scheduled", args);
    // The first tick after 23:00 UTC on Christmas Eve is Christmas, 09:00 in New York.
    let text = stdout(&run(&[
        "schedule",
        "preview",
        "business_hours",
        "--at",
        "2026-12-24T23:00:00Z",
    ]));
    assert!(
        text.contains("would run nothing: 2026-12-25 is a market holiday"),
        "{text}"
    );
    // `schedule tick --at` runs the latest tick at or before the instant: 09:00 on Christmas.
    let out = run(&[
        "schedule",
        "tick",
        "business_hours",
        "--at",
        "2026-12-25T14:30:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("skipped: 2026-12-25 is a market holiday"),
        "{}",
        stdout(&out)
    );
    // The next business day's 10:00 tick runs the job, tagged with its hour.
    let text = stdout(&run(&[
        "schedule",
        "preview",
        "business_hours",
        "--at",
        "2026-12-28T14:30:00Z",
    ]));
    assert!(text.contains("hour=10"), "{text}");
    let out = run(&[
        "schedule",
        "tick",
        "business_hours",
        "--at",
        "2026-12-28T15:30:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs = stdout(&run(&["runs", "--tag", "hour=10"]));
    assert_eq!(runs.lines().skip(1).count(), 1, "{runs}");
    let history = stdout(&run(&["schedule", "history", "business_hours"]));
    assert!(
        history.contains("skipped") && history.contains("market holiday"),
        "{history}"
    );
}
