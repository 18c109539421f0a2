//! The command line of an orch program: `cargo run -- materialize | list | lineage`.
//!
//! Exit codes: 0 when every asset succeeded, 1 when an asset failed, 2 for a usage or
//! definition error (a bad selection, duplicate keys, ...).

mod checks;
mod conditions;
mod daemon;
mod history;
mod jobs;
mod lineage;
mod materialize;
mod partitions;
mod progress;
mod schedules;
mod sensors;
mod storage;
mod table;
mod timings;
mod web;
mod worker;

use materialize::{MaterializeArgs, materialize, materialize_everything, reexecute};

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use orch_core::{AssetGraph, AssetSelection};

use crate::app::App;
use crate::instance::{Config, Instance};
use crate::materialize::{default_jobs, definitions};
use crate::run::Backfill;
use crate::staleness::StaleInputs;
use crate::storage::{RunFilter, RunStatus, Storage, StorageError};

/// Exit code when every asset succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one asset failed.
pub const EXIT_ASSET_FAILED: u8 = 1;
/// Exit code for a usage or definition error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the run was canceled (Ctrl-C), as a shell reports a process stopped by it.
pub const EXIT_CANCELED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    about = "Materialize, list and inspect the assets of this program",
    long_about = "Materialize, list and inspect the assets of this program.\n\nWith no command, materializes every asset.",
    after_help = "Selections: `name`, `key:prefix/name`, `group:NAME`, `tag:K=V`, `+name` (with upstream), `name+` (with downstream), `2+name` (two levels), combined with `and`, `or`, `not` and parentheses."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Materialize assets (all of them by default).
    Materialize(MaterializeArgs),
    /// List the assets: key, group, upstreams, description.
    List {
        /// Only these assets (selection syntax, e.g. `group:sources`).
        #[arg(long, short)]
        select: Option<String>,
    },
    /// Recent runs, newest first.
    Runs {
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// Only runs in this state.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only runs with this tag, as `key=value`.
        #[arg(long, value_parser = parse_tag)]
        tag: Option<(String, String)>,
        /// Then keep printing every run's events as they are recorded, until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
    },
    /// The jobs: asset jobs (`asset_job!`: selection, assets, schedules) and op jobs
    /// (`#[job]`: ops, which take config).
    Jobs,
    /// One op job (`#[job]`): `show` its ops and wiring, `run` it with a config file.
    Job {
        #[command(subcommand)]
        command: jobs::JobCommand,
    },
    /// The schedules (`schedule!`): target, cron string, time zone, status, next tick.
    Schedules,
    /// One schedule: `next`, `start`, `stop`, `preview`.
    Schedule {
        #[command(subcommand)]
        command: schedules::ScheduleCommand,
    },
    /// Run the schedules and the run queue until Ctrl-C: ticks queue their runs, the queue
    /// starts them within `[queue]`'s limits (each in a child process by default). One daemon
    /// per store: a second one says which holds it and exits 2. With `--once`, evaluates
    /// everything due as of `--at` (default now), runs what is queued, waits, and exits (1
    /// if a run failed): for system cron, CI and tests; successive calls behave as one daemon.
    Daemon {
        /// Evaluate once, run what is queued, and exit.
        #[arg(long)]
        once: bool,
        /// With `--once`: evaluate as of this instant (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Execute the steps of runs whose `[run] executor` is "workers", claimed from the run
    /// store's queue (a PostgreSQL store), until Ctrl-C; running steps end first. Start any
    /// number, on any machines that share the store and the outputs' storage.
    Worker {
        /// Steps at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// The queues to serve (repeatable; default `default`): steps of assets tagged
        /// `orch/queue=NAME`, or of runs tagged so.
        #[arg(long = "queue")]
        queues: Vec<String>,
    },
    /// Start a queued run in this process (what the daemon runs in each child process).
    #[command(name = "__run-queued", hide = true)]
    RunQueued {
        /// The queued run's id.
        run_id: String,
    },
    /// The sensors (`#[sensor]`): target, interval, status, last evaluation, cursor.
    Sensors,
    /// One sensor: `start`, `stop`, `tick`, `preview`, `history`, `cursor`.
    Sensor {
        #[command(subcommand)]
        command: sensors::SensorCommand,
    },
    /// All automation at once: `pause`, `resume` (persisted in the run store); `explain ASSET`
    /// (why its automation condition did or did not request it).
    Automation {
        #[command(subcommand)]
        command: schedules::AutomationCommand,
    },
    /// The outputs' object storage (`[storage] url`): `sweep` deletes the objects no
    /// committed materialization refers to.
    Storage {
        #[command(subcommand)]
        command: storage::StorageCommand,
    },
    /// The effective configuration: each setting, its value and where it came from
    /// (`orch.toml`, an environment variable, or the default).
    Config,
    /// The asset checks (`#[asset_check]`): asset, blocking, severity, latest result.
    Checks {
        /// Only this asset's.
        asset: Option<String>,
    },
    /// Asset checks: `run ASSET` (on its stored value).
    Check {
        #[command(subcommand)]
        command: checks::CheckCommand,
    },
    /// The web UI and the daemon in one process, on http://127.0.0.1:3000 until Ctrl-C:
    /// the lineage graph, runs with live logs, jobs, schedules. Runs launched from the UI are
    /// queued for the daemon.
    Dev {
        #[command(flatten)]
        web: web::WebArgs,
    },
    /// The web UI alone over the same store (no daemon: runs launched from it start in this
    /// process; schedules and sensors are read-only).
    Ui {
        #[command(flatten)]
        web: web::WebArgs,
    },
    /// Every asset whose freshness policy warns or fails (exit 1 on a fail): for monitoring.
    Health {
        /// As of this instant (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// One run: its per-asset timeline and logs.
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// Run the assets of an earlier run again (with `--from-failure`, only those that did not
    /// succeed: failed, skipped, or cut short by a crash); their other inputs load from storage.
    Reexecute {
        /// The run id, a unique prefix (as `runs` prints it) or `last` (the newest run).
        run: String,
        /// Only what did not succeed.
        #[arg(long)]
        from_failure: bool,
        /// A run of an op job: this run config instead of the earlier run's (TOML or JSON).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// How many sync assets may run at once (default: the number of cores).
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// An asset's materializations: when, by which run, how long, code version, metadata.
    History {
        /// The asset key, e.g. `users_cleaned` or `raw/users`.
        asset: String,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// Materialize a range of partitions: one recorded run per partition, several at once.
    /// A failed partition does not stop the others; each is reported and can be re-run.
    Backfill {
        /// Which assets (selection syntax); their partitioned assets must share one
        /// partitions definition.
        #[arg(long, short)]
        select: String,
        /// The first partition key.
        #[arg(long)]
        from: String,
        /// The last partition key (included).
        #[arg(long)]
        to: String,
        /// How many runs go at once (default: the number of cores).
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Materialize this many consecutive partitions per run: each asset is called once
        /// over them (`ctx.partition_key_range()`) and its frame is split by its
        /// `partition_by` column. Default 1.
        #[arg(long, value_name = "N", conflicts_with = "single_run")]
        partitions_per_run: Option<usize>,
        /// The whole range in one run (as `--partitions-per-run` with every partition).
        #[arg(long)]
        single_run: bool,
    },
    /// Which partitions of a partitioned asset are materialized, failed or missing (as ranges).
    Partitions {
        /// The asset key.
        asset: String,
        /// Add these keys to the asset's dynamic partitions first (e.g. new customers).
        #[arg(long, num_args = 1..)]
        add: Vec<String>,
    },
    /// Show the dependency graph.
    Lineage {
        /// Only these assets (selection syntax, e.g. `+report`).
        #[arg(long, short)]
        select: Option<String>,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = LineageFormat::Text)]
        format: LineageFormat,
    },
}

#[derive(Subcommand, Debug)]
enum RunCommand {
    /// Show a run by id (or a unique prefix of it, as `runs` prints).
    Show {
        /// The run id, a unique prefix of it (as `runs` prints it) or `last` (the newest run).
        id: String,
        /// Keep printing the run's events as they are recorded (from this or another
        /// process) until it ends.
        #[arg(long, short, conflicts_with = "timings")]
        follow: bool,
        /// Where the run's time went instead: its phases (plan, load, the assets, waiting for
        /// the store, sync) and each asset's (load, compute, store).
        #[arg(long)]
        timings: bool,
    },
    /// Cancel a run, wherever it runs: a queued one at once; a running one stops within a
    /// fraction of a second (its process reads the request from the run store), as Ctrl-C
    /// would stop it. Exit 1 if it had already ended.
    Cancel {
        /// The run id, a unique prefix of it or `last` (the newest run).
        id: String,
    },
}

/// Run states, as `runs --status` takes them.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StatusArg {
    Queued,
    Starting,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Crashed,
}

