//! What a context hands out and records: run ids, metadata values and log lines.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A run's identity: 32 lowercase hex digits derived from the start time, the process id and a
/// per-process counter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A fresh id.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let salt = (u64::from(std::process::id()) << 32) ^ n;
        // splitmix64 finalizer: every digit depends on time, pid and counter, so even the
        // 8-digit short form differs between runs.
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let high = mix(nanos ^ mix(salt));
        let low = mix(high ^ salt.wrapping_add(0x9E37_79B9_7F4A_7C15));
        RunId(format!("{high:016x}{low:016x}").into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters, for display (the whole id if it is shorter).
    pub fn short(&self) -> &str {
        let end = self
            .0
            .char_indices()
            .nth(8)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

impl From<String> for RunId {
    /// An id read back from a store (ids are opaque text; orch makes 32 hex digits).
    fn from(id: String) -> Self {
        RunId(id.into())
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        RunId(id.into())
    }
}

impl PartialEq<str> for RunId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for RunId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl AsRef<str> for RunId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RunId::from)
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value attached to a materialization: row counts, paths, previews.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
#[non_exhaustive]
pub enum MetadataValue {
    /// An integer, e.g. a row count.
    Int(i64),
    /// A float, e.g. a ratio.
    Float(f64),
    /// Free text.
    Text(String),
    /// A flag.
    Bool(bool),
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataValue::Int(v) => write!(f, "{v}"),
            MetadataValue::Float(v) => write!(f, "{v}"),
            MetadataValue::Text(v) => f.write_str(v),
            MetadataValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

macro_rules! metadata_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {$(
        impl From<$t> for MetadataValue {
            fn from(v: $t) -> Self {
                MetadataValue::$variant(<$conv>::from(v))
            }
        }
    )*};
}
metadata_from!(i64 => Int as i64, i32 => Int as i64, u32 => Int as i64, f64 => Float as f64,
    f32 => Float as f64, bool => Bool as bool, String => Text as String, &str => Text as String);

impl From<usize> for MetadataValue {
    fn from(v: usize) -> Self {
        i64::try_from(v).map_or_else(|_| MetadataValue::Text(v.to_string()), MetadataValue::Int)
    }
}

impl From<u64> for MetadataValue {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or_else(|_| MetadataValue::Text(v.to_string()), MetadataValue::Int)
    }
}

/// The severity of a captured log line.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not fail the asset.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        })
    }
}

/// One captured log line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// When it was written.
    pub time: SystemTime,
    /// Its severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}
