use orch::prelude::*;

#[op]
fn fetch_data() -> Vec<u32> {
    vec![1]
}

#[op]
fn count(data: &Vec<u32>) -> usize {
    data.len()
}

// A second call of an op is `count_2`; naming another step so clashes, and a name must be a
// valid step name.
#[job]
fn pipeline() {
    let data = fetch_data();
    count(data);
    count(data).named("count_2");
    count(data);
    count(data).named("has space");
}

#[job]
fn with_params(limit: u32) -> u32 {
    limit
}

fn main() {}
