//! `materialize` (and `materialize` of everything, `--stale` over partitions, `--dry-run`),
//! `reexecute`, and the run-in-this-process shell they share: the progress display, the
//! summary, and Ctrl-C (first cancel, then stop).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::SystemTime;

use orch_core::{AssetSelection, RunId};
use tokio_util::sync::CancellationToken;

use super::{
    EXIT_ASSET_FAILED, EXIT_CANCELED, EXIT_OK, EXIT_USAGE, Env, fail_usage, parse_tag, partitions,
    progress, schedules, table,
};
use crate::instance::Instance;
use crate::materialize::{Materialize, MaterializeError, default_jobs, definitions};
use crate::result::RunResult;
use crate::run::{Backfill, BackfillError, Reexecution, RunRequest};
use crate::storage::{RunStatus, Storage};

#[derive(clap::Args, Debug, Default)]
pub(super) struct MaterializeArgs {
    /// Do not record this run or store its outputs (`$ORCH_HOME`, default `.orch/`).
    #[arg(long, conflicts_with = "stale")]
    pub(super) ephemeral: bool,
    /// Only the stale assets (never materialized, code changed, upstream changed, or
    /// `always_run`), within `--select` if given; up-to-date inputs are loaded from storage.
    #[arg(long)]
    pub(super) stale: bool,
    /// Which assets (selection syntax, e.g. `+report` or `group:sources`); default: all.
    #[arg(long, short, conflicts_with = "job")]
    pub(super) select: Option<String>,
    /// The assets of an asset job (`asset_job!`), by name; `jobs` lists them.
    #[arg(long)]
    pub(super) job: Option<String>,
    /// How many sync assets may run at once (default: the number of cores).
    #[arg(long, short)]
    pub(super) jobs: Option<usize>,
    /// The partition of the selected partitioned assets to materialize, e.g. `2024-01-05`.
    #[arg(long, short)]
    pub(super) partition: Option<String>,
    /// Tag the run, as `key=value` (repeatable); `runs --tag` finds it.
    #[arg(long, value_parser = parse_tag)]
    pub(super) tag: Vec<(String, String)>,
    /// Print what would run, what would load from storage, and (with `--stale`) why each
    /// asset is stale; run nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// With `[run] executor = "workers"`: queue the run's steps for workers and return (print
    /// the run id) instead of waiting; `run show ID --follow` follows it.
    #[arg(long, conflicts_with_all = ["ephemeral", "dry_run"])]
    pub(super) detach: bool,
}

pub(super) fn reexecute(
    env: &Env<'_>,
    run: &str,
    from_failure: bool,
    config: Option<&std::path::Path>,
    jobs: Option<usize>,
) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let run = match super::history::find_run(&**instance.storage(), run) {
        Ok(record) => record.id.to_string(),
        Err(e) => return fail_usage(&e),
    };
    let mut reexecution = match Reexecution::of(&**instance.storage(), &run) {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    if reexecution.checks_only() {
        let parent = reexecution.parent();
        return fail_usage(&format!(
            "run {} only ran asset checks, and re-executing it would materialize `{}`; run the checks again with `check run {}`",
            parent.id.short(),
            parent.target,
            parent.target.trim_start_matches("key:")
        ));
    }
    if from_failure {
        reexecution = reexecution.from_failure();
    }
    if let Some(path) = config {
        let config = match super::jobs::read_config(path) {
            Ok(config) => config,
            Err(e) => return fail_usage(&e),
        };
        reexecution = match reexecution.config(config) {
            Ok(reexecution) => reexecution,
            Err(e) => return fail_usage(&e),
        };
    }
    let request = match reexecution.request(graph) {
        Ok(Some(request)) => request,
        Ok(None) => {
            println!(
                "run {} has nothing to re-execute: every asset it planned succeeded",
                reexecution.parent().id.short()
            );
            return EXIT_OK;
        }
        Err(e) => return fail_usage(&e),
    };
    let mut builder = instance.materialize(request).keep_outputs(false);
    if let Some(jobs) = jobs {
        builder = builder.jobs(jobs);
    }
    finish_run(builder, Some(&instance))
}

