//! The run store's schema: migrations versioned in code (`PRAGMA user_version`), applied at
//! open, and the retry that makes opening a new store from several processes at once safe.

use std::time::Duration;

use rusqlite::Connection;

/// Each entry upgrades the schema by one version (`PRAGMA user_version`). Never edit a
/// released entry: add one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, asset events with their metadata, captured logs.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        selection TEXT NOT NULL,
        status TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        ended_us INTEGER,
        planned INTEGER NOT NULL
    );
    CREATE INDEX runs_started ON runs(started_us);
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        asset TEXT NOT NULL,
        kind TEXT NOT NULL,
        time_us INTEGER NOT NULL,
        attempt INTEGER,
        duration_us INTEGER,
        message TEXT,
        code_version TEXT
    );
    CREATE INDEX events_run ON events(run_id, id);
    CREATE INDEX events_asset ON events(asset, kind, id);
    CREATE TABLE event_metadata (
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX event_metadata_event ON event_metadata(event_id);
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        asset TEXT NOT NULL,
        time_us INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_run ON logs(run_id, id);
    CREATE INDEX logs_time ON logs(time_us);
    CREATE TABLE asset_claims (
        asset TEXT PRIMARY KEY,
        run_id TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX asset_claims_run ON asset_claims(run_id);",
    // 2: data versions of stored outputs and of the inputs each materialization consumed.
    "ALTER TABLE events ADD COLUMN data_version TEXT;
    CREATE TABLE event_inputs (
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        upstream TEXT NOT NULL,
        data_version TEXT
    );
    CREATE INDEX event_inputs_event ON event_inputs(event_id);",
    // 3: the latest materialization of each asset, kept up to date on insert, so deciding
    // what is stale reads one row per asset however long the history grows.
    "CREATE TABLE latest_materialization (
        asset TEXT PRIMARY KEY,
        event_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO latest_materialization (asset, event_id)
        SELECT asset, max(id) FROM events WHERE kind = 'materialized' GROUP BY asset;",
    // 4: partitions. Events carry their partition; `partition_status` keeps the last outcome of
    // every partition of every asset (one row each, kept up to date on insert), so `partitions
    // ASSET` reads 100,000 partitions without scanning the history.
    "ALTER TABLE events ADD COLUMN partition TEXT;
    CREATE TABLE partition_status (
        asset TEXT NOT NULL,
        partition TEXT NOT NULL,
        status TEXT NOT NULL,
        run_id TEXT NOT NULL,
        time_us INTEGER NOT NULL,
        data_version TEXT,
        PRIMARY KEY (asset, partition)
    ) WITHOUT ROWID;",
    // 5: the keys of dynamic partitions, in the order they were added.
    "CREATE TABLE dynamic_partitions (
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        added_us INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (name, key)
    ) WITHOUT ROWID;
    CREATE INDEX dynamic_partitions_order ON dynamic_partitions(name, seq);",
    // 6: run requests in structured columns (the target stays in `selection`; the trigger's
    // kind in `trigger`), the partitions a run covers in order, its tags, its owner and
    // heartbeat; run states beyond started/ended. Events' `id` is their store-wide sequence
    // number; run events (run started, run ended) have an empty `asset`.
    "ALTER TABLE runs ADD COLUMN trigger_detail TEXT;
    ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
    ALTER TABLE runs ADD COLUMN only_stale INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN partition_scope TEXT;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN heartbeat_us INTEGER;
    UPDATE runs SET status = 'running' WHERE status = 'started';
    UPDATE runs SET trigger_detail = substr(trigger, 11), trigger = 'reexecution'
        WHERE trigger LIKE 'reexecute %';
    UPDATE runs SET trigger = 'manual' WHERE trigger NOT IN ('backfill', 'reexecution');
    CREATE INDEX runs_trigger ON runs(trigger, started_us);
    CREATE TABLE run_partitions (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE run_tags (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX run_tags_pair ON run_tags(key, value);",
    // 7: the event behind each partition's last outcome, so staleness reads a partition's
    // code version and consumed inputs like an unpartitioned asset's.
    // One grouped pass over the events (not a lookup per partition, which is quadratic in
    // the partitions of an asset).
    "ALTER TABLE partition_status ADD COLUMN event_id INTEGER;
    UPDATE partition_status SET event_id = last.id
    FROM (SELECT asset, partition, kind, max(id) AS id FROM events
          WHERE partition IS NOT NULL GROUP BY asset, partition, kind) AS last
    WHERE last.asset = partition_status.asset AND last.partition = partition_status.partition
      AND last.kind = partition_status.status;",
    // 8: automation state: each schedule's (and sensor's) status as set by `schedule
    // start|stop`, and store-wide settings (the global automation pause).
    "CREATE TABLE instigator_state (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_us INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 9: schedule ticks, one row per (schedule, scheduled instant): what makes a tick run at
    // most once.
    "CREATE TABLE ticks (
        instigator TEXT NOT NULL,
        scheduled_us INTEGER NOT NULL,
        status TEXT NOT NULL,
        run_ids TEXT NOT NULL DEFAULT '',
        reason TEXT,
        started_us INTEGER NOT NULL,
        ended_us INTEGER,
        PRIMARY KEY (instigator, scheduled_us)
    ) WITHOUT ROWID;",
    // 10: evaluation cursors (a schedule's last evaluated instant; next, a sensor's cursor).
    "CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_us INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 11: leases (the daemon's hold on the store: one holder at a time, renewed by a
    // heartbeat, taken over once it lapses).
    "CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        description TEXT NOT NULL,
        acquired_us INTEGER NOT NULL,
        heartbeat_us INTEGER NOT NULL,
        expires_us INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 12: run keys a sensor has launched, kept past retention: a key is launched once, ever.
    "CREATE TABLE run_keys (
        instigator TEXT NOT NULL,
        run_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        time_us INTEGER NOT NULL,
        PRIMARY KEY (instigator, run_key)
    ) WITHOUT ROWID;",
    // 13: declarative automation: per asset, its condition, when it was first evaluated, when
    // it was last requested (what `eager()` and `on_cron()` count from) and its latest
    // evaluation (what `automation explain` prints).
    "CREATE TABLE automation_assets (
        asset TEXT PRIMARY KEY,
        condition TEXT NOT NULL,
        since_seq INTEGER NOT NULL,
        since_us INTEGER NOT NULL,
        requested_seq INTEGER,
        requested_us INTEGER,
        requested_run TEXT,
        evaluated_us INTEGER NOT NULL,
        result INTEGER NOT NULL,
        tree TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 14: each change of an asset's freshness state (pass, warn, fail, unknown), as the daemon
    // saw it; the latest per asset is its current recorded state.
    "CREATE TABLE freshness_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        asset TEXT NOT NULL,
        state TEXT NOT NULL,
        previous TEXT,
        detail TEXT NOT NULL,
        at_us INTEGER NOT NULL
    );
    CREATE INDEX freshness_changes_by_asset ON freshness_changes (asset, id);",
    // 15: asset check results, as events of kind `check` (the description in `message`, the
    // metadata in event_metadata); indexed for each asset's latest result per check.
    "ALTER TABLE events ADD COLUMN check_name TEXT;
    ALTER TABLE events ADD COLUMN check_passed INTEGER;
    ALTER TABLE events ADD COLUMN check_severity TEXT;
    ALTER TABLE events ADD COLUMN check_blocking INTEGER;
    CREATE INDEX events_checks ON events (asset, check_name, id) WHERE kind = 'check';",
    // 16: a request to cancel a run (from the web UI or another process), read by the run's
    // own process.
    "ALTER TABLE runs ADD COLUMN cancel_requested_us INTEGER;",
    // 17: the run config of an op job's run (JSON), kept so a re-execution runs with it.
    "ALTER TABLE runs ADD COLUMN config TEXT;",
    // 18: runs recorded before migration 6, read back as what they were (found by upgrading
    // a store holding such runs). A re-execution's parent is its parent: migration 6 kept it
    // as the trigger's detail, as old `runs` printed it (8 characters), so the run with that
    // prefix, if exactly one has it. Old targets said the stale flag and the partitions in
    // their text (`stale in (+daily) partition 2024-01-01`): `old_targets_read_back` parses
    // them, in Rust, after this.
    "UPDATE runs SET
        parent_run_id = coalesce(
            (SELECT CASE WHEN count(*) = 1 THEN min(p.id) END FROM runs p
             WHERE p.id >= runs.trigger_detail AND p.id < runs.trigger_detail || '~'),
            trigger_detail),
        trigger_detail = NULL
        WHERE trigger = 'reexecution' AND parent_run_id IS NULL AND trigger_detail IS NOT NULL;",
    // 19: where time went. Per asset event: loading mapped inputs, the function, storing the
    // output; per run (JSON, written when it ends): plan, load, begin, execute, record, sync.
    "ALTER TABLE events ADD COLUMN load_us INTEGER;
    ALTER TABLE events ADD COLUMN compute_us INTEGER;
    ALTER TABLE events ADD COLUMN store_us INTEGER;
    ALTER TABLE runs ADD COLUMN timings TEXT;",
    // 20: an output stored after its consumers started (write-behind): its store time was
    // not on their path.
    "ALTER TABLE events ADD COLUMN store_background INTEGER;",
];

