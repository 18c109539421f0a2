use orch::prelude::*;

#[asset(grop = "sources")]
fn users() -> Vec<String> {
    Vec::new()
}

fn main() {}
