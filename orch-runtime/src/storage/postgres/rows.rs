//! How the PostgreSQL store's rows map to records and back: runs with their partitions and
//! tags, events with their metadata and inputs. `runs.rs` and `automation.rs` hold the
//! store's operations.

use std::collections::HashMap;

use orch_core::{AssetKey, RunId};
use postgres::types::ToSql;

use super::super::values::{
    duration_micros, from_micros, metadata_parts, metadata_value, micros, time, timings_of,
};
use super::super::{CheckRecord, EventKind, EventRecord, RunRecord};
use super::PgResult;
use super::db::Db;
use crate::run::{PartitionScope, Trigger};

/// Parameters of a query, borrowed.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Serializes appending events in this schema until the transaction ends, so sequence
/// numbers become visible in order (see the module's documentation).
pub(super) fn lock_events(tx: &mut impl Db) -> PgResult<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('orch:events:' || current_schema(), 0))",
        &[],
    )?;
    Ok(())
}

const RUN_COLUMNS: &str =
    "r.id, r.selection, r.status, r.trigger, r.started_us, r.ended_us, r.planned,
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'materialized'),
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'failed'),
    (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.kind = 'skipped'),
    r.trigger_detail, r.parent_run_id, r.only_stale, r.partition_scope, r.owner, r.heartbeat_us, r.config,
    r.timings";

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads runs matching `filter` (SQL after `FROM runs r`), with their partitions and tags.
pub(super) fn read_runs(
    c: &mut impl Db,
    filter: &str,
    params: &Params<'_>,
) -> PgResult<Vec<RunRecord>> {
    let rows = c.query(
        &format!("SELECT {RUN_COLUMNS} FROM runs r {filter}"),
        params,
    )?;
    let mut runs = Vec::with_capacity(rows.len());
    let mut scopes = Vec::with_capacity(rows.len());
    for row in &rows {
        runs.push(RunRecord {
            id: RunId::from(row.get::<_, String>(0)),
            target: row.get(1),
            // A spelling no orch wrote is taken as still running (as the SQLite store does).
            status: super::super::RunStatus::parse(row.get(2))
                .unwrap_or(super::super::RunStatus::Running),
            trigger: Trigger::from_stored(row.get(3), row.get(10)),
            started: time(row.get(4)),
            ended: row.get::<_, Option<i64>>(5).map(time),
            planned: count(row.get(6)),
            counts: (count(row.get(7)), count(row.get(8)), count(row.get(9))),
            parent: row.get::<_, Option<String>>(11).map(RunId::from),
            only_stale: row.get(12),
            partitions: PartitionScope::None,
            owner: row.get(14),
            heartbeat: row.get::<_, Option<i64>>(15).map(time),
            config: row.get(16),
            timings: row.get::<_, Option<&str>>(17).and_then(timings_of),
            tags: Default::default(),
        });
        scopes.push(row.get::<_, Option<String>>(13));
    }
    if runs.is_empty() {
        return Ok(runs);
    }
    // Partitions and tags of every run read, in two queries.
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for row in c.query(
        "SELECT run_id, key FROM run_partitions WHERE run_id = ANY($1) ORDER BY run_id, idx",
        &[&ids],
    )? {
        keys.entry(row.get(0)).or_default().push(row.get(1));
    }
    let mut tags: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in c.query(
        "SELECT run_id, key, value FROM run_tags WHERE run_id = ANY($1)",
        &[&ids],
    )? {
        tags.entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    for (run, scope) in runs.iter_mut().zip(scopes) {
        if scope.is_some() {
            let found = keys.remove(run.id.as_str()).unwrap_or_default();
            run.partitions = PartitionScope::from_stored(scope.as_deref(), found);
        }
        run.tags = tags
            .remove(run.id.as_str())
            .unwrap_or_default()
            .into_iter()
            .collect();
    }
    Ok(runs)
}

/// Inserts a run with its partitions and tags (no event).
pub(super) fn insert_run(c: &mut impl Db, run: &RunRecord) -> PgResult<()> {
    let id = run.id.as_str();
    c.execute(
        "INSERT INTO runs (id, selection, status, trigger, started_us, ended_us, planned,
            trigger_detail, parent_run_id, only_stale, partition_scope, owner, heartbeat_us,
            config)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &id,
            &run.target,
            &run.status.as_str(),
            &run.trigger.kind(),
            &micros(run.started),
            &run.ended.map(micros),
            &i64::from(run.planned),
            &run.trigger.detail(),
            &run.parent.as_ref().map(RunId::as_str),
            &run.only_stale,
            &run.partitions.kind(),
            &run.owner,
            &run.heartbeat.map(micros),
            &run.config,
        ],
    )?;
    let keys = run.partitions.keys();
    if !keys.is_empty() {
        let idx: Vec<i64> = (0..keys.len() as i64).collect();
        c.execute(
            "INSERT INTO run_partitions (run_id, idx, key)
             SELECT $1, i, k FROM unnest($2::bigint[], $3::text[]) AS t (i, k)",
            &[&id, &idx, &keys],
        )?;
    }
    if !run.tags.is_empty() {
        let (k, v): (Vec<&str>, Vec<&str>) = run
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .unzip();
        c.execute(
            "INSERT INTO run_tags (run_id, key, value)
             SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)",
            &[&id, &k, &v],
        )?;
    }
    Ok(())
}

