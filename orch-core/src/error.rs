//! Errors of the definition phase: what is wrong with the graph as registered.
//! (Selection errors live in [`crate::selection`], execution errors in the runtime.)

use std::fmt;
use std::time::Duration;

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

/// An error's message, then each `source()` in turn, without a cause whose text repeats the
/// one before it (wrappers such as anyhow repeat their cause's text).
#[doc(hidden)]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        source = e.source();
    }
    chain
}

/// What a panic said: its `&str` or `String` payload.
#[doc(hidden)]
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// The wait before retrying after failed attempt `number` (from 1) when the first retry waits
/// `first`: doubling after each further failure, at most 32 times `first`.
#[doc(hidden)]
pub fn retry_backoff(first: Duration, number: u32) -> Duration {
    first * 2u32.pow(number.saturating_sub(1).min(5))
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn chains_skip_repeated_causes_and_backoff_doubles_up_to_32_times() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&e), ["disk full"]);
        let payload: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_text(&*payload), "a non-string panic payload");
        let ms = Duration::from_millis;
        assert_eq!(retry_backoff(ms(10), 1), ms(10));
        assert_eq!(retry_backoff(ms(10), 3), ms(40));
        assert_eq!(retry_backoff(ms(10), 40), ms(320));
    }
}
