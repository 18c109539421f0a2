//! Outputs on object storage (`[storage] url`): each write under a key of its own, loads
//! through the committed materialization only (so an uncommitted write, a zombie's, is never
//! read), and sweeping what nothing refers to. On a shared file system (`file://`) always, and
//! on the S3 server `ORCH_TEST_S3_URL` names (`.ci/run` starts one and requires it).

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use orch::io::{IoManager, LOCATION, ObjectIoManager, OutputContext, SweepOptions};
use orch::polars::prelude::*;
use orch::prelude::*;
use orch::storage::Storage;
use orch::{AssetKey, Instance, RunId};

/// A new value each time it runs.
static SOURCE: AtomicU64 = AtomicU64::new(1);

#[asset(group = "objects")]
fn obj_source() -> u64 {
    SOURCE.fetch_add(1, Ordering::SeqCst)
}

#[asset(group = "objects")]
fn obj_doubled(obj_source: &u64) -> u64 {
    obj_source * 2
}

#[asset(group = "objects")]
fn obj_frame(obj_source: &u64) -> DataFrame {
    let n = *obj_source as i64;
    df!("n" => [n, n + 1, n + 2]).unwrap()
}

#[asset(group = "objects")]
fn obj_frame_sum(obj_frame: &DataFrame) -> i64 {
    obj_frame.column("n").unwrap().i64().unwrap().sum().unwrap()
}

/// A partition key with a `/`, which an object key's segment cannot hold as it is.
#[asset(group = "object_parts", partitions = static_partitions(["eu", "us/west"]))]
fn obj_region(ctx: &AssetContext) -> DataFrame {
    let region = ctx.partition_key().unwrap().to_owned();
    df!("region" => [region.clone(), region]).unwrap()
}

/// Every partition at once.
#[asset(group = "object_parts")]
fn obj_regions(obj_region: &DataFrame) -> usize {
    obj_region.height()
}

/// The assets share one counter: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn instance(home: &std::path::Path, url: &str) -> Instance {
    let mut config = orch::Config::default();
    config.set_home(home);
    config.set_storage_url(Some(url.to_owned()));
    Instance::builder().config(config).build().unwrap()
}

/// Outputs on a fresh shared directory (`file://`), and an instance over it.
struct Files {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    root: std::path::PathBuf,
    url: String,
    instance: Instance,
}

impl Files {
    fn new() -> Files {
        let (shared, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = shared.path().join("outputs");
        let url = format!("file://{}", root.display());
        let instance = instance(home.path(), &url);
        Files {
            _dirs: (shared, home),
            root,
            url,
            instance,
        }
    }

    /// The file a recorded location names.
    fn file_of(&self, location: &str) -> std::path::PathBuf {
        self.root
            .join(location.strip_prefix(&format!("{}/", self.url)).unwrap())
    }
}

fn materialize(instance: &Instance, selection: &str) -> orch::RunResult {
    let result = Materialize::select(selection)
        .instance(instance)
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    result
}

fn location(instance: &Instance, asset: &str) -> String {
    let latest = instance.storage().materializations(asset, 1).unwrap();
    let metadata = &latest.first().expect("materialized").metadata;
    metadata
        .iter()
        .find(|(label, _)| label == LOCATION)
        .map(|(_, value)| value.to_string())
        .unwrap_or_else(|| panic!("no {LOCATION} in {metadata:?}"))
}

fn objects(instance: &Instance) -> &ObjectIoManager {
    instance
        .io_managers()
        .objects()
        .expect("outputs on object storage")
}

/// What every backend must do; `url` is a fresh prefix.
fn outputs_are_read_only_through_committed_materializations(url: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let home = tempfile::tempdir().unwrap();
    let instance = instance(home.path(), url);
    let first = materialize(&instance, "group:objects");
    let source = *first.try_output::<obj_source>().unwrap();
    let committed = location(&instance, "obj_source");
    assert!(
        committed.starts_with(&format!("{url}/obj_source/{}.", first.run_id())),
        "{committed}"
    );
    assert!(location(&instance, "obj_frame").ends_with(".arrow"));
    let first_doubled = location(&instance, "obj_doubled");
    let first_sum = location(&instance, "obj_frame_sum");

    // A write nobody committed (a zombie worker's late output) sits beside it...
    let zombie_run = RunId::new();
    let key = AssetKey::new(["obj_source"]).unwrap();
    let def = orch::definitions().unwrap();
    let node = def.node(def.id_of(&key).unwrap());
    let zombie = objects(&instance)
        .handle_output(
            &OutputContext {
                key: &key,
                run_id: &zombie_run,
                partition: None,
                output_type: node.def.output_type(),
                codec: node.def.storage_codec(),
            },
            &(std::sync::Arc::new(999u64) as orch::io::Value),
        )
        .unwrap();
    assert!(zombie.metadata.iter().any(|(l, _)| l == LOCATION));

    // ...and is never read: the consumers load what the store says was committed.
    let second = materialize(&instance, "obj_doubled or obj_frame_sum");
    assert_eq!(*second.try_output::<obj_doubled>().unwrap(), source * 2);
    let s = source as i64;
    assert_eq!(*second.try_output::<obj_frame_sum>().unwrap(), 3 * s + 3);

    // A new materialization is a new object; the old one stays until a sweep.
    let third = materialize(&instance, "obj_source");
    let newer = location(&instance, "obj_source");
    assert_ne!(newer, committed);
    let again = *third.try_output::<obj_source>().unwrap();

    // A dry run deletes nothing; a sweep deletes exactly the replaced objects (the first run's
    // `obj_source`, `obj_doubled` and `obj_frame_sum`) and the zombie's.
    let dry = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO).dry_run())
        .unwrap()
        .unwrap();
    assert_eq!(dry.deleted.len(), 4, "{dry:?}");
    let report = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO))
        .unwrap()
        .unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    let zombie_location = zombie
        .metadata
        .iter()
        .find(|(l, _)| l == LOCATION)
        .map(|(_, v)| v.to_string())
        .unwrap();
    let mut expected = vec![committed.clone(), zombie_location, first_doubled, first_sum];
    expected.sort();
    assert_eq!(deleted, expected, "{report:?}");
    assert_eq!(report.referenced, 4, "{report:?}");
    // What is committed still loads; the next sweep takes only what that replaced, and the
    // one after finds nothing.
    let replaced = location(&instance, "obj_doubled");
    let fourth = materialize(&instance, "obj_doubled");
    assert_eq!(*fourth.try_output::<obj_doubled>().unwrap(), again * 2);
    let report = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO))
        .unwrap()
        .unwrap();
    assert_eq!(report.deleted, [replaced], "{report:?}");
    let empty = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO))
        .unwrap()
        .unwrap();
    assert!(empty.deleted.is_empty(), "{empty:?}");
    // The default age keeps even what is unreferenced for an hour.
    materialize(&instance, "obj_source");
    let young = instance
        .sweep_outputs(SweepOptions::default())
        .unwrap()
        .unwrap();
    assert!(young.deleted.is_empty() && young.kept == 1, "{young:?}");
}

