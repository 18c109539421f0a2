use orch::prelude::*;

// A condition is built with the condition functions, not named in a string.
#[asset(automation = "eager")]
fn orders() -> u32 {
    1
}

fn main() {}
