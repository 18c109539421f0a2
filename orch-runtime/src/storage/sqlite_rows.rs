//! How the SQLite store's rows map to records and back: times, log levels, metadata, runs
//! with their partitions and tags, events with their metadata and inputs, and the paging
//! parameters. `sqlite.rs` holds the store's operations.

use orch_core::{AssetKey, RunId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{CheckRecord, EventKind, EventRecord, RunRecord, RunStatus};
use crate::run::{PartitionScope, Trigger};

pub(super) use super::values::{
    duration_micros, from_micros, level_str, metadata_parts, metadata_value, micros, parse_level,
    time, timings_json, timings_of,
};

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: RunId::from(row.get::<_, String>(0)?),
        target: row.get(1)?,
        // A spelling no orch wrote is taken as still running: `runs` shows it, and crash
        // recovery decides by the owner's liveness.
        status: RunStatus::parse(&row.get::<_, String>(2)?).unwrap_or(RunStatus::Running),
        trigger: Trigger::from_stored(&row.get::<_, String>(3)?, row.get(10)?),
        started: time(row.get(4)?),
        ended: row.get::<_, Option<i64>>(5)?.map(time),
        planned: row.get(6)?,
        counts: (row.get(7)?, row.get(8)?, row.get(9)?),
        parent: row.get::<_, Option<String>>(11)?.map(RunId::from),
        only_stale: row.get(12)?,
        // Filled in from `run_partitions` by `with_details`.
        partitions: PartitionScope::None,
        owner: row.get(14)?,
        heartbeat: row.get::<_, Option<i64>>(15)?.map(time),
        config: row.get(16)?,
        timings: row
            .get::<_, Option<String>>(17)?
            .as_deref()
            .and_then(timings_of),
        tags: Default::default(),
    })
}

/// Reads runs matching `filter` (SQL after `FROM runs r`), with their partitions and tags.
pub(super) fn read_runs(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<RunRecord>> {
    let mut stmt = conn.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs r {filter}"))?;
    let rows = stmt.query_map(params, |row| {
        Ok((run_from_row(row)?, row.get::<_, Option<String>>(13)?))
    })?;
    let mut runs = Vec::new();
    let mut keys =
        conn.prepare_cached("SELECT key FROM run_partitions WHERE run_id = ?1 ORDER BY idx")?;
    let mut tags = conn.prepare_cached("SELECT key, value FROM run_tags WHERE run_id = ?1")?;
    for row in rows {
        let (mut run, scope) = row?;
        let id = run.id.as_str();
        if scope.is_some() {
            let found: Vec<String> = keys
                .query_map(params![id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            run.partitions = PartitionScope::from_stored(scope.as_deref(), found);
        }
        run.tags = tags
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        runs.push(run);
    }
    Ok(runs)
}

const RUN_COLUMNS: &str =
    "r.id, r.selection, r.status, r.trigger, r.started_us, r.ended_us, r.planned,
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'materialized'),
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'failed'),
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'skipped'),
    r.trigger_detail, r.parent_run_id, r.only_stale, r.partition_scope, r.owner, r.heartbeat_us, r.config,
    r.timings";

/// Appends one event row; returns its id (the event's sequence number).
pub(super) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    e: &EventRecord,
) -> rusqlite::Result<i64> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (run_id, asset, kind, time_us, attempt, duration_us, message, code_version, data_version, partition,
            check_name, check_passed, check_severity, check_blocking, load_us, compute_us, store_us,
            store_background)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    insert.insert(params![
        e.run_id.as_str(),
        e.asset
            .as_ref()
            .map_or_else(String::new, AssetKey::to_string),
        e.kind.as_str(),
        micros(e.time),
        e.attempt,
        e.duration.map(duration_micros),
        e.message,
        e.code_version,
        e.data_version,
        e.partition,
        e.check.as_ref().map(|c| c.name.as_str()),
        e.check.as_ref().map(|c| c.passed),
        e.check.as_ref().map(|c| c.severity.as_str()),
        e.check.as_ref().map(|c| c.blocking),
        e.timings.map(|t| duration_micros(t.load)),
        e.timings.map(|t| duration_micros(t.compute)),
        e.timings.map(|t| duration_micros(t.store)),
        e.timings.map(|t| t.background),
    ])
}

/// A sequence number as SQLite's integer (ids never exceed `i64::MAX`).
pub(super) fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A limit as SQLite's integer, where -1 is none.
pub(super) fn limit_param(limit: usize) -> i64 {
    match limit {
        0 => -1,
        n => i64::try_from(n).unwrap_or(-1),
    }
}

