use orch::prelude::*;

#[asset]
fn pair() -> (u32, u32) {
    (1, 2)
}

#[asset]
fn sum((a, b): &(u32, u32)) -> u32 {
    a + b
}

fn main() {}
