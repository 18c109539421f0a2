use orch::prelude::*;

#[asset]
struct Users {
    names: Vec<String>,
}

fn main() {}
