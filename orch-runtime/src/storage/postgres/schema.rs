//! The PostgreSQL run store's schema: migrations versioned in code (the `orch_schema` table),
//! applied at open under an advisory lock, so processes opening a new store at once take
//! turns and exactly one creates it.
//!
//! The tables are the SQLite store's (`storage/schema.rs`) as they stand after its last
//! migration, in PostgreSQL's types: BIGINT microseconds, BOOLEAN flags, identity columns
//! for sequence numbers, and the C collation where the store orders or ranges over text (run
//! id prefixes, asset keys), so both stores order alike whatever the database's locale.

/// Each entry upgrades the schema by one version. Never edit a released entry: add one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the SQLite store's schema at its migration 20.
    r#"CREATE TABLE runs (
        id TEXT COLLATE "C" PRIMARY KEY,
        selection TEXT NOT NULL,
        status TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_us BIGINT NOT NULL,
        ended_us BIGINT,
        planned BIGINT NOT NULL,
        trigger_detail TEXT,
        parent_run_id TEXT,
        only_stale BOOLEAN NOT NULL DEFAULT FALSE,
        partition_scope TEXT,
        owner TEXT,
        heartbeat_us BIGINT,
        cancel_requested_us BIGINT,
        config TEXT,
        timings TEXT
    );
    CREATE INDEX runs_started ON runs (started_us, id);
    CREATE INDEX runs_status ON runs (status);
    CREATE INDEX runs_trigger ON runs (trigger, started_us);
    CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        asset TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL,
        time_us BIGINT NOT NULL,
        attempt BIGINT,
        duration_us BIGINT,
        message TEXT,
        code_version TEXT,
        data_version TEXT,
        partition TEXT,
        check_name TEXT COLLATE "C",
        check_passed BOOLEAN,
        check_severity TEXT,
        check_blocking BOOLEAN,
        load_us BIGINT,
        compute_us BIGINT,
        store_us BIGINT,
        store_background BOOLEAN
    );
    CREATE INDEX events_run ON events (run_id, id);
    CREATE INDEX events_asset ON events (asset, kind, id);
    CREATE INDEX events_checks ON events (asset, check_name, id) WHERE kind = 'check';
    CREATE TABLE event_metadata (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX event_metadata_event ON event_metadata (event_id, id);
    CREATE TABLE event_inputs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        upstream TEXT NOT NULL,
        data_version TEXT
    );
    CREATE INDEX event_inputs_event ON event_inputs (event_id, id);
    CREATE TABLE logs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        asset TEXT NOT NULL,
        time_us BIGINT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_run ON logs (run_id, id);
    CREATE INDEX logs_time ON logs (time_us);
    CREATE TABLE asset_claims (
        asset TEXT PRIMARY KEY,
        run_id TEXT NOT NULL
    );
    CREATE INDEX asset_claims_run ON asset_claims (run_id);
    CREATE TABLE latest_materialization (
        asset TEXT PRIMARY KEY,
        event_id BIGINT NOT NULL
    );
    CREATE TABLE partition_status (
        asset TEXT NOT NULL,
        partition TEXT NOT NULL,
        status TEXT NOT NULL,
        run_id TEXT NOT NULL,
        time_us BIGINT NOT NULL,
        data_version TEXT,
        event_id BIGINT,
        PRIMARY KEY (asset, partition)
    );
    CREATE TABLE dynamic_partitions (
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        added_us BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (name, key)
    );
    CREATE INDEX dynamic_partitions_order ON dynamic_partitions (name, seq);
    CREATE TABLE run_partitions (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        idx BIGINT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
    );
    CREATE TABLE run_tags (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX run_tags_pair ON run_tags (key, value);
    CREATE TABLE instigator_state (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_us BIGINT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE ticks (
        instigator TEXT NOT NULL,
        scheduled_us BIGINT NOT NULL,
        status TEXT NOT NULL,
        run_ids TEXT NOT NULL DEFAULT '',
        reason TEXT,
        started_us BIGINT NOT NULL,
        ended_us BIGINT,
        PRIMARY KEY (instigator, scheduled_us)
    );
    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_us BIGINT NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        description TEXT NOT NULL,
        acquired_us BIGINT NOT NULL,
        heartbeat_us BIGINT NOT NULL,
        expires_us BIGINT NOT NULL
    );
    CREATE TABLE run_keys (
        instigator TEXT NOT NULL,
        run_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        time_us BIGINT NOT NULL,
        PRIMARY KEY (instigator, run_key)
    );
    CREATE TABLE automation_assets (
        asset TEXT COLLATE "C" PRIMARY KEY,
        condition TEXT NOT NULL,
        since_seq BIGINT NOT NULL,
        since_us BIGINT NOT NULL,
        requested_seq BIGINT,
        requested_us BIGINT,
        requested_run TEXT,
        evaluated_us BIGINT NOT NULL,
        result BOOLEAN NOT NULL,
        tree TEXT NOT NULL
    );
    CREATE TABLE freshness_changes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        asset TEXT NOT NULL,
        state TEXT NOT NULL,
        previous TEXT,
        detail TEXT NOT NULL,
        at_us BIGINT NOT NULL
    );
    CREATE INDEX freshness_changes_by_asset ON freshness_changes (asset, id);"#,
    // 2: the step queue: each step of a run executed by workers, with what it waits for and
    // who holds it (`storage/steps.rs`).
    r#"CREATE TABLE steps (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step TEXT COLLATE "C" NOT NULL,
        code_version TEXT NOT NULL,
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        pending BIGINT NOT NULL,
        deliveries BIGINT NOT NULL DEFAULT 0,
        max_deliveries BIGINT NOT NULL,
        lease_us BIGINT NOT NULL,
        ready_us BIGINT,
        claimed_us BIGINT,
        ended_us BIGINT,
        lease_until_us BIGINT,
        worker TEXT,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (run_id, step)
    );
    CREATE INDEX steps_claimable ON steps (seq) WHERE state IN ('ready', 'running');
    CREATE TABLE step_edges (
        run_id TEXT COLLATE "C" NOT NULL,
        upstream TEXT COLLATE "C" NOT NULL,
        downstream TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (run_id, upstream, downstream),
        FOREIGN KEY (run_id, upstream) REFERENCES steps (run_id, step) ON DELETE CASCADE
    );
    CREATE TABLE builds (
        build TEXT NOT NULL,
        step TEXT COLLATE "C" NOT NULL,
        code_version TEXT NOT NULL,
        PRIMARY KEY (build, step, code_version)
    );"#,
];

/// Brings the schema in the connection's current schema up to date; returns the version
/// found. A newer version than this build knows is left alone.
pub(super) fn migrate(client: &mut postgres::Client) -> Result<i64, postgres::Error> {
    let mut tx = client.transaction()?;
    // One migrator at a time per schema: the lock is held until this transaction ends.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('orch:migrate:' || current_schema(), 0))",
        &[],
    )?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS orch_schema (version BIGINT NOT NULL)")?;
    let version: i64 = match tx.query_opt("SELECT version FROM orch_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO orch_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let supported = MIGRATIONS.len() as i64;
    if version >= supported {
        tx.commit()?;
        return Ok(version);
    }
    for migration in MIGRATIONS
        .iter()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(migration)?;
    }
    tx.execute("UPDATE orch_schema SET version = $1", &[&supported])?;
    tx.commit()?;
    Ok(version)
}

/// The schema version stored (0 for none), for tests.
#[cfg(test)]
pub(super) fn version(client: &mut impl postgres::GenericClient) -> Result<i64, postgres::Error> {
    Ok(client
        .query_opt("SELECT version FROM orch_schema", &[])?
        .map_or(0, |r| r.get(0)))
}
