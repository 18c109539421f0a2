use orch::prelude::*;

#[op]
fn split_rows() -> (Vec<i64>, Vec<String>) {
    (vec![1], vec!["x".to_owned()])
}

#[op]
fn count() -> u32 {
    3
}

/// Not `Clone`: a part its consumers cannot each receive.
struct Connection;

#[op(io_manager = "memory")]
fn connect() -> (Connection, u8) {
    (Connection, 1)
}

#[op]
fn sum_rows(rows: &Vec<i64>) -> i64 {
    rows.iter().sum()
}

// A tuple output splits into one handle per part, each typed; anything else is an error.
#[job]
fn pipeline() {
    let (a, b) = count();
    let (rows, errors, extra) = split_rows();
    let (errors2, rows2) = split_rows().named("second");
    sum_rows(rows2);
    let (conn, n) = connect();
    let (ref r, s) = split_rows().named("third");
}

fn main() {}
