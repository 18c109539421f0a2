use orch::prelude::*;

#[op]
fn fetch_data() -> Vec<u32> {
    vec![1]
}

#[op]
fn summarize(data: &Vec<u32>, limit: &usize) -> String {
    format!("{data:?} {limit}")
}

// Too few handles for an op's inputs.
#[job]
fn too_few() {
    let data = fetch_data();
    summarize(data);
}

// One too many.
#[job]
fn too_many() {
    let data = fetch_data();
    fetch_data(data);
}

fn main() {}
