use orch::prelude::*;

#[asset]
fn ping(pong: &u32) -> u32 {
    *pong
}

#[asset]
fn pong(ping: &u32) -> u32 {
    *ping
}

fn main() {}
