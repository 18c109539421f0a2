// An asset with a bad signature is reported once: its downstream asset still compiles
// against it, instead of adding "cannot find type `pair`" to the errors.
use orch::prelude::*;

#[asset]
fn pair((a, b): (u32, u32)) -> u32 {
    a + b
}

#[asset]
fn doubled(pair: &u32) -> u32 {
    pair * 2
}

fn main() {}
