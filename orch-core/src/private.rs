//! Not public API: the items the `#[asset]` macro's generated code uses, reached through
//! `::orch::__private`. Their names and shapes may change in any release.

use std::any::Any;
use std::marker::PhantomData;

pub use crate::asset::{
    Asset, AssetDef, AssetParts, BoxError, BoxFuture, Codec, Compute, SourceLocation, Value,
};
pub use crate::automation::{
    AutomationCondition, DefaultStatus, FreshnessPolicy, IntoScheduleDecision, Job, JobDef,
    Schedule, ScheduleContext, ScheduleDecision, ScheduleDef, ScheduleParts, ScheduleTarget,
    SensorDef, SensorKind, SensorParts, conditions, freshness,
};
pub use crate::check::{
    CheckDef, CheckParts, CheckResult, CheckSeverity, downcast as check_downcast,
};
pub use crate::context::AssetContext;
pub use crate::error::{error_chain, panic_text, retry_backoff};
pub use crate::key::StaticKey;
pub use crate::op::{
    Callable, ConfigSchema, Handle, InputAt, JobBuilder, NoOutput, Op, OpContext, OpDef, OpJob,
    OpJobDef, OpJobParts, OpJobRegistration, OpOutput, OpParts, Wire, check_config, check_input,
    element, graph_output, split_output,
};
pub use crate::partitions::{self, PartitionMapping, PartitionsDefinition};
pub use crate::resources::ResourceKey;
/// "Did you mean": the runtime uses it for names outside the graph (jobs, schedules).
pub use crate::suggest::closest;

/// The resource of type `T` for a `#[resource]` parameter, or an error the run reports.
pub fn resource<T: Send + Sync + 'static>(
    ctx: &AssetContext,
) -> Result<&T, crate::asset::BoxError> {
    ctx.resource::<T>().map_err(Into::into)
}
pub use inventory;

/// `max` usable in a const initializer (the macro folds a list of upstream depths with it).
pub const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Checks that a parameter's type is what its upstream asset produces.
/// `Up` is the upstream asset, `Down` the asset being defined, `Produced` the upstream's
/// output type, and `Self` the type the parameter asks for.
#[diagnostic::on_unimplemented(
    message = "asset `{Up}` produces `{Produced}`, but parameter `{Up}` of asset `{Down}` expects `{Self}`",
    label = "expected `{Produced}` (or `&{Produced}`) here",
    note = "a parameter takes its upstream's output by reference (`&T`) or by value (`T`, cloned)"
)]
pub trait InputOf<Up, Down, Produced> {}
#[diagnostic::do_not_recommend]
impl<Up, Down, T> InputOf<Up, Down, T> for T {}

/// Checks that a by-value parameter's type can be cloned out of the shared output.
#[diagnostic::on_unimplemented(
    message = "parameter `{Up}` of asset `{Down}` takes `{Self}` by value, but `{Self}` is not `Clone`",
    label = "take it by reference instead: `&{Self}`",
    note = "an upstream's output is shared by every consumer; a by-value parameter gets a clone"
)]
pub trait CloneInput<Up, Down>: Sized {
    /// Clones the value.
    fn clone_input(&self) -> Self;
}
#[diagnostic::do_not_recommend]
impl<Up, Down, T: Clone> CloneInput<Up, Down> for T {
    fn clone_input(&self) -> Self {
        self.clone()
    }
}

/// Checks that an asset's output can be shared across the executor's threads.
#[diagnostic::on_unimplemented(
    message = "the output of asset `{Down}` is `{Self}`, which cannot be shared between threads",
    label = "`{Self}` must be `Send + Sync + 'static`",
    note = "the executor runs assets in parallel and hands each output to every consumer; use `Arc` instead of `Rc`, `Mutex` instead of `RefCell`, and owned data instead of borrows"
)]
pub trait SendOutput<Down> {
    /// Wraps the output for sharing.
    fn into_value(self) -> Value;
}
#[diagnostic::do_not_recommend]
impl<Down, T: Send + Sync + 'static> SendOutput<Down> for T {
    fn into_value(self) -> Value {
        std::sync::Arc::new(self)
    }
}

