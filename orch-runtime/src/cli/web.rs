//! `dev` and `ui`: thin shells over [`WebServer`] (and, for `dev`, [`Daemon`] on its own
//! thread), stopped by Ctrl-C.

use std::net::IpAddr;

use tokio_util::sync::CancellationToken;

use super::daemon::{daemon_options, print_event, stop_on_signals};
use super::schedules::checked;
use super::{EXIT_OK, Env, fail_usage};
use crate::daemon::Daemon;
use crate::materialize::definitions;
use crate::web::{DEFAULT_PORT, WebMode, WebOptions, WebServer};

/// Where the UI listens.
#[derive(clap::Args, Debug)]
pub(super) struct WebArgs {
    /// The port.
    #[arg(long, short, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// The address to listen on. Anything but loopback needs `ORCH_UI_TOKEN` set.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
}

/// `dev` or `ui`.
pub(super) fn serve(env: &Env<'_>, args: WebArgs, mode: WebMode) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    let graph = definitions().expect("checked above");
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let token = std::env::var("ORCH_UI_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if !args.host.is_loopback() {
        eprintln!(
            "warning: serving on {} (not loopback): anyone who can reach it and has the token can launch runs",
            args.host
        );
    }
    let options = WebOptions {
        host: args.host,
        port: args.port,
        token,
        mode,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("orch-web")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail_usage(&format!("cannot start the web server's runtime: {e}")),
    };
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone());
    let server = match runtime.block_on(WebServer::bind(
        instance.clone(),
        graph,
        automation,
        options,
    )) {
        Ok(server) => server,
        Err(e) => return fail_usage(&e),
    };
    let daemon = match mode {
        WebMode::UiOnly => None,
        WebMode::Dev => {
            let options = match daemon_options(env) {
                Ok(options) => options,
                Err(e) => return fail_usage(&e),
            };
            let daemon = Daemon::new(instance, automation, options);
            let stop = shutdown.clone();
            let spawned = std::thread::Builder::new()
                .name("orch-daemon".into())
                .spawn(move || {
                    let result = daemon.run(&stop, &mut print_event);
                    if let Err(e) = &result {
                        eprintln!("error: the daemon stopped: {e}");
                        eprintln!("note: the UI goes on; `ui` serves it without a daemon");
                    }
                    result
                });
            match spawned {
                Ok(handle) => Some(handle),
                Err(e) => return fail_usage(&format!("cannot start the daemon: {e}")),
            }
        }
    };
    let url = server.url();
    println!(
        "orch {} on {url} ({} assets){}",
        match mode {
            WebMode::Dev => "dev: the UI and the daemon",
            WebMode::UiOnly => "ui",
        },
        graph.len(),
        if server.local_addr().ip().is_loopback() {
            ""
        } else {
            "; open /login?token=... once"
        }
    );
    let served = runtime.block_on(server.serve(shutdown.clone()));
    if let Some(daemon) = daemon {
        let _ = daemon.join();
    }
    match served {
        Ok(()) => EXIT_OK,
        Err(e) => fail_usage(&e),
    }
}
