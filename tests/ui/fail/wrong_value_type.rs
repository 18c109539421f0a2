use orch::prelude::*;

#[asset(group = sources, retries = "3", owners = "team:data", tags = "x", key_prefix = "a/../b")]
fn users() -> Vec<String> {
    Vec::new()
}

fn main() {}