/// Checks that a `Result` output's error can be reported.
#[diagnostic::on_unimplemented(
    message = "asset `{Down}` returns `Result<_, {Self}>`, but `{Self}` is not an error type orch can report",
    label = "the error type must convert into `Box<dyn std::error::Error + Send + Sync>`",
    note = "use any `E: std::error::Error + Send + Sync + 'static`, `anyhow::Error`, or `Box<dyn Error + Send + Sync>`"
)]
pub trait ReportableError<Down> {
    /// Boxes the error.
    fn into_box_error(self) -> BoxError;
}
#[diagnostic::do_not_recommend]
impl<Down, E: Into<BoxError>> ReportableError<Down> for E {
    fn into_box_error(self) -> BoxError {
        self.into()
    }
}

/// Checks that an op's by-value input can be cloned out of the shared output.
#[diagnostic::on_unimplemented(
    message = "op `{Down}` takes `{Self}` by value, but `{Self}` is not `Clone`",
    label = "take it by reference instead: `&{Self}`",
    note = "an op's output is shared by every op that takes it; a by-value input gets a clone"
)]
pub trait CloneOpInput<Down>: Sized {
    /// Clones the value.
    fn clone_op_input(&self) -> Self;
}
#[diagnostic::do_not_recommend]
impl<Down, T: Clone> CloneOpInput<Down> for T {
    fn clone_op_input(&self) -> Self {
        self.clone()
    }
}

/// Clones an op's by-value input; see [`CloneOpInput`].
pub fn clone_op_input<T: CloneOpInput<Down>, Down>(value: &T) -> T {
    value.clone_op_input()
}

/// Calling it asserts [`InputOf`], with the caller's span (the macro spans each call on the
/// token to fix).
pub const fn assert_input<T: InputOf<Up, Down, Produced> + ?Sized, Up, Down, Produced>() {}
/// Clones a by-value input out of the shared output; see [`CloneInput`].
pub fn clone_input<T: CloneInput<Up, Down>, Up, Down>(value: &T) -> T {
    value.clone_input()
}
/// Wraps an output for sharing; see [`SendOutput`].
pub fn share<T: SendOutput<Down>, Down>(value: T) -> Result<Value, BoxError> {
    Ok(value.into_value())
}

/// Converts a `Result` output, boxing its error.
pub fn share_result<T: SendOutput<Down>, E: ReportableError<Down>, Down>(
    result: Result<T, E>,
) -> Result<Value, BoxError> {
    match result {
        Ok(v) => Ok(v.into_value()),
        Err(e) => Err(e.into_box_error()),
    }
}

/// An input as the parameter's type: the shared output itself, or a conversion of it (a
/// `DataFrame` taken as a `LazyFrame`, or the other way round).
pub enum Held<'a, T> {
    /// The shared output.
    Shared(&'a T),
    /// Converted for this consumer.
    Converted(Box<T>),
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Shared(t) => t,
            Held::Converted(t) => t,
        }
    }
}

/// Input `index` as the parameter's type. The types are checked at compile time, so a
/// mismatch here means the runtime was handed a wrong value (e.g. an injected value of the
/// wrong type); it is reported as the asset's error, never a panic.
pub fn input<'a, T: Any>(
    inputs: &'a [Value],
    index: usize,
    upstream: &str,
) -> Result<Held<'a, T>, BoxError> {
    let value = inputs.get(index).ok_or_else(|| -> BoxError {
        format!("internal error: input `{upstream}` (#{index}) was not provided").into()
    })?;
    if let Some(t) = value.downcast_ref::<T>() {
        return Ok(Held::Shared(t));
    }
    #[cfg(feature = "polars")]
    if let Some(converted) =
        crate::frame::polars_frames::convert(value, std::any::TypeId::of::<T>())
    {
        let converted = converted.map_err(|e| -> BoxError {
            format!("could not read input `{upstream}`: {e}").into()
        })?;
        if let Ok(t) = converted.downcast::<T>() {
            return Ok(Held::Converted(t));
        }
    }
    Err(format!(
        "input `{upstream}` has the wrong type: expected `{}`",
        std::any::type_name::<T>()
    )
    .into())
}

