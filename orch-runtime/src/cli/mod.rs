//! The command line of an orch program: `cargo run -- materialize | list | lineage`.
//!
//! Exit codes: 0 when every asset succeeded, 1 when an asset failed, 2 for a usage or
//! definition error (a bad selection, duplicate keys, ...).

mod history;
mod lineage;
mod partitions;
mod progress;
mod table;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use orch_core::{AssetGraph, AssetSelection};

use std::sync::Arc;

use crate::materialize::{Materialize, MaterializeError, Recording, default_jobs, definitions};
use crate::storage::{Retention, SqliteStorage, Storage, StorageError, state_dir};

/// Exit code when every asset succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one asset failed.
pub const EXIT_ASSET_FAILED: u8 = 1;
/// Exit code for a usage or definition error.
pub const EXIT_USAGE: u8 = 2;

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
    },
    /// One run: its per-asset timeline and logs.
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// Run the assets of an earlier run again (with `--from-failure`, only those that did not
    /// succeed: failed, skipped, or cut short by a crash); their other inputs load from storage.
    Reexecute {
        /// The run id or a unique prefix (as `runs` prints it).
        run: String,
        /// Only what did not succeed.
        #[arg(long)]
        from_failure: bool,
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
        /// The run id or prefix.
        id: String,
    },
}

#[derive(clap::Args, Debug, Default)]
struct MaterializeArgs {
    /// Do not record this run or store its outputs (`$ORCH_HOME`, default `.orch/`).
    #[arg(long, conflicts_with = "stale")]
    ephemeral: bool,
    /// Only the stale assets (never materialized, code changed, upstream changed, or
    /// `always_run`), within `--select` if given; up-to-date inputs are loaded from storage.
    #[arg(long)]
    stale: bool,
    /// Which assets (selection syntax, e.g. `+report` or `group:sources`); default: all.
    #[arg(long, short)]
    select: Option<String>,
    /// How many sync assets may run at once (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// The partition of the selected partitioned assets to materialize, e.g. `2024-01-05`.
    #[arg(long, short)]
    partition: Option<String>,
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

/// A program's configuration beyond its assets: custom I/O managers and resources.
///
/// ```no_run
/// # use orch_runtime::{App, io::MemoryIoManager};
/// fn main() -> std::process::ExitCode {
///     App::new().io_manager("warehouse", MemoryIoManager::default()).main()
/// }
/// ```
#[derive(Default)]
pub struct App {
    io_managers: Vec<(String, Arc<dyn crate::io::IoManager>)>,
    resources: Arc<orch_core::Resources>,
    parquet_compression: crate::io::ParquetCompression,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field(
                "io_managers",
                &self.io_managers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("resources", &self.resources)
            .finish()
    }
}

impl App {
    /// No custom I/O managers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an I/O manager under `name`, for assets with `#[asset(io_manager = "name")]`.
    pub fn io_manager(mut self, name: &str, manager: impl crate::io::IoManager) -> Self {
        self.io_managers.push((name.to_owned(), Arc::new(manager)));
        self
    }

    /// How the default I/O manager compresses the Parquet files of frame outputs (default
    /// [`ParquetCompression::Lz4`](crate::io::ParquetCompression::Lz4), the fastest to
    /// write; `Zstd(3)` for the smallest files).
    pub fn parquet_compression(mut self, compression: crate::io::ParquetCompression) -> Self {
        self.parquet_compression = compression;
        self
    }

    /// Adds `value` as the resource of type `T`, for `#[resource]` parameters of that type
    /// (e.g. a database pool). Resources are shared by every run of the program.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.resources).insert(value);
        self
    }

    /// The I/O managers for a state directory: the built-ins plus the registered ones.
    pub fn io_managers(&self, dir: std::path::PathBuf) -> crate::io::IoManagers {
        let fs = crate::io::FsIoManager::new(crate::io::IoManagers::storage_dir(&dir))
            .parquet_compression(self.parquet_compression);
        let mut managers = crate::io::IoManagers::new(dir);
        managers.set_fs(fs);
        for (name, manager) in &self.io_managers {
            managers.register(name.clone(), Arc::clone(manager));
        }
        managers
    }

    /// Runs the command line with the process arguments; returns the exit code.
    pub fn main(self) -> ExitCode {
        crate::logging::init();
        self.run_cli(std::env::args_os())
    }

    /// Runs the command line with explicit arguments (the first is the program name).
    pub fn run_cli<I, T>(&self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        run(self, args)
    }
}

