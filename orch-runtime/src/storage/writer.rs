//! [`StoreSink`]: turns a run's events into rows and writes them on a background thread, in
//! batches (one transaction per batch), so the run never waits for the disk.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use orch_core::{AssetGraph, AssetKey, LogLine, RunId};
use tokio::sync::broadcast;

use super::{EventKind, EventRecord, LogRecord, Storage, StorageError};
use crate::events::{EventSink, RunEvent};

/// Rows at most per transaction.
const BATCH: usize = 4096;

/// How long a batch stays open for more rows after its first one. Each commit rewrites the
/// B-tree pages it touches into the WAL (about 32 KiB for a one-event commit), so committing
/// every row as it comes made a slow run slower still: the writer then competed with the
/// assets for the disk and the CPU. 5 ms bounds the store to 200 commits a second while events
/// still show up in `run show` at once to a person.
const LINGER: Duration = Duration::from_millis(5);

/// How often the writer says the run's owner is alive while the run is quiet.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Most rows are events: boxing them would add an allocation per event for a smaller channel.
#[allow(clippy::large_enum_variant)]
enum Row {
    Event(EventRecord),
    Log(LogRecord),
}

/// Records one run's events into a [`Storage`], and hands each to the live feed at once.
pub struct StoreSink {
    run_id: RunId,
    graph: &'static AssetGraph,
    /// The partitions the run materializes (one, or a range's), recorded on its partitioned
    /// assets' events: one event per partition.
    keys: Option<Arc<[String]>>,
    tx: Option<Sender<Row>>,
    writer: Option<JoinHandle<Result<Duration, StorageError>>>,
    /// Subscribers of the instance's live feed.
    feed: Option<broadcast::Sender<EventRecord>>,
    /// In a run over a range: each partitioned asset's version per partition (computed in
    /// the run, or loaded), so a consumer's partition records the version of the partition it
    /// read, not the range's.
    range_versions:
        std::collections::HashMap<String, std::collections::HashMap<String, Option<String>>>,
    /// In a one-partition run: what each partitioned asset stored for the run's partition, so
    /// a consumer that maps partitions (`offset = -1`) records what it actually read.
    run_versions: std::collections::HashMap<String, Option<String>>,
    /// For the stored versions of partitions written by earlier runs.
    storage: Arc<dyn Storage>,
    /// The writer's channel as [`StoreSink::live_log`] holds it: emptied by `finish`, so a
    /// context that outlives the run (a detached asset thread) cannot keep the writer open.
    /// Set when log lines come through it (then the lines an asset's end event carries are
    /// not written again).
    live: Option<Arc<std::sync::Mutex<Option<Sender<Row>>>>>,
    /// A capturing sink's rows, kept instead of written ([`StoreSink::capturing`]).
    captured: Option<Receiver<Row>>,
}

