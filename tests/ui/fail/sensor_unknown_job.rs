use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

asset_job!(refresh, "orders");

#[sensor(job = refesh, interval = "10s")]
fn landed(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new())
}

fn main() {}
