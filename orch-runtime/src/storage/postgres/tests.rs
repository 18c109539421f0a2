//! Tests of the PostgreSQL run store, on the server `ORCH_TEST_POSTGRES_URL` names (`.ci/run`
//! starts one and requires it); each test in a schema of its own, dropped after.

use std::time::SystemTime;

use super::super::{RunRecord, RunStatus, Storage};
use super::PgStorage;
use super::db::Db;

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
    let version = store
        .with(|c| Ok(super::schema::version(c.raw())?))
        .unwrap();
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

pub(super) fn run(id: &str) -> RunRecord {
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

mod queue {
    use std::time::Duration;

    use super::super::super::{
        CodeVersions, Delivery, EventKind, EventRecord, RunStatus, StepEnd, StepSpec, Storage,
    };
    use super::{Scratch, run, server};

    fn spec(step: &str, upstream: &[&str]) -> StepSpec {
        StepSpec {
            step: step.to_owned(),
            code_version: "v1".to_owned(),
            upstream: upstream.iter().map(|s| (*s).to_owned()).collect(),
            queue: "default".to_owned(),
        }
    }

    fn default_queue() -> Vec<String> {
        vec!["default".to_owned()]
    }

    fn versions(steps: &[&str]) -> CodeVersions {
        CodeVersions::new(
            steps
                .iter()
                .map(|s| ((*s).to_owned(), "v1".to_owned()))
                .collect(),
        )
    }

    fn materialized(run_id: &str, step: &str) -> Vec<EventRecord> {
        vec![EventRecord {
            data_version: Some(format!("{step}-data")),
            ..EventRecord::new(
                run_id.into(),
                Some(step.parse().unwrap()),
                EventKind::Materialized,
            )
        }]
    }

    /// A diamond a -> (b, c) -> d, begun as run `r`.
    fn diamond(store: &dyn Storage, delivery: Delivery) {
        store.begin_run(&run("r"), &[]).unwrap();
        store
            .step_queue()
            .unwrap()
            .enqueue_steps(
                "r",
                &[
                    spec("a", &[]),
                    spec("b", &["a"]),
                    spec("c", &["a"]),
                    spec("d", &["b", "c"]),
                ],
                delivery,
            )
            .unwrap();
    }

    #[test]
    fn steps_become_ready_as_their_upstreams_complete_and_the_last_ends_the_run() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_diamond");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        diamond(&store, Delivery::default());
        let all = versions(&["a", "b", "c", "d"]);
        let a = q.claim_step("w1", &all, &default_queue()).unwrap().unwrap();
        assert_eq!((a.step.as_str(), a.attempt), ("a", 1));
        assert!(a.claimed >= a.ready);
        // b and c wait for a.
        assert_eq!(q.claim_step("w1", &all, &default_queue()).unwrap(), None);
        assert!(
            q.complete_step(&a, StepEnd::Succeeded, &materialized("r", "a"), &[])
                .unwrap()
        );
        let b = q.claim_step("w1", &all, &default_queue()).unwrap().unwrap();
        let c = q.claim_step("w2", &all, &default_queue()).unwrap().unwrap();
        assert_eq!([b.step.as_str(), c.step.as_str()], ["b", "c"]);
        assert_eq!(q.claim_step("w1", &all, &default_queue()).unwrap(), None);
        assert!(
            q.complete_step(&b, StepEnd::Succeeded, &materialized("r", "b"), &[])
                .unwrap()
        );
        assert_eq!(
            q.claim_step("w1", &all, &default_queue()).unwrap(),
            None,
            "d still waits for c"
        );
        assert!(
            q.complete_step(&c, StepEnd::Succeeded, &materialized("r", "c"), &[])
                .unwrap()
        );
        let d = q.claim_step("w1", &all, &default_queue()).unwrap().unwrap();
        assert_eq!(store.run("r").unwrap().status, RunStatus::Running);
        assert!(
            q.complete_step(&d, StepEnd::Succeeded, &materialized("r", "d"), &[])
                .unwrap()
        );
        let r = store.run("r").unwrap();
        assert_eq!((r.status, r.counts.0), (RunStatus::Succeeded, 4));
        let kinds: Vec<EventKind> = store.events("r").unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(kinds.first(), Some(&EventKind::RunStarted));
        assert_eq!(
            kinds.last(),
            Some(&EventKind::RunEnded(RunStatus::Succeeded))
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == EventKind::Started).count(),
            4
        );
        assert_eq!(
            store.latest_materializations().unwrap()["d"]
                .data_version
                .as_deref(),
            Some("d-data")
        );
        // Its claims are released and nothing is left to claim.
        assert_eq!(q.claim_step("w1", &all, &default_queue()).unwrap(), None);
        assert!(store.recover_crashed().unwrap().is_empty());
    }

    #[test]
    fn a_delivery_whose_lease_was_taken_over_can_neither_renew_nor_complete() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_fence");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        let delivery = Delivery {
            lease: Duration::from_millis(100),
            max_deliveries: 3,
        };
        diamond(&store, delivery);
        let all = versions(&["a", "b", "c", "d"]);
        let zombie = q.claim_step("w1", &all, &default_queue()).unwrap().unwrap();
        assert!(q.renew_step(&zombie).unwrap());
        // Not visible to others while the lease holds.
        assert_eq!(q.claim_step("w2", &all, &default_queue()).unwrap(), None);
        std::thread::sleep(Duration::from_millis(250));
        let second = q.claim_step("w2", &all, &default_queue()).unwrap().unwrap();
        assert_eq!((second.step.as_str(), second.attempt), ("a", 2));
        assert!(!q.renew_step(&zombie).unwrap());
        assert!(
            !q.complete_step(&zombie, StepEnd::Succeeded, &materialized("r", "a"), &[])
                .unwrap()
        );
        assert!(
            store.latest_materializations().unwrap().is_empty(),
            "nothing published"
        );
        assert!(
            q.complete_step(&second, StepEnd::Succeeded, &materialized("r", "a"), &[])
                .unwrap()
        );
        assert_eq!(store.materializations("a", 10).unwrap().len(), 1);
    }

    #[test]
    fn a_step_lost_on_every_delivery_fails_and_its_downstream_is_skipped() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_lost");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        diamond(
            &store,
            Delivery {
                lease: Duration::from_millis(50),
                max_deliveries: 2,
            },
        );
        let all = versions(&["a", "b", "c", "d"]);
        assert_eq!(
            q.claim_step("w1", &all, &default_queue())
                .unwrap()
                .unwrap()
                .attempt,
            1
        );
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            q.claim_step("w2", &all, &default_queue())
                .unwrap()
                .unwrap()
                .attempt,
            2
        );
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            q.claim_step("w3", &all, &default_queue()).unwrap(),
            None,
            "no third delivery"
        );
        assert_eq!(q.sweep().unwrap(), 1);
        assert_eq!(q.sweep().unwrap(), 0);
        let events = store.events("r").unwrap();
        let failed = events.iter().find(|e| e.kind == EventKind::Failed).unwrap();
        assert!(failed.is_of("a"));
        assert!(
            failed
                .message
                .as_deref()
                .unwrap()
                .starts_with("worker lost"),
            "{failed:?}"
        );
        let skipped: Vec<String> = events
            .iter()
            .filter(|e| e.kind == EventKind::Skipped)
            .map(|e| e.asset.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(skipped, ["b", "c", "d"]);
        assert_eq!(store.run("r").unwrap().status, RunStatus::Failed);
    }

    #[test]
    fn a_failure_skips_only_its_downstream_and_a_cancel_ends_what_has_not_started() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_fail");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        diamond(&store, Delivery::default());
        let all = versions(&["a", "b", "c", "d"]);
        let a = q.claim_step("w", &all, &default_queue()).unwrap().unwrap();
        q.complete_step(&a, StepEnd::Succeeded, &materialized("r", "a"), &[])
            .unwrap();
        let b = q.claim_step("w", &all, &default_queue()).unwrap().unwrap();
        q.complete_step(&b, StepEnd::Failed, &[], &[]).unwrap();
        // c goes on; d is skipped.
        let c = q.claim_step("w", &all, &default_queue()).unwrap().unwrap();
        assert_eq!(c.step, "c");
        assert_eq!(store.run("r").unwrap().status, RunStatus::Running);
        q.complete_step(&c, StepEnd::Succeeded, &materialized("r", "c"), &[])
            .unwrap();
        assert_eq!(store.run("r").unwrap().status, RunStatus::Failed);

        // Another run, canceled before anything ran.
        store.begin_run(&run("r2"), &[]).unwrap();
        q.enqueue_steps(
            "r2",
            &[spec("a", &[]), spec("b", &["a"])],
            Delivery::default(),
        )
        .unwrap();
        q.cancel_steps("r2").unwrap();
        assert_eq!(store.run("r2").unwrap().status, RunStatus::Canceled);
        assert_eq!(q.claim_step("w", &all, &default_queue()).unwrap(), None);
    }

    #[test]
    fn a_step_goes_only_to_a_worker_with_its_code_version() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_versions");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        diamond(&store, Delivery::default());
        let old = CodeVersions::new(
            ["a", "b", "c", "d"]
                .iter()
                .map(|s| ((*s).to_owned(), "v0".to_owned()))
                .collect(),
        );
        assert_eq!(q.claim_step("old", &old, &default_queue()).unwrap(), None);
        let waiting = q.waiting_steps("r", Duration::ZERO).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            (waiting[0].step.as_str(), waiting[0].code_version.as_str()),
            ("a", "v1")
        );
        assert!(
            q.claim_step("new", &versions(&["a"]), &default_queue())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_step_goes_only_to_a_worker_serving_its_queue() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_queues");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        store.begin_run(&run("r"), &[]).unwrap();
        q.enqueue_steps(
            "r",
            &[
                StepSpec {
                    queue: "gpu".to_owned(),
                    ..spec("train", &[])
                },
                spec("report", &[]),
            ],
            Delivery::default(),
        )
        .unwrap();
        let both = versions(&["train", "report"]);
        let first = q
            .claim_step("cpu", &both, &default_queue())
            .unwrap()
            .unwrap();
        assert_eq!(first.step, "report");
        assert_eq!(q.claim_step("cpu", &both, &default_queue()).unwrap(), None);
        let gpu = vec!["gpu".to_owned(), "default".to_owned()];
        assert_eq!(
            q.claim_step("gpu-1", &both, &gpu).unwrap().unwrap().step,
            "train"
        );
    }

    #[test]
    fn a_run_whose_coordinator_is_gone_is_not_crashed_while_workers_have_its_steps() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_owner");
        let store = scratch.store();
        diamond(&store, Delivery::default());
        // No one holds `r` alive: its steps do.
        assert!(store.recover_crashed().unwrap().is_empty());
    }

    #[test]
    fn an_idle_worker_is_woken_when_steps_become_ready() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_wake");
        let waiter = std::sync::Arc::new(scratch.store());
        let store = scratch.store();
        // LISTEN first (a first wait sets it up), then wait on another thread.
        waiter
            .step_queue()
            .unwrap()
            .wait_for_steps(Duration::from_millis(1))
            .unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handle = {
            let (waiter, barrier) = (waiter.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let t0 = std::time::Instant::now();
                waiter
                    .step_queue()
                    .unwrap()
                    .wait_for_steps(Duration::from_secs(30))
                    .unwrap();
                t0.elapsed()
            })
        };
        barrier.wait();
        diamond(&store, Delivery::default());
        let waited = handle.join().unwrap();
        assert!(waited < Duration::from_secs(30), "woken, not timed out");
    }

    #[test]
    fn a_released_step_is_delivered_again_after_a_backoff_and_a_stale_release_is_refused() {
        let Some(url) = server() else { return };
        let scratch = Scratch::new(&url, "q_release");
        let store = scratch.store();
        let q = store.step_queue().unwrap();
        // A lease long enough that only the release (and its one-second backoff) can make the
        // step visible again.
        let delivery = Delivery {
            lease: Duration::from_secs(300),
            max_deliveries: 3,
        };
        diamond(&store, delivery);
        let all = versions(&["a", "b", "c", "d"]);
        let first = q.claim_step("w1", &all, &default_queue()).unwrap().unwrap();
        assert_eq!(first.max_deliveries, 3);
        assert!(q.release_step(&first, "S3 did not answer").unwrap());
        assert_eq!(
            q.claim_step("w2", &all, &default_queue()).unwrap(),
            None,
            "backing off"
        );
        std::thread::sleep(Duration::from_millis(1_100));
        let second = q.claim_step("w2", &all, &default_queue()).unwrap().unwrap();
        assert_eq!((second.step.as_str(), second.attempt), ("a", 2));
        // The first delivery no longer holds it: neither its release nor its end counts.
        assert!(!q.release_step(&first, "late").unwrap());
        assert!(
            !q.complete_step(&first, StepEnd::Succeeded, &materialized("r", "a"), &[])
                .unwrap()
        );
        let retried: Vec<EventRecord> = store
            .events("r")
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::Retried)
            .collect();
        assert_eq!(retried.len(), 1, "{retried:?}");
        let message = retried[0].message.as_deref().unwrap();
        assert!(
            message
                .contains("worker w1 (delivery 1 of 3), delivered again in 1s: S3 did not answer"),
            "{message}"
        );
        assert!(
            q.complete_step(&second, StepEnd::Succeeded, &materialized("r", "a"), &[])
                .unwrap()
        );
    }
}