/// No command: everything. With partitioned assets that is every partition (one run each),
/// with the unpartitioned assets before and after them, as `backfill` does (one run per
/// partition, which bounds what a run holds; `backfill --partitions-per-run` batches them).
pub(super) fn materialize_everything(env: &Env<'_>) -> u8 {
    let graph = match definitions() {
        Ok(graph) => graph,
        Err(errors) => return fail_usage(errors),
    };
    if !graph.has_partitions() {
        return materialize(env, MaterializeArgs::default());
    }
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    match Backfill::all(AssetSelection::All).plan(&instance) {
        Ok(plan) => partitions::run_backfill(&instance, &plan, "*"),
        Err(e) => fail_usage(&format!("{e}; materialize them with `backfill` instead")),
    }
}

pub(super) fn materialize(env: &Env<'_>, args: MaterializeArgs) -> u8 {
    // Definition errors first: an invalid program should not create a run store.
    if let Err(errors) = definitions() {
        return fail_usage(errors);
    }
    let mut request = match (&args.select, &args.job) {
        (Some(text), _) => match RunRequest::select(text) {
            Ok(request) => request,
            Err(e) => return fail_usage(&e),
        },
        (None, Some(job)) => match schedules::job_request(job) {
            Ok(request) => request,
            Err(e) => return fail_usage(&e),
        },
        (None, None) => RunRequest::all(),
    };
    if let Some(partition) = args.partition {
        request = request.partition(partition);
    }
    for (k, v) in args.tag {
        request = request.tag(k, v);
    }
    if args.stale {
        request = request.only_stale();
    }
    if args.ephemeral {
        // Nothing recorded, nothing stored: outputs live for this run only and no I/O
        // manager (custom ones included) is called.
        if args.dry_run {
            return print_plan(&env.app.ephemeral_instance(env.config.clone()), &request);
        }
        let builder = Materialize::request(request)
            .keep_outputs(false)
            .resources(Arc::clone(env.app.resources()))
            .jobs(args.jobs.unwrap_or_else(|| env.config.jobs()));
        return finish_run(builder, None);
    }
    // A dry run never creates the store: without one, it plans against an empty one.
    let instance = match (args.dry_run, env.existing()) {
        (true, Ok(None)) => env.app.ephemeral_instance(env.config.clone()),
        (true, Ok(Some(instance))) => instance,
        (true, Err(e)) => return fail_usage(&e),
        (false, _) => match env.open() {
            Ok(instance) => instance,
            Err(e) => {
                eprintln!("error: {e}\n(use --ephemeral to run without recording)");
                return EXIT_USAGE;
            }
        },
    };
    // `--stale` over partitioned assets without `--partition`: every stale partition, one run
    // each, as a backfill of just those.
    if args.stale && request.partition_scope() == &crate::run::PartitionScope::None {
        let graph = definitions().expect("checked above");
        let crate::run::RunTarget::Selection(selection) = request.target() else {
            unreachable!("`materialize` builds a selection")
        };
        let ids = match selection.resolve(graph) {
            Ok(ids) => ids,
            Err(e) => return fail_usage(&e),
        };
        if ids.iter().any(|&id| graph.node(id).partitions.is_some()) {
            let jobs = args.jobs.unwrap_or_else(default_jobs);
            return materialize_stale_partitions(
                &instance,
                selection.clone(),
                &request,
                jobs,
                args.dry_run,
            );
        }
    }
    if args.dry_run {
        return print_plan(&instance, &request);
    }
    let mut builder = instance.materialize(request).keep_outputs(false);
    if let Some(jobs) = args.jobs {
        builder = builder.jobs(jobs);
    }
    if args.detach {
        builder = builder.detach();
    }
    finish_run(builder, Some(&instance))
}

/// `materialize --dry-run`: the plan, or why the run could not start.
fn print_plan(instance: &Instance, request: &RunRequest) -> u8 {
    match instance.plan(request) {
        Ok(plan) => {
            print!("{plan}");
            EXIT_OK
        }
        Err(e) => fail_usage(&e),
    }
}

