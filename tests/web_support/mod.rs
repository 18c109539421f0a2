//! What the web UI's tests share: a small graph with a job, a schedule and a partitioned
//! asset; a server over a fresh store on a free port (with a daemon in this process for
//! `dev`); a plain HTTP client that carries the CSRF token.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orch::daemon::{Daemon, DaemonOptions, Launcher};
use orch::prelude::*;
use orch::web::{WebMode, WebOptions, WebServer};
use orch::{CancellationToken, Instance};
use serde_json::Value;

/// While set, `slow` waits (up to 20 s, or until its run is canceled): a run that stays in
/// progress until the test says.
pub static HOLD: AtomicBool = AtomicBool::new(false);
/// While set, `flaky` fails.
pub static FAIL: AtomicBool = AtomicBool::new(false);
static SPECIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by a test that sets [`HOLD`] or [`FAIL`] (tests run in parallel and share them):
/// both are false when it is taken and when it is dropped.
pub struct Special(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

pub fn special() -> Special {
    let guard = SPECIAL.lock().unwrap_or_else(|e| e.into_inner());
    HOLD.store(false, Ordering::Release);
    FAIL.store(false, Ordering::Release);
    Special(guard)
}

impl Drop for Special {
    fn drop(&mut self) {
        HOLD.store(false, Ordering::Release);
        FAIL.store(false, Ordering::Release);
    }
}

/// `[ops.greet]` of the `greeting` op job.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetConfig {
    name: String,
}

/// Greets whom the config names.
#[op]
fn greet(#[config] cfg: &GreetConfig) -> String {
    format!("hello {}", cfg.name)
}

#[op]
fn shout(text: &String) -> String {
    text.to_uppercase()
}

/// An op job: greets, then shouts.
#[job]
fn greeting() {
    shout(greet());
}

/// The raw rows.
#[asset(group = "raw")]
fn source() -> i64 {
    20
}

#[asset(group = "core")]
fn middle(ctx: &AssetContext, source: &i64) -> i64 {
    for i in 0..3 {
        ctx.log().info(format_args!("middle line {i}"));
    }
    source + 1
}

#[asset(group = "core")]
fn sink(ctx: &AssetContext, middle: &i64) -> i64 {
    ctx.add_output_metadata("rows", MetadataValue::Int(*middle * 10));
    middle * 2
}

#[asset(group = "special")]
fn slow(ctx: &AssetContext, source: &i64) -> i64 {
    ctx.log().info("slow started");
    let start = Instant::now();
    while HOLD.load(Ordering::Acquire)
        && !ctx.is_cancelled()
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    *source
}

#[asset(group = "special")]
fn after_slow(slow: &i64) -> i64 {
    slow + 1
}

#[asset(group = "special")]
fn flaky(source: &i64) -> Result<i64, BoxError> {
    match FAIL.load(Ordering::Acquire) {
        true => Err("the warehouse said no".into()),
        false => Ok(*source),
    }
}

#[asset(group = "days", partitions = static_partitions(["a", "b", "c"]))]
fn daily(ctx: &AssetContext) -> String {
    ctx.partition_key().unwrap_or_default().to_owned()
}

/// A frame, stored as Parquet: its page shows a preview.
#[asset(group = "frames")]
fn frame() -> orch::polars::prelude::PolarsResult<orch::polars::prelude::DataFrame> {
    use orch::polars::prelude::*;
    df!("city" => ["Lyon", "Oslo"], "visits" => [3i64, 5])
}

asset_job!(
    /// The core assets.
    core_job,
    "group:core"
);

schedule!(core_nightly, job = core_job, cron = "0 2 * * *");

/// A web server over a fresh store, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub instance: Instance,
    pub home: tempfile::TempDir,
    stop: CancellationToken,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// `ui` (runs start in this process) on loopback.
    pub fn ui() -> Server {
        Server::start(WebMode::UiOnly, None, false)
    }

    /// `dev`, with a daemon (launching in this process) beside the server.
    pub fn dev() -> Server {
        Server::start(WebMode::Dev, None, true)
    }

    pub fn start(mode: WebMode, token: Option<&str>, daemon: bool) -> Server {
        let home = tempfile::tempdir().unwrap();
        let instance = Instance::open(home.path().join(".orch")).unwrap();
        let graph = orch::definitions().unwrap();
        let automation = orch::automation::automation().unwrap();
        let stop = CancellationToken::new();
        let options = WebOptions {
            port: 0,
            token: token.map(str::to_owned),
            mode,
            ..WebOptions::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        {
            let (instance, stop) = (instance.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let server = WebServer::bind(instance, graph, automation, options)
                        .await
                        .unwrap();
                    tx.send(server.local_addr()).unwrap();
                    server.serve(stop).await.unwrap();
                });
            }));
        }
        if daemon {
            let (instance, stop) = (instance.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let options = DaemonOptions {
                    launcher: Launcher::InProcess,
                    poll: Duration::from_millis(100),
                    ..DaemonOptions::default()
                };
                Daemon::new(instance, automation, options)
                    .run(&stop, &mut |_| {})
                    .unwrap();
            }));
        }
        let addr = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        Server {
            addr,
            instance,
            home,
            stop,
            threads,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client that answers every status (no error for 4xx).
    pub fn client(&self) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut client = Client {
            agent,
            base: self.url(""),
            csrf: String::new(),
        };
        let session = client.get_json("/api/session");
        client.csrf = session["csrf"].as_str().unwrap().to_owned();
        client
    }

    /// Waits until run `id` has ended; returns its record as `/api/runs/{id}` sends it.
    pub fn wait_run(&self, id: &str) -> Value {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = client.get_json(&format!("/api/runs/{id}"));
            if run["run"]["finished"] == Value::Bool(true) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `request` as written (for the headers a client library sets itself) and returns
    /// the status and the body.
    pub fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // A server that refuses a large body may close before reading all of it.
        let _ = stream.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A plain HTTP client for the UI's endpoints.
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub csrf: String,
}

impl Client {
    /// GET: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    }

    /// GET that must answer 200: the body.
    pub fn get_ok(&self, path: &str) -> String {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// POST `body` as JSON with the CSRF token: status and the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, &body.to_string(), &[("x-orch-csrf", &self.csrf)])
    }

    /// POST a raw body with these headers.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut r = request.send(body).unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST that must answer 200; returns the JSON.
    pub fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post(path, body);
        assert_eq!(status, 200, "POST {path} {body}: {answer}");
        answer
    }
}