/// Checks that the default I/O manager can store an asset's output, and provides its codec.
#[diagnostic::on_unimplemented(
    message = "the output of asset `{Down}` is `{Self}`, which the default I/O manager cannot store",
    label = "`{Self}` must implement serde's `Serialize` and `Deserialize`",
    note = "derive them (`#[derive(serde::Serialize, serde::Deserialize)]`), or keep the output in memory only with `#[asset(io_manager = \"memory\")]`"
)]
pub trait Storable<Down>: Sized {
    /// The output's codec.
    const CODEC: Codec;
}
#[diagnostic::do_not_recommend]
impl<Down, T> Storable<Down> for T
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    const CODEC: Codec = Codec {
        encode: encode::<T>,
        decode: decode::<T>,
        frame: None,
    };
}

/// A polars frame output (`DataFrame`, `LazyFrame`, or an alias of either), stored as
/// a frame file (Arrow IPC or Parquet); provides its codec.
pub trait FrameStorable<Down>: Sized {
    /// The output's codec.
    const CODEC: Codec;
}
#[cfg(feature = "polars")]
impl<Down> FrameStorable<Down> for polars::prelude::DataFrame {
    const CODEC: Codec = crate::frame::polars_frames::CODEC;
}
#[cfg(feature = "polars")]
impl<Down> FrameStorable<Down> for polars::prelude::LazyFrame {
    const CODEC: Codec = crate::frame::polars_frames::LAZY_CODEC;
}

/// A frame that `partition_by` can split by a column: the output of asset `Down`. Implemented
/// for the frame types themselves, so an alias (`type Orders = DataFrame;`) qualifies.
#[diagnostic::on_unimplemented(
    message = "the output of asset `{Down}` is `{Self}`, but `partition_by` splits a frame by one of its columns",
    label = "not a `DataFrame` or `LazyFrame`",
    note = "return a `DataFrame` or `LazyFrame` (or an alias of one), or drop `partition_by`"
)]
pub trait SplitFrame<Down> {}
#[cfg(feature = "polars")]
impl<Down> SplitFrame<Down> for polars::prelude::DataFrame {}
#[cfg(feature = "polars")]
impl<Down> SplitFrame<Down> for polars::prelude::LazyFrame {}
/// Calling it asserts [`SplitFrame`] at the caller's span (the asset's output type).
pub const fn assert_split_frame<T: SplitFrame<Down> + ?Sized, Down>() {}

/// A frame that orch can concatenate: an input of asset `Down` reading several partitions
/// (`#[partitions(last = N)]`).
#[diagnostic::on_unimplemented(
    message = "an input of asset `{Down}` reads several partitions (`#[partitions(last = N)]`), which orch concatenates, but its type is `{Self}`",
    label = "not a `DataFrame` or `LazyFrame`",
    note = "take the input as a `DataFrame` or `LazyFrame` (or an alias of one), or read one partition"
)]
pub trait ConcatFrames<Down> {}
#[cfg(feature = "polars")]
impl<Down> ConcatFrames<Down> for polars::prelude::DataFrame {}
#[cfg(feature = "polars")]
impl<Down> ConcatFrames<Down> for polars::prelude::LazyFrame {}
/// Calling it asserts [`ConcatFrames`] at the caller's span (the parameter's type).
pub const fn assert_concat_frames<T: ConcatFrames<Down> + ?Sized, Down>() {}

