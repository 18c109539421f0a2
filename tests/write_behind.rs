//! Write-behind: the consumers of a large output start from the value in memory while its I/O
//! manager writes it in the background; what is recorded stays true (every materialization
//! after its upstreams', with their versions; nothing recorded for an output that was not
//! written; a failed write fails its asset and keeps the stored version). A test manager
//! asks for background writes of every output and holds them until the test's assets say
//! they ran, so nothing here depends on timing.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orch::io::{
    InputContext, IoManager, LoadError, OutputContext, StagedOutput, Stored, Storing, Value,
    WriteBehind,
};
use orch::prelude::*;
use orch::storage::{EventKind, RunFilter, RunStatus, SqliteStorage, Storage};
use orch::{AssetStatus, Instance, RunResult};

/// The tests share the assets and the log: one at a time.
static TURN: Mutex<()> = Mutex::new(());
/// What happened, in order: assets computing, stores beginning and ending.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOGGED: Condvar = Condvar::new();
/// Changes the values from run to run.
static ROUND: AtomicU64 = AtomicU64::new(1);

fn turn() -> MutexGuard<'static, ()> {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    logged().clear();
    turn
}

fn logged() -> MutexGuard<'static, Vec<String>> {
    LOG.lock().unwrap_or_else(|p| p.into_inner())
}

/// Logs `line`; in a child process, also leaves a marker file for the parent to see.
fn log(line: String) {
    if let Ok(dir) = std::env::var("ORCH_TEST_MARKERS") {
        std::fs::write(std::path::Path::new(&dir).join(line.replace(' ', "_")), b"").unwrap();
    }
    logged().push(line);
    LOGGED.notify_all();
}

/// Waits until `line` is logged; an error after a minute (write-behind is broken).
fn wait_for(line: &str) -> Result<(), orch::BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = logged();
    while !log.iter().any(|l| l == line) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("`{line}` never happened while the store waited for it").into());
        }
        log = LOGGED.wait_timeout(log, left).unwrap().0;
    }
    Ok(())
}

fn position(line: &str) -> usize {
    let log = logged();
    log.iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("`{line}` is not in {log:?}"))
}

#[asset(group = "wb", io_manager = "gated")]
fn raw() -> Vec<u64> {
    log("raw computed".to_owned());
    vec![ROUND.load(Ordering::SeqCst); 1000]
}

#[asset(group = "wb", io_manager = "gated")]
fn cleaned(raw: &Vec<u64>) -> Vec<u64> {
    log("cleaned computed".to_owned());
    raw.iter().map(|x| x + 1).collect()
}

/// The default manager: cheap to store, so queued behind `cleaned`'s background write.
#[asset(group = "wb")]
fn summary(cleaned: &Vec<u64>) -> u64 {
    log("summary computed".to_owned());
    cleaned.iter().sum()
}

