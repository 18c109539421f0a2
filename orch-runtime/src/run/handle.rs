//! [`RunHandle`]: a submitted run, to wait for or cancel.

use orch_core::RunId;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::materialize::MaterializeError;
use crate::result::RunResult;

/// A run submitted with [`Instance::submit`](crate::Instance::submit): its id at once, its
/// result when it ends, and a way to stop it.
///
/// Dropping the handle does not stop the run; it goes on in the background and is recorded
/// as usual.
#[derive(Debug)]
pub struct RunHandle {
    pub(crate) run_id: RunId,
    pub(crate) cancel: CancellationToken,
    pub(crate) done: oneshot::Receiver<Result<RunResult, MaterializeError>>,
    /// Keeps the instance (and the runtime the run is on) alive while someone waits.
    pub(crate) _instance: crate::Instance,
}

impl RunHandle {
    /// The run's id (as recorded in the store).
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Asks the run to stop: no new asset starts, running sync assets finish (they can check
    /// [`AssetContext::is_cancelled`](orch_core::AssetContext::is_cancelled)), running async
    /// assets are dropped at their next `.await`, the rest are marked canceled, and the run is
    /// recorded as canceled. Calling it again, or after the run ended, does nothing.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A token that cancels this run when cancelled: for a Ctrl-C handler or another task.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits for the end of the run, blocking this thread. Call it from synchronous code; in
    /// async code, await [`RunHandle::join`].
    pub fn wait(self) -> Result<RunResult, MaterializeError> {
        self.done.blocking_recv().unwrap_or_else(|_| Err(lost()))
    }

    /// Waits for the end of the run.
    pub async fn join(self) -> Result<RunResult, MaterializeError> {
        self.done.await.unwrap_or_else(|_| Err(lost()))
    }
}

/// The run's task ended without an answer: its runtime was shut down, or it panicked.
fn lost() -> MaterializeError {
    MaterializeError::Runtime(std::io::Error::other(
        "the run's task ended without a result (its runtime was shut down, or orch panicked); `runs` shows what was recorded",
    ))
}