/// Brings the schema up to date; returns the version found. Reading the version and migrating
/// happen in one IMMEDIATE transaction, so two processes opening a new store at once do not
/// both try to create it. A newer version than this build knows is left alone.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version >= supported {
        return Ok(version);
    }
    for (n, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(migration)?;
        // The steps SQL alone cannot do, after their version's SQL.
        if n + 1 == 18 {
            old_targets_read_back(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(version)
}

/// Migration 18's second step: runs recorded before migration 6 (no owner; their target is
/// the old one-line description) get their stale flag and partitions out of the text, which
/// old orch wrote as `[stale in (]SELECTION[)][ partition KEY| partitions FIRST..LAST]`.
/// The partitions come from the run's events, in the order they ran; the text must name the
/// same ones (a target that only looks like that, `a or partition_totals`, is left alone). A
/// run with no partition events keeps a one-key scope (its key is the text's), not a range's,
/// whose keys only the events could give.
fn old_targets_read_back(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let runs: Vec<(String, String)> = tx
        .prepare(
            "SELECT id, selection FROM runs
             WHERE owner IS NULL AND partition_scope IS NULL
               AND NOT EXISTS (SELECT 1 FROM run_partitions p WHERE p.run_id = runs.id)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut keys_of = tx.prepare(
        "SELECT partition FROM events WHERE run_id = ?1 AND partition IS NOT NULL
         GROUP BY partition ORDER BY min(id)",
    )?;
    for (id, text) in runs {
        let keys: Vec<String> = keys_of
            .query_map([&id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let (mut target, scope) = match old_scope(&text, &keys) {
            Some((target, scope, keys)) => {
                for (i, key) in keys.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO run_partitions (run_id, idx, key) VALUES (?1, ?2, ?3)",
                        rusqlite::params![id, i as i64, key],
                    )?;
                }
                (target, Some(scope))
            }
            None => (text.as_str(), None),
        };
        let stale = target.starts_with("stale in (") && target.ends_with(')');
        if stale {
            target = &target["stale in (".len()..target.len() - 1];
        }
        if scope.is_some() || stale {
            tx.execute(
                "UPDATE runs SET selection = ?2, partition_scope = ?3,
                    only_stale = only_stale OR ?4 WHERE id = ?1",
                rusqlite::params![id, target, scope, stale],
            )?;
        }
    }
    Ok(())
}

/// The target before an old run's partition suffix, the scope's kind, and its keys: `keys`
/// (from the run's events) when the suffix names them, or the suffix's one key when the run
/// has no partition events. `None` when the text has no such suffix.
fn old_scope<'t>(text: &'t str, keys: &[String]) -> Option<(&'t str, &'static str, Vec<String>)> {
    match keys {
        [] => {
            // No events: only a one-key suffix can be read back whole.
            let at = text.rfind(" partition ")?;
            let key = &text[at + " partition ".len()..];
            (!key.is_empty() && !text[..at].is_empty())
                .then(|| (&text[..at], "key", vec![key.to_owned()]))
        }
        [one] => match text.strip_suffix(&format!(" partition {one}")) {
            Some(target) => Some((target, "key", keys.to_vec())),
            // A range run over one partition.
            None => text
                .strip_suffix(&format!(" partitions {one}..{one}"))
                .map(|target| (target, "range", keys.to_vec())),
        },
        [first, .., last] => text
            .strip_suffix(&format!(" partitions {first}..{last}"))
            .map(|target| (target, "range", keys.to_vec())),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Retries `f` for up to 10 s while SQLite reports the database busy where its busy handler
/// does not wait (switching a new database to WAL while another process opens it too).
pub(super) fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
