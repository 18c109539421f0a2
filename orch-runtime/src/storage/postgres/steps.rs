//! The PostgreSQL store's step queue (`storage/steps.rs` says the protocol): rows of `steps`
//! claimed with `FOR UPDATE SKIP LOCKED`, leases on the server's clock (workers' clocks may
//! disagree), the delivery count as the fencing token, and `NOTIFY orch_steps` when steps
//! become ready.
//!
//! Lock order: a transaction that takes the events lock (`rows::lock_events`) takes it before
//! any step's row. A claim takes no events lock at all: its `FOR UPDATE` may keep locks on
//! rows it looked at and skipped (a row claimed by someone else since its snapshot stays
//! locked after the recheck rejects it), and a claim waiting for the events lock while
//! holding those deadlocked with the completion of that row's step (found by the workers
//! benchmark).

use std::time::{Duration, SystemTime};

use orch_core::{AssetKey, RunId};

use super::super::values::{micros, time};
use super::db::{Conn, Db, Tx};
use super::rows::{insert_event, lock_events};
use super::runs::append_rows;
use super::{Fail, PgResult, PgStorage};
use crate::storage::{
    ClaimedStep, CodeVersions, Delivery, EventKind, EventRecord, LogRecord, RunStatus, StepEnd,
    StepQueue, StepRecord, StepSpec, StorageError, WaitingStep,
};

/// The server's clock, in microseconds since the epoch.
const NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// The channel that says steps became ready.
const CHANNEL: &str = "orch_steps";

fn key(step: &str) -> Option<AssetKey> {
    step.parse().ok()
}

fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl StepQueue for PgStorage {
    fn enqueue_steps(
        &self,
        run_id: &str,
        steps: &[StepSpec],
        delivery: Delivery,
    ) -> Result<(), StorageError> {
        let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
        let versions: Vec<&str> = steps.iter().map(|s| s.code_version.as_str()).collect();
        let pending: Vec<i64> = steps.iter().map(|s| s.upstream.len() as i64).collect();
        let queues: Vec<&str> = steps.iter().map(|s| s.queue.as_str()).collect();
        let (mut ups, mut downs) = (Vec::new(), Vec::new());
        for s in steps {
            for up in &s.upstream {
                ups.push(up.as_str());
                downs.push(s.step.as_str());
            }
        }
        self.with(|c| {
            let mut tx = c.transaction()?;
            // Only a run still running gets steps (one that was found crashed meanwhile, its
            // claims released, does not); its row stays locked until they are in.
            let status: Option<String> = tx
                .query_opt(
                    "SELECT status FROM runs WHERE id = $1 FOR UPDATE",
                    &[&run_id],
                )?
                .map(|r| r.get(0));
            if !matches!(status.as_deref(), Some("starting" | "running")) {
                return Err(Fail::Store(StorageError::NotQueued {
                    run_id: run_id.to_owned(),
                    status: status.unwrap_or_else(|| "unknown".to_owned()),
                }));
            }
            tx.execute(
                &format!(
                    "INSERT INTO steps (run_id, step, code_version, queue, state, pending,
                        max_deliveries, lease_us, ready_us)
                     SELECT $1, s, v, q, CASE WHEN p = 0 THEN 'ready' ELSE 'waiting' END, p, $5, $6,
                        CASE WHEN p = 0 THEN {NOW} END
                     FROM unnest($2::text[], $3::text[], $4::bigint[], $7::text[])
                        WITH ORDINALITY AS t (s, v, p, q, n)
                     ORDER BY n"
                ),
                &[
                    &run_id,
                    &names,
                    &versions,
                    &pending,
                    &i64::from(delivery.max_deliveries.max(1)),
                    &micros_of(delivery.lease),
                    &queues,
                ],
            )?;
            tx.execute(
                "INSERT INTO step_edges (run_id, upstream, downstream)
                 SELECT $1, u, d FROM unnest($2::text[], $3::text[]) AS t (u, d)",
                &[&run_id, &ups, &downs],
            )?;
            tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn claim_step(
        &self,
        worker: &str,
        build: &CodeVersions,
        queues: &[String],
    ) -> Result<Option<ClaimedStep>, StorageError> {
        let registered = self
            .builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(build.id());
        if !registered {
            // The build's versions, once per build and process: claims then look a step's
            // version up by index instead of receiving every version each time.
            let (steps, codes): (Vec<&str>, Vec<&str>) = build
                .versions()
                .iter()
                .map(|(s, v)| (s.as_str(), v.as_str()))
                .unzip();
            self.with(|c| {
                c.execute(
                    "INSERT INTO builds (build, step, code_version)
                     SELECT $1, s, v FROM unnest($2::text[], $3::text[]) AS t (s, v)
                     ON CONFLICT DO NOTHING",
                    &[&build.id(), &steps, &codes],
                )?;
                Ok(())
            })?;
            self.builds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(build.id().to_owned());
        }
        self.with(|c| {
            // One statement, committed at once: the claim waits for nothing.
            let Some(row) = c.query_opt(
                &format!(
                    "UPDATE steps SET state = 'running', deliveries = deliveries + 1,
                        claimed_us = {NOW}, lease_until_us = {NOW} + lease_us, worker = $2
                     WHERE (run_id, step) = (
                        SELECT run_id, step FROM steps s
                        WHERE (state = 'ready'
                               OR (state = 'running' AND lease_until_us < {NOW}
                                   AND deliveries < max_deliveries))
                          AND queue = ANY($3)
                          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id
                                          AND r.cancel_requested_us IS NOT NULL)
                          AND EXISTS (SELECT 1 FROM builds b WHERE b.build = $1
                                      AND b.step = s.step AND b.code_version = s.code_version)
                        ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING deliveries, coalesce(ready_us, claimed_us), claimed_us, lease_us,
                        code_version, run_id, step, max_deliveries"
                ),
                &[&build.id(), &worker, &queues],
            )?
            else {
                return Ok(None);
            };
            let (run_id, step): (String, String) = (row.get(5), row.get(6));
            let attempt = u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX);
            let claimed = ClaimedStep {
                run_id: RunId::from(run_id.as_str()),
                step: step.clone(),
                attempt,
                worker: worker.to_owned(),
                ready: time(row.get(1)),
                claimed: time(row.get(2)),
                lease: Duration::from_micros(u64::try_from(row.get::<_, i64>(3)).unwrap_or(0)),
                max_deliveries: u32::try_from(row.get::<_, i64>(7)).unwrap_or(1),
            };
            let code_version: String = row.get(4);
            // The start is recorded after the claim commits, not in its transaction: a
            // `FOR UPDATE` may keep rows it looked at and skipped locked until the claim
            // ends, so a claim that then waited for the events lock could deadlock with a
            // completion (which takes that lock first, then its step's row).
            let started = EventRecord {
                attempt: Some(attempt),
                time: claimed.claimed,
                code_version: Some(code_version),
                message: Some(format!("on worker {worker}")),
                ..EventRecord::new(claimed.run_id.clone(), key(&step), EventKind::Started)
            };
            // The step is this worker's now: a start event that cannot be written (the
            // connection broke) is not a reason to leave it unrun until its lease lapses.
            if let Err(e) = append_rows_now(c, &started) {
                tracing::warn!(
                    "run {}: could not record the start of step `{step}`: {}",
                    claimed.run_id,
                    self.fail(e)
                );
            }
            Ok(Some(claimed))
        })
    }

    fn renew_step(&self, step: &ClaimedStep) -> Result<bool, StorageError> {
        self.with(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE steps SET lease_until_us = {NOW} + lease_us
                     WHERE run_id = $1 AND step = $2 AND deliveries = $3 AND state = 'running'"
                ),
                &[&step.run_id.as_str(), &step.step, &i64::from(step.attempt)],
            )? == 1)
        })
    }

    fn complete_step(
        &self,
        step: &ClaimedStep,
        end: StepEnd,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<bool, StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            let run_id = step.run_id.as_str();
            // The fencing token: only the delivery that holds the step ends it.
            let held = tx.execute(
                &format!(
                    "UPDATE steps SET state = $4, lease_until_us = NULL, ended_us = {NOW}
                     WHERE run_id = $1 AND step = $2 AND deliveries = $3 AND state = 'running'"
                ),
                &[&run_id, &step.step, &i64::from(step.attempt), &end.as_str()],
            )?;
            if held == 0 {
                return Ok(false);
            }
            append_rows(&mut tx, events, logs)?;
            match end {
                StepEnd::Succeeded => release_children(&mut tx, run_id, &step.step)?,
                StepEnd::Failed => skip_downstream(&mut tx, run_id, &step.step)?,
                StepEnd::Canceled => cancel_open(&mut tx, run_id)?,
            }
            end_run_if_done(&mut tx, run_id)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn release_step(&self, step: &ClaimedStep, why: &str) -> Result<bool, StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            let run_id = step.run_id.as_str();
            // Claimable again once its lease lapses, set to the backoff: a claim takes a
            // running step whose lease passed and that has deliveries left.
            let backoff = release_backoff(step);
            let held = tx.execute(
                &format!(
                    "UPDATE steps SET lease_until_us = {NOW} + $4, worker = NULL
                     WHERE run_id = $1 AND step = $2 AND deliveries = $3 AND state = 'running'"
                ),
                &[
                    &run_id,
                    &step.step,
                    &i64::from(step.attempt),
                    &i64::try_from(backoff.as_micros()).unwrap_or(i64::MAX),
                ],
            )?;
            if held == 0 {
                return Ok(false);
            }
            insert_event(
                &mut tx,
                &EventRecord {
                    attempt: Some(step.attempt),
                    message: Some(format!(
                        "given back to the queue by worker {} (delivery {} of {}), delivered again in {}: {why}",
                        step.worker,
                        step.attempt,
                        step.max_deliveries,
                        humantime::format_duration(backoff)
                    )),
                    ..EventRecord::new(step.run_id.clone(), key(&step.step), EventKind::Retried)
                },
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn sweep(&self) -> Result<usize, StorageError> {
        self.with(|c| {
            // Most sweeps find nothing: look before taking the events lock.
            let any: bool = c
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM steps WHERE state = 'running'
                            AND lease_until_us < {NOW} AND deliveries >= max_deliveries)"
                    ),
                    &[],
                )?
                .get(0);
            if !any {
                return Ok(0);
            }
            let mut tx = c.transaction()?;
            // The events lock before any row's, as everywhere (see `claim_step`).
            lock_events(&mut tx)?;
            let lost = tx.query(
                &format!(
                    "UPDATE steps SET state = 'failed', lease_until_us = NULL, ended_us = {NOW}
                     WHERE state = 'running' AND lease_until_us < {NOW}
                       AND deliveries >= max_deliveries
                     RETURNING run_id, step, deliveries, worker, code_version"
                ),
                &[],
            )?;
            if lost.is_empty() {
                return Ok(0);
            }
            for row in &lost {
                let (run_id, step): (String, String) = (row.get(0), row.get(1));
                let deliveries: i64 = row.get(2);
                let worker: Option<String> = row.get(3);
                insert_event(
                    &mut tx,
                    &EventRecord {
                        attempt: u32::try_from(deliveries).ok(),
                        code_version: Some(row.get(4)),
                        message: Some(format!(
                            "worker lost: the step's lease expired on each of its {deliveries} deliveries (the last on worker {}); see that worker's log, or raise [workers] lease if the step blocks for longer than its heartbeat",
                            worker.as_deref().unwrap_or("unknown")
                        )),
                        ..EventRecord::new(RunId::from(run_id.as_str()), key(&step), EventKind::Failed)
                    },
                )?;
                skip_downstream(&mut tx, &run_id, &step)?;
                end_run_if_done(&mut tx, &run_id)?;
            }
            tx.commit()?;
            Ok(lost.len())
        })
    }

    fn cancel_steps(&self, run_id: &str) -> Result<(), StorageError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            lock_events(&mut tx)?;
            cancel_open(&mut tx, run_id)?;
            end_run_if_done(&mut tx, run_id)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn waiting_steps(
        &self,
        run_id: &str,
        older_than: Duration,
    ) -> Result<Vec<WaitingStep>, StorageError> {
        self.with(|c| {
            Ok(c.query(
                &format!(
                    "SELECT step, code_version, {NOW} - ready_us FROM steps
                     WHERE run_id = $1 AND state = 'ready' AND ready_us < {NOW} - $2
                     ORDER BY seq"
                ),
                &[&run_id, &micros_of(older_than)],
            )?
            .iter()
            .map(|r| WaitingStep {
                step: r.get(0),
                code_version: r.get(1),
                waiting: Duration::from_micros(u64::try_from(r.get::<_, i64>(2)).unwrap_or(0)),
            })
            .collect())
        })
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StorageError> {
        let at = |us: Option<i64>| us.map(time);
        self.with(|c| {
            Ok(c.query(
                "SELECT step, state, deliveries, worker, ready_us, claimed_us, ended_us
                 FROM steps WHERE run_id = $1 ORDER BY seq",
                &[&run_id],
            )?
            .iter()
            .map(|r| StepRecord {
                step: r.get(0),
                state: r.get(1),
                deliveries: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                worker: r.get(3),
                ready: at(r.get(4)),
                claimed: at(r.get(5)),
                ended: at(r.get(6)),
            })
            .collect())
        })
    }

    fn wait_for_steps(&self, timeout: Duration) -> Result<(), StorageError> {
        self.listen(CHANNEL, timeout)
    }
}

