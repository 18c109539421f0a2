//! What an asset reports while it runs: `ctx.log()` and `tracing` events captured into its
//! log, output metadata, and the run's event feed.
//!
//! One test in its own binary: `tracing` caches each callsite's interest process-wide, and a
//! test on another thread hitting the same callsite (an asset's span, this asset's event)
//! while this one installs its thread-local subscriber can race tracing-core's registration
//! and leave the callsite disabled; CI saw the captured `tracing` line go missing that way.

use orch::RunEvent;
use orch::prelude::*;

#[asset(group = "context")]
async fn observed(ctx: &AssetContext) -> usize {
    ctx.log().info("starting");
    tracing::info!(rows = 3, "via tracing");
    ctx.add_output_metadata("rows", 3usize);
    assert_eq!(ctx.asset_key().to_string(), "observed");
    assert_eq!(ctx.partition_key(), None);
    3
}

#[test]
fn logs_metadata_and_events_are_recorded() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(orch::CaptureLayer);
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut events: Vec<String> = Vec::new();
    let mut sink = |e: &RunEvent<'_>| {
        events.push(match e {
            RunEvent::RunStarted { planned, .. } => format!("run started ({})", planned.len()),
            RunEvent::AssetStarted { key, attempt } => format!("{key} started #{attempt}"),
            RunEvent::AssetSucceeded { key, metadata, .. } => {
                format!("{key} succeeded {metadata:?}")
            }
            RunEvent::RunFinished { success, .. } => format!("run finished {success}"),
            other => format!("{other:?}"),
        });
    };
    // A current-thread runtime keeps the test's subscriber on the thread that polls the asset.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime
        .block_on(
            Materialize::select("observed")
                .events(&mut sink)
                .run_async(),
        )
        .unwrap();
    let outcome = result.outcome("observed").unwrap();
    let lines: Vec<&str> = outcome.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines, ["starting", "via tracing rows=3"]);
    assert_eq!(
        outcome.metadata,
        [("rows".to_owned(), orch::MetadataValue::Int(3))]
    );
    assert_eq!(
        events,
        [
            "run started (1)",
            "observed started #1",
            "observed succeeded [(\"rows\", Int(3))]",
            "run finished true"
        ]
    );

    // The asset function stays callable on its own, with a test context.
    let ctx = orch::testing::AssetContext::for_test_with("observed".parse().unwrap(), None);
    assert_eq!(runtime.block_on(observed(&ctx)), 3);
    assert_eq!(ctx.logs().len(), 1);
    assert_eq!(ctx.output_metadata().len(), 1);
}
