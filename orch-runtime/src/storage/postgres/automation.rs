//! The PostgreSQL store's automation state (schedules' statuses, the global pause, cursors,
//! ticks, declarative automation, freshness), its leases, its run queue, and its upkeep
//! (crashed runs, retention). Every read-then-write is one transaction that locks the row it
//! reads, so two processes asking at once take turns and exactly one wins.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orch_core::{FreshnessState, RunId};
use postgres::Row;

use super::super::values::{micros, time};
use super::db::Db;
use super::rows::{insert_event, insert_run, limit_param, lock_events, run_status, seq_param};
use super::steps::has_open_steps;
use super::{PgStorage, alive};
use crate::storage::{
    AUTOMATION_TICKS, AutomationAssetRecord, AutomationCommit, EventKind, EventRecord,
    FreshnessChange, InstigatorState, InstigatorStatus, LeaseHolder, LeaseOutcome, RUN_KEY_TAG,
    Retention, RunStatus, StorageError, TickCommit, TickRecord, TickStatus,
};

const TICK_COLUMNS: &str =
    "SELECT instigator, scheduled_us, status, run_ids, reason, started_us, ended_us FROM ticks";

fn tick_row(r: &Row) -> TickRecord {
    let ids: &str = r.get(3);
    TickRecord {
        instigator: r.get(0),
        scheduled: time(r.get(1)),
        status: TickStatus::parse(r.get(2)),
        run_ids: ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(RunId::from)
            .collect(),
        reason: r.get(4),
        started: time(r.get(5)),
        ended: r.get::<_, Option<i64>>(6).map(time),
    }
}

const HOLDER: &str =
    "SELECT holder, description, acquired_us, heartbeat_us, expires_us FROM leases WHERE name = $1";

fn holder_row(r: &Row) -> LeaseHolder {
    LeaseHolder {
        id: r.get(0),
        description: r.get(1),
        acquired: time(r.get(2)),
        heartbeat: time(r.get(3)),
        expires: time(r.get(4)),
    }
}

