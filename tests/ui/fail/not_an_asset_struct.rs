use orch::prelude::*;

#[allow(non_camel_case_types)]
struct config {
    #[allow(dead_code)]
    threshold: u32,
}

#[asset]
fn filtered(config: &config) -> u32 {
    config.threshold
}

fn main() {}
