//! Tests of the PostgreSQL run store, on the server `ORCH_TEST_POSTGRES_URL` names (`.ci/run`
//! starts one and requires it); each test in a schema of its own, dropped after.

use std::time::SystemTime;

use super::super::{RunRecord, RunStatus, Storage};
use super::PgStorage;

/// The test server's URL; `None` (the test reports itself skipped) when none is set, unless
/// CI requires one.
pub(crate) fn server() -> Option<String> {
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

/// A schema of its own for one test, dropped (with everything in it) when this is.
pub(crate) struct Scratch {
    url: String,
    pub(crate) schema: String,
}

impl Scratch {
    pub(crate) fn new(url: &str, name: &str) -> Scratch {
        let schema = format!(
            "orch_test_{name}_{}_{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        Scratch {
            url: url.to_owned(),
            schema,
        }
    }

    pub(crate) fn store(&self) -> PgStorage {
        PgStorage::connect_in_schema(&self.url, &self.schema).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = self
            .url
            .parse::<postgres::Config>()
            .and_then(|c| c.connect(postgres::NoTls))
        {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

#[test]
fn a_postgres_store_conforms() {
    let Some(url) = server() else { return };
    let n = std::sync::atomic::AtomicUsize::new(0);
    let scratches = std::sync::Mutex::new(Vec::new());
    crate::storage::conformance::run_all(&|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = Scratch::new(&url, &format!("conf{i}"));
        let store = scratch.store();
        scratches.lock().unwrap().push(scratch);
        Box::new(store)
    });
}

#[test]
fn opening_twice_migrates_once_and_a_newer_schema_is_refused() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "migrate");
    drop(scratch.store());
    let store = scratch.store();
    let version = store.with(|c| Ok(super::schema::version(c)?)).unwrap();
    assert_eq!(version, super::schema::MIGRATIONS.len() as i64);
    store
        .with(|c| Ok(c.execute("UPDATE orch_schema SET version = 99", &[])?))
        .unwrap();
    drop(store);
    let err = PgStorage::connect_in_schema(&url, &scratch.schema)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has schema version 99, newer than this orch understands"),
        "{err}"
    );
}

#[test]
fn processes_opening_a_new_store_at_once_all_succeed() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "race");
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (url, schema) = (url.clone(), scratch.schema.clone());
            std::thread::spawn(move || PgStorage::connect_in_schema(&url, &schema).map(drop))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
}

#[test]
fn a_bad_url_or_an_unreachable_server_is_an_error_naming_it_without_the_password() {
    let err = PgStorage::connect("postgres://me:secret@127.0.0.1:1/db")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the run store at postgres 127.0.0.1:1/db failed: "),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    let err = PgStorage::connect("postgres://me:secret@host:notaport/db")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a PostgreSQL connection URL"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

fn run(id: &str) -> RunRecord {
    RunRecord::new(id.into(), &crate::run::RunRequest::all(), 2)
}

#[test]
fn a_live_claim_refuses_a_second_run_and_a_dead_ones_is_taken_over() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "claims");
    // Two processes: two stores, two sessions.
    let one = scratch.store();
    let other = scratch.store();
    let assets = ["a".to_owned(), "raw/users".to_owned()];
    let alive = one.hold_alive("run-one").unwrap();
    one.begin_run(&run("run-one"), &assets).unwrap();
    assert!(other.is_alive("run-one").unwrap());
    assert!(one.is_alive("run-one").unwrap());
    let err = other
        .begin_run(&run("run-two"), &["b".to_owned(), "raw/users".to_owned()])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "asset `raw/users` is being materialized by run run-one right now; wait for it to finish or select other assets"
    );
    // Nothing of the refused run was kept.
    assert!(other.run("run-two").is_err());
    assert!(other.recover_crashed().unwrap().is_empty());
    // The owner lets go without ending the run (it died): the claim is taken over and the
    // run is marked crashed.
    drop(alive);
    assert!(!other.is_alive("run-one").unwrap());
    let _three = other.hold_alive("run-three").unwrap();
    other.begin_run(&run("run-three"), &assets).unwrap();
    assert_eq!(other.recover_crashed().unwrap(), ["run-one"]);
    assert_eq!(other.run("run-one").unwrap().status, RunStatus::Crashed);
    assert_eq!(other.run("run-three").unwrap().status, RunStatus::Running);
}

#[test]
fn a_closed_connection_lets_go_of_what_it_held_and_the_next_call_reconnects() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "reconnect");
    let one = scratch.store();
    let watcher = scratch.store();
    let _alive = one.hold_alive("r").unwrap();
    one.begin_run(&run("r"), &[]).unwrap();
    assert!(watcher.is_alive("r").unwrap());
    // The server ends the owner's session (as a restart or a network failure would).
    let pid: i32 = one
        .with(|c| Ok(c.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
        .unwrap();
    watcher
        .with(|c| Ok(c.execute("SELECT pg_terminate_backend($1)", &[&pid])?))
        .unwrap();
    // The call that finds the connection broken fails and says why; the next one reconnects
    // and takes the held lock again.
    let mut tries = 0;
    while one.heartbeat("r").is_err() {
        tries += 1;
        assert!(tries < 3, "the store did not reconnect");
    }
    assert!(watcher.is_alive("r").unwrap());
    assert!(watcher.recover_crashed().unwrap().is_empty());
}

#[test]
fn calls_from_async_code_do_not_panic() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "async");
    let store = std::sync::Arc::new(scratch.store());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        store.begin_run(&run("r"), &[]).unwrap();
        let guard = store.hold_alive("r").unwrap();
        assert!(store.is_alive("r").unwrap());
        drop(guard);
        store
            .end_run("r", RunStatus::Succeeded, SystemTime::now())
            .unwrap();
    });
    assert_eq!(store.run("r").unwrap().status, RunStatus::Succeeded);
}
