//! The five assets of Dagster's ETL benchmark, for `etl.rs` (every intermediate stored by the
//! default I/O manager), `etl_memory.rs` (kept in memory) and `etl_lazy.rs` (`orders_cleaned`
//! a lazy plan, run into its file by the streaming engine and read back by its consumers):
//! `etl_assets!(eager | lazy, io_manager = "...")` defines them with that I/O manager.

/// `orders_cleaned`: `df.drop_nulls().filter(pl.col("status") != "cancelled")`, collected in
/// memory (`eager`) or returned as a plan (`lazy`).
macro_rules! etl_cleaned {
    (eager, $($io:tt)*) => {
        #[asset($($io)*)]
        fn orders_cleaned(orders_raw: &DataFrame) -> Result<DataFrame, BoxError> {
            Ok(orders_raw
                .clone()
                .lazy()
                .drop_nulls(None)
                .filter(col("status").neq(lit("cancelled")))
                .collect()?)
        }
    };
    (lazy, $($io:tt)*) => {
        #[asset($($io)*)]
        fn orders_cleaned(orders_raw: &LazyFrame) -> LazyFrame {
            orders_raw
                .clone()
                .drop_nulls(None)
                .filter(col("status").neq(lit("cancelled")))
        }
    };
}

macro_rules! etl_assets {
    ($cleaned:ident, $($io:tt)*) => {
        use std::path::PathBuf;

        use orch::polars::prelude::*;
        use orch::prelude::*;
        use serde::{Deserialize, Serialize};

        fn env_path(name: &str) -> Result<PathBuf, BoxError> {
            std::env::var_os(name)
                .map(PathBuf::from)
                .ok_or_else(|| format!("set {name}").into())
        }

        /// `pl.read_parquet(path)`.
        #[asset($($io)*)]
        fn orders_raw() -> Result<DataFrame, BoxError> {
            let file = std::fs::File::open(env_path("ETL_DATA")?)?;
            Ok(ParquetReader::new(file).finish()?)
        }

        etl_cleaned!($cleaned, $($io)*);

        /// Revenue per day.
        #[asset($($io)*)]
        fn daily_revenue(orders_cleaned: &DataFrame) -> Result<DataFrame, BoxError> {
            Ok(orders_cleaned
                .clone()
                .lazy()
                .group_by([col("date")])
                .agg([col("amount").sum().alias("revenue")])
                .sort(["date"], Default::default())
                .collect()?)
        }

        /// Orders, total and mean amount per customer.
        #[asset($($io)*)]
        fn customer_summary(orders_cleaned: &DataFrame) -> Result<DataFrame, BoxError> {
            Ok(orders_cleaned
                .clone()
                .lazy()
                .group_by([col("customer_id")])
                .agg([
                    len().alias("orders"),
                    col("amount").sum().alias("total"),
                    col("amount").mean().alias("mean"),
                ])
                .sort(["customer_id"], Default::default())
                .collect()?)
        }

        #[derive(Clone, Debug, Serialize, Deserialize)]
        struct Export {
            daily_rows: usize,
            customer_rows: usize,
            revenue: f64,
        }

        /// Both aggregations as CSV under `ETL_OUT`.
        #[asset($($io)*)]
        fn export_csv(daily_revenue: &DataFrame, customer_summary: &DataFrame) -> Result<Export, BoxError> {
            let out = env_path("ETL_OUT")?;
            std::fs::create_dir_all(&out)?;
            for (name, df) in [
                ("daily_revenue.csv", daily_revenue),
                ("customer_summary.csv", customer_summary),
            ] {
                CsvWriter::new(std::fs::File::create(out.join(name))?).finish(&mut df.clone())?;
            }
            let revenue = daily_revenue
                .column("revenue")?
                .f64()?
                .sum()
                .unwrap_or_default();
            Ok(Export {
                daily_rows: daily_revenue.height(),
                customer_rows: customer_summary.height(),
                revenue: (revenue * 100.0).round() / 100.0,
            })
        }
    };
}
