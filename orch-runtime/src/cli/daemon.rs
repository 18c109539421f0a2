//! `daemon`, `daemon --once` and the hidden `__run-queued` (what the daemon's child-process
//! launcher runs): thin shells over [`Daemon`] and [`Instance::launch_queued`].

use jiff::Zoned;
use orch_core::RunId;
use tokio_util::sync::CancellationToken;

use super::materialize::{report, run_with_progress};
use super::schedules::{checked, instant_or_now};
use super::{EXIT_ASSET_FAILED, EXIT_CANCELED, EXIT_OK, Env, fail_usage};
use crate::automation::{
    AutomationEvaluation, Evaluated, ScheduleEvaluation, SensorEvaluated, SensorEvaluation,
    SensorOutcome, TickOutcome,
};
use crate::daemon::{Daemon, DaemonEvent, DaemonOptions, EXIT_RETRY_LATER, Launcher};
use crate::instance::LaunchMode;
use crate::materialize::MaterializeError;
use crate::storage::StorageError;

/// The hidden command the child-process launcher runs.
pub(super) const RUN_QUEUED: &str = "__run-queued";

fn show(t: &Zoned) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// One line for a schedule's evaluation.
fn evaluation_line(e: &ScheduleEvaluation) -> String {
    let name = e.schedule;
    let next = |t: &Option<Zoned>| t.as_ref().map_or("none".to_owned(), show);
    match &e.evaluated {
        Evaluated::Paused => "automation is paused: nothing evaluated (`automation resume`)".into(),
        Evaluated::Stopped => format!("{name}: stopped"),
        Evaluated::Started { next: n } => {
            format!("{name}: running from now on; next tick {}", next(n))
        }
        Evaluated::NothingDue { next: n } => {
            format!("{name}: nothing due; next tick {}", next(n))
        }
        Evaluated::Ticked {
            tick,
            missed,
            outcome,
        } => {
            let missed = match missed {
                0 => String::new(),
                n => format!(" ({n} earlier missed tick(s) not run)"),
            };
            let what = match outcome {
                TickOutcome::Requested(ids) => {
                    let ids: Vec<&str> = ids.iter().map(RunId::short).collect();
                    format!("queued run {}", ids.join(", "))
                }
                TickOutcome::AlreadyDone(record) => {
                    format!("already evaluated ({})", record.status.as_str())
                }
                TickOutcome::Skipped(reason) => format!("skipped: {reason}"),
                TickOutcome::Failed(reason) => format!("failed: {reason}"),
            };
            format!("{name}: tick {}: {what}{missed}", show(tick))
        }
    }
}

/// One line for a sensor's evaluation.
pub(super) fn sensor_line(e: &SensorEvaluation) -> String {
    let name = e.sensor;
    match &e.evaluated {
        SensorEvaluated::Paused => format!("{name}: automation is paused"),
        SensorEvaluated::Stopped => format!("{name}: stopped"),
        SensorEvaluated::NotDue { next } => format!(
            "{name}: not due until {}",
            next.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        ),
        SensorEvaluated::Evaluated(outcome) => format!("{name}: {}", sensor_outcome(outcome)),
    }
}

/// What a sensor's evaluation decided, as text.
pub(super) fn sensor_outcome(outcome: &SensorOutcome) -> String {
    match outcome {
        SensorOutcome::Requested { runs, repeated } => {
            let ids: Vec<&str> = runs.iter().map(RunId::short).collect();
            let mut text = match ids.is_empty() {
                true => "no new run".to_owned(),
                false => format!("queued run {}", ids.join(", ")),
            };
            if *repeated > 0 {
                text.push_str(&format!(
                    " ({repeated} run key(s) launched before, not again)"
                ));
            }
            text
        }
        SensorOutcome::Skipped(reason) => format!("skipped: {reason}"),
        SensorOutcome::Failed(cause) => format!("failed: {cause}"),
    }
}

/// One line for an evaluation of the assets' automation conditions (none if no asset has
/// one).
pub(super) fn automation_line(e: &AutomationEvaluation) -> Option<String> {
    if e.assets == 0 {
        return None;
    }
    Some(match (&e.run, e.paused) {
        (_, true) => "automation: paused".to_owned(),
        (Some(run), _) => {
            let keys: Vec<String> = e.requested.iter().map(ToString::to_string).collect();
            format!(
                "automation: requested {} (queued run {})",
                keys.join(", "),
                run.short()
            )
        }
        (None, _) => format!(
            "automation: {} asset(s) evaluated, none requested (`automation explain ASSET` says why)",
            e.assets
        ),
    })
}

/// Prints what the daemon does, one line each.
pub(super) fn print_event(event: DaemonEvent<'_>) {
    match event {
        DaemonEvent::Started { holder } => eprintln!("{holder} holds the store"),
        DaemonEvent::Schedule(e) => {
            let line = evaluation_line(e);
            println!("{line}");
        }
        DaemonEvent::Sensor(e) => println!("{}", sensor_line(e)),
        DaemonEvent::Freshness(c) => println!(
            "freshness: {} {} -> {}: {}",
            c.asset,
            c.previous.map_or("new", |p| p.as_str()),
            c.state,
            c.detail
        ),
        DaemonEvent::Automation(e) => {
            if let Some(line) = automation_line(e) {
                println!("{line}");
            }
        }
        DaemonEvent::Launched(id) => println!("run {} started", id.short()),
        DaemonEvent::Ended(id, status) => println!("run {} {}", id.short(), status.as_str()),
        DaemonEvent::StillQueued(id, why) => {
            println!("run {} stays queued: {why}", id.short());
        }
        DaemonEvent::GaveUp(id, why) => println!("run {} failed: {why}", id.short()),
        DaemonEvent::Warning(what) => eprintln!("warning: {what}"),
        DaemonEvent::Stopping(0) => eprintln!("stopping"),
        DaemonEvent::Stopping(n) => {
            eprintln!("stopping: waiting for {n} run(s) it started (Ctrl-C again to stop now)");
        }
    }
}

