//! The web UI over HTTP, without a browser: every page and endpoint, the actions, the event
//! streams, and the security rules (Host, Origin, CSRF, token, malformed input). Jobs and
//! schedules are in `web_jobs.rs`.

mod web_support;

use std::io::{BufRead, Read};
use std::sync::atomic::Ordering;
use std::time::Duration;

use orch::prelude::*;
use orch::web::{WebMode, WebOptions, WebServer};
use serde_json::{Value, json};
use web_support::{FAIL, HOLD, Server, special};

#[test]
fn every_page_and_endpoint_answers_with_the_tabs_and_the_data() {
    let server = Server::ui();
    let c = server.client();
    for path in [
        "/",
        "/assets",
        "/assets?q=core",
        "/assets/middle",
        "/assets/daily",
        "/lineage",
        "/runs",
        "/jobs",
        "/jobs/core_job",
        "/schedules",
    ] {
        let (status, body) = c.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        for tab in ["Overview", "Assets", "Jobs", "Schedules", "Runs"] {
            assert!(
                body.contains(&format!(">{tab}</a>")),
                "{path} lacks tab {tab}"
            );
        }
    }
    let assets = c.get_json("/api/assets");
    let keys: Vec<&str> = assets
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"middle") && keys.contains(&"daily"),
        "{keys:?}"
    );
    assert_eq!(
        c.get_json("/api/assets?q=core").as_array().unwrap().len(),
        2
    );
    let middle = c.get_json("/api/assets/middle");
    assert_eq!(middle["summary"]["upstream"], json!(["source"]));
    assert_eq!(middle["summary"]["stale"], json!("never materialized"));
    let graph = c.get_json("/api/graph");
    assert_eq!(graph["nodes"].as_array().unwrap().len(), keys.len());
    let jobs = c.get_json("/api/jobs");
    assert_eq!(jobs["asset_jobs"][0]["name"], "core_job");
    assert_eq!(jobs["asset_jobs"][0]["assets"], json!(["middle", "sink"]));
    assert_eq!(jobs["op_jobs"][0]["name"], "greeting");
    let schedules = c.get_json("/api/schedules");
    assert_eq!(schedules["schedules"][0]["name"], "core_nightly");
    assert_eq!(
        schedules["schedules"][0]["next"].as_array().unwrap().len(),
        5
    );
    let overview = c.get_json("/api/overview");
    assert_eq!(overview["health"]["assets"], json!(keys.len()));
    assert_eq!(overview["health"]["never"], json!(keys.len()));
    // The lineage page carries the graph as SVG, one node per asset; collapsed, only the
    // groups, whose members come one group at a time.
    let (_, page) = c.get("/lineage");
    assert_eq!(page.matches("class=\"node\"").count(), keys.len());
    let (_, page) = c.get("/lineage?collapse=1");
    assert_eq!(page.matches("class=\"node\"").count(), 0);
    let groups = graph["groups"].as_array().unwrap();
    let core = groups.iter().position(|g| g["name"] == "core").unwrap();
    let (status, part) = c.get(&format!("/api/graph/groups/{core}"));
    assert_eq!(status, 200);
    assert!(part.contains("data-key=\"middle\"") && part.contains("data-key=\"sink\""));
    assert!(
        !part.contains("data-key=\"source\""),
        "only the group's members"
    );
    assert_eq!(c.get(&format!("/api/graph/groups/{}", groups.len())).0, 404);
}

