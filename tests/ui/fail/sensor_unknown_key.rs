use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

#[sensor(select = "orders", intervall = "30s")]
fn landed(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new())
}

fn main() {}
