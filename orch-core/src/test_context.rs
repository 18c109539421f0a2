//! [`TestContext`]: an [`AssetContext`] for calling an asset function directly in a unit test.

use std::sync::Arc;

use crate::context::{AssetContext, RunId};
use crate::key::AssetKey;

/// Builds an [`AssetContext`] for calling an asset function directly in a unit test:
/// Dagster's `build_asset_context`, with every setting optional.
///
/// ```
/// use orch_core::TestContext;
/// let ctx = TestContext::new()
///     .key("warehouse/orders")
///     .partition("2024-01-05")
///     .resource(String::from("a database handle"))
///     .build();
/// assert_eq!(ctx.partition_key(), Some("2024-01-05"));
/// assert_eq!(*ctx.resource::<String>().unwrap(), "a database handle");
/// ctx.log().info("written by the asset");
/// assert_eq!(ctx.logs().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct TestContext {
    key: Option<AssetKey>,
    partition: Option<String>,
    resources: crate::resources::Resources,
    attempt: Option<u32>,
}

impl TestContext {
    /// Key `test_asset`, no partition, no resources, attempt 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The asset's key, as written (`name` or `prefix/name`).
    ///
    /// # Panics
    /// If `key` is not a valid key (a test's own mistake, reported at once).
    pub fn key(mut self, key: &str) -> Self {
        match key.parse() {
            Ok(key) => self.key = Some(key),
            Err(e) => panic!("TestContext::key: {e}"),
        }
        self
    }

    /// The partition being materialized.
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.partition = Some(key.into());
        self
    }

    /// Adds `value` as the resource of type `T`, for `ctx.resource::<T>()`.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Which attempt this is (default 1), for assets that behave differently on a retry.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt.max(1));
        self
    }

    /// The context.
    pub fn build(self) -> AssetContext {
        let key = self
            .key
            .unwrap_or_else(|| AssetKey::new(["test_asset"]).expect("valid literal key"));
        AssetContext::new(key, RunId::new(), self.partition, self.attempt.unwrap_or(1))
            .with_resources(Arc::new(self.resources))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_resources_works_on_a_shared_context_too() {
        let ctx = TestContext::new().key("raw/orders").build();
        let shared = ctx.clone();
        let mut resources = crate::resources::Resources::default();
        resources.insert(7u32);
        let with = shared.with_resources(Arc::new(resources));
        assert_eq!(*with.resource::<u32>().unwrap(), 7);
        assert_eq!(with.asset_key(), &"raw/orders".parse::<AssetKey>().unwrap());
        // The original is untouched.
        assert!(ctx.resource::<u32>().is_err());
    }

    #[test]
    fn a_test_context_takes_a_partition_and_an_attempt() {
        let ctx = TestContext::new().partition("eu").attempt(3).build();
        assert_eq!(ctx.partition_key(), Some("eu"));
        assert_eq!(ctx.partition_keys(), ["eu"]);
        assert_eq!(ctx.attempt(), 3);
        assert!(!ctx.is_cancelled());
    }
}
