//! Errors of the definition phase: what is wrong with the graph as registered.
//! (Selection errors live in [`crate::selection`], execution errors in the runtime.)

use std::fmt;

use crate::asset::SourceLocation;
use crate::key::{AssetKey, KeyError};

/// One problem with the asset definitions, found at startup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// Two assets have the same key.
    #[error(
        "two assets have the key `{key}`: one at {first}, the other at {second}; give one of them a `key_prefix` (e.g. `#[asset(key_prefix = \"...\")]`) or rename it"
    )]
    DuplicateKey {
        /// The shared key.
        key: AssetKey,
        /// Where the first is defined.
        first: SourceLocation,
        /// Where the second is defined.
        second: SourceLocation,
    },
    /// A dependency names no registered asset.
    #[error("asset `{asset}` (at {location}) depends on `{dependency}`, which is not an asset{}", did_you_mean(.suggestion))]
    UnknownDependency {
        /// The asset that declares the dependency.
        asset: AssetKey,
        /// The dependency as written.
        dependency: String,
        /// Where the asset is defined.
        location: SourceLocation,
        /// The closest existing key, if any is close.
        suggestion: Option<String>,
    },
    /// Assets depend on each other in a loop (only possible through string `deps`; the compiler
    /// catches the others).
    #[error("assets form a dependency cycle: {}", join_keys(.assets))]
    Cycle {
        /// Every asset on the cycle.
        assets: Vec<AssetKey>,
    },
    /// A `partitions = ...` declaration does not resolve (a bad date, an unknown time zone).
    #[error("asset `{asset}` (at {location}) has invalid partitions: {message}")]
    InvalidPartitions {
        /// The partitioned asset.
        asset: AssetKey,
        /// Where it is defined.
        location: SourceLocation,
        /// What is wrong.
        message: String,
    },
    /// A partitioned asset takes an input partitioned differently, an unpartitioned asset
    /// takes a partitioned input that is not a frame, or a partition mapping does not apply.
    #[error("asset `{asset}` (at {location}) takes `{input}` as an input, but {message}")]
    PartitionMismatch {
        /// The consuming asset.
        asset: AssetKey,
        /// Where it is defined.
        location: SourceLocation,
        /// The upstream asset.
        input: AssetKey,
        /// How they differ and what to do.
        message: String,
    },
    /// A key has unsafe characters.
    #[error("invalid asset key at {location}: {source}")]
    InvalidKey {
        /// Where the asset is defined.
        location: SourceLocation,
        /// What is wrong.
        #[source]
        source: KeyError,
    },
}

/// Every problem found with the definitions, reported together.
#[derive(Debug)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid asset definitions: {one}"),
            many => {
                write!(f, "invalid asset definitions ({} problems):", many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for DefinitionErrors {}

pub(crate) fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

fn join_keys(keys: &[AssetKey]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(" -> ")
}