impl From<StatusArg> for RunStatus {
    fn from(status: StatusArg) -> RunStatus {
        match status {
            StatusArg::Queued => RunStatus::Queued,
            StatusArg::Starting => RunStatus::Starting,
            StatusArg::Running => RunStatus::Running,
            StatusArg::Succeeded => RunStatus::Succeeded,
            StatusArg::Failed => RunStatus::Failed,
            StatusArg::Canceled => RunStatus::Canceled,
            StatusArg::Crashed => RunStatus::Crashed,
        }
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not a tag: write `key=value`")),
    }
}

/// Formats of `lineage`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineageFormat {
    /// Indented text, one asset per line with its upstreams.
    Text,
    /// Graphviz DOT, with groups as clusters.
    Dot,
    /// A Mermaid flowchart (renders on GitHub and in many editors).
    Mermaid,
}

/// Runs the command line of this program with the process arguments and returns its exit code.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     orch_runtime::main()
/// }
/// ```
pub fn main() -> ExitCode {
    App::new().main()
}

/// Runs the command line with explicit arguments (the first is the program name).
pub fn run_cli<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run(&App::new(), args)
}

/// What every command starts from: the program's `App` and the effective configuration
/// (`orch.toml` in the current directory, then the environment).
struct Env<'a> {
    app: &'a App,
    config: Config,
}

