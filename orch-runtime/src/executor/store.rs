//! Stores that end after their consumers started.
//!
//! An asset's output is stored the way its I/O manager asks ([`Storing`]): before its
//! consumers start, on the asset's worker (inline), or after they started (deferred): in the
//! background at once (write-behind, for a large frame), or parked behind an upstream's
//! deferred store that has not ended. Three rules keep the record true:
//! - an asset's outcome is recorded when its store ends, so its materialization comes after
//!   its upstreams' and names their data versions;
//! - an output becomes the stored one only once its upstreams' have (an inline store waits on
//!   its worker; a cheap deferred one is parked; a background one is written aside at once
//!   when its manager can stage it, and published after);
//! - a store whose upstream's store failed is refused: the asset fails naming that upstream,
//!   its stored version stays what it was, and what waits downstream of it is skipped.
//!
//! The run ends when every deferred store has. A deferred store runs on a thread of its own,
//! and the parked stores it frees run after it on that thread: never on the blocking pool,
//! where inline stores wait for it and could hold every thread.

use super::*;
use crate::io::Storing;
use orch_core::BoxError;

/// The run's deferred stores (part of [`State`]).
pub(super) struct Stores {
    /// Per asset: its store is deferred and has not ended.
    storing: Vec<bool>,
    /// Per asset: its store failed or was refused (its consumers' outputs are not stored).
    unstored: Vec<bool>,
    /// Per parked store: upstream stores still to end.
    waits: Vec<usize>,
    parked: Vec<Option<Box<Deferred>>>,
    /// Deferred stores that have not ended.
    deferred: usize,
    /// Background writes not ended, and the memory their values hold.
    background: usize,
    bytes: usize,
}

impl Stores {
    pub(super) fn new(n: usize) -> Self {
        Stores {
            storing: vec![false; n],
            unstored: vec![false; n],
            waits: vec![0; n],
            parked: (0..n).map(|_| None).collect(),
            deferred: 0,
            background: 0,
            bytes: 0,
        }
    }

    /// No deferred store is running or parked.
    pub(super) fn idle(&self) -> bool {
        self.deferred == 0
    }

    /// Gives back a background write's reservation.
    pub(super) fn release(&mut self, bytes: usize) {
        self.background -= 1;
        self.bytes -= bytes;
    }

    /// How many upstreams of `id` are being stored (deferred, not ended).
    fn upstreams_storing(&self, graph: &AssetGraph, id: AssetId) -> usize {
        let upstream = &graph.node(id).upstream;
        upstream.iter().filter(|&&up| self.storing[up]).count()
    }

    /// An upstream of `id` whose output could not be stored.
    pub(super) fn unstored_upstream(&self, graph: &AssetGraph, id: AssetId) -> Option<AssetId> {
        graph
            .node(id)
            .upstream
            .iter()
            .copied()
            .find(|&up| self.unstored[up])
    }
}

/// The first line of the failure of an asset whose output its I/O manager could not store.
pub(crate) const STORE_FAILED: &str = "could not store the output";

/// The first line when the manager's error was [`crate::io::Unavailable`] (its storage did
/// not answer): on a worker, worth another delivery.
pub(crate) const STORE_UNAVAILABLE: &str = "could not store the output: its storage did not answer";

/// How a finished attempt's output is stored.
pub(super) enum Decision {
    /// Now, on the asset's worker: its upstreams' stores have ended.
    Inline,
    /// After its consumers are released; `bytes` (a background write) is reserved from the
    /// run's budget.
    Defer { bytes: Option<usize> },
    /// Not at all: this upstream's output could not be stored.
    Refused(AssetId),
}

impl Shared {
    /// Decides how `id`'s output is stored, its manager asking for `mode`. An inline store
    /// whose upstream is still being stored waits for it here (on the asset's worker).
    pub(super) fn decide(&self, id: AssetId, mode: Storing) -> Decision {
        // Nothing deferred in this run yet: no upstream store to wait for, no lock to take.
        if !self.any_deferred.load(Ordering::Acquire) && !matches!(mode, Storing::Background { .. })
        {
            return Decision::Inline;
        }
        let mut state = self.lock();
        if let Some(up) = state.stores.unstored_upstream(self.graph, id) {
            return Decision::Refused(up);
        }
        match mode {
            Storing::Background { bytes } => {
                let budget = self.write_behind;
                let stores = &mut state.stores;
                if stores.background < budget.writes
                    && stores.bytes.saturating_add(bytes) <= budget.memory
                {
                    stores.background += 1;
                    stores.bytes += bytes;
                    self.any_deferred.store(true, Ordering::Release);
                    return Decision::Defer { bytes: Some(bytes) };
                }
            }
            Storing::Deferrable if state.stores.upstreams_storing(self.graph, id) > 0 => {
                return Decision::Defer { bytes: None };
            }
            _ => {}
        }
        // Inline (or over the budget): stored before its consumers start, once its upstreams'
        // stores have ended.
        match self.await_upstreams(state, id).1 {
            Some(up) => Decision::Refused(up),
            None => Decision::Inline,
        }
    }

