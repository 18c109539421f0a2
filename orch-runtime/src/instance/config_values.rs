//! How the configuration's values are written as text and read back: durations, sizes,
//! frame formats, compressions, executors and store URLs, with what is accepted when a value
//! is not.

use std::time::Duration;

use super::config::Executor;
use crate::io::{FrameFormat, ParquetCompression};

pub(super) fn check_store_url(url: &str) -> Result<(), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err("a PostgreSQL URL such as postgres://orch@db.example.com:5432/orch; leave it unset for the embedded SQLite store under `home`".to_owned())
    }
}

pub(super) fn check_storage_url(url: &str) -> Result<(), String> {
    let s3 = ["s3://", "s3a://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    });
    let file = url
        .strip_prefix("file://")
        .is_some_and(|path| path.starts_with('/') && !path.trim_matches('/').is_empty());
    match s3 || file {
        true => Ok(()),
        false => Err("an object storage URL such as s3://bucket/orch or file:///mnt/shared; leave it unset for files under `home`".to_owned()),
    }
}

pub(super) fn parse_executor(text: &str) -> Result<Executor, String> {
    match text.trim() {
        "in_process" => Ok(Executor::InProcess),
        "workers" => Ok(Executor::Workers),
        _ => Err("\"in_process\" or \"workers\"".to_owned()),
    }
}

pub(super) fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write a duration such as \"30d\" or \"12h\""))
}

pub(super) fn format_age(age: Duration) -> String {
    let days = age.as_secs() / 86_400;
    if age.as_secs() == days * 86_400 {
        format!("{days}d")
    } else {
        humantime::format_duration(age).to_string()
    }
}

/// A size in bytes: a whole number with an optional unit (`KiB`, `MiB`, `GiB`, `TiB`).
pub(super) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => Some(0),
        "kib" => Some(10),
        "mib" => Some(20),
        "gib" => Some(30),
        "tib" => Some(40),
        _ => None,
    };
    shift
        .zip(number.parse::<usize>().ok())
        .and_then(|(shift, n)| n.checked_mul(1usize << shift))
        .ok_or_else(|| {
            "write a whole number of bytes, KiB, MiB, GiB or TiB, such as \"512MiB\"".to_owned()
        })
}

/// A size as `parse_size` reads it, in the largest unit that divides it.
pub(super) fn format_size(bytes: usize) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

pub(super) fn parse_frame_format(text: &str) -> Result<FrameFormat, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "arrow" | "ipc" | "feather" => Ok(FrameFormat::ArrowIpc),
        "parquet" => Ok(FrameFormat::Parquet),
        _ => Err("use arrow (Arrow IPC files) or parquet".to_owned()),
    }
}

pub(super) fn parse_compression(text: &str) -> Result<ParquetCompression, String> {
    let text = text.trim().to_ascii_lowercase();
    let zstd_level = |level: &str| {
        level
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=22).contains(l))
            .ok_or_else(|| "a zstd level is 1 to 22".to_owned())
    };
    match text.as_str() {
        "lz4" => Ok(ParquetCompression::Lz4),
        "zstd" => Ok(ParquetCompression::Zstd(3)),
        "snappy" => Ok(ParquetCompression::Snappy),
        "none" | "uncompressed" => Ok(ParquetCompression::Uncompressed),
        other => match other.strip_prefix("zstd:") {
            Some(level) => zstd_level(level).map(ParquetCompression::Zstd),
            None => Err("use lz4, zstd, zstd:LEVEL, snappy or none".to_owned()),
        },
    }
}

pub(super) fn format_compression(compression: ParquetCompression) -> String {
    match compression {
        ParquetCompression::Lz4 => "lz4".to_owned(),
        ParquetCompression::Zstd(level) => format!("zstd:{level}"),
        ParquetCompression::Snappy => "snappy".to_owned(),
        ParquetCompression::Uncompressed => "none".to_owned(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}