impl std::fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSink")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl StoreSink {
    /// Starts the writer thread for run `run_id` (already begun in `storage`); `feed`
    /// receives every event as it is queued.
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        graph: &'static AssetGraph,
        run_id: RunId,
        keys: Option<Arc<[String]>>,
        feed: Option<broadcast::Sender<EventRecord>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let id = run_id.as_str().to_owned();
        let reader = Arc::clone(&storage);
        let writer = std::thread::Builder::new()
            .name("orch-store".to_owned())
            .spawn(move || write_loop(&*storage, &id, rx))
            .ok();
        StoreSink {
            run_id,
            graph,
            keys,
            tx: Some(tx),
            writer,
            feed,
            range_versions: std::collections::HashMap::new(),
            run_versions: std::collections::HashMap::new(),
            storage: reader,
            live: None,
            captured: None,
        }
    }

    /// A sink that turns run `run_id`'s events into rows as [`StoreSink::new`]'s does, but
    /// keeps them for [`StoreSink::finish_captured`] instead of writing them: what a worker
    /// commits with the end of its step, in one transaction.
    pub(crate) fn capturing(
        storage: Arc<dyn Storage>,
        graph: &'static AssetGraph,
        run_id: RunId,
        keys: Option<Arc<[String]>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        StoreSink {
            run_id,
            graph,
            keys,
            tx: Some(tx),
            writer: None,
            feed: None,
            range_versions: std::collections::HashMap::new(),
            run_versions: std::collections::HashMap::new(),
            storage,
            live: None,
            captured: Some(rx),
        }
    }

    /// A capturing sink's events and log lines, in the order they came.
    pub(crate) fn finish_captured(mut self) -> (Vec<EventRecord>, Vec<(String, LogRecord)>) {
        self.tx.take();
        let (mut events, mut logs) = (Vec::new(), Vec::new());
        if let Some(rx) = self.captured.take() {
            for row in rx.try_iter() {
                match row {
                    Row::Event(e) => events.push(e),
                    Row::Log(l) => logs.push((self.run_id.as_str().to_owned(), l)),
                }
            }
        }
        (events, logs)
    }

    /// Where the run's assets' log lines go as they are written: straight to the writer, so
    /// a follower (the web UI, `run show --follow`) sees them while the asset runs.
    pub(crate) fn live_log(&mut self) -> orch_core::LiveLog {
        let tx = Arc::new(std::sync::Mutex::new(self.tx.clone()));
        self.live = Some(Arc::clone(&tx));
        orch_core::LiveLog::new(move |key: &AssetKey, line: &LogLine| {
            let tx = tx.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(tx) = &*tx {
                let _ = tx.send(Row::Log(LogRecord {
                    asset: key.to_string(),
                    time: line.time,
                    level: line.level,
                    message: line.message.clone(),
                }));
            }
        })
    }

    /// In a run over a range: the stored versions of the partitions of loaded upstream `key`.
    pub(crate) fn known_partition_versions(
        &mut self,
        key: &AssetKey,
        versions: std::collections::HashMap<String, Option<String>>,
    ) {
        self.range_versions.insert(key.to_string(), versions);
    }

    /// Writes everything still queued and stops the thread; returns how long the writer
    /// spent committing, or the first write error.
    pub fn finish(mut self) -> Result<Duration, StorageError> {
        self.tx.take();
        if let Some(live) = &self.live {
            live.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        match self.writer.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(StorageError::Io {
                    path: "orch-store thread".into(),
                    source: std::io::Error::other("the store's writer thread panicked"),
                })
            }),
            None => Err(StorageError::Io {
                path: "orch-store thread".into(),
                source: std::io::Error::other("could not start the store's writer thread"),
            }),
        }
    }

    fn send(&self, row: Row) {
        if let (Row::Event(event), Some(feed)) = (&row, &self.feed)
            && feed.receiver_count() > 0
        {
            // No subscriber is not an error; a lagging one loses the oldest events.
            let _ = feed.send(event.clone());
        }
        if let Some(tx) = &self.tx {
            // A dead writer has already recorded its error; `finish` reports it.
            let _ = tx.send(row);
        }
    }

    /// The version of the partitions that `consumer`'s input `up` read, when the input maps
    /// partitions in a one-partition run (`None` otherwise: what the executor recorded is
    /// right). The run's own partition of `up` comes from this run; the others from the store.
    fn mapped_version(&self, consumer: &AssetKey, up: &AssetKey) -> Option<Option<String>> {
        let graph = self.graph;
        let node = graph.node(graph.id_of(consumer)?);
        let i = node.inputs.iter().position(|&u| graph.node(u).key == *up)?;
        let mapping = node.input_mapping(i);
        if mapping == orch_core::PartitionMapping::Identity {
            return None;
        }
        let [partition] = self.keys.as_deref()? else {
            return None;
        };
        let partitions = graph.node(node.inputs[i]).partitions.as_ref()?;
        let mapped = partitions
            .mapped(partition, mapping, jiff::Timestamp::now())
            .ok()?;
        let mut versions: std::collections::HashMap<String, Option<String>> = self
            .storage
            .partition_statuses(&up.to_string())
            .ok()?
            .into_iter()
            .filter(|s| s.kind == EventKind::Materialized)
            .map(|s| (s.partition, s.data_version))
            .collect();
        if let Some(version) = self.run_versions.get(&up.to_string()) {
            versions.insert(partition.clone(), version.clone());
        }
        if mapped.iter().any(|k| !versions.contains_key(k)) {
            return Some(None);
        }
        Some(crate::run::partitions::combined_version(&mapped, |k| {
            versions.get(k).and_then(|v| v.as_deref())
        }))
    }

    /// The run's partitions, for the run's partitioned assets.
    fn partitions_of(&self, key: &AssetKey) -> Option<&[String]> {
        let keys = self.keys.as_ref()?;
        let id = self.graph.id_of(key)?;
        self.graph.node(id).partitions.as_ref()?;
        Some(keys)
    }

    fn event(&self, key: &AssetKey, kind: EventKind) -> EventRecord {
        let code_version = self
            .graph
            .id_of(key)
            .map(|id| self.graph.node(id).def.code_version().to_owned());
        EventRecord {
            partition: self.partitions_of(key).and_then(|k| k.first()).cloned(),
            time: SystemTime::now(),
            code_version,
            ..EventRecord::new(self.run_id.clone(), Some(key.clone()), kind)
        }
    }

    fn logs(&self, key: &AssetKey, logs: &[LogLine]) {
        if self.live.is_some() {
            return;
        }
        for line in logs {
            self.send(Row::Log(LogRecord {
                asset: key.to_string(),
                time: line.time,
                level: line.level,
                message: line.message.clone(),
            }));
        }
    }
}