/// Appends one event in a transaction of its own.
fn append_rows_now(c: &mut Conn<'_>, event: &EventRecord) -> PgResult<()> {
    let mut tx = c.transaction()?;
    lock_events(&mut tx)?;
    append_rows(&mut tx, std::slice::from_ref(event), &[])?;
    tx.commit()?;
    Ok(())
}

/// Counts `step` done for its children; those with nothing left to wait for become ready.
fn release_children(tx: &mut Tx<'_>, run_id: &str, step: &str) -> PgResult<()> {
    let ready = tx.execute(
        &format!(
            "UPDATE steps s SET pending = s.pending - 1,
                state = CASE WHEN s.pending = 1 THEN 'ready' ELSE s.state END,
                ready_us = CASE WHEN s.pending = 1 THEN {NOW} ELSE s.ready_us END
             FROM step_edges e
             WHERE e.run_id = $1 AND e.upstream = $2
               AND s.run_id = e.run_id AND s.step = e.downstream AND s.state = 'waiting'"
        ),
        &[&run_id, &step],
    )?;
    if ready > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
    }
    Ok(())
}

/// Skips every step downstream of `failed` that has not started, each with its event.
fn skip_downstream(tx: &mut Tx<'_>, run_id: &str, failed: &str) -> PgResult<()> {
    let skipped = tx.query(
        &format!(
            "WITH RECURSIVE down (step) AS (
            SELECT downstream FROM step_edges WHERE run_id = $1 AND upstream = $2
            UNION
            SELECT e.downstream FROM step_edges e JOIN down d ON e.upstream = d.step
            WHERE e.run_id = $1)
         UPDATE steps SET state = 'skipped', ended_us = {NOW}
         WHERE run_id = $1 AND state IN ('waiting', 'ready') AND step IN (SELECT step FROM down)
         RETURNING step, seq"
        ),
        &[&run_id, &failed],
    )?;
    let mut skipped: Vec<(i64, String)> = skipped.iter().map(|r| (r.get(1), r.get(0))).collect();
    skipped.sort();
    let because = key(failed);
    for (_, step) in skipped {
        insert_event(
            tx,
            &EventRecord {
                message: because
                    .as_ref()
                    .map(|b| crate::storage::skip_reason(b, None)),
                ..EventRecord::new(RunId::from(run_id), key(&step), EventKind::Skipped)
            },
        )?;
    }
    Ok(())
}

