//! The fanout graph of ORCH_BENCH_N no-op assets (see build.rs).
#![allow(missing_docs)]
include!(concat!(env!("OUT_DIR"), "/fanout.rs"));

fn main() -> std::process::ExitCode {
    orch_bench::main("fanout")
}
