use orch::prelude::*;

#[op]
fn fetch_data() -> Vec<u32> {
    vec![1]
}

#[op]
fn summarize(data: &Vec<u32>) -> String {
    format!("{data:?}")
}

#[op]
fn publish(data: &Vec<u32>, summary: &String) -> usize {
    data.len() + summary.len()
}

// A handle of the wrong type is an error at the argument, naming the op, the input and the
// op that produced the handle.
#[job]
fn pipeline() {
    let data = fetch_data();
    let summary = summarize(data);
    publish(summary, data);
}

fn main() {}
