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

/// A store written by an older orch, upgraded by opening it: what it held reads back as what
/// it was.
mod upgrade {
    use super::super::*;
    use crate::run::{PartitionScope, Trigger};

    #[test]
    fn a_version_5_store_with_runs_reads_back_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = rusqlite::Connection::open(dir.path().join("orch.db")).unwrap();
            for migration in &MIGRATIONS[..5] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
            // As orch wrote them before migration 6: the trigger as text, the partitions and
            // the stale flag inside the target, `started` for a running run.
            conn.execute_batch(
                "INSERT INTO runs VALUES ('r_all', '*', 'succeeded', 'cli', 1000, 2000, 2);
                INSERT INTO runs VALUES ('r_day', 'daily partition 2024-01-01', 'succeeded', 'cli', 3000, 4000, 1);
                INSERT INTO runs VALUES ('r_eu', 'regional partitions eu..apac', 'failed', 'backfill', 5000, 6000, 3);
                INSERT INTO runs VALUES ('r_again', 'regional partitions eu..apac', 'succeeded', 'reexecute r_eu', 7000, 8000, 3);
                INSERT INTO runs VALUES ('r_stale', 'stale in (+daily)', 'started', 'api', 9000, NULL, 2);
                INSERT INTO runs VALUES ('0123456789abcdef', '*', 'failed', 'cli', 10000, 11000, 2);
                INSERT INTO runs VALUES ('r_prefix', '*', 'succeeded', 'reexecute 01234567', 12000, 13000, 2);
                INSERT INTO runs VALUES ('r_named', 'daily or partition_totals partition 2024-01-03', 'succeeded', 'cli', 14000, 15000, 2);
                INSERT INTO runs VALUES ('r_keyed_stale', 'stale in (+daily) partition 2024-01-04', 'succeeded', 'cli', 16000, 17000, 1);
                INSERT INTO runs VALUES ('r_lookalike', 'a or partition_totals', 'succeeded', 'cli', 18000, 19000, 1);
                INSERT INTO runs VALUES ('r_one_range', 'daily partitions 2024-01-05..2024-01-05', 'succeeded', 'cli', 20000, 21000, 1);
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_named', 'daily', 'materialized', 14100, '2024-01-03');
                INSERT INTO events (run_id, asset, kind, time_us) VALUES ('r_keyed_stale', 'raw', 'materialized', 16100);
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_one_range', 'daily', 'materialized', 20100, '2024-01-05');
                INSERT INTO events (run_id, asset, kind, time_us, data_version) VALUES ('r_all', 'raw', 'materialized', 1500, 'v1');
                INSERT INTO events (run_id, asset, kind, time_us, data_version, partition) VALUES ('r_day', 'daily', 'materialized', 3500, 'd1', '2024-01-01');
                INSERT INTO event_inputs SELECT id, 'raw', 'v1' FROM events WHERE run_id = 'r_day';
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_eu', 'regional', 'materialized', 5100, 'eu');
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_eu', 'regional', 'materialized', 5200, 'us');
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_eu', 'regional', 'failed', 5300, 'apac');
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_again', 'regional', 'materialized', 7100, 'eu');
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_again', 'regional', 'materialized', 7200, 'us');
                INSERT INTO events (run_id, asset, kind, time_us, partition) VALUES ('r_again', 'regional', 'materialized', 7300, 'apac');
                INSERT INTO latest_materialization SELECT asset, max(id) FROM events WHERE kind = 'materialized' AND partition IS NULL GROUP BY asset;
                INSERT INTO partition_status VALUES ('daily', '2024-01-01', 'materialized', 'r_day', 3500, 'd1');
                INSERT INTO partition_status VALUES ('regional', 'apac', 'materialized', 'r_again', 7300, NULL);",
            )
            .unwrap();
        }
        let store = SqliteStorage::open(dir.path()).unwrap();
        let all = store.run("r_all").unwrap();
        assert_eq!(
            (all.target.as_str(), &all.trigger, &all.partitions),
            ("*", &Trigger::Manual, &PartitionScope::None)
        );
        assert_eq!(all.counts, (1, 0, 0));
        let day = store.run("r_day").unwrap();
        assert_eq!(day.target, "daily");
        assert_eq!(day.partitions, PartitionScope::Key("2024-01-01".into()));
        // A range keeps the order it ran in (`eu, us, apac`), not the keys' text order.
        let eu = store.run("r_eu").unwrap();
        assert_eq!(eu.target, "regional");
        assert_eq!(
            eu.trigger,
            Trigger::Backfill {
                backfill_id: String::new()
            }
        );
        assert_eq!(
            eu.partitions,
            PartitionScope::Range(vec!["eu".into(), "us".into(), "apac".into()])
        );
        let again = store.run("r_again").unwrap();
        assert_eq!(again.trigger, Trigger::Reexecution);
        assert_eq!(again.parent.as_ref().map(RunId::as_str), Some("r_eu"));
        assert_eq!(again.partitions, eu.partitions);
        let stale = store.run("r_stale").unwrap();
        assert_eq!((stale.target.as_str(), stale.only_stale), ("+daily", true));
        assert_eq!(stale.status, RunStatus::Running);
        // Old `runs` printed 8 characters of a parent's id: the run with that prefix.
        let prefixed = store.run("r_prefix").unwrap();
        assert_eq!(
            prefixed.parent.as_ref().map(RunId::as_str),
            Some("0123456789abcdef")
        );
        // The suffix is read from the end, and must name the run's own partitions.
        let named = store.run("r_named").unwrap();
        assert_eq!(named.target, "daily or partition_totals");
        assert_eq!(named.partitions, PartitionScope::Key("2024-01-03".into()));
        let lookalike = store.run("r_lookalike").unwrap();
        assert_eq!(lookalike.target, "a or partition_totals");
        assert_eq!(lookalike.partitions, PartitionScope::None);
        // A `--stale` run of one partition where only an unpartitioned asset ran.
        let stale_key = store.run("r_keyed_stale").unwrap();
        assert_eq!(
            (stale_key.target.as_str(), stale_key.only_stale),
            ("+daily", true)
        );
        assert_eq!(
            stale_key.partitions,
            PartitionScope::Key("2024-01-04".into())
        );
        let one_range = store.run("r_one_range").unwrap();
        assert_eq!(one_range.target, "daily");
        assert_eq!(
            one_range.partitions,
            PartitionScope::Range(vec!["2024-01-05".into()])
        );
        // What staleness reads: the latest materializations, per asset and per partition,
        // with the inputs they consumed.
        let latest = store.latest_materializations().unwrap();
        assert_eq!(latest["raw"].data_version.as_deref(), Some("v1"));
        let daily = store.partition_materializations("daily").unwrap();
        assert_eq!(daily["2024-01-01"].data_version.as_deref(), Some("d1"));
        assert_eq!(
            daily["2024-01-01"].inputs,
            [("raw".to_owned(), Some("v1".to_owned()))]
        );
        let regional = store.partition_materializations("regional").unwrap();
        assert_eq!(regional["apac"].run_id.as_str(), "r_again");
        // Sequence numbers go on from the old events.
        let events = store.events_since(0, 0).unwrap();
        assert_eq!(events.len(), 11);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
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
