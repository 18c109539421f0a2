//! Storing and loading across partitions: the output of a run over a range of partitions,
//! split and stored per partition, and the partitions a mapped input reads.

use orch_core::__private::Value;
use orch_core::{AssetNode, BoxError, MetadataValue, PartitionMapping};

use super::{InputContext, IoManager, IoManagers, OutputContext, Stored, StoredPartition};

/// Stores the output of a run over the partitions `keys`: split by the asset's
/// `partition_by` column, one stored partition per key, each in its own file, with its own
/// data version and metadata (recorded once per partition). The asset's data version combines
/// theirs, and its metadata names the range and counts its rows; consumers in the run receive
/// the whole range, collected. A failure on one partition fails the whole range; those
/// stored before it are already replaced.
pub(crate) fn store_range(
    node: &AssetNode,
    manager: &dyn IoManager,
    ctx: &OutputContext<'_>,
    value: &Value,
    keys: &[String],
) -> Result<Stored, BoxError> {
    let (Some(frame), Some(column), Some(partitions)) = (
        node.def.storage_codec().and_then(|c| c.frame),
        node.def.partition_by(),
        node.partitions.as_ref(),
    ) else {
        return Err(
            "a run over a range of partitions stores frame outputs with `partition_by` only".into(),
        );
    };
    let (whole, parts) = (frame.split)(value, column, partitions, keys)?;
    let mut rows = 0i64;
    let mut stored_parts = Vec::with_capacity(parts.len());
    for (key, part) in &parts {
        let stored = manager
            .handle_output(
                &OutputContext {
                    partition: Some(key),
                    ..*ctx
                },
                part,
            )
            .map_err(|e| -> BoxError { format!("partition {key}: {e}").into() })?;
        for (label, value) in &stored.metadata {
            if let (true, MetadataValue::Int(n)) = (label == "rows", value) {
                rows += n;
            }
        }
        stored_parts.push(StoredPartition {
            key: key.clone(),
            data_version: stored.data_version,
            metadata: stored.metadata,
        });
    }
    let versions: std::collections::HashMap<&str, Option<&str>> = stored_parts
        .iter()
        .map(|p| (p.key.as_str(), p.data_version.as_deref()))
        .collect();
    let data_version =
        crate::run::partitions::combined_version(keys, |k| versions.get(k).copied().flatten());
    Ok(Stored {
        data_version,
        metadata: vec![
            (
                "range".to_owned(),
                format!(
                    "{}..{} ({} partitions)",
                    keys.first().map_or("", String::as_str),
                    keys.last().map_or("", String::as_str),
                    parts.len()
                )
                .into(),
            ),
            ("range rows".to_owned(), rows.into()),
        ],
        replacement: Some(whole),
        partitions: stored_parts,
    })
}

/// What `upstream` stored for the partitions that partition `partition` of a consumer reads
/// through `mapping` (one partition for an offset; several, concatenated, for `last`).
pub(crate) fn load_mapped(
    io: &IoManagers,
    upstream: &AssetNode,
    partition: &str,
    mapping: PartitionMapping,
) -> Result<Value, String> {
    let Some(partitions) = &upstream.partitions else {
        return Err("the upstream is not partitioned".to_owned());
    };
    let keys = partitions
        .mapped(partition, mapping, jiff::Timestamp::now())
        .map_err(|e| e.to_string())?;
    let manager = io
        .for_asset(&upstream.key, upstream.def)
        .map_err(|e| e.to_string())?;
    let ctx = InputContext {
        key: &upstream.key,
        partition: keys.first().map(String::as_str),
        output_type: upstream.def.output_type(),
        codec: upstream.def.storage_codec(),
    };
    let loaded = match mapping {
        PartitionMapping::Last(_) => manager.load_partitions(&ctx, &keys),
        _ => manager.load_input(&ctx),
    };
    loaded.map_err(|e| e.to_string())
}
