//! A deterministic orders table in SQLite, shaped like `../shared/bench/dagster/gen_orders.py`:
//! `order_id` 0..N, `customer_id` uniform over 100,000, `date` uniform over the 365 days
//! from 2024-01-01, `amount` log-normal (mu 3.5, sigma 0.8, 2 decimals, about 1% NULL),
//! `status` pending / shipped / delivered / cancelled with p = .15 / .30 / .45 / .10.
//! Same seed, same rows (splitmix64; not numpy's generator, so not the same rows as the
//! Python script, but the same distributions).

use orch::sql::{Database, SqlError};

/// splitmix64: small, fast, and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The 365 order dates.
pub fn days() -> Vec<String> {
    let start = orch::partitions::jiff::civil::date(2024, 1, 1);
    (0..365)
        .map(|d| {
            start
                .checked_add(orch::partitions::jiff::Span::new().days(d))
                .map(|day| day.to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// Creates (or replaces) table `orders` with `rows` rows, indexed by date.
pub fn generate(db: &Database, rows: u64) -> Result<(), SqlError> {
    let days = days();
    let mut rng = Rng(42);
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         DROP TABLE IF EXISTS orders;
         CREATE TABLE orders (
             order_id INTEGER PRIMARY KEY,
             customer_id INTEGER NOT NULL,
             date TEXT NOT NULL,
             amount REAL,
             status TEXT NOT NULL
         );",
    )?;
    // One transaction, one prepared statement, every value bound.
    let rows = (0..rows).map(move |id| {
        let customer = (rng.next() % 100_000) as i64;
        let day = days[(rng.next() % 365) as usize].clone();
        let amount = ((3.5 + 0.8 * rng.normal()).exp() * 100.0).round() / 100.0;
        let amount = (rng.unit() >= 0.01).then_some(amount);
        let p = rng.unit();
        let status = if p < 0.15 {
            "pending"
        } else if p < 0.45 {
            "shipped"
        } else if p < 0.90 {
            "delivered"
        } else {
            "cancelled"
        };
        vec![
            (id as i64).into(),
            customer.into(),
            day.into(),
            amount.into(),
            status.into(),
        ]
    });
    db.execute_many("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows)?;
    db.execute_batch("CREATE INDEX orders_date ON orders(date);")?;
    Ok(())
}
