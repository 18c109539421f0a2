use orch::prelude::*;

fn config() -> u32 {
    3
}

#[asset]
fn filtered(config: &u32) -> u32 {
    *config
}

fn main() {}
