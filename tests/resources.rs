//! Resources: typed shared objects that `#[resource]` parameters receive, configured once; a
//! missing one is an error before any asset runs.

use std::sync::atomic::{AtomicU32, Ordering};

use orch::prelude::*;
use orch::{MaterializeError, Resources};

/// A stand-in for a connection pool.
#[derive(Debug)]
struct Warehouse {
    name: String,
    queries: AtomicU32,
}

impl Warehouse {
    fn new(name: &str) -> Self {
        Warehouse {
            name: name.to_owned(),
            queries: AtomicU32::new(0),
        }
    }

    fn query(&self, sql: &str) -> String {
        self.queries.fetch_add(1, Ordering::SeqCst);
        format!("{}: {sql}", self.name)
    }
}

/// Configuration as a resource.
struct Threshold(u32);

static RAN: AtomicU32 = AtomicU32::new(0);

#[asset(group = "res")]
fn customers(#[resource] warehouse: &Warehouse) -> String {
    RAN.fetch_add(1, Ordering::SeqCst);
    warehouse.query("select * from customers")
}

#[asset(group = "res")]
async fn big_customers(
    ctx: &AssetContext,
    customers: &String,
    #[resource] warehouse: &Warehouse,
    #[resource] threshold: &Threshold,
) -> String {
    RAN.fetch_add(1, Ordering::SeqCst);
    ctx.log().info("filtering");
    format!(
        "{customers} | {} (over {})",
        warehouse.query("select big"),
        threshold.0
    )
}

#[test]
fn resources_reach_sync_and_async_assets_and_are_not_dependencies() {
    let graph = orch::definitions().unwrap();
    let id = graph.id_of(&"big_customers".parse().unwrap()).unwrap();
    assert_eq!(
        graph.node(id).inputs.len(),
        1,
        "only `customers` is an input"
    );

    let result = Materialize::select("group:res")
        .resource(Warehouse::new("wh"))
        .resource(Threshold(100))
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(
        result.output::<big_customers>(),
        "wh: select * from customers | wh: select big (over 100)"
    );
}

#[test]
fn a_missing_resource_is_reported_before_anything_runs() {
    let err = Materialize::select("group:res")
        .resources(Resources::new().with(Warehouse::new("wh")))
        .run()
        .unwrap_err();
    assert!(matches!(err, MaterializeError::MissingResource { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("asset `big_customers` (at tests/resources.rs:"),
        "{text}"
    );
    assert!(
        text.contains("needs resource `Threshold`, which is not configured: add it with `App::new().resource(...)`"),
        "{text}"
    );
    assert!(text.ends_with("; configured: Warehouse"), "{text}");
    // `first` needs nothing, but the run is refused before it starts.
    let err = Materialize::select("group:guarded")
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("asset `second`") && err.contains("needs resource `Threshold`"),
        "{err}"
    );
    assert_eq!(FIRST_RAN.load(Ordering::SeqCst), 0);
}

static FIRST_RAN: AtomicU32 = AtomicU32::new(0);

#[asset(group = "guarded")]
fn first() -> u32 {
    FIRST_RAN.fetch_add(1, Ordering::SeqCst)
}

#[asset(group = "guarded")]
fn second(first: &u32, #[resource] threshold: &Threshold) -> bool {
    *first > threshold.0
}

#[test]
fn unit_tests_can_hand_a_context_its_resources() {
    let ctx = AssetContext::for_test()
        .with_resources(std::sync::Arc::new(Resources::new().with(Threshold(7))));
    assert_eq!(ctx.resource::<Threshold>().unwrap().0, 7);
    let missing = ctx.resource::<Warehouse>().unwrap_err().to_string();
    assert!(
        missing.starts_with("resource `Warehouse` is not configured"),
        "{missing}"
    );
}
