//! Clean the raw users.

use orch::prelude::*;

use crate::assets::User;
use crate::assets::sources::api::api_users_raw;

/// Why a user record is rejected.
#[derive(Debug)]
pub struct InvalidUsers(pub usize);

impl std::fmt::Display for InvalidUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} users have an empty name", self.0)
    }
}

impl std::error::Error for InvalidUsers {}

/// Users with trimmed names and an email address.
#[asset(group = "transforms")]
pub fn users_cleaned(
    ctx: &AssetContext,
    api_users_raw: &Vec<User>,
) -> Result<Vec<User>, InvalidUsers> {
    let empty = api_users_raw
        .iter()
        .filter(|u| u.name.trim().is_empty())
        .count();
    if empty > 0 {
        return Err(InvalidUsers(empty));
    }
    let cleaned: Vec<User> = api_users_raw
        .iter()
        .filter(|u| u.email.is_some())
        .map(|u| User {
            name: u.name.trim().to_owned(),
            ..u.clone()
        })
        .collect();
    ctx.add_output_metadata("dropped", api_users_raw.len() - cleaned.len());
    Ok(cleaned)
}
