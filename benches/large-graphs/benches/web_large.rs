//! The web UI at scale (see benches/README.md): `ORCH_BENCH_N` (default 10,000) assets in
//! groups of 100.
//!
//! - the lineage layout (once per program; median of 3 computations);
//! - the lineage page once laid out: first byte and whole body, over loopback;
//! - the same page rendered by headless Chromium (a screenshot of it, less a screenshot of an
//!   empty page: the browser's own start), if `chromium` is installed;
//! - a run with 100,000 log lines: its page (the last 500 lines, older ones paged);
//! - a new log line of a running run, from its commit in the store to its arrival on an open
//!   event stream (median and p99 of 50);
//! - an asset with 100,000 partitions (half materialized): its page with the partition bar.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use orch::storage::{EventKind, EventRecord, LogRecord, RunRecord, RunStatus};
use orch::web::{WebMode, WebOptions, WebServer};
use orch::{AssetKey, CancellationToken, Instance, LogLevel, RunId, RunRequest};

include!(concat!(env!("OUT_DIR"), "/grouped.rs"));

#[asset(group = "big", partitions = dynamic("big"))]
fn big(ctx: &AssetContext) -> u64 {
    ctx.partition_key().map_or(0, |k| k.len() as u64)
}

/// GET `path`: (time to the first byte, time to the whole body, status, body length).
fn get(port: u16, path: &str) -> (Duration, Duration, u16, usize) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).unwrap();
    let ttfb = start.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let all = start.elapsed();
    let text = String::from_utf8_lossy(&rest[..rest.len().min(32)]).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (ttfb, all, status, rest.len() + 1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Seconds Chromium takes to screenshot `url` (its start included).
fn chromium_shot(url: &str, out: &std::path::Path) -> Option<f64> {
    let start = Instant::now();
    let status = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,800",
        ])
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status
        .success()
        .then(|| start.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    let graph = orch::definitions().unwrap();
    let automation = orch::automation::automation().unwrap();
    let n = graph.len();
    println!("web_large: {n} assets in {} groups", graph.groups().len());

    let mut layouts = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let layout = orch::web::layout_graph(graph);
        layouts.push(ms(t.elapsed()));
        assert_eq!(layout.nodes.len(), n);
    }
    let layout_ms = median(layouts);
    println!("  lineage layout                     {layout_ms:9.1} ms");

    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path().join(".orch")).unwrap();
    let stop = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let server_thread = {
        let (instance, stop) = (instance.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let options = WebOptions {
                    port: 0,
                    mode: WebMode::UiOnly,
                    ..WebOptions::default()
                };
                let server = WebServer::bind(instance, graph, automation, options)
                    .await
                    .unwrap();
                tx.send(server.local_addr().port()).unwrap();
                server.serve(stop).await.unwrap();
            });
        })
    };
    let port = rx.recv().unwrap();
    // The first request lays out and renders the SVG; the figures are of the cached page.
    let (_, first_all, status, _) = get(port, "/lineage");
    assert_eq!(status, 200);
    let (mut ttfb, mut whole, mut size) = (vec![], vec![], 0);
    for _ in 0..7 {
        let (a, b, _, len) = get(port, "/lineage");
        ttfb.push(ms(a));
        whole.push(ms(b));
        size = len;
    }
    let (ttfb, whole) = (median(ttfb), median(whole));
    println!(
        "  lineage page, first request        {:9.1} ms (layout and SVG included)",
        ms(first_all)
    );
    println!("  lineage page, first byte (cached)  {ttfb:9.1} ms");
    println!(
        "  lineage page, whole (cached)       {whole:9.1} ms ({:.0} kB; collapsed groups send no members)",
        size as f64 / 1e3
    );
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    // Medians of 5 of each, alternated: the browser's start (about half a second) varies by
    // more than a small page takes.
    let (mut blanks, mut pages) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        blanks.extend(chromium_shot("about:blank", &shots.join("blank.png")));
        pages.extend(chromium_shot(
            &format!("http://127.0.0.1:{port}/lineage"),
            &shots.join("lineage.png"),
        ));
    }
    let shot = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
    let render = match (shot(blanks), shot(pages)) {
        (Some(blank), Some(page)) => {
            println!(
                "  lineage page in Chromium           {:9.1} ms (screenshot {page:.0} ms less an empty page's {blank:.0} ms)",
                page - blank
            );
            Some(page - blank)
        }
        _ => {
            println!("  lineage page in Chromium           skipped (no chromium)");
            None
        }
    };

    // A run with 100,000 log lines.
    let store = instance.storage();
    let run_id = RunId::new();
    let request = RunRequest::select("w00000").unwrap();
    store
        .begin_run(&RunRecord::new(run_id.clone(), &request, 1), &[])
        .unwrap();
    let lines = 100_000;
    for chunk in 0..lines / 10_000 {
        let batch: Vec<(String, LogRecord)> = (0..10_000)
            .map(|i| {
                (
                    run_id.to_string(),
                    LogRecord {
                        asset: "w00000".into(),
                        time: SystemTime::now(),
                        level: LogLevel::Info,
                        message: format!("line {} of the big run", chunk * 10_000 + i),
                    },
                )
            })
            .collect();
        store.append(&[], &batch).unwrap();
    }
    let mut page = Vec::new();
    for _ in 0..7 {
        let (_, all, status, _) = get(port, &format!("/runs/{run_id}"));
        assert_eq!(status, 200);
        page.push(ms(all));
    }
    let log_page = median(page);
    println!("  run page, {lines} log lines       {log_page:9.1} ms");

    // A new line of the running run, from its commit to its arrival on an open stream.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /api/runs/{run_id}/stream?tail=true HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Past the headers.
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        line.clear();
    }
    let mut latencies = Vec::new();
    for i in 0..50 {
        let text = format!("live line {i}");
        let t = Instant::now();
        store
            .append(
                &[],
                &[(
                    run_id.to_string(),
                    LogRecord {
                        asset: "w00000".into(),
                        time: SystemTime::now(),
                        level: LogLevel::Info,
                        message: text.clone(),
                    },
                )],
            )
            .unwrap();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended");
            if line.contains(&text) {
                break;
            }
        }
        latencies.push(ms(t.elapsed()));
        std::thread::sleep(Duration::from_millis(7 * (i % 5) as u64));
    }
    let (live_med, live_p99) = (median(latencies.clone()), p99(latencies));
    println!("  new log line -> open page          {live_med:9.1} ms median, {live_p99:.1} ms p99");
    store
        .end_run(run_id.as_str(), RunStatus::Succeeded, SystemTime::now())
        .unwrap();

    // An asset with 100,000 partitions, half of them materialized.
    let keys: Vec<String> = (0..100_000).map(|i| format!("k{i:06}")).collect();
    store.add_dynamic_partitions("big", &keys).unwrap();
    let run_id = RunId::new();
    let request = RunRequest::select("big").unwrap();
    store
        .begin_run(&RunRecord::new(run_id.clone(), &request, 1), &[])
        .unwrap();
    let key: AssetKey = "big".parse().unwrap();
    for chunk in keys.chunks(10_000) {
        let events: Vec<EventRecord> = chunk
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 < 2)
            .map(|(_, k)| {
                let mut e =
                    EventRecord::new(run_id.clone(), Some(key.clone()), EventKind::Materialized);
                e.partition = Some(k.clone());
                e.data_version = Some(k.clone());
                e
            })
            .collect();
        store.append(&events, &[]).unwrap();
    }
    store
        .end_run(run_id.as_str(), RunStatus::Succeeded, SystemTime::now())
        .unwrap();
    let mut bar = Vec::new();
    for _ in 0..5 {
        let (_, all, status, _) = get(port, "/assets/big");
        assert_eq!(status, 200);
        bar.push(ms(all));
    }
    let bar = median(bar);
    println!("  asset page, 100,000 partitions     {bar:9.1} ms");
    println!(
        "{{\"bench\":\"web_large\",\"assets\":{n},\"layout_ms\":{layout_ms:.1},\"lineage_ttfb_ms\":{ttfb:.1},\"lineage_ms\":{whole:.1},\"lineage_chromium_ms\":{},\"run_page_100k_logs_ms\":{log_page:.1},\"live_line_ms\":{live_med:.1},\"live_line_p99_ms\":{live_p99:.1},\"partition_page_100k_ms\":{bar:.1}}}",
        render.map_or("null".to_owned(), |r| format!("{r:.1}"))
    );
    stop.cancel();
    let _ = server_thread.join();
}
