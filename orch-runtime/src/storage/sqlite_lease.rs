//! The SQLite store's leases: one holder at a time (the daemon), renewed by a heartbeat,
//! taken over by the next holder once it lapses. Every change is one IMMEDIATE transaction,
//! so two processes asking at once take turns and exactly one wins.

use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, params};

use super::sqlite::SqliteStorage;
use super::sqlite_rows::{micros, time};
use super::{LeaseHolder, LeaseOutcome, StorageError};

fn expiry(now: SystemTime, ttl: Duration) -> i64 {
    micros(now).saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

fn holder_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseHolder> {
    Ok(LeaseHolder {
        id: r.get(0)?,
        description: r.get(1)?,
        acquired: time(r.get(2)?),
        heartbeat: time(r.get(3)?),
        expires: time(r.get(4)?),
    })
}

const HOLDER: &str =
    "SELECT holder, description, acquired_us, heartbeat_us, expires_us FROM leases WHERE name = ?1";

impl SqliteStorage {
    pub(super) fn take_lease(
        &self,
        name: &str,
        holder: &str,
        description: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StorageError> {
        let now = SystemTime::now();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let current = tx
            .query_row(HOLDER, params![name], holder_row)
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(current) = current
            && current.id != holder
            && current.expires > now
        {
            return Ok(LeaseOutcome::Held(current));
        }
        tx.execute(
            "INSERT INTO leases (name, holder, description, acquired_us, heartbeat_us, expires_us)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET holder = ?2, description = ?3, acquired_us = ?4,
                heartbeat_us = ?4, expires_us = ?5",
            params![name, holder, description, micros(now), expiry(now, ttl)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(LeaseOutcome::Acquired)
    }

    pub(super) fn extend_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StorageError> {
        let now = SystemTime::now();
        let updated = self
            .conn()
            .execute(
                "UPDATE leases SET heartbeat_us = ?3, expires_us = ?4 WHERE name = ?1 AND holder = ?2",
                params![name, holder, micros(now), expiry(now, ttl)],
            )
            .map_err(|e| self.err(e))?;
        Ok(updated == 1)
    }

    pub(super) fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.conn()
            .execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub(super) fn read_lease(&self, name: &str) -> Result<Option<LeaseHolder>, StorageError> {
        self.conn()
            .query_row(HOLDER, params![name], holder_row)
            .optional()
            .map_err(|e| self.err(e))
    }
}
