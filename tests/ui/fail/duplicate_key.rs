use orch::prelude::*;

#[asset(group = "sources", group = "raw")]
fn users() -> Vec<String> {
    Vec::new()
}

fn main() {}
