//! Builds registrations at run time for unit tests (leaked, so they are `'static` like the
//! macro's).

use crate::asset::{AssetDef, Compute, SourceLocation, Value};
use crate::context::AssetContext;
use crate::key::StaticKey;

fn leak_key(key: &str) -> StaticKey {
    let segments: Vec<&'static str> = key
        .split('/')
        .map(|s| &*Box::leak(s.to_owned().into_boxed_str()))
        .collect();
    StaticKey {
        path: Box::leak(segments.into_boxed_slice()),
    }
}

fn noop(_: &AssetContext, _: &[Value]) -> Result<Value, crate::BoxError> {
    Ok(std::sync::Arc::new(()))
}

/// A test asset `key` taking `inputs`, in `group`, with `tags`.
pub(crate) fn def(
    key: &str,
    inputs: &[&str],
    group: Option<&'static str>,
    tags: &'static [(&'static str, &'static str)],
) -> &'static AssetDef {
    let inputs: Vec<StaticKey> = inputs.iter().map(|k| leak_key(k)).collect();
    Box::leak(Box::new(AssetDef::from_parts(crate::asset::AssetParts {
        key: leak_key(key),
        location: SourceLocation {
            module: "test",
            file: "test.rs",
            line: 1,
        },
        group,
        description: None,
        code_version: "0",
        tags,
        metadata: &[],
        owners: &[],
        inputs: Box::leak(inputs.into_boxed_slice()),
        input_partitions: &[],
        input_adapters: &[],
        deps: &[],
        retries: 0,
        retry_delay: std::time::Duration::ZERO,
        always_run: false,
        partitions: None,
        partition_by: None,
        automation: None,
        freshness: None,
        resources: &[],
        io_manager: None,
        codec: None,
        output_type: "()",
        compute: Compute::Sync(noop),
    })))
}
