//! Op jobs against assets: a chain and a fan-out of ORCH_BENCH_N steps each way (see
//! build.rs), measured alternately in one process (see `orch_bench::ops_main`).
#![allow(missing_docs)]

mod chain {
    include!(concat!(env!("OUT_DIR"), "/chain.rs"));
}

mod fanout {
    include!(concat!(env!("OUT_DIR"), "/fanout.rs"));
}

mod jobs {
    use orch::prelude::*;
    include!(concat!(env!("OUT_DIR"), "/ops.rs"));
}

fn main() -> std::process::ExitCode {
    orch_bench::ops_main()
}
