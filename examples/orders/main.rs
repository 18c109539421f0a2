//! The orders pipeline: the seed's MySQL ETL on an embedded SQLite database.
//!
//! ```text
//! orders (SQLite table, generated)
//!   -> orders_raw        daily partitions; the days' rows, filtered in SQL (bound `?`)
//!   -> orders_cleaned    daily; drops NULL amounts and cancelled orders
//!   -> daily_revenue     every day: revenue per date
//!   -> customer_summary  every day: orders, total and mean per customer
//!   -> export_csv        both as CSV under `$ORCH_HOME/exports/` (tracked files)
//! ```
//!
//! `cargo run --example orders` generates the table (1,000,000 rows, or `ORDERS_ROWS`) into
//! `$ORCH_HOME/orders.db` if it is missing, then materializes everything: the 365 daily
//! partitions (one run each, 2 at a time), then the aggregations and the export. Both daily
//! assets also take ranges (`partition_by = "date"`), so `backfill --select '*' --from
//! 2024-01-01 --to 2024-12-30 --partitions-per-run 31` queries a month at a time, and
//! `--single-run` the whole year in one run. With `ORDERS_PARQUET` set
//! to a file from `../shared/bench/dagster/gen_orders.py`, the table is imported from it
//! instead (the Dagster benchmark's exact rows). Any orch command works
//! too: `cargo run --example orders -- partitions orders_cleaned`.

mod generate;

use orch::polars::prelude::*;
use orch::prelude::*;
use serde::{Deserialize, Serialize};

/// The days the generated orders cover: 2024-01-01 to 2024-12-30.
fn order_days() -> orch::partitions::PartitionsDefinition {
    orch::partitions::daily("2024-01-01")
        .end("2024-12-31")
        .into()
}

/// The orders of a day, or of a range of days in one query when a run covers several (the
/// frame is then split into days by its `date` column). Filtered in the database, with
/// bound parameters.
#[asset(group = "orders", partitions = order_days(), partition_by = "date")]
fn orders_raw(ctx: &AssetContext, #[resource] db: &Database) -> Result<DataFrame, BoxError> {
    let days = ctx.partition_key_range().ok_or("orders_raw is daily")?;
    Ok(db.query_df(
        "SELECT order_id, customer_id, date, amount, status FROM orders
         WHERE date BETWEEN ? AND ? ORDER BY date, order_id",
        &[days.start.into(), days.end.into()],
    )?)
}

/// The same days without NULL amounts and cancelled orders.
#[asset(group = "orders", partitions = order_days(), partition_by = "date")]
fn orders_cleaned(orders_raw: &LazyFrame) -> LazyFrame {
    orders_raw
        .clone()
        .drop_nulls(None)
        .filter(col("status").neq(lit("cancelled")))
}

/// Revenue per day, over every partition.
#[asset(group = "orders")]
fn daily_revenue(orders_cleaned: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(orders_cleaned
        .clone()
        .group_by([col("date")])
        .agg([col("amount").sum().alias("revenue")])
        .sort(["date"], Default::default())
        .collect()?)
}

/// Orders, total and mean amount per customer, over every partition.
#[asset(group = "orders")]
fn customer_summary(orders_cleaned: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(orders_cleaned
        .clone()
        .group_by([col("customer_id")])
        .agg([
            len().alias("orders"),
            col("amount").sum().alias("total"),
            col("amount").mean().alias("mean"),
        ])
        .sort(["customer_id"], Default::default())
        .collect()?)
}

/// What the export wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// `daily_revenue.csv` and `customer_summary.csv`, tracked by their contents (the export's
    /// data version changes only when a file does).
    pub files: Vec<FileAsset>,
    /// Rows of `daily_revenue.csv`.
    pub daily_rows: usize,
    /// Rows of `customer_summary.csv`.
    pub customer_rows: usize,
    /// Total revenue, rounded to cents.
    pub revenue: f64,
}

/// Both aggregations as CSV files under `$ORCH_HOME/exports/`.
#[asset(group = "orders")]
fn export_csv(
    ctx: &AssetContext,
    daily_revenue: &DataFrame,
    customer_summary: &DataFrame,
) -> Result<Export, BoxError> {
    let dir = state_dir().join("exports");
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for (name, df) in [
        ("daily_revenue.csv", daily_revenue),
        ("customer_summary.csv", customer_summary),
    ] {
        let path = dir.join(name);
        let mut df = df.clone();
        CsvWriter::new(std::fs::File::create(&path)?).finish(&mut df)?;
        files.push(ctx.track_file(&path)?);
        ctx.log().info(format!("wrote {}", path.display()));
    }
    let revenue = daily_revenue
        .column("revenue")?
        .f64()?
        .sum()
        .unwrap_or_default();
    ctx.add_output_metadata("revenue", revenue);
    Ok(Export {
        files,
        daily_rows: daily_revenue.height(),
        customer_rows: customer_summary.height(),
        revenue: (revenue * 100.0).round() / 100.0,
    })
}

fn main() -> std::process::ExitCode {
    let path = state_dir().join("orders.db");
    if !path.exists() {
        let rows = std::env::var("ORDERS_ROWS")
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(1_000_000);
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("error: could not create {}: {e}", dir.display());
            return std::process::ExitCode::from(2);
        }
        let db = Database::sqlite(&path);
        let made = match std::env::var_os("ORDERS_PARQUET") {
            Some(parquet) => {
                eprintln!("importing {} into {}", parquet.display(), path.display());
                generate::import_parquet(&db, parquet.as_ref()).map(drop)
            }
            None => {
                eprintln!("generating {rows} orders into {}", path.display());
                generate::generate(&db, rows).map_err(Into::into)
            }
        };
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            eprintln!("error: could not generate the orders: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    orch::App::new().resource(Database::sqlite(path)).main()
}

/// Where this program keeps its state, as its command line sees it: `.orch`, or `home` in
/// `orch.toml`, or `$ORCH_HOME`.
fn state_dir() -> std::path::PathBuf {
    orch::Config::discover(std::path::Path::new("."), std::env::vars())
        .map(|c| c.home().to_owned())
        .unwrap_or_else(|_| ".orch".into())
}
