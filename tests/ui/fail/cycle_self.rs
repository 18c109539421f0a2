use orch::prelude::*;

#[asset]
fn counter(counter: &u32) -> u32 {
    counter + 1
}

fn main() {}
