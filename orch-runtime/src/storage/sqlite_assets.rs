//! The SQLite store's reads of assets' latest state: each asset's latest materialization
//! (with its consumed input versions) and its last outcome, for staleness, `list` and
//! automation.

use std::collections::HashMap;
use std::time::Duration;

use orch_core::RunId;

use super::sqlite::SqliteStorage;
use super::sqlite_rows::time;
use super::{AssetState, EventKind, EventRecord, StorageError};

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
}
