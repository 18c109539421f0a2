use orch::prelude::*;

#[derive(Clone, Debug)]
pub struct Report {
    pub lines: Vec<String>,
}

// The default I/O manager stores outputs as bytes: `Report` needs serde's derives (or
// `io_manager = "memory"`).
#[asset]
fn report() -> Report {
    Report { lines: Vec::new() }
}

fn main() {}
