//! Starting queued runs: in this process, or each in a child process of the same binary (the
//! default for the command line: a crash, an abort or an out-of-memory kill in one run does
//! not take the daemon down; the run is marked crashed). Each launch is watched by a thread
//! that tells the daemon's loop when it is over.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use orch_core::RunId;

use super::Wake;
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::storage::{RunRecord, RunStatus, StorageError};

/// The exit code of a child launcher whose run could not start yet (another run holds one of
/// its assets, or the store was busy): the run stays queued and is tried again later.
pub const EXIT_RETRY_LATER: u8 = 75;

/// How the daemon starts a queued run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launcher {
    /// On this process's runtime ([`Instance::launch_queued`]).
    InProcess,
    /// `program args.. RUN_ID` in a child process, which starts the queued run and exits
    /// with `0` (it succeeded), `1` (it failed), [`EXIT_RETRY_LATER`] (it stays queued), or
    /// anything else (it could not start; after three tries the run is recorded as failed).
    /// The command line's is its own binary with the hidden `__run-queued` command.
    ChildProcess {
        /// The program.
        program: PathBuf,
        /// Its arguments before the run id.
        args: Vec<OsString>,
    },
}

/// How a launch ended, as its watcher saw it.
#[derive(Debug)]
pub(super) enum Exit {
    /// The in-process run's result (its error, if it did not start).
    InProcess(Result<(), String>),
    /// The child's exit status.
    Child(ExitStatus),
}

/// The launches in flight, and the queued runs to leave alone for a while.
pub(super) struct Launches {
    pub(super) in_flight: HashMap<RunId, Instant>,
    /// Runs that could not start, with when to try again and how many launches failed.
    backoff: HashMap<RunId, (Instant, u32)>,
    wake: Sender<Wake>,
}

/// What the daemon learns when a launch ends.
#[derive(Debug)]
pub(super) enum Ended {
    /// The run ran (or was started elsewhere) and ended with this status.
    Ran(RunStatus),
    /// It is still queued: it will be tried again after a pause.
    StillQueued(String),
    /// It could never start, and is recorded as failed.
    GaveUp(String),
    /// Its launcher died while it ran: the store now says crashed (or how it ended).
    LauncherDied(RunStatus),
    /// Another launcher started it (a daemon that died had launched it too) and it is still
    /// going there.
    Elsewhere,
}

impl Launches {
    pub(super) fn new(wake: Sender<Wake>) -> Launches {
        Launches {
            in_flight: HashMap::new(),
            backoff: HashMap::new(),
            wake,
        }
    }

    /// Whether the queued run `id` may be launched now.
    pub(super) fn ready(&self, id: &RunId, now: Instant) -> bool {
        !self.in_flight.contains_key(id) && self.backoff.get(id).is_none_or(|(at, _)| *at <= now)
    }

