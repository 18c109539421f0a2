//! Dynamic fan-out (Dagster's `DynamicOut`, `.map` and `.collect`): an op returns a
//! [`Dynamic<T>`], a list of keyed elements known only when it runs; a job maps another op over
//! it, once per element, and collects the results.
//!
//! ```ignore
//! #[job]
//! fn sizes() {
//!     let files = list_files();                     // Dynamic<String>
//!     let sizes = files.map(file_size);             // Dynamic<u64>, one call per file
//!     total(sizes.collect());                       // Vec<u64>, in the files' order
//! }
//! ```
//!
//! The mapped op is one step of the job. It runs its elements on up to the run's `jobs`
//! threads (async ops: that many at once), each element with its own attempts and retries
//! (the op's `retries`), its log lines marked with the element's key and its context's
//! [`mapping_key`](super::OpContext::mapping_key). If an element fails, the others still run;
//! the step then fails naming every failed element, and what depends on it is skipped. An
//! element whose optional output is `None` is left out of the result.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::asset::Value;

/// A list of keyed elements, known only when the op that returns it runs (Dagster's
/// `DynamicOut`). A job maps an op over it (`files.map(process)`), once per element, and
/// collects the results (`.collect()`, a `Vec` in this order). An op may also take
/// `&Dynamic<T>` itself, to read the keys.
///
/// Each element has a mapping key: 1 to 100 ASCII letters, digits, `_` and `-`, unique in the
/// list. It names the element in log lines and errors (`process[a_csv]`).
///
/// ```
/// use orch_core::op::Dynamic;
/// let mut files = Dynamic::new();
/// files.push("a_csv", "a.csv".to_owned()).unwrap();
/// files.push("b_csv", "b.csv".to_owned()).unwrap();
/// assert!(files.push("a_csv", "again".to_owned()).is_err());
/// assert_eq!(files.keys().collect::<Vec<_>>(), ["a_csv", "b_csv"]);
/// assert_eq!(files.get("b_csv").map(String::as_str), Some("b.csv"));
///
/// // Without keys of their own, elements are keyed by position.
/// let numbers: Dynamic<u32> = (10..13).collect();
/// assert_eq!(numbers.keys().collect::<Vec<_>>(), ["0", "1", "2"]);
/// ```
pub struct Dynamic<T> {
    pub(super) items: Vec<(Arc<str>, Arc<T>)>,
    index: HashMap<Arc<str>, usize>,
}

/// Why a mapping key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingKeyError {
    /// Not 1 to 100 ASCII letters, digits, `_` and `-`.
    #[error(
        "`{0}` cannot be a mapping key: use 1 to 100 ASCII letters, digits, `_` and `-` (replace the others, e.g. `a.csv` as `a_csv`)"
    )]
    Invalid(String),
    /// Already in the list.
    #[error("mapping key `{0}` is used twice: each element of a `Dynamic` needs its own key")]
    Duplicate(String),
}

impl<T> Dynamic<T> {
    /// An empty list.
    pub fn new() -> Self {
        Dynamic {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// An empty list with room for `n` elements.
    pub fn with_capacity(n: usize) -> Self {
        Dynamic {
            items: Vec::with_capacity(n),
            index: HashMap::with_capacity(n),
        }
    }

    /// Adds `value` under `key`; refuses a key that is not valid or already used.
    pub fn push(&mut self, key: impl Into<String>, value: T) -> Result<(), MappingKeyError> {
        self.push_arc(Arc::from(key.into()), Arc::new(value))
    }

    /// The list of `(key, value)` pairs, in order; refuses an invalid or repeated key.
    pub fn try_from_keyed<K: Into<String>>(
        pairs: impl IntoIterator<Item = (K, T)>,
    ) -> Result<Self, MappingKeyError> {
        let mut out = Dynamic::new();
        for (key, value) in pairs {
            out.push(key, value)?;
        }
        Ok(out)
    }

    pub(super) fn push_arc(&mut self, key: Arc<str>, value: Arc<T>) -> Result<(), MappingKeyError> {
        let valid = (1..=100).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !valid {
            return Err(MappingKeyError::Invalid(key.to_string()));
        }
        if self.index.contains_key(&key) {
            return Err(MappingKeyError::Duplicate(key.to_string()));
        }
        self.index.insert(Arc::clone(&key), self.items.len());
        self.items.push((key, value));
        Ok(())
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The mapping keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.items.iter().map(|(k, _)| &**k)
    }

    /// The values, in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> {
        self.items.iter().map(|(_, v)| &**v)
    }

    /// The `(key, value)` pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> {
        self.items.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.index.get(key).map(|&i| &*self.items[i].1)
    }
}

