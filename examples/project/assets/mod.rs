//! Every asset of the pipeline, one module per concern.

pub mod analytics;
pub mod exports;
pub mod sources;
pub mod transforms;

/// A user record as the API returns it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Unique id.
    pub id: u32,
    /// Display name, possibly with stray whitespace.
    pub name: String,
    /// Email, possibly missing.
    pub email: Option<String>,
    /// Age in years.
    pub age: u32,
}
