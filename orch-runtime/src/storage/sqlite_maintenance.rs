//! Keeping the SQLite store healthy: runs whose process died are marked crashed, and what the
//! retention policy no longer keeps is deleted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orch_core::RunId;
use rusqlite::params;

use super::locks::RunLock;
use super::sqlite::SqliteStorage;
use super::sqlite_rows::{insert_event, micros, time};
use super::{EventKind, EventRecord, Retention, RunStatus, StorageError};

impl SqliteStorage {
    /// Marks runs whose process died as crashed (their unfinished assets failed, their claims
    /// released); returns their ids.
    pub(super) fn mark_crashed(&self) -> Result<Vec<String>, StorageError> {
        let started: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT id FROM runs WHERE status IN ('starting', 'running', 'started')")
                .map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut crashed = Vec::new();
        for id in started {
            if self.alive(&id)? {
                continue; // its process is alive
            }
            let now = micros(SystemTime::now());
            let mut conn = self.conn();
            // IMMEDIATE, and only if still `started`: the run may have ended (and let go of its
            // lock) between the SELECT above and now.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let updated = tx
                .execute(
                    "UPDATE runs SET status = 'crashed', ended_us = ?2
                     WHERE id = ?1 AND status IN ('starting', 'running', 'started')",
                    params![id, now],
                )
                .map_err(|e| self.err(e))?;
            if updated == 0 {
                continue;
            }
            // Assets that started and never ended died with the process.
            tx.execute(
                "INSERT INTO events (run_id, asset, kind, time_us, attempt, message)
                 SELECT s.run_id, s.asset, 'failed', ?2, s.attempt, 'the run''s process died (crashed) while this asset was running'
                 FROM events s
                 WHERE s.run_id = ?1 AND s.kind = 'started'
                   AND NOT EXISTS (SELECT 1 FROM events f WHERE f.run_id = s.run_id AND f.asset = s.asset
                                   AND f.id > s.id AND f.kind IN ('materialized', 'failed', 'retried'))",
                params![id, now],
            )
            .map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM asset_claims WHERE run_id = ?1", params![id])
                .map_err(|e| self.err(e))?;
            let ended = EventRecord {
                time: time(now),
                ..EventRecord::new(
                    RunId::from(id.as_str()),
                    None,
                    EventKind::RunEnded(RunStatus::Crashed),
                )
            };
            insert_event(&tx, &ended).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            drop(conn);
            if let Some(dir) = self.dir() {
                RunLock::remove(dir, &id);
            }
            crashed.push(id);
        }
        Ok(crashed)
    }

    /// Deletes logs, runs and ticks older than `retention` keeps; returns how many rows went.
    pub(super) fn delete_expired(&self, retention: Retention) -> Result<usize, StorageError> {
        let now = SystemTime::now();
        let cutoff = |age: Duration| micros(now.checked_sub(age).unwrap_or(UNIX_EPOCH));
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut deleted = tx
            .execute(
                "DELETE FROM logs WHERE time_us < ?1",
                params![cutoff(retention.logs)],
            )
            .map_err(|e| self.err(e))?;
        // Old runs go, except a run holding the latest materialization of some asset or of
        // some partition (staleness reads what those consumed).
        deleted += tx
            .execute(
                "DELETE FROM runs WHERE started_us < ?1
                 AND status NOT IN ('queued', 'starting', 'running', 'started')
                 AND id NOT IN (SELECT e.run_id FROM events e
                                JOIN latest_materialization l ON e.id = l.event_id)
                 AND id NOT IN (SELECT e.run_id FROM events e
                                JOIN partition_status p ON e.id = p.event_id)",
                params![cutoff(retention.runs)],
            )
            .map_err(|e| self.err(e))?;
        // Ticks recorded longer ago go with the runs (a 1-second sensor adds 86,400 a day),
        // except each schedule's or sensor's latest (its interval counts from it) and
        // unfinished ones. Their age is when they were recorded, not the instant they were
        // for (`daemon --once --at` records past and future instants now).
        deleted += tx
            .execute(
                "DELETE FROM ticks WHERE started_us < ?1 AND status != 'started'
                 AND scheduled_us < (SELECT max(t.scheduled_us) FROM ticks t
                                     WHERE t.instigator = ticks.instigator)",
                params![cutoff(retention.runs)],
            )
            .map_err(|e| self.err(e))?;
        // Freshness changes as old as the runs, but each asset's latest (its current state).
        deleted += tx
            .execute(
                "DELETE FROM freshness_changes WHERE at_us < ?1
                 AND id < (SELECT max(f.id) FROM freshness_changes f
                           WHERE f.asset = freshness_changes.asset)",
                params![cutoff(retention.runs)],
            )
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(deleted)
    }
}
