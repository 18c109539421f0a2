//! The SQLite store's run queue: runs recorded as queued (by a tick, in the same transaction
//! as the tick and its cursor, or one by one), and queued runs ended without starting.
//! Starting a queued run is [`Storage::begin_run`](super::Storage::begin_run) with its id.

use std::time::SystemTime;

use orch_core::RunId;
use rusqlite::params;

use super::sqlite::SqliteStorage;
use super::sqlite_rows::{insert_event, insert_run, micros, run_status};
use super::{EventKind, EventRecord, RUN_KEY_TAG, RunRecord, RunStatus, StorageError, TickCommit};

impl SqliteStorage {
    pub(super) fn insert_queued(&self, run: &RunRecord) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        insert_run(&tx, run).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub(super) fn end_queued(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let now = SystemTime::now();
        let updated = tx
            .execute(
                "UPDATE runs SET status = ?2, ended_us = ?3 WHERE id = ?1 AND status = 'queued'",
                params![run_id, status.as_str(), micros(now)],
            )
            .map_err(|e| self.err(e))?;
        if updated == 0 {
            return Ok(false);
        }
        let event = EventRecord {
            time: now,
            message: Some(reason.to_owned()),
            ..EventRecord::new(RunId::from(run_id), None, EventKind::RunEnded(status))
        };
        insert_event(&tx, &event).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    pub(super) fn write_tick_commit(
        &self,
        commit: &TickCommit<'_>,
    ) -> Result<Option<Vec<RunId>>, StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let scheduled = micros(commit.scheduled);
        let status: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT status FROM ticks WHERE instigator = ?1 AND scheduled_us = ?2",
            params![commit.instigator, scheduled],
            |r| r.get(0),
        ))
        .map_err(|e| self.err(e))?;
        if status.as_deref() != Some("started") {
            return Ok(None);
        }
        let mut queued = Vec::with_capacity(commit.runs.len());
        for run in commit.runs {
            // A run id is new per tick; one already stored means this commit ran before.
            if run_status(&tx, run.id.as_str())
                .map_err(|e| self.err(e))?
                .is_some()
            {
                return Ok(None);
            }
            if let Some(key) = run.tags.get(RUN_KEY_TAG) {
                let new = tx
                    .execute(
                        "INSERT INTO run_keys (instigator, run_key, run_id, time_us)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (instigator, run_key) DO NOTHING",
                        params![
                            commit.instigator,
                            key,
                            run.id.as_str(),
                            micros(SystemTime::now())
                        ],
                    )
                    .map_err(|e| self.err(e))?;
                if new == 0 {
                    continue; // launched before: never again
                }
            }
            insert_run(&tx, run).map_err(|e| self.err(e))?;
            queued.push(run.id.clone());
        }
        let ids: Vec<&str> = queued.iter().map(RunId::as_str).collect();
        tx.execute(
            "UPDATE ticks SET status = ?3, run_ids = ?4, reason = ?5, ended_us = ?6
             WHERE instigator = ?1 AND scheduled_us = ?2",
            params![
                commit.instigator,
                scheduled,
                commit.status.as_str(),
                ids.join(","),
                commit.reason,
                micros(SystemTime::now())
            ],
        )
        .map_err(|e| self.err(e))?;
        match commit.cursor {
            Some((name, Some(value))) => tx.execute(
                "INSERT INTO cursors (name, value, updated_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = ?2, updated_us = ?3",
                params![name, value, micros(SystemTime::now())],
            ),
            Some((name, None)) => tx.execute("DELETE FROM cursors WHERE name = ?1", params![name]),
            None => Ok(0),
        }
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Some(queued))
    }
}
