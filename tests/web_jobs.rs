//! The web UI's jobs and schedules over HTTP: schedule toggles, previews and ticks (`dev`
//! only), asset jobs launched with tags, and op jobs shown and launched with a run config.

mod web_support;

use orch::storage::InstigatorStatus;
use serde_json::json;
use web_support::Server;

#[test]
fn schedules_toggle_in_dev_preview_launch_and_are_read_only_in_ui() {
    let server = Server::dev();
    let c = server.client();
    let store = server.instance.storage();
    let answer = c.post_ok(
        "/api/schedules/core_nightly/status",
        &json!({ "running": false }),
    );
    assert_eq!(answer["status"], "stopped");
    // What `schedules` on the command line reads.
    assert_eq!(
        store.instigator_states().unwrap()["core_nightly"].status,
        InstigatorStatus::Stopped
    );
    c.post_ok(
        "/api/schedules/core_nightly/status",
        &json!({ "running": true }),
    );
    assert_eq!(
        store.instigator_states().unwrap()["core_nightly"].status,
        InstigatorStatus::Running
    );
    c.post_ok("/api/automation/paused", &json!({ "paused": true }));
    assert!(store.automation_paused().unwrap());
    c.post_ok("/api/automation/paused", &json!({ "paused": false }));
    // Preview launches nothing.
    let preview = c.post_ok("/api/schedules/core_nightly/preview", &json!({}));
    assert_eq!(preview["decision"], "run", "{preview}");
    assert!(
        preview["runs"][0]["plan"]
            .as_str()
            .unwrap()
            .contains("sink")
    );
    assert!(
        c.get_json("/api/runs")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(store.ticks("core_nightly", 10).unwrap().is_empty());
    // Launch tick: the latest tick's run, queued and started by the daemon (its job reads
    // `source` from storage).
    let first = c.post_ok("/api/materialize", &json!({ "assets": ["source"] }));
    server.wait_run(first["run_id"].as_str().unwrap());
    let tick = c.post_ok("/api/schedules/core_nightly/tick", &json!({}));
    assert_eq!(tick["outcome"], "requested", "{tick}");
    let id = tick["runs"][0].as_str().unwrap();
    let done = server.wait_run(id);
    assert_eq!(done["run"]["status"], "succeeded", "{done}");
    assert_eq!(done["run"]["job"], "core_job");
    // Again: the tick already ran.
    let again = c.post_ok("/api/schedules/core_nightly/tick", &json!({}));
    assert_eq!(again["outcome"], "already done");
    // A job launched from the UI, with tags.
    let launched = c.post_ok(
        "/api/jobs/core_job/launch",
        &json!({ "tags": { "team": "data" } }),
    );
    let done = server.wait_run(launched["run_id"].as_str().unwrap());
    assert!(
        done["run"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!(["team", "data"]))
    );
    let ticks = c.get_json("/api/schedules");
    assert_eq!(ticks["schedules"][0]["ticks"][0]["status"], "success");

    let ui = Server::ui();
    let c = ui.client();
    let (status, answer) = c.post(
        "/api/schedules/core_nightly/status",
        &json!({ "running": false }),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, _) = c.post("/api/automation/paused", &json!({ "paused": true }));
    assert_eq!(status, 403);
    assert!(!ui.instance.storage().automation_paused().unwrap());
}

#[test]
fn an_op_job_shows_its_ops_and_launches_with_a_config_checked_first() {
    let server = Server::ui();
    let c = server.client();
    let page = c.get_ok("/jobs/greeting");
    for expected in [
        "op job",
        "greet",
        "shout",
        "text: String ← greet",
        "GreetConfig",
        "[ops.greet]",
    ] {
        assert!(page.contains(expected), "{expected} not on the page");
    }
    let list = c.get_ok("/jobs");
    assert!(list.contains("Op jobs") && list.contains("/jobs/greeting"));
    // A config that does not fit is refused before anything is queued, naming the field.
    let runs_before = server
        .instance
        .storage()
        .runs(&orch::storage::RunFilter::recent(100))
        .unwrap()
        .len();
    let (status, answer) = c.post(
        "/api/jobs/greeting/launch",
        &json!({ "config": "[ops.greet]\nnam = \"x\"" }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("unknown field `nam`"),
        "{answer}"
    );
    let (status, answer) = c.post("/api/jobs/greeting/launch", &json!({}));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("missing field `name`"),
        "{answer}"
    );
    let (status, answer) = c.post("/api/jobs/core_job/launch", &json!({ "config": "[ops.x]" }));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("asset job"), "{answer}");
    let runs_after = server
        .instance
        .storage()
        .runs(&orch::storage::RunFilter::recent(100))
        .unwrap()
        .len();
    assert_eq!(runs_before, runs_after);

    // As TOML text (what the page's form sends), or as a JSON object.
    for config in [
        json!("[ops.greet]\nname = \"ada\""),
        json!({"ops": {"greet": {"name": "ada"}}}),
    ] {
        let launched = c.post_ok("/api/jobs/greeting/launch", &json!({ "config": config }));
        let done = server.wait_run(launched["run_id"].as_str().unwrap());
        assert_eq!(done["run"]["status"], "succeeded", "{done}");
        assert_eq!(done["run"]["job"], "greeting");
        let steps: Vec<&str> = done["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["asset"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["greeting/greet", "greeting/shout"], "{done}");
        let record = server
            .instance
            .storage()
            .run(launched["run_id"].as_str().unwrap())
            .unwrap();
        assert!(record.config.unwrap().contains("ada"));
    }
    // The run page links each step to the job's page, not to an asset page.
    let run = c.get_json("/api/jobs")["op_jobs"][0]["runs"][0]["id"].clone();
    let page = c.get_ok(&format!("/runs/{}", run.as_str().unwrap()));
    assert!(
        page.contains("href=\"/jobs/greeting\""),
        "no link to the job"
    );
}

// An op job with a dynamic fan-out, for its page.
#[orch::op]
fn letters() -> orch::ops::Dynamic<String> {
    ["a", "b"].into_iter().map(str::to_owned).collect()
}

#[orch::op]
fn upper(letter: &String) -> String {
    letter.to_uppercase()
}

#[orch::op]
fn joined(all: &Vec<String>) -> String {
    all.join("")
}

#[orch::job]
fn spread() {
    joined(letters().map(upper).collect());
}

#[test]
fn a_mapped_step_shows_what_it_maps_over() {
    let server = Server::ui();
    let page = server.client().get_ok("/jobs/spread");
    for expected in [
        "per element of letters",
        "Dynamic&lt;String&gt;",
        "all: Vec&lt;String&gt; ← upper",
    ] {
        assert!(page.contains(expected), "{expected} not on the page");
    }
}
