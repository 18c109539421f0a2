//! Runs the UI starts itself, under `ui` (no daemon in the process): each queued run starts
//! on its own thread when one of the queue's `max_concurrent_runs` slots is free, in the
//! order they were asked for, on the instance's runtime (not the web server's). A run that
//! cannot start, for whatever reason (its assets busy included: nothing would retry it), is
//! recorded as failed with why. When the UI stops, the runs it started are canceled and waited
//! for, so they end canceled rather than crashed.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use orch_core::RunId;
use tokio_util::sync::CancellationToken;

use crate::instance::Instance;
use crate::storage::RunStatus;

#[derive(Default)]
struct State {
    /// Runs started and not ended.
    running: usize,
    /// Threads alive (waiting for a slot, or running).
    threads: usize,
    /// Tickets handed out and served: runs start in the order they were asked for.
    next_ticket: u64,
    serving: u64,
    stopping: bool,
    tokens: Vec<(RunId, CancellationToken)>,
}

/// See the module docs.
pub(crate) struct LocalRuns {
    limit: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl LocalRuns {
    pub(crate) fn new(limit: usize) -> Arc<LocalRuns> {
        Arc::new(LocalRuns {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts queued run `id` when its turn comes and a slot is free.
    pub(crate) fn start(self: &Arc<Self>, instance: Instance, id: RunId) {
        let ticket = {
            let mut state = self.lock();
            state.threads += 1;
            state.next_ticket += 1;
            state.next_ticket - 1
        };
        let this = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("orch-ui-run".into())
            .spawn({
                let (instance, id) = (instance.clone(), id.clone());
                move || this.run(&instance, &id, ticket)
            });
        if let Err(e) = spawned {
            let mut state = self.lock();
            state.threads -= 1;
            state.serving += 1;
            drop(state);
            self.changed.notify_all();
            fail(&instance, &id, &format!("no thread to start it on: {e}"));
        }
    }

    fn run(&self, instance: &Instance, id: &RunId, ticket: u64) {
        {
            let mut state = self.lock();
            while !state.stopping && (state.serving != ticket || state.running >= self.limit) {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stopping {
                state.serving = state.serving.max(ticket + 1);
                state.threads -= 1;
                drop(state);
                self.changed.notify_all();
                let _ = instance.storage().end_queued_run(
                    id.as_str(),
                    RunStatus::Canceled,
                    "the UI stopped before the run started",
                );
                return;
            }
            state.serving += 1;
            state.running += 1;
        }
        self.changed.notify_all();
        match instance.launch_queued(id.as_str()) {
            Ok(handle) => {
                self.lock().tokens.push((id.clone(), handle.cancel_token()));
                if let Err(e) = handle.wait() {
                    // Ended in the store already unless it never began (its assets busy).
                    fail(instance, id, &e.to_string());
                }
            }
            Err(e) => fail(instance, id, &e.to_string()),
        }
        let mut state = self.lock();
        state.running -= 1;
        state.threads -= 1;
        state.tokens.retain(|(t, _)| t != id);
        drop(state);
        self.changed.notify_all();
    }

    /// Cancels run `id` at once if this UI started it; `false` if it did not.
    pub(crate) fn cancel(&self, id: &RunId) -> bool {
        let state = self.lock();
        let found = state.tokens.iter().find(|(t, _)| t == id);
        if let Some((_, token)) = found {
            token.cancel();
        }
        found.is_some()
    }

    /// Cancels every run it started, stops the ones waiting, and waits (at most `grace`)
    /// for them all to end.
    pub(crate) fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut state = self.lock();
        state.stopping = true;
        for (_, token) in &state.tokens {
            token.cancel();
        }
        self.changed.notify_all();
        while state.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Records queued run `id` as failed (nothing if it began: its own end is recorded).
fn fail(instance: &Instance, id: &RunId, why: &str) {
    let _ = instance.storage().end_queued_run(
        id.as_str(),
        RunStatus::Failed,
        &format!("the run could not start: {why}"),
    );
}
