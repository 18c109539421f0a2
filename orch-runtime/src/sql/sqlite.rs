//! The SQLite side of [`super::Database`].

use std::path::PathBuf;
use std::time::Duration;

use polars::prelude::DataFrame;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::columns::{Cell, Chunker, Column, Kind, sqlite_kind};
use super::{SqlError, SqlParam};

#[derive(Clone, Debug)]
pub(super) struct Sqlite {
    path: PathBuf,
}

impl rusqlite::ToSql for SqlParam {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            SqlParam::Null => ToSqlOutput::Owned(Value::Null),
            SqlParam::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            SqlParam::Float(f) => ToSqlOutput::Owned(Value::Real(*f)),
            SqlParam::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlParam::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
        })
    }
}

impl Sqlite {
    pub(super) fn new(path: PathBuf) -> Self {
        Sqlite { path }
    }

    pub(super) fn name(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    fn err(&self, e: impl std::fmt::Display) -> SqlError {
        SqlError::Database {
            database: self.name(),
            message: e.to_string(),
        }
    }

    fn open(&self) -> Result<Connection, SqlError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| self.err(e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        Ok(conn)
    }

    pub(super) fn execute(&self, sql: &str, params: &[SqlParam]) -> Result<u64, SqlError> {
        let conn = self.open()?;
        let n = conn
            .execute(sql, rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    pub(super) fn execute_many(
        &self,
        sql: &str,
        rows: &mut dyn Iterator<Item = Vec<SqlParam>>,
    ) -> Result<u64, SqlError> {
        let mut conn = self.open()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut changed = 0u64;
        {
            let mut stmt = tx.prepare(sql).map_err(|e| self.err(e))?;
            for params in rows {
                changed += stmt
                    .execute(rusqlite::params_from_iter(&params))
                    .map_err(|e| self.err(e))? as u64;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        self.open()?.execute_batch(sql).map_err(|e| self.err(e))
    }

    pub(super) fn query_each(
        &self,
        sql: &str,
        params: &[SqlParam],
        rows_per_chunk: usize,
        each: &mut dyn FnMut(DataFrame) -> bool,
    ) -> Result<(), SqlError> {
        let conn = self.open()?;
        let mut stmt = conn.prepare(sql).map_err(|e| self.err(e))?;
        let kinds: Vec<Option<Kind>> = stmt
            .columns()
            .map(|c| c.decl_type().and_then(sqlite_kind))
            .collect();
        let columns: Vec<Column> = stmt
            .columns()
            .zip(&kinds)
            .map(|(c, kind)| Column::new(c.name().to_owned(), *kind))
            .collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        let mut chunks = Chunker::new(columns, rows_per_chunk, each, self.name());
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            for (i, column) in chunks.columns.iter_mut().enumerate() {
                let cell = match row.get_ref(i).map_err(|e| self.err(e))? {
                    ValueRef::Null => Cell::Null,
                    // SQLite stores booleans as 0 and 1; a BOOLEAN column reads as booleans.
                    ValueRef::Integer(v) if kinds[i] == Some(Kind::Bool) => Cell::Bool(v != 0),
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Float(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t)),
                    ValueRef::Blob(_) => {
                        return Err(SqlError::UnsupportedType {
                            database: self.name(),
                            column: row.as_ref().column_name(i).unwrap_or("?").to_owned(),
                            type_name: "BLOB".to_owned(),
                        });
                    }
                };
                column.push(cell);
            }
            if !chunks.end_row()? {
                return Ok(());
            }
        }
        chunks.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_param_kind_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::new(dir.path().join("t.db"));
        db.execute_batch("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BOOLEAN, n TEXT)")
            .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            &[
                SqlParam::Int(7),
                SqlParam::Float(1.5),
                SqlParam::Text("x".to_owned()),
                SqlParam::Bool(true),
                SqlParam::Null,
            ],
        )
        .unwrap();
        let mut got = None;
        db.query_each("SELECT * FROM t", &[], 10, &mut |df| {
            got = Some(df);
            true
        })
        .unwrap();
        let df = got.unwrap();
        assert_eq!(
            format!("{:?}", df.get_row(0).unwrap().0),
            "[Int64(7), Float64(1.5), String(\"x\"), Boolean(true), Null]"
        );
    }
}
