//! The op-job examples end to end through their command line: `ops_jobs` (config, a failing
//! step, re-execution from it) and the project layout's op job, and the stored outputs of op
//! job runs under retention.

mod common;

use common::{example_in, example_with, stderr, stdout};

#[test]
fn project_example_lists_and_runs_its_op_job_with_config() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "project", &["jobs"]);
    let text = stdout(&out);
    assert!(text.contains("refresh_users"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("weekly_report") && l.contains("collect_signups")),
        "{text}"
    );
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/project/weekly.toml");
    let out = example_in(
        home.path(),
        "project",
        &["job", "run", "weekly_report", "--config", config],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("5 succeeded"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("running 5 steps of job weekly_report"),
        "{}",
        stderr(&out)
    );
    // Without the config it needs, nothing runs, and the error names the op and the field.
    let out = example_in(home.path(), "project", &["job", "run", "weekly_report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the config of op `collect_signups` is invalid (in `[ops.collect_signups]`): missing field `days`"),
        "{}",
        stderr(&out)
    );
    let runs = stdout(&example_in(home.path(), "project", &["runs"]));
    assert_eq!(runs.matches("job:weekly_report").count(), 1, "{runs}");
}

#[test]
fn ops_jobs_example_fails_on_demand_and_reexecutes_only_the_failed_step() {
    let home = tempfile::tempdir().unwrap();
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = example_in(home.path(), "ops_jobs", &["job", "show", "my_pipeline"]);
    let text = stdout(&out);
    assert!(text.contains("report           (summary: Summary <- process_data, regions: BTreeMap<String, usize> <- count_by_region) -> String"), "{text}");
    let failing = format!("{dir}/examples/ops_jobs_failing.toml");
    let out = example_in(
        home.path(),
        "ops_jobs",
        &["job", "run", "my_pipeline", "--config", &failing],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("6 succeeded, 1 failed"), "{text}");
    let run = text
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split(':').next()))
        .unwrap()
        .to_owned();
    let out = example_in(
        home.path(),
        "ops_jobs",
        &["reexecute", &run, "--from-failure"],
    );
    let text = stdout(&out);
    // Only `publish` ran again, reading `report` from the first run; it fails again, since
    // a re-execution keeps the run's config.
    assert!(
        text.contains("0 succeeded, 1 failed, 0 skipped, 1 loaded"),
        "{text}"
    );
    assert!(text.contains("my_pipeline/report   loaded"), "{text}");
    // With the config fixed, the same re-execution succeeds.
    let fixed = format!("{dir}/examples/ops_jobs.toml");
    let out = example_in(
        home.path(),
        "ops_jobs",
        &["reexecute", &run, "--from-failure", "--config", &fixed],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 succeeded, 0 failed, 0 skipped, 1 loaded"),
        "{}",
        stdout(&out)
    );
    // A bad config file is refused with its path, before anything runs.
    let out = example_in(
        home.path(),
        "ops_jobs",
        &["reexecute", &run, "--config", "no-such.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the run config no-such.toml"),
        "{}",
        stderr(&out)
    );
    // Only op jobs: `jobs` starts with their table.
    let out = example_in(home.path(), "ops_jobs", &["jobs"]);
    assert!(stdout(&out).starts_with("OP JOB"), "{}", stdout(&out));
}

#[test]
fn the_regional_job_maps_over_regions_found_at_run_time() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "ops_jobs", &["job", "run", "regional"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = example_in(home.path(), "ops_jobs", &["job", "show", "regional"]);
    let show = stdout(&out);
    assert!(show.contains("Dynamic<Vec<Row>>"), "{show}");
    assert!(
        show.contains("map over list_regions; retries 1 per element"),
        "{show}"
    );
    let runs = stdout(&example_in(home.path(), "ops_jobs", &["runs"]));
    let id = runs
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let out = example_in(home.path(), "ops_jobs", &["run", "show", &id]);
    let shown = stdout(&out);
    // One step for the mapped op; each region's lines are marked with its key.
    assert!(shown.contains("regional/fetch_region"), "{shown}");
    assert!(shown.contains("[apac] fetched 20 rows"), "{shown}");
    assert!(shown.contains("small orders"), "{shown}");
}

#[test]
fn op_job_outputs_are_kept_per_run_and_go_when_retention_deletes_the_run() {
    let home = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ops_jobs.toml");
    let run = |envs: &[(&str, &str)]| {
        let out = example_with(
            home.path(),
            "ops_jobs",
            &["job", "run", "my_pipeline", "--config", config],
            envs,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run(&[]);
    run(&[]);
    let runs_dir = home.path().join("storage/_runs");
    let dirs = || -> Vec<String> {
        let mut d: Vec<String> = std::fs::read_dir(&runs_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        d.sort();
        d
    };
    assert_eq!(dirs().len(), 2);
    // Each run's outputs are under its own id.
    let first = dirs()[0].clone();
    assert!(
        runs_dir
            .join(&first)
            .join("my_pipeline/report.bin")
            .exists()
    );
    // A retention of 0 days deletes the older run (the newer one holds the latest outputs),
    // and its stored outputs with it.
    let out = example_with(
        home.path(),
        "ops_jobs",
        &["runs"],
        &[("ORCH_RETENTION_DAYS", "0")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left = dirs();
    assert_eq!(left.len(), 1, "{left:?}");
    let runs = stdout(&example_in(home.path(), "ops_jobs", &["runs"]));
    assert!(runs.contains(&left[0][..8]), "{runs}");
}
