use orch::prelude::*;

#[asset]
fn parsed() -> Result<u32, String> {
    "3".parse::<u32>().map_err(|e| e.to_string())
}

fn main() {}
