use orch::prelude::*;

#[op]
fn fetch_data() -> Vec<u32> {
    vec![1]
}

#[asset]
fn an_asset() -> u32 {
    1
}

fn helper(data: u32) -> u32 {
    data
}

// An asset is not an op, and neither is a plain function.
#[job]
fn pipeline() {
    let data = fetch_data();
    an_asset();
    helper(data);
}

fn main() {}
