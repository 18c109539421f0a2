//! The run's event stream: what the CLI's progress display, the run store (later) and the UI
//! (later) consume. Events borrow from the executor, so emitting one allocates nothing. The
//! types events carry (a failure, a stored partition) live here too: this module is the bottom
//! of the runtime and imports only `orch-core`.

use std::fmt;
use std::time::Duration;

use orch_core::{AssetKey, LogLine, MetadataValue, RunId};

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
        partitions: &'a [StoredPartition],
        /// Where the successful attempt's time went.
        timings: AssetTimings,
    },
    /// One of an asset's checks ran (right after the asset materialized).
    CheckEvaluated {
        /// The asset.
        key: &'a AssetKey,
        /// Its result.
        check: &'a crate::checks::CheckOutcome,
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
        /// Where the last attempt's time went.
        timings: AssetTimings,
    },
    /// An asset was not run because an upstream failed (or a blocking check of it did).
    AssetSkipped {
        /// The asset.
        key: &'a AssetKey,
        /// The failed upstream.
        because_of: &'a AssetKey,
        /// The blocking check of `because_of` that failed, if that was why.
        check: Option<&'static str>,
    },
    /// A step of an op job did not run because an upstream op's optional output was `None`.
    AssetNotRequired {
        /// The step.
        key: &'a AssetKey,
        /// The op that produced no output.
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

/// Why an asset failed: its error (with the chain of causes) or its panic message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetFailure {
    /// The error's message, then each `source()` in turn.
    pub chain: Vec<String>,
    /// Whether the asset panicked rather than returning `Err`.
    pub panicked: bool,
}

impl AssetFailure {
    pub(crate) fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        AssetFailure {
            chain: orch_core::__private::error_chain(error),
            panicked: false,
        }
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        AssetFailure {
            chain: vec![orch_core::__private::panic_text(payload)],
            panicked: true,
        }
    }

    /// The top-level message.
    pub fn message(&self) -> &str {
        self.chain.first().map(String::as_str).unwrap_or_default()
    }
}

impl fmt::Display for AssetFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panicked {
            f.write_str("panicked: ")?;
        }
        for (i, part) in self.chain.iter().enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// One partition stored by a run over a range of partitions.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPartition {
    /// The partition key.
    pub key: String,
    /// Its data version.
    pub data_version: Option<String>,
    /// Its metadata (rows, schema, path, preview for frames).
    pub metadata: Vec<(String, MetadataValue)>,
}

/// Where one asset's time went, in its last attempt: loading the inputs it reads itself
/// (partitions a mapping redirects), its function, and handing the output to its I/O manager
/// (encoding and writing; files are synced once per run, see [`RunTimings::sync`], except
/// frames written in the background, synced there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct AssetTimings {
    /// Loading the inputs a partition mapping redirects.
    pub load: Duration,
    /// The asset's function.
    pub compute: Duration,
    /// Storing the output (encode and write).
    pub store: Duration,
    /// The output was stored after its consumers started (write-behind), so `store` did not
    /// hold them up.
    #[serde(default)]
    pub background: bool,
}

impl AssetTimings {
    /// The three phases, for a test or another executor.
    pub fn new(load: Duration, compute: Duration, store: Duration) -> AssetTimings {
        AssetTimings {
            load,
            compute,
            store,
            background: false,
        }
    }

    /// These timings, with the output stored after its consumers started.
    pub fn in_background(mut self) -> AssetTimings {
        self.background = true;
        self
    }

    /// All of it.
    pub fn total(&self) -> Duration {
        self.load + self.compute + self.store
    }
}

/// Where a recorded run's time went, phase by phase, in the order they happen. Their sum is
/// the run's wall time up to the moment it is recorded as ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RunTimings {
    /// Planning: the selection, staleness, partitions, what to load.
    pub plan: Duration,
    /// Loading the inputs stored by earlier runs.
    pub load: Duration,
    /// Recording the run's start (and its claims) in the store.
    pub begin: Duration,
    /// The assets, from the first start to the last outcome (see each asset's
    /// [`AssetTimings`]).
    pub execute: Duration,
    /// Waiting, after the last asset, for the store's writer to commit the last events.
    pub record_wait: Duration,
    /// Making the run's written outputs durable (one sync for the run).
    pub sync: Duration,
    /// What the store's writer spent committing events, on its own thread while the assets
    /// ran (not part of the sum).
    pub record_background: Duration,
}

impl RunTimings {
    /// The phases one after the other: plan, load, begin, execute, record wait, sync.
    pub fn total(&self) -> Duration {
        self.phases().iter().map(|p| p.2).sum()
    }

    /// The phases in order, each as (short name, what it is, time): the one list the CLI and
    /// the web UI show.
    pub fn phases(&self) -> [(&'static str, &'static str, Duration); 6] {
        [
            ("plan", "plan", self.plan),
            ("load", "load stored inputs", self.load),
            ("start", "record the start", self.begin),
            ("assets", "run the assets", self.execute),
            ("store", "wait for the store", self.record_wait),
            ("sync", "sync the outputs", self.sync),
        ]
    }
}

/// A duration as people read it, to three significant digits or so: `68 µs`, `1.7 ms`,
/// `2.80 s` (the CLI's tables and the web UI's).
pub(crate) fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
