use orch::prelude::*;

#[derive(Debug)]
struct ParseProblem;

#[asset]
fn parsed() -> Result<u32, ParseProblem> {
    Err(ParseProblem)
}

fn main() {}
