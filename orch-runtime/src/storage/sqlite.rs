//! The embedded run store: one SQLite database in WAL mode, schema migrations in code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use orch_core::{AssetKey, RunId};
use rusqlite::{Connection, OptionalExtension, params};

use super::locks::RunLock;
use super::schema::{MIGRATIONS, migrate, retry_busy};
use super::sqlite_rows::{
    insert_event, insert_run, level_str, limit_param, metadata_parts, micros, parse_level,
    read_check_results, read_events, read_runs, run_status, seq_param, time, timings_json,
};
use super::{
    AssetState, AutomationAssetRecord, AutomationCommit, CancelOutcome, EventKind, EventRecord,
    FreshnessChange, LeaseHolder, LeaseOutcome, LogPage, LogRecord, PartitionStatus, Retention,
    RunFilter, RunRecord, RunStatus, Storage, StorageError, TickCommit,
};

/// The embedded store: `<state dir>/orch.db`, or a database in memory for an ephemeral
/// instance.
#[derive(Debug)]
pub struct SqliteStorage {
    /// The state directory, whose `runs/` holds the run locks; `None` in memory, where every
    /// run belongs to this process.
    dir: Option<PathBuf>,
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// A store in memory: nothing is written to disk and everything is gone with the value.
    /// What an ephemeral [`Instance`](crate::Instance) records into.
    pub fn in_memory() -> Result<SqliteStorage, StorageError> {
        let path = PathBuf::from(":memory:");
        let db = |source: rusqlite::Error| StorageError::Database {
            location: ":memory:".to_owned(),
            source: Box::new(source),
        };
        let mut conn = Connection::open_in_memory().map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        migrate(&mut conn).map_err(db)?;
        Ok(SqliteStorage {
            dir: None,
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Opens (creating and migrating as needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let path = dir.join("orch.db");
        let db = |source: rusqlite::Error| StorageError::Database {
            location: path.display().to_string(),
            source: Box::new(source),
        };
        let mut conn = Connection::open(&path).map_err(db)?;
        // Another process may be writing: wait for it rather than fail.
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let found = retry_busy(|| migrate(&mut conn)).map_err(db)?;
        let supported = MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StorageError::NewerSchema {
                path,
                found,
                supported,
            });
        }
        Ok(SqliteStorage {
            dir: Some(dir.to_owned()),
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The state directory this store lives in (`None` in memory).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether the owner of `run_id` is alive: its lock file is held (a file store), or it is
    /// this process (in memory). A store shared by remote workers will judge by heartbeat age.
    pub(super) fn alive(&self, run_id: &str) -> Result<bool, StorageError> {
        match &self.dir {
            Some(dir) => RunLock::is_held(dir, run_id),
            None => Ok(true),
        }
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StorageError {
        StorageError::Database {
            location: self.path.display().to_string(),
            source: Box::new(source),
        }
    }
}

/// The setting that holds the global automation pause.
const PAUSED: &str = "automation.paused";

impl Storage for SqliteStorage {
    fn begin_run(&self, run: &RunRecord, assets: &[String]) -> Result<(), StorageError> {
        let mut conn = self.conn();
        // IMMEDIATE: two processes claiming at once take turns instead of both reading "free".
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        // A run queued before is started by exactly one caller.
        let queued = match run_status(&tx, run.id.as_str()).map_err(|e| self.err(e))? {
            None => false,
            Some(status) if status == RunStatus::Queued.as_str() => true,
            Some(status) => {
                return Err(StorageError::NotQueued {
                    run_id: run.id.to_string(),
                    status,
                });
            }
        };
        {
            let mut claim = tx
                .prepare_cached(
                    "INSERT INTO asset_claims (asset, run_id) VALUES (?1, ?2)
                     ON CONFLICT (asset) DO NOTHING",
                )
                .map_err(|e| self.err(e))?;
            let mut holder = tx
                .prepare_cached("SELECT run_id FROM asset_claims WHERE asset = ?1")
                .map_err(|e| self.err(e))?;
            let mut take_over = tx
                .prepare_cached("UPDATE asset_claims SET run_id = ?2 WHERE asset = ?1")
                .map_err(|e| self.err(e))?;
            for asset in assets {
                if claim
                    .execute(params![asset, run.id.as_str()])
                    .map_err(|e| self.err(e))?
                    == 1
                {
                    continue;
                }
                let other: String = holder
                    .query_row(params![asset], |r| r.get(0))
                    .map_err(|e| self.err(e))?;
                if self.alive(&other)? {
                    // Dropping `tx` rolls back this run's claims.
                    return Err(StorageError::AssetBusy {
                        asset: asset.clone(),
                        holder: other,
                    });
                }
                take_over
                    .execute(params![asset, run.id.as_str()])
                    .map_err(|e| self.err(e))?;
            }
        }
        if queued {
            tx.execute(
                "UPDATE runs SET status = ?2, started_us = ?3, planned = ?4, owner = ?5,
                    heartbeat_us = ?6
                 WHERE id = ?1",
                params![
                    run.id.as_str(),
                    run.status.as_str(),
                    micros(run.started),
                    run.planned,
                    run.owner,
                    run.heartbeat.map(micros),
                ],
            )
            .map_err(|e| self.err(e))?;
        } else {
            insert_run(&tx, run).map_err(|e| self.err(e))?;
        }
        let started = EventRecord {
            time: run.started,
            message: Some(run.describe()),
            ..EventRecord::new(run.id.clone(), None, EventKind::RunStarted)
        };
        insert_event(&tx, &started).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn append(
        &self,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut set_latest = tx
                .prepare_cached(
                    "INSERT INTO latest_materialization (asset, event_id) VALUES (?1, ?2)
                     ON CONFLICT (asset) DO UPDATE SET event_id = excluded.event_id",
                )
                .map_err(|e| self.err(e))?;
            let mut set_partition = tx
                .prepare_cached(
                    "INSERT INTO partition_status (asset, partition, status, run_id, time_us, data_version, event_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (asset, partition) DO UPDATE SET status = excluded.status,
                       run_id = excluded.run_id, time_us = excluded.time_us,
                       data_version = excluded.data_version, event_id = excluded.event_id",
                )
                .map_err(|e| self.err(e))?;
            let mut insert_input = tx
                .prepare_cached(
                    "INSERT INTO event_inputs (event_id, upstream, data_version) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| self.err(e))?;
            let mut insert_meta = tx
                .prepare_cached(
                    "INSERT INTO event_metadata (event_id, label, kind, value) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for e in events {
                let id = insert_event(&tx, e).map_err(|e| self.err(e))?;
                let asset = e.asset.as_ref().map(AssetKey::to_string);
                if e.kind == EventKind::Materialized {
                    set_latest
                        .execute(params![asset, id])
                        .map_err(|e| self.err(e))?;
                }
                if let Some(partition) = &e.partition
                    && matches!(e.kind, EventKind::Materialized | EventKind::Failed)
                {
                    set_partition
                        .execute(params![
                            asset,
                            partition,
                            e.kind.as_str(),
                            e.run_id.as_str(),
                            micros(e.time),
                            e.data_version,
                            id
                        ])
                        .map_err(|e| self.err(e))?;
                }
                for (upstream, version) in &e.inputs {
                    insert_input
                        .execute(params![id, upstream, version])
                        .map_err(|e| self.err(e))?;
                }
                for (label, value) in &e.metadata {
                    let (kind, text) = metadata_parts(value);
                    insert_meta
                        .execute(params![id, label, kind, text])
                        .map_err(|e| self.err(e))?;
                }
            }
            let mut insert_log = tx
                .prepare_cached(
                    "INSERT INTO logs (run_id, asset, time_us, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.err(e))?;
            for (run_id, line) in logs {
                insert_log
                    .execute(params![
                        run_id,
                        line.asset,
                        micros(line.time),
                        level_str(line.level),
                        line.message
                    ])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn end_run_timed(
        &self,
        run_id: &str,
        status: RunStatus,
        ended: SystemTime,
        timings: Option<&crate::events::RunTimings>,
    ) -> Result<(), StorageError> {
        let mut conn = self.conn();
        // IMMEDIATE: this transaction reads before it writes, and in WAL mode a read snapshot
        // that another process wrote past cannot be upgraded (SQLITE_BUSY_SNAPSHOT, which the
        // busy timeout does not wait out).
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let started: Option<i64> = tx
            .query_row(
                "SELECT started_us FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE runs SET status = ?2, ended_us = ?3, timings = coalesce(?4, timings)
             WHERE id = ?1",
            params![
                run_id,
                status.as_str(),
                micros(ended),
                timings.map(timings_json)
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM asset_claims WHERE run_id = ?1",
            params![run_id],
        )
        .map_err(|e| self.err(e))?;
        let event = EventRecord {
            time: ended,
            duration: started
                .map(|s| Duration::from_micros(u64::try_from(micros(ended) - s).unwrap_or(0))),
            ..EventRecord::new(RunId::from(run_id), None, EventKind::RunEnded(status))
        };
        insert_event(&tx, &event).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn heartbeat(&self, run_id: &str) -> Result<(), StorageError> {
        self.conn()
            .execute(
                "UPDATE runs SET heartbeat_us = ?2 WHERE id = ?1",
                params![run_id, micros(SystemTime::now())],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StorageError> {
        use rusqlite::types::Value as Sql;
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Sql> = Vec::new();
        let param = |value: Sql, values: &mut Vec<Sql>| {
            values.push(value);
            format!("?{}", values.len())
        };
        if !filter.status.is_empty() {
            let list: Vec<String> = filter
                .status
                .iter()
                .map(|s| param(Sql::Text(s.as_str().to_owned()), &mut values))
                .collect();
            clauses.push(format!("r.status IN ({})", list.join(", ")));
        }
        if let Some(kind) = &filter.trigger {
            clauses.push(format!(
                "r.trigger = {}",
                param(Sql::Text(kind.clone()), &mut values)
            ));
        }
        if let Some((k, v)) = &filter.tag {
            let k = param(Sql::Text(k.clone()), &mut values);
            let v = param(Sql::Text(v.clone()), &mut values);
            clauses.push(format!(
                "r.id IN (SELECT run_id FROM run_tags WHERE key = {k} AND value = {v})"
            ));
        }
        if let Some(since) = filter.since {
            clauses.push(format!(
                "r.started_us >= {}",
                param(Sql::Integer(micros(since)), &mut values)
            ));
        }
        if let Some(before) = filter.before {
            clauses.push(format!(
                "r.started_us < {}",
                param(Sql::Integer(micros(before)), &mut values)
            ));
        }
        if let Some(cursor) = &filter.cursor {
            // Keyset paging: strictly after the cursor in (started, id) descending order. The
            // cursor carries both, so it needs no row (its run may be gone).
            let started = param(Sql::Integer(cursor.started_us()), &mut values);
            let id = param(Sql::Text(cursor.id().as_str().to_owned()), &mut values);
            clauses.push(format!("(r.started_us, r.id) < ({started}, {id})"));
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql.push_str("WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY r.started_us DESC, r.id DESC");
        if filter.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", filter.limit));
        }
        let conn = self.conn();
        read_runs(&conn, &sql, rusqlite::params_from_iter(values)).map_err(|e| self.err(e))
    }

    fn run(&self, id_or_prefix: &str) -> Result<RunRecord, StorageError> {
        let conn = self.conn();
        let found = read_runs(
            &conn,
            "WHERE r.id >= ?1 AND r.id < ?1 || '~' ORDER BY r.id LIMIT 2",
            params![id_or_prefix],
        )
        .map_err(|e| self.err(e))?;
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(StorageError::NoSuchRun(format!(
                "no run has the id `{id_or_prefix}`; `runs` lists the recent ones"
            ))),
            _ => Err(StorageError::NoSuchRun(format!(
                "`{id_or_prefix}` matches several runs; give more of the id"
            ))),
        }
    }

    fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        let conn = self.conn();
        read_events(
            &conn,
            "WHERE e.run_id = ?1 AND e.id > ?2 ORDER BY e.id LIMIT ?3",
            params![run_id, seq_param(after_seq), limit_param(limit)],
        )
        .map_err(|e| self.err(e))
    }

    fn events_since(&self, seq: u64, limit: usize) -> Result<Vec<EventRecord>, StorageError> {
        let conn = self.conn();
        read_events(
            &conn,
            "WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
            params![seq_param(seq), limit_param(limit)],
        )
        .map_err(|e| self.err(e))
    }

    fn latest_seq(&self) -> Result<u64, StorageError> {
        let max: Option<i64> = self
            .conn()
            .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()).unwrap_or(0))
    }

    fn logs_page(
        &self,
        run_id: &str,
        page: LogPage,
    ) -> Result<Vec<(u64, LogRecord)>, StorageError> {
        let conn = self.conn();
        // A page before an id is read newest first (so LIMIT keeps the lines nearest it), then
        // put back in order.
        let (sql, bound, limit, newest_first) = match page {
            LogPage::After { id, limit } => (
                "SELECT id, asset, time_us, level, message FROM logs WHERE run_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                id,
                limit,
                false,
            ),
            LogPage::Before { id, limit } => (
                "SELECT id, asset, time_us, level, message FROM logs WHERE run_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                id,
                limit,
                true,
            ),
        };
        let bound = i64::try_from(bound).unwrap_or(i64::MAX);
        let limit = match limit {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id, bound, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    LogRecord {
                        asset: r.get(1)?,
                        time: time(r.get(2)?),
                        level: parse_level(&r.get::<_, String>(3)?),
                        message: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut lines: Vec<(u64, LogRecord)> =
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        if newest_first {
            lines.reverse();
        }
        Ok(lines)
    }

    fn request_cancel(&self, run_id: &str) -> Result<CancelOutcome, StorageError> {
        let run = self.run(run_id)?;
        let id = run.id.as_str();
        match run.status {
            RunStatus::Queued => {
                if self.end_queued(id, RunStatus::Canceled, "canceled before it started")? {
                    return Ok(CancelOutcome::Canceled);
                }
                // It started meanwhile: ask the running run.
                self.request_cancel(id)
            }
            RunStatus::Starting | RunStatus::Running => {
                self.conn()
                    .execute(
                        "UPDATE runs SET cancel_requested_us = coalesce(cancel_requested_us, ?2) WHERE id = ?1",
                        params![id, micros(SystemTime::now())],
                    )
                    .map_err(|e| self.err(e))?;
                Ok(CancelOutcome::Requested)
            }
            status => Ok(CancelOutcome::AlreadyEnded(status)),
        }
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StorageError> {
        self.conn()
            .query_row(
                "SELECT cancel_requested_us IS NOT NULL FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map(|found| found.unwrap_or(false))
            .map_err(|e| self.err(e))
    }

    fn latest_materializations(&self) -> Result<HashMap<String, EventRecord>, StorageError> {
        self.read_latest_materializations()
    }

    fn materializations(
        &self,
        asset: &str,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        let conn = self.conn();
        read_events(
            &conn,
            "WHERE e.asset = ?1 AND e.kind = 'materialized' ORDER BY e.id DESC LIMIT ?2",
            params![asset, limit as i64],
        )
        .map_err(|e| self.err(e))
    }

    fn asset_states(&self) -> Result<HashMap<String, AssetState>, StorageError> {
        self.read_asset_states()
    }

    fn add_dynamic_partitions(&self, name: &str, keys: &[String]) -> Result<usize, StorageError> {
        self.write_dynamic_partitions(name, keys)
    }

    fn dynamic_partitions(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.read_dynamic_partitions(name)
    }

    fn partition_statuses(&self, asset: &str) -> Result<Vec<PartitionStatus>, StorageError> {
        self.read_partition_statuses(asset)
    }

    fn partition_materializations(
        &self,
        asset: &str,
    ) -> Result<HashMap<String, EventRecord>, StorageError> {
        self.read_partition_materializations(asset)
    }

    fn instigator_states(
        &self,
    ) -> Result<std::collections::HashMap<String, super::InstigatorState>, StorageError> {
        self.read_instigator_states()
    }

    fn set_instigator_status(
        &self,
        name: &str,
        kind: &str,
        status: super::InstigatorStatus,
    ) -> Result<(), StorageError> {
        self.write_instigator_status(name, kind, status)
    }

    fn automation_paused(&self) -> Result<bool, StorageError> {
        Ok(self.read_setting(PAUSED)?.is_some_and(|v| v == "true"))
    }

    fn set_automation_paused(&self, paused: bool) -> Result<(), StorageError> {
        self.write_setting(PAUSED, if paused { "true" } else { "false" })
    }

    fn begin_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
    ) -> Result<(super::TickRecord, bool), StorageError> {
        self.insert_tick(instigator, scheduled)
    }

    fn end_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
        status: super::TickStatus,
        run_ids: &[RunId],
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        self.update_tick(instigator, scheduled, status, run_ids, reason)
    }

    fn enqueue_run(&self, run: &RunRecord) -> Result<(), StorageError> {
        self.insert_queued(run)
    }

    fn end_queued_run(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, StorageError> {
        self.end_queued(run_id, status, reason)
    }

    fn commit_tick(&self, commit: &TickCommit<'_>) -> Result<Option<Vec<RunId>>, StorageError> {
        self.write_tick_commit(commit)
    }

    fn commit_automation(&self, commit: &AutomationCommit<'_>) -> Result<(), StorageError> {
        self.write_automation(commit)
    }

    fn automation_assets(&self) -> Result<Vec<AutomationAssetRecord>, StorageError> {
        self.read_automation_assets(None)
    }

    fn automation_asset(&self, asset: &str) -> Result<Option<AutomationAssetRecord>, StorageError> {
        Ok(self.read_automation_assets(Some(asset))?.pop())
    }

    fn check_results(
        &self,
        asset: Option<&str>,
        latest: bool,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        read_check_results(&self.conn(), asset, latest, limit).map_err(|e| self.err(e))
    }

    fn record_freshness(&self, changes: &[FreshnessChange]) -> Result<(), StorageError> {
        self.write_freshness(changes)
    }

    fn freshness(&self) -> Result<HashMap<String, FreshnessChange>, StorageError> {
        let latest = self.read_freshness(None, 0, true)?;
        Ok(latest.into_iter().map(|c| (c.asset.clone(), c)).collect())
    }

    fn freshness_changes(
        &self,
        asset: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FreshnessChange>, StorageError> {
        self.read_freshness(asset, limit, false)
    }

    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        description: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StorageError> {
        self.take_lease(name, holder, description, ttl)
    }

    fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StorageError> {
        self.extend_lease(name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.drop_lease(name, holder)
    }

    fn lease(&self, name: &str) -> Result<Option<LeaseHolder>, StorageError> {
        self.read_lease(name)
    }

    fn ticks(
        &self,
        instigator: &str,
        limit: usize,
    ) -> Result<Vec<super::TickRecord>, StorageError> {
        self.read_ticks(instigator, limit)
    }

    fn cursor(&self, name: &str) -> Result<Option<String>, StorageError> {
        self.read_cursor(name)
    }

    fn set_cursor(&self, name: &str, value: Option<&str>) -> Result<(), StorageError> {
        self.write_cursor(name, value)
    }

    fn recover_crashed(&self) -> Result<Vec<String>, StorageError> {
        self.mark_crashed()
    }

    fn apply_retention(&self, retention: Retention) -> Result<usize, StorageError> {
        self.delete_expired(retention)
    }

    fn hold_alive(&self, id: &str) -> Result<super::AliveHold, StorageError> {
        Ok(match &self.dir {
            Some(dir) => Box::new(RunLock::acquire(dir, id)?),
            None => Box::new(()),
        })
    }

    fn is_alive(&self, id: &str) -> Result<bool, StorageError> {
        self.alive(id)
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
