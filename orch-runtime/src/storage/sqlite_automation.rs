//! The SQLite store's automation state: each schedule's (and, next, sensor's) status as
//! someone set it, and the global pause. What `schedule start|stop` and `automation
//! pause|resume` write, and what the daemon reads.

use std::collections::HashMap;
use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::sqlite::SqliteStorage;
use orch_core::{FreshnessState, RunId};

use super::sqlite_rows::{insert_run, limit_param, micros, seq_param, time};
use super::{
    AUTOMATION_TICKS, AutomationAssetRecord, AutomationCommit, FreshnessChange, InstigatorState,
    InstigatorStatus, StorageError, TickRecord, TickStatus,
};

impl SqliteStorage {
    pub(super) fn read_instigator_states(
        &self,
    ) -> Result<HashMap<String, InstigatorState>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT name, kind, status, updated_us FROM instigator_state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let status: String = r.get(2)?;
                Ok(InstigatorState {
                    name: r.get(0)?,
                    kind: r.get(1)?,
                    status: if status == "running" {
                        InstigatorStatus::Running
                    } else {
                        InstigatorStatus::Stopped
                    },
                    updated: time(r.get(3)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.map(|row| row.map(|s| (s.name.clone(), s)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    pub(super) fn write_instigator_status(
        &self,
        name: &str,
        kind: &str,
        status: InstigatorStatus,
    ) -> Result<(), StorageError> {
        let status = status.as_str();
        self.conn()
            .execute(
                "INSERT INTO instigator_state (name, kind, status, updated_us) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET kind = ?2, status = ?3, updated_us = ?4",
                params![name, kind, status, micros(SystemTime::now())],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub(super) fn read_setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.conn()
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub(super) fn write_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.conn()
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, value],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub(super) fn read_cursor(&self, name: &str) -> Result<Option<String>, StorageError> {
        self.conn()
            .query_row(
                "SELECT value FROM cursors WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub(super) fn write_cursor(&self, name: &str, value: Option<&str>) -> Result<(), StorageError> {
        let conn = self.conn();
        let done = match value {
            Some(value) => conn.execute(
                "INSERT INTO cursors (name, value, updated_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = ?2, updated_us = ?3",
                params![name, value, micros(SystemTime::now())],
            ),
            None => conn.execute("DELETE FROM cursors WHERE name = ?1", params![name]),
        };
        done.map(drop).map_err(|e| self.err(e))
    }

    pub(super) fn insert_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
    ) -> Result<(TickRecord, bool), StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let created = tx
            .execute(
                "INSERT INTO ticks (instigator, scheduled_us, status, started_us) VALUES (?1, ?2, 'started', ?3)
                 ON CONFLICT (instigator, scheduled_us) DO NOTHING",
                params![instigator, micros(scheduled), micros(SystemTime::now())],
            )
            .map_err(|e| self.err(e))?
            == 1;
        let tick = tx
            .query_row(
                &format!("{TICK_COLUMNS} WHERE instigator = ?1 AND scheduled_us = ?2"),
                params![instigator, micros(scheduled)],
                tick_row,
            )
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok((tick, created))
    }

    pub(super) fn update_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
        status: TickStatus,
        run_ids: &[orch_core::RunId],
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        let ids: Vec<&str> = run_ids.iter().map(orch_core::RunId::as_str).collect();
        self.conn()
            .execute(
                "UPDATE ticks SET status = ?3, run_ids = ?4, reason = ?5, ended_us = ?6
                 WHERE instigator = ?1 AND scheduled_us = ?2 AND status = 'started'",
                params![
                    instigator,
                    micros(scheduled),
                    status.as_str(),
                    ids.join(","),
                    reason,
                    micros(SystemTime::now())
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub(super) fn read_ticks(
        &self,
        instigator: &str,
        limit: usize,
    ) -> Result<Vec<TickRecord>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "{TICK_COLUMNS} WHERE instigator = ?1 ORDER BY scheduled_us DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![instigator, limit], tick_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

const TICK_COLUMNS: &str =
    "SELECT instigator, scheduled_us, status, run_ids, reason, started_us, ended_us FROM ticks";

fn tick_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TickRecord> {
    let ids: String = r.get(3)?;
    Ok(TickRecord {
        instigator: r.get(0)?,
        scheduled: time(r.get(1)?),
        status: TickStatus::parse(&r.get::<_, String>(2)?),
        run_ids: ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(orch_core::RunId::from)
            .collect(),
        reason: r.get(4)?,
        started: time(r.get(5)?),
        ended: r.get::<_, Option<i64>>(6)?.map(time),
    })
}

impl SqliteStorage {
    pub(super) fn write_automation(
        &self,
        commit: &AutomationCommit<'_>,
    ) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        for run in commit.runs {
            insert_run(&tx, run).map_err(|e| self.err(e))?;
        }
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO automation_assets (asset, condition, since_seq, since_us,
                        requested_seq, requested_us, requested_run, evaluated_us, result, tree)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (asset) DO UPDATE SET condition = ?2, since_seq = ?3,
                        since_us = ?4, requested_seq = ?5, requested_us = ?6, requested_run = ?7,
                        evaluated_us = ?8, result = ?9, tree = ?10",
                )
                .map_err(|e| self.err(e))?;
            for a in commit.assets {
                upsert
                    .execute(params![
                        a.asset,
                        a.condition,
                        seq_param(a.since_seq),
                        micros(a.since),
                        a.requested_seq.map(seq_param),
                        a.requested.map(micros),
                        a.requested_run.as_ref().map(RunId::as_str),
                        micros(a.evaluated),
                        a.result,
                        a.tree,
                    ])
                    .map_err(|e| self.err(e))?;
            }
        }
        if !commit.runs.is_empty() {
            let ids: Vec<&str> = commit.runs.iter().map(|r| r.id.as_str()).collect();
            // Keyed by the instant evaluated; recorded now (what retention ages it by). Two
            // evaluations as of one instant (`daemon --once --at T` twice) share its tick.
            let now = micros(SystemTime::now());
            tx.execute(
                "INSERT INTO ticks (instigator, scheduled_us, status, run_ids, started_us, ended_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (instigator, scheduled_us)
                 DO UPDATE SET run_ids = run_ids || ',' || excluded.run_ids, ended_us = excluded.ended_us",
                params![
                    AUTOMATION_TICKS,
                    micros(commit.evaluated),
                    TickStatus::Success.as_str(),
                    ids.join(","),
                    now
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub(super) fn read_automation_assets(
        &self,
        asset: Option<&str>,
    ) -> Result<Vec<AutomationAssetRecord>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT asset, condition, since_seq, since_us, requested_seq, requested_us,
                    requested_run, evaluated_us, result, tree
                 FROM automation_assets WHERE ?1 IS NULL OR asset = ?1 ORDER BY asset",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![asset], |r| {
                Ok(AutomationAssetRecord {
                    asset: r.get(0)?,
                    condition: r.get(1)?,
                    since_seq: r.get::<_, i64>(2)?.max(0) as u64,
                    since: time(r.get(3)?),
                    requested_seq: r.get::<_, Option<i64>>(4)?.map(|s| s.max(0) as u64),
                    requested: r.get::<_, Option<i64>>(5)?.map(time),
                    requested_run: r.get::<_, Option<String>>(6)?.map(RunId::from),
                    evaluated: time(r.get(7)?),
                    result: r.get(8)?,
                    tree: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

impl SqliteStorage {
    pub(super) fn write_freshness(&self, changes: &[FreshnessChange]) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO freshness_changes (asset, state, previous, detail, at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.err(e))?;
            for c in changes {
                insert
                    .execute(params![
                        c.asset,
                        c.state.as_str(),
                        c.previous.map(FreshnessState::as_str),
                        c.detail,
                        micros(c.at)
                    ])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Changes newest first: of `asset` (or all), at most `limit` (0: all); with `latest`,
    /// only the latest of each asset.
    pub(super) fn read_freshness(
        &self,
        asset: Option<&str>,
        limit: usize,
        latest: bool,
    ) -> Result<Vec<FreshnessChange>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT asset, state, previous, detail, at_us FROM freshness_changes
                 WHERE (?1 IS NULL OR asset = ?1)
                   AND (?2 = 0 OR id IN (SELECT MAX(id) FROM freshness_changes GROUP BY asset))
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![asset, latest, limit_param(limit)], |r| {
                let state: String = r.get(1)?;
                let previous: Option<String> = r.get(2)?;
                Ok(FreshnessChange {
                    asset: r.get(0)?,
                    state: FreshnessState::parse(&state).unwrap_or(FreshnessState::Unknown),
                    previous: previous.as_deref().and_then(FreshnessState::parse),
                    detail: r.get(3)?,
                    at: time(r.get(4)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}
