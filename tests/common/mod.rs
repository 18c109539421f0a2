//! What the tests that run the examples through their command line share: running one with
//! its own run store, and reading what it printed; and what tests that start this test binary
//! again as a child process share. (Not every test file uses every helper.)
#![allow(dead_code)]

pub mod cluster;

use std::process::{Command, Output};

/// Runs example NAME with ARGS and a fresh run store: the binary `cargo test` built beside
/// this test (`cargo test` builds every example before it runs a test), or, when it is not
/// there, `cargo run --example`. (Run `cargo test --no-run` before `cargo test --test X`: a
/// test filter alone does not rebuild the examples.)
pub fn example(name: &str, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    example_in(home.path(), name, args)
}

/// The same, with the run store in `home`.
pub fn example_in(home: &std::path::Path, name: &str, args: &[&str]) -> Output {
    example_with(home, name, args, &[])
}

/// The same, with extra environment variables.
pub fn example_with(
    home: &std::path::Path,
    name: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let built = example_binary(name);
    let mut command = match built.exists() {
        true => Command::new(&built),
        false => {
            let mut cargo = Command::new(env!("CARGO"));
            cargo.args(["run", "--quiet", "--example", name, "--"]);
            cargo
        }
    };
    let output = command
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

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Where `cargo test` puts example NAME: `target/<profile>/examples/NAME`, beside this test's
/// `deps` directory.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The id of the latest run in `home`, as example NAME's `runs` lists it.
pub fn last_run_id(home: &std::path::Path, name: &str) -> String {
    let runs = stdout(&example_in(home, name, &["runs"]));
    runs.lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run listed: {runs}"))
        .to_owned()
}

/// This test binary again, running only its test `child_process`: the body of the child
/// processes its tests start, told what to do by environment variables.
pub fn this_binary_as_child() -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    command
}

/// In `child_process`: if the parent asked for orch's command line (`ORCH_TEST_CHILD_CLI`, its
/// arguments separated by spaces, `ORCH_HOME` set), runs it, checks it succeeded and returns
/// true.
pub fn ran_cli_child() -> bool {
    let Ok(args) = std::env::var("ORCH_TEST_CHILD_CLI") else {
        return false;
    };
    let code = orch::run_cli(std::iter::once("orch").chain(args.split(' ')));
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    true
}

/// The PostgreSQL server the tests use (`ORCH_TEST_POSTGRES_URL`; `.ci/run` starts one), or
/// `None`, and the test reports itself skipped, when none is set, unless CI requires one
/// (`ORCH_REQUIRE_POSTGRES`).
pub fn postgres_url() -> Option<String> {
    match std::env::var("ORCH_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("ORCH_REQUIRE_POSTGRES").is_none(),
                "ORCH_REQUIRE_POSTGRES is set but ORCH_TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: set ORCH_TEST_POSTGRES_URL to test against PostgreSQL");
            None
        }
    }
}

/// The S3 bucket the object storage tests use (`ORCH_TEST_S3_URL`, with the standard `AWS_*`
/// variables; `.ci/run` starts a local server), or `None`, and the test reports itself
/// skipped, when none is set, unless CI requires one (`ORCH_REQUIRE_S3`). Each caller adds
/// a prefix of its own.
pub fn s3_url() -> Option<String> {
    match std::env::var("ORCH_TEST_S3_URL") {
        Ok(url) => Some(url.trim_end_matches('/').to_owned()),
        Err(_) => {
            assert!(
                std::env::var_os("ORCH_REQUIRE_S3").is_none(),
                "ORCH_REQUIRE_S3 is set but ORCH_TEST_S3_URL is not"
            );
            eprintln!(
                "skipped: set ORCH_TEST_S3_URL (and AWS_ENDPOINT_URL, ...) to test against S3"
            );
            None
        }
    }
}

/// A prefix no other test run uses: `name`, the process and the clock.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}
