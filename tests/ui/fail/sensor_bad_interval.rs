use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

#[sensor(select = "orders", interval = "30 parsecs")]
fn landed(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new())
}

fn main() {}
