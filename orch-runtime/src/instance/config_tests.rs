//! Tests of the configuration: the file, the environment and their errors (kept apart from
//! `config.rs`, which is long enough).

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(CONFIG_FILE),
        "home = \"state\"\n[retention]\nlogs = \"7d\"\n[run]\njobs = 3\n[io]\nparquet_compression = \"zstd:5\"\n",
    )
    .unwrap();
    let config = Config::discover(dir.path(), env(&[("ORCH_JOBS", "5")])).unwrap();
    assert_eq!(config.home(), dir.path().join("state"));
    assert_eq!(config.retention().logs, Duration::from_secs(7 * 86_400));
    assert_eq!(config.retention().runs, Duration::from_secs(90 * 86_400));
    assert_eq!(config.jobs(), 5);
    assert_eq!(config.parquet_compression(), ParquetCompression::Zstd(5));
    let entries = config.entries();
    let source = |key| entries.iter().find(|e| e.0 == key).unwrap().2.clone();
    assert_eq!(source("home"), Source::File(dir.path().join(CONFIG_FILE)));
    assert_eq!(source("run.jobs"), Source::Env("ORCH_JOBS"));
    assert_eq!(source("retention.runs"), Source::Default);
}

#[test]
fn an_unknown_key_or_a_bad_value_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CONFIG_FILE), "[run]\njbos = 3\n").unwrap();
    let err = Config::discover(dir.path(), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("orch.toml is invalid"), "{err}");
    assert!(err.contains("jbos"), "{err}");
    std::fs::write(
        dir.path().join(CONFIG_FILE),
        "[io]\nparquet_compression = \"gzip\"\n",
    )
    .unwrap();
    let err = Config::discover(dir.path(), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid io.parquet_compression `gzip`"),
        "{err}"
    );
    assert!(err.contains("use lz4, zstd"), "{err}");
    let err = Config::discover(
        dir.path().join("none").as_path(),
        env(&[("ORCH_JOBS", "0")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "$ORCH_JOBS: invalid run.jobs `0`: a number, at least 1"
    );
}

#[test]
fn the_frame_format_is_read_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let read = |text: &str, vars: &[(&str, &str)]| {
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        Config::discover(dir.path(), env(vars)).map_err(|e| e.to_string())
    };
    let format = |config: Config| {
        let entries = config.entries();
        let (_, shown, source) = entries
            .iter()
            .find(|(k, _, _)| *k == "io.frame_format")
            .unwrap()
            .clone();
        (config.frame_format(), shown, source)
    };
    assert_eq!(
        format(read("", &[]).unwrap()),
        (FrameFormat::ArrowIpc, "arrow".to_owned(), Source::Default)
    );
    let file = "[io]\nframe_format = \"parquet\"\n";
    assert_eq!(format(read(file, &[]).unwrap()).0, FrameFormat::Parquet);
    assert_eq!(
        format(read(file, &[("ORCH_FRAME_FORMAT", "ipc")]).unwrap()),
        (
            FrameFormat::ArrowIpc,
            "arrow".to_owned(),
            Source::Env("ORCH_FRAME_FORMAT")
        )
    );
    let err = read("[io]\nframe_format = \"csv\"\n", &[]).unwrap_err();
    assert!(err.contains("invalid io.frame_format `csv`"), "{err}");
    assert!(
        err.contains("use arrow (Arrow IPC files) or parquet"),
        "{err}"
    );
    let err = read("", &[("ORCH_FRAME_FORMAT", "orc")]).unwrap_err();
    assert!(
        err.starts_with("$ORCH_FRAME_FORMAT: invalid io.frame_format `orc`"),
        "{err}"
    );
}

#[test]
fn write_behind_is_read_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let read = |text: &str, vars: &[(&str, &str)]| {
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        Config::discover(dir.path(), env(vars)).map_err(|e| e.to_string())
    };
    assert_eq!(
        read("", &[]).unwrap().write_behind(),
        WriteBehind::default()
    );
    let config = read(
        "[io]\nwrite_behind = 4\nwrite_behind_memory = \"512MiB\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.write_behind(), WriteBehind::new(4, 512 << 20));
    let shown: Vec<String> = config
        .entries()
        .iter()
        .filter(|(k, _, _)| k.starts_with("io.write"))
        .map(|(k, v, _)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        shown,
        ["io.write_behind=4", "io.write_behind_memory=512MiB"]
    );
    let config = read("", &[("ORCH_WRITE_BEHIND", "0")]).unwrap();
    assert_eq!(config.write_behind().writes, 0);
    assert_eq!(
        read("[io]\nwrite_behind_memory = \"2GB\"\n", &[]).unwrap_err(),
        format!(
            "{}: invalid io.write_behind_memory `2GB`: write a whole number of bytes, KiB, MiB, GiB or TiB, such as \"512MiB\"",
            dir.path().join(CONFIG_FILE).display()
        )
    );
    assert_eq!(
        read("", &[("ORCH_WRITE_BEHIND", "two")]).unwrap_err(),
        "$ORCH_WRITE_BEHIND: invalid io.write_behind `two`: a number of writes (0 writes every output before its consumers start)"
    );
}

