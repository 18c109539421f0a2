//! The orders pipeline as a plain polars program, no orchestrator: what `examples/orders`
//! does, for the benchmark. Reads the same SQLite table through the same `Database`
//! (one query for the whole year), cleans, aggregates, writes both CSVs and the same
//! intermediates orch keeps, in the format orch writes them (Arrow IPC files), so both sides
//! persist their intermediates alike.
//!
//! `ORDERS_DB` (the generated database) and `ORDERS_OUT` (a directory) are required.
#![allow(missing_docs)]

use std::time::Instant;

use orch::polars::prelude::*;
use orch::sql::Database;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let db = std::env::var("ORDERS_DB").map_err(|_| "set ORDERS_DB to the orders database")?;
    let out = std::path::PathBuf::from(
        std::env::var("ORDERS_OUT").map_err(|_| "set ORDERS_OUT to an output directory")?,
    );
    std::fs::create_dir_all(&out)?;
    let t0 = Instant::now();
    let db = Database::sqlite(db);
    let mut raw = db.query_df(
        "SELECT order_id, customer_id, date, amount, status FROM orders ORDER BY order_id",
        &[],
    )?;
    // Arrow IPC, as orch's default I/O manager writes them.
    IpcWriter::new(std::fs::File::create(out.join("orders_raw.arrow"))?).finish(&mut raw)?;
    let mut cleaned = raw
        .lazy()
        .drop_nulls(None)
        .filter(col("status").neq(lit("cancelled")))
        .collect()?;
    IpcWriter::new(std::fs::File::create(out.join("orders_cleaned.arrow"))?)
        .finish(&mut cleaned)?;
    let mut daily = cleaned
        .clone()
        .lazy()
        .group_by([col("date")])
        .agg([col("amount").sum().alias("revenue")])
        .sort(["date"], Default::default())
        .collect()?;
    let mut customers = cleaned
        .lazy()
        .group_by([col("customer_id")])
        .agg([
            len().alias("orders"),
            col("amount").sum().alias("total"),
            col("amount").mean().alias("mean"),
        ])
        .sort(["customer_id"], Default::default())
        .collect()?;
    CsvWriter::new(std::fs::File::create(out.join("daily_revenue.csv"))?).finish(&mut daily)?;
    CsvWriter::new(std::fs::File::create(out.join("customer_summary.csv"))?)
        .finish(&mut customers)?;
    let revenue = daily.column("revenue")?.f64()?.sum().unwrap_or_default();
    println!(
        "{{\"bench\":\"orders_plain\",\"wall_s\":{:.3},\"daily_rows\":{},\"customer_rows\":{},\"revenue\":{revenue:.2}}}",
        t0.elapsed().as_secs_f64(),
        daily.height(),
        customers.height()
    );
    Ok(())
}