impl EventSink for StoreSink {
    fn on_event(&mut self, event: &RunEvent<'_>) {
        let row = match event {
            RunEvent::AssetStarted { key, attempt } => EventRecord {
                attempt: Some(*attempt),
                ..self.event(key, EventKind::Started)
            },
            RunEvent::AssetRetrying {
                key,
                attempt,
                error,
            } => EventRecord {
                attempt: Some(*attempt),
                message: Some(error.to_string()),
                ..self.event(key, EventKind::Retried)
            },
            RunEvent::AssetSucceeded {
                key,
                duration,
                logs,
                input_versions,
                partitions,
                timings,
                ..
            } if !partitions.is_empty() => {
                // A run over a range: each partition with its own version and metadata, and
                // the version of each input partition it read.
                self.logs(key, logs);
                for p in partitions.iter() {
                    let inputs = input_versions
                        .iter()
                        .map(|(k, v)| {
                            let k = k.to_string();
                            let v = self
                                .range_versions
                                .get(&k)
                                .and_then(|by_key| by_key.get(&p.key))
                                .map_or_else(|| v.clone(), Clone::clone);
                            (k, v)
                        })
                        .collect();
                    self.send(Row::Event(EventRecord {
                        partition: Some(p.key.clone()),
                        duration: Some(*duration),
                        timings: Some(*timings),
                        metadata: p.metadata.clone(),
                        data_version: p.data_version.clone(),
                        inputs,
                        ..self.event(key, EventKind::Materialized)
                    }));
                }
                self.range_versions.insert(
                    key.to_string(),
                    partitions
                        .iter()
                        .map(|p| (p.key.clone(), p.data_version.clone()))
                        .collect(),
                );
                return;
            }
            RunEvent::AssetSucceeded {
                key,
                duration,
                metadata,
                logs,
                data_version,
                input_versions,
                timings,
                ..
            } => {
                self.logs(key, logs);
                let inputs = input_versions
                    .iter()
                    .map(|(k, v)| {
                        let v = self.mapped_version(key, k).unwrap_or_else(|| v.clone());
                        (k.to_string(), v)
                    })
                    .collect();
                if self.partitions_of(key).is_some() {
                    self.run_versions
                        .insert(key.to_string(), data_version.map(str::to_owned));
                }
                EventRecord {
                    duration: Some(*duration),
                    timings: Some(*timings),
                    metadata: metadata.to_vec(),
                    data_version: data_version.map(str::to_owned),
                    inputs,
                    ..self.event(key, EventKind::Materialized)
                }
            }
            RunEvent::AssetFailed {
                key,
                duration,
                error,
                logs,
                timings,
            } => {
                self.logs(key, logs);
                EventRecord {
                    duration: Some(*duration),
                    timings: Some(*timings),
                    message: Some(error.to_string()),
                    ..self.event(key, EventKind::Failed)
                }
            }
            // One event for the run, even over a range of partitions (the check saw the
            // range's value once); it carries the run's first partition.
            RunEvent::CheckEvaluated { key, check } => {
                let template = self.event(key, EventKind::CheckEvaluated);
                self.send(Row::Event(crate::checks::check_event(
                    &self.run_id,
                    template.partition,
                    template.code_version,
                    check,
                )));
                return;
            }
            RunEvent::AssetSkipped {
                key,
                because_of,
                check,
            } => EventRecord {
                message: Some(skip_reason(because_of, *check)),
                ..self.event(key, EventKind::Skipped)
            },
            RunEvent::AssetNotRequired { key, because_of } => EventRecord {
                message: Some(not_required_reason(because_of)),
                ..self.event(key, EventKind::Skipped)
            },
            RunEvent::AssetCanceled { key } => EventRecord {
                message: Some("the run was canceled".to_owned()),
                ..self.event(key, EventKind::Canceled)
            },
            _ => return,
        };
        // A run over a range records the event once per partition.
        let more = row_key(event)
            .and_then(|key| self.partitions_of(key))
            .map_or(&[][..], |k| k.get(1..).unwrap_or_default())
            .to_vec();
        let template = (!more.is_empty()).then(|| row.clone());
        self.send(Row::Event(row));
        if let Some(template) = template {
            for partition in more {
                self.send(Row::Event(EventRecord {
                    partition: Some(partition),
                    ..template.clone()
                }));
            }
        }
    }
}

