//! The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver): the journeys a user takes, each with a screenshot and no script errors.
//!
//! No test harness (`harness = false` in Cargo.toml): without Chromium this binary reports
//! its test as ignored, not passed, unless `ORCH_REQUIRE_BROWSER` is set (CI sets it), which
//! makes a missing browser a failure. It is also orch's command line when called with `cli
//! ...`, so a journey can check what `schedules` prints after a click.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use web_support::{FAIL, HOLD, Server, special};

const TEST: &str = "browser_journeys";

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free port, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver(program: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver(child, port)
}

/// Where screenshots go: `ORCH_SCREENSHOTS` (the README's come from here), else the target
/// directory.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("ORCH_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// ChromeDriver's command for the browser's console log since the last call (its
/// `goog:loggingPrefs` extension; WebDriver itself has none).
#[derive(Debug)]
struct ConsoleLog;

impl fantoccini::wd::WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
        self.until(
            &format!("open {path}"),
            "return document.readyState === 'complete' && !!window.orchErrors",
        )
        .await;
        self.no_errors(path).await;
    }

    /// Runs `script` until it returns something truthy (20 s at most).
    async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.client.execute(script, vec![]).await.unwrap();
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let url = self.client.current_url().await.unwrap();
                let shot = self.shots.join("failed.png");
                let _ = std::fs::write(&shot, self.client.screenshot().await.unwrap());
                let console = self.client.issue_cmd(ConsoleLog).await.unwrap_or_default();
                let errors = self
                    .client
                    .execute("return window.orchErrors", vec![])
                    .await
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what} on {url} (screenshot {}); console: {console}; script errors: {errors}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Nothing went to the console at error level (script errors, failed loads, blocked
    /// content) and the page's own error hook caught nothing.
    async fn no_errors(&self, page: &str) {
        let errors = self
            .client
            .execute("return window.orchErrors || []", vec![])
            .await
            .unwrap();
        assert_eq!(errors, json!([]), "script errors on {page}");
        let console = self.client.issue_cmd(ConsoleLog).await.unwrap();
        let severe: Vec<&Value> = console
            .as_array()
            .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
            .unwrap_or_default();
        assert!(severe.is_empty(), "console errors on {page}: {severe:?}");
    }

    /// The console's entries so far were only the failed loads of `url` that a test provoked
    /// (a refused request is logged as an error by the browser itself); reading them clears
    /// them.
    async fn only_refused(&self, url: &str) {
        let console = self.client.issue_cmd(ConsoleLog).await.unwrap();
        for entry in console.as_array().into_iter().flatten() {
            if entry["level"] == "SEVERE" {
                let message = entry["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains(url) && message.contains("400"),
                    "unexpected console error: {entry}"
                );
            }
        }
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }
}

