use orch::prelude::*;

#[asset]
fn rows() -> Vec<u32> {
    vec![3, 1, 2]
}

#[asset]
fn sorted(rows: &mut Vec<u32>) -> Vec<u32> {
    rows.sort();
    rows.clone()
}

#[asset]
fn logged(ctx: &mut AssetContext) -> u32 {
    ctx.log().info("x");
    1
}

fn main() {}
