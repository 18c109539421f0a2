//! Users from the (simulated) API.

use orch::prelude::*;

use crate::assets::User;

/// Users fetched from the API, unvalidated.
#[asset(group = "sources", owners = ["team:ingest"], tags(source = "api"), retries = 2)]
pub fn api_users_raw(ctx: &AssetContext) -> Vec<User> {
    let users: Vec<User> = (1..=20)
        .map(|id| User {
            id,
            name: format!("  user{id} "),
            email: (id % 4 != 0).then(|| format!("user{id}@example.com")),
            age: 18 + (id * 7) % 50,
        })
        .collect();
    ctx.log()
        .info(format_args!("fetched {} users", users.len()));
    ctx.add_output_metadata("rows", users.len());
    users
}