/// Runs this binary as orch's command line in `dir`; returns what it printed.
fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("cli")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn journeys(driver: &Driver) {
    let _special = special();
    let server = Server::dev();
    let mut caps = serde_json::Map::new();
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": find("chromium").map(|p| p.display().to_string()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--force-prefers-reduced-motion"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver started no session: is Debian's chromium installed?");
    let b = Browser {
        client,
        base: server.url(""),
        shots: screenshot_dir(),
    };
    let api = server.client();
    let confirm_yes = "window.confirm = () => true; return true";

    // The console reader sees what a page logs (else "no console errors" would prove
    // nothing); it returns what was logged since the last read.
    b.client.goto(&format!("{}/", b.base)).await.unwrap();
    b.client
        .execute("console.error('console probe'); return true", vec![])
        .await
        .unwrap();
    let probe = b.client.issue_cmd(ConsoleLog).await.unwrap();
    assert!(probe.to_string().contains("console probe"), "{probe}");

    // The overview.
    b.open("/").await;
    b.until(
        "the overview",
        "return document.querySelector('h1').textContent === 'Overview'",
    )
    .await;
    b.shot("overview").await;

    // The lineage graph: laid out, statuses applied; a click opens the asset.
    b.open("/lineage").await;
    b.until(
        "graph statuses",
        "return document.getElementById('graph').dataset.ready",
    )
    .await;
    let nodes = b
        .until(
            "nodes",
            "return document.querySelectorAll('#graph .node').length",
        )
        .await;
    assert_eq!(nodes, json!(orch::definitions().unwrap().len()));
    b.shot("lineage").await;
    // Collapsed (as above 2,000 assets): no member is drawn until its group opens.
    b.open("/lineage?collapse=1").await;
    b.until(
        "graph statuses",
        "return document.getElementById('graph').dataset.ready",
    )
    .await;
    let drawn = b
        .client
        .execute(
            "return document.querySelectorAll('#graph .node').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(drawn, json!(0));
    b.click("#graph .group[data-name='core'] .group-label")
        .await;
    b.until(
        "the core group's members",
        "const n = document.querySelector(\"#graph .node[data-key='middle']\"); return n && !n.classList.contains('hidden') && n.getBoundingClientRect().width > 0",
    )
    .await;
    b.click("#graph .node[data-key='middle'] rect").await;
    b.until(
        "the asset page",
        "return location.pathname === '/assets/middle'",
    )
    .await;
    b.no_errors("/assets/middle").await;

    // Materialize from the asset page; the run page follows it without a reload: its logs
    // stream in while the run goes on, then its status turns.
    api.post_ok("/api/materialize", &json!({ "assets": ["source"] }));
    HOLD.store(true, Ordering::Release);
    b.open("/assets/slow").await;
    b.click("button[data-post='/api/materialize']").await;
    b.until(
        "the run page",
        "return location.pathname.startsWith('/runs/')",
    )
    .await;
    b.until(
        "the page is loaded",
        "return document.readyState === 'complete' && !!window.orchErrors",
    )
    .await;
    b.client
        .execute("window.sameDocument = 'yes'; return true", vec![])
        .await
        .unwrap();
    b.until(
        "the streamed log line",
        "return document.getElementById('logs').textContent.includes('slow started')",
    )
    .await;
    let badge = b
        .until(
            "a badge",
            "return document.querySelector('#summary .badge').textContent",
        )
        .await;
    if badge == json!("succeeded") {
        let run = b.url().await;
        let detail = api.get_json(&format!("/api/{}", run.trim_start_matches('/')));
        panic!("the run ended before it was held: {detail}");
    }
    HOLD.store(false, Ordering::Release);
    b.until(
        "the run to succeed on the open page",
        "return document.querySelector('#summary .badge').textContent === 'succeeded'",
    )
    .await;
    let same = b
        .client
        .execute("return window.sameDocument", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!("yes"), "the page reloaded");
    b.no_errors("the run page").await;
    b.shot("run").await;

    // The asset list updates in place when a run elsewhere materializes an asset.
    b.open("/assets").await;
    b.client
        .execute("window.sameDocument = 'yes'; return true", vec![])
        .await
        .unwrap();
    api.post_ok("/api/materialize", &json!({ "selection": "+sink" }));
    b.until(
        "sink to show materialized",
        "return document.querySelector('tr[data-key=\"sink\"] .badge').textContent === 'materialized'",
    )
    .await;
    assert_eq!(
        b.client
            .execute("return window.sameDocument", vec![])
            .await
            .unwrap(),
        json!("yes")
    );
    b.shot("assets").await;

    // A failed run, re-executed from its failure.
    FAIL.store(true, Ordering::Release);
    let failed = api.post_ok("/api/materialize", &json!({ "assets": ["flaky"] }));
    let failed = failed["run_id"].as_str().unwrap().to_owned();
    server.wait_run(&failed);
    FAIL.store(false, Ordering::Release);
    b.open(&format!("/runs/{failed}")).await;
    b.until(
        "the error",
        "return document.querySelector('pre.error').textContent.includes('the warehouse said no')",
    )
    .await;
    b.shot("run-failed").await;
    b.click("button[data-body='{\"from_failure\":true}']").await;
    b.until("the new run", &format!("return location.pathname.startsWith('/runs/') && !location.pathname.endsWith('{failed}')"))
        .await;
    b.until(
        "the re-execution to succeed",
        "return document.querySelector('#summary .badge')?.textContent === 'succeeded'",
    )
    .await;
    let parent = b.url().await;
    assert_ne!(parent, format!("/runs/{failed}"));

    // Schedules: start one (it is stopped by default) and the command line says so; preview
    // a tick.
    let status = |printed: String| {
        printed
            .lines()
            .find(|l| l.starts_with("core_nightly"))
            .unwrap_or_else(|| panic!("`schedules` printed: {printed}"))
            .to_owned()
    };
    assert!(status(cli(server.home.path(), &["schedules"])).contains("stopped (default)"));
    b.open("/schedules").await;
    let toggle = "#schedule-core_nightly button.toggle";
    b.until(
        "a Start button",
        &format!("return document.querySelector(\"{toggle}\").textContent === 'Start'"),
    )
    .await;
    b.click(toggle).await;
    b.until(
        "the toggle to flip",
        &format!("return document.querySelector(\"{toggle}\").textContent === 'Stop'"),
    )
    .await;
    let line = status(cli(server.home.path(), &["schedules"]));
    assert!(
        line.contains("running") && !line.contains("default"),
        "{line}"
    );
    b.click("#schedule-core_nightly button[data-show='preview']")
        .await;
    let preview = b
        .until(
            "the preview",
            "const p = document.querySelector('#schedule-core_nightly pre.preview'); return !p.hidden && p.textContent",
        )
        .await;
    assert!(preview.as_str().unwrap().contains("would run"), "{preview}");
    b.shot("schedules").await;

    // Launch a job.
    b.open("/jobs").await;
    b.shot("jobs").await;
    b.client.execute(confirm_yes, vec![]).await.unwrap();
    b.click("button[data-post='/api/jobs/core_job/launch']")
        .await;
    b.until(
        "the job's run",
        "return location.pathname.startsWith('/runs/')",
    )
    .await;
    b.until(
        "the job's run to succeed",
        "return document.querySelector('#summary .badge')?.textContent === 'succeeded'",
    )
    .await;
    b.no_errors("the job's run").await;

    // An op job: its page draws the ops; a bad config is refused with the field's name, and
    // a good one runs.
    b.open("/jobs/greeting").await;
    b.until(
        "the op job's graph",
        "return document.querySelectorAll('#lineage .node').length === 2",
    )
    .await;
    b.shot("op-job").await;
    let fill = |text: &str| {
        format!(
            "const t = document.querySelector('form.launch textarea'); t.value = {}; return true",
            json!(text)
        )
    };
    b.client
        .execute(&fill("[ops.greet]\nnme = \"ada\""), vec![])
        .await
        .unwrap();
    b.click("form.launch button[type=submit]").await;
    let toast = b
        .until(
            "the config error",
            "const t = document.getElementById('toast').textContent; return t.includes('nme') && t",
        )
        .await;
    assert!(toast.as_str().unwrap().contains("unknown field"), "{toast}");
    b.only_refused("/api/jobs/greeting/launch").await;
    b.client
        .execute(&fill("[ops.greet]\nname = \"ada\""), vec![])
        .await
        .unwrap();
    b.click("form.launch button[type=submit]").await;
    b.until(
        "the op job's run",
        "return location.pathname.startsWith('/runs/')",
    )
    .await;
    b.until(
        "the op job's run to succeed",
        "return document.querySelector('#summary .badge')?.textContent === 'succeeded'",
    )
    .await;
    b.no_errors("the op job's run").await;

    // The overview after all that.
    b.open("/").await;
    b.until(
        "the runs on the overview",
        "return document.querySelectorAll('table.runs tbody tr').length > 0",
    )
    .await;
    b.shot("overview").await;

    // A phone-sized window still shows the navigation and the tables.
    b.client.set_window_size(390, 844).await.unwrap();
    b.open("/").await;
    let nav = b
        .until(
            "the navigation",
            "return document.querySelectorAll('nav a').length",
        )
        .await;
    assert_eq!(nav, json!(5));
    b.shot("overview-phone").await;
    b.client.close().await.unwrap();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("cli") {
        let mut cli_args = vec![args[0].clone()];
        cli_args.extend(args[2..].iter().cloned());
        return orch::run_cli(cli_args);
    }
    let required = std::env::var_os("ORCH_REQUIRE_BROWSER").is_some();
    let (Some(driver), Some(_)) = (find("chromedriver"), find("chromium")) else {
        if required {
            eprintln!(
                "ORCH_REQUIRE_BROWSER is set but chromium or chromedriver is missing: apt-get install chromium chromium-driver"
            );
            return ExitCode::FAILURE;
        }
        println!("\nrunning 1 test");
        println!("test {TEST} ... ignored, no chromium (apt-get install chromium chromium-driver)");
        println!("\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n");
        return ExitCode::SUCCESS;
    };
    println!("\nrunning 1 test");
    let driver = start_driver(&driver);
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(journeys(&driver));
    });
    drop(driver);
    match outcome {
        Ok(()) => {
            println!("test {TEST} ... ok");
            println!(
                "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(_) => {
            println!("test {TEST} ... FAILED");
            println!(
                "\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            ExitCode::FAILURE
        }
    }
}
