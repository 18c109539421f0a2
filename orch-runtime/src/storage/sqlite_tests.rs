//! Tests of the SQLite run store (kept apart from `sqlite.rs`, which is long enough).

mod store {
    use super::super::*;

    #[test]
    fn opening_twice_migrates_once_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStorage::open(dir.path()).unwrap());
        let store = SqliteStorage::open(dir.path()).unwrap();
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        store
            .conn()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(store);
        let err = SqliteStorage::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("has schema version 99, newer than this orch understands"),
            "{err}"
        );
    }

    #[test]
    fn processes_opening_a_new_store_at_once_all_succeed() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let path = dir.path().to_owned();
                    std::thread::spawn(move || SqliteStorage::open(&path).map(drop))
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn a_corrupt_database_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("orch.db"),
            b"this is not a database, just text",
        )
        .unwrap();
        let err = SqliteStorage::open(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("the run store at "), "{err}");
        assert!(err.contains("orch.db"), "{err}");
    }
}

mod claims {
    use super::super::*;

    fn run(id: &str) -> RunRecord {
        RunRecord::new(id.into(), &crate::run::RunRequest::all(), 2)
    }

    #[test]
    fn a_live_claim_refuses_a_second_run_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open(dir.path()).unwrap();
        let assets = ["a".to_owned(), "raw/users".to_owned()];
        let _alive = RunLock::acquire(dir.path(), "run-one").unwrap();
        store.begin_run(&run("run-one"), &assets).unwrap();
        let err = store
            .begin_run(&run("run-two"), &["b".to_owned(), "raw/users".to_owned()])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "asset `raw/users` is being materialized by run run-one right now; wait for it to finish or select other assets"
        );
        // Nothing of the refused run was kept: not its row, not its claim on `b`.
        assert!(store.run("run-two").is_err());
        let _two = RunLock::acquire(dir.path(), "run-three").unwrap();
        store
            .begin_run(&run("run-three"), &["b".to_owned()])
            .unwrap();
        // Ending the first run frees its assets.
        store
            .end_run("run-one", RunStatus::Succeeded, SystemTime::now())
            .unwrap();
        store.begin_run(&run("run-four"), &assets).unwrap();
    }

    #[test]
    fn claims_of_a_dead_run_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open(dir.path()).unwrap();
        // No lock held for `ghost`: its process is gone.
        store.begin_run(&run("ghost"), &["a".to_owned()]).unwrap();
        store.begin_run(&run("next"), &["a".to_owned()]).unwrap();
    }
}

/// The conformance suite, on a file store and on one in memory.
mod conformance {
    use super::super::*;

    #[test]
    fn a_file_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::storage::conformance::run_all(&|| {
            let sub = dir.path().join(
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .to_string(),
            );
            Box::new(SqliteStorage::open(&sub).unwrap())
        });
    }

    #[test]
    fn an_in_memory_store_conforms() {
        crate::storage::conformance::run_all(&|| Box::new(SqliteStorage::in_memory().unwrap()));
    }
}