impl Drop for StoreSink {
    /// A sink dropped without `finish` (the run failed to start) lets its writer end too.
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

/// Why an asset was skipped, for people: `upstream `X` failed`, or `check `c` of `X`
/// failed`.
pub(crate) fn skip_reason(because_of: &AssetKey, check: Option<&str>) -> String {
    match check {
        Some(check) => format!("check `{check}` of `{because_of}` failed"),
        None => format!("upstream `{because_of}` failed"),
    }
}

/// Why a step did not run when an upstream op's optional output was `None`. The message of
/// its `skipped` event starts with [`NOT_REQUIRED`], which re-execution reads.
pub(crate) fn not_required_reason(because_of: &AssetKey) -> String {
    format!("{NOT_REQUIRED} `{because_of}` produced no output")
}

/// How the message of a `skipped` event that is not a failure starts.
pub(crate) const NOT_REQUIRED: &str = "not required: upstream";

/// The asset an event is about.
fn row_key<'e>(event: &'e RunEvent<'_>) -> Option<&'e AssetKey> {
    match event {
        RunEvent::AssetStarted { key, .. }
        | RunEvent::AssetRetrying { key, .. }
        | RunEvent::AssetSucceeded { key, .. }
        | RunEvent::AssetFailed { key, .. }
        | RunEvent::AssetSkipped { key, .. }
        | RunEvent::AssetNotRequired { key, .. }
        | RunEvent::AssetCanceled { key } => Some(key),
        _ => None,
    }
}

/// Commits the run's rows as they come; returns the time spent committing.
fn write_loop(
    storage: &dyn Storage,
    run_id: &str,
    rx: Receiver<Row>,
) -> Result<Duration, StorageError> {
    let mut first_error = None;
    let mut busy = Duration::ZERO;
    let mut events = Vec::new();
    let mut logs = Vec::new();
    // Block for one row, then take what else comes within `LINGER` (or until `BATCH`). A
    // quiet run (one long asset) still says every `HEARTBEAT` that its owner is alive.
    loop {
        let row = match rx.recv_timeout(HEARTBEAT) {
            Ok(row) => row,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = storage.heartbeat(run_id) {
                    first_error.get_or_insert(e);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let deadline = Instant::now() + LINGER;
        let mut next = Some(row);
        while let Some(row) = next {
            match row {
                Row::Event(e) => events.push(e),
                Row::Log(l) => logs.push((run_id.to_owned(), l)),
            }
            next = if events.len() + logs.len() < BATCH {
                // Disconnected (the run is over) or timed out: commit what we have.
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            } else {
                None
            };
        }
        let started = Instant::now();
        if let Err(e) = storage.append(&events, &logs) {
            first_error.get_or_insert(e);
        }
        busy += started.elapsed();
        events.clear();
        logs.clear();
    }
    first_error.map_or(Ok(busy), Err)
}