/// Runs the command line with explicit arguments (the first is the program name).
pub fn run_cli<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run(&App::new(), args)
}

fn run<I, T>(app: &App, args: I) -> ExitCode
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
    let code = match cli.command {
        None => materialize_everything(app),
        Some(Command::Materialize(args)) => materialize(app, args),
        Some(Command::List { select }) => with_selection(select.as_deref(), |graph, ids| {
            // `list` reads the store if there is one; it never creates it.
            let (states, latest) = if state_dir().join("orch.db").exists() {
                match open_store()
                    .and_then(|s| Ok((s.asset_states()?, s.latest_materializations()?)))
                {
                    Ok(found) => found,
                    Err(e) => return fail_usage(&e),
                }
            } else {
                Default::default()
            };
            let stale = crate::staleness::stale_assets(graph, &latest);
            table::print_list(graph, ids, &states, &stale);
            EXIT_OK
        }),
        Some(Command::Runs { limit }) => with_store(|store| history::print_runs(store, limit)),
        Some(Command::Run {
            command: RunCommand::Show { id },
        }) => with_store(|store| history::print_run(store, &id)),
        Some(Command::Reexecute {
            run,
            from_failure,
            jobs,
        }) => reexecute(app, &run, from_failure, jobs),
        Some(Command::Backfill {
            select,
            from,
            to,
            jobs,
            partitions_per_run,
            single_run,
        }) => match open_store() {
            Ok(store) => partitions::backfill(
                Recording {
                    storage: Arc::new(store),
                    dir: state_dir(),
                    trigger: "backfill".to_owned(),
                    io: Arc::new(app.io_managers(state_dir())),
                },
                Arc::clone(&app.resources),
                &select,
                &from,
                &to,
                if single_run {
                    usize::MAX
                } else {
                    partitions_per_run.unwrap_or(1)
                },
                jobs.unwrap_or_else(default_jobs),
            ),
            Err(e) => fail_usage(&e),
        },
        Some(Command::Partitions { asset, add }) => partitions::print_partitions(&asset, &add),
        Some(Command::History { asset, limit }) => {
            with_store(|store| history::print_history(store, &asset, limit))
        }
        Some(Command::Lineage { select, format }) => {
            with_selection(select.as_deref(), |graph, ids| {
                let stale = if state_dir().join("orch.db").exists() {
                    match open_store().and_then(|s| s.latest_materializations()) {
                        Ok(latest) => crate::staleness::stale_assets(graph, &latest),
                        Err(e) => return fail_usage(&e),
                    }
                } else {
                    crate::staleness::stale_assets(graph, &Default::default())
                };
                let text = lineage::render(graph, ids, format, &stale);
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                EXIT_OK
            })
        }
    };
    ExitCode::from(code)
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

/// Opens the run store, marks runs whose process died as crashed (saying so) and applies the
/// retention policy.
fn open_store() -> Result<SqliteStorage, StorageError> {
    let store = SqliteStorage::open(&state_dir())?;
    for id in store.recover_crashed()? {
        eprintln!("note: run {id} was interrupted (its process died); it is now marked crashed");
    }
    store.apply_retention(Retention::default())?;
    Ok(store)
}

fn with_store(f: impl FnOnce(&dyn Storage) -> Result<(), StorageError>) -> u8 {
    match open_store().and_then(|store| f(&store)) {
        Ok(()) => EXIT_OK,
        Err(e) => fail_usage(&e),
    }
}

