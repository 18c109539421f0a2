//! Discovery: every `#[asset]` in the binary is found with its attributes, no list needed.

use orch::prelude::*;

mod sources {
    use orch::prelude::*;

    /// Users fetched from the API.
    ///
    /// Second paragraph.
    #[asset(group = "sources", key_prefix = "raw/api", tags(tier = "bronze", "pii" = "yes"),
            owners = ["team:ingest"], metadata(docs = "https://example.com/users"))]
    pub fn users(ctx: &AssetContext) -> Vec<String> {
        ctx.log().debug("fetching");
        vec!["ada".to_owned()]
    }
}

use sources::users;

#[asset(
    group = "transforms",
    code_version = "v7",
    description = "Overrides the doc."
)]
/// Ignored doc.
fn active(users: &Vec<String>) -> Vec<String> {
    users.clone()
}

#[asset(deps = [active, "raw/api/users"], retries = 2)]
async fn audit(active: &Vec<String>) -> usize {
    active.len()
}

#[asset]
fn untouched() {}

#[test]
fn every_asset_is_discovered_with_its_attributes() {
    let graph = orch::definitions().unwrap();
    let keys: Vec<String> = graph.nodes().iter().map(|n| n.key.to_string()).collect();
    assert_eq!(keys, ["active", "audit", "raw/api/users", "untouched"]);

    let node = |key: &str| &graph.nodes()[graph.id_of(&key.parse().unwrap()).unwrap()];
    let users = node("raw/api/users");
    assert_eq!(users.group(), "sources");
    assert_eq!(
        users.def.description(),
        Some("Users fetched from the API.\n\nSecond paragraph.")
    );
    assert_eq!(users.def.tags(), [("tier", "bronze"), ("pii", "yes")]);
    assert_eq!(users.def.owners(), ["team:ingest"]);
    assert_eq!(
        users.def.metadata(),
        [("docs", "https://example.com/users")]
    );
    assert_eq!(users.def.output_type(), "Vec<String>");
    assert_eq!(users.def.location().file, "tests/discovery.rs");
    assert_eq!(users.def.location().line, 13);
    assert!(!users.def.is_async());
    // The default code version is a hash of the function's tokens.
    assert_eq!(users.def.code_version().len(), 16);
    assert_ne!(
        users.def.code_version(),
        node("untouched").def.code_version()
    );

    let active = node("active");
    assert_eq!(active.def.code_version(), "v7");
    assert_eq!(active.def.description(), Some("Overrides the doc."));
    assert_eq!(active.group(), "transforms");

    let audit = node("audit");
    assert!(audit.def.is_async());
    assert_eq!(audit.def.retries(), 2);
    assert_eq!(audit.group(), "default");
    // `active` is an input and an order dep; `raw/api/users` only an order dep.
    assert_eq!(
        audit.inputs,
        [graph.id_of(&"active".parse().unwrap()).unwrap()]
    );
    assert_eq!(audit.upstream.len(), 2);
    assert_eq!(node("untouched").def.output_type(), "()");
    assert_eq!(graph.groups(), ["default", "sources", "transforms"]);
}

#[test]
fn order_only_deps_run_first_without_passing_values() {
    let result = Materialize::all().run().unwrap();
    assert!(result.success());
    let order: Vec<String> = result
        .outcomes()
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    let pos = |k: &str| order.iter().position(|o| o == k).unwrap();
    assert!(pos("raw/api/users") < pos("active"));
    assert!(pos("active") < pos("audit"));
    assert_eq!(*result.output::<audit>(), 1);
    assert_eq!(result.output::<users>(), &vec!["ada".to_owned()]);
}

#[test]
fn selections_resolve_against_the_discovered_graph() {
    let graph = orch::definitions().unwrap();
    let names = |expr: &str| -> Vec<String> {
        let ids = expr
            .parse::<AssetSelection>()
            .unwrap()
            .resolve(graph)
            .unwrap();
        ids.iter()
            .map(|&id| graph.node(id).key.to_string())
            .collect()
    };
    assert_eq!(names("+audit"), ["active", "audit", "raw/api/users"]);
    assert_eq!(names("users+1"), ["active", "audit", "raw/api/users"]);
    assert_eq!(names("group:sources or tag:tier=bronze"), ["raw/api/users"]);
    assert_eq!(names("* and not (users+)"), ["untouched"]);
    assert_eq!(names("sinks(*)"), ["audit", "untouched"]);
    assert_eq!(names("roots(+audit)"), ["raw/api/users"]);
}
