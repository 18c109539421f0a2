use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

#[sensor(on_asset = orders, select = "orders")]
fn orders_updated(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new())
}

fn main() {}
