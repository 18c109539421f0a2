//! The production layout: assets in modules and files by concern, with groups. Nothing lists
//! them: each `#[asset]` registers itself, and parameters name assets across modules with
//! ordinary `use` paths.
//!
//! ```text
//! cargo run --example modular -- list
//! cargo run --example modular -- materialize --select "group:analytics+"
//! ```

mod assets;

fn main() -> std::process::ExitCode {
    orch::main()
}