pub(super) fn read_events(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<EventRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT e.id, e.run_id, e.asset, e.kind, e.time_us, e.attempt, e.duration_us, e.message, e.code_version, e.data_version, e.partition,
            e.check_name, e.check_passed, e.check_severity, e.check_blocking,
            e.load_us, e.compute_us, e.store_us, e.store_background
         FROM events e {filter}"
    ))?;
    let mut meta = conn.prepare_cached(
        "SELECT label, kind, value FROM event_metadata WHERE event_id = ?1 ORDER BY rowid",
    )?;
    let mut inputs = conn.prepare_cached(
        "SELECT upstream, data_version FROM event_inputs WHERE event_id = ?1 ORDER BY rowid",
    )?;
    let rows: Vec<(i64, EventRecord)> = stmt
        .query_map(params, |r| {
            let id: i64 = r.get(0)?;
            Ok((
                id,
                EventRecord {
                    seq: u64::try_from(id).ok(),
                    run_id: RunId::from(r.get::<_, String>(1)?),
                    // Empty for run events.
                    asset: r.get::<_, String>(2)?.parse().ok(),
                    partition: r.get(10)?,
                    kind: EventKind::parse(&r.get::<_, String>(3)?).unwrap_or(EventKind::Failed),
                    time: time(r.get(4)?),
                    attempt: r.get(5)?,
                    duration: r.get::<_, Option<i64>>(6)?.map(from_micros),
                    message: r.get(7)?,
                    code_version: r.get(8)?,
                    data_version: r.get(9)?,
                    metadata: Vec::new(),
                    inputs: Vec::new(),
                    check: match r.get::<_, Option<String>>(11)? {
                        Some(name) => Some(Box::new(CheckRecord {
                            name,
                            passed: r.get::<_, Option<bool>>(12)?.unwrap_or(false),
                            severity: r
                                .get::<_, Option<String>>(13)?
                                .as_deref()
                                .and_then(orch_core::CheckSeverity::parse)
                                .unwrap_or_default(),
                            blocking: r.get::<_, Option<bool>>(14)?.unwrap_or(false),
                        })),
                        None => None,
                    },
                    timings: match (
                        r.get::<_, Option<i64>>(15)?,
                        r.get::<_, Option<i64>>(16)?,
                        r.get::<_, Option<i64>>(17)?,
                    ) {
                        (Some(load), Some(compute), Some(store)) => {
                            let t = crate::events::AssetTimings::new(
                                from_micros(load),
                                from_micros(compute),
                                from_micros(store),
                            );
                            Some(match r.get::<_, Option<bool>>(18)? {
                                Some(true) => t.in_background(),
                                _ => t,
                            })
                        }
                        _ => None,
                    },
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut events = Vec::with_capacity(rows.len());
    for (id, mut event) in rows {
        if matches!(
            event.kind,
            EventKind::Materialized | EventKind::CheckEvaluated
        ) {
            event.metadata = meta
                .query_map(params![id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        metadata_value(&r.get::<_, String>(1)?, r.get(2)?),
                    ))
                })?
                .collect::<Result<_, _>>()?;
            event.inputs = inputs
                .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
        }
        events.push(event);
    }
    Ok(events)
}

/// Asset check results of `asset` (of all with `None`): with `latest`, the latest of each
/// check by asset and check name; otherwise newest first, at most `limit` (0: all).
pub(super) fn read_check_results(
    conn: &Connection,
    asset: Option<&str>,
    latest: bool,
    limit: usize,
) -> rusqlite::Result<Vec<EventRecord>> {
    let filter = match latest {
        true => {
            "WHERE e.id IN (SELECT MAX(id) FROM events WHERE kind = 'check'
                 AND (?1 IS NULL OR asset = ?1) GROUP BY asset, check_name)
             ORDER BY e.asset, e.check_name LIMIT ?2"
        }
        false => {
            "WHERE e.kind = 'check' AND (?1 IS NULL OR e.asset = ?1)
             ORDER BY e.id DESC LIMIT ?2"
        }
    };
    read_events(conn, filter, params![asset, limit_param(limit)])
}

/// Inserts a run with its partitions and tags (no event).
pub(super) fn insert_run(conn: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    let id = run.id.as_str();
    conn.execute(
        "INSERT INTO runs (id, selection, status, trigger, started_us, ended_us, planned,
            trigger_detail, parent_run_id, only_stale, partition_scope, owner, heartbeat_us,
            config)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            id,
            run.target,
            run.status.as_str(),
            run.trigger.kind(),
            micros(run.started),
            run.ended.map(micros),
            run.planned,
            run.trigger.detail(),
            run.parent.as_ref().map(RunId::as_str),
            run.only_stale,
            run.partitions.kind(),
            run.owner,
            run.heartbeat.map(micros),
            run.config,
        ],
    )?;
    let mut key =
        conn.prepare_cached("INSERT INTO run_partitions (run_id, idx, key) VALUES (?1, ?2, ?3)")?;
    for (i, k) in run.partitions.keys().iter().enumerate() {
        key.execute(params![id, i as i64, k])?;
    }
    let mut tag =
        conn.prepare_cached("INSERT INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in &run.tags {
        tag.execute(params![id, k, v])?;
    }
    Ok(())
}

/// A run's stored status, if the run exists.
pub(super) fn run_status(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT status FROM runs WHERE id = ?1",
        params![run_id],
        |r| r.get(0),
    )
    .optional()
}
