//! The command line of an orch program: `cargo run -- materialize | list | lineage`.
//!
//! Exit codes: 0 when every asset succeeded, 1 when an asset failed, 2 for a usage or
//! definition error (a bad selection, duplicate keys, ...).

mod lineage;
mod progress;
mod table;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use orch_core::{AssetGraph, AssetSelection};

use crate::materialize::{Materialize, MaterializeError, default_jobs, definitions};

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

#[derive(clap::Args, Debug, Default)]
struct MaterializeArgs {
    /// Which assets (selection syntax, e.g. `+report` or `group:sources`); default: all.
    #[arg(long, short)]
    select: Option<String>,
    /// How many sync assets may run at once (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
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
    crate::logging::init();
    run_cli(std::env::args_os())
}

/// Runs the command line with explicit arguments (the first is the program name).
pub fn run_cli<I, T>(args: I) -> ExitCode
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
        None => materialize(MaterializeArgs::default()),
        Some(Command::Materialize(args)) => materialize(args),
        Some(Command::List { select }) => with_selection(select.as_deref(), |graph, ids| {
            table::print_list(graph, ids);
            EXIT_OK
        }),
        Some(Command::Lineage { select, format }) => {
            with_selection(select.as_deref(), |graph, ids| {
                let text = lineage::render(graph, ids, format);
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

fn materialize(args: MaterializeArgs) -> u8 {
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let mut builder = match &args.select {
        Some(text) => Materialize::select(text),
        None => Materialize::all(),
    };
    builder = builder.jobs(jobs).keep_outputs(false);
    let mut sink = progress::Progress::new(std::io::stderr().is_terminal());
    let result = builder.events(&mut sink).run();
    sink.finish();
    match result {
        Ok(result) => {
            table::print_summary(&result);
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
