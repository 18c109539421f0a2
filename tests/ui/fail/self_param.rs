use orch::prelude::*;

struct Pipeline;

impl Pipeline {
    #[asset]
    fn users(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
