//! [`Database`]: a SQL database as a resource. SQLite (embedded, no server) or PostgreSQL (by
//! URL); query results come back as polars DataFrames, whole or in chunks of N rows, so the
//! filtering happens in the database (SQL pushdown) and large results stream.
//!
//! Parameters are always bound, never formatted into the SQL: write `?` where a value goes
//! and pass the values apart. A partition key such as `2024-01-01' OR '1'='1` is then just a
//! string that matches nothing.
//!
//! ```ignore
//! #[asset(partitions = daily("2024-01-01"))]
//! fn orders_raw(ctx: &AssetContext, #[resource] db: &Database) -> Result<DataFrame, BoxError> {
//!     let day = ctx.partition_key().unwrap_or_default();
//!     Ok(db.query_df("SELECT * FROM orders WHERE order_date = ?", &[day.into()])?)
//! }
//! ```

mod columns;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

use std::path::PathBuf;
use std::sync::mpsc;

use polars::prelude::DataFrame;

/// A value bound to a `?` placeholder.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SqlParam {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (PostgreSQL infers its type from the context, so a date column compares with
    /// `'2024-01-05'` text as it would with a literal).
    Text(String),
    /// A boolean.
    Bool(bool),
}

macro_rules! param_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for SqlParam {
            fn from($v: $t) -> Self {
                $e
            }
        }
    )*};
}
param_from!(
    i64 => |v| SqlParam::Int(v),
    i32 => |v| SqlParam::Int(i64::from(v)),
    u32 => |v| SqlParam::Int(i64::from(v)),
    f64 => |v| SqlParam::Float(v),
    bool => |v| SqlParam::Bool(v),
    String => |v| SqlParam::Text(v),
    &str => |v| SqlParam::Text(v.to_owned()),
    &String => |v| SqlParam::Text(v.clone()),
);

impl<T: Into<SqlParam>> From<Option<T>> for SqlParam {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlParam::Null, Into::into)
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The database reported an error (bad SQL, a constraint, a lost connection).
    #[error("{database}: {message}")]
    Database {
        /// Which database (`sqlite orders.db`, `postgres localhost:5432/shop`).
        database: String,
        /// The database's message.
        message: String,
    },
    /// A result column has a type orch cannot turn into a DataFrame column.
    #[error(
        "{database}: column `{column}` has type {type_name}, which orch cannot read yet; cast it in the query (e.g. `{column}::text` or `CAST({column} AS TEXT)`)"
    )]
    UnsupportedType {
        /// Which database.
        database: String,
        /// The column.
        column: String,
        /// Its type.
        type_name: String,
    },
    /// Building the DataFrame failed.
    #[error("{database}: could not build the result frame: {message}")]
    Frame {
        /// Which database.
        database: String,
        /// What polars said.
        message: String,
    },
    /// The URL is not `sqlite://PATH` or `postgres://...`.
    #[error(
        "`{0}` is not a database URL orch knows: use `sqlite://PATH` (or a path) or `postgres://USER@HOST:PORT/DB`"
    )]
    Url(String),
}

/// A SQL database; share it as a resource (`App::new().resource(Database::sqlite(..))`).
pub struct Database {
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::Postgres>),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.name())
    }
}

impl Database {
    /// An SQLite database file (created on first write). Each query opens its own connection,
    /// so assets query it in parallel.
    pub fn sqlite(path: impl Into<PathBuf>) -> Database {
        Database {
            backend: Backend::Sqlite(sqlite::Sqlite::new(path.into())),
        }
    }

