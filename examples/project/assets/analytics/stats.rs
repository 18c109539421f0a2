//! Statistics over the cleaned users.

use orch::prelude::*;

use crate::assets::User;
use crate::assets::transforms::cleaning::*; // a glob brings `users_cleaned` in

/// Age statistics.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgeStats {
    /// How many users.
    pub count: usize,
    /// Mean age.
    pub mean_age: f64,
    /// Oldest age.
    pub max_age: u32,
}

/// Age statistics of the cleaned users.
#[asset(group = "analytics")]
pub fn user_stats(users_cleaned: &Vec<User>) -> AgeStats {
    let count = users_cleaned.len();
    let total: u32 = users_cleaned.iter().map(|u| u.age).sum();
    AgeStats {
        count,
        mean_age: if count == 0 {
            0.0
        } else {
            f64::from(total) / count as f64
        },
        max_age: users_cleaned.iter().map(|u| u.age).max().unwrap_or(0),
    }
}