#[test]
fn materialize_selected_runs_the_assets_and_the_pages_show_it() {
    let server = Server::ui();
    let c = server.client();
    let run = c.post_ok(
        "/api/materialize",
        &json!({ "assets": ["source", "middle"] }),
    );
    let id = run["run_id"].as_str().unwrap().to_owned();
    let done = server.wait_run(&id);
    assert_eq!(done["run"]["status"], "succeeded", "{done}");
    assert_eq!(done["run"]["materialized"], 2);
    let steps = strings(done["steps"].clone(), "asset");
    assert_eq!(steps, ["source", "middle"]);
    assert!(done["steps"][1]["start_ms"].is_number() && done["steps"][1]["end_ms"].is_number());
    // Where the time went: each step's compute and store, and the run's phases.
    assert!(
        done["steps"][1]["compute_us"].is_u64() && done["steps"][1]["store_us"].is_u64(),
        "{done}"
    );
    let phases = strings(done["phases"].clone(), "name");
    assert_eq!(phases, ["plan", "load", "start", "assets", "store", "sync"]);
    let middle = c.get_json("/api/assets/middle");
    assert_eq!(middle["summary"]["status"], "materialized");
    assert_eq!(middle["materializations"][0]["run_id"], id.as_str());
    // Its logs, paged from the end.
    let logs = c.get_json(&format!("/api/runs/{id}/logs?limit=2"));
    let lines: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["middle line 1", "middle line 2"]);
    let first = logs[0]["id"].as_u64().unwrap();
    let earlier = c.get_json(&format!("/api/runs/{id}/logs?before={first}"));
    assert_eq!(earlier[0]["message"], "middle line 0");
    // Stale assets only: `sink` is the one never materialized in core.
    let stale = c.post_ok(
        "/api/materialize",
        &json!({ "selection": "group:core", "stale": true }),
    );
    let done = server.wait_run(stale["run_id"].as_str().unwrap());
    assert_eq!(done["run"]["status"], "succeeded");
    let steps = strings(done["steps"].clone(), "asset");
    assert_eq!(steps, ["sink"], "{done}");
    // The run page shows it, with its tags.
    let (status, page) = c.get(&format!("/runs/{id}"));
    assert_eq!(status, 200);
    assert!(page.contains("middle line 2") && page.contains("orch/launched_by=web"));
    assert!(
        page.contains("data-phase=\"assets\"") && page.contains("<th class=\"num\">Compute</th>")
    );
    // A frame's page previews its first rows.
    let run = c.post_ok("/api/materialize", &json!({ "assets": ["frame"] }));
    server.wait_run(run["run_id"].as_str().unwrap());
    let frame = c.get_json("/api/assets/frame");
    let preview = frame["preview"].as_str().unwrap();
    assert!(
        preview.contains("Oslo") && preview.contains("visits"),
        "{preview}"
    );
    let (_, page) = c.get("/assets/frame");
    assert!(page.contains("Oslo"));
    let sink = c.get_json("/api/assets/sink");
    assert_eq!(sink["series"][0][0], "rows");
    assert_eq!(sink["series"][0][1][0][1], 210.0);
}

