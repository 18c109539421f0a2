//! The process-wide `tracing` setup of [`crate::main`]: log lines on stderr filtered by
//! `RUST_LOG` (default `warn`), and [`CaptureLayer`] so assets' log lines are kept with them.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::fmt::MakeWriter;

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
                .with_writer(StderrAroundProgress)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter),
        )
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .try_init();
}

/// The progress bar on screen, if any: log lines are written around it, not through it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers (or with `None` clears) the progress bar that log lines must not tear.
pub(crate) fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Writes each formatted log line to stderr in one piece, hiding the progress bar meanwhile.
struct StderrAroundProgress;

impl<'a> MakeWriter<'a> for StderrAroundProgress {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::new())
    }
}

struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
