use orch::prelude::*;
use std::sync::Mutex;

#[asset]
fn cache() -> Mutex<Vec<u32>> {
    Mutex::new(Vec::new())
}

#[asset]
fn size(cache: Mutex<Vec<u32>>) -> usize {
    cache.into_inner().map(|v| v.len()).unwrap_or(0)
}

fn main() {}
