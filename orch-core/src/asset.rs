//! What the `#[asset]` macro registers: the [`Asset`] marker trait and the [`AssetDef`]
//! record that the runtime discovers through `inventory`.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::context::AssetContext;
use crate::key::StaticKey;

/// A materialized value, shared by every consumer without copying.
pub type Value = Arc<dyn Any + Send + Sync>;

/// The error an asset function returned, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future an async asset's generated wrapper returns.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, BoxError>> + Send + 'static>>;

/// Implemented by the marker type that `#[asset]` emits beside each asset function
/// (a braced struct with the function's name, which lives in the type namespace only).
///
/// The parameters of a downstream asset name these types, which is how the compiler checks
/// that a dependency exists, has the right type and is not part of a cycle. Users name the
/// marker to reach a typed output, e.g. `result.output::<users_cleaned>()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an asset",
    label = "this names `{Self}`, which is not an `#[asset]` function",
    note = "a parameter's name must be an `#[asset]` function in scope (its value is passed in); the context is taken as `&AssetContext`"
)]
pub trait Asset: 'static {
    /// The type the asset function produces (the `T` of `T` or `Result<T, E>`).
    ///
    /// It is `Send + Sync` for every asset that compiles; the bound is checked where the
    /// output is produced, so the error can say which asset is at fault.
    type Output: 'static;
    /// The asset's key.
    const KEY: StaticKey;
    /// `1 + ` the largest `DEPTH` among its upstream assets. Evaluating it for every asset is
    /// what turns a dependency cycle into a compile error (E0391).
    const DEPTH: usize;
}

/// How the runtime calls the user's function.
#[derive(Clone, Copy)]
pub enum Compute {
    /// A plain `fn`: run on the blocking pool. The inputs come in parameter order.
    Sync(fn(&AssetContext, &[Value]) -> Result<Value, BoxError>),
    /// An `async fn`: polled on the runtime's workers.
    Async(fn(AssetContext, Vec<Value>) -> BoxFuture),
}

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compute::Sync(_) => "Compute::Sync",
            Compute::Async(_) => "Compute::Async",
        })
    }
}

/// What an input's value becomes before the function receives it (a collected `Dynamic`
/// becomes a `Vec` of its elements).
pub type InputAdapter = fn(&Value) -> Value;

/// How an output becomes bytes and back, for I/O managers that store bytes (the default
/// filesystem manager). The macro provides one for every output type that is serde's
/// `Serialize + Deserialize`; the format is postcard (compact, fast, stable).
#[derive(Clone, Copy)]
pub struct Codec {
    /// Encodes the output (which must be of the asset's output type).
    pub encode: fn(&Value) -> Result<Vec<u8>, BoxError>,
    /// Decodes bytes written by `encode`.
    pub decode: fn(&[u8]) -> Result<Value, BoxError>,
    /// For frame outputs (`DataFrame`, `LazyFrame`): files (Arrow IPC or Parquet) written and
    /// scanned directly, which the default I/O manager prefers to bytes (Parquet).
    pub frame: Option<crate::frame::FrameCodec>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
}

/// Where an asset is defined, for error messages that say which file to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// `module_path!()` of the asset function.
    pub module: &'static str,
    /// `file!()`.
    pub file: &'static str,
    /// `line!()` of the function name.
    pub line: u32,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} ({})", self.file, self.line, self.module)
    }
}

/// Everything the `#[asset]` macro knows about one asset, as const data: what
/// [`AssetDef::from_parts`] takes. Not public API (the macro builds it); read an asset through
/// [`AssetDef`]'s accessors.
#[doc(hidden)]
#[derive(Debug)]
pub struct AssetParts {
    /// The asset's key: `key_prefix` segments, then the function name.
    pub key: StaticKey,
    /// Where it is defined.
    pub location: SourceLocation,
    /// `group = "..."`; the runtime puts ungrouped assets in the `default` group.
    pub group: Option<&'static str>,
    /// `description = "..."`, or else the doc comment.
    pub description: Option<&'static str>,
    /// `code_version = "..."`, or else a hash of the function's tokens.
    pub code_version: &'static str,
    /// `tags = { "k" = "v" }`.
    pub tags: &'static [(&'static str, &'static str)],
    /// `metadata = { "k" = "v" }`.
    pub metadata: &'static [(&'static str, &'static str)],
    /// `owners = ["team:data", "alice@example.com"]`.
    pub owners: &'static [&'static str],
    /// Upstream assets whose values are passed in, in parameter order.
    pub inputs: &'static [StaticKey],
    /// Per input, which of its partitions a partition of this asset reads
    /// (`#[partitions(...)]` on the parameter); missing entries are the identity.
    pub input_partitions: &'static [crate::partitions::PartitionMapping],
    /// Per input, what its value becomes first, adapter after adapter (a collected `Dynamic`,
    /// a part of a tuple, in an op job); missing or empty entries pass the value as it is.
    pub input_adapters: &'static [&'static [InputAdapter]],
    /// `deps = [...]`: upstream assets that must run first but whose values are not loaded.
    pub deps: &'static [StaticKey],
    /// `always_run = true`: never considered up to date (an asset that reads the outside
    /// world), so `materialize --stale` always includes it.
    pub always_run: bool,
    /// `partitions = ...`: how the asset is partitioned (resolved and checked at discovery).
    pub partitions: Option<fn() -> crate::partitions::PartitionsDefinition>,
    /// `partition_by = "date"`: the output column that splits the frame of a run over a range
    /// of partitions into its partitions; an asset without it runs one partition per run.
    pub partition_by: Option<&'static str>,
    /// `automation = eager()`: when the daemon requests it (checked at startup).
    pub automation: Option<fn() -> crate::automation::AutomationCondition>,
    /// `freshness = "1h"`: how recent its latest materialization should be.
    pub freshness: Option<fn() -> crate::automation::FreshnessPolicy>,
    /// The types of its `#[resource]` parameters.
    pub resources: &'static [crate::resources::ResourceKey],
    /// How many times to retry after a failure (0 = run once).
    pub retries: u32,
    /// `retry_delay = "500ms"`: the wait before the first retry, doubled after each further
    /// failed attempt (up to 32 times the first).
    pub retry_delay: std::time::Duration,
    /// `io_manager = "..."`: the I/O manager that stores the output; `None` is the default
    /// filesystem manager.
    pub io_manager: Option<&'static str>,
    /// How the output becomes bytes (`None` for `io_manager = "memory"` and custom managers).
    /// A function, because which codec an output type gets (the frame codec for a frame, serde
    /// otherwise) is decided by the type itself, aliases included, which const code cannot do;
    /// read it with [`AssetDef::storage_codec`].
    pub codec: Option<fn() -> Codec>,
    /// The output type as written, for display.
    pub output_type: &'static str,
    /// How to call it.
    pub compute: Compute,
}

