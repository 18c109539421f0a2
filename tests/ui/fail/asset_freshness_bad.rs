use orch::prelude::*;

// Each bad duration, cron string or time zone is an error at its string.
#[asset(freshness = "soon")]
fn orders() -> u32 {
    1
}

#[asset(freshness = freshness::window("1h").warn("half an hour"))]
fn customers() -> u32 {
    1
}

#[asset(freshness = freshness::cron("0 25 * * *", "2h").timezone("Mars/Olympus"))]
fn report() -> u32 {
    1
}

fn main() {}