    /// Waits, letting go of the lock meanwhile, until no upstream of `id` is being stored;
    /// returns an upstream whose store failed.
    fn await_upstreams<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        id: AssetId,
    ) -> (MutexGuard<'a, State>, Option<AssetId>) {
        loop {
            if let Some(up) = state.stores.unstored_upstream(self.graph, id) {
                return (state, Some(up));
            }
            if state.stores.upstreams_storing(self.graph, id) == 0 {
                return (state, None);
            }
            state = self
                .store_ended
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The failure of an output that is not stored because `upstream`'s was not.
    pub(super) fn refused(&self, upstream: AssetId) -> AssetFailure {
        let up = &self.graph.node(upstream).key;
        AssetFailure {
            chain: vec![
                STORE_FAILED.to_owned(),
                format!(
                    "the output of its upstream `{up}` could not be stored, and a stored output never depends on one that is not; see `{up}`"
                ),
            ],
            panicked: false,
        }
    }
}

/// An output stored after its consumers started, and the outcome recorded when it is.
pub(super) struct Deferred {
    pub(super) shared: Arc<Shared>,
    pub(super) id: AssetId,
    pub(super) value: Value,
    /// Reserved from the background budget.
    pub(super) bytes: Option<usize>,
    /// Everything but what storing adds; `None` once recorded.
    pub(super) outcome: Option<AssetOutcome>,
}

impl Deferred {
    /// Marks the store as running and starts it, or parks it behind its upstreams' stores (a
    /// background write starts at once: it waits for them itself, after writing aside).
    /// Returns it if it can start now: the caller spawns it once the lock is released.
    pub(super) fn defer(self: Box<Self>, state: &mut State) -> Option<Box<Deferred>> {
        let id = self.id;
        let waits = state.stores.upstreams_storing(self.shared.graph, id);
        state.stores.storing[id] = true;
        state.stores.deferred += 1;
        if waits == 0 || self.bytes.is_some() {
            return Some(self);
        }
        state.stores.waits[id] = waits;
        state.stores.parked[id] = Some(self);
        None
    }

    /// Runs it on a thread of its own, then the stores it frees. Not on the blocking pool:
    /// stores stored inline wait there for this one, and could hold every thread of it.
    pub(super) fn spawn(self: Box<Self>) {
        let spawned = std::thread::Builder::new()
            .name("orch-store".to_owned())
            .spawn(move || drive(self));
        // Without a thread, the closure and the store in it are dropped: its `Drop` records
        // the failure.
        drop(spawned);
    }

    /// Stores it and records its outcome; returns the parked stores this freed (cheap ones:
    /// a background store is never parked).
    // Boxed: a store moves between its parked slot and these lists without being copied.
    #[allow(clippy::vec_box)]
    fn run(mut self: Box<Self>) -> Vec<Box<Deferred>> {
        let (result, store) = match self.bytes {
            Some(_) => self.write_behind(),
            None => {
                let started = Instant::now();
                let result = persist(&self.shared, self.id, &self.value);
                (result, started.elapsed())
            }
        };
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        let Some(mut outcome) = self.outcome.take() else {
            return Vec::new();
        };
        self.release_budget(&mut state);
        outcome.timings =
            AssetTimings::new(outcome.timings.load, outcome.timings.compute, store).in_background();
        let ok = match result {
            Ok(stored) => {
                // A replacement is ignored: the consumers have their value already.
                merge_metadata(&mut outcome.metadata, stored.metadata);
                outcome.data_version = stored.data_version;
                true
            }
            Err(failure) => {
                outcome.status = AssetStatus::Failed(failure);
                false
            }
        };
        record(&shared, &mut state, self.id, outcome);
        let (start, done) = store_ended(&shared, &mut state, self.id, ok);
        drop(state);
        // Outside the lock: this may drop the last reference to a large value.
        drop(done);
        drop(self);
        start
    }

    /// A background store: written aside at once if the manager can stage it, and published
    /// once the upstreams' stores have ended (discarded if one failed); a manager that cannot
    /// stage stores in one step after that wait. Returns how long storing took, without the
    /// wait.
    fn write_behind(&self) -> (Result<Stored, AssetFailure>, Duration) {
        let shared = &*self.shared;
        let started = Instant::now();
        let staged = with_output(shared, self.id, |manager, ctx| {
            guarded(|| manager.stage_output(ctx, &self.value).transpose())
        })
        .and_then(|staged| staged);
        let mut took = started.elapsed();
        let staged = match staged {
            Ok(staged) => staged,
            Err(failure) => return (Err(failure), took),
        };
        let refused = shared.await_upstreams(shared.lock(), self.id).1;
        if let Some(upstream) = refused {
            drop(staged);
            return (Err(shared.refused(upstream)), took);
        }
        let started = Instant::now();
        let result = match staged {
            Some(staged) => guarded(|| staged.publish()),
            None => persist(shared, self.id, &self.value),
        };
        took += started.elapsed();
        (result, took)
    }

    fn release_budget(&self, state: &mut State) {
        if let Some(bytes) = self.bytes {
            state.stores.release(bytes);
        }
    }
}

impl Drop for Deferred {
    /// A store that ended without recording its outcome (a panic outside the I/O manager, or
    /// no thread to run it on) records the asset as failed, so the run ends instead of
    /// hanging.
    fn drop(&mut self) {
        let Some(mut outcome) = self.outcome.take() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        self.release_budget(&mut state);
        outcome.status = AssetStatus::Failed(AssetFailure {
            chain: vec![
                STORE_FAILED.to_owned(),
                "the store ended before its outcome was recorded (orch panicked while storing it, or no thread could be started for it)".to_owned(),
            ],
            panicked: true,
        });
        record(&shared, &mut state, self.id, outcome);
        let (start, done) = store_ended(&shared, &mut state, self.id, false);
        drop(state);
        drop(done);
        for freed in start {
            drive(freed);
        }
    }
}

/// Runs `first`, then every store it frees, one after the other on this thread (a loop, not
/// recursion: a chain of parked stores can be long).
fn drive(first: Box<Deferred>) {
    let mut ready = vec![first];
    while let Some(next) = ready.pop() {
        ready.extend(next.run());
    }
}

/// `id`'s deferred store ended (`ok`: stored). Its parked consumers' stores start when
/// nothing else holds them; if it failed, they are refused, with their own consumers'.
/// Returns the stores to start and the refused ones to drop, once the lock is released.
#[must_use]
#[allow(clippy::vec_box)]
fn store_ended(
    shared: &Shared,
    state: &mut State,
    id: AssetId,
    ok: bool,
) -> (Vec<Box<Deferred>>, Vec<Box<Deferred>>) {
    let (mut start, mut done) = (Vec::new(), Vec::new());
    let mut ended = vec![(id, ok)];
    while let Some((id, ok)) = ended.pop() {
        state.stores.storing[id] = false;
        state.stores.deferred -= 1;
        if !ok {
            state.stores.unstored[id] = true;
            skip_downstream(shared, state, id, None);
        }
        for &down in &shared.graph.node(id).downstream {
            if state.stores.parked[down].is_none() {
                continue;
            }
            state.stores.waits[down] -= 1;
            if ok && state.stores.waits[down] > 0 {
                continue;
            }
            let Some(mut parked) = state.stores.parked[down].take() else {
                continue;
            };
            if ok {
                start.push(parked);
                continue;
            }
            parked.release_budget(state);
            if let Some(mut outcome) = parked.outcome.take() {
                outcome.status = AssetStatus::Failed(shared.refused(id));
                record(shared, state, down, outcome);
            }
            ended.push((down, false));
            done.push(parked);
        }
    }
    shared.store_ended.notify_all();
    shared.wake.notify_one();
    (start, done)
}

/// Records `id`'s outcome: its data version for its consumers, and the versions of the
/// inputs it consumed (all stored by now).
pub(super) fn record(shared: &Shared, state: &mut State, id: AssetId, mut outcome: AssetOutcome) {
    state.remaining -= 1;
    // Only a persisted run has versions to record (and this costs allocations per input).
    if shared.io.is_some() {
        let graph = shared.graph;
        outcome.input_versions = graph
            .node(id)
            .upstream
            .iter()
            .map(|&up| {
                (
                    graph.node(up).key.clone(),
                    state.versions[up].as_deref().map(str::to_owned),
                )
            })
            .collect();
    }
    state.versions[id] = outcome.data_version.as_deref().map(Arc::from);
    state.queue.push(Queued::Finished(outcome));
}

/// Adds a manager's metadata after the asset's own (which wins on a shared label).
pub(super) fn merge_metadata(
    metadata: &mut Vec<(String, MetadataValue)>,
    extra: Vec<(String, MetadataValue)>,
) {
    for (label, value) in extra {
        match metadata.iter_mut().find(|(l, _)| *l == label) {
            None => metadata.push((label, value)),
            // orch's own labels (`orch/location`: where the output is) are not the asset's
            // to set.
            Some(kept) if label.starts_with("orch/") => kept.1 = value,
            Some(_) => {}
        }
    }
}

/// How `id`'s manager wants `value` stored. Inline whatever it says in a run over a range
/// (whose partitions are split and stored together), when a consumer reads `id` through a
/// partition mapping (it loads the stored partitions, this run's among them), when the
/// manager is unknown (storing names the error) and when asking it panics.
pub(super) fn storing(shared: &Shared, id: AssetId, value: &Value) -> Storing {
    if shared.range_of(id).is_some() {
        return Storing::Inline;
    }
    let graph = shared.graph;
    let mapped = graph.node(id).downstream.iter().any(|&down| {
        let down = graph.node(down);
        down.inputs.iter().enumerate().any(|(i, &up)| {
            up == id && down.input_mapping(i) != orch_core::PartitionMapping::Identity
        })
    });
    if mapped {
        return Storing::Inline;
    }
    with_output(shared, id, |manager, ctx| {
        std::panic::catch_unwind(AssertUnwindSafe(|| manager.storing(ctx, value)))
            .unwrap_or(Storing::Inline)
    })
    .unwrap_or(Storing::Inline)
}

/// Calls `f` with `id`'s I/O manager and its output's context.
fn with_output<'s, R>(
    shared: &'s Shared,
    id: AssetId,
    f: impl FnOnce(&'s dyn crate::io::IoManager, &OutputContext<'_>) -> R,
) -> Result<R, AssetFailure> {
    let Some(io) = &shared.io else {
        return Err(AssetFailure {
            chain: vec!["this run stores nothing".to_owned()],
            panicked: false,
        });
    };
    let node = shared.graph.node(id);
    let manager = io
        .for_asset(&node.key, node.def)
        .map_err(|e| AssetFailure::from_error(&e))?;
    let scoped;
    let key = match shared.run_scoped_outputs {
        true => {
            scoped = crate::jobs::step_output_key(&node.key, shared.run_id.as_str());
            &scoped
        }
        false => &node.key,
    };
    let ctx = OutputContext {
        key,
        run_id: &shared.run_id,
        partition: shared.partition_of(id),
        output_type: node.def.output_type(),
        codec: node.def.storage_codec(),
    };
    Ok(f(manager, &ctx))
}