/// One registered asset, as the `#[asset]` macro describes it: its key, where it is defined,
/// its inputs, partitions, retries, I/O manager and how to call it. Read through accessors;
/// the macro builds it.
#[derive(Debug)]
#[non_exhaustive]
pub struct AssetDef {
    parts: AssetParts,
}

impl AssetDef {
    /// What the macro generates: the asset from its parts.
    #[doc(hidden)]
    pub const fn from_parts(parts: AssetParts) -> AssetDef {
        AssetDef { parts }
    }

    /// Everything, for tests that build a variant of an asset.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> &AssetParts {
        &self.parts
    }

    /// The asset's key: `key_prefix` segments, then the function name.
    pub fn key(&self) -> &StaticKey {
        &self.parts.key
    }

    /// Where it is defined.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }

    /// `group = "..."`; `None` for an ungrouped asset (the graph puts it in `default`).
    pub fn group(&self) -> Option<&'static str> {
        self.parts.group
    }

    /// `description = "..."`, or else the doc comment.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// `code_version = "..."`, or else a hash of the function's tokens.
    pub fn code_version(&self) -> &'static str {
        self.parts.code_version
    }

    /// `tags = { "k" = "v" }`.
    pub fn tags(&self) -> &'static [(&'static str, &'static str)] {
        self.parts.tags
    }

    /// `metadata = { "k" = "v" }`.
    pub fn metadata(&self) -> &'static [(&'static str, &'static str)] {
        self.parts.metadata
    }

    /// `owners = [...]`.
    pub fn owners(&self) -> &'static [&'static str] {
        self.parts.owners
    }

    /// Upstream assets whose values are passed in, in parameter order.
    pub fn inputs(&self) -> &'static [StaticKey] {
        self.parts.inputs
    }

    /// Per input, which of its partitions a partition of this asset reads; missing entries
    /// are the identity.
    pub fn input_partitions(&self) -> &'static [crate::partitions::PartitionMapping] {
        self.parts.input_partitions
    }

    /// Per input, what its value becomes first, adapter after adapter; missing or empty
    /// entries pass it as it is.
    pub fn input_adapters(&self) -> &'static [&'static [InputAdapter]] {
        self.parts.input_adapters
    }

    /// `deps = [...]`: upstream assets that run first but whose values are not loaded.
    pub fn deps(&self) -> &'static [StaticKey] {
        self.parts.deps
    }

    /// `always_run = true`: never up to date.
    pub fn always_run(&self) -> bool {
        self.parts.always_run
    }

    /// `partitions = ...`, as the function that builds the definition.
    pub fn partitions(&self) -> Option<fn() -> crate::partitions::PartitionsDefinition> {
        self.parts.partitions
    }

    /// `partition_by = "column"`.
    pub fn partition_by(&self) -> Option<&'static str> {
        self.parts.partition_by
    }

    /// `automation = ...`: when the daemon requests it.
    pub fn automation_condition(&self) -> Option<crate::automation::AutomationCondition> {
        self.parts.automation.map(|condition| condition())
    }

    /// `freshness = ...`: how recent its latest materialization should be.
    pub fn freshness_policy(&self) -> Option<crate::automation::FreshnessPolicy> {
        self.parts.freshness.map(|policy| policy())
    }

    /// The types of its `#[resource]` parameters.
    pub fn resources(&self) -> &'static [crate::resources::ResourceKey] {
        self.parts.resources
    }

    /// How many times to retry after a failure (0 = run once).
    pub fn retries(&self) -> u32 {
        self.parts.retries
    }

    /// The wait before the first retry (doubled after each further failed attempt).
    pub fn retry_delay(&self) -> std::time::Duration {
        self.parts.retry_delay
    }

    /// `io_manager = "..."`; `None` is the default filesystem manager.
    pub fn io_manager(&self) -> Option<&'static str> {
        self.parts.io_manager
    }

    /// How the default I/O manager stores the output, if it does.
    pub fn storage_codec(&self) -> Option<Codec> {
        self.parts.codec.map(|codec| codec())
    }

    /// The output type as written, for display.
    pub fn output_type(&self) -> &'static str {
        self.parts.output_type
    }

    /// How to call it.
    pub fn compute(&self) -> Compute {
        self.parts.compute
    }

    /// Whether the function is `async`.
    pub fn is_async(&self) -> bool {
        matches!(self.parts.compute, Compute::Async(_))
    }
}

inventory::collect!(AssetDef);

/// Every asset registered in this binary, in link order.
pub fn registered() -> impl Iterator<Item = &'static AssetDef> {
    inventory::iter::<AssetDef>.into_iter()
}
