//! Partition mappings (which partitions of an input a partition reads) and key ranges (the
//! partitions one run covers).

use std::fmt;

use jiff::Timestamp;

use super::{Kind, Partitions, PartitionsError};

/// Checks a new dynamic partition key: non-empty text without control characters.
pub fn check_dynamic_key(key: &str) -> Result<(), PartitionsError> {
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(PartitionsError::InvalidKey(format!(
            "{key:?} is not a partition key: keys are non-empty text without control characters"
        )));
    }
    Ok(())
}

/// The first and last keys of a run over consecutive partitions
/// ([`crate::AssetContext::partition_key_range`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionKeyRange {
    /// The first key.
    pub start: String,
    /// The last key (included).
    pub end: String,
}

/// Which partitions of a partitioned input a partition of its consumer reads, declared on the
/// parameter: `#[partitions(offset = -1)] daily_counts: &T` or
/// `#[partitions(last = 7)] daily_counts: &DataFrame`. Both assets share one definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionMapping {
    /// Partition `k` reads partition `k` (no attribute).
    #[default]
    Identity,
    /// Partition `k` reads the partition this many places away (`-1`: the one before). It is
    /// an error at the first partitions, which have none before them.
    Offset(i64),
    /// Partition `k` reads the `n` partitions ending with `k`, concatenated (frames only);
    /// fewer at the start of the definition.
    Last(u32),
}

impl fmt::Display for PartitionMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionMapping::Identity => f.write_str("the same partition"),
            PartitionMapping::Offset(o) => write!(f, "offset {o}"),
            PartitionMapping::Last(n) => write!(f, "the last {n} partitions"),
        }
    }
}

impl Partitions {
    /// The upstream keys partition `key` reads under `mapping` (upstream and consumer share
    /// this definition), in order.
    pub fn mapped(
        &self,
        key: &str,
        mapping: PartitionMapping,
        now: Timestamp,
    ) -> Result<Vec<String>, PartitionsError> {
        let index = self.index_of(key, now, &[])?;
        let at = |i: u64| -> Result<String, PartitionsError> {
            match &*self.kind {
                Kind::Time(t) => t.key_at(i),
                Kind::Static(keys) => Ok(keys[i as usize].clone()),
                Kind::Dynamic(name) => Err(PartitionsError::Definition(format!(
                    "dynamic \"{name}\" partitions have no order to map along"
                ))),
            }
        };
        match mapping {
            PartitionMapping::Identity => Ok(vec![key.to_owned()]),
            PartitionMapping::Offset(offset) => {
                let len = self.len(now, &[]);
                let target = i64::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_add(offset))
                    .filter(|&t| t >= 0 && (t as u64) < len)
                    .ok_or_else(|| {
                        PartitionsError::InvalidKey(format!(
                            "partition `{key}` has no partition at offset {offset}: {}",
                            if offset < 0 {
                                "it is too close to the first"
                            } else {
                                "it is too close to the last"
                            }
                        ))
                    })?;
                Ok(vec![at(target as u64)?])
            }
            PartitionMapping::Last(n) => {
                let first = (index + 1).saturating_sub(u64::from(n.max(1)));
                (first..=index).map(at).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::{PartitionsDefinition, daily, static_partitions};

    #[test]
    fn mappings_walk_along_the_keys() {
        let now = Timestamp::now();
        let days = PartitionsDefinition::from(daily("2024-01-01").end("2024-01-10"))
            .resolve()
            .unwrap();
        let map = |key, m| days.mapped(key, m, now);
        assert_eq!(
            map("2024-01-05", PartitionMapping::Identity).unwrap(),
            ["2024-01-05"]
        );
        assert_eq!(
            map("2024-01-05", PartitionMapping::Offset(-1)).unwrap(),
            ["2024-01-04"]
        );
        assert_eq!(
            map("2024-01-05", PartitionMapping::Last(3)).unwrap(),
            ["2024-01-03", "2024-01-04", "2024-01-05"]
        );
        // Clipped at the start; an offset before the first partition or after the last is
        // an error naming the key.
        assert_eq!(
            map("2024-01-02", PartitionMapping::Last(7)).unwrap(),
            ["2024-01-01", "2024-01-02"]
        );
        let err = map("2024-01-01", PartitionMapping::Offset(-1)).unwrap_err();
        assert!(
            err.to_string()
                .contains("`2024-01-01` has no partition at offset -1"),
            "{err}"
        );
        assert!(map("2024-01-09", PartitionMapping::Offset(1)).is_err());
        let regions = static_partitions(["eu", "us", "apac"]).resolve().unwrap();
        assert_eq!(
            regions
                .mapped("apac", PartitionMapping::Last(2), now)
                .unwrap(),
            ["us", "apac"]
        );
    }
}
