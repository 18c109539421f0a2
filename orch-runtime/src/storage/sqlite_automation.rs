//! The SQLite store's automation state: each schedule's (and, next, sensor's) status as
//! someone set it, and the global pause. What `schedule start|stop` and `automation
//! pause|resume` write, and what the daemon reads.

use std::collections::HashMap;
use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::sqlite::SqliteStorage;
use super::sqlite_rows::{micros, time};
use super::{InstigatorState, InstigatorStatus, StorageError};

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
}
