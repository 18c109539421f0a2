use orch::prelude::*;
use std::rc::Rc;

// In memory only, so this is about threads, not storage.
#[asset(io_manager = "memory")]
fn shared() -> Rc<Vec<u32>> {
    Rc::new(vec![1])
}

fn main() {}
