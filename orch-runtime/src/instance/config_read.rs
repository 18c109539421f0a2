//! Reading a configuration from its sources: the `orch.toml` file and the environment
//! variables, each value checked and remembered with where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::config_values::{
    check_storage_url, check_store_url, parse_age, parse_compression, parse_executor,
    parse_frame_format, parse_size,
};
use super::*;

/// The file's shape: every key optional, unknown keys refused.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    home: Option<PathBuf>,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    storage: FileStorage,
    #[serde(default)]
    retention: FileRetention,
    #[serde(default)]
    run: FileRun,
    #[serde(default)]
    io: FileIo,
    #[serde(default)]
    daemon: FileDaemon,
    #[serde(default)]
    workers: FileWorkers,
    #[serde(default)]
    queue: FileQueue,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    url: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDaemon {
    launcher: Option<String>,
    lease: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileWorkers {
    lease: Option<String>,
    heartbeat: Option<String>,
    max_deliveries: Option<u32>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileQueue {
    max_concurrent_runs: Option<usize>,
    tag_limits: Option<Vec<TagLimit>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRetention {
    logs: Option<String>,
    runs: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRun {
    jobs: Option<usize>,
    executor: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileIo {
    frame_format: Option<String>,
    parquet_compression: Option<String>,
    write_behind: Option<usize>,
    write_behind_memory: Option<String>,
}

impl Config {
    /// The configuration the command line uses: the defaults, then `root/orch.toml` if it
    /// exists, then the environment variables in `env` (`ORCH_HOME`, `ORCH_RETENTION_DAYS`,
    /// `ORCH_JOBS`, `ORCH_PARQUET_COMPRESSION`). A relative `home` in the file is relative to
    /// `root`.
    pub fn discover<I>(root: &Path, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut config = Config::default();
        let path = root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => config.apply_file(&path, &text, root)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ORCH_"))
            .collect();
        config.apply_env(&env)?;
        Ok(config)
    }

    /// Reads a configuration file's text over this configuration (`path` for messages,
    /// `root` for relative paths).
    pub fn apply_file(&mut self, path: &Path, text: &str, root: &Path) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let from = || Source::File(path.to_owned());
        let bad = |key, value: &str, why: String| ConfigError::Value {
            source_name: path.display().to_string(),
            key,
            value: value.to_owned(),
            why,
        };
        if let Some(home) = file.home {
            self.home = root.join(home);
            self.sources.insert("home", from());
        }
        if let Some(url) = &file.store.url {
            check_store_url(url)
                .map_err(|why| bad("store.url", &crate::storage::redact(url), why))?;
            self.store.url = Some(url.clone());
            self.sources.insert("store.url", from());
        }
        if let Some(schema) = &file.store.schema {
            self.store.schema = Some(schema.clone());
            self.sources.insert("store.schema", from());
        }
        if let Some(url) = &file.storage.url {
            check_storage_url(url).map_err(|why| bad("storage.url", url, why))?;
            self.storage_url = Some(url.clone());
            self.sources.insert("storage.url", from());
        }
        if let Some(logs) = &file.retention.logs {
            self.retention.logs =
                parse_age(logs).map_err(|why| bad("retention.logs", logs, why))?;
            self.sources.insert("retention.logs", from());
        }
        if let Some(runs) = &file.retention.runs {
            self.retention.runs =
                parse_age(runs).map_err(|why| bad("retention.runs", runs, why))?;
            self.sources.insert("retention.runs", from());
        }
        if let Some(jobs) = file.run.jobs {
            if jobs == 0 {
                return Err(bad("run.jobs", "0", "at least 1".to_owned()));
            }
            self.jobs = jobs;
            self.sources.insert("run.jobs", from());
        }
        if let Some(text) = &file.run.executor {
            self.executor = parse_executor(text).map_err(|why| bad("run.executor", text, why))?;
            self.sources.insert("run.executor", from());
        }
        if let Some(text) = &file.workers.lease {
            self.delivery.lease = parse_age(text).map_err(|why| bad("workers.lease", text, why))?;
            self.sources.insert("workers.lease", from());
        }
        if let Some(text) = &file.workers.heartbeat {
            self.worker_heartbeat =
                parse_age(text).map_err(|why| bad("workers.heartbeat", text, why))?;
            self.sources.insert("workers.heartbeat", from());
        }
        if let Some(n) = file.workers.max_deliveries {
            if n == 0 {
                return Err(bad("workers.max_deliveries", "0", "at least 1".to_owned()));
            }
            self.delivery.max_deliveries = n;
            self.sources.insert("workers.max_deliveries", from());
        }
        if self.worker_heartbeat >= self.delivery.lease {
            return Err(bad(
                "workers.heartbeat",
                &humantime::format_duration(self.worker_heartbeat).to_string(),
                format!(
                    "shorter than the lease ({}), or every step's lease lapses between heartbeats",
                    humantime::format_duration(self.delivery.lease)
                ),
            ));
        }
        if let Some(text) = &file.daemon.launcher {
            self.launch_mode = match text.as_str() {
                "child_process" => LaunchMode::ChildProcess,
                "in_process" => LaunchMode::InProcess,
                _ => {
                    return Err(bad(
                        "daemon.launcher",
                        text,
                        "\"child_process\" or \"in_process\"".to_owned(),
                    ));
                }
            };
            self.sources.insert("daemon.launcher", from());
        }
        if let Some(text) = &file.daemon.lease {
            let lease = parse_age(text).map_err(|why| bad("daemon.lease", text, why))?;
            if lease < Duration::from_millis(100) {
                return Err(bad("daemon.lease", text, "at least 100ms".to_owned()));
            }
            self.daemon_lease = lease;
            self.sources.insert("daemon.lease", from());
        }
        if let Some(max) = file.queue.max_concurrent_runs {
            if max == 0 {
                return Err(bad(
                    "queue.max_concurrent_runs",
                    "0",
                    "at least 1".to_owned(),
                ));
            }
            self.queue.max_concurrent_runs = max;
            self.sources.insert("queue.max_concurrent_runs", from());
        }
        if let Some(limits) = file.queue.tag_limits {
            if let Some(zero) = limits.iter().find(|l| l.limit == 0) {
                return Err(bad(
                    "queue.tag_limits",
                    &zero.key,
                    "`limit` must be at least 1 (a limit of 0 would hold its runs queued forever; stop the schedule or sensor instead)".to_owned(),
                ));
            }
            if let Some(both) = limits.iter().find(|l| l.per_value && l.value.is_some()) {
                return Err(bad(
                    "queue.tag_limits",
                    &both.key,
                    "`per_value` and `value` exclude each other: one limit per value, or one for a value".to_owned(),
                ));
            }
            self.queue.tag_limits = limits;
            self.sources.insert("queue.tag_limits", from());
        }
        if let Some(text) = &file.io.frame_format {
            self.frame_format =
                parse_frame_format(text).map_err(|why| bad("io.frame_format", text, why))?;
            self.sources.insert("io.frame_format", from());
        }
        if let Some(text) = &file.io.parquet_compression {
            self.parquet_compression =
                parse_compression(text).map_err(|why| bad("io.parquet_compression", text, why))?;
            self.sources.insert("io.parquet_compression", from());
        }
        if let Some(writes) = file.io.write_behind {
            self.write_behind.writes = writes;
            self.sources.insert("io.write_behind", from());
        }
        if let Some(text) = &file.io.write_behind_memory {
            self.write_behind.memory =
                parse_size(text).map_err(|why| bad("io.write_behind_memory", text, why))?;
            self.sources.insert("io.write_behind_memory", from());
        }
        Ok(())
    }

    /// Reads the `ORCH_*` variables of `env` over this configuration.
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let bad = |var: &'static str, key, value: &str, why: String| ConfigError::Value {
            source_name: format!("${var}"),
            key,
            value: value.to_owned(),
            why,
        };
        if let Some(home) = env.get("ORCH_HOME").filter(|h| !h.is_empty()) {
            self.home = PathBuf::from(home);
            self.sources.insert("home", Source::Env("ORCH_HOME"));
        }
        if let Some(url) = env.get("ORCH_STORE_URL").filter(|u| !u.is_empty()) {
            check_store_url(url).map_err(|why| {
                bad(
                    "ORCH_STORE_URL",
                    "store.url",
                    &crate::storage::redact(url),
                    why,
                )
            })?;
            self.store.url = Some(url.clone());
            self.sources
                .insert("store.url", Source::Env("ORCH_STORE_URL"));
        }
        if let Some(schema) = env.get("ORCH_STORE_SCHEMA").filter(|s| !s.is_empty()) {
            self.store.schema = Some(schema.clone());
            self.sources
                .insert("store.schema", Source::Env("ORCH_STORE_SCHEMA"));
        }
        if let Some(url) = env.get("ORCH_STORAGE_URL").filter(|u| !u.is_empty()) {
            check_storage_url(url)
                .map_err(|why| bad("ORCH_STORAGE_URL", "storage.url", url, why))?;
            self.storage_url = Some(url.clone());
            self.sources
                .insert("storage.url", Source::Env("ORCH_STORAGE_URL"));
        }
        if let Some(days) = env.get("ORCH_RETENTION_DAYS") {
            let n: u32 = days.trim().parse().map_err(|_| {
                bad(
                    "ORCH_RETENTION_DAYS",
                    "retention",
                    days,
                    "a whole number of days".to_owned(),
                )
            })?;
            self.retention = Retention::days(n);
            self.sources
                .insert("retention.logs", Source::Env("ORCH_RETENTION_DAYS"));
            self.sources
                .insert("retention.runs", Source::Env("ORCH_RETENTION_DAYS"));
        }
        if let Some(jobs) = env.get("ORCH_JOBS") {
            self.jobs = jobs.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                bad(
                    "ORCH_JOBS",
                    "run.jobs",
                    jobs,
                    "a number, at least 1".to_owned(),
                )
            })?;
            self.sources.insert("run.jobs", Source::Env("ORCH_JOBS"));
        }
        if let Some(text) = env.get("ORCH_EXECUTOR").filter(|t| !t.is_empty()) {
            self.executor = parse_executor(text)
                .map_err(|why| bad("ORCH_EXECUTOR", "run.executor", text, why))?;
            self.sources
                .insert("run.executor", Source::Env("ORCH_EXECUTOR"));
        }
        if let Some(text) = env.get("ORCH_FRAME_FORMAT") {
            self.frame_format = parse_frame_format(text)
                .map_err(|why| bad("ORCH_FRAME_FORMAT", "io.frame_format", text, why))?;
            self.sources
                .insert("io.frame_format", Source::Env("ORCH_FRAME_FORMAT"));
        }
        if let Some(text) = env.get("ORCH_PARQUET_COMPRESSION") {
            self.parquet_compression = parse_compression(text).map_err(|why| {
                bad(
                    "ORCH_PARQUET_COMPRESSION",
                    "io.parquet_compression",
                    text,
                    why,
                )
            })?;
            self.sources.insert(
                "io.parquet_compression",
                Source::Env("ORCH_PARQUET_COMPRESSION"),
            );
        }
        if let Some(writes) = env.get("ORCH_WRITE_BEHIND") {
            self.write_behind.writes = writes.trim().parse().map_err(|_| {
                bad(
                    "ORCH_WRITE_BEHIND",
                    "io.write_behind",
                    writes,
                    "a number of writes (0 writes every output before its consumers start)"
                        .to_owned(),
                )
            })?;
            self.sources
                .insert("io.write_behind", Source::Env("ORCH_WRITE_BEHIND"));
        }
        Ok(())
    }
}