impl<T> Default for Dynamic<T> {
    fn default() -> Self {
        Dynamic::new()
    }
}

/// Shares the elements (no `T: Clone` needed).
impl<T> Clone for Dynamic<T> {
    fn clone(&self) -> Self {
        Dynamic {
            items: self.items.clone(),
            index: self.index.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Dynamic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Dynamic<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// Keys the elements by position: `"0"`, `"1"`, ...
impl<T> FromIterator<T> for Dynamic<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = Dynamic::new();
        for (i, value) in iter.into_iter().enumerate() {
            // Positions are valid, distinct keys.
            let _ = out.push_arc(Arc::from(i.to_string()), Arc::new(value));
        }
        out
    }
}

impl<T: Serialize> Serialize for Dynamic<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Dynamic<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, T)>::deserialize(deserializer)?;
        Dynamic::try_from_keyed(pairs).map_err(serde::de::Error::custom)
    }
}

/// Implemented by `Dynamic<T>` only: what `.map` and `.collect` take in a job body.
#[diagnostic::on_unimplemented(
    message = "`.map` and `.collect` take the output of an op that returns `Dynamic<T>`, but `{P}` produces `{Self}`",
    label = "this is not a `Dynamic` output",
    note = "return `Dynamic<T>` from the op to fan out over its elements"
)]
pub trait DynamicOutput<P> {
    /// The element type.
    type Element: Send + Sync + 'static;
}

impl<P, T: Send + Sync + 'static> DynamicOutput<P> for Dynamic<T> {
    type Element = T;
}

/// What `.collect()` needs of the elements.
#[diagnostic::on_unimplemented(
    message = "`.collect()` copies each element into a `Vec`, so `{Self}` must be `Clone`",
    label = "`{Self}` is not `Clone`",
    note = "derive `Clone`, or pass the `Dynamic` itself to an op that takes `&Dynamic<T>` (no copies)"
)]
pub trait Collectable: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Collectable for T {}

/// What a collected input receives: the elements' values, in order (the consumer's input
/// adapter; a value of another type passes through for the consumer to report).
#[doc(hidden)]
pub fn collect_value<U: Collectable>(value: &Value) -> Value {
    match value.downcast_ref::<Dynamic<U>>() {
        Some(dynamic) => Arc::new(dynamic.values().cloned().collect::<Vec<U>>()),
        None => Arc::clone(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_kept_in_order() {
        let mut d = Dynamic::new();
        d.push("b", 2).unwrap();
        d.push("a", 1).unwrap();
        assert_eq!(
            d.push("a", 3),
            Err(MappingKeyError::Duplicate("a".to_owned()))
        );
        for bad in ["", "a.csv", "with space", &"x".repeat(101)] {
            assert!(
                matches!(d.push(bad, 0), Err(MappingKeyError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(d.iter().collect::<Vec<_>>(), [("b", &2), ("a", &1)]);
        assert_eq!(d.get("a"), Some(&1));
        assert_eq!(d.get("c"), None);
        assert_eq!(format!("{d:?}"), r#"{"b": 2, "a": 1}"#);
    }

    #[test]
    fn serde_round_trips_and_refuses_repeated_keys() {
        let d = Dynamic::try_from_keyed([("x", 1u32), ("y", 2)]).unwrap();
        let bytes = postcard::to_stdvec(&d).unwrap();
        assert_eq!(postcard::from_bytes::<Dynamic<u32>>(&bytes).unwrap(), d);
        let dup = postcard::to_stdvec(&vec![("x", 1u32), ("x", 2)]).unwrap();
        // postcard keeps only its own error kind; serde_json shows the message.
        assert!(postcard::from_bytes::<Dynamic<u32>>(&dup).is_err());
        let err = serde_json::from_str::<Dynamic<u32>>(r#"[["x",1],["x",2]]"#).unwrap_err();
        assert!(
            err.to_string().contains("mapping key `x` is used twice"),
            "{err}"
        );
    }

    #[test]
    fn collecting_copies_the_values_in_order() {
        let d: Dynamic<u8> = [3, 1, 2].into_iter().collect();
        let value: Value = Arc::new(d);
        let collected = collect_value::<u8>(&value);
        assert_eq!(collected.downcast_ref::<Vec<u8>>(), Some(&vec![3, 1, 2]));
        // Another type passes through, for the consumer to report.
        let other: Value = Arc::new(5u8);
        assert!(collect_value::<u8>(&other).is::<u8>());
    }
}
