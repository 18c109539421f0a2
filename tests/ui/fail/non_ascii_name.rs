use orch::prelude::*;

#[asset]
fn données() -> u32 {
    1
}

fn main() {}