    /// Starts `run_id` with `launcher`. An error means nothing is in flight (the reason).
    pub(super) fn launch(
        &mut self,
        instance: &Instance,
        launcher: &Launcher,
        run_id: &RunId,
    ) -> Result<(), String> {
        let wake = self.wake.clone();
        let id = run_id.clone();
        match launcher {
            Launcher::InProcess => {
                let handle = instance
                    .launch_queued(run_id.as_str())
                    .map_err(|e| e.to_string())?;
                std::thread::Builder::new()
                    .name("orch-run-watch".into())
                    .spawn(move || {
                        let result = handle.wait().map(drop).map_err(|e| e.to_string());
                        let _ = wake.send(Wake::Launch(id, Exit::InProcess(result)));
                    })
                    .map_err(|e| format!("cannot start a thread to watch the run: {e}"))?;
            }
            Launcher::ChildProcess { program, args } => {
                let mut child = Command::new(program)
                    .args(args)
                    .arg(run_id.as_str())
                    // The same store, whatever the child's environment would choose.
                    .env("ORCH_HOME", instance.config().home())
                    .stdin(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
                std::thread::Builder::new()
                    .name("orch-run-watch".into())
                    .spawn(move || {
                        let status = child.wait();
                        let exit = match status {
                            Ok(status) => Exit::Child(status),
                            Err(e) => Exit::InProcess(Err(format!("lost the child: {e}"))),
                        };
                        let _ = wake.send(Wake::Launch(id, exit));
                    })
                    .map_err(|e| format!("cannot start a thread to watch the run: {e}"))?;
            }
        }
        self.in_flight.insert(run_id.clone(), Instant::now());
        Ok(())
    }

    /// A launch that could not even begin (the program could not be spawned): tried again
    /// later, and given up on (the run recorded as failed) after three tries.
    pub(super) fn failed_to_launch(
        &mut self,
        instance: &Instance,
        run_id: &RunId,
        why: String,
        retry_after: Duration,
    ) -> Result<Ended, StorageError> {
        self.retry_or_give_up(instance, run_id, why, false, retry_after)
    }

    /// Keeps a queued run for a later try (after a pause that doubles with each try, up to
    /// 10 s), or, for a run that `always_retry` does not cover, gives up after three tries.
    fn retry_or_give_up(
        &mut self,
        instance: &Instance,
        run_id: &RunId,
        why: String,
        always_retry: bool,
        retry_after: Duration,
    ) -> Result<Ended, StorageError> {
        let tries = self.backoff.get(run_id).map_or(0, |(_, n)| *n) + 1;
        if always_retry || tries < 3 {
            let pause = retry_after
                .saturating_mul(1 << tries.min(6))
                .min(Duration::from_secs(10));
            self.backoff
                .insert(run_id.clone(), (Instant::now() + pause, tries));
            return Ok(Ended::StillQueued(why));
        }
        self.backoff.remove(run_id);
        let reason = format!("the run could not start after {tries} tries: {why}");
        instance
            .storage()
            .end_queued_run(run_id.as_str(), RunStatus::Failed, &reason)?;
        Ok(Ended::GaveUp(reason))
    }

    /// Forgets the pauses of runs that are no longer queued.
    pub(super) fn forget_except(&mut self, queued: &[RunRecord]) {
        self.backoff
            .retain(|id, _| queued.iter().any(|r| &r.id == id));
    }

    /// Settles a launch that ended: reads how its run ended, keeps it queued for a later try,
    /// gives up on it, or has a run whose launcher died marked crashed.
    pub(super) fn ended(
        &mut self,
        instance: &Instance,
        run_id: &RunId,
        exit: Exit,
        retry_after: Duration,
    ) -> Result<Ended, StorageError> {
        self.in_flight.remove(run_id);
        let store = instance.storage();
        let status = store.run(run_id.as_str())?.status;
        let why = match &exit {
            Exit::InProcess(Err(why)) => why.clone(),
            Exit::InProcess(Ok(())) => "it ended without starting".to_owned(),
            Exit::Child(status) => match status.code() {
                Some(code) => format!("its launcher process exited with code {code}"),
                None => format!("its launcher process was killed ({status})"),
            },
        };
        match status {
            RunStatus::Queued => {
                let retry = match &exit {
                    Exit::Child(s) => s.code() == Some(i32::from(EXIT_RETRY_LATER)),
                    // In process, a run that cannot start for good is ended by the launch
                    // itself; one still queued waits for its assets or the store.
                    Exit::InProcess(_) => true,
                };
                self.retry_or_give_up(instance, run_id, why, retry, retry_after)
            }
            RunStatus::Starting | RunStatus::Running => {
                self.backoff.remove(run_id);
                // The launcher is gone and the run never ended: its lock is free now, so
                // recovery records it as crashed.
                store.recover_crashed()?;
                match store.run(run_id.as_str())?.status {
                    RunStatus::Starting | RunStatus::Running => Ok(Ended::Elsewhere),
                    status => Ok(Ended::LauncherDied(status)),
                }
            }
            ended => {
                self.backoff.remove(run_id);
                Ok(Ended::Ran(ended))
            }
        }
    }
}

/// Whether a launch error means "try again later" rather than "never".
pub(crate) fn retry_later(e: &MaterializeError) -> bool {
    matches!(
        e,
        MaterializeError::Storage(
            StorageError::AssetBusy { .. }
                | StorageError::Database { .. }
                | StorageError::Io { .. }
        )
    )
}