#[test]
fn on_a_shared_file_system() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("file://{}", shared.path().join("outputs").display());
    outputs_are_read_only_through_committed_materializations(&url);
}

#[test]
fn on_s3() {
    let Some(bucket) = common::s3_url() else {
        return;
    };
    let url = format!("{bucket}/{}", common::unique("objects"));
    outputs_are_read_only_through_committed_materializations(&url);
}

#[test]
fn a_damaged_or_missing_object_is_an_error_that_names_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let files = Files::new();
    let instance = &files.instance;
    materialize(instance, "obj_source");
    let committed = location(instance, "obj_source");
    let file = files.file_of(&committed);
    std::fs::write(&file, b"not an output").unwrap();
    let result = Materialize::select("obj_doubled").instance(instance).run();
    let error = result
        .expect_err("a damaged object fails the run")
        .to_string();
    assert!(
        error.contains("unreadable") && error.contains(&committed),
        "{error}"
    );
    std::fs::remove_file(&file).unwrap();
    let error = Materialize::select("obj_doubled")
        .instance(instance)
        .run()
        .expect_err("a missing object fails the run")
        .to_string();
    assert!(error.contains("is gone"), "{error}");
}

#[test]
fn an_unreachable_s3_server_fails_the_asset_naming_the_object() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = orch::io::object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("nowhere")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("x")
        .with_secret_access_key("x")
        .with_retry(orch::io::object_store::RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(2),
            ..Default::default()
        })
        .build()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let storage: std::sync::Arc<dyn Storage> =
        std::sync::Arc::new(orch::storage::SqliteStorage::open(home.path()).unwrap());
    let manager = ObjectIoManager::new(
        std::sync::Arc::new(store),
        "s3://nowhere",
        storage,
        home.path().join("cache"),
    )
    .unwrap();
    let key = AssetKey::new(["obj_source"]).unwrap();
    let def = orch::definitions().unwrap();
    let node = def.node(def.id_of(&key).unwrap());
    let run = RunId::new();
    let error = manager
        .handle_output(
            &OutputContext {
                key: &key,
                run_id: &run,
                partition: None,
                output_type: node.def.output_type(),
                codec: node.def.storage_codec(),
            },
            &(std::sync::Arc::new(1u64) as orch::io::Value),
        )
        .expect_err("nothing to upload to");
    // Worth trying again (a worker gives the step to another delivery), and it says where.
    assert!(orch::io::Unavailable::is_in(&*error), "{error:?}");
    let error = error.to_string();
    assert!(
        error.contains(&format!("could not upload s3://nowhere/obj_source/{run}.")),
        "{error}"
    );
}