/// `daemon [--once] [--at T]`.
pub(super) fn daemon(env: &Env<'_>, once: bool, at: Option<String>) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    if at.is_some() && !once {
        return fail_usage(&"`--at` needs `--once`: the long-running daemon evaluates as of now");
    }
    let at = match instant_or_now(at.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail_usage(&e),
    };
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let options = match daemon_options(env) {
        Ok(options) => options,
        Err(e) => return fail_usage(&e),
    };
    let daemon = Daemon::new(instance, automation, options);
    if once {
        return match daemon.once(at, &mut print_event) {
            Ok(report) if report.success() => EXIT_OK,
            Ok(_) => EXIT_ASSET_FAILED,
            Err(e) => fail_usage(&e),
        };
    }
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone());
    match daemon.run(&shutdown, &mut print_event) {
        Ok(()) => EXIT_OK,
        Err(e) => fail_usage(&e),
    }
}

/// The daemon's options as configured: its lease, its queue's limits, and how it launches
/// runs (in this process, or each in a child process running this program).
pub(super) fn daemon_options(env: &Env<'_>) -> Result<DaemonOptions, String> {
    let launcher = match env.config.launch_mode() {
        LaunchMode::InProcess => Launcher::InProcess,
        LaunchMode::ChildProcess => match std::env::current_exe() {
            Ok(program) => Launcher::ChildProcess {
                program,
                args: vec![RUN_QUEUED.into()],
            },
            Err(e) => {
                return Err(format!(
                    "cannot find this program to launch runs in child processes ({e}); set `launcher = \"in_process\"` under [daemon] in orch.toml"
                ));
            }
        },
    };
    Ok(DaemonOptions {
        lease: env.config.daemon_lease(),
        launcher,
        limits: env.config.queue_limits().clone(),
        ..DaemonOptions::default()
    })
}

/// Ctrl-C or SIGTERM stops the daemon; a second one exits at once.
pub(super) fn stop_on_signals(shutdown: CancellationToken) {
    let spawned = std::thread::Builder::new()
        .name("orch-daemon-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                let mut signals = 0;
                loop {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => if r.is_err() { return },
                        _ = term.recv() => {}
                    }
                    signals += 1;
                    if signals > 1 {
                        eprintln!("stopped at once");
                        std::process::exit(i32::from(EXIT_CANCELED));
                    }
                    shutdown.cancel();
                }
            });
        });
    if let Err(e) = spawned {
        eprintln!("warning: no signal handling ({e}): Ctrl-C stops the daemon at once");
    }
}

/// `__run-queued RUN_ID`: starts a queued run in this process (the daemon's child-process
/// launcher). Exit codes: 0 it succeeded (or someone else started it), 1 it failed,
/// [`EXIT_RETRY_LATER`] it stays queued, 2 it can never start (recorded as failed).
pub(super) fn run_queued(env: &Env<'_>, run_id: &str) -> u8 {
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let (id, request) = match instance.queued_request(run_id) {
        Ok(found) => found,
        Err(MaterializeError::Storage(StorageError::NotQueued { run_id, status })) => {
            println!("run {run_id} is {status}: nothing to start");
            return EXIT_OK;
        }
        Err(e) => return fail_usage(&e),
    };
    let jobs = env.config.jobs();
    let builder = instance.materialize(request).jobs(jobs).keep_outputs(false);
    match run_with_progress(builder, Some(&instance), id.clone()) {
        Err(MaterializeError::Storage(StorageError::NotQueued { status, .. })) => {
            println!("run {} was started by someone else ({status})", id.short());
            EXIT_OK
        }
        Err(e) if crate::daemon::retry_later(&e) => {
            eprintln!("run {} stays queued: {e}", id.short());
            EXIT_RETRY_LATER
        }
        Err(e) => {
            crate::instance::fail_if_never_startable(&**instance.storage(), &id, &e);
            report(Err(e))
        }
        ok => report(ok),
    }
}

/// Starts the queued runs `ids` in this process, one after another, and prints each summary
/// and `{label}run ID succeeded|failed`: what `schedule tick` and `sensor tick` do with the
/// runs they queued. Exit code 1 if one did not succeed.
pub(super) fn run_here(instance: &crate::Instance, ids: &[RunId], label: &str) -> u8 {
    let mut code = EXIT_OK;
    for id in ids {
        let result = instance
            .launch_queued(id.as_str())
            .and_then(crate::run::RunHandle::wait);
        let ok = match &result {
            Ok(r) => {
                super::table::print_summary(r);
                r.success() && r.storage_error().is_none()
            }
            Err(e) => {
                eprintln!("error: run {} could not start: {e}", id.short());
                false
            }
        };
        println!(
            "{label}run {} {}",
            id.short(),
            if ok { "succeeded" } else { "failed" }
        );
        if !ok {
            code = EXIT_ASSET_FAILED;
        }
    }
    code
}