/// Stores `Vec<u64>` outputs as files (written aside, then renamed into place), in the
/// background, staged or not, and can hold one asset's store until lines are logged, or fail
/// it.
struct Gated {
    dir: std::path::PathBuf,
    /// What `storing` says each output holds.
    bytes: usize,
    /// Whether it can stage outputs (write them aside before its upstreams are stored).
    stages: bool,
    /// This asset's store waits for these lines.
    hold: Option<(&'static str, &'static [&'static str])>,
    /// This asset's store fails.
    fail: Option<&'static str>,
}

impl Gated {
    fn new(home: &std::path::Path) -> Gated {
        Gated {
            dir: home.join("gated"),
            bytes: 1,
            stages: false,
            hold: None,
            fail: None,
        }
    }

    fn write_aside(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Aside, BoxError> {
        let key = ctx.key.to_string();
        log(format!("{key} store begins"));
        if let Some((asset, lines)) = self.hold
            && asset == key
        {
            for line in lines {
                wait_for(line)?;
            }
        }
        if self.fail == Some(key.as_str()) {
            log(format!("{key} store fails"));
            return Err("no space left on device (os error 28)".into());
        }
        let numbers = value.downcast_ref::<Vec<u64>>().ok_or("not a Vec<u64>")?;
        let text: Vec<String> = numbers.iter().map(u64::to_string).collect();
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(&key);
        std::fs::write(path.with_extension("tmp"), text.join(","))?;
        log(format!("{key} written aside"));
        let version = numbers
            .iter()
            .fold(7u64, |h, n| h.wrapping_mul(31).wrapping_add(*n));
        Ok(Aside {
            tmp: path.with_extension("tmp"),
            path,
            key,
            version: format!("{version:x}"),
            published: false,
        })
    }
}

/// An output written beside its file.
struct Aside {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    key: String,
    version: String,
    published: bool,
}

impl StagedOutput for Aside {
    fn publish(mut self: Box<Self>) -> Result<Stored, BoxError> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.published = true;
        log(format!("{} store ends", self.key));
        Ok(Stored::version(Some(self.version.clone())))
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        if !self.published {
            std::fs::remove_file(&self.tmp).unwrap();
            log(format!("{} discarded", self.key));
        }
    }
}

impl IoManager for Gated {
    fn storing(&self, _: &OutputContext<'_>, _: &Value) -> Storing {
        Storing::Background { bytes: self.bytes }
    }

    fn handle_output(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Stored, BoxError> {
        Box::new(self.write_aside(ctx, value)?).publish()
    }

    fn stage_output<'a>(
        &'a self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Option<Result<Box<dyn StagedOutput + 'a>, BoxError>> {
        self.stages.then(|| {
            self.write_aside(ctx, value)
                .map(|aside| Box::new(aside) as Box<dyn StagedOutput>)
        })
    }

    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        Ok(Arc::new(read(&self.dir.join(ctx.key.to_string()))))
    }
}

fn read(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect()
}

fn instance(home: &std::path::Path, gated: Gated, write_behind: WriteBehind) -> Instance {
    Instance::builder()
        .home(home)
        .io_manager("gated", Arc::new(gated))
        .write_behind(write_behind)
        .build()
        .unwrap()
}

fn run(instance: &Instance) -> RunResult {
    ROUND.fetch_add(1, Ordering::SeqCst);
    Materialize::select("group:wb")
        .instance(instance)
        .run()
        .unwrap()
}

/// The asset's latest materialization in the store.
fn latest(home: &std::path::Path, asset: &str) -> orch::storage::EventRecord {
    let store = SqliteStorage::open(home).unwrap();
    store.materializations(asset, 1).unwrap().remove(0)
}

fn stored_raw(home: &std::path::Path) -> Vec<u64> {
    read(&home.join("gated/raw"))
}

/// A run that stores everything, nothing held; returns it and what it stored for `raw` and
/// `cleaned`.
fn stored_once(home: &std::path::Path) -> (RunResult, Vec<u64>, Vec<u64>) {
    let result = run(&instance(home, Gated::new(home), WriteBehind::default()));
    assert!(result.success(), "{:?}", result.outcomes());
    (result, stored_raw(home), read(&home.join("gated/cleaned")))
}

#[test]
fn consumers_start_while_an_output_is_written_in_the_background() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    // `raw`'s write goes on until `summary`, two steps downstream, has run.
    let gated = Gated {
        hold: Some(("raw", &["summary computed"])),
        ..Gated::new(dir.path())
    };
    let result = run(&instance(dir.path(), gated, WriteBehind::default()));
    assert!(result.success(), "{:?} {:?}", result.outcomes(), logged());
    assert!(position("summary computed") < position("raw store ends"));
    // A store starts only after its upstream's has ended.
    assert!(position("raw store ends") < position("cleaned store begins"));

    // Recorded in order, each naming the version its upstream stored.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let events = store.events(result.run_id().as_str()).unwrap();
    let materialized: Vec<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::Materialized)
        .map(|e| e.asset.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(materialized, ["raw", "cleaned", "summary"]);
    let (raw, cleaned, summary) = (
        latest(dir.path(), "raw"),
        latest(dir.path(), "cleaned"),
        latest(dir.path(), "summary"),
    );
    assert!(raw.data_version.is_some());
    assert_eq!(
        cleaned.inputs,
        [("raw".to_owned(), raw.data_version.clone())]
    );
    assert_eq!(
        summary.inputs,
        [("cleaned".to_owned(), cleaned.data_version)]
    );
    // The background write's time is the asset's store time, marked as such; so is the
    // store queued behind one.
    let timings = raw.timings.unwrap();
    assert!(timings.store > Duration::ZERO && timings.background);
    assert!(latest(dir.path(), "summary").timings.unwrap().background);
    assert_eq!(
        stored_raw(dir.path()),
        vec![ROUND.load(Ordering::SeqCst); 1000]
    );

    // `run show --timings` says so.
    let shown = common::this_binary_as_child()
        .env("ORCH_TEST_CHILD_CLI", "run show last --timings")
        .env("ORCH_HOME", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    let row = |asset: &str| {
        text.lines()
            .find(|l| l.starts_with(asset))
            .unwrap_or_else(|| panic!("no `{asset}` row in {text}"))
            .to_owned()
    };
    assert!(row("raw").contains("(bg)"), "{text}");
    assert!(
        text.contains("(bg: stored in the background while its consumers ran)"),
        "{text}"
    );
}

#[test]
fn without_write_behind_or_over_its_budget_outputs_are_stored_before_consumers_start() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    for write_behind in [
        WriteBehind::OFF,
        // Room for one write, but not for its memory.
        WriteBehind::new(1, 0),
    ] {
        logged().clear();
        let result = run(&instance(dir.path(), Gated::new(dir.path()), write_behind));
        assert!(result.success());
        assert!(
            position("raw store ends") < position("cleaned computed"),
            "{write_behind:?}: {:?}",
            logged()
        );
        assert!(position("cleaned store ends") < position("summary computed"));
        assert!(!latest(dir.path(), "raw").timings.unwrap().background);
    }
}

#[test]
fn a_background_write_begins_beside_its_upstreams_and_is_published_after_them() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    // `raw`'s write goes on until `cleaned`'s has been written aside.
    let gated = Gated {
        stages: true,
        hold: Some(("raw", &["cleaned written aside"])),
        ..Gated::new(dir.path())
    };
    let result = run(&instance(dir.path(), gated, WriteBehind::default()));
    assert!(result.success(), "{:?} {:?}", result.outcomes(), logged());
    assert!(position("raw store ends") < position("cleaned store ends"));
    let (raw, cleaned) = (latest(dir.path(), "raw"), latest(dir.path(), "cleaned"));
    assert_eq!(cleaned.inputs, [("raw".to_owned(), raw.data_version)]);
    assert_eq!(
        read(&dir.path().join("gated/cleaned")),
        vec![ROUND.load(Ordering::SeqCst) + 1; 1000]
    );
}

