//! `dev` (the web UI and the daemon in one process) with 1,000 assets, the chain Dagster's
//! `dev_startup.py` loads: from the launch of the process to its first answer, the asset list
//! and the lineage page (first, laid out; then cached), and the resident memory of the
//! process tree once those are served. Medians of `ORCH_BENCH_RUNS` (default 5) fresh starts,
//! each in an empty state directory.
//!
//! With a command (`dev ...`) it is orch's command line instead: the harness starts itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

include!(concat!(env!("OUT_DIR"), "/chain1k.rs"));

/// GET `path`; returns the status and the body's length.
fn get(port: u16, path: &str) -> std::io::Result<(u16, usize)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, answer.len()))
}

/// Resident memory of `pid` and its descendants (KiB), and how many processes.
fn tree_rss(pid: u32) -> (u64, usize) {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                // pid (comm) state ppid ...: comm may hold spaces, so split after the ')'.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u32>().ok());
                if ppid == Some(parent) && !pids.contains(&p) {
                    pids.push(p);
                }
            }
        }
        i += 1;
    }
    let rss = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum();
    (rss, pids.len())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    if std::env::args()
        .nth(1)
        .is_some_and(|a| !a.starts_with("--"))
    {
        return orch::main();
    }
    let runs: usize = std::env::var("ORCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let program = std::env::current_exe().unwrap();
    let (mut first, mut assets, mut lineage, mut cached, mut rss, mut procs) =
        (vec![], vec![], vec![], vec![], vec![], 0);
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = Instant::now();
        let mut child = Command::new(&program)
            .args(["dev", "--port", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if let Ok((200, _)) = get(port, "/api/session") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dev did not answer"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        first.push(start.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let (status, _) = get(port, "/api/assets").unwrap();
        assert_eq!(status, 200);
        assets.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let (status, _) = get(port, "/lineage").unwrap();
        assert_eq!(status, 200);
        lineage.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        get(port, "/lineage").unwrap();
        cached.push(t.elapsed().as_secs_f64() * 1e3);
        let (kib, n) = tree_rss(child.id());
        rss.push(kib as f64 / 1024.0);
        procs = n;
        let _ = child.kill();
        let _ = child.wait();
    }
    let (first, assets, lineage, cached, rss) = (
        median(first),
        median(assets),
        median(lineage),
        median(cached),
        median(rss),
    );
    println!("web_dev: `dev` with 1,000 assets, medians of {runs} fresh starts");
    println!("  launch -> first answer      {first:8.1} ms");
    println!("  GET /api/assets (1,000)     {assets:8.1} ms");
    println!("  GET /lineage (laid out)     {lineage:8.1} ms");
    println!("  GET /lineage (cached)       {cached:8.1} ms");
    println!("  resident memory             {rss:8.1} MiB in {procs} process(es)");
    println!(
        "{{\"bench\":\"web_dev\",\"assets\":1000,\"first_answer_ms\":{first:.1},\"api_assets_ms\":{assets:.1},\"lineage_ms\":{lineage:.1},\"lineage_cached_ms\":{cached:.1},\"rss_mib\":{rss:.1},\"processes\":{procs}}}"
    );
    ExitCode::SUCCESS
}