/// Hands `id`'s output to its I/O manager. A failure (or a panic) to store fails the asset.
pub(super) fn persist(shared: &Shared, id: AssetId, value: &Value) -> Result<Stored, AssetFailure> {
    // Nothing to store: no run storage, or an optional output that was `None`.
    if shared.io.is_none() || value.is::<orch_core::__private::NoOutput>() {
        return Ok(Stored::default());
    }
    let node = shared.graph.node(id);
    with_output(shared, id, |manager, ctx| {
        guarded(|| match shared.range_of(id) {
            Some(keys) => crate::io::partitioned::store_range(node, manager, ctx, value, keys),
            None => manager.handle_output(ctx, value),
        })
    })
    .and_then(|stored| stored)
}

/// Runs a step of the I/O manager's; its error or panic is the asset's failure to store.
fn guarded<T>(f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, AssetFailure> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let mut failure = AssetFailure::from_error(&*error);
            let head = match crate::io::Unavailable::is_in(&*error) {
                true => STORE_UNAVAILABLE,
                false => STORE_FAILED,
            };
            failure.chain.insert(0, head.to_owned());
            Err(failure)
        }
        Err(payload) => {
            let mut failure = AssetFailure::from_panic(&*payload);
            failure.chain.insert(
                0,
                "the I/O manager panicked while storing the output".to_owned(),
            );
            Err(failure)
        }
    }
}