/// `materialize --stale` over a selection with partitioned assets: a [`Backfill::stale`] (the
/// stale partitions, one run each with only what is stale in it; stale unpartitioned inputs
/// before them and stale consumers of every partition after).
fn materialize_stale_partitions(
    instance: &Instance,
    selection: AssetSelection,
    request: &RunRequest,
    jobs: usize,
    dry_run: bool,
) -> u8 {
    let mut backfill = Backfill::stale(selection).parallel(jobs);
    for (k, v) in request.tags() {
        backfill = backfill.tag(k, v);
    }
    let plan = match backfill.plan(instance) {
        Ok(plan) => plan,
        Err(e @ BackfillError::MixedPartitions { .. }) => {
            return fail_usage(&format!(
                "{e}; select the stale assets of one partitions definition at a time"
            ));
        }
        Err(e) => return fail_usage(&e),
    };
    if plan.is_empty() {
        println!("everything is up to date: nothing to materialize");
        return EXIT_OK;
    }
    if !dry_run {
        let names: Vec<String> = plan.stale().iter().map(|(k, _)| k.to_string()).collect();
        let label = format!("stale in ({})", names.join(", "));
        return partitions::run_backfill(instance, &plan, &label);
    }
    println!("plan for the stale assets (dry run: nothing runs)");
    for (key, why) in plan.stale() {
        println!("  {key}  stale: {why}");
    }
    match (plan.keys().first(), plan.keys().last()) {
        (Some(first), Some(last)) => println!(
            "would run {} partition(s), one run each ({first}..{last}), each with what is stale in it",
            plan.keys().len()
        ),
        _ => println!("would run no partition, only the unpartitioned assets above"),
    }
    EXIT_OK
}

/// Runs with the progress display and prints the summary; returns the exit code. The first
/// Ctrl-C cancels the run gracefully; a second aborts the process, recording the run as
/// canceled first.
pub(super) fn finish_run(builder: Materialize<'_>, instance: Option<&Instance>) -> u8 {
    report(run_with_progress(builder, instance, RunId::new()))
}

/// Runs `run_id` with the progress display on stderr; the first Ctrl-C cancels it, the
/// second records it as canceled and exits.
pub(super) fn run_with_progress(
    builder: Materialize<'_>,
    instance: Option<&Instance>,
    run_id: RunId,
) -> Result<RunResult, MaterializeError> {
    let mut sink = progress::Progress::new(std::io::stderr().is_terminal());
    let token = CancellationToken::new();
    let runtime =
        crate::materialize::runtime(builder.effective_jobs()).map_err(MaterializeError::Runtime)?;
    let store = instance
        .filter(|i| !i.is_ephemeral())
        .map(|i| Arc::clone(i.storage()));
    let builder = builder.run_id(run_id.clone()).cancel_token(token.clone());
    let result = runtime.block_on(async {
        let watcher = tokio::spawn(cancel_on_ctrl_c(token, store, run_id));
        let result = builder.events(&mut sink).run_async().await;
        watcher.abort();
        result
    });
    sink.finish();
    result
}

/// Prints a run's summary (or why it did not start); returns the exit code.
pub(super) fn report(result: Result<RunResult, MaterializeError>) -> u8 {
    match result {
        Ok(result) if result.detached() => {
            println!(
                "run {} is queued for workers; follow it with `run show {} --follow`",
                result.run_id(),
                result.run_id().short()
            );
            EXIT_OK
        }
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
            if result.canceled() {
                eprintln!("run {} was canceled", result.run_id().short());
                EXIT_CANCELED
            } else if result.success() {
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

/// The first Ctrl-C cancels the run; the second records it as canceled and exits at once.
async fn cancel_on_ctrl_c(
    token: CancellationToken,
    store: Option<Arc<dyn Storage>>,
    run_id: RunId,
) {
    if tokio::signal::ctrl_c().await.is_err() {
        return; // no signal handling here: Ctrl-C keeps its default
    }
    eprintln!(
        "\ncanceling run {}: no new asset starts; running ones finish (press Ctrl-C again to stop now)",
        run_id.short()
    );
    token.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        if let Some(store) = store {
            let _ = store.end_run(run_id.as_str(), RunStatus::Canceled, SystemTime::now());
        }
        eprintln!("stopped: run {} is recorded as canceled", run_id.short());
        std::process::exit(i32::from(EXIT_CANCELED));
    }
}
