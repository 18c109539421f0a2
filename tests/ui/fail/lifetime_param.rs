use orch::prelude::*;

#[asset]
fn config() -> String {
    "x".to_owned()
}

#[asset]
fn parsed(config: &'static String) -> usize {
    config.len()
}

fn main() {}
