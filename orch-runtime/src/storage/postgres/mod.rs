//! The run store on PostgreSQL: what a deployment of many processes on many machines shares
//! (`[store] url = "postgres://..."`). Same tables and the same answers as the embedded
//! SQLite store; it passes the same conformance suite.
//!
//! - **One connection per process**, behind a mutex, as the SQLite store has one: the
//!   writer batches a run's events, so a run costs a few round trips, not one per event. A
//!   connection that breaks is opened again on the next call.
//! - **Sequence numbers in commit order.** Events are numbered by an identity column, and
//!   followers read "every event after N". Two transactions could commit their numbers out
//!   of order and a follower skip the lower one, so every transaction that appends events
//!   takes one advisory lock (per schema) until it commits.
//! - **Liveness by advisory lock.** A run's process holds a session-level advisory lock
//!   keyed by its id for as long as it runs. The server releases it when the session ends,
//!   however the process died (`kill -9`, power loss, a broken network), which is how a dead
//!   run is told from a live one on another machine, as a file lock does on one machine.
//! - **Sync calls from anywhere.** The `postgres` crate's client blocks on a runtime of its
//!   own, which tokio forbids inside another runtime's thread; a call made from async code
//!   runs on a scoped thread instead.

mod automation;
mod db;
mod rows;
mod runs;
mod schema;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, Config, GenericClient, NoTls};

use db::{Conn, Db, Statements};

use super::{StorageError, redact};

/// The store on a PostgreSQL server.
pub struct PgStorage {
    /// The server and database, without the password (for errors).
    location: String,
    session: Arc<Mutex<Session>>,
    /// A connection of its own that LISTENs, for [`StepQueue::wait_for_steps`](super::StepQueue::wait_for_steps).
    listener: Mutex<Option<Client>>,
    /// The builds whose code versions this process registered (see `steps.rs`).
    builds: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The process's connection, and what it must hold again after reconnecting.
struct Session {
    config: Config,
    /// The schema the store lives in (`None`: the connection's default, usually `public`).
    schema: Option<String>,
    client: Option<Client>,
    /// The statements prepared on `client`.
    statements: Statements,
    /// The ids this process holds alive (runs, a daemon), with their advisory locks.
    held: BTreeSet<String>,
}

/// What a store operation can fail with: the server, or the store's own refusal.
pub(super) enum Fail {
    Db(postgres::Error),
    Store(StorageError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Store(e)
    }
}

pub(super) type PgResult<T> = Result<T, Fail>;

impl PgStorage {
    /// Connects to the store at `url` (`postgres://user:password@host:port/database`, or
    /// libpq's `key=value` form), creating and migrating its tables as needed.
    pub fn connect(url: &str) -> Result<PgStorage, StorageError> {
        Self::open(url, None)
    }

    /// [`PgStorage::connect`], keeping the store's tables in `schema` (created if missing):
    /// several stores in one database, or one beside an application's own tables.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<PgStorage, StorageError> {
        Self::open(url, Some(schema.to_owned()))
    }

    fn open(url: &str, schema: Option<String>) -> Result<PgStorage, StorageError> {
        let mut config: Config = url.parse().map_err(|e| StorageError::Database {
            location: redact(url),
            source: format!("not a PostgreSQL connection URL: {e}").into(),
        })?;
        // A server that went away is noticed in seconds, not after the OS's two hours, unless
        // the URL says otherwise.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        let location = describe(&config, schema.as_deref());
        let store = PgStorage {
            location,
            session: Arc::new(Mutex::new(Session {
                config,
                schema,
                client: None,
                statements: Statements::default(),
                held: BTreeSet::new(),
            })),
            listener: Mutex::new(None),
            builds: Mutex::default(),
        };
        let found = store.with(|c| Ok(schema::migrate(c.raw())?))?;
        let supported = schema::MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StorageError::NewerSchema {
                path: PathBuf::from(&store.location),
                found,
                supported,
            });
        }
        Ok(store)
    }

    /// Where the store is: `postgres host:port/database` (and its schema).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` on the connection (opened again first if it broke).
    fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut Conn<'_>) -> PgResult<R> + Send,
    ) -> Result<R, StorageError> {
        self.with_session(|session| {
            session.client()?;
            let Session {
                client, statements, ..
            } = session;
            let mut conn = Conn {
                client: client.as_mut().expect("connected above"),
                statements,
            };
            f(&mut conn)
        })
    }

    /// Runs `f` on the session. From async code it runs on a scoped thread: the client
    /// blocks on a runtime of its own.
    fn with_session<R: Send>(
        &self,
        f: impl FnOnce(&mut Session) -> PgResult<R> + Send,
    ) -> Result<R, StorageError> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let session: &mut Session = &mut session;
        let out = off_runtime(move || {
            let out = f(session);
            // A connection that broke is opened again by the next call.
            if session.client.as_ref().is_some_and(Client::is_closed) {
                session.client = None;
            }
            out
        });
        out.map_err(|e| self.fail(e))
    }

    pub(super) fn fail(&self, e: Fail) -> StorageError {
        match e {
            Fail::Store(e) => e,
            Fail::Db(e) => StorageError::Database {
                location: self.location.clone(),
                source: Box::new(ServerError(e)),
            },
        }
    }

    /// Waits up to `timeout` for a notification on `channel` (on a connection of its own,
    /// opened and made to LISTEN on first use, and again if it broke).
    pub(super) fn listen(&self, channel: &str, timeout: Duration) -> Result<(), StorageError> {
        use postgres::fallible_iterator::FallibleIterator;
        let config = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .config
            .clone();
        let mut listener = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        let listener: &mut Option<Client> = &mut listener;
        off_runtime(move || -> PgResult<()> {
            if listener.as_ref().is_none_or(Client::is_closed) {
                let mut client = config.connect(NoTls)?;
                client.batch_execute(&format!("LISTEN {}", quote_ident(channel)))?;
                *listener = Some(client);
            }
            let client = listener.as_mut().expect("connected above");
            let mut notifications = client.notifications();
            if notifications.is_empty() {
                notifications.timeout_iter(timeout).next()?;
            }
            // Any number of notifications is one wakeup.
            while notifications.iter().next()?.is_some() {}
            Ok(())
        })
        .map_err(|e| self.fail(e))
    }

    /// Holds `id` alive until the guard is dropped (or the process dies): see
    /// [`Storage::hold_alive`](super::Storage::hold_alive).
    pub(super) fn hold(&self, id: &str) -> Result<AliveGuard, StorageError> {
        self.with_session(|session| {
            lock_alive(session.client()?, id)?;
            session.held.insert(id.to_owned());
            Ok(())
        })?;
        Ok(AliveGuard {
            session: Arc::clone(&self.session),
            id: id.to_owned(),
            location: self.location.clone(),
        })
    }
}

