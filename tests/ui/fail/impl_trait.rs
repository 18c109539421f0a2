use orch::prelude::*;

#[asset]
fn names() -> Vec<String> {
    Vec::new()
}

#[asset]
fn joined(names: impl IntoIterator<Item = String>) -> String {
    names.into_iter().collect()
}

fn main() {}