impl Env<'_> {
    /// Opens the instance (creating its store), marks runs whose process died as crashed
    /// (saying so) and applies the retention policy.
    fn open(&self) -> Result<Instance, String> {
        let instance = self
            .app
            .instance(self.config.clone())
            .map_err(|e| e.to_string())?;
        let store = instance.storage();
        let recovered = store.recover_crashed().map_err(|e| e.to_string())?;
        for id in recovered {
            eprintln!(
                "note: run {id} was interrupted (its process died); it is now marked crashed"
            );
        }
        if store
            .apply_retention(self.config.retention())
            .map_err(|e| e.to_string())?
            > 0
        {
            // The outputs of op job runs that retention deleted go with them.
            crate::jobs::prune_step_outputs(self.config.home(), &**store)
                .map_err(|e| e.to_string())?;
        }
        Ok(instance)
    }

    /// The store, if one exists: commands that only read never create it.
    fn existing(&self) -> Result<Option<Instance>, String> {
        match self.config.home().join("orch.db").exists() {
            true => self.open().map(Some),
            false => Ok(None),
        }
    }
}

pub(crate) fn run<I, T>(app: &App, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    // The command line is the one place that reads the environment and the current directory.
    let root = std::env::current_dir().unwrap_or_else(|_| ".".into());
    // `vars()` would panic on any variable that is not UTF-8; only ours must be.
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str().filter(|k| k.starts_with("ORCH_")) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => vars.push((key.to_owned(), value)),
            Err(_) => {
                return ExitCode::from(fail_usage(&format!(
                    "${key} is not valid UTF-8; set it to a UTF-8 value"
                )));
            }
        }
    }
    let config = match Config::discover(&root, vars) {
        Ok(config) => config,
        Err(e) => return ExitCode::from(fail_usage(&e)),
    };
    let env = Env { app, config };
    if prints_only(cli.command.as_ref()) {
        quiet_on_closed_pipe();
    }
    let code = match cli.command {
        None => materialize_everything(&env),
        Some(Command::Materialize(args)) => materialize(&env, args),
        Some(Command::Jobs) => match schedules::print_jobs() {
            EXIT_OK => jobs::print_op_jobs(),
            failed => failed,
        },
        Some(Command::Job { command }) => jobs::job_command(&env, command),
        Some(Command::Schedules) => schedules::print_schedules(&env),
        Some(Command::Schedule { command }) => schedules::schedule(&env, command),
        Some(Command::Sensors) => sensors::print_sensors(&env),
        Some(Command::Sensor { command }) => sensors::sensor(&env, command),
        Some(Command::Automation { command }) => schedules::automation_command(&env, command),
        Some(Command::Daemon { once, at }) => daemon::daemon(&env, once, at),
        Some(Command::RunQueued { run_id }) => daemon::run_queued(&env, &run_id),
        Some(Command::Worker {
            concurrency,
            queues,
        }) => worker::worker(&env, usize::from(concurrency), queues),
        Some(Command::List { select }) => with_selection(select.as_deref(), |graph, ids| {
            let (states, inputs, checks) = match env.existing().and_then(|found| match found {
                Some(i) => {
                    let s = &**i.storage();
                    Ok((
                        s.asset_states().map_err(|e| e.to_string())?,
                        StaleInputs::load(graph, s).map_err(|e| e.to_string())?,
                        checks::by_check(
                            s.check_results(None, true, 0).map_err(|e| e.to_string())?,
                        ),
                    ))
                }
                None => Ok(Default::default()),
            }) {
                Ok(found) => found,
                Err(e) => return fail_usage(&e),
            };
            let stale = crate::staleness::stale_assets(graph, &inputs);
            table::print_list(graph, ids, &states, &stale, &checks);
            EXIT_OK
        }),
        Some(Command::Runs {
            limit,
            status,
            tag,
            follow,
        }) => {
            let mut filter = RunFilter::recent(limit);
            if let Some(status) = status {
                filter = filter.status(status.into());
            }
            if let Some((k, v)) = tag {
                filter = filter.tag(k, v);
            }
            with_store(&env, |store| {
                history::print_runs(store, &filter)?;
                if follow {
                    history::follow(store, None)?;
                }
                Ok(())
            })
        }
        Some(Command::Run {
            command: RunCommand::Show {
                id, timings: true, ..
            },
        }) => with_store(&env, |store| timings::print_timings(store, &id)),
        Some(Command::Run {
            command: RunCommand::Show { id, follow, .. },
        }) => with_store(&env, |store| {
            history::print_run(store, &id)?;
            if follow {
                history::follow(store, Some(&id))?;
            }
            Ok(())
        }),
        Some(Command::Run {
            command: RunCommand::Cancel { id },
        }) => match env.open() {
            Ok(instance) => history::cancel(&**instance.storage(), &id),
            Err(e) => fail_usage(&e),
        },
        Some(Command::Reexecute {
            run,
            from_failure,
            config,
            jobs,
        }) => reexecute(&env, &run, from_failure, config.as_deref(), jobs),
        Some(Command::Backfill {
            select,
            from,
            to,
            jobs,
            partitions_per_run,
            single_run,
        }) => match (env.open(), select.parse::<orch_core::AssetSelection>()) {
            (Ok(instance), Ok(selection)) => {
                let backfill = Backfill::range(selection, from, to)
                    .partitions_per_run(if single_run {
                        usize::MAX
                    } else {
                        partitions_per_run.unwrap_or(1)
                    })
                    .parallel(jobs.unwrap_or_else(default_jobs));
                match backfill.plan(&instance) {
                    Ok(plan) => partitions::run_backfill(&instance, &plan, &select),
                    Err(e) => fail_usage(&e),
                }
            }
            (Err(e), _) => fail_usage(&e),
            (_, Err(e)) => fail_usage(&e),
        },
        Some(Command::Partitions { asset, add }) => {
            partitions::print_partitions(&env, &asset, &add)
        }
        Some(Command::History { asset, limit }) => {
            with_store(&env, |store| history::print_history(store, &asset, limit))
        }
        Some(Command::Checks { asset }) => checks::print_checks(&env, asset.as_deref()),
        Some(Command::Check { command }) => checks::check_command(&env, command),
        Some(Command::Health { at }) => conditions::health(&env, at.as_deref()),
        Some(Command::Dev { web }) => web::serve(&env, web, crate::web::WebMode::Dev),
        Some(Command::Ui { web }) => web::serve(&env, web, crate::web::WebMode::UiOnly),
        Some(Command::Storage { command }) => storage::run(&env, command),
        Some(Command::Config) => {
            print_config(&env.config);
            EXIT_OK
        }
        Some(Command::Lineage { select, format }) => {
            with_selection(select.as_deref(), |graph, ids| {
                let inputs = match env.existing().and_then(|found| match found {
                    Some(i) => StaleInputs::load(graph, &**i.storage()).map_err(|e| e.to_string()),
                    None => Ok(StaleInputs::none()),
                }) {
                    Ok(inputs) => inputs,
                    Err(e) => return fail_usage(&e),
                };
                let stale = crate::staleness::stale_assets(graph, &inputs);
                let text = lineage::render(graph, ids, format, &stale);
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                EXIT_OK
            })
        }
    };
    ExitCode::from(code)
}

