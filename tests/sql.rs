//! The SQL `Database` resource: results as DataFrames (whole or in chunks), parameters always
//! bound, typed columns; SQLite always, PostgreSQL against a real server when
//! `ORCH_TEST_POSTGRES_URL` is set (`.ci/run` starts one and requires it).

use orch::polars::prelude::*;
use orch::prelude::*;
use orch::sql::SqlError;

fn seed(db: &Database, text_date: &str) {
    db.execute_batch(&format!(
        "DROP TABLE IF EXISTS orders;
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount DOUBLE PRECISION, order_date {text_date}, paid BOOLEAN);"
    ))
    .unwrap();
    for i in 1..=10i64 {
        let amount: Option<f64> = (i % 4 != 0).then_some(i as f64 * 1.5);
        let day = format!("2024-01-{:02}", 1 + i % 3);
        db.execute(
            "INSERT INTO orders (id, customer, amount, order_date, paid) VALUES (?, ?, ?, ?, ?)",
            &[
                i.into(),
                format!("c{}", i % 2).into(),
                amount.into(),
                day.into(),
                (i % 2 == 0).into(),
            ],
        )
        .unwrap();
    }
}

/// The same checks against any backend.
fn check(db: &Database) {
    let df = db
        .query_df(
            "SELECT id, customer, amount FROM orders WHERE order_date = ? ORDER BY id",
            &["2024-01-02".into()],
        )
        .unwrap();
    let ids: Vec<i64> = df
        .column("id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(ids, [1, 4, 7, 10]);
    assert_eq!(df.column("customer").unwrap().dtype(), &DataType::String);
    let amounts = df.column("amount").unwrap();
    assert_eq!(amounts.dtype(), &DataType::Float64);
    assert_eq!(amounts.null_count(), 1, "order 4 has no amount");

    let paid = db
        .query_df(
            "SELECT paid FROM orders WHERE paid = ? ORDER BY id",
            &[true.into()],
        )
        .unwrap();
    assert_eq!(paid.column("paid").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(paid.height(), 5);

    // An injection attempt is a value like any other: it matches nothing.
    let none = db
        .query_df(
            "SELECT id FROM orders WHERE customer = ?",
            &["c1' OR '1'='1".into()],
        )
        .unwrap();
    assert_eq!(none.height(), 0);
    assert_eq!(none.get_column_names(), ["id"]);
    // ...and the table is still there, whole.
    let all = db
        .query_df("SELECT count(*) AS n FROM orders", &[])
        .unwrap();
    assert_eq!(all.column("n").unwrap().i64().unwrap().get(0), Some(10));

    // Chunks of 3 rows: 3 + 3 + 3 + 1, in order.
    let chunks: Vec<DataFrame> = db
        .query_chunks("SELECT id FROM orders ORDER BY id", &[], 3)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        chunks.iter().map(DataFrame::height).collect::<Vec<_>>(),
        [3, 3, 3, 1]
    );
    assert_eq!(
        chunks[3].column("id").unwrap().i64().unwrap().get(0),
        Some(10)
    );

    // Errors name the database and keep its message.
    let err = db.query_df("SELECT nope FROM orders", &[]).unwrap_err();
    assert!(matches!(err, SqlError::Database { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn sqlite_results_are_frames_with_bound_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::sqlite(dir.path().join("shop.db"));
    seed(&db, "TEXT");
    check(&db);
    assert!(db.name().starts_with("sqlite "), "{}", db.name());
    let url = format!("sqlite://{}", dir.path().join("shop.db").display());
    check(&Database::connect(&url).unwrap());
    assert!(
        Database::connect("mysql://x")
            .unwrap_err()
            .to_string()
            .contains("not a database URL")
    );
}

#[test]
fn postgres_results_are_frames_with_bound_parameters() {
    let Ok(url) = std::env::var("ORCH_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("ORCH_REQUIRE_POSTGRES").is_none(),
            "ORCH_REQUIRE_POSTGRES is set but ORCH_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: set ORCH_TEST_POSTGRES_URL to test against PostgreSQL");
        return;
    };
    let db = Database::connect(&url).unwrap();
    // A real DATE column: the text parameter binds as a date.
    seed(&db, "DATE");
    check(&db);
    let dates = db
        .query_df("SELECT order_date FROM orders WHERE id = ?", &[1i64.into()])
        .unwrap();
    assert_eq!(
        dates.column("order_date").unwrap().str().unwrap().get(0),
        Some("2024-01-02")
    );
    let bad = db
        .query_df(
            "SELECT id FROM orders WHERE order_date = ?",
            &["2024-01-01' OR '1'='1".into()],
        )
        .unwrap_err()
        .to_string();
    assert!(bad.contains("is not a date"), "{bad}");
}

/// A partitioned asset pushing its date filter down into SQL.
#[asset(group = "sql", partitions = daily("2024-01-01").end("2024-01-04"))]
fn orders_of_day(ctx: &AssetContext, #[resource] db: &Database) -> Result<DataFrame, BoxError> {
    let day = ctx.partition_key().ok_or("daily")?;
    Ok(db.query_df(
        "SELECT id, amount FROM orders WHERE order_date = ? ORDER BY id",
        &[day.into()],
    )?)
}

#[test]
fn a_database_resource_reaches_a_partitioned_asset() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::sqlite(dir.path().join("shop.db"));
    seed(&db, "TEXT");
    let result = Materialize::select("orders_of_day")
        .partition("2024-01-03")
        .resource(db)
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    let ids: Vec<i64> = result
        .output::<orders_of_day>()
        .column("id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(ids, [2, 5, 8]);
}