#[test]
fn mutating_requests_need_the_csrf_token_and_the_servers_own_origin_and_host() {
    let server = Server::ui();
    let c = server.client();
    let body = r#"{"assets":["source"]}"#;
    let (status, answer) = c.post_with("/api/materialize", body, &[]);
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("CSRF"));
    let (status, _) = c.post_with("/api/materialize", body, &[("x-orch-csrf", "0000")]);
    assert_eq!(status, 403);
    let (status, answer) = c.post_with(
        "/api/materialize",
        body,
        &[("x-orch-csrf", &c.csrf), ("origin", "http://evil.example")],
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("cross-origin"));
    let (status, _) = c.post_with(
        "/api/materialize",
        body,
        &[("x-orch-csrf", &c.csrf), ("sec-fetch-site", "cross-site")],
    );
    assert_eq!(status, 403);
    // Nothing was queued by the refused requests.
    assert!(
        c.get_json("/api/runs")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The server's own origin, plain or behind a TLS proxy, is accepted.
    for scheme in ["http", "https"] {
        let origin = format!("{scheme}://{}", server.addr);
        let (status, answer) = c.post_with(
            "/api/materialize",
            body,
            &[("x-orch-csrf", &c.csrf), ("origin", &origin)],
        );
        assert_eq!(status, 200, "{origin}: {answer}");
    }
    // DNS rebinding: a page served as evil.example:PORT that resolves to 127.0.0.1.
    let port = server.addr.port();
    let (status, body) = server.raw(&format!(
        "GET /api/session HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 421, "{body}");
    assert!(!body.contains(&c.csrf));
    let (status, _) = server.raw(&format!(
        "GET /api/session HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 200);
    // Only GET and POST.
    let (status, _) = server.raw(&format!(
        "DELETE /api/runs/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 405);
    // A GET never changes anything.
    let (status, _) = c.get("/api/materialize");
    assert_eq!(status, 405);
    // Pages send their own protections.
    let r = c.agent.get(server.url("/")).call().unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
}

#[test]
fn a_token_guards_every_request_and_a_public_address_requires_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let instance = orch::Instance::ephemeral();
    let refused = rt.block_on(WebServer::bind(
        instance,
        orch::definitions().unwrap(),
        orch::automation::automation().unwrap(),
        WebOptions {
            host: "0.0.0.0".parse().unwrap(),
            port: 0,
            token: None,
            mode: WebMode::UiOnly,
        },
    ));
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("ORCH_UI_TOKEN"), "{e}");

    let server = Server::start(WebMode::UiOnly, Some("s3cret-token-0123456789"), false);
    let port = server.addr.port();
    let get = |headers: &str, path: &str| {
        server.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Connection: close\r\n\r\n"
        ))
    };
    assert_eq!(get("", "/api/session").0, 401);
    assert_eq!(get("", "/").0, 401);
    assert_eq!(
        get("Authorization: Bearer wrong\r\n", "/api/session").0,
        401
    );
    let (status, body) = get(
        "Authorization: Bearer s3cret-token-0123456789\r\n",
        "/api/session",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(get("", "/login?token=wrong").0, 401);
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    use std::io::Write;
    write!(
        stream,
        "GET /login?token=s3cret-token-0123456789 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(get(&format!("Cookie: {pair}\r\n"), "/").0, 200);
}

#[test]
fn malformed_input_is_a_4xx_with_a_message() {
    let server = Server::ui();
    let c = server.client();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/api/materialize",
            json!({"assets": ["midle"]}),
            404,
            "did you mean `middle`",
        ),
        ("/api/materialize", json!({"selection": "group:"}), 400, ""),
        (
            "/api/materialize",
            json!({"selection": "nope"}),
            400,
            "nope",
        ),
        (
            "/api/materialize",
            json!({"assets": ["daily"], "partition": "zz"}),
            400,
            "zz",
        ),
        (
            "/api/materialize",
            json!({"assets": ["a"], "selection": "b"}),
            400,
            "not both",
        ),
        ("/api/materialize", json!({"bogus": 1}), 400, "bogus"),
        (
            "/api/backfill",
            json!({"asset": "daily", "from": "c", "to": "a"}),
            400,
            "",
        ),
        (
            "/api/backfill",
            json!({"asset": "middle", "from": "a", "to": "b"}),
            400,
            "",
        ),
        ("/api/runs/nope/cancel", json!({}), 404, "nope"),
        ("/api/runs/nope/reexecute", json!({}), 404, "nope"),
        ("/api/jobs/nope/launch", json!({}), 404, "not a job"),
        (
            "/api/jobs/core_job/launch",
            json!({"tags": {"orch/x": "1"}}),
            400,
            "orch/",
        ),
        (
            "/api/schedules/nope/preview",
            json!({}),
            404,
            "not a schedule",
        ),
        (
            "/api/schedules/core_nightly/status",
            json!({"running": "yes"}),
            400,
            "",
        ),
    ];
    for (path, body, want, says) in cases {
        let (status, answer) = c.post(path, &body);
        assert_eq!(status, want, "{path} {body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{path} {body}: no message");
        assert!(message.contains(says), "{path} {body}: {message}");
    }
    let (status, answer) =
        c.post_with("/api/materialize", "{not json", &[("x-orch-csrf", &c.csrf)]);
    assert_eq!(status, 400, "{answer}");
    let huge = format!(r#"{{"assets": ["{}"]}}"#, "x".repeat(200_000));
    let (status, body) = server.raw(&format!(
        "POST /api/materialize HTTP/1.1\r\nHost: {}\r\nx-orch-csrf: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nConnection: close\r\n\r\n{huge}",
        server.addr,
        c.csrf,
        huge.len()
    ));
    assert_eq!(status, 413, "{body}");
    for (path, want) in [
        ("/api/assets/nope", 404),
        ("/assets/nope", 404),
        ("/api/runs/nope", 404),
        ("/runs/nope", 404),
        ("/api/runs?status=sleeping", 400),
        ("/api/runs?since=yesterday", 400),
        ("/api/runs?tag=novalue", 400),
        ("/api/runs?job=core_job&tag=a=b", 400),
        ("/jobs/nope", 404),
        ("/api/nothing", 404),
        ("/nothing", 404),
        ("/api/runs/x/logs?limit=abc", 400),
        ("/api/runs?cursor=not-a-cursor", 400),
    ] {
        let (status, body) = c.get(path);
        assert_eq!(status, want, "{path}: {body}");
    }
    // Nothing ran.
    assert!(
        c.get_json("/api/runs")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn cancel_stops_a_run_started_here_and_one_started_elsewhere_through_the_store() {
    let _special = special();
    let server = Server::ui();
    let c = server.client();
    HOLD.store(true, Ordering::Release);
    let run = c.post_ok(
        "/api/materialize",
        &json!({ "assets": ["source", "slow", "after_slow"] }),
    );
    let id = run["run_id"].as_str().unwrap().to_owned();
    // Wait until `slow` is running, then cancel.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !c.get_json(&format!("/api/runs/{id}"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["asset"] == "slow" && s["status"] == "running")
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = c.post_ok(&format!("/api/runs/{id}/cancel"), &json!({}));
    assert_eq!(answer["outcome"], "cancel requested");
    let done = server.wait_run(&id);
    assert_eq!(done["run"]["status"], "canceled", "{done}");
    let after = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["asset"] == "after_slow");
    assert!(after.is_none_or(|s| s["status"] == "canceled"), "{done}");
    // Canceling an ended run is a conflict.
    let (status, answer) = c.post(&format!("/api/runs/{id}/cancel"), &json!({}));
    assert_eq!(status, 409, "{answer}");

    // A run this server did not start (a program, the daemon's child): only the store's
    // request reaches it (`slow` holds until its run is canceled).
    let handle = server
        .instance
        .submit(RunRequest::select("+after_slow").unwrap());
    let id = handle.run_id().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // The run is recorded once it starts (a 404 until then).
    let slow_started = || {
        let (status, body) = c.get(&format!("/api/runs/{id}"));
        status == 200
            && serde_json::from_str::<Value>(&body).unwrap()["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["asset"] == "slow")
    };
    while !slow_started() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    c.post_ok(&format!("/api/runs/{id}/cancel"), &json!({}));
    let result = handle.wait().unwrap();
    assert!(
        result.canceled(),
        "the store's request did not reach the run"
    );
    assert_eq!(
        server.instance.storage().run(&id).unwrap().status,
        orch::storage::RunStatus::Canceled
    );
}

#[test]
fn a_failed_run_is_re_executed_from_its_failure() {
    let _special = special();
    let server = Server::ui();
    let c = server.client();
    FAIL.store(true, Ordering::Release);
    let run = c.post_ok(
        "/api/materialize",
        &json!({ "assets": ["source", "flaky"] }),
    );
    let id = run["run_id"].as_str().unwrap().to_owned();
    let failed = server.wait_run(&id);
    FAIL.store(false, Ordering::Release);
    assert_eq!(failed["run"]["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("the warehouse said no"),
        "{failed}"
    );
    let (_, page) = c.get(&format!("/runs/{id}"));
    assert!(page.contains("Re-execute from failure"));
    let again = c.post_ok(
        &format!("/api/runs/{id}/reexecute"),
        &json!({ "from_failure": true }),
    );
    let done = server.wait_run(again["run_id"].as_str().unwrap());
    assert_eq!(done["run"]["status"], "succeeded", "{done}");
    assert_eq!(done["run"]["parent"], id.as_str());
    let steps = strings(done["steps"].clone(), "asset");
    assert_eq!(steps, ["flaky"], "only the failure runs again");
}

/// Field `field` of every element of the array `list`.
fn strings(list: Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

/// The `event:`/`id:`/`data:` records of an SSE body.
fn sse_records(body: &str) -> Vec<(String, String, Value)> {
    body.split("\n\n")
        .filter_map(|record| {
            let mut kind = String::new();
            let mut id = String::new();
            let mut data = String::new();
            for line in record.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (!kind.is_empty())
                .then(|| (kind, id, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}

#[test]
fn a_run_streams_its_events_and_logs_and_resumes_after_the_last_id_without_duplicates() {
    let server = Server::ui();
    let c = server.client();
    let run = c.post_ok(
        "/api/materialize",
        &json!({ "assets": ["source", "middle"] }),
    );
    let id = run["run_id"].as_str().unwrap().to_owned();
    server.wait_run(&id);
    let (status, body) = c.get(&format!("/api/runs/{id}/stream"));
    assert_eq!(status, 200);
    let records = sse_records(&body);
    assert_eq!(records.last().unwrap().0, "end", "{body}");
    let logs: Vec<&str> = records
        .iter()
        .filter(|r| r.0 == "log")
        .map(|r| r.2["message"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["middle line 0", "middle line 1", "middle line 2"]);
    let kinds: Vec<&str> = records
        .iter()
        .filter(|r| r.0 == "event")
        .map(|r| r.2["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_succeeded"));
    assert_eq!(kinds.iter().filter(|k| **k == "materialized").count(), 2);
    // Resume after the first log line: exactly what came after it, once.
    let first_log = records.iter().position(|r| r.0 == "log").unwrap();
    let resume = &records[first_log].1;
    let mut r = c
        .agent
        .get(server.url(&format!("/api/runs/{id}/stream")))
        .header("last-event-id", resume)
        .call()
        .unwrap();
    let rest = sse_records(&r.body_mut().read_to_string().unwrap());
    let expected: Vec<&(String, String, Value)> = records[first_log + 1..].iter().collect();
    let got: Vec<&(String, String, Value)> = rest.iter().collect();
    assert_eq!(got, expected);
}

#[test]
fn the_event_stream_of_an_unfinished_run_delivers_new_lines_as_they_are_recorded() {
    let _special = special();
    let server = Server::ui();
    let c = server.client();
    HOLD.store(true, Ordering::Release);
    let run = c.post_ok("/api/materialize", &json!({ "selection": "+slow" }));
    let id = run["run_id"].as_str().unwrap().to_owned();
    let mut r = c
        .agent
        .get(server.url(&format!("/api/runs/{id}/stream")))
        .call()
        .unwrap();
    let mut reader = std::io::BufReader::new(r.body_mut().as_reader());
    let mut seen = String::new();
    // "slow started" arrives while the run is still going.
    while !seen.contains("slow started") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "stream ended: {seen}"
        );
        seen.push_str(&line);
    }
    assert!(!seen.contains("event: end"));
    HOLD.store(false, Ordering::Release);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("event: end"), "{rest}");
}

#[test]
fn a_partition_range_backfills_and_the_bar_shows_materialized_and_missing_spans() {
    let server = Server::ui();
    let c = server.client();
    let answer = c.post_ok(
        "/api/backfill",
        &json!({ "asset": "daily", "from": "a", "to": "b" }),
    );
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{answer}");
    for run in runs {
        let done = server.wait_run(run.as_str().unwrap());
        assert_eq!(done["run"]["status"], "succeeded");
    }
    let daily = c.get_json("/api/assets/daily");
    let bar = &daily["partitions"];
    assert_eq!(bar["total"], 3);
    assert_eq!(bar["materialized"], 2);
    assert_eq!(bar["missing"], 1);
    assert_eq!(
        bar["spans"],
        json!([
            { "state": "materialized", "first": "a", "last": "b", "count": 2 },
            { "state": "missing", "first": "c", "last": "c", "count": 1 }
        ])
    );
    let (_, page) = c.get("/assets/daily");
    assert!(page.contains("Backfill this range") && page.contains("p-missing"));
}

#[test]
fn runs_filter_by_status_job_and_tag_and_page_with_a_cursor() {
    let _special = special();
    let server = Server::ui();
    let c = server.client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = c.post_ok("/api/materialize", &json!({ "assets": ["source"] }));
        let id = run["run_id"].as_str().unwrap().to_owned();
        server.wait_run(&id);
        ids.push(id);
    }
    FAIL.store(true, Ordering::Release);
    let failed = c.post_ok("/api/materialize", &json!({ "assets": ["flaky"] }));
    let failed = failed["run_id"].as_str().unwrap().to_owned();
    server.wait_run(&failed);
    FAIL.store(false, Ordering::Release);
    let page = c.get_json("/api/runs?limit=2");
    let got = strings(page["runs"].clone(), "id");
    assert_eq!(got, [failed.as_str(), ids[2].as_str()]);
    let cursor = page["next"].as_str().unwrap();
    let next = c.get_json(&format!("/api/runs?limit=2&cursor={cursor}"));
    let got = strings(next["runs"].clone(), "id");
    assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
    assert!(next["next"].is_null());
    let only_failed = c.get_json("/api/runs?status=failed,crashed");
    assert_eq!(only_failed["runs"].as_array().unwrap().len(), 1);
    let tagged = c.get_json("/api/runs?tag=orch/launched_by=web&trigger=manual");
    assert_eq!(tagged["runs"].as_array().unwrap().len(), 4);
    assert!(
        c.get_json("/api/runs?job=core_job")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, html) = c.get("/runs?status=failed");
    assert!(html.contains(&failed[..8]) && !html.contains(&ids[0][..8]));
}
