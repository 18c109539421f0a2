use orch::prelude::*;

#[asset]
fn parsed<T: std::str::FromStr>() -> Vec<T> {
    Vec::new()
}

fn main() {}