/// Cancels the steps of `run_id` that have not started, each with its event.
fn cancel_open(tx: &mut Tx<'_>, run_id: &str) -> PgResult<()> {
    let canceled = tx.query(
        &format!(
            "UPDATE steps SET state = 'canceled', ended_us = {NOW}
             WHERE run_id = $1 AND (state IN ('waiting', 'ready')
                OR (state = 'running' AND lease_until_us < {NOW}))
             RETURNING step, seq"
        ),
        &[&run_id],
    )?;
    let mut canceled: Vec<(i64, String)> = canceled.iter().map(|r| (r.get(1), r.get(0))).collect();
    canceled.sort();
    for (_, step) in canceled {
        insert_event(
            tx,
            &EventRecord {
                message: Some("the run was canceled".to_owned()),
                ..EventRecord::new(RunId::from(run_id), key(&step), EventKind::Canceled)
            },
        )?;
    }
    Ok(())
}

/// Ends run `run_id` if none of its steps is left to run: succeeded if all succeeded,
/// canceled if any was canceled, failed otherwise; its claims are released.
fn end_run_if_done(tx: &mut Tx<'_>, run_id: &str) -> PgResult<()> {
    let row = tx.query_one(
        "SELECT count(*) FILTER (WHERE state IN ('waiting', 'ready', 'running')),
            count(*) FILTER (WHERE state IN ('failed', 'skipped')),
            count(*) FILTER (WHERE state = 'canceled')
         FROM steps WHERE run_id = $1",
        &[&run_id],
    )?;
    let (open, failed, canceled): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if open > 0 {
        return Ok(());
    }
    let status = if canceled > 0 {
        RunStatus::Canceled
    } else if failed > 0 {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let ended = SystemTime::now();
    let Some(started) = tx.query_opt(
        "UPDATE runs SET status = $2, ended_us = $3
         WHERE id = $1 AND status IN ('starting', 'running')
         RETURNING started_us",
        &[&run_id, &status.as_str(), &micros(ended)],
    )?
    else {
        return Ok(()); // ended already
    };
    let started: i64 = started.get(0);
    tx.execute("DELETE FROM asset_claims WHERE run_id = $1", &[&run_id])?;
    insert_event(
        tx,
        &EventRecord {
            time: ended,
            duration: Some(Duration::from_micros(
                u64::try_from(micros(ended) - started).unwrap_or(0),
            )),
            ..EventRecord::new(RunId::from(run_id), None, EventKind::RunEnded(status))
        },
    )?;
    Ok(())
}

/// Whether run `run_id` has steps a worker may still run: such a run is alive in the queue
/// even if its coordinator is gone (detached, or killed).
pub(super) fn has_open_steps(c: &mut impl Db, run_id: &str) -> PgResult<bool> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $1
                        AND state IN ('waiting', 'ready', 'running'))",
        &[&run_id],
    )?
    .get(0))
}

/// How long a step given back waits before its next delivery: a second, doubling with each
/// delivery, at most its lease (a service that did not answer may need a moment).
fn release_backoff(step: &ClaimedStep) -> Duration {
    let doubling = Duration::from_secs(1) * 2u32.saturating_pow(step.attempt.saturating_sub(1));
    doubling.min(step.lease)
}
