//! Outputs are classified by their type, not its name: aliases of `Result` and of the frame
//! types work as the types they stand for.

use orch::polars::prelude::*;
use orch::prelude::*;

type Orders = DataFrame;
type Lazy = LazyFrame;
type MyResult<T> = std::result::Result<T, std::io::Error>;

/// polars' own alias of `Result`.
#[asset]
fn flights_raw() -> PolarsResult<DataFrame> {
    df!("id" => [1i64, 2, 3])
}

/// An alias of `DataFrame`: stored as Parquet, like the frame it is.
#[asset]
fn orders(flights_raw: &DataFrame) -> Orders {
    flights_raw.clone()
}

#[asset]
fn order_count(orders: &Orders) -> anyhow::Result<u32> {
    Ok(u32::try_from(orders.height())?)
}

#[asset]
fn notes() -> std::io::Result<String> {
    Ok(String::from("ok"))
}

#[asset]
fn note_bytes(notes: &String, order_count: &u32) -> MyResult<Vec<u8>> {
    Ok(format!("{notes} {order_count}").into_bytes())
}

/// A range of partitions split by a column: the output is an alias of a frame.
#[asset(partitions = daily("2024-01-01"), partition_by = "day")]
fn daily_orders() -> Orders {
    DataFrame::empty()
}

/// Several partitions concatenated, read through an alias of a frame.
#[asset(partitions = daily("2024-01-01"))]
fn weekly_orders(#[partitions(last = 7)] daily_orders: &Lazy) -> usize {
    daily_orders.clone().collect().map_or(0, |frame| frame.height())
}

fn main() {}
