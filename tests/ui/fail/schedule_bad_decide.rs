use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

// A decide function takes `&ScheduleContext` and returns a `ScheduleDecision` (or a `Result`
// of one): another shape is an error at the path.
fn every_other(hour: u32) -> bool {
    hour % 2 == 0
}

schedule!(hourly, select = "orders", cron = "0 * * * *", decide = every_other);

// `timeout` limits a decide function; a plain schedule has none.
schedule!(plain, select = "orders", cron = "0 * * * *", timeout = "5s");

fn main() {}
