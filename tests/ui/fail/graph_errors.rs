use orch::prelude::*;

#[op]
fn parse(raw: &String) -> Vec<u32> {
    raw.bytes().map(u32::from).collect()
}

#[op]
fn count(values: &Vec<u32>) -> usize {
    values.len()
}

// The last call produces `usize`, but the graph declares `Vec<u32>`.
#[graph]
fn wrong_output(raw: String) -> Vec<u32> {
    count(parse(raw))
}

// An output is declared, but the body ends with a statement.
#[graph]
fn no_tail(raw: String) -> usize {
    count(parse(raw));
}

#[op]
fn source() -> u32 {
    1
}

// A graph's inputs are checked at the caller's arguments like an op's.
#[graph]
fn takes_text(raw: String) -> usize {
    count(parse(raw))
}

#[job]
fn pipeline() {
    takes_text(source());
}

fn main() {}
