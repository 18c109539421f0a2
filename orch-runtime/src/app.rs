//! [`App`]: how a program says what its [`Instance`] holds beyond its assets (custom I/O
//! managers, resources, settings), then hands control to the command line.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::instance::{Config, Instance, InstanceError};

/// A program's configuration beyond its assets: custom I/O managers, resources and settings
/// that win over `orch.toml` and the environment.
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
    frame_format: Option<crate::io::FrameFormat>,
    parquet_compression: Option<crate::io::ParquetCompression>,
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
    /// No custom I/O managers, no resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an I/O manager under `name`, for assets with `#[asset(io_manager = "name")]`.
    pub fn io_manager(mut self, name: &str, manager: impl crate::io::IoManager) -> Self {
        self.io_managers.push((name.to_owned(), Arc::new(manager)));
        self
    }

    /// The file format of frame outputs stored by the default I/O manager (default
    /// [`FrameFormat::ArrowIpc`](crate::io::FrameFormat::ArrowIpc), the cheapest to write;
    /// `Parquet` for smaller files that any tool reads). Wins over `io.frame_format` in
    /// `orch.toml`.
    pub fn frame_format(mut self, format: crate::io::FrameFormat) -> Self {
        self.frame_format = Some(format);
        self
    }

    /// How the default I/O manager compresses the Parquet files of frame outputs (default
    /// [`ParquetCompression::Uncompressed`](crate::io::ParquetCompression::Uncompressed),
    /// the fastest to write and to scan; `Lz4` for files 0.6 times the size, `Zstd(3)` for
    /// the smallest). Wins over `io.parquet_compression` in `orch.toml`.
    pub fn parquet_compression(mut self, compression: crate::io::ParquetCompression) -> Self {
        self.parquet_compression = Some(compression);
        self
    }

    /// Adds `value` as the resource of type `T`, for `#[resource]` parameters of that type
    /// (e.g. a database pool). Resources are shared by every run of the program.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.resources).insert(value);
        self
    }

    /// The instance this program runs in under `config`: the store the configuration
    /// names, the built-in and registered I/O managers, and the resources.
    pub fn instance(&self, config: Config) -> Result<Instance, InstanceError> {
        let mut builder = Instance::builder()
            .config(config)
            .resources(Arc::clone(&self.resources));
        if let Some(format) = self.frame_format {
            builder = builder.frame_format(format);
        }
        if let Some(compression) = self.parquet_compression {
            builder = builder.parquet_compression(compression);
        }
        for (name, manager) in &self.io_managers {
            builder = builder.io_manager(name.clone(), Arc::clone(manager));
        }
        builder.build()
    }

    /// Like [`App::instance`], with nothing on disk (`materialize --ephemeral`).
    pub fn ephemeral_instance(&self, config: Config) -> Instance {
        let mut builder = Instance::builder()
            .config(config)
            .ephemeral()
            .resources(Arc::clone(&self.resources));
        for (name, manager) in &self.io_managers {
            builder = builder.io_manager(name.clone(), Arc::clone(manager));
        }
        builder
            .build()
            .expect("an in-memory SQLite database always opens")
    }

    /// The resources registered so far.
    pub fn resources(&self) -> &Arc<orch_core::Resources> {
        &self.resources
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
        crate::cli::run(self, args)
    }
}