#[test]
fn the_daemon_and_queue_settings_are_read_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let read = |text: &str| {
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        Config::discover(dir.path(), env(&[])).map_err(|e| e.to_string())
    };
    let config = read(
        "[daemon]\nlauncher = \"in_process\"\nlease = \"10s\"\n[queue]\nmax_concurrent_runs = 2\n\
         tag_limits = [{ key = \"db\", value = \"warehouse\", limit = 1 }, { key = \"team\", per_value = true, limit = 3 }]\n",
    )
    .unwrap();
    assert_eq!(config.launch_mode(), LaunchMode::InProcess);
    assert_eq!(config.daemon_lease(), Duration::from_secs(10));
    assert_eq!(config.queue_limits().max_concurrent_runs, 2);
    assert_eq!(config.queue_limits().tag_limits.len(), 2);
    let shown: Vec<String> = config
        .entries()
        .iter()
        .map(|(k, v, _)| format!("{k}={v}"))
        .collect();
    assert!(
        shown.contains(&"queue.tag_limits=db=warehouse:1, team=each:3".to_owned()),
        "{shown:?}"
    );

    for (text, expected) in [
        (
            "[daemon]\nlauncher = \"thread\"\n",
            "invalid daemon.launcher `thread`",
        ),
        ("[daemon]\nlease = \"1ms\"\n", "at least 100ms"),
        (
            "[queue]\nmax_concurrent_runs = 0\n",
            "invalid queue.max_concurrent_runs `0`",
        ),
        (
            "[queue]\ntag_limits = [{ key = \"db\", limit = 0 }]\n",
            "`limit` must be at least 1",
        ),
        (
            "[queue]\ntag_limits = [{ key = \"db\", value = \"w\", per_value = true, limit = 1 }]\n",
            "`per_value` and `value` exclude each other",
        ),
    ] {
        let err = read(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn retention_days_from_the_environment_set_both() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::discover(dir.path(), env(&[("ORCH_RETENTION_DAYS", "2")])).unwrap();
    assert_eq!(config.retention(), Retention::days(2));
    assert!(Config::discover(dir.path(), env(&[("ORCH_RETENTION_DAYS", "two")])).is_err());
}

#[test]
fn the_storage_url_executor_and_workers_are_read_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let read = |text: &str, vars: &[(&str, &str)]| {
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        Config::discover(dir.path(), env(vars)).map_err(|e| e.to_string())
    };
    let config = read(
        "[storage]\nurl = \"s3://bucket/orch\"\n[run]\nexecutor = \"workers\"\n\
         [workers]\nlease = \"20s\"\nheartbeat = \"5s\"\nmax_deliveries = 5\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.storage_url(), Some("s3://bucket/orch"));
    assert_eq!(config.executor(), Executor::Workers);
    assert_eq!(config.delivery().lease, Duration::from_secs(20));
    assert_eq!(config.delivery().max_deliveries, 5);
    // The environment wins, and `orch config` says where each came from.
    let config = read(
        "[storage]\nurl = \"s3://bucket/orch\"\n",
        &[("ORCH_STORAGE_URL", "file:///mnt/shared")],
    )
    .unwrap();
    assert_eq!(config.storage_url(), Some("file:///mnt/shared"));
    let entries = config.entries();
    let entry = entries.iter().find(|e| e.0 == "storage.url").unwrap();
    assert_eq!(
        (entry.1.as_str(), &entry.2),
        ("file:///mnt/shared", &Source::Env("ORCH_STORAGE_URL"))
    );
    // Unset: files under home.
    let config = read("", &[]).unwrap();
    assert_eq!(config.storage_url(), None);

    for (text, expected) in [
        (
            "[storage]\nurl = \"gs://bucket\"\n",
            "invalid storage.url `gs://bucket`: an object storage URL such as s3://bucket/orch",
        ),
        (
            "[storage]\nurl = \"file://relative/dir\"\n",
            "invalid storage.url `file://relative/dir`",
        ),
        (
            "[storage]\nurl = \"s3://\"\n",
            "invalid storage.url `s3://`",
        ),
        (
            "[storage]\nurl = \"file:///\"\n",
            "invalid storage.url `file:///`",
        ),
        (
            "[run]\nexecutor = \"threads\"\n",
            "invalid run.executor `threads`: \"in_process\" or \"workers\"",
        ),
        (
            "[workers]\nlease = \"10s\"\nheartbeat = \"10s\"\n",
            "workers.heartbeat",
        ),
    ] {
        let err = read(text, &[]).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(err.contains("orch.toml"), "{text}: {err}");
    }
    let err = read("", &[("ORCH_STORAGE_URL", "bucket/orch")]).unwrap_err();
    assert!(
        err.starts_with("$ORCH_STORAGE_URL: invalid storage.url"),
        "{err}"
    );
}
