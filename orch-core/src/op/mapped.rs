//! How a step mapped over a `Dynamic` runs (`files.map(process)` in a job body): the op once
//! per element, on up to the run's `jobs` threads (async ops: that many at once), each element
//! with its own attempts, retries, context and marked log lines; the outputs gathered into a
//! `Dynamic` keyed as the input was, or a failure naming every failed element; and how that
//! `Dynamic` is stored, element by element through the op's own codec. When elements fail,
//! the outputs of those that succeeded are kept for a re-execution, which reuses them
//! (see [`ElementCheckpoints`](crate::context::ElementCheckpoints)).

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use super::dynamic::Dynamic;
use super::{NoOutput, Op, OpDef, OpOutput, OpParts};
use crate::asset::{BoxError, BoxFuture, Codec, Compute, Value};
use crate::context::AssetContext;
use crate::error::{error_chain, panic_text, retry_backoff};

/// The definition of op `O` mapped over input `I` (element type `T`): one step that runs the
/// op per element and returns a `Dynamic` of its outputs. Made once per call in a job body,
/// when the job is built (once per process).
pub(crate) fn mapped_def<O: Op, T: Send + Sync + 'static, const I: usize>() -> &'static OpDef
where
    O::Output: Send + Sync + 'static,
{
    // Made once per process for each op, element type and input: building a job again
    // (`OpJobDef::nodes`) finds the same definition instead of leaking another.
    type Made = Vec<((TypeId, TypeId, usize), &'static OpDef)>;
    static MADE: Mutex<Made> = Mutex::new(Vec::new());
    let id = (TypeId::of::<O>(), TypeId::of::<T>(), I);
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&(_, def)) = made.iter().find(|(k, _)| *k == id) {
        return def;
    }
    let op = O::DEF;
    let compute = match op.compute() {
        Compute::Sync(_) => Compute::Sync(mapped_sync::<O, T, I>),
        Compute::Async(_) => Compute::Async(mapped_async::<O, T, I>),
    };
    let parts = OpParts {
        name: op.name(),
        location: op.location(),
        description: op.description(),
        code_version: op.code_version(),
        tags: op.tags(),
        inputs: op.inputs(),
        output_type: Box::leak(format!("Dynamic<{}>", op.output_type()).into_boxed_str()),
        output: OpOutput::Value,
        resources: op.resources(),
        config: op.config(),
        // Each element is retried on its own; the step as a whole is not (see `mapped`).
        retries: op.retries(),
        retry_delay: op.retry_delay(),
        io_manager: op.io_manager(),
        codec: op.codec().map(|_| dynamic_codec::<O> as fn() -> Codec),
        compute,
        mapped: Some(super::Mapped { input: I, op }),
    };
    let def: &'static OpDef = Box::leak(Box::new(OpDef::from_parts(parts)));
    made.push((id, def));
    def
}

/// How one element's attempts ended.
enum End {
    /// Its output (`None`: an optional output that was `None`).
    Done(Option<Value>),
    /// Its output as a run this one re-executes kept it: it did not run again.
    Reused(Value),
    Failed(String),
    /// The run was canceled before it ran, or while it waited to retry.
    Canceled,
}

fn elements<T: Send + Sync + 'static>(
    input: Option<&Value>,
    op: &str,
) -> Result<Vec<(Arc<str>, Value)>, BoxError> {
    let dynamic = input
        .and_then(|v| v.downcast_ref::<Dynamic<T>>())
        .ok_or_else(|| {
            format!(
                "op `{op}` is mapped over a value that is not a `Dynamic<{}>` (a bug in orch; please report it)",
                std::any::type_name::<T>()
            )
        })?;
    Ok(dynamic
        .items
        .iter()
        .map(|(k, v)| (Arc::clone(k), Arc::clone(v) as Value))
        .collect())
}

/// The error and its sources, as one line.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    error_chain(error).join(": ")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    format!("panicked: {}", panic_text(payload))
}

/// The wait before retrying after failed attempt `number` (doubling, as for steps).
fn retry_delay(op: &OpDef, number: u32) -> Duration {
    retry_backoff(op.retry_delay(), number)
}

/// Keeps element `key`'s attempt's lines and metadata with the step's (labels marked with
/// the key).
fn absorb(step: &AssetContext, element: &AssetContext, key: &str) {
    let (logs, metadata) = element.take_captured();
    let metadata = metadata
        .into_iter()
        .map(|(label, value)| (format!("[{key}] {label}"), value))
        .collect();
    step.absorb(logs, metadata);
}

