//! The daemon's lease on the store: taken at start (a dead holder on this machine is taken
//! over at once, through its lock file), renewed by a heartbeat thread that nothing else
//! blocks, released when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{DAEMON_LEASE, Daemon, DaemonError, Wake};
use crate::storage::{AliveHold, LeaseOutcome, StorageError};

/// The daemon's hold on the store: renewed by a heartbeat thread, released when dropped.
pub(super) struct Lease {
    /// Held while this process lives (file stores): how another daemon on this machine
    /// knows it died.
    _alive: AliveHold,
    stop: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    pub(super) lost: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    release: Box<dyn Fn() + Send>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (flag, cvar) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !self.lost.load(Ordering::Acquire) {
            (self.release)();
        }
    }
}

impl Daemon {
    /// Takes the lease and starts its heartbeat; `wake` is told if it is lost.
    pub(super) fn lease(&self, wake: mpsc::Sender<Wake>) -> Result<Lease, DaemonError> {
        let store = Arc::clone(self.instance.storage());
        let ttl = self.options.lease;
        // On a file store, a lock file proves the holder alive (as for runs): a holder on this
        // machine whose lock is free has died, and its lease is taken over at once instead of
        // after it lapses.
        let alive = store.hold_alive(&self.holder)?;
        let host = format!(
            " on {}",
            crate::storage::owner()
                .split_once('@')
                .map_or("", |(_, h)| h)
        );
        for attempt in 0..2 {
            match store.acquire_lease(DAEMON_LEASE, &self.holder, &self.description, ttl)? {
                LeaseOutcome::Acquired => break,
                LeaseOutcome::Held(holder) => {
                    let dead = attempt == 0
                        && holder.description.ends_with(&host)
                        && !store.is_alive(&holder.id)?;
                    if !dead {
                        return Err(DaemonError::Held(holder));
                    }
                    // Only if it is still the dead one's: two daemons taking over at once
                    // both get here, and exactly one acquires it.
                    store.release_lease(DAEMON_LEASE, &holder.id)?;
                }
            }
        }
        let stop = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let lost = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, lost, store, holder) = (
                Arc::clone(&stop),
                Arc::clone(&lost),
                Arc::clone(&store),
                self.holder.clone(),
            );
            std::thread::Builder::new()
                .name("orch-daemon-heartbeat".into())
                .spawn(move || {
                    let every = (ttl / 3).max(Duration::from_millis(10));
                    let (flag, cvar) = &*stop;
                    let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        // Checked before waiting too: a stop asked before this thread first
                        // took the lock would otherwise be missed, and the daemon's exit
                        // would wait out a whole heartbeat interval.
                        if *stopped {
                            return;
                        }
                        stopped = cvar
                            .wait_timeout(stopped, every)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        if *stopped {
                            return;
                        }
                        match store.renew_lease(DAEMON_LEASE, &holder, ttl) {
                            Ok(true) => {}
                            Ok(false) => {
                                lost.store(true, Ordering::Release);
                                let _ = wake.send(Wake::Stop);
                                return;
                            }
                            // A store that is down now may be back before the lease lapses.
                            Err(e) => tracing::warn!("daemon heartbeat failed: {e}"),
                        }
                    }
                })
                .map_err(|e| StorageError::Io {
                    path: self.instance.config().home().to_owned(),
                    source: e,
                })?
        };
        let holder = self.holder.clone();
        Ok(Lease {
            _alive: alive,
            stop,
            lost,
            thread: Some(thread),
            release: Box::new(move || {
                let _ = store.release_lease(DAEMON_LEASE, &holder);
            }),
        })
    }
}
