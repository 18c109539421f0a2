use orch::prelude::*;

#[asset]
fn a() -> Vec<u32> {
    vec![1, 2, 3]
}

#[asset]
fn b(a: &Vec<String>) -> usize {
    a.len()
}

fn main() {}