/// Whether some process (this one included) holds `id` alive: its advisory lock is granted
/// to a session on this database.
fn alive(client: &mut impl Db, id: &str) -> PgResult<bool> {
    let row = client.query_one(
        &format!(
            "WITH k AS (SELECT {ALIVE_KEY} AS key)
             SELECT EXISTS (
                SELECT 1 FROM pg_locks l, k
                WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid::text::bigint = ((k.key >> 32) & 4294967295)
                  AND l.objid::text::bigint = (k.key & 4294967295))"
        ),
        &[&id],
    )?;
    Ok(row.get(0))
}

/// The advisory lock key of `id`'s liveness, in the connection's schema.
const ALIVE_KEY: &str = "hashtextextended('orch:alive:' || current_schema() || ':' || $1, 0)";

fn lock_alive(client: &mut impl GenericClient, id: &str) -> PgResult<()> {
    let got: bool = client
        .query_one(&format!("SELECT pg_try_advisory_lock({ALIVE_KEY})"), &[&id])?
        .get(0);
    if got {
        Ok(())
    } else {
        Err(Fail::Store(StorageError::AssetBusy {
            asset: format!("(the run or process `{id}` itself)"),
            holder: id.to_owned(),
        }))
    }
}

impl Session {
    /// The connection, opened (with the schema set and the held locks taken again) if there
    /// is none or it broke.
    fn client(&mut self) -> PgResult<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            self.statements.clear();
            let mut client = self.config.connect(NoTls)?;
            if let Some(schema) = &self.schema {
                let quoted = quote_ident(schema);
                // IF NOT EXISTS is not safe against another process creating it at the same
                // moment: that one's win is as good as ours.
                match client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}")) {
                    Err(e)
                        if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
                            || e.code() == Some(&postgres::error::SqlState::DUPLICATE_SCHEMA) => {}
                    other => other?,
                }
                client.batch_execute(&format!("SET search_path TO {quoted}"))?;
            }
            // No call waits for ever: a lock held by a process that vanished mid-transaction
            // (a power loss, until the server notices) fails the call instead, and the
            // server ends a transaction its client left open.
            client.batch_execute(
                "SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s'",
            )?;
            // A new session holds no locks: take this process's again. One another process
            // took meanwhile (it judged this one dead) stays lost; the run's end says so.
            for id in &self.held {
                let _ = lock_alive(&mut client, id);
            }
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

/// Keeps an id alive in the store while it lives: dropping it lets go of the advisory lock.
pub struct AliveGuard {
    session: Arc<Mutex<Session>>,
    id: String,
    location: String,
}

impl std::fmt::Debug for AliveGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliveGuard")
            .field("id", &self.id)
            .field("store", &self.location)
            .finish()
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session.held.remove(&self.id);
        let id = self.id.clone();
        let session: &mut Session = &mut session;
        off_runtime(move || {
            // A broken connection already let go of it.
            if let Some(client) = session.client.as_mut().filter(|c| !c.is_closed())
                && let Err(e) =
                    client.execute(&format!("SELECT pg_advisory_unlock({ALIVE_KEY})"), &[&id])
            {
                tracing::warn!("could not let go of the liveness lock of `{id}`: {e}");
            }
        });
    }
}

/// Runs `f` here, or on a scoped thread when this thread drives a tokio runtime: the sync
/// client blocks on a runtime of its own, which tokio forbids inside another.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| {
            scope
                .spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        f()
    }
}

/// A server error with the server's own words (`postgres::Error` prints only "db error").
#[derive(Debug)]
struct ServerError(postgres::Error);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(
                    f,
                    "{} ({}): {}",
                    db.severity(),
                    db.code().code(),
                    db.message()
                )?;
                if let Some(detail) = db.detail() {
                    write!(f, "; {detail}")?;
                }
                if let Some(hint) = db.hint() {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
            None => {
                write!(f, "{}", self.0)?;
                let mut source = std::error::Error::source(&self.0);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ServerError {}

/// `postgres host:port/database[ schema S]`: where the store is, with no password.
fn describe(config: &Config, schema: Option<&str>) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    match schema {
        Some(schema) => format!("postgres {host}:{port}/{db} (schema {schema})"),
        None => format!("postgres {host}:{port}/{db}"),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
