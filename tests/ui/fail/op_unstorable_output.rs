use orch::prelude::*;

struct Connection;

// The default I/O manager stores every step's output with its run: it must be serde.
#[op]
fn connect() -> Connection {
    Connection
}

#[op]
fn not_shareable() -> std::rc::Rc<u32> {
    std::rc::Rc::new(1)
}

fn main() {}
