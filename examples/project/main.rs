//! The complete project layout, to copy: assets in modules by concern (sources, transforms,
//! analytics, exports), ops and an op job, schedules, resources, and tests beside the code.
//! Nothing lists anything: each `#[asset]`, `#[op]`, `#[job]` and `schedule!` registers
//! itself, and code names items across modules with ordinary `use` paths.
//!
//! ```text
//! project/
//! ├── main.rs          this file: the modules and `main`
//! ├── assets/          sources/, transforms/, analytics/, exports/
//! ├── ops.rs           steps of the op job (the traditional way)
//! ├── jobs.rs          the asset job and the op job
//! ├── schedules.rs     when they run
//! └── resources.rs     the warehouse the exports and ops write to
//! ```
//!
//! ```text
//! cargo run --example project -- list
//! cargo run --example project -- materialize --select "group:analytics+"
//! cargo run --example project -- job run weekly_report --config examples/project/weekly.toml
//! cargo run --example project -- dev           # the UI on http://127.0.0.1:3000
//! cargo test --example project                 # the tests beside the code
//! ```

mod assets;
mod jobs;
mod ops;
mod resources;
mod schedules;

fn main() -> std::process::ExitCode {
    orch::App::new()
        .resource(resources::Warehouse::default())
        .main()
}