    /// A PostgreSQL server, e.g. `postgres://orch@localhost:5432/shop` (libpq URL or
    /// key-value syntax). Connections open on first use and are kept for reuse.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str) -> Result<Database, SqlError> {
        Ok(Database {
            backend: Backend::Postgres(Box::new(postgres::Postgres::new(url)?)),
        })
    }

    /// By URL: `sqlite://PATH` (or a bare path) or `postgres://...` / `postgresql://...`.
    pub fn connect(url: &str) -> Result<Database, SqlError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Database::sqlite(path));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Database::postgres(url);
            #[cfg(not(feature = "postgres"))]
            return Err(SqlError::Url(format!(
                "{url} (PostgreSQL needs orch's `postgres` feature)"
            )));
        }
        if url.contains("://") {
            return Err(SqlError::Url(url.to_owned()));
        }
        Ok(Database::sqlite(url))
    }

    /// A short name for messages: `sqlite orders.db`, `postgres localhost:5432/shop`.
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => s.name(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.name(),
        }
    }

    /// Runs a query and returns every row as one DataFrame (columns typed from the result:
    /// integers, floats, text, booleans; `NULL`s allowed).
    pub fn query_df(&self, sql: &str, params: &[SqlParam]) -> Result<DataFrame, SqlError> {
        let mut out: Option<DataFrame> = None;
        self.query_each(sql, params, usize::MAX, &mut |chunk| {
            out = Some(chunk);
            true
        })?;
        match out {
            Some(df) => Ok(df),
            // No chunk at all cannot happen (an empty result is one empty chunk).
            None => Ok(DataFrame::empty()),
        }
    }

    /// Runs a query and yields its rows in DataFrames of at most `rows` rows, read from the
    /// database as they are consumed (at most two chunks are held at once). Each query runs
    /// on its own connection, on a background thread.
    pub fn query_chunks(
        &self,
        sql: &str,
        params: &[SqlParam],
        rows: usize,
    ) -> Result<Chunks, SqlError> {
        let (tx, rx) = mpsc::sync_channel::<Result<DataFrame, SqlError>>(1);
        let job = self.detached_query(sql, params, rows.max(1), tx)?;
        std::thread::Builder::new()
            .name("orch-sql-chunks".to_owned())
            .spawn(job)
            .map_err(|e| SqlError::Database {
                database: self.name(),
                message: format!("could not start the reader thread: {e}"),
            })?;
        Ok(Chunks { rx })
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    pub fn execute(&self, sql: &str, params: &[SqlParam]) -> Result<u64, SqlError> {
        match &self.backend {
            Backend::Sqlite(s) => s.execute(sql, params),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.execute(sql, params),
        }
    }

    /// Runs one statement once per parameter row, in one transaction (all rows or none): a
    /// bulk load. Returns the number of rows changed.
    pub fn execute_many<I>(&self, sql: &str, rows: I) -> Result<u64, SqlError>
    where
        I: IntoIterator<Item = Vec<SqlParam>>,
    {
        let mut rows = rows.into_iter();
        match &self.backend {
            Backend::Sqlite(s) => s.execute_many(sql, &mut rows),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.execute_many(sql, &mut rows),
        }
    }

    /// Runs several statements without parameters (schema changes, bulk loads).
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(s) => s.execute_batch(sql),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.execute_batch(sql),
        }
    }

    /// Calls `each` with every chunk of at most `rows` rows until it returns `false`.
    fn query_each(
        &self,
        sql: &str,
        params: &[SqlParam],
        rows: usize,
        each: &mut dyn FnMut(DataFrame) -> bool,
    ) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(s) => s.query_each(sql, params, rows, each),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.query_each(sql, params, rows, each),
        }
    }

    /// A query that sends its chunks to `tx`, runnable on another thread.
    fn detached_query(
        &self,
        sql: &str,
        params: &[SqlParam],
        rows: usize,
        tx: mpsc::SyncSender<Result<DataFrame, SqlError>>,
    ) -> Result<Box<dyn FnOnce() + Send>, SqlError> {
        let db = match &self.backend {
            Backend::Sqlite(s) => Database {
                backend: Backend::Sqlite(s.clone()),
            },
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Database {
                backend: Backend::Postgres(Box::new(p.detached()?)),
            },
        };
        let sql = sql.to_owned();
        let params = params.to_vec();
        Ok(Box::new(move || {
            let sent = db.query_each(&sql, &params, rows, &mut |chunk| tx.send(Ok(chunk)).is_ok());
            if let Err(e) = sent {
                let _ = tx.send(Err(e));
            }
        }))
    }
}

/// The chunks of [`Database::query_chunks`].
pub struct Chunks {
    rx: mpsc::Receiver<Result<DataFrame, SqlError>>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Chunks")
    }
}

impl Iterator for Chunks {
    type Item = Result<DataFrame, SqlError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}
