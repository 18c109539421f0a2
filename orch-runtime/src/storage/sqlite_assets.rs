//! The SQLite store's reads of assets' latest state: each asset's latest materialization
//! (with its consumed input versions) and its last outcome, for staleness, `list` and
//! automation; each partition's last outcome and latest materialization; dynamic partitions.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use orch_core::RunId;
use rusqlite::params;

use super::sqlite::SqliteStorage;
use super::sqlite_rows::{micros, read_events, time};
use super::{AssetState, EventKind, EventRecord, PartitionStatus, StorageError};

impl SqliteStorage {
    pub(super) fn read_latest_materializations(
        &self,
    ) -> Result<HashMap<String, EventRecord>, StorageError> {
        // Two queries in all (not two per asset), driven from the small `latest_materialization`
        // table (CROSS JOIN fixes the order), so the cost does not grow with the history: this
        // is what `--stale` decides from, on every run.
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT e.id, e.run_id, e.asset, e.time_us, e.duration_us, e.code_version, e.data_version, e.partition
                 FROM latest_materialization l CROSS JOIN events e ON e.id = l.event_id",
            )
            .map_err(|e| self.err(e))?;
        let mut by_id: HashMap<i64, EventRecord> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    EventRecord {
                        seq: u64::try_from(r.get::<_, i64>(0)?).ok(),
                        asset: r.get::<_, String>(2)?.parse().ok(),
                        partition: r.get(7)?,
                        time: time(r.get(3)?),
                        duration: r
                            .get::<_, Option<i64>>(4)?
                            .map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0))),
                        code_version: r.get(5)?,
                        data_version: r.get(6)?,
                        ..EventRecord::new(
                            RunId::from(r.get::<_, String>(1)?),
                            None,
                            EventKind::Materialized,
                        )
                    },
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let mut stmt = conn
            .prepare(
                "SELECT i.event_id, i.upstream, i.data_version
                 FROM latest_materialization l CROSS JOIN event_inputs i ON i.event_id = l.event_id
                 ORDER BY i.rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (id, upstream, version) = row.map_err(|e| self.err(e))?;
            if let Some(event) = by_id.get_mut(&id) {
                event.inputs.push((upstream, version));
            }
        }
        Ok(by_id
            .into_values()
            .filter_map(|e| Some((e.asset.as_ref()?.to_string(), e)))
            .collect())
    }

    pub(super) fn read_asset_states(&self) -> Result<HashMap<String, AssetState>, StorageError> {
        let conn = self.conn();
        let mut states: HashMap<String, AssetState> = HashMap::new();
        // From the one-row-per-asset table, not a scan of the whole history.
        let mut stmt = conn
            .prepare(
                "SELECT l.asset, e.time_us
                 FROM latest_materialization l CROSS JOIN events e ON e.id = l.event_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (asset, t) = row.map_err(|e| self.err(e))?;
            states.entry(asset).or_default().last_materialized = Some(time(t));
        }
        // The latest final event per asset (the largest id wins).
        let mut stmt = conn
            .prepare(
                "SELECT e.asset, e.kind FROM events e
                 JOIN (SELECT asset, max(id) AS id FROM events
                       WHERE kind IN ('materialized', 'failed', 'skipped') GROUP BY asset) last
                 ON e.id = last.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (asset, kind) = row.map_err(|e| self.err(e))?;
            states.entry(asset).or_default().last_status = EventKind::parse(&kind);
        }
        Ok(states)
    }

    pub(super) fn write_dynamic_partitions(
        &self,
        name: &str,
        keys: &[String],
    ) -> Result<usize, StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let next: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM dynamic_partitions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO dynamic_partitions (name, key, added_us, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name, key) DO NOTHING",
                )
                .map_err(|e| self.err(e))?;
            for key in keys {
                added += insert
                    .execute(params![
                        name,
                        key,
                        micros(SystemTime::now()),
                        next + added as i64
                    ])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(added)
    }

    pub(super) fn read_dynamic_partitions(&self, name: &str) -> Result<Vec<String>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT key FROM dynamic_partitions WHERE name = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![name], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub(super) fn read_partition_statuses(
        &self,
        asset: &str,
    ) -> Result<Vec<PartitionStatus>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT partition, status, run_id, time_us, data_version FROM partition_status WHERE asset = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![asset], |r| {
                Ok(PartitionStatus {
                    partition: r.get(0)?,
                    kind: EventKind::parse(&r.get::<_, String>(1)?).unwrap_or(EventKind::Failed),
                    run_id: r.get(2)?,
                    time: time(r.get(3)?),
                    data_version: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub(super) fn read_partition_materializations(
        &self,
        asset: &str,
    ) -> Result<HashMap<String, EventRecord>, StorageError> {
        let conn = self.conn();
        let events = read_events(
            &conn,
            "WHERE e.id IN (SELECT event_id FROM partition_status
                            WHERE asset = ?1 AND status = 'materialized')",
            params![asset],
        )
        .map_err(|e| self.err(e))?;
        Ok(events
            .into_iter()
            .filter_map(|e| Some((e.partition.clone()?, e)))
            .collect())
    }
}
