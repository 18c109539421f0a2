//! The PostgreSQL side of [`super::Database`]: a small pool of sync clients; `?` placeholders
//! become `$1`, `$2`...; parameters adapt to the types the server infers for them (so
//! `order_date = ?` with `"2024-01-05"` binds a DATE), and results are read in binary.

use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use polars::prelude::DataFrame;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls};

use super::columns::{Cell, Chunker, Column, Kind};
use super::{SqlError, SqlParam};

type BoxErr = Box<dyn Error + Sync + Send>;

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 10_957;

pub(super) struct Postgres {
    config: Config,
    name: String,
    /// Idle clients, reused by later queries.
    idle: Arc<Mutex<Vec<Client>>>,
}

impl Postgres {
    pub(super) fn new(url: &str) -> Result<Self, SqlError> {
        let config: Config = url.parse().map_err(|e| SqlError::Database {
            database: format!("postgres {url}"),
            message: format!("not a valid connection URL: {e}"),
        })?;
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".to_owned());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or("postgres");
        Ok(Postgres {
            name: format!("postgres {host}:{port}/{db}"),
            config,
            idle: Arc::default(),
        })
    }

    /// Another handle on the same server for a background reader (sharing the idle pool).
    pub(super) fn detached(&self) -> Result<Self, SqlError> {
        Ok(Postgres {
            config: self.config.clone(),
            name: self.name.clone(),
            idle: Arc::clone(&self.idle),
        })
    }

    pub(super) fn name(&self) -> String {
        self.name.clone()
    }

    /// The server's own words for a server error (`postgres::Error` prints only "db error").
    fn db_err(&self, e: postgres::Error) -> SqlError {
        let Some(db) = e.as_db_error() else {
            // "error serializing parameter 0" alone does not say why: add the causes.
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            return SqlError::Database {
                database: self.name(),
                message,
            };
        };
        let mut message = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; hint: {hint}"));
        }
        SqlError::Database {
            database: self.name(),
            message,
        }
    }

    /// Runs `f` with a client from the pool (or a new connection), and returns the client to
    /// the pool unless the connection broke.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.config.connect(NoTls).map_err(|e| self.db_err(e))?,
        };
        let out = f(&mut client);
        if !client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(client);
        }
        out
    }

    pub(super) fn execute(&self, sql: &str, params: &[SqlParam]) -> Result<u64, SqlError> {
        let sql = numbered(sql);
        self.with_client(|c| {
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            c.execute(sql.as_str(), &refs).map_err(|e| self.db_err(e))
        })
    }

    pub(super) fn execute_many(
        &self,
        sql: &str,
        rows: &mut dyn Iterator<Item = Vec<SqlParam>>,
    ) -> Result<u64, SqlError> {
        let sql = numbered(sql);
        self.with_client(|c| {
            let mut tx = c.transaction().map_err(|e| self.db_err(e))?;
            let stmt = tx.prepare(&sql).map_err(|e| self.db_err(e))?;
            let mut changed = 0;
            for params in rows {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                changed += tx.execute(&stmt, &refs).map_err(|e| self.db_err(e))?;
            }
            tx.commit().map_err(|e| self.db_err(e))?;
            Ok(changed)
        })
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        self.with_client(|c| c.batch_execute(sql).map_err(|e| self.db_err(e)))
    }

    pub(super) fn query_each(
        &self,
        sql: &str,
        params: &[SqlParam],
        rows_per_chunk: usize,
        each: &mut dyn FnMut(DataFrame) -> bool,
    ) -> Result<(), SqlError> {
        let sql = numbered(sql);
        self.with_client(|client| {
            let statement = client.prepare(&sql).map_err(|e| self.db_err(e))?;
            let columns: Vec<Column> = statement
                .columns()
                .iter()
                .map(|c| Column::new(c.name().to_owned(), kind_of(c.type_())))
                .collect();
            for c in statement.columns() {
                if !readable(c.type_()) {
                    return Err(SqlError::UnsupportedType {
                        database: self.name(),
                        column: c.name().to_owned(),
                        type_name: c.type_().name().to_owned(),
                    });
                }
            }
            let mut rows = client
                .query_raw(&statement, params.iter())
                .map_err(|e| self.db_err(e))?;
            let mut chunks = Chunker::new(columns, rows_per_chunk, each, self.name());
            while let Some(row) = rows.next().map_err(|e| self.db_err(e))? {
                for (i, column) in chunks.columns.iter_mut().enumerate() {
                    let cell: PgCell = row.try_get(i).map_err(|e| self.db_err(e))?;
                    column.push(cell.0);
                }
                if !chunks.end_row()? {
                    return Ok(());
                }
            }
            chunks.finish()
        })
    }
}