/// Decides after failed attempt `number`: give up (`Some`), or log the retry (`None`).
fn after_failure(
    step: &AssetContext,
    op: &OpDef,
    key: &str,
    number: u32,
    why: String,
) -> Option<End> {
    if step.is_cancelled() {
        return Some(End::Canceled);
    }
    if number > op.retries() {
        return Some(End::Failed(why));
    }
    step.log().warn(format!(
        "[{key}] attempt {number} of {} failed, retrying: {why}",
        op.retries() + 1
    ));
    None
}

fn run_element_sync(
    f: fn(&AssetContext, &[Value]) -> Result<Value, BoxError>,
    op: &OpDef,
    step: &AssetContext,
    key: &Arc<str>,
    inputs: &[Value],
) -> End {
    let mut number = 1;
    loop {
        let ctx = step.for_element(Arc::clone(key), number);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&ctx, inputs)));
        absorb(step, &ctx, key);
        let why = match result {
            Ok(Ok(value)) => return End::Done(output(value)),
            Ok(Err(error)) => describe(&*error),
            Err(payload) => panic_message(&*payload),
        };
        if let Some(end) = after_failure(step, op, key, number, why) {
            return end;
        }
        // Wait in slices, so a cancellation ends the wait.
        let until = std::time::Instant::now() + retry_delay(op, number);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            if step.is_cancelled() {
                return End::Canceled;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        number += 1;
    }
}

fn output(value: Value) -> Option<Value> {
    (!value.is::<NoOutput>()).then_some(value)
}

/// The inputs of element `value`'s call: the step's, with input `I` replaced.
fn element_inputs<const I: usize>(inputs: &[Value], value: &Value) -> Vec<Value> {
    let mut args = inputs.to_vec();
    args[I] = Arc::clone(value);
    args
}

/// The compute of a sync op mapped over input `I`.
fn mapped_sync<O: Op, T: Send + Sync + 'static, const I: usize>(
    step: &AssetContext,
    inputs: &[Value],
) -> Result<Value, BoxError>
where
    O::Output: Send + Sync + 'static,
{
    let op = O::DEF;
    let Compute::Sync(f) = op.compute() else {
        return Err(format!(
            "op `{}` changed from sync to async (a bug in orch)",
            op.name()
        )
        .into());
    };
    let elements = elements::<T>(inputs.get(I), op.name())?;
    let n = elements.len();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut ends = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((key, value)) = elements.get(i) else {
                break;
            };
            let end = if step.is_cancelled() {
                End::Canceled
            } else if let Some(value) = reused(step, key) {
                End::Reused(value)
            } else {
                run_element_sync(f, op, step, key, &element_inputs::<I>(inputs, value))
            };
            ends.push((i, end));
        }
        ends
    };
    let mut ends: Vec<Option<End>> = (0..n).map(|_| None).collect();
    let span = tracing::Span::current();
    let threads = step.step_threads();
    std::thread::scope(|scope| {
        // This step holds one job slot; each helper takes a free one (none: fewer helpers),
        // and runs inside the run's runtime, as the blocking pool's threads do.
        let mut helpers = Vec::new();
        for _ in 1..step.parallelism().min(n) {
            let slot = match threads {
                Some(threads) if !threads.try_take_slot() => break,
                Some(threads) => Some(Slot(threads)),
                None => None,
            };
            let span = span.clone();
            let work = &work;
            let helper = move || {
                let _slot = slot;
                let mut done = Vec::new();
                let mut run = || done = span.in_scope(work);
                match threads {
                    Some(threads) => threads.enter(&mut run),
                    None => run(),
                }
                done
            };
            match std::thread::Builder::new()
                .name("orch-map".to_owned())
                .spawn_scoped(scope, helper)
            {
                Ok(handle) => helpers.push(handle),
                // No thread: the slot went back with the closure; fewer helpers.
                Err(_) => break,
            }
        }
        let mut record = |done: Vec<(usize, End)>| {
            for (i, end) in done {
                ends[i] = Some(end);
            }
        };
        record(work());
        for helper in helpers {
            // Elements catch their panics; a helper that panicked anyway leaves its
            // elements undecided, and the step fails naming them.
            if let Ok(done) = helper.join() {
                record(done);
            }
        }
    });
    gather::<O::Output>(op.name(), step, &elements, ends)
}

/// A job slot a helper thread holds, given back when it ends (even by a panic).
struct Slot<'a>(&'a dyn crate::context::StepThreads);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.give_back_slot();
    }
}

/// Element `key`'s output from the run this one re-executes, if it kept one.
fn reused(step: &AssetContext, key: &str) -> Option<Value> {
    step.checkpoints()?.reuse(key)
}

