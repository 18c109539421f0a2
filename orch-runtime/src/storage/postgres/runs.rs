//! The PostgreSQL store's operations on runs, events, logs and assets' latest state, and the
//! [`Storage`] implementation (automation's operations are in `automation.rs`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use orch_core::{AssetKey, RunId};
use postgres::types::ToSql;

use super::super::values::{level_str, micros, parse_level, time, timings_json};
use super::db::{Db, Tx};
use super::rows::{
    insert_event, insert_run, limit_param, lock_events, read_check_results, read_events, read_runs,
    run_status, seq_param,
};
use super::steps::has_open_steps;
use super::{Fail, PgResult, PgStorage, alive};
use crate::storage::{
    AssetState, AutomationAssetRecord, AutomationCommit, CancelOutcome, EventKind, EventRecord,
    FreshnessChange, InstigatorState, InstigatorStatus, LeaseHolder, LeaseOutcome, LogPage,
    LogRecord, PartitionStatus, Retention, RunFilter, RunRecord, RunStatus, Storage, StorageError,
    TickCommit, TickRecord, TickStatus,
};

/// The setting that holds the global automation pause.
const PAUSED: &str = "automation.paused";

impl Storage for PgStorage {
    fn begin_run(&self, run: &RunRecord, assets: &[String]) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            // A run queued before is started by exactly one caller (its row is locked).
            let queued = match run_status(&mut tx, run.id.as_str(), true)? {
                None => false,
                Some(status) if status == RunStatus::Queued.as_str() => true,
                Some(status) => {
                    return Err(Fail::Store(StorageError::NotQueued {
                        run_id: run.id.to_string(),
                        status,
                    }));
                }
            };
            let claim = tx.prepare(
                "INSERT INTO asset_claims (asset, run_id) VALUES ($1, $2)
                 ON CONFLICT (asset) DO NOTHING",
            )?;
            let holder =
                tx.prepare("SELECT run_id FROM asset_claims WHERE asset = $1 FOR UPDATE")?;
            let take_over = tx.prepare("UPDATE asset_claims SET run_id = $2 WHERE asset = $1")?;
            for asset in assets {
                if tx.execute(&claim, &[asset, &run.id.as_str()])? == 1 {
                    continue;
                }
                let other: String = tx.query_one(&holder, &[asset])?.get(0);
                if alive(&mut tx, &other)? || has_open_steps(&mut tx, &other)? {
                    // Dropping `tx` rolls back this run's claims.
                    return Err(Fail::Store(StorageError::AssetBusy {
                        asset: asset.clone(),
                        holder: other,
                    }));
                }
                tx.execute(&take_over, &[asset, &run.id.as_str()])?;
            }
            if queued {
                tx.execute(
                    "UPDATE runs SET status = $2, started_us = $3, planned = $4, owner = $5,
                        heartbeat_us = $6
                     WHERE id = $1",
                    &[
                        &run.id.as_str(),
                        &run.status.as_str(),
                        &micros(run.started),
                        &i64::from(run.planned),
                        &run.owner,
                        &run.heartbeat.map(micros),
                    ],
                )?;
            } else {
                insert_run(&mut tx, run)?;
            }
            let started = EventRecord {
                time: run.started,
                message: Some(run.describe()),
                ..EventRecord::new(run.id.clone(), None, EventKind::RunStarted)
            };
            insert_event(&mut tx, &started)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn enqueue_run(&self, run: &RunRecord) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            insert_run(&mut tx, run)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn end_queued_run(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, StorageError> {
        self.end_queued(run_id, status, reason)
    }

    fn append(
        &self,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            if !events.is_empty() {
                lock_events(&mut tx)?;
            }
            append_rows(&mut tx, events, logs)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn end_run_timed(
        &self,
        run_id: &str,
        status: RunStatus,
        ended: SystemTime,
        timings: Option<&crate::events::RunTimings>,
    ) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            let started: Option<i64> = tx
                .query_opt("SELECT started_us FROM runs WHERE id = $1", &[&run_id])?
                .map(|r| r.get(0));
            tx.execute(
                "UPDATE runs SET status = $2, ended_us = $3, timings = coalesce($4, timings)
                 WHERE id = $1",
                &[
                    &run_id,
                    &status.as_str(),
                    &micros(ended),
                    &timings.map(timings_json),
                ],
            )?;
            tx.execute("DELETE FROM asset_claims WHERE run_id = $1", &[&run_id])?;
            let event = EventRecord {
                time: ended,
                duration: started
                    .map(|s| Duration::from_micros(u64::try_from(micros(ended) - s).unwrap_or(0))),
                ..EventRecord::new(RunId::from(run_id), None, EventKind::RunEnded(status))
            };
            insert_event(&mut tx, &event)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn heartbeat(&self, run_id: &str) -> Result<(), StorageError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET heartbeat_us = $2 WHERE id = $1",
                &[&run_id, &micros(SystemTime::now())],
            )?;
            Ok(())
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StorageError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut param = |value: Box<dyn ToSql + Sync + Send>| {
            values.push(value);
            format!("${}", values.len())
        };
        if !filter.status.is_empty() {
            let list: Vec<String> = filter
                .status
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            clauses.push(format!("r.status = ANY({})", param(Box::new(list))));
        }
        if let Some(kind) = &filter.trigger {
            clauses.push(format!("r.trigger = {}", param(Box::new(kind.clone()))));
        }
        if let Some((k, v)) = &filter.tag {
            let k = param(Box::new(k.clone()));
            let v = param(Box::new(v.clone()));
            clauses.push(format!(
                "r.id IN (SELECT run_id FROM run_tags WHERE key = {k} AND value = {v})"
            ));
        }
        if let Some(since) = filter.since {
            clauses.push(format!(
                "r.started_us >= {}",
                param(Box::new(micros(since)))
            ));
        }
        if let Some(before) = filter.before {
            clauses.push(format!(
                "r.started_us < {}",
                param(Box::new(micros(before)))
            ));
        }
        if let Some(cursor) = &filter.cursor {
            // Keyset paging: strictly after the cursor in (started, id) descending order.
            let started = param(Box::new(cursor.started_us()));
            let id = param(Box::new(cursor.id().as_str().to_owned()));
            clauses.push(format!("(r.started_us, r.id) < ({started}, {id})"));
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql.push_str("WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY r.started_us DESC, r.id DESC");
        if filter.limit > 0 {
            let limit = param(Box::new(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.with(|c| {
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
            read_runs(c, &sql, &params)
        })
    }

    fn run(&self, id_or_prefix: &str) -> Result<RunRecord, StorageError> {
        let found = self.with(|c| {
            read_runs(
                c,
                "WHERE r.id >= $1 AND r.id < $1 || '~' ORDER BY r.id LIMIT 2",
                &[&id_or_prefix],
            )
        })?;
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
        self.with(|c| {
            read_events(
                c,
                "WHERE e.run_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
                &[&run_id, &seq_param(after_seq), &limit_param(limit)],
            )
        })
    }

    fn events_since(&self, seq: u64, limit: usize) -> Result<Vec<EventRecord>, StorageError> {
        self.with(|c| {
            read_events(
                c,
                "WHERE e.id > $1 ORDER BY e.id LIMIT $2",
                &[&seq_param(seq), &limit_param(limit)],
            )
        })
    }

    fn latest_seq(&self) -> Result<u64, StorageError> {
        let max: Option<i64> =
            self.with(|c| Ok(c.query_one("SELECT max(id) FROM events", &[])?.get(0)))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()).unwrap_or(0))
    }

    fn logs_page(
        &self,
        run_id: &str,
        page: LogPage,
    ) -> Result<Vec<(u64, LogRecord)>, StorageError> {
        // A page before an id is read newest first (so LIMIT keeps the lines nearest it), then
        // put back in order.
        let (sql, bound, limit, newest_first) = match page {
            LogPage::After { id, limit } => (
                "SELECT id, asset, time_us, level, message FROM logs WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                id,
                limit,
                false,
            ),
            LogPage::Before { id, limit } => (
                "SELECT id, asset, time_us, level, message FROM logs WHERE run_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                id,
                limit,
                true,
            ),
        };
        let bound = seq_param(bound);
        let mut lines: Vec<(u64, LogRecord)> = self.with(|c| {
            Ok(c.query(sql, &[&run_id, &bound, &limit_param(limit)])?
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0) as u64,
                        LogRecord {
                            asset: r.get(1),
                            time: time(r.get(2)),
                            level: parse_level(r.get(3)),
                            message: r.get(4),
                        },
                    )
                })
                .collect())
        })?;
        if newest_first {
            lines.reverse();
        }
        Ok(lines)
    }

    fn request_cancel(&self, id_or_prefix: &str) -> Result<CancelOutcome, StorageError> {
        let run = self.run(id_or_prefix)?;
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
                self.with(|c| {
                    c.execute(
                        "UPDATE runs SET cancel_requested_us = coalesce(cancel_requested_us, $2) WHERE id = $1",
                        &[&id, &micros(SystemTime::now())],
                    )?;
                    Ok(())
                })?;
                Ok(CancelOutcome::Requested)
            }
            status => Ok(CancelOutcome::AlreadyEnded(status)),
        }
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StorageError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT cancel_requested_us IS NOT NULL FROM runs WHERE id = $1",
                &[&run_id],
            )?
            .is_some_and(|r| r.get(0)))
        })
    }

    fn latest_materializations(&self) -> Result<HashMap<String, EventRecord>, StorageError> {
        // Driven from the one-row-per-asset table, so the cost does not grow with the history:
        // this is what `--stale` decides from, on every run.
        let events = self
            .with(|c| read_events(c, "JOIN latest_materialization l ON e.id = l.event_id", &[]))?;
        Ok(events
            .into_iter()
            .filter_map(|e| Some((e.asset.as_ref()?.to_string(), e)))
            .collect())
    }

    fn latest_materializations_of(
        &self,
        assets: &[String],
    ) -> Result<HashMap<String, EventRecord>, StorageError> {
        let events = self.with(|c| {
            read_events(
                c,
                "JOIN latest_materialization l ON e.id = l.event_id WHERE l.asset = ANY($1)",
                &[&assets],
            )
        })?;
        Ok(events
            .into_iter()
            .filter_map(|e| Some((e.asset.as_ref()?.to_string(), e)))
            .collect())
    }

    fn materializations(
        &self,
        asset: &str,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        self.with(|c| {
            read_events(
                c,
                "WHERE e.asset = $1 AND e.kind = 'materialized' ORDER BY e.id DESC LIMIT $2",
                &[&asset, &limit_param(limit)],
            )
        })
    }

    fn asset_states(&self) -> Result<HashMap<String, AssetState>, StorageError> {
        self.with(|c| {
            let mut states: HashMap<String, AssetState> = HashMap::new();
            for row in c.query(
                "SELECT l.asset, e.time_us
                 FROM latest_materialization l JOIN events e ON e.id = l.event_id",
                &[],
            )? {
                states.entry(row.get(0)).or_default().last_materialized = Some(time(row.get(1)));
            }
            // The latest final event per asset (the largest id wins).
            for row in c.query(
                "SELECT DISTINCT ON (asset) asset, kind FROM events
                 WHERE kind IN ('materialized', 'failed', 'skipped') AND asset <> ''
                 ORDER BY asset, id DESC",
                &[],
            )? {
                states.entry(row.get(0)).or_default().last_status = EventKind::parse(row.get(1));
            }
            Ok(states)
        })
    }

    fn add_dynamic_partitions(&self, name: &str, keys: &[String]) -> Result<usize, StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            // One writer per name at a time, so `seq` keeps the order keys were added in.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('orch:dynamic:' || current_schema() || ':' || $1, 0))",
                &[&name],
            )?;
            let next: i64 = tx
                .query_one(
                    "SELECT coalesce(max(seq), 0) + 1 FROM dynamic_partitions WHERE name = $1",
                    &[&name],
                )?
                .get(0);
            let insert = tx.prepare(
                "INSERT INTO dynamic_partitions (name, key, added_us, seq) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name, key) DO NOTHING",
            )?;
            let mut added = 0u64;
            for key in keys {
                added += tx.execute(
                    &insert,
                    &[&name, key, &micros(SystemTime::now()), &(next + added as i64)],
                )?;
            }
            tx.commit()?;
            Ok(added as usize)
        })
    }

    fn dynamic_partitions(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT key FROM dynamic_partitions WHERE name = $1 ORDER BY seq",
                &[&name],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn partition_statuses(&self, asset: &str) -> Result<Vec<PartitionStatus>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT partition, status, run_id, time_us, data_version FROM partition_status WHERE asset = $1",
                &[&asset],
            )?
            .iter()
            .map(|r| PartitionStatus {
                partition: r.get(0),
                kind: EventKind::parse(r.get(1)).unwrap_or(EventKind::Failed),
                run_id: r.get(2),
                time: time(r.get(3)),
                data_version: r.get(4),
            })
            .collect())
        })
    }

    fn partition_materializations(
        &self,
        asset: &str,
    ) -> Result<HashMap<String, EventRecord>, StorageError> {
        let events = self.with(|c| {
            read_events(
                c,
                "WHERE e.id IN (SELECT event_id FROM partition_status
                                WHERE asset = $1 AND status = 'materialized')",
                &[&asset],
            )
        })?;
        Ok(events
            .into_iter()
            .filter_map(|e| Some((e.partition.clone()?, e)))
            .collect())
    }

    fn instigator_states(&self) -> Result<HashMap<String, InstigatorState>, StorageError> {
        self.read_instigator_states()
    }

    fn set_instigator_status(
        &self,
        name: &str,
        kind: &str,
        status: InstigatorStatus,
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
    ) -> Result<(TickRecord, bool), StorageError> {
        self.insert_tick(instigator, scheduled)
    }

    fn end_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
        status: TickStatus,
        run_ids: &[RunId],
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        self.update_tick(instigator, scheduled, status, run_ids, reason)
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
        self.with(|c| read_check_results(c, asset, latest, limit))
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

    fn ticks(&self, instigator: &str, limit: usize) -> Result<Vec<TickRecord>, StorageError> {
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

    fn hold_alive(&self, id: &str) -> Result<crate::storage::AliveHold, StorageError> {
        Ok(Box::new(self.hold(id)?))
    }

    fn is_alive(&self, id: &str) -> Result<bool, StorageError> {
        self.with(|c| alive(c, id))
    }

    fn step_queue(&self) -> Option<&dyn crate::storage::StepQueue> {
        Some(self)
    }
}

