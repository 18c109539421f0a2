use orch::prelude::*;
use std::rc::Rc;

#[asset]
fn shared() -> Rc<Vec<u32>> {
    Rc::new(vec![1])
}

fn main() {}
