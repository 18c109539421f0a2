//! The run's event stream: what the CLI's progress display, the run store (later) and the UI
//! (later) consume. Events borrow from the executor, so emitting one allocates nothing.

use std::time::Duration;

use orch_core::{AssetKey, LogLine, MetadataValue, RunId};

use crate::result::AssetFailure;

/// One thing that happened in a run.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEvent<'a> {
    /// The run was planned and is starting.
    RunStarted {
        /// The run.
        run_id: &'a RunId,
        /// Every asset it will try to materialize, in a valid order.
        planned: &'a [&'a AssetKey],
    },
    /// An asset's function was called.
    AssetStarted {
        /// The asset.
        key: &'a AssetKey,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// An attempt failed and the asset will be tried again.
    AssetRetrying {
        /// The asset.
        key: &'a AssetKey,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: &'a AssetFailure,
    },
    /// An asset produced its output.
    AssetSucceeded {
        /// The asset.
        key: &'a AssetKey,
        /// Wall time of the successful attempt.
        duration: Duration,
        /// Metadata it attached.
        metadata: &'a [(String, MetadataValue)],
        /// Log lines it wrote.
        logs: &'a [LogLine],
        /// The stored output's data version, if an I/O manager stored it.
        data_version: Option<&'a str>,
        /// The data versions of the upstream values it consumed.
        input_versions: &'a [(AssetKey, Option<String>)],
        /// In a run over a range of partitions: each stored partition, with its own data
        /// version and metadata (empty otherwise).
        partitions: &'a [crate::io::StoredPartition],
    },
    /// An asset failed on its last attempt.
    AssetFailed {
        /// The asset.
        key: &'a AssetKey,
        /// Wall time of the last attempt.
        duration: Duration,
        /// Why.
        error: &'a AssetFailure,
        /// Log lines it wrote.
        logs: &'a [LogLine],
    },
    /// An asset was not run because an upstream failed.
    AssetSkipped {
        /// The asset.
        key: &'a AssetKey,
        /// The failed upstream.
        because_of: &'a AssetKey,
    },
    /// An asset did not run, or (async) was dropped while running, because the run was
    /// canceled.
    AssetCanceled {
        /// The asset.
        key: &'a AssetKey,
    },
    /// The run ended.
    RunFinished {
        /// The run.
        run_id: &'a RunId,
        /// Whether every asset succeeded.
        success: bool,
        /// Wall time of the whole run.
        duration: Duration,
    },
}

/// Receives a run's events, in order, on the executor's coordinating task. Keep it fast:
/// hand heavy work to another thread.
pub trait EventSink: Send {
    /// Called once per event.
    fn on_event(&mut self, event: &RunEvent<'_>);
}

impl<F: FnMut(&RunEvent<'_>) + Send> EventSink for F {
    fn on_event(&mut self, event: &RunEvent<'_>) {
        self(event)
    }
}
