use orch::prelude::*;

#[asset]
fn logged(ctx: &AssetContext, again: &AssetContext) -> u32 {
    ctx.log().info("once");
    again.log().info("twice");
    1
}

fn main() {}
