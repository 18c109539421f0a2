//! `worker`: a thin shell over [`Worker`] that prints what it does, one line per step.

use tokio_util::sync::CancellationToken;

use super::{EXIT_OK, Env, fail_usage};
use crate::worker::{Worker, WorkerEvent, WorkerOptions};

pub(super) fn worker(env: &Env<'_>, concurrency: usize, queues: Vec<String>) -> u8 {
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let worker = match Worker::new(
        instance,
        WorkerOptions {
            concurrency,
            name: None,
            queues: if queues.is_empty() {
                vec![crate::storage::DEFAULT_QUEUE.to_owned()]
            } else {
                queues
            },
        },
    ) {
        Ok(worker) => worker,
        Err(e) => return fail_usage(&e),
    };
    println!(
        "worker {} waiting for steps of queue {} ({concurrency} at once); Ctrl-C stops it",
        worker.name(),
        worker.queues().join(", ")
    );
    let stop = CancellationToken::new();
    super::daemon::stop_on_signals(stop.clone());
    let print = |event: WorkerEvent<'_>| match event {
        WorkerEvent::Claimed(step) => println!(
            "run {}: {} started (delivery {})",
            step.run_id.short(),
            step.step,
            step.attempt
        ),
        WorkerEvent::Completed(step, end, took) => println!(
            "run {}: {} {} in {}",
            step.run_id.short(),
            step.step,
            end.as_str(),
            humantime::format_duration(std::time::Duration::from_millis(
                u64::try_from(took.as_millis()).unwrap_or(u64::MAX)
            ))
        ),
        WorkerEvent::Abandoned(_, why) => eprintln!("warning: {why}"),
        WorkerEvent::StoreError(e) => eprintln!("warning: {e}; trying again"),
    };
    match worker.run(&stop, &print) {
        Ok(report) => {
            println!(
                "worker {} stopped: {} step(s) completed, {} abandoned",
                worker.name(),
                report.completed,
                report.abandoned
            );
            EXIT_OK
        }
        Err(e) => fail_usage(&e),
    }
}
