//! Startup validation of what the compiler cannot see: two assets with one key in different
//! modules, and a string `deps` entry that names no asset.

mod ingest {
    use orch::prelude::*;

    #[asset]
    pub fn clean() -> u32 {
        1
    }
}

mod billing {
    use orch::prelude::*;

    #[asset]
    pub fn clean() -> u32 {
        2
    }

    #[asset(deps = ["warehouse/ordres"])]
    pub fn invoice() -> u32 {
        3
    }

    #[asset(key_prefix = "warehouse")]
    pub fn orders() -> u32 {
        4
    }
}

#[test]
fn duplicate_keys_and_dangling_deps_are_reported_together() {
    let errors = orch::definitions().unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 2, "{text}");
    assert!(
        text.starts_with("invalid asset definitions (2 problems):"),
        "{text}"
    );
    // Both locations, file and line, and the way out.
    assert!(text.contains("two assets have the key `clean`"), "{text}");
    assert!(text.contains("tests/duplicate_keys.rs:8"), "{text}");
    assert!(text.contains("tests/duplicate_keys.rs:17"), "{text}");
    assert!(text.contains("key_prefix"), "{text}");
    assert!(
        text.contains("asset `invoice` (at tests/duplicate_keys.rs:22 (duplicate_keys::billing)) depends on `warehouse/ordres`, which is not an asset; did you mean `warehouse/orders`?"),
        "{text}"
    );
}

#[test]
fn the_cli_exits_with_2_on_definition_errors() {
    for command in [&["prog"][..], &["prog", "list"], &["prog", "lineage"]] {
        let code = orch::run_cli(command.iter().copied());
        assert_eq!(
            code,
            std::process::ExitCode::from(orch::EXIT_USAGE),
            "{command:?}"
        );
    }
}
