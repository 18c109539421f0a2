//! Another build of the program `tests/workers.rs` runs: the same asset `w_build` with another
//! code version. Its only test is the body of a worker process started by `workers.rs`, to
//! show that a worker runs only steps planned with its own code.

mod common;

use orch::prelude::*;

/// `w_build` as this other build has it (`workers.rs` has version "a").
#[asset(group = "build", code_version = "b")]
fn w_build() -> u64 {
    2
}

/// Not a test of its own: the worker process `workers.rs` starts runs orch's command line here.
#[test]
fn child_process() {
    let _ = common::ran_cli_child();
}
