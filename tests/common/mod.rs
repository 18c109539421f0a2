//! What the tests that run the examples through their command line share: running one with
//! its own run store, and reading what it printed. (Not every test file uses every helper.)
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `cargo run --example NAME -- ARGS` (a no-op build when `cargo test` already built it)
/// with a fresh run store.
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

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