/// Chooses the codec of output type `T` of asset `Down` by the type itself, so an alias
/// (`type Orders = DataFrame;`) is stored as what it is. Autoref specialization: the generated
/// code calls `(&&CodecProbe::<T, Down>::new()).kind().codec()`; method lookup tries
/// [`ProbeFrame`] first (implemented only when `T` is a polars frame) and falls back to
/// [`ProbeSerde`], whose `codec()` then requires [`Storable`], so an unstorable type still gets
/// `Storable`'s message, at the output type.
pub struct CodecProbe<T, Down>(PhantomData<fn() -> (T, Down)>);

impl<T, Down> CodecProbe<T, Down> {
    /// The probe.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        CodecProbe(PhantomData)
    }
}

/// `T` is a frame: stored as a frame file.
pub struct FrameKind<T, Down>(PhantomData<fn() -> (T, Down)>);
/// `T` is anything else: stored with serde (if it can be).
pub struct SerdeKind<T, Down>(PhantomData<fn() -> (T, Down)>);

/// The preferred candidate: frames.
pub trait ProbeFrame<T, Down> {
    /// The kind of output.
    fn kind(&self) -> FrameKind<T, Down>;
}
impl<T: FrameStorable<Down>, Down> ProbeFrame<T, Down> for &CodecProbe<T, Down> {
    fn kind(&self) -> FrameKind<T, Down> {
        FrameKind(PhantomData)
    }
}

/// The fallback candidate: serde.
pub trait ProbeSerde<T, Down> {
    /// The kind of output.
    fn kind(&self) -> SerdeKind<T, Down>;
}
impl<T, Down> ProbeSerde<T, Down> for CodecProbe<T, Down> {
    fn kind(&self) -> SerdeKind<T, Down> {
        SerdeKind(PhantomData)
    }
}

impl<T: FrameStorable<Down>, Down> FrameKind<T, Down> {
    /// The frame codec.
    pub fn codec(self) -> Codec {
        T::CODEC
    }
}

impl<T, Down> SerdeKind<T, Down> {
    /// The serde codec; requires `T: Storable<Down>`, whose message explains what to do.
    pub fn codec(self) -> Codec
    where
        T: Storable<Down>,
    {
        T::CODEC
    }
}

// A consumer may take a `LazyFrame` from an upstream that produces a `DataFrame`, and the
// other way round; the runtime converts (see [`input`]).
#[cfg(feature = "polars")]
#[diagnostic::do_not_recommend]
impl<Up, Down> InputOf<Up, Down, polars::prelude::DataFrame> for polars::prelude::LazyFrame {}
#[cfg(feature = "polars")]
#[diagnostic::do_not_recommend]
impl<Up, Down> InputOf<Up, Down, polars::prelude::LazyFrame> for polars::prelude::DataFrame {}

fn encode<T: serde::Serialize + 'static>(value: &Value) -> Result<Vec<u8>, BoxError> {
    let value = value.downcast_ref::<T>().ok_or_else(|| -> BoxError {
        "internal error: the output has another type than its codec".into()
    })?;
    Ok(postcard::to_stdvec(value)?)
}

fn decode<T>(bytes: &[u8]) -> Result<Value, BoxError>
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    Ok(std::sync::Arc::new(postcard::from_bytes::<T>(bytes)?))
}

/// The output of an op returning `Option<T>`: the value, or [`NoOutput`] for `None`.
pub fn share_optional<T: OpSendOutput<Down>, Down>(value: Option<T>) -> Result<Value, BoxError> {
    match value {
        Some(v) => Ok(v.into_op_value()),
        None => Ok(std::sync::Arc::new(NoOutput)),
    }
}

/// The output of an op returning `Result<Option<T>, E>`.
pub fn share_optional_result<T: OpSendOutput<Down>, E: OpReportableError<Down>, Down>(
    result: Result<Option<T>, E>,
) -> Result<Value, BoxError> {
    match result {
        Ok(v) => share_optional::<T, Down>(v),
        Err(e) => Err(e.into_op_error()),
    }
}

