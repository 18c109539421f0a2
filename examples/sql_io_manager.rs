//! A custom I/O manager: `orders_cleaned` is stored as a table in a SQLite database (like the
//! seed's `MySQLIOManager`, with no server to run), and read back from it when a later run
//! needs it without recomputing it.
//!
//! ```text
//! cargo run --example sql_io_manager                                  # everything
//! cargo run --example sql_io_manager -- materialize --select revenue  # loads orders_cleaned from SQL
//! ```

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use orch::io::{InputContext, IoManager, LoadError, OutputContext, Stored, Value};
use orch::prelude::*;
use rusqlite::{Connection, params};

/// One order.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// Order id.
    pub id: i64,
    /// Customer name.
    pub customer: String,
    /// Amount in cents; `None` when missing upstream.
    pub amount_cents: Option<i64>,
}

/// Raw orders (stored by the default file manager).
#[asset(group = "sales")]
fn orders_raw() -> Vec<Order> {
    (1..=50)
        .map(|id| Order {
            id,
            customer: format!("customer{}", id % 7),
            amount_cents: (id % 10 != 0).then_some(id * 125),
        })
        .collect()
}

/// Orders with an amount, stored as the SQL table `orders_cleaned`.
#[asset(group = "sales", io_manager = "warehouse")]
fn orders_cleaned(ctx: &AssetContext, orders_raw: &Vec<Order>) -> Vec<Order> {
    let cleaned: Vec<Order> = orders_raw
        .iter()
        .filter(|o| o.amount_cents.is_some())
        .cloned()
        .collect();
    ctx.add_output_metadata("rows", cleaned.len());
    cleaned
}

/// Total revenue in cents.
#[asset(group = "sales")]
fn revenue(orders_cleaned: &Vec<Order>) -> i64 {
    orders_cleaned.iter().filter_map(|o| o.amount_cents).sum()
}

/// Stores `Vec<Order>` outputs as tables of a SQLite database, one table per asset.
pub struct SqlTableIoManager {
    conn: Mutex<Connection>,
}

impl SqlTableIoManager {
    /// Opens (creating) the database at `path`.
    pub fn open(path: PathBuf) -> rusqlite::Result<Self> {
        Ok(SqlTableIoManager {
            conn: Mutex::new(Connection::open(path)?),
        })
    }

    fn table(key: &orch::AssetKey) -> String {
        // Keys are ASCII letters, digits, `_`, `-`, `.` and `/`: quote them as an identifier.
        format!("\"{}\"", key.to_string().replace('/', "__"))
    }
}

impl IoManager for SqlTableIoManager {
    fn handle_output(
        &self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Result<Stored, orch::BoxError> {
        let orders = value
            .downcast_ref::<Vec<Order>>()
            .ok_or("the warehouse manager stores Vec<Order> outputs only")?;
        let table = Self::table(ctx.key);
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| "the connection lock is poisoned")?;
        // Replace the table in one transaction: readers see the old rows or the new ones.
        let tx = conn.transaction()?;
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount_cents INTEGER);"
        ))?;
        {
            // Parameters are bound, never formatted into the SQL.
            let mut insert = tx.prepare(&format!("INSERT INTO {table} VALUES (?1, ?2, ?3)"))?;
            for o in orders {
                insert.execute(params![o.id, o.customer, o.amount_cents])?;
            }
        }
        tx.commit()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        orders
            .iter()
            .for_each(|o| (o.id, &o.customer, o.amount_cents).hash(&mut hasher));
        Ok(Stored::version(Some(format!("{:016x}", hasher.finish()))))
    }

    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        let failed = |e: rusqlite::Error| LoadError::Failed {
            key: ctx.key.clone(),
            source: Box::new(e),
        };
        let conn = self.conn.lock().map_err(|_| LoadError::Failed {
            key: ctx.key.clone(),
            source: "the connection lock is poisoned".into(),
        })?;
        let table = Self::table(ctx.key);
        let mut stmt = match conn.prepare(&format!(
            "SELECT id, customer, amount_cents FROM {table} ORDER BY id"
        )) {
            Ok(stmt) => stmt,
            Err(e) if e.to_string().contains("no such table") => {
                return Err(LoadError::Missing {
                    key: ctx.key.clone(),
                    location: format!("table {table}"),
                });
            }
            Err(e) => return Err(failed(e)),
        };
        let orders: Vec<Order> = stmt
            .query_map([], |r| {
                Ok(Order {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                    amount_cents: r.get(2)?,
                })
            })
            .map_err(failed)?
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        Ok(Arc::new(orders))
    }
}

fn main() -> std::process::ExitCode {
    // The state directory as the command line sees it (`.orch`, `orch.toml`, `$ORCH_HOME`).
    let state = match orch::Config::discover(std::path::Path::new("."), std::env::vars()) {
        Ok(config) => config.home().to_owned(),
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(orch::EXIT_USAGE);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&state) {
        eprintln!("error: cannot create {}: {e}", state.display());
        return std::process::ExitCode::from(orch::EXIT_USAGE);
    }
    let warehouse = match SqlTableIoManager::open(state.join("warehouse.db")) {
        Ok(manager) => manager,
        Err(e) => {
            eprintln!("error: cannot open the warehouse database: {e}");
            return std::process::ExitCode::from(orch::EXIT_USAGE);
        }
    };
    orch::App::new().io_manager("warehouse", warehouse).main()
}