/// Appends events (with what they update: each asset's latest materialization, each
/// partition's last outcome) and log lines in `tx`, which holds the events lock
/// ([`lock_events`]) if there are events.
pub(super) fn append_rows(
    tx: &mut Tx<'_>,
    events: &[EventRecord],
    logs: &[(String, LogRecord)],
) -> PgResult<()> {
    let set_latest = tx.prepare(
        "INSERT INTO latest_materialization (asset, event_id) VALUES ($1, $2)
             ON CONFLICT (asset) DO UPDATE SET event_id = excluded.event_id",
    )?;
    let set_partition = tx.prepare(
            "INSERT INTO partition_status (asset, partition, status, run_id, time_us, data_version, event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (asset, partition) DO UPDATE SET status = excluded.status,
               run_id = excluded.run_id, time_us = excluded.time_us,
               data_version = excluded.data_version, event_id = excluded.event_id",
        )?;
    for e in events {
        let id = insert_event(tx, e)?;
        let asset = e.asset.as_ref().map(AssetKey::to_string);
        if e.kind == EventKind::Materialized {
            tx.execute(&set_latest, &[&asset, &id])?;
        }
        if let Some(partition) = &e.partition
            && matches!(e.kind, EventKind::Materialized | EventKind::Failed)
        {
            tx.execute(
                &set_partition,
                &[
                    &asset,
                    partition,
                    &e.kind.as_str(),
                    &e.run_id.as_str(),
                    &micros(e.time),
                    &e.data_version,
                    &id,
                ],
            )?;
        }
    }
    if !logs.is_empty() {
        let mut runs = Vec::with_capacity(logs.len());
        let mut assets = Vec::with_capacity(logs.len());
        let mut times = Vec::with_capacity(logs.len());
        let mut levels = Vec::with_capacity(logs.len());
        let mut messages = Vec::with_capacity(logs.len());
        for (run_id, line) in logs {
            runs.push(run_id.as_str());
            assets.push(line.asset.as_str());
            times.push(micros(line.time));
            levels.push(level_str(line.level));
            messages.push(line.message.as_str());
        }
        tx.execute(
            "INSERT INTO logs (run_id, asset, time_us, level, message)
                 SELECT r, a, t, l, m
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                    WITH ORDINALITY AS x (r, a, t, l, m, n)
                 ORDER BY n",
            &[&runs, &assets, &times, &levels, &messages],
        )?;
    }
    Ok(())
}