fn reexecute(app: &App, run: &str, from_failure: bool, jobs: Option<usize>) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    let store = match open_store() {
        Ok(store) => store,
        Err(e) => return fail_usage(&e),
    };
    let plan = store
        .run(run)
        .and_then(|record| Ok((store.events(&record.id)?, record)));
    let (events, record) = match plan {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    // What the run set out to do: its selection resolved again, or (for a selection that no
    // longer resolves, such as a `--stale` run's) the assets it has events for.
    let mut assets: Vec<String> = match record
        .selection
        .parse::<AssetSelection>()
        .and_then(|s| s.resolve(graph))
    {
        Ok(ids) => ids
            .iter()
            .map(|&id| graph.node(id).key.to_string())
            .collect(),
        Err(_) => events.iter().map(|e| e.asset.clone()).collect(),
    };
    assets.sort();
    assets.dedup();
    if from_failure {
        let succeeded: std::collections::HashSet<&str> = events
            .iter()
            .filter(|e| e.kind == crate::storage::EventKind::Materialized)
            .map(|e| e.asset.as_str())
            .collect();
        assets.retain(|a| !succeeded.contains(a.as_str()));
    }
    if assets.is_empty() {
        println!(
            "run {} has nothing to re-execute: every asset it planned succeeded",
            &record.id[..8.min(record.id.len())]
        );
        return EXIT_OK;
    }
    let selection = match AssetSelection::keys(&assets) {
        Ok(selection) => selection,
        Err(e) => return fail_usage(&e),
    };
    // A partitioned run re-executes the same partition, or the same range.
    let mut partitions: Vec<String> = Vec::new();
    for e in &events {
        if let Some(p) = &e.partition
            && !partitions.contains(p)
        {
            partitions.push(p.clone());
        }
    }
    partitions.sort();
    let mut builder = Materialize::selection(selection)
        .jobs(jobs.unwrap_or_else(default_jobs))
        .keep_outputs(false)
        .resources(Arc::clone(&app.resources));
    builder = match partitions.as_slice() {
        [] => builder,
        [one] => builder.partition(one.clone()),
        range => builder.partition_range(range.iter().cloned()),
    };
    let builder = builder.record(Recording {
        storage: Arc::new(store),
        dir: state_dir(),
        trigger: format!("reexecute {}", &record.id[..8.min(record.id.len())]),
        io: Arc::new(app.io_managers(state_dir())),
    });
    finish_run(builder)
}

/// No command: everything. With partitioned assets that is every partition (one run each),
/// with the unpartitioned assets before and after them, as `backfill` does (one run per
/// partition, which bounds what a run holds; `backfill --partitions-per-run` batches them).
fn materialize_everything(app: &App) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    if !graph.has_partitions() {
        return materialize(app, MaterializeArgs::default());
    }
    let all: Vec<usize> = (0..graph.len()).collect();
    let store = match open_store() {
        Ok(store) => store,
        Err(e) => return fail_usage(&e),
    };
    let keys = match partitions::all_keys(graph, &all, &store) {
        Ok(keys) => keys,
        Err(e) => return fail_usage(&format!("{e}; materialize them with `backfill` instead")),
    };
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return fail_usage(&"the partitioned assets have no partitions yet");
    };
    partitions::backfill(
        Recording {
            storage: Arc::new(store),
            dir: state_dir(),
            trigger: "cli".to_owned(),
            io: Arc::new(app.io_managers(state_dir())),
        },
        Arc::clone(&app.resources),
        "*",
        first,
        last,
        1,
        default_jobs(),
    )
}

fn materialize(app: &App, args: MaterializeArgs) -> u8 {
    // Definition errors first: an invalid program should not create a run store.
    if let Err(errors) = definitions() {
        return fail_usage(errors);
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let mut builder = match &args.select {
        Some(text) => Materialize::select(text),
        None => Materialize::all(),
    };
    builder = builder
        .jobs(jobs)
        .keep_outputs(false)
        .resources(Arc::clone(&app.resources));
    if let Some(partition) = args.partition {
        builder = builder.partition(partition);
    }
    if !args.ephemeral {
        match open_store() {
            Ok(store) => {
                builder = builder.record(Recording {
                    storage: Arc::new(store),
                    dir: state_dir(),
                    trigger: "cli".to_owned(),
                    io: Arc::new(app.io_managers(state_dir())),
                });
                if args.stale {
                    builder = builder.only_stale();
                }
            }
            Err(e) => {
                eprintln!("error: {e}\n(use --ephemeral to run without recording)");
                return EXIT_USAGE;
            }
        }
    }
    finish_run(builder)
}

/// Runs with the progress display and prints the summary; returns the exit code.
fn finish_run(builder: Materialize<'_>) -> u8 {
    let mut sink = progress::Progress::new(std::io::stderr().is_terminal());
    let result = builder.events(&mut sink).run();
    sink.finish();
    match result {
        Ok(result) if result.outcomes().is_empty() => {
            println!("everything is up to date: nothing to materialize");
            EXIT_OK
        }
        Ok(result) => {
            table::print_summary(&result);
            if let Some(e) = result.storage_error() {
                eprintln!("error: the run finished but was not fully recorded: {e}");
                return EXIT_ASSET_FAILED;
            }
            if result.success() {
                EXIT_OK
            } else {
                EXIT_ASSET_FAILED
            }
        }
        Err(MaterializeError::Runtime(e)) => {
            eprintln!("error: could not start the async runtime: {e}");
            EXIT_ASSET_FAILED
        }
        Err(e) => fail_usage(&e),
    }
}