/// `config`: every setting, its value and where it came from.
fn print_config(config: &Config) {
    let mut rows = vec![vec![
        "KEY".to_owned(),
        "VALUE".to_owned(),
        "FROM".to_owned(),
    ]];
    for (key, value, source) in config.entries() {
        rows.push(vec![key.to_owned(), value, source.to_string()]);
    }
    table::print_rows(&rows);
}

fn fail_usage(error: &dyn std::fmt::Display) -> u8 {
    eprintln!("error: {error}");
    EXIT_USAGE
}

fn with_selection(select: Option<&str>, f: impl FnOnce(&AssetGraph, &[usize]) -> u8) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    let selection = match select {
        Some(text) => match text.parse::<AssetSelection>() {
            Ok(s) => s,
            Err(e) => return fail_usage(&e),
        },
        None => AssetSelection::All,
    };
    match selection.resolve(graph) {
        Ok(ids) => f(graph, &ids),
        Err(e) => fail_usage(&e),
    }
}

/// The key of the asset named `text`, or the selection resolver's error for it ("no asset
/// has the key `x`; did you mean `y`?").
fn asset_key(graph: &AssetGraph, text: &str) -> Result<orch_core::AssetKey, String> {
    let key: orch_core::AssetKey = text
        .parse()
        .map_err(|e| format!("`{text}` is not an asset key: {e}"))?;
    AssetSelection::Keys(vec![key.clone()])
        .resolve(graph)
        .map_err(|e| e.to_string())?;
    Ok(key)
}

fn with_store(env: &Env<'_>, f: impl FnOnce(&dyn Storage) -> Result<(), StorageError>) -> u8 {
    match env.open() {
        Ok(instance) => match f(&**instance.storage()) {
            Ok(()) => EXIT_OK,
            Err(e) => fail_usage(&e),
        },
        Err(e) => fail_usage(&e),
    }
}

/// Whether `command` only reads and prints (so a closed pipe may end it at once).
fn prints_only(command: Option<&Command>) -> bool {
    matches!(
        command,
        Some(
            Command::List { .. }
                | Command::Runs { .. }
                | Command::Jobs
                | Command::Schedules
                | Command::Sensors
                | Command::Config
                | Command::Checks { .. }
                | Command::History { .. }
                | Command::Lineage { .. }
                | Command::Run {
                    command: RunCommand::Show { .. }
                }
        )
    )
}

/// `orch runs | head`: once the reader goes, the next `println!` panics (Rust ignores
/// SIGPIPE, and the project forbids the `unsafe` that would restore its default action). For
/// commands that only print, that panic ends the process without its message, as `ls | head`
/// ends quietly. Any other panic is reported as before.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            return;
        }
        report(info);
    }));
}