fn expiry(now: SystemTime, ttl: Duration) -> i64 {
    micros(now).saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

impl PgStorage {
    pub(super) fn read_instigator_states(
        &self,
    ) -> Result<HashMap<String, InstigatorState>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT name, kind, status, updated_us FROM instigator_state",
                &[],
            )?
            .iter()
            .map(|r| {
                let state = InstigatorState {
                    name: r.get(0),
                    kind: r.get(1),
                    status: if r.get::<_, &str>(2) == "running" {
                        InstigatorStatus::Running
                    } else {
                        InstigatorStatus::Stopped
                    },
                    updated: time(r.get(3)),
                };
                (state.name.clone(), state)
            })
            .collect())
        })
    }

    pub(super) fn write_instigator_status(
        &self,
        name: &str,
        kind: &str,
        status: InstigatorStatus,
    ) -> Result<(), StorageError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO instigator_state (name, kind, status, updated_us) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET kind = $2, status = $3, updated_us = $4",
                &[&name, &kind, &status.as_str(), &micros(SystemTime::now())],
            )?;
            Ok(())
        })
    }

    pub(super) fn read_setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT value FROM settings WHERE key = $1", &[&key])?
                    .map(|r| r.get(0)),
            )
        })
    }

    pub(super) fn write_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = $2",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    pub(super) fn read_cursor(&self, name: &str) -> Result<Option<String>, StorageError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT value FROM cursors WHERE name = $1", &[&name])?
                    .map(|r| r.get(0)),
            )
        })
    }

    pub(super) fn write_cursor(&self, name: &str, value: Option<&str>) -> Result<(), StorageError> {
        self.with(|c| {
            set_cursor(c, name, value)?;
            Ok(())
        })
    }

    pub(super) fn insert_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
    ) -> Result<(TickRecord, bool), StorageError> {
        self.with(|c| {
            let created = c.execute(
                "INSERT INTO ticks (instigator, scheduled_us, status, started_us) VALUES ($1, $2, 'started', $3)
                 ON CONFLICT (instigator, scheduled_us) DO NOTHING",
                &[&instigator, &micros(scheduled), &micros(SystemTime::now())],
            )? == 1;
            let tick = tick_row(&c.query_one(
                &format!("{TICK_COLUMNS} WHERE instigator = $1 AND scheduled_us = $2"),
                &[&instigator, &micros(scheduled)],
            )?);
            Ok((tick, created))
        })
    }

    pub(super) fn update_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
        status: TickStatus,
        run_ids: &[RunId],
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        let ids: Vec<&str> = run_ids.iter().map(RunId::as_str).collect();
        self.with(|c| {
            c.execute(
                "UPDATE ticks SET status = $3, run_ids = $4, reason = $5, ended_us = $6
                 WHERE instigator = $1 AND scheduled_us = $2 AND status = 'started'",
                &[
                    &instigator,
                    &micros(scheduled),
                    &status.as_str(),
                    &ids.join(","),
                    &reason,
                    &micros(SystemTime::now()),
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn read_ticks(
        &self,
        instigator: &str,
        limit: usize,
    ) -> Result<Vec<TickRecord>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                &format!(
                    "{TICK_COLUMNS} WHERE instigator = $1 ORDER BY scheduled_us DESC LIMIT $2"
                ),
                &[&instigator, &limit_param(limit)],
            )?
            .iter()
            .map(tick_row)
            .collect())
        })
    }

    pub(super) fn write_automation(
        &self,
        commit: &AutomationCommit<'_>,
    ) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            for run in commit.runs {
                insert_run(&mut tx, run)?;
            }
            let upsert = tx.prepare(
                "INSERT INTO automation_assets (asset, condition, since_seq, since_us,
                    requested_seq, requested_us, requested_run, evaluated_us, result, tree)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (asset) DO UPDATE SET condition = $2, since_seq = $3,
                    since_us = $4, requested_seq = $5, requested_us = $6, requested_run = $7,
                    evaluated_us = $8, result = $9, tree = $10",
            )?;
            for a in commit.assets {
                tx.execute(
                    &upsert,
                    &[
                        &a.asset,
                        &a.condition,
                        &seq_param(a.since_seq),
                        &micros(a.since),
                        &a.requested_seq.map(seq_param),
                        &a.requested.map(micros),
                        &a.requested_run.as_ref().map(RunId::as_str),
                        &micros(a.evaluated),
                        &a.result,
                        &a.tree,
                    ],
                )?;
            }
            if !commit.runs.is_empty() {
                let ids: Vec<&str> = commit.runs.iter().map(|r| r.id.as_str()).collect();
                // Keyed by the instant evaluated; recorded now (what retention ages it by).
                let now = micros(SystemTime::now());
                tx.execute(
                    "INSERT INTO ticks (instigator, scheduled_us, status, run_ids, started_us, ended_us)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (instigator, scheduled_us)
                     DO UPDATE SET run_ids = ticks.run_ids || ',' || excluded.run_ids,
                        ended_us = excluded.ended_us",
                    &[
                        &AUTOMATION_TICKS,
                        &micros(commit.evaluated),
                        &TickStatus::Success.as_str(),
                        &ids.join(","),
                        &now,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    pub(super) fn read_automation_assets(
        &self,
        asset: Option<&str>,
    ) -> Result<Vec<AutomationAssetRecord>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT asset, condition, since_seq, since_us, requested_seq, requested_us,
                    requested_run, evaluated_us, result, tree
                 FROM automation_assets WHERE $1::text IS NULL OR asset = $1 ORDER BY asset",
                &[&asset],
            )?
            .iter()
            .map(|r| AutomationAssetRecord {
                asset: r.get(0),
                condition: r.get(1),
                since_seq: r.get::<_, i64>(2).max(0) as u64,
                since: time(r.get(3)),
                requested_seq: r.get::<_, Option<i64>>(4).map(|s| s.max(0) as u64),
                requested: r.get::<_, Option<i64>>(5).map(time),
                requested_run: r.get::<_, Option<String>>(6).map(RunId::from),
                evaluated: time(r.get(7)),
                result: r.get(8),
                tree: r.get(9),
            })
            .collect())
        })
    }

    pub(super) fn write_freshness(&self, changes: &[FreshnessChange]) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO freshness_changes (asset, state, previous, detail, at_us)
                 VALUES ($1, $2, $3, $4, $5)",
            )?;
            for change in changes {
                tx.execute(
                    &insert,
                    &[
                        &change.asset,
                        &change.state.as_str(),
                        &change.previous.map(FreshnessState::as_str),
                        &change.detail,
                        &micros(change.at),
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Changes newest first: of `asset` (or all), at most `limit` (0: all); with `latest`,
    /// only the latest of each asset.
    pub(super) fn read_freshness(
        &self,
        asset: Option<&str>,
        limit: usize,
        latest: bool,
    ) -> Result<Vec<FreshnessChange>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT asset, state, previous, detail, at_us FROM freshness_changes
                 WHERE ($1::text IS NULL OR asset = $1)
                   AND (NOT $2 OR id IN (SELECT max(id) FROM freshness_changes GROUP BY asset))
                 ORDER BY id DESC LIMIT $3",
                &[&asset, &latest, &limit_param(limit)],
            )?
            .iter()
            .map(|r| FreshnessChange {
                asset: r.get(0),
                state: FreshnessState::parse(r.get(1)).unwrap_or(FreshnessState::Unknown),
                previous: r.get::<_, Option<&str>>(2).and_then(FreshnessState::parse),
                detail: r.get(3),
                at: time(r.get(4)),
            })
            .collect())
        })
    }

    pub(super) fn take_lease(
        &self,
        name: &str,
        holder: &str,
        description: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StorageError> {
        self.with(|c| {
            let now = SystemTime::now();
            let mut tx = c.transaction()?;
            // The lease's row does not exist the first time: a transaction-scoped lock on its
            // name makes two first takers take turns too.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('orch:lease:' || current_schema() || ':' || $1, 0))",
                &[&name],
            )?;
            if let Some(current) = tx.query_opt(HOLDER, &[&name])?.map(|r| holder_row(&r))
                && current.id != holder
                && current.expires > now
            {
                return Ok(LeaseOutcome::Held(current));
            }
            tx.execute(
                "INSERT INTO leases (name, holder, description, acquired_us, heartbeat_us, expires_us)
                 VALUES ($1, $2, $3, $4, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET holder = $2, description = $3, acquired_us = $4,
                    heartbeat_us = $4, expires_us = $5",
                &[&name, &holder, &description, &micros(now), &expiry(now, ttl)],
            )?;
            tx.commit()?;
            Ok(LeaseOutcome::Acquired)
        })
    }

    pub(super) fn extend_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StorageError> {
        self.with(|c| {
            let now = SystemTime::now();
            Ok(c.execute(
                "UPDATE leases SET heartbeat_us = $3, expires_us = $4 WHERE name = $1 AND holder = $2",
                &[&name, &holder, &micros(now), &expiry(now, ttl)],
            )? == 1)
        })
    }

    pub(super) fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )?;
            Ok(())
        })
    }

    pub(super) fn read_lease(&self, name: &str) -> Result<Option<LeaseHolder>, StorageError> {
        self.with(|c| Ok(c.query_opt(HOLDER, &[&name])?.map(|r| holder_row(&r))))
    }

    pub(super) fn end_queued(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            let now = SystemTime::now();
            let updated = tx.execute(
                "UPDATE runs SET status = $2, ended_us = $3 WHERE id = $1 AND status = 'queued'",
                &[&run_id, &status.as_str(), &micros(now)],
            )?;
            if updated == 0 {
                return Ok(false);
            }
            let event = EventRecord {
                time: now,
                message: Some(reason.to_owned()),
                ..EventRecord::new(RunId::from(run_id), None, EventKind::RunEnded(status))
            };
            insert_event(&mut tx, &event)?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub(super) fn write_tick_commit(
        &self,
        commit: &TickCommit<'_>,
    ) -> Result<Option<Vec<RunId>>, StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let scheduled = micros(commit.scheduled);
            let status: Option<String> = tx
                .query_opt(
                    "SELECT status FROM ticks WHERE instigator = $1 AND scheduled_us = $2 FOR UPDATE",
                    &[&commit.instigator, &scheduled],
                )?
                .map(|r| r.get(0));
            if status.as_deref() != Some("started") {
                return Ok(None);
            }
            let mut queued = Vec::with_capacity(commit.runs.len());
            for run in commit.runs {
                // A run id is new per tick; one already stored means this commit ran before.
                if run_status(&mut tx, run.id.as_str(), false)?.is_some() {
                    return Ok(None);
                }
                if let Some(key) = run.tags.get(RUN_KEY_TAG) {
                    let new = tx.execute(
                        "INSERT INTO run_keys (instigator, run_key, run_id, time_us)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (instigator, run_key) DO NOTHING",
                        &[
                            &commit.instigator,
                            key,
                            &run.id.as_str(),
                            &micros(SystemTime::now()),
                        ],
                    )?;
                    if new == 0 {
                        continue; // launched before: never again
                    }
                }
                insert_run(&mut tx, run)?;
                queued.push(run.id.clone());
            }
            let ids: Vec<&str> = queued.iter().map(RunId::as_str).collect();
            tx.execute(
                "UPDATE ticks SET status = $3, run_ids = $4, reason = $5, ended_us = $6
                 WHERE instigator = $1 AND scheduled_us = $2",
                &[
                    &commit.instigator,
                    &scheduled,
                    &commit.status.as_str(),
                    &ids.join(","),
                    &commit.reason,
                    &micros(SystemTime::now()),
                ],
            )?;
            if let Some((name, value)) = commit.cursor {
                set_cursor(&mut tx, name, value)?;
            }
            tx.commit()?;
            Ok(Some(queued))
        })
    }

    /// Marks runs whose process died as crashed (their unfinished assets failed, their claims
    /// released); returns their ids.
    pub(super) fn mark_crashed(&self) -> Result<Vec<String>, StorageError> {
        self.with(|c| {
            let started: Vec<String> = c
                .query(
                    "SELECT id FROM runs WHERE status IN ('starting', 'running', 'started')",
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut crashed = Vec::new();
            for id in started {
                // Its process is alive, or workers still have its steps (a coordinator that
                // detached or died leaves the run to them: the last step ends it).
                if alive(c, &id)? || has_open_steps(c, &id)? {
                    continue;
                }
                let now = micros(SystemTime::now());
                let mut tx = c.transaction()?;
                lock_events(&mut tx)?;
                // Looked at again with the run's row locked: its steps may have been queued
                // (`enqueue_steps` locks the row too) since the look above.
                tx.query_opt("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", &[&id])?;
                if has_open_steps(&mut tx, &id)? {
                    continue;
                }
                // Only if still running: the run may have ended (and let go of its lock)
                // between the SELECT above and now.
                let updated = tx.execute(
                    "UPDATE runs SET status = 'crashed', ended_us = $2
                     WHERE id = $1 AND status IN ('starting', 'running', 'started')",
                    &[&id, &now],
                )?;
                if updated == 0 {
                    continue;
                }
                // Assets that started and never ended died with the process.
                tx.execute(
                    "INSERT INTO events (run_id, asset, kind, time_us, attempt, message)
                     SELECT s.run_id, s.asset, 'failed', $2, s.attempt, 'the run''s process died (crashed) while this asset was running'
                     FROM events s
                     WHERE s.run_id = $1 AND s.kind = 'started'
                       AND NOT EXISTS (SELECT 1 FROM events f WHERE f.run_id = s.run_id AND f.asset = s.asset
                                       AND f.id > s.id AND f.kind IN ('materialized', 'failed', 'retried'))
                     ORDER BY s.id",
                    &[&id, &now],
                )?;
                tx.execute("DELETE FROM asset_claims WHERE run_id = $1", &[&id])?;
                let ended = EventRecord {
                    time: time(now),
                    ..EventRecord::new(
                        RunId::from(id.as_str()),
                        None,
                        EventKind::RunEnded(RunStatus::Crashed),
                    )
                };
                insert_event(&mut tx, &ended)?;
                tx.commit()?;
                crashed.push(id);
            }
            Ok(crashed)
        })
    }

    /// Deletes logs, runs and ticks older than `retention` keeps; returns how many rows went.
    pub(super) fn delete_expired(&self, retention: Retention) -> Result<usize, StorageError> {
        let now = SystemTime::now();
        let cutoff = |age: Duration| micros(now.checked_sub(age).unwrap_or(UNIX_EPOCH));
        self.with(|c| {
            let mut tx = c.transaction()?;
            let mut deleted = tx.execute(
                "DELETE FROM logs WHERE time_us < $1",
                &[&cutoff(retention.logs)],
            )?;
            // Old runs go, except a run holding the latest materialization of some asset or
            // of some partition (staleness reads what those consumed).
            deleted += tx.execute(
                "DELETE FROM runs WHERE started_us < $1
                 AND status NOT IN ('queued', 'starting', 'running', 'started')
                 AND id NOT IN (SELECT e.run_id FROM events e
                                JOIN latest_materialization l ON e.id = l.event_id)
                 AND id NOT IN (SELECT e.run_id FROM events e
                                JOIN partition_status p ON e.id = p.event_id)",
                &[&cutoff(retention.runs)],
            )?;
            // Ticks as old as the runs, except each instigator's latest and unfinished ones.
            deleted += tx.execute(
                "DELETE FROM ticks WHERE started_us < $1 AND status != 'started'
                 AND scheduled_us < (SELECT max(t.scheduled_us) FROM ticks t
                                     WHERE t.instigator = ticks.instigator)",
                &[&cutoff(retention.runs)],
            )?;
            // Freshness changes as old as the runs, but each asset's latest.
            deleted += tx.execute(
                "DELETE FROM freshness_changes WHERE at_us < $1
                 AND id < (SELECT max(f.id) FROM freshness_changes f
                           WHERE f.asset = freshness_changes.asset)",
                &[&cutoff(retention.runs)],
            )?;
            tx.commit()?;
            Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
        })
    }
}

fn set_cursor(c: &mut impl Db, name: &str, value: Option<&str>) -> Result<u64, postgres::Error> {
    match value {
        Some(value) => c.execute(
            "INSERT INTO cursors (name, value, updated_us) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_us = $3",
            &[&name, &value, &micros(SystemTime::now())],
        ),
        None => c.execute("DELETE FROM cursors WHERE name = $1", &[&name]),
    }
}