/// A run's stored status, if the run exists; with `lock`, the row is locked until the
/// transaction ends (the caller changes it next).
pub(super) fn run_status(c: &mut impl Db, run_id: &str, lock: bool) -> PgResult<Option<String>> {
    let sql = match lock {
        true => "SELECT status FROM runs WHERE id = $1 FOR UPDATE",
        false => "SELECT status FROM runs WHERE id = $1",
    };
    Ok(c.query_opt(sql, &[&run_id])?.map(|r| r.get(0)))
}

/// Appends one event row (the caller holds [`lock_events`]); returns its id, the event's
/// sequence number.
pub(super) fn insert_event(c: &mut impl Db, e: &EventRecord) -> PgResult<i64> {
    let asset = e
        .asset
        .as_ref()
        .map_or_else(String::new, AssetKey::to_string);
    let row = c.query_one(
        "INSERT INTO events (run_id, asset, kind, time_us, attempt, duration_us, message, code_version, data_version, partition,
            check_name, check_passed, check_severity, check_blocking, load_us, compute_us, store_us,
            store_background)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         RETURNING id",
        &[
            &e.run_id.as_str(),
            &asset,
            &e.kind.as_str(),
            &micros(e.time),
            &e.attempt.map(i64::from),
            &e.duration.map(duration_micros),
            &e.message,
            &e.code_version,
            &e.data_version,
            &e.partition,
            &e.check.as_ref().map(|c| c.name.as_str()),
            &e.check.as_ref().map(|c| c.passed),
            &e.check.as_ref().map(|c| c.severity.as_str()),
            &e.check.as_ref().map(|c| c.blocking),
            &e.timings.map(|t| duration_micros(t.load)),
            &e.timings.map(|t| duration_micros(t.compute)),
            &e.timings.map(|t| duration_micros(t.store)),
            &e.timings.map(|t| t.background),
        ],
    )?;
    let id: i64 = row.get(0);
    if !e.inputs.is_empty() {
        let (up, v): (Vec<&str>, Vec<Option<&str>>) = e
            .inputs
            .iter()
            .map(|(u, v)| (u.as_str(), v.as_deref()))
            .unzip();
        c.execute(
            "INSERT INTO event_inputs (event_id, upstream, data_version)
             SELECT $1, u, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t (u, v, n)
             ORDER BY n",
            &[&id, &up, &v],
        )?;
    }
    if !e.metadata.is_empty() {
        let mut labels = Vec::with_capacity(e.metadata.len());
        let mut kinds = Vec::with_capacity(e.metadata.len());
        let mut values = Vec::with_capacity(e.metadata.len());
        for (label, value) in &e.metadata {
            let (kind, text) = metadata_parts(value);
            labels.push(label.as_str());
            kinds.push(kind);
            values.push(text);
        }
        c.execute(
            "INSERT INTO event_metadata (event_id, label, kind, value)
             SELECT $1, l, k, v FROM unnest($2::text[], $3::text[], $4::text[])
                WITH ORDINALITY AS t (l, k, v, n)
             ORDER BY n",
            &[&id, &labels, &kinds, &values],
        )?;
    }
    Ok(id)
}

/// A sequence number as the server's BIGINT.
pub(super) fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A limit as the server's, where NULL is none.
pub(super) fn limit_param(limit: usize) -> Option<i64> {
    match limit {
        0 => None,
        n => i64::try_from(n).ok(),
    }
}

