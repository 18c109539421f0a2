//! The daemon over the library API, in process: the run queue's limits, runs that wait for
//! their assets, runs that can never start, the lease (refused, taken over once it lapses),
//! and the long-running loop (it starts what others queue, and lets go when stopped).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use orch::daemon::{DAEMON_LEASE, Daemon, DaemonError, DaemonEvent, DaemonOptions, QueueLimits};
use orch::prelude::*;
use orch::storage::{RunLock, RunRecord, RunStatus};

// ---- assets that record how many runs are inside them at once ------------------------------

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static MAX_ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// How many runs an asset waits to see inside at once before it returns (10 s at most).
static WANT: AtomicUsize = AtomicUsize::new(1);
/// One test at a time uses the counters.
static COUNTERS: Mutex<()> = Mutex::new(());

fn occupy() -> u32 {
    let now = ACTIVE.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_ACTIVE.fetch_max(now, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ACTIVE.load(Ordering::SeqCst) < WANT.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // Long enough for a run the queue should have held back to show up.
    std::thread::sleep(Duration::from_millis(30));
    ACTIVE.fetch_sub(1, Ordering::SeqCst);
    1
}

#[asset(group = "queue")]
fn q1() -> u32 {
    occupy()
}

#[asset(group = "queue")]
fn q2() -> u32 {
    occupy()
}

#[asset(group = "queue")]
fn q3() -> u32 {
    occupy()
}

#[asset(group = "queue")]
fn q4() -> u32 {
    occupy()
}

#[asset(group = "plain")]
fn plain() -> u32 {
    7
}

fn options(max: usize) -> DaemonOptions {
    DaemonOptions {
        poll: Duration::from_millis(20),
        lease: Duration::from_secs(5),
        limits: QueueLimits {
            max_concurrent_runs: max,
            tag_limits: Vec::new(),
        },
        ..DaemonOptions::default()
    }
}

fn daemon(instance: &Instance, options: DaemonOptions) -> Daemon {
    Daemon::new(
        instance.clone(),
        orch::automation::automation().unwrap(),
        options,
    )
}

fn at() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

#[test]
fn the_queue_starts_runs_oldest_first_within_max_concurrent_runs() {
    let _one = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let enqueue = |name: &str| instance.enqueue(RunRequest::select(name).unwrap()).unwrap();

    // At most one at a time: four runs, never two inside their assets at once.
    MAX_ACTIVE.store(0, Ordering::SeqCst);
    WANT.store(1, Ordering::SeqCst);
    let ids: Vec<_> = ["q1", "q2", "q3", "q4"].map(enqueue).into();
    let mut started = Vec::new();
    let report = daemon(&instance, options(1))
        .once(at(), &mut |e| {
            if let DaemonEvent::Launched(id) = e {
                started.push(id.clone());
            }
        })
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(started, ids, "oldest first");
    assert_eq!(MAX_ACTIVE.load(Ordering::SeqCst), 1);

    // Two at a time: each asset waits until it sees another run inside; with the cap at two,
    // both pairs meet (a cap of one would make each wait out its 10 s and see one).
    MAX_ACTIVE.store(0, Ordering::SeqCst);
    WANT.store(2, Ordering::SeqCst);
    for name in ["q1", "q2", "q3", "q4"] {
        enqueue(name);
    }
    let report = daemon(&instance, options(2))
        .once(at(), &mut |_| {})
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.runs.len(), 4);
    assert_eq!(MAX_ACTIVE.load(Ordering::SeqCst), 2);
    WANT.store(1, Ordering::SeqCst);
}

#[test]
fn a_run_whose_assets_another_run_holds_waits_queued_then_runs() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let store = instance.storage();
    // Another process's run holds `plain` (its lock file proves it alive).
    let holder = RunRecord::new(orch::RunId::new(), &RunRequest::select("plain").unwrap(), 1);
    let lock = RunLock::acquire(dir.path(), holder.id.as_str()).unwrap();
    store.begin_run(&holder, &["plain".to_owned()]).unwrap();

    let queued = instance
        .enqueue(RunRequest::select("plain").unwrap())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let instance = instance.clone();
        std::thread::spawn(move || {
            daemon(&instance, options(5)).once(at(), &mut |e| {
                if let DaemonEvent::StillQueued(_, why) = e {
                    let _ = tx.send(why.to_owned());
                }
            })
        })
    };
    let why = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(why.contains("is being materialized by run"), "{why}");
    assert_eq!(
        store.run(queued.as_str()).unwrap().status,
        RunStatus::Queued
    );
    // The holder ends: the queued run starts and succeeds.
    store
        .end_run(holder.id.as_str(), RunStatus::Succeeded, SystemTime::now())
        .unwrap();
    drop(lock);
    let report = worker.join().unwrap().unwrap();
    assert_eq!(report.runs, [(queued.clone(), RunStatus::Succeeded)]);
}

#[test]
fn a_queued_run_that_can_never_start_is_recorded_as_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    // `plain` has no partitions.
    let bad = instance
        .enqueue(RunRequest::select("plain").unwrap().partition("2024-01-05"))
        .unwrap();
    let report = daemon(&instance, options(5))
        .once(at(), &mut |_| {})
        .unwrap();
    assert!(!report.success());
    let run = instance.storage().run(bad.as_str()).unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let events = instance.storage().events(bad.as_str()).unwrap();
    let why = events.last().and_then(|e| e.message.clone()).unwrap();
    assert!(why.starts_with("the run could not start: "), "{why}");
    assert!(why.contains("partition"), "{why}");
}

#[test]
fn a_second_daemon_is_refused_until_the_lease_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let store = instance.storage();
    // A daemon on another machine holds the store, with a short lease, and stops renewing.
    let lease = Duration::from_millis(300);
    store
        .acquire_lease(DAEMON_LEASE, "elsewhere", "daemon pid 7 on far-away", lease)
        .unwrap();
    let err = daemon(&instance, options(5))
        .once(at(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, DaemonError::Held(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("another daemon holds this store: daemon pid 7 on far-away"),
        "{err}"
    );
    std::thread::sleep(lease + Duration::from_millis(50));
    daemon(&instance, options(5))
        .once(at(), &mut |_| {})
        .unwrap();
    // Let go of when done.
    assert_eq!(store.lease(DAEMON_LEASE).unwrap(), None);
}

#[test]
fn the_long_running_daemon_starts_what_others_queue_and_lets_go_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let shutdown = orch::CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let running = {
        let (instance, shutdown) = (instance.clone(), shutdown.clone());
        std::thread::spawn(move || {
            daemon(&instance, options(5)).run(&shutdown, &mut |e| match e {
                DaemonEvent::Started { .. } => {
                    let _ = tx.send(None);
                }
                DaemonEvent::Ended(id, status) => {
                    let _ = tx.send(Some((id.clone(), status)));
                }
                _ => {}
            })
        })
    };
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), None);
    // While it runs, a second daemon is refused (it names this process).
    let err = daemon(&instance, options(5))
        .once(at(), &mut |_| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("daemon pid {} on", std::process::id())),
        "{err}"
    );
    // Another program queues a run: the daemon starts it.
    let id = instance
        .enqueue(RunRequest::select("plain").unwrap())
        .unwrap();
    let ended = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(ended, Some((id, RunStatus::Succeeded)));
    shutdown.cancel();
    running.join().unwrap().unwrap();
    assert_eq!(instance.storage().lease(DAEMON_LEASE).unwrap(), None);
}
