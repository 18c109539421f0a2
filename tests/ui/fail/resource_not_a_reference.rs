use orch::prelude::*;

struct Db;

#[asset]
fn orders(#[resource] db: Db) -> u32 {
    let _ = db;
    1
}

#[asset]
fn totals(orders: &u32, #[resource] conn: &std::rc::Rc<u32>) -> u32 {
    orders + **conn
}

fn main() {}
