//! Resources: what assets and ops take with `#[resource]`, configured once in `main` and
//! replaced by a fake in tests.

use std::sync::Mutex;

/// A stand-in for a warehouse connection: tables of text rows. A real project keeps a
/// connection pool here (see `orch::sql::Database`).
#[derive(Debug, Default)]
pub struct Warehouse {
    tables: Mutex<std::collections::BTreeMap<String, Vec<String>>>,
}

impl Warehouse {
    /// Replaces table `name` with `rows`.
    pub fn write(&self, name: &str, rows: Vec<String>) {
        self.lock().insert(name.to_owned(), rows);
    }

    /// The rows of table `name`.
    pub fn read(&self, name: &str) -> Vec<String> {
        self.lock().get(name).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<String>>> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}