#[test]
fn a_failed_background_write_fails_its_asset_refuses_what_depends_on_it_and_keeps_the_stored_version()
 {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let (first, before, cleaned_before) = stored_once(dir.path());
    let stored_cleaned = || read(&dir.path().join("gated/cleaned"));

    // `raw`'s write fails once its consumers have run (and `cleaned` is written aside, by a
    // manager that stages).
    for stages in [false, true] {
        logged().clear();
        let gated = Gated {
            stages,
            hold: Some((
                "raw",
                if stages {
                    &["summary computed", "cleaned written aside"]
                } else {
                    &["summary computed"]
                },
            )),
            fail: Some("raw"),
            ..Gated::new(dir.path())
        };
        let result = run(&instance(dir.path(), gated, WriteBehind::default()));
        assert!(!result.success());
        let error = |key: &str| match &result.outcome(key).unwrap().status {
            AssetStatus::Failed(failure) => failure.to_string(),
            other => panic!("`{key}` is {other:?}"),
        };
        assert_eq!(
            error("raw"),
            "could not store the output: no space left on device (os error 28)"
        );
        assert_eq!(
            error("cleaned"),
            "could not store the output: the output of its upstream `raw` could not be stored, and a stored output never depends on one that is not; see `raw`"
        );
        assert!(error("summary").contains("its upstream `cleaned` could not be stored"));
        // Not stored, or written aside and discarded.
        let log = logged().clone();
        assert!(!log.iter().any(|l| l == "cleaned store ends"), "{log:?}");
        assert_eq!(
            log.iter().any(|l| l == "cleaned discarded"),
            stages,
            "{log:?}"
        );

        // Nothing of the failed run is recorded as materialized, and the stored files are
        // the first run's.
        for asset in ["raw", "cleaned", "summary"] {
            assert_eq!(latest(dir.path(), asset).run_id, *first.run_id(), "{asset}");
        }
        assert_eq!(stored_raw(dir.path()), before);
        assert_eq!(stored_cleaned(), cleaned_before);
        let store = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(
            store.run(result.run_id().as_str()).unwrap().status,
            RunStatus::Failed
        );
    }
}

// ---- many inline stores waiting on the blocking pool --------------------------------------

#[asset(group = "starve", io_manager = "gated")]
fn wide_source() -> Vec<u64> {
    vec![ROUND.load(Ordering::SeqCst); 10]
}

/// The default manager: cheap, so parked behind `wide_source`'s background write.
#[asset(group = "starve")]
fn wide_middle(wide_source: &Vec<u64>) -> Vec<u64> {
    wide_source.clone()
}

/// Keeps outputs in memory, stored before their consumers start (the default `Storing`).
struct InlineMemory(orch::io::MemoryIoManager);