/// `?` placeholders as `$1`, `$2`... (outside quotes, identifiers and comments).
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

fn kind_of(ty: &Type) -> Option<Kind> {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => Some(Kind::Int),
        Type::FLOAT4 | Type::FLOAT8 => Some(Kind::Float),
        Type::BOOL => Some(Kind::Bool),
        _ => Some(Kind::Text),
    }
}

fn readable(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::BOOL
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::DATE
            | Type::TIMESTAMP
    )
}

/// One result value, read from PostgreSQL's binary format.
struct PgCell<'a>(Cell<'a>);

impl<'a> FromSql<'a> for PgCell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxErr> {
        Ok(PgCell(match *ty {
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Cell::Float(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Float(f64::from_sql(ty, raw)?),
            Type::BOOL => Cell::Bool(bool::from_sql(ty, raw)?),
            Type::DATE => {
                let days = i32::from_sql(&Type::INT4, raw)? + PG_EPOCH_DAYS;
                let date = jiff::civil::date(1970, 1, 1)
                    .checked_add(jiff::Span::new().days(i64::from(days)))?;
                Cell::Text(date.to_string().into())
            }
            Type::TIMESTAMP => {
                let micros = i64::from_sql(&Type::INT8, raw)?;
                let at = jiff::civil::datetime(2000, 1, 1, 0, 0, 0, 0)
                    .checked_add(jiff::Span::new().microseconds(micros))?;
                Cell::Text(at.to_string().into())
            }
            _ => Cell::Text(<&str>::from_sql(ty, raw)?.into()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxErr> {
        Ok(PgCell(Cell::Null))
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

impl ToSql for SqlParam {
    /// Binds the value as the type the server inferred for its placeholder.
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        let cannot = |what: &str| -> BoxErr {
            format!("cannot bind {what} to a parameter of type {}", ty.name()).into()
        };
        match self {
            SqlParam::Null => Ok(IsNull::Yes),
            SqlParam::Bool(b) => match *ty {
                Type::BOOL => b.to_sql(ty, out),
                _ => Err(cannot("a boolean")),
            },
            SqlParam::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT8 => i.to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if <&str as ToSql>::accepts(ty) => i.to_string().to_sql(ty, out),
                _ => Err(cannot("an integer")),
            },
            SqlParam::Float(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ if <&str as ToSql>::accepts(ty) => f.to_string().to_sql(ty, out),
                _ => Err(cannot("a float")),
            },
            SqlParam::Text(s) => match *ty {
                Type::DATE => {
                    let date: jiff::civil::Date = s
                        .parse()
                        .map_err(|e| format!("`{s}` is not a date (YYYY-MM-DD): {e}"))?;
                    let days = date.since(jiff::civil::date(2000, 1, 1))?.get_days();
                    days.to_sql(&Type::INT4, out)
                }
                Type::TIMESTAMP => {
                    let at: jiff::civil::DateTime = s
                        .parse()
                        .map_err(|e| format!("`{s}` is not a date and time: {e}"))?;
                    let span = at.since((
                        jiff::Unit::Microsecond,
                        jiff::civil::datetime(2000, 1, 1, 0, 0, 0, 0),
                    ))?;
                    span.get_microseconds().to_sql(&Type::INT8, out)
                }
                Type::INT2 | Type::INT4 | Type::INT8 => {
                    SqlParam::Int(s.parse().map_err(|_| format!("`{s}` is not an integer"))?)
                        .to_sql(ty, out)
                }
                Type::FLOAT4 | Type::FLOAT8 => {
                    SqlParam::Float(s.parse().map_err(|_| format!("`{s}` is not a number"))?)
                        .to_sql(ty, out)
                }
                _ if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
                _ => Err(cannot("text")),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_outside_quotes_and_comments() {
        assert_eq!(
            numbered("SELECT '?' AS q, \"a?\" FROM t WHERE a = ? AND b > ? -- why?\nAND c = ?"),
            "SELECT '?' AS q, \"a?\" FROM t WHERE a = $1 AND b > $2 -- why?\nAND c = $3"
        );
    }
}