/// An op's `#[config]` parameter: its table of the run's config, as `T`.
pub fn op_config<T: serde::de::DeserializeOwned>(ctx: &AssetContext) -> Result<T, BoxError> {
    crate::op::OpContext::from_step(ctx)
        .op_config::<T>()
        .map_err(Into::into)
}

/// The node of a handle passed to `.after(..)`.
pub fn after_node<T, P>(handle: &Handle<T, P>) -> usize {
    handle.node()
}

// The same checks for ops, whose messages name an op.

/// Checks that an op's output can be shared across the executor's threads.
#[diagnostic::on_unimplemented(
    message = "the output of op `{Down}` is `{Self}`, which cannot be shared between threads",
    label = "`{Self}` must be `Send + Sync + 'static`",
    note = "ops run in parallel and each output goes to every op that takes it; use `Arc` instead of `Rc`, `Mutex` instead of `RefCell`, and owned data instead of borrows"
)]
pub trait OpSendOutput<Down> {
    /// Wraps the output for sharing.
    fn into_op_value(self) -> Value;
}
#[diagnostic::do_not_recommend]
impl<Down, T: Send + Sync + 'static> OpSendOutput<Down> for T {
    fn into_op_value(self) -> Value {
        std::sync::Arc::new(self)
    }
}

/// Checks that a `Result` output of an op has an error orch can report.
#[diagnostic::on_unimplemented(
    message = "op `{Down}` returns `Result<_, {Self}>`, but `{Self}` is not an error type orch can report",
    label = "the error type must convert into `Box<dyn std::error::Error + Send + Sync>`",
    note = "use any `E: std::error::Error + Send + Sync + 'static`, `anyhow::Error`, or `Box<dyn Error + Send + Sync>`"
)]
pub trait OpReportableError<Down> {
    /// Boxes the error.
    fn into_op_error(self) -> BoxError;
}
#[diagnostic::do_not_recommend]
impl<Down, E: Into<BoxError>> OpReportableError<Down> for E {
    fn into_op_error(self) -> BoxError {
        self.into()
    }
}

/// Checks that the default I/O manager can store an op's output (each step's output is
/// stored with its run, for re-execution from a failure).
#[diagnostic::on_unimplemented(
    message = "the output of op `{Down}` is `{Self}`, which the default I/O manager cannot store",
    label = "`{Self}` must implement serde's `Serialize` and `Deserialize`",
    note = "derive them (`#[derive(serde::Serialize, serde::Deserialize)]`), or keep the output in memory only with `#[op(io_manager = \"memory\")]` (a re-execution then runs the op again)"
)]
pub trait OpStorable<Down>: Sized {
    /// The output's codec.
    const CODEC: Codec;
}
#[diagnostic::do_not_recommend]
impl<Down, T> OpStorable<Down> for T
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    const CODEC: Codec = <T as Storable<Down>>::CODEC;
}

impl<T: FrameStorable<Down>, Down> FrameKind<T, Down> {
    /// The frame codec, for an op's output.
    pub fn op_codec(self) -> Codec {
        T::CODEC
    }
}

impl<T, Down> SerdeKind<T, Down> {
    /// The serde codec of an op's output; requires `T: OpStorable<Down>`.
    pub fn op_codec(self) -> Codec
    where
        T: OpStorable<Down>,
    {
        T::CODEC
    }
}

/// An op's output, shared; see [`OpSendOutput`].
pub fn op_share<T: OpSendOutput<Down>, Down>(value: T) -> Result<Value, BoxError> {
    Ok(value.into_op_value())
}

/// An op's `Result` output; see [`OpReportableError`].
pub fn op_share_result<T: OpSendOutput<Down>, E: OpReportableError<Down>, Down>(
    result: Result<T, E>,
) -> Result<Value, BoxError> {
    match result {
        Ok(v) => Ok(v.into_op_value()),
        Err(e) => Err(e.into_op_error()),
    }
}
