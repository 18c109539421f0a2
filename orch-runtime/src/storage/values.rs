//! How stored values are written and read back, by every backend: times as microseconds
//! since the epoch, log levels and metadata as text, a run's timings as JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orch_core::{LogLevel, MetadataValue};

pub(super) fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) fn time(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

pub(super) fn level_str(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

pub(super) fn parse_level(text: &str) -> LogLevel {
    match text {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

pub(super) fn metadata_parts(value: &MetadataValue) -> (&'static str, String) {
    match value {
        MetadataValue::Int(v) => ("int", v.to_string()),
        MetadataValue::Float(v) => ("float", v.to_string()),
        MetadataValue::Bool(v) => ("bool", v.to_string()),
        MetadataValue::Text(v) => ("text", v.clone()),
        other => ("text", other.to_string()),
    }
}

pub(super) fn metadata_value(kind: &str, value: String) -> MetadataValue {
    match kind {
        "int" => value
            .parse()
            .map_or(MetadataValue::Text(value), MetadataValue::Int),
        "float" => value
            .parse()
            .map_or(MetadataValue::Text(value), MetadataValue::Float),
        "bool" => MetadataValue::Bool(value == "true"),
        _ => MetadataValue::Text(value),
    }
}

/// A run's timings as stored: JSON, in microseconds.
pub(super) fn timings_json(t: &crate::events::RunTimings) -> String {
    serde_json::json!({
        "plan_us": duration_micros(t.plan),
        "load_us": duration_micros(t.load),
        "begin_us": duration_micros(t.begin),
        "execute_us": duration_micros(t.execute),
        "record_wait_us": duration_micros(t.record_wait),
        "sync_us": duration_micros(t.sync),
        "record_background_us": duration_micros(t.record_background),
    })
    .to_string()
}

/// A run's stored timings (a field it lacks, from an older orch or another writer, is zero).
pub(super) fn timings_of(text: &str) -> Option<crate::events::RunTimings> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let d = |name: &str| from_micros(v.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0));
    Some(crate::events::RunTimings {
        plan: d("plan_us"),
        load: d("load_us"),
        begin: d("begin_us"),
        execute: d("execute_us"),
        record_wait: d("record_wait_us"),
        sync: d("sync_us"),
        record_background: d("record_background_us"),
    })
}

/// A stored duration in microseconds.
pub(super) fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A duration as stored, in microseconds.
pub(super) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