impl IoManager for InlineMemory {
    fn handle_output(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Stored, BoxError> {
        self.0.handle_output(ctx, value)
    }
    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        self.0.load_input(ctx)
    }
}

macro_rules! wide_consumers {
    ($($name:ident)*) => {$(
        #[asset(group = "starve", io_manager = "inline_memory")]
        async fn $name(wide_middle: &Vec<u64>) -> u64 {
            log(format!("{} computed", stringify!($name)));
            wide_middle.len() as u64
        }
    )*};
}
wide_consumers!(w0 w1 w2 w3 w4 w5 w6 w7 w8 w9);

#[test]
fn stores_waiting_for_a_parked_store_cannot_starve_it() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    // `wide_source`'s write ends once all ten consumers of `wide_middle` have run: their
    // stores (inline) then wait for `wide_middle`'s (parked behind it), more of them than a
    // run with one job has blocking threads.
    let gated = Gated {
        hold: Some((
            "wide_source",
            &[
                "w0 computed",
                "w1 computed",
                "w2 computed",
                "w3 computed",
                "w4 computed",
                "w5 computed",
                "w6 computed",
                "w7 computed",
                "w8 computed",
                "w9 computed",
            ],
        )),
        ..Gated::new(dir.path())
    };
    let instance = Instance::builder()
        .home(dir.path())
        .io_manager("gated", Arc::new(gated))
        .io_manager(
            "inline_memory",
            Arc::new(InlineMemory(orch::io::MemoryIoManager::default())),
        )
        .build()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = Materialize::select("group:starve")
            .jobs(1)
            .instance(&instance)
            .run()
            .unwrap();
        done.send(result).unwrap();
    });
    let result = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("the run hung: a parked store waited for a thread its waiters held");
    assert!(result.success(), "{:?}", result.outcomes());
}

/// Not a test of its own: the body of the child process the crash test starts. Its `raw`
/// store waits forever (for a line nobody logs), after `summary` has run.
#[test]
fn child_process() {
    // A child that is the command line itself.
    if common::ran_cli_child() {
        return;
    }
    let Ok(home) = std::env::var("ORCH_TEST_CHILD_HOME") else {
        return;
    };
    let home = std::path::Path::new(&home);
    let gated = Gated {
        stages: std::env::var_os("ORCH_TEST_STAGES").is_some(),
        hold: Some(("raw", &["the parent lets go"])),
        ..Gated::new(home)
    };
    run(&instance(home, gated, WriteBehind::default()));
}

#[test]
fn a_process_killed_during_background_writes_records_nothing_it_did_not_write() {
    killed_during_background_writes(false);
}

#[test]
fn a_process_killed_with_outputs_written_aside_records_and_publishes_none_of_them() {
    killed_during_background_writes(true);
}

fn killed_during_background_writes(stages: bool) {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let (first, before, cleaned_before) = stored_once(dir.path());

    let markers = tempfile::tempdir().unwrap();
    let mut child = common::this_binary_as_child();
    if stages {
        child.env("ORCH_TEST_STAGES", "1");
    }
    let mut child = child
        .env("ORCH_TEST_CHILD_HOME", dir.path())
        .env("ORCH_TEST_MARKERS", markers.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once `raw` is being written and everything downstream of it has run (and
    // `cleaned` is written aside, with a manager that stages).
    let markers_needed: &[&str] = if stages {
        &[
            "raw_store_begins",
            "summary_computed",
            "cleaned_written_aside",
        ]
    } else {
        &["raw_store_begins", "summary_computed"]
    };
    let t0 = Instant::now();
    while !markers_needed
        .iter()
        .all(|m| markers.path().join(m).exists())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the child never got there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = SqliteStorage::open(dir.path()).unwrap();
    let crashed = store.recover_crashed().unwrap();
    assert_eq!(crashed.len(), 1, "{crashed:?}");
    let killed = store.runs(&RunFilter::recent(1)).unwrap().remove(0);
    assert_eq!(killed.status, RunStatus::Crashed);
    let events = store.events(killed.id.as_str()).unwrap();
    assert!(
        !events.iter().any(|e| e.kind == EventKind::Materialized),
        "{events:?}"
    );
    for asset in ["raw", "cleaned", "summary"] {
        assert_eq!(latest(dir.path(), asset).run_id, *first.run_id(), "{asset}");
    }
    assert_eq!(stored_raw(dir.path()), before);
    assert_eq!(read(&dir.path().join("gated/cleaned")), cleaned_before);
    // The next run goes on from there.
    stored_once(dir.path());
}