/// Sets orch's own label, which is not an asset's to set.
#[asset(group = "object_labels")]
fn obj_labeled(ctx: &AssetContext) -> u64 {
    ctx.add_output_metadata(LOCATION, "s3://elsewhere/not/here.bin");
    ctx.add_output_metadata("rows", 1usize);
    1
}

#[test]
fn the_recorded_location_is_the_managers_whatever_the_asset_says() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let files = Files::new();
    materialize(&files.instance, "obj_labeled");
    let recorded = location(&files.instance, "obj_labeled");
    assert!(
        recorded.starts_with(&format!("{}/obj_labeled/", files.url)),
        "{recorded}"
    );
    assert!(files.file_of(&recorded).exists());
}

#[test]
fn the_daemon_sweeps_what_nothing_refers_to() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let files = Files::new();
    let instance = &files.instance;
    let file_of = |location: &str| files.file_of(location);
    materialize(instance, "obj_source");
    let replaced = file_of(&location(instance, "obj_source"));
    materialize(instance, "obj_source");
    let latest = file_of(&location(instance, "obj_source"));
    assert!(replaced.exists() && latest.exists());
    let shutdown = orch::CancellationToken::new();
    let daemon = {
        let (instance, shutdown) = (instance.clone(), shutdown.clone());
        std::thread::spawn(move || {
            orch::daemon::Daemon::new(
                instance,
                orch::automation::automation().unwrap(),
                orch::daemon::DaemonOptions {
                    poll: Duration::from_millis(20),
                    sweep_every: Some(Duration::from_millis(100)),
                    sweep_older_than: Duration::ZERO,
                    ..orch::daemon::DaemonOptions::default()
                },
            )
            .run(&shutdown, &mut |_| {})
        })
    };
    let t0 = std::time::Instant::now();
    while replaced.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the daemon never swept {}",
            replaced.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.cancel();
    daemon.join().unwrap().unwrap();
    assert!(latest.exists(), "the committed object was swept");
}

#[test]
fn partitions_load_one_by_one_and_all_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let files = Files::new();
    let (instance, url) = (&files.instance, &files.url);
    for partition in ["eu", "us/west"] {
        let result = Materialize::select("obj_region")
            .partition(partition)
            .instance(instance)
            .run()
            .unwrap();
        assert!(result.success(), "{result:?}");
    }
    let result = materialize(instance, "obj_regions");
    assert_eq!(*result.try_output::<obj_regions>().unwrap(), 4);
    let committed = instance
        .storage()
        .partition_materializations("obj_region")
        .unwrap();
    let west = committed["us/west"]
        .metadata
        .iter()
        .find(|(label, _)| label == LOCATION)
        .map(|(_, value)| value.to_string())
        .unwrap();
    assert!(
        west.starts_with(&format!("{url}/obj_region/us%2Fwest/")),
        "{west}"
    );
    // Each partition's latest is referenced: nothing to sweep.
    let report = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO))
        .unwrap()
        .unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.referenced, 3, "{report:?}");
}

/// Not a test of its own: the command line the tests start again runs here.
#[test]
fn child_process() {
    let _ = common::ran_cli_child();
}

/// `orch ARGS` in a child process over `home`, with outputs at `url` (if any); its stdout.
fn cli(home: &std::path::Path, url: Option<&str>, args: &str) -> String {
    let mut command = common::this_binary_as_child();
    command
        .env("ORCH_TEST_CHILD_CLI", args)
        .env("ORCH_HOME", home)
        .env_remove("ORCH_STORAGE_URL");
    if let Some(url) = url {
        command.env("ORCH_STORAGE_URL", url);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_command_line_sweeps_and_says_what_it_deleted() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (shared, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", shared.path().join("outputs").display());
    let instance = instance(home.path(), &url);
    materialize(&instance, "obj_source");
    let replaced = location(&instance, "obj_source");
    materialize(&instance, "obj_source");
    drop(instance);
    let dry = cli(
        home.path(),
        Some(&url),
        "storage sweep --older-than 0s --dry-run",
    );
    assert!(dry.contains(&format!("would delete {replaced}")), "{dry}");
    assert!(dry.contains("2 objects: 1 referenced"), "{dry}");
    let swept = cli(home.path(), Some(&url), "storage sweep --older-than 0s");
    assert!(swept.contains(&format!("deleted {replaced}")), "{swept}");
    let again = cli(home.path(), Some(&url), "storage sweep --older-than 0s");
    assert!(again.contains("1 object: 1 referenced, 0 kept"), "{again}");
    // Files under home are replaced in place: nothing to sweep, and it says why.
    let files = cli(home.path(), None, "storage sweep");
    assert!(files.contains("nothing to sweep"), "{files}");
}
