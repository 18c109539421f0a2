use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

#[sensor(select = "orders")]
fn landed(_ctx: &SensorContext) -> Vec<String> {
    Vec::new()
}

fn main() {}
