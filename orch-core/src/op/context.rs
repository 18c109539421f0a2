//! [`OpContext`]: what an op may ask of its run (Dagster's `OpExecutionContext`), and the
//! builder that makes one for a unit test (Dagster's `build_op_context`).

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{ConfigError, RunConfig};
use crate::context::{AssetContext, AssetLogger, LogLine, MetadataValue, RunId, RunScope};
use crate::key::AssetKey;
use crate::resources::{MissingResource, Resources};

/// What an op function may ask of the run: its name and job, the run id, its config, its
/// resources, a logger whose lines are kept with the op's events, the attempt, and whether
/// the run was canceled. Take it as a parameter of type `&OpContext`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OpContext {
    inner: AssetContext,
}

impl OpContext {
    /// The context the runtime hands an op: the step's context, seen as an op's.
    #[doc(hidden)]
    pub fn from_step(step: &AssetContext) -> Self {
        OpContext {
            inner: step.clone(),
        }
    }

    /// A builder for calling an op function directly in a unit test, with config and
    /// resources.
    ///
    /// ```
    /// use orch_core::op::OpContext;
    /// let ctx = OpContext::for_test()
    ///     .op("fetch_data")
    ///     .resource(String::from("a client"))
    ///     .config(serde_json::json!({ "limit": 3 }))
    ///     .build();
    /// assert_eq!(ctx.op_name(), "fetch_data");
    /// assert_eq!(*ctx.resource::<String>().unwrap(), "a client");
    /// ctx.log().info("fetched");
    /// assert_eq!(ctx.logs()[0].message, "fetched");
    /// ```
    pub fn for_test() -> OpTestContext {
        OpTestContext::default()
    }

    /// The op's name in its job (`process_data`, or `process_data_2` for a second call).
    pub fn op_name(&self) -> &str {
        self.key_segments().1
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        self.key_segments().0
    }

    fn key_segments(&self) -> (&str, &str) {
        match self.inner.asset_key().path() {
            [job, .., op] => (job, op),
            [op] => ("", op),
            [] => ("", ""),
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        self.inner.run_id()
    }

    /// This op's config, as `T` (what a `#[config]` parameter receives). A run without a
    /// table for the op reads an empty table.
    pub fn op_config<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        match self.inner.run_config() {
            Some(config) => config.op_config(self.op_name()),
            None => RunConfig::empty().op_config(self.op_name()),
        }
    }

    /// The resource of type `T`.
    pub fn resource<T: Send + Sync + 'static>(&self) -> Result<&T, MissingResource> {
        self.inner.resource::<T>()
    }

    /// The logger; lines are kept with the op's events and shown in `run show` and the UI.
    pub fn log(&self) -> AssetLogger<'_> {
        self.inner.log()
    }

    /// Which attempt this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.inner.attempt()
    }

    /// In an op mapped over a [`Dynamic`](super::Dynamic) (`files.map(process)`), the key of
    /// the element this call processes (Dagster's `get_mapping_key`); `None` otherwise.
    pub fn mapping_key(&self) -> Option<&str> {
        self.inner.mapping_key()
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Attaches metadata to the op's output (recorded with its event).
    pub fn add_output_metadata(&self, label: impl Into<String>, value: impl Into<MetadataValue>) {
        self.inner.add_output_metadata(label, value);
    }

    /// The lines logged so far (for tests).
    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.logs()
    }

    /// The metadata attached so far (for tests).
    pub fn output_metadata(&self) -> Vec<(String, MetadataValue)> {
        self.inner.output_metadata()
    }
}

/// Builds an [`OpContext`] for a unit test; see [`OpContext::for_test`].
#[derive(Debug, Default)]
pub struct OpTestContext {
    job: Option<String>,
    op: Option<String>,
    resources: Resources,
    config: Option<serde_json::Value>,
    attempt: Option<u32>,
    mapping_key: Option<String>,
}

impl OpTestContext {
    /// The op's name (default `test_op`).
    pub fn op(mut self, name: &str) -> Self {
        self.op = Some(name.to_owned());
        self
    }

    /// The job's name (default `test_job`).
    pub fn job(mut self, name: &str) -> Self {
        self.job = Some(name.to_owned());
        self
    }

    /// Adds `value` as the resource of type `T` (a mock, say).
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// The op's config table, for [`OpContext::op_config`].
    pub fn config(mut self, table: serde_json::Value) -> Self {
        self.config = Some(table);
        self
    }

    /// Which attempt this is (default 1).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt.max(1));
        self
    }

    /// The element a mapped op processes ([`OpContext::mapping_key`]); its log lines are
    /// marked with it.
    pub fn mapping_key(mut self, key: impl Into<String>) -> Self {
        self.mapping_key = Some(key.into());
        self
    }

    /// The context.
    ///
    /// # Panics
    /// If a name is not a valid key segment (a test's own mistake, reported at once).
    pub fn build(self) -> OpContext {
        let job = self.job.unwrap_or_else(|| "test_job".to_owned());
        let op = self.op.unwrap_or_else(|| "test_op".to_owned());
        let key = match AssetKey::new([job, op.clone()]) {
            Ok(key) => key,
            Err(e) => panic!("OpContext::for_test: {e}"),
        };
        let config = self
            .config
            .map(|table| Arc::new(RunConfig::empty().with_op(&op, table)));
        let scope = RunScope::new(RunId::new(), None).with_config(config);
        let attempt = self.attempt.unwrap_or(1);
        let step =
            AssetContext::new(key, scope, None, attempt).with_resources(Arc::new(self.resources));
        let step = match self.mapping_key {
            Some(element) => step.for_element(Arc::from(element), attempt),
            None => step,
        };
        OpContext { inner: step }
    }
}
