//! The web UI's and cancellation's command line, through the `scheduled` example: `run cancel`
//! (a queued run at once, an ended one refused) and `ui`/`dev` refusing a public address
//! without a token.

mod common;

use common::{example_in, example_with, stderr, stdout};
use orch::storage::RunStatus;
use orch::{Instance, RunRequest};

#[test]
fn run_cancel_ends_a_queued_run_and_refuses_an_ended_one() {
    let home = tempfile::tempdir().unwrap();
    let instance = Instance::open(home.path()).unwrap();
    let id = instance
        .enqueue(RunRequest::select("orders_raw").unwrap())
        .unwrap();
    let out = example_in(home.path(), "scheduled", &["run", "cancel", id.short()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("canceled before it started"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        instance.storage().run(id.as_str()).unwrap().status,
        RunStatus::Canceled
    );
    let again = example_in(home.path(), "scheduled", &["run", "cancel", id.as_str()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already ended (canceled)"),
        "{}",
        stderr(&again)
    );
    let unknown = example_in(home.path(), "scheduled", &["run", "cancel", "zzzz"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn a_public_address_needs_a_long_token() {
    let home = tempfile::tempdir().unwrap();
    for command in ["ui", "dev"] {
        let out = example_in(
            home.path(),
            "scheduled",
            &[command, "--host", "0.0.0.0", "--port", "0"],
        );
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(stderr(&out).contains("ORCH_UI_TOKEN"), "{}", stderr(&out));
    }
    let out = example_with(
        home.path(),
        "scheduled",
        &["ui", "--host", "0.0.0.0", "--port", "0"],
        &[("ORCH_UI_TOKEN", "short")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shorter than 16"), "{}", stderr(&out));
}
