//! Ops and op jobs, the traditional side of orch: an `#[op]` is a step whose inputs are wired
//! by hand in a `#[job]` body (Dagster's `@op` and `@job`). The compiler type-checks the
//! wiring; the runtime turns a job into a graph of steps that the asset executor runs.
//!
//! What lives here is the model: [`OpDef`] (what `#[op]` registers), [`OpJobDef`] (what `#[job]`
//! registers), the [`JobBuilder`] a job body becomes, the [`OpContext`] an op receives and the
//! [`RunConfig`] its `#[config]` parameter is read from.

mod config;
mod context;
mod dynamic;
mod job;
mod mapped;

use std::time::Duration;

pub use config::{ConfigError, RunConfig};
pub use context::{OpContext, OpTestContext};
pub use dynamic::{Collectable, Dynamic, DynamicOutput, MappingKeyError, collect_value};
pub use job::{
    Callable, GraphOutput, Handle, InputAt, JobBuilder, JobNode, OpJob, OpJobDef, OpJobParts,
    OpJobRegistration, Part, TupleOutput, Wire, check_input, element, graph_output,
    registered_op_jobs, split_output,
};

use crate::asset::{Codec, Compute, SourceLocation};
pub use crate::context::ElementCheckpoints;
use crate::resources::ResourceKey;

/// Implemented by the marker type `#[op]` emits beside each op function (a braced struct with
/// the function's name). A job body's calls name it; `execute_job` results take it
/// (`result.output::<process_data>()`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an op",
    label = "this calls `{Self}`, which is not an `#[op]` function",
    note = "a job body calls `#[op]` functions (and `#[graph]`s); compute other values inside an op"
)]
pub trait Op: 'static {
    /// What the op produces (the `T` of `T`, `Result<T, E>` or `Option<T>`).
    type Output: 'static;
    /// Its definition.
    const DEF: &'static OpDef;
}

/// What an op's output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpOutput {
    /// Always a value.
    Value,
    /// `Option<T>`: `None` produces nothing, and everything downstream of it is not run (the
    /// run still succeeds).
    Optional,
}

/// Everything the `#[op]` macro knows about one op. Not public API (the macro builds it);
/// read an op through [`OpDef`]'s accessors.
#[doc(hidden)]
#[derive(Debug)]
pub struct OpParts {
    /// The function's name.
    pub name: &'static str,
    /// Where it is defined.
    pub location: SourceLocation,
    /// `description = ".."`, or else the doc comment.
    pub description: Option<&'static str>,
    /// `code_version = ".."`, or else a hash of the function's tokens.
    pub code_version: &'static str,
    /// `tags = { "k" = "v" }`.
    pub tags: &'static [(&'static str, &'static str)],
    /// The inputs, in parameter order: name and type as written.
    pub inputs: &'static [(&'static str, &'static str)],
    /// The output type as written (the `T`).
    pub output_type: &'static str,
    /// Whether the output is optional.
    pub output: OpOutput,
    /// The types of its `#[resource]` parameters.
    pub resources: &'static [ResourceKey],
    /// Its `#[config]` parameter's type, and a check that an op's table deserializes into it.
    pub config: Option<ConfigSchema>,
    /// How many times to retry after a failure.
    pub retries: u32,
    /// The wait before the first retry (doubled after each further failed attempt).
    pub retry_delay: Duration,
    /// `io_manager = ".."`; `None` is the default filesystem manager.
    pub io_manager: Option<&'static str>,
    /// How the default I/O manager stores the output.
    pub codec: Option<fn() -> Codec>,
    /// How to call it (the same shape as an asset's: a context and the inputs in order).
    pub compute: Compute,
    /// For an op mapped over a `Dynamic` in a job (`files.map(process)`): which input is the
    /// element, and the op itself. The step runs the op once per element, each retried on
    /// its own.
    pub mapped: Option<Mapped>,
}

/// What a step mapped over a `Dynamic` maps.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Mapped {
    /// The input that is the element.
    pub input: usize,
    /// The op called per element (its codec stores one element's output).
    pub op: &'static OpDef,
}

/// An op's config type, for checking a run's config before anything runs.
#[derive(Clone, Copy, Debug)]
pub struct ConfigSchema {
    /// The type as written.
    pub type_name: &'static str,
    /// Deserializes op `op`'s table (`None`: the config has none) into the type, and says
    /// where it does not fit.
    pub check: fn(op: &str, table: Option<&serde_json::Value>) -> Result<(), ConfigError>,
}

/// One op, as `#[op]` describes it.
#[derive(Debug)]
#[non_exhaustive]
pub struct OpDef {
    parts: OpParts,
}

impl OpDef {
    /// What the macro generates.
    #[doc(hidden)]
    pub const fn from_parts(parts: OpParts) -> OpDef {
        OpDef { parts }
    }

    /// The op's name (its function's).
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// Where it is defined.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }

    /// Its description.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// Its code version.
    pub fn code_version(&self) -> &'static str {
        self.parts.code_version
    }

    /// Its tags.
    pub fn tags(&self) -> &'static [(&'static str, &'static str)] {
        self.parts.tags
    }

    /// Its inputs, in parameter order: name and type as written.
    pub fn inputs(&self) -> &'static [(&'static str, &'static str)] {
        self.parts.inputs
    }

    /// The output type as written.
    pub fn output_type(&self) -> &'static str {
        self.parts.output_type
    }

    /// Whether the output is optional.
    pub fn output(&self) -> OpOutput {
        self.parts.output
    }

    /// The types of its `#[resource]` parameters.
    pub fn resources(&self) -> &'static [ResourceKey] {
        self.parts.resources
    }

    /// Its config type, if it takes `#[config]`.
    pub fn config(&self) -> Option<ConfigSchema> {
        self.parts.config
    }

    /// How many times to retry after a failure.
    pub fn retries(&self) -> u32 {
        self.parts.retries
    }

    /// The wait before the first retry.
    pub fn retry_delay(&self) -> Duration {
        self.parts.retry_delay
    }

    /// `io_manager = ".."`.
    pub fn io_manager(&self) -> Option<&'static str> {
        self.parts.io_manager
    }

    /// How the default I/O manager stores the output.
    pub fn codec(&self) -> Option<fn() -> Codec> {
        self.parts.codec
    }

    /// How to call it.
    pub fn compute(&self) -> Compute {
        self.parts.compute
    }

    /// For a call mapped over a `Dynamic` (`files.map(process)`): which input is the element.
    pub fn mapped(&self) -> Option<usize> {
        self.parts.mapped.map(|m| m.input)
    }

    /// For a call mapped over a `Dynamic`: the op called per element.
    pub fn element_op(&self) -> Option<&'static OpDef> {
        self.parts.mapped.map(|m| m.op)
    }
}

/// The value of an optional output that was `None`: the executor records the op as done and
/// does not run what depends on it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct NoOutput;

/// Checks op `op`'s table against config type `T` (what [`ConfigSchema::check`] points at).
#[doc(hidden)]
pub fn check_config<T: serde::de::DeserializeOwned>(
    op: &str,
    table: Option<&serde_json::Value>,
) -> Result<(), ConfigError> {
    let empty = serde_json::Value::Object(Default::default());
    config::deserialize::<T>(op, table.unwrap_or(&empty)).map(|_| ())
}