/// The compute of an async op mapped over input `I`: up to `parallelism` elements at once.
fn mapped_async<O: Op, T: Send + Sync + 'static, const I: usize>(
    step: AssetContext,
    inputs: Vec<Value>,
) -> BoxFuture
where
    O::Output: Send + Sync + 'static,
{
    Box::pin(async move {
        let op = O::DEF;
        let Compute::Async(f) = op.compute() else {
            return Err(format!(
                "op `{}` changed from async to sync (a bug in orch)",
                op.name()
            )
            .into());
        };
        let elements = elements::<T>(inputs.get(I), op.name())?;
        let n = elements.len();
        let window = step.parallelism();
        let mut ends: Vec<Option<End>> = (0..n).map(|_| None).collect();
        type Running = (usize, Pin<Box<dyn Future<Output = End> + Send>>);
        let mut running: Vec<Running> = Vec::new();
        let mut next = 0;
        std::future::poll_fn(|cx| {
            loop {
                while running.len() < window && next < n {
                    let (key, value) = &elements[next];
                    if step.is_cancelled() {
                        ends[next] = Some(End::Canceled);
                    } else if let Some(value) = reused(&step, key) {
                        ends[next] = Some(End::Reused(value));
                    } else {
                        let args = element_inputs::<I>(&inputs, value);
                        let element = run_element_async(f, op, step.clone(), Arc::clone(key), args);
                        running.push((next, Box::pin(element)));
                    }
                    next += 1;
                }
                let mut progressed = false;
                running.retain_mut(|(i, element)| match element.as_mut().poll(cx) {
                    Poll::Ready(end) => {
                        ends[*i] = Some(end);
                        progressed = true;
                        false
                    }
                    Poll::Pending => true,
                });
                if running.is_empty() && next >= n {
                    return Poll::Ready(());
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await;
        gather::<O::Output>(op.name(), &step, &elements, ends)
    })
}

async fn run_element_async(
    f: fn(AssetContext, Vec<Value>) -> BoxFuture,
    op: &'static OpDef,
    step: AssetContext,
    key: Arc<str>,
    inputs: Vec<Value>,
) -> End {
    let mut number = 1;
    loop {
        let ctx = step.for_element(Arc::clone(&key), number);
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| {
            f(ctx.clone(), inputs.clone())
        })) {
            Ok(mut future) => {
                std::future::poll_fn(|cx| {
                    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(payload) => Poll::Ready(Err(payload)),
                    }
                })
                .await
            }
            Err(payload) => Err(payload),
        };
        absorb(&step, &ctx, &key);
        let why = match result {
            Ok(Ok(value)) => return End::Done(output(value)),
            Ok(Err(error)) => describe(&*error),
            Err(payload) => panic_message(&*payload),
        };
        if let Some(end) = after_failure(&step, op, &key, number, why) {
            return end;
        }
        sleep(retry_delay(op, number)).await;
        number += 1;
    }
}

/// A wait without a runtime (orch-core knows none): a thread sleeps, then wakes the task.
/// Only retries wait, so a thread per wait is cheap enough.
async fn sleep(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let state: Arc<Mutex<(bool, Option<Waker>)>> = Arc::default();
    let mut started = false;
    std::future::poll_fn(|cx| {
        let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 {
            return Poll::Ready(());
        }
        guard.1 = Some(cx.waker().clone());
        drop(guard);
        if !started {
            started = true;
            let state = Arc::clone(&state);
            let spawned = std::thread::Builder::new()
                .name("orch-map-retry".to_owned())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
                    guard.0 = true;
                    if let Some(waker) = guard.1.take() {
                        waker.wake();
                    }
                });
            if spawned.is_err() {
                // No thread to wait on: retry at once rather than never.
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// The step's output (every element's, in order), or its failure naming each element that
/// failed. A failed step keeps the outputs of the elements that ran and succeeded, for a
/// re-execution (in a recorded run).
fn gather<U: Send + Sync + 'static>(
    op: &str,
    step: &AssetContext,
    elements: &[(Arc<str>, Value)],
    ends: Vec<Option<End>>,
) -> Result<Value, BoxError> {
    let mut out = Dynamic::<U>::with_capacity(elements.len());
    let mut failed = Vec::new();
    let mut canceled = 0;
    let mut fresh: Vec<(Arc<str>, Value)> = Vec::new();
    let mut reused = 0;
    for ((key, _), end) in elements.iter().zip(ends) {
        let value = match end {
            Some(End::Done(Some(value))) => {
                fresh.push((Arc::clone(key), Arc::clone(&value)));
                Some(value)
            }
            Some(End::Reused(value)) => {
                reused += 1;
                Some(value)
            }
            Some(End::Done(None)) => None,
            Some(End::Failed(why)) => {
                failed.push((Arc::clone(key), why));
                None
            }
            Some(End::Canceled) => {
                canceled += 1;
                None
            }
            None => {
                failed.push((
                    Arc::clone(key),
                    "its thread ended unexpectedly (orch panicked outside the op)".to_owned(),
                ));
                None
            }
        };
        if let Some(value) = value {
            match value.downcast::<U>() {
                Ok(value) => {
                    // The keys come from a `Dynamic`: valid and distinct.
                    let _ = out.push_arc(Arc::clone(key), value);
                }
                Err(_) => failed.push((
                    Arc::clone(key),
                    format!(
                        "its output is not a `{}` (a bug in orch; please report it)",
                        std::any::type_name::<U>()
                    ),
                )),
            }
        }
    }
    if reused > 0 {
        step.log().info(format!(
            "reused the outputs of {reused} of {} elements from the run this re-executes",
            elements.len()
        ));
    }
    if failed.is_empty() && canceled == 0 {
        return Ok(Arc::new(out));
    }
    if let Some(checkpoints) = step.checkpoints() {
        for (key, value) in &fresh {
            if let Err(e) = checkpoints.keep(key, value) {
                step.log().warn(format!(
                    "[{key}] its output could not be kept for a re-execution: {}",
                    describe(&*e)
                ));
            }
        }
    }
    Err(Box::new(MappedFailure {
        op: op.to_owned(),
        total: elements.len(),
        failed,
        canceled,
    }))
}

/// Why a mapped step failed: which elements failed, and how.
#[derive(Debug)]
struct MappedFailure {
    op: String,
    total: usize,
    failed: Vec<(Arc<str>, String)>,
    canceled: usize,
}

impl fmt::Display for MappedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, total) = (&self.op, self.total);
        if self.failed.is_empty() {
            return write!(
                f,
                "the run was canceled before {} of {total} elements of `{op}` ran",
                self.canceled
            );
        }
        write!(
            f,
            "{} of {total} elements of `{op}` failed",
            self.failed.len()
        )?;
        if self.canceled > 0 {
            write!(f, " ({} more canceled)", self.canceled)?;
        }
        for (i, (key, why)) in self.failed.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{op}[{key}] {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MappedFailure {}

/// How the default I/O manager stores a mapped op's `Dynamic` output: each element through
/// the op's own codec, with its key.
fn dynamic_codec<O: Op>() -> Codec
where
    O::Output: Send + Sync + 'static,
{
    Codec {
        encode: encode_dynamic::<O>,
        decode: decode_dynamic::<O>,
        frame: None,
    }
}

fn element_codec<O: Op>() -> Result<Codec, BoxError> {
    O::DEF.codec().map(|codec| codec()).ok_or_else(|| {
        format!(
            "op `{}` has no codec for the default I/O manager",
            O::DEF.name()
        )
        .into()
    })
}

fn encode_dynamic<O: Op>(value: &Value) -> Result<Vec<u8>, BoxError>
where
    O::Output: Send + Sync + 'static,
{
    let codec = element_codec::<O>()?;
    let dynamic = value
        .downcast_ref::<Dynamic<O::Output>>()
        .ok_or("a mapped op's output is not its `Dynamic` (a bug in orch; please report it)")?;
    let mut parts: Vec<(&str, Vec<u8>)> = Vec::with_capacity(dynamic.len());
    for (key, element) in &dynamic.items {
        let element: Value = Arc::clone(element) as Value;
        let bytes =
            (codec.encode)(&element).map_err(|e| format!("element `{key}`: {}", describe(&*e)))?;
        parts.push((key, bytes));
    }
    Ok(postcard::to_stdvec(&parts)?)
}

fn decode_dynamic<O: Op>(bytes: &[u8]) -> Result<Value, BoxError>
where
    O::Output: Send + Sync + 'static,
{
    let codec = element_codec::<O>()?;
    let parts: Vec<(String, Vec<u8>)> = postcard::from_bytes(bytes)?;
    let mut out = Dynamic::<O::Output>::with_capacity(parts.len());
    for (key, bytes) in parts {
        let element = (codec.decode)(&bytes)
            .map_err(|e| format!("element `{key}`: {}", describe(&*e)))?
            .downcast::<O::Output>()
            .map_err(|_| format!("element `{key}` decodes to another type"))?;
        out.push_arc(Arc::from(key), element)?;
    }
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_every_failed_element() {
        let failure = MappedFailure {
            op: "process".to_owned(),
            total: 4,
            failed: vec![
                (Arc::from("b"), "boom".to_owned()),
                (Arc::from("d"), "panicked: bad".to_owned()),
            ],
            canceled: 1,
        };
        assert_eq!(
            failure.to_string(),
            "2 of 4 elements of `process` failed (1 more canceled): process[b] boom; process[d] panicked: bad"
        );
    }
}
