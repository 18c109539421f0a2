//! The process-wide `tracing` setup of [`crate::main`]: log lines on stderr filtered by
//! `RUST_LOG` (default `warn`), and [`CaptureLayer`] so assets' log lines are kept with them.

use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::capture::CaptureLayer;

/// Installs the subscriber, unless the program already installed one.
pub(crate) fn init() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter),
        )
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .try_init();
}
