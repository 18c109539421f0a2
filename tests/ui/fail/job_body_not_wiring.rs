use orch::prelude::*;

#[op]
fn fetch_data() -> Vec<u32> {
    vec![1]
}

#[op]
fn count(data: &Vec<u32>) -> usize {
    data.len()
}

// Each statement that is not wiring is an error saying what a job body may contain.
#[job]
fn pipeline() {
    let data = fetch_data();
    for _ in 0..3 {
        count(data);
    }
    if true {
        count(data);
    }
    count(vec![1, 2]);
    count(&data);
    let pair = (data, data);
    println!("wired");
}

fn main() {}