/// Reads events matching `filter` (SQL after `FROM events e`), with the metadata and inputs
/// of materializations and check results.
pub(super) fn read_events(
    c: &mut impl Db,
    filter: &str,
    params: &Params<'_>,
) -> PgResult<Vec<EventRecord>> {
    let rows = c.query(
        &format!(
            "SELECT e.id, e.run_id, e.asset, e.kind, e.time_us, e.attempt, e.duration_us, e.message, e.code_version, e.data_version, e.partition,
                e.check_name, e.check_passed, e.check_severity, e.check_blocking,
                e.load_us, e.compute_us, e.store_us, e.store_background
             FROM events e {filter}"
        ),
        params,
    )?;
    let mut events = Vec::with_capacity(rows.len());
    let mut detailed: Vec<i64> = Vec::new();
    for r in &rows {
        let id: i64 = r.get(0);
        let kind = EventKind::parse(r.get(3)).unwrap_or(EventKind::Failed);
        if matches!(kind, EventKind::Materialized | EventKind::CheckEvaluated) {
            detailed.push(id);
        }
        events.push(EventRecord {
            seq: u64::try_from(id).ok(),
            run_id: RunId::from(r.get::<_, String>(1)),
            // Empty for run events.
            asset: r.get::<_, &str>(2).parse().ok(),
            partition: r.get(10),
            kind,
            time: time(r.get(4)),
            attempt: r
                .get::<_, Option<i64>>(5)
                .and_then(|a| u32::try_from(a).ok()),
            duration: r.get::<_, Option<i64>>(6).map(from_micros),
            message: r.get(7),
            code_version: r.get(8),
            data_version: r.get(9),
            metadata: Vec::new(),
            inputs: Vec::new(),
            check: r.get::<_, Option<String>>(11).map(|name| {
                Box::new(CheckRecord {
                    name,
                    passed: r.get::<_, Option<bool>>(12).unwrap_or(false),
                    severity: r
                        .get::<_, Option<&str>>(13)
                        .and_then(orch_core::CheckSeverity::parse)
                        .unwrap_or_default(),
                    blocking: r.get::<_, Option<bool>>(14).unwrap_or(false),
                })
            }),
            timings: match (
                r.get::<_, Option<i64>>(15),
                r.get::<_, Option<i64>>(16),
                r.get::<_, Option<i64>>(17),
            ) {
                (Some(load), Some(compute), Some(store)) => {
                    let t = crate::events::AssetTimings::new(
                        from_micros(load),
                        from_micros(compute),
                        from_micros(store),
                    );
                    Some(match r.get::<_, Option<bool>>(18) {
                        Some(true) => t.in_background(),
                        _ => t,
                    })
                }
                _ => None,
            },
        });
    }
    if detailed.is_empty() {
        return Ok(events);
    }
    // Metadata and inputs of every event read, in two queries.
    let mut meta: HashMap<i64, Vec<(String, orch_core::MetadataValue)>> = HashMap::new();
    for row in c.query(
        "SELECT event_id, label, kind, value FROM event_metadata WHERE event_id = ANY($1) ORDER BY id",
        &[&detailed],
    )? {
        meta.entry(row.get(0))
            .or_default()
            .push((row.get(1), metadata_value(row.get(2), row.get(3))));
    }
    let mut inputs: HashMap<i64, Vec<(String, Option<String>)>> = HashMap::new();
    for row in c.query(
        "SELECT event_id, upstream, data_version FROM event_inputs WHERE event_id = ANY($1) ORDER BY id",
        &[&detailed],
    )? {
        inputs
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    for e in &mut events {
        let Some(id) = e.seq.and_then(|s| i64::try_from(s).ok()) else {
            continue;
        };
        if let Some(m) = meta.remove(&id) {
            e.metadata = m;
        }
        if let Some(i) = inputs.remove(&id) {
            e.inputs = i;
        }
    }
    Ok(events)
}

/// Asset check results of `asset` (of all with `None`): with `latest`, the latest of each
/// check by asset and check name; otherwise newest first, at most `limit` (0: all).
pub(super) fn read_check_results(
    c: &mut impl Db,
    asset: Option<&str>,
    latest: bool,
    limit: usize,
) -> PgResult<Vec<EventRecord>> {
    let filter = match latest {
        true => {
            "WHERE e.id IN (SELECT max(id) FROM events WHERE kind = 'check'
                 AND ($1::text IS NULL OR asset = $1) GROUP BY asset, check_name)
             ORDER BY e.asset, e.check_name LIMIT $2"
        }
        false => {
            "WHERE e.kind = 'check' AND ($1::text IS NULL OR e.asset = $1)
             ORDER BY e.id DESC LIMIT $2"
        }
    };
    read_events(c, filter, &[&asset, &limit_param(limit)])
}
