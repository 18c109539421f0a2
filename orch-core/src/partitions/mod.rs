//! Partitions: an asset materialized in slices (one day of orders, one customer), each slice
//! stored, tracked and re-run on its own.
//!
//! Users declare a [`PartitionsDefinition`] on the asset, e.g.
//! `#[asset(partitions = daily("2024-01-01").end("2024-04-01"))]`, with
//! [`hourly`], [`daily`], [`weekly`], [`monthly`], [`static_partitions`] or [`dynamic`]. The
//! declaration is cheap, unchecked data; discovery resolves it once into [`Partitions`]
//! (dates parsed, time zone looked up), so a bad start date or an unknown time zone is reported
//! at startup, naming the asset, before anything runs.
//!
//! Time windows follow Dagster's conventions: a window's key is its start formatted with the
//! definition's format (`%Y-%m-%d` for daily, weekly and monthly windows, `%Y-%m-%d-%H:%M`
//! for hourly ones); windows are laid out in civil time in the definition's time zone (UTC
//! unless set), from the start to the end (exclusive) or, without an end, up to the last
//! window that has completely passed.

mod mapping;

use std::fmt;
use std::sync::Arc;

/// The date-time library of [`TimeWindow`]'s bounds, re-exported so a user's code always
/// matches orch's version (`orch::partitions::jiff::civil::date(2024, 1, 1)`).
pub use jiff;
pub use mapping::{PartitionKeyRange, PartitionMapping, check_dynamic_key};

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, SpanRound, Timestamp, Unit, Zoned};

/// How long each time window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cadence {
    /// One hour; windows start on the hour.
    Hourly,
    /// One day; windows start at midnight.
    Daily,
    /// Seven days; windows start at midnight on the start date's weekday.
    Weekly,
    /// One calendar month; windows start at midnight on the first.
    Monthly,
}

impl Cadence {
    fn unit(self) -> Unit {
        match self {
            Cadence::Hourly => Unit::Hour,
            Cadence::Daily => Unit::Day,
            Cadence::Weekly => Unit::Week,
            Cadence::Monthly => Unit::Month,
        }
    }

    fn span(self, n: i64) -> Span {
        match self {
            Cadence::Hourly => Span::new().hours(n),
            Cadence::Daily => Span::new().days(n),
            Cadence::Weekly => Span::new().weeks(n),
            Cadence::Monthly => Span::new().months(n),
        }
    }

    fn default_format(self) -> &'static str {
        match self {
            Cadence::Hourly => "%Y-%m-%d-%H:%M",
            _ => "%Y-%m-%d",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cadence::Hourly => "hourly",
            Cadence::Daily => "daily",
            Cadence::Weekly => "weekly",
            Cadence::Monthly => "monthly",
        }
    }
}

/// Time-window partitions as declared: see [`hourly`], [`daily`], [`weekly`], [`monthly`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimeWindowPartitions {
    cadence: Cadence,
    start: String,
    end: Option<String>,
    timezone: Option<String>,
    format: Option<String>,
}

impl TimeWindowPartitions {
    fn new(cadence: Cadence, start: &str) -> Self {
        TimeWindowPartitions {
            cadence,
            start: start.to_owned(),
            end: None,
            timezone: None,
            format: None,
        }
    }

    /// The first window that does not exist any more (`2024-04-01` ends a daily definition on
    /// March 31st). Without it, windows go on to the last one that has completely passed.
    pub fn end(mut self, end: &str) -> Self {
        self.end = Some(end.to_owned());
        self
    }

    /// The IANA time zone the windows are laid out in (`Europe/Paris`); UTC by default.
    pub fn timezone(mut self, timezone: &str) -> Self {
        self.timezone = Some(timezone.to_owned());
        self
    }

    /// The `strftime` format of the keys (`%Y%m%d`); see the module docs for the defaults.
    pub fn format(mut self, format: &str) -> Self {
        self.format = Some(format.to_owned());
        self
    }
}

/// Hourly windows starting at `start` (`"2024-01-01"` or `"2024-01-01 06:00"`).
pub fn hourly(start: &str) -> TimeWindowPartitions {
    TimeWindowPartitions::new(Cadence::Hourly, start)
}

/// Daily windows starting at `start` (`"2024-01-01"`).
pub fn daily(start: &str) -> TimeWindowPartitions {
    TimeWindowPartitions::new(Cadence::Daily, start)
}

/// Seven-day windows starting at `start`, so on its weekday (`"2024-01-01"`, a Monday).
pub fn weekly(start: &str) -> TimeWindowPartitions {
    TimeWindowPartitions::new(Cadence::Weekly, start)
}

/// Calendar months starting at `start`, which must be the first of a month (`"2024-01-01"`).
pub fn monthly(start: &str) -> TimeWindowPartitions {
    TimeWindowPartitions::new(Cadence::Monthly, start)
}

/// A fixed list of keys (regions, customers), in the order given.
pub fn static_partitions<I, S>(keys: I) -> PartitionsDefinition
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    PartitionsDefinition::Static(keys.into_iter().map(Into::into).collect())
}

/// Keys added while orch runs (new customers, new files), stored in the run store under
/// `name`: `cargo run -- partitions ASSET --add KEY...`, or `Storage::add_dynamic_partitions`
/// from code. A run without a store knows no dynamic keys.
pub fn dynamic(name: &str) -> PartitionsDefinition {
    PartitionsDefinition::Dynamic(name.to_owned())
}

/// How an asset is partitioned, as declared in `#[asset(partitions = ...)]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PartitionsDefinition {
    /// Time windows.
    TimeWindow(TimeWindowPartitions),
    /// A fixed list of keys.
    Static(Vec<String>),
    /// Keys added at runtime, stored under this name.
    Dynamic(String),
}

impl From<TimeWindowPartitions> for PartitionsDefinition {
    fn from(t: TimeWindowPartitions) -> Self {
        PartitionsDefinition::TimeWindow(t)
    }
}

impl PartitionsDefinition {
    /// Parses and checks the definition.
    pub fn resolve(&self) -> Result<Partitions, PartitionsError> {
        let kind = match self {
            PartitionsDefinition::TimeWindow(t) => Kind::Time(TimeWindows::resolve(t)?),
            PartitionsDefinition::Static(keys) => {
                if keys.is_empty() {
                    return Err(PartitionsError::Definition(
                        "a static partitions definition needs at least one key".to_owned(),
                    ));
                }
                for (i, key) in keys.iter().enumerate() {
                    check_key_text(key).map_err(PartitionsError::Definition)?;
                    if keys[..i].contains(key) {
                        return Err(PartitionsError::Definition(format!(
                            "static partition key `{key}` is listed twice"
                        )));
                    }
                }
                Kind::Static(keys.clone())
            }
            PartitionsDefinition::Dynamic(name) => {
                if !crate::key::is_valid_segment(name) {
                    return Err(PartitionsError::Definition(format!(
                        "dynamic partitions name `{name}` must be a plain name: ASCII letters, digits, `_`, `-` and `.`"
                    )));
                }
                Kind::Dynamic(name.clone())
            }
        };
        Ok(Partitions {
            declared: self.clone(),
            kind: Arc::new(kind),
        })
    }
}

/// A partition key as users write it: not empty, no control characters, at most 255 bytes.
/// (Storage encodes every other character, so `/` or `..` in a key are harmless.)
fn check_key_text(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a partition key cannot be empty".to_owned());
    }
    if key.len() > 255 {
        return Err(format!(
            "partition key `{}...` is longer than 255 bytes",
            &key[..key.floor_char_boundary(40)]
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(format!(
            "partition key {key:?} contains a control character"
        ));
    }
    Ok(())
}

/// Why a definition or a key is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionsError {
    /// The definition itself is wrong (a bad date, an unknown time zone).
    #[error("{0}")]
    Definition(String),
    /// A key that is not one of the definition's.
    #[error("{0}")]
    InvalidKey(String),
}

/// Resolved time windows.
#[derive(Debug)]
struct TimeWindows {
    cadence: Cadence,
    start: DateTime,
    end: Option<DateTime>,
    tz: TimeZone,
    tz_name: String,
    format: String,
}

fn parse_datetime(what: &str, text: &str) -> Result<DateTime, PartitionsError> {
    let text = text.trim();
    let parsed = if text.len() == 10 {
        text.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    } else {
        text.parse::<DateTime>()
    };
    parsed.map_err(|e| {
        PartitionsError::Definition(format!(
            "{what} `{text}` is not a date (`2024-01-01`) or date and time (`2024-01-01 06:00`): {e}"
        ))
    })
}

impl TimeWindows {
    fn resolve(t: &TimeWindowPartitions) -> Result<TimeWindows, PartitionsError> {
        let start = parse_datetime("start", &t.start)?;
        let end = t
            .end
            .as_deref()
            .map(|e| parse_datetime("end", e))
            .transpose()?;
        let tz_name = t.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
        let tz = TimeZone::get(&tz_name).map_err(|e| {
            PartitionsError::Definition(format!("unknown time zone `{tz_name}`: {e}"))
        })?;
        let windows = TimeWindows {
            cadence: t.cadence,
            start,
            end,
            tz,
            tz_name,
            format: t
                .format
                .clone()
                .unwrap_or_else(|| t.cadence.default_format().to_owned()),
        };
        let aligned = match t.cadence {
            Cadence::Hourly => {
                start.minute() == 0 && start.second() == 0 && start.subsec_nanosecond() == 0
            }
            Cadence::Daily | Cadence::Weekly => start.time() == jiff::civil::Time::midnight(),
            Cadence::Monthly => start.time() == jiff::civil::Time::midnight() && start.day() == 1,
        };
        if !aligned {
            let needs = match t.cadence {
                Cadence::Hourly => "on the hour",
                Cadence::Daily | Cadence::Weekly => "at midnight",
                Cadence::Monthly => "at midnight on the first of a month",
            };
            return Err(PartitionsError::Definition(format!(
                "{} partitions must start {needs}: got `{}`",
                t.cadence.name(),
                t.start
            )));
        }
        if let Some(end) = end
            && end <= start
        {
            return Err(PartitionsError::Definition(format!(
                "the end `{}` is not after the start `{}`",
                t.end.as_deref().unwrap_or_default(),
                t.start
            )));
        }
        // The format must tell windows apart and read back: check it on the first two.
        let first = windows.key_at(0)?;
        let second = windows.key_at(1)?;
        if first == second || windows.index_of(&first).ok() != Some(0) {
            return Err(PartitionsError::Definition(format!(
                "key format `{}` does not identify each {} window (the first two are `{first}` and `{second}`)",
                windows.format,
                t.cadence.name()
            )));
        }
        Ok(windows)
    }

    fn start_of(&self, index: u64) -> Result<DateTime, PartitionsError> {
        let n = i64::try_from(index).unwrap_or(i64::MAX);
        self.start.checked_add(self.cadence.span(n)).map_err(|e| {
            PartitionsError::InvalidKey(format!("partition {index} is out of range: {e}"))
        })
    }

    fn key_at(&self, index: u64) -> Result<String, PartitionsError> {
        let start = self.start_of(index)?;
        let mut key = String::new();
        use std::fmt::Write;
        write!(key, "{}", start.strftime(&self.format)).map_err(|_| {
            PartitionsError::Definition(format!("`{}` is not a valid key format", self.format))
        })?;
        Ok(key)
    }

    /// The index of the window whose key is `key`, if `key` is well formed and aligned.
    fn index_of(&self, key: &str) -> Result<u64, String> {
        let at = DateTime::strptime(&self.format, key)
            .or_else(|_| {
                jiff::civil::Date::strptime(&self.format, key)
                    .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            })
            .map_err(|_| format!("it does not match the format `{}`", self.format))?;
        if at < self.start {
            return Err("it is before the first partition".to_owned());
        }
        let span = self
            .start
            .until((self.cadence.unit(), at))
            .map_err(|e| e.to_string())?;
        let n = match self.cadence {
            Cadence::Hourly => span.get_hours() as i64,
            Cadence::Daily => span.get_days() as i64,
            Cadence::Weekly => span.get_weeks() as i64,
            Cadence::Monthly => span.get_months() as i64,
        };
        let index = u64::try_from(n).map_err(|_| "it is before the first partition".to_owned())?;
        // Not on a window boundary (e.g. a Tuesday in Monday-based weeks).
        if self.start_of(index).ok() != Some(at) {
            return Err(format!(
                "it is not the start of a {} window",
                self.cadence.name()
            ));
        }
        Ok(index)
    }

    /// How many windows exist at `now`.
    fn len(&self, now: Timestamp) -> u64 {
        let limit = match self.end {
            Some(end) => end,
            None => now.to_zoned(self.tz.clone()).datetime(),
        };
        if limit <= self.start {
            return 0;
        }
        // Whole windows from the start to the limit; the last one must end by the limit.
        let span = match self.start.until((self.cadence.unit(), limit)) {
            Ok(span) => span,
            Err(_) => return 0,
        };
        let rounded = span
            .round(
                SpanRound::new()
                    .smallest(self.cadence.unit())
                    .mode(jiff::RoundMode::Trunc)
                    .relative(self.start),
            )
            .unwrap_or(span);
        let n = match self.cadence {
            Cadence::Hourly => rounded.get_hours() as i64,
            Cadence::Daily => rounded.get_days() as i64,
            Cadence::Weekly => rounded.get_weeks() as i64,
            Cadence::Monthly => rounded.get_months() as i64,
        };
        u64::try_from(n).unwrap_or(0)
    }
}

#[derive(Debug)]
enum Kind {
    Time(TimeWindows),
    Static(Vec<String>),
    Dynamic(String),
}

/// A resolved partitions definition: what keys exist, and how to check one.
///
/// Cheap to clone. Two assets have the *same* partitions when their declarations are equal.
#[derive(Clone, Debug)]
pub struct Partitions {
    declared: PartitionsDefinition,
    kind: Arc<Kind>,
}

impl PartialEq for Partitions {
    fn eq(&self, other: &Self) -> bool {
        self.declared == other.declared
    }
}

/// A time window: the span of time a time-partition covers, in its time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// The window's start (inclusive).
    pub start: Zoned,
    /// The window's end (exclusive): the next window's start.
    pub end: Zoned,
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

impl Partitions {
    /// The declaration this was resolved from.
    pub fn declared(&self) -> &PartitionsDefinition {
        &self.declared
    }

    /// The dynamic partitions' name, for dynamic definitions.
    pub fn dynamic_name(&self) -> Option<&str> {
        match &*self.kind {
            Kind::Dynamic(name) => Some(name),
            _ => None,
        }
    }

    /// Whether keys are time windows.
    pub fn is_time_window(&self) -> bool {
        matches!(&*self.kind, Kind::Time(_))
    }

    /// A short description: `daily from 2024-01-01 (UTC)`, `static: eu, us`, `dynamic "customers"`.
    pub fn describe(&self) -> String {
        match &*self.kind {
            Kind::Time(t) => {
                let mut s = format!("{} from {}", t.cadence.name(), t.start);
                if let Some(end) = t.end {
                    s.push_str(&format!(" to {end} (exclusive)"));
                }
                s.push_str(&format!(" ({})", t.tz_name));
                s
            }
            Kind::Static(keys) => format!("static: {}", keys.join(", ")),
            Kind::Dynamic(name) => format!("dynamic \"{name}\""),
        }
    }

    /// Every key that exists at `now`, in order. `dynamic` are the stored keys of a dynamic
    /// definition (ignored otherwise).
    pub fn keys(&self, now: Timestamp, dynamic: &[String]) -> Vec<String> {
        match &*self.kind {
            Kind::Time(t) => (0..t.len(now)).filter_map(|i| t.key_at(i).ok()).collect(),
            Kind::Static(keys) => keys.clone(),
            Kind::Dynamic(_) => dynamic.to_vec(),
        }
    }

    /// The last key that exists at `now` (for time windows: the window that ended last),
    /// without listing the others.
    pub fn last_key(&self, now: Timestamp, dynamic: &[String]) -> Option<String> {
        match &*self.kind {
            Kind::Time(t) => t.len(now).checked_sub(1).and_then(|i| t.key_at(i).ok()),
            Kind::Static(keys) => keys.last().cloned(),
            Kind::Dynamic(_) => dynamic.last().cloned(),
        }
    }

    /// How many keys exist at `now` (without listing them, for time windows).
    pub fn len(&self, now: Timestamp, dynamic: &[String]) -> u64 {
        match &*self.kind {
            Kind::Time(t) => t.len(now),
            Kind::Static(keys) => keys.len() as u64,
            Kind::Dynamic(_) => dynamic.len() as u64,
        }
    }

    /// The position of `key` among [`Partitions::keys`], or an error that says why it is not
    /// a key and what the valid ones look like.
    pub fn index_of(
        &self,
        key: &str,
        now: Timestamp,
        dynamic: &[String],
    ) -> Result<u64, PartitionsError> {
        match &*self.kind {
            Kind::Time(t) => {
                let n = t.len(now);
                let range = || match n {
                    0 => "there are no partitions yet".to_owned(),
                    _ => format!(
                        "valid keys run from `{}` to `{}` ({} {} partitions)",
                        t.key_at(0).unwrap_or_default(),
                        t.key_at(n - 1).unwrap_or_default(),
                        n,
                        t.cadence.name()
                    ),
                };
                match t.index_of(key) {
                    Ok(i) if i < n => Ok(i),
                    Ok(_) => Err(PartitionsError::InvalidKey(format!(
                        "`{key}` is not a partition yet or any more: {}",
                        range()
                    ))),
                    Err(why) => Err(PartitionsError::InvalidKey(format!(
                        "`{key}` is not a partition key: {why}; {}",
                        range()
                    ))),
                }
            }
            Kind::Static(keys) => position(keys, key, "static"),
            Kind::Dynamic(name) => position(dynamic, key, &format!("dynamic \"{name}\"")),
        }
    }

    /// The time window of `key`, for time-window partitions.
    pub fn time_window(&self, key: &str) -> Option<TimeWindow> {
        let Kind::Time(t) = &*self.kind else {
            return None;
        };
        let index = t.index_of(key).ok()?;
        let start = t.start_of(index).ok()?.to_zoned(t.tz.clone()).ok()?;
        let end = t.start_of(index + 1).ok()?.to_zoned(t.tz.clone()).ok()?;
        Some(TimeWindow { start, end })
    }

    /// The keys from `from` to `to`, both included, in order.
    pub fn range(
        &self,
        from: &str,
        to: &str,
        now: Timestamp,
        dynamic: &[String],
    ) -> Result<Vec<String>, PartitionsError> {
        let a = self.index_of(from, now, dynamic)?;
        let b = self.index_of(to, now, dynamic)?;
        if b < a {
            return Err(PartitionsError::InvalidKey(format!(
                "the range ends (`{to}`) before it starts (`{from}`)"
            )));
        }
        Ok(match &*self.kind {
            Kind::Time(t) => (a..=b).filter_map(|i| t.key_at(i).ok()).collect(),
            Kind::Static(keys) => keys[a as usize..=b as usize].to_vec(),
            Kind::Dynamic(_) => dynamic[a as usize..=b as usize].to_vec(),
        })
    }
}

fn position(keys: &[String], key: &str, what: &str) -> Result<u64, PartitionsError> {
    if let Some(i) = keys.iter().position(|k| k == key) {
        return Ok(i as u64);
    }
    let mut message = format!("`{key}` is not one of the {what} partition keys");
    if keys.is_empty() {
        message.push_str(": there are none yet");
    } else {
        let shown: Vec<String> = keys.iter().take(20).map(|k| format!("`{k}`")).collect();
        message.push_str(&format!(": valid keys are {}", shown.join(", ")));
        if keys.len() > 20 {
            message.push_str(&format!(" and {} more", keys.len() - 20));
        }
        if let Some(near) = crate::suggest::closest(key, keys.iter().map(String::as_str)) {
            message.push_str(&format!(" (did you mean `{near}`?)"));
        }
    }
    Err(PartitionsError::InvalidKey(message))
}

/// Encodes a partition key as one file name: ASCII letters, digits, `-`, `_` and `.` stay
/// (except a leading `.`); every other byte becomes `%XX`. So keys never escape the storage
/// directory (`..`, `/`, NUL) and two keys never share a file.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_keys_windows_and_ranges() {
        let p = PartitionsDefinition::from(daily("2024-01-01").end("2024-04-01"))
            .resolve()
            .unwrap();
        let now = ts("2030-01-01T00:00:00Z");
        assert_eq!(p.len(now, &[]), 91);
        let keys = p.keys(now, &[]);
        assert_eq!(keys.first().unwrap(), "2024-01-01");
        assert_eq!(keys[59], "2024-02-29");
        assert_eq!(keys.last().unwrap(), "2024-03-31");
        assert_eq!(p.index_of("2024-02-29", now, &[]).unwrap(), 59);
        let w = p.time_window("2024-02-29").unwrap();
        assert_eq!(w.start.to_string(), "2024-02-29T00:00:00+00:00[UTC]");
        assert_eq!(w.end.to_string(), "2024-03-01T00:00:00+00:00[UTC]");
        assert_eq!(
            p.range("2024-01-30", "2024-02-02", now, &[]).unwrap(),
            ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
        );
    }

    #[test]
    fn open_ended_windows_stop_at_the_last_complete_one() {
        let p = PartitionsDefinition::from(daily("2024-01-01"))
            .resolve()
            .unwrap();
        // On Jan 3rd at noon, Jan 1st and 2nd are complete; the 3rd is not.
        assert_eq!(
            p.keys(ts("2024-01-03T12:00:00Z"), &[]),
            ["2024-01-01", "2024-01-02"]
        );
        assert_eq!(p.len(ts("2024-01-03T00:00:00Z"), &[]), 2);
        assert_eq!(p.len(ts("2023-12-01T00:00:00Z"), &[]), 0);
        let err = p
            .index_of("2024-01-03", ts("2024-01-03T12:00:00Z"), &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`2024-01-03` is not a partition yet or any more: valid keys run from `2024-01-01` to `2024-01-02` (2 daily partitions)"
        );
    }

    #[test]
    fn hourly_weekly_monthly_and_time_zones() {
        let now = ts("2024-03-01T00:00:00Z");
        let h = PartitionsDefinition::from(hourly("2024-02-29 22:00"))
            .resolve()
            .unwrap();
        assert_eq!(h.keys(now, &[]), ["2024-02-29-22:00", "2024-02-29-23:00"]);
        let w = PartitionsDefinition::from(weekly("2024-01-01"))
            .resolve()
            .unwrap();
        assert_eq!(w.len(now, &[]), 8);
        assert!(w.index_of("2024-01-08", now, &[]).is_ok());
        let err = w.index_of("2024-01-09", now, &[]).unwrap_err().to_string();
        assert!(err.contains("is not the start of a weekly window"), "{err}");
        let m = PartitionsDefinition::from(monthly("2023-11-01"))
            .resolve()
            .unwrap();
        assert_eq!(
            m.keys(now, &[]),
            ["2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
        );
        let w = m.time_window("2024-02-01").unwrap();
        assert_eq!(w.end.date(), jiff::civil::date(2024, 3, 1));
        // In Paris, Jan 2nd has begun at 23:30 UTC on Jan 1st.
        let paris = PartitionsDefinition::from(daily("2024-01-01").timezone("Europe/Paris"))
            .resolve()
            .unwrap();
        assert_eq!(paris.len(ts("2024-01-02T23:30:00Z"), &[]), 2);
        assert_eq!(
            paris.time_window("2024-01-01").unwrap().start.to_string(),
            "2024-01-01T00:00:00+01:00[Europe/Paris]"
        );
        let custom = PartitionsDefinition::from(daily("2024-01-01").format("%Y%m%d"))
            .resolve()
            .unwrap();
        assert_eq!(
            custom.keys(ts("2024-01-03T00:00:00Z"), &[]),
            ["20240101", "20240102"]
        );
    }

    #[test]
    fn bad_definitions_say_what_is_wrong() {
        let err = |d: PartitionsDefinition| d.resolve().unwrap_err().to_string();
        assert!(err(daily("2024-13-01").into()).starts_with("start `2024-13-01` is not a date"));
        assert_eq!(
            err(monthly("2024-01-15").into()),
            "monthly partitions must start at midnight on the first of a month: got `2024-01-15`"
        );
        assert!(
            err(daily("2024-01-01").timezone("Mars/Olympus").into())
                .starts_with("unknown time zone `Mars/Olympus`")
        );
        assert!(
            err(daily("2024-01-01").end("2023-01-01").into()).contains("is not after the start")
        );
        assert!(
            err(daily("2024-01-01").format("%Y-%m").into())
                .starts_with("key format `%Y-%m` does not identify each daily window")
        );
        assert!(err(static_partitions(Vec::<String>::new())).contains("at least one key"));
        assert!(err(static_partitions(["eu", "eu"])).contains("listed twice"));
        assert!(err(dynamic("a/b")).contains("plain name"));
    }

    #[test]
    fn invalid_keys_list_what_is_valid() {
        let now = ts("2030-01-01T00:00:00Z");
        let p = static_partitions(["eu", "us", "apac"]).resolve().unwrap();
        assert_eq!(p.index_of("us", now, &[]).unwrap(), 1);
        assert_eq!(
            p.index_of("usa", now, &[]).unwrap_err().to_string(),
            "`usa` is not one of the static partition keys: valid keys are `eu`, `us`, `apac` (did you mean `us`?)"
        );
        let d = daily("2024-01-01").end("2024-02-01");
        let d = PartitionsDefinition::from(d).resolve().unwrap();
        // An injection attempt is just a key that does not parse.
        let err = d
            .index_of("2024-01-01' OR '1'='1", now, &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("`2024-01-01' OR '1'='1` is not a partition key: it does not match the format `%Y-%m-%d`"), "{err}");
        assert!(
            err.ends_with("valid keys run from `2024-01-01` to `2024-01-31` (31 daily partitions)"),
            "{err}"
        );
        let dynamic = dynamic("customers").resolve().unwrap();
        let err = dynamic.index_of("acme", now, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "`acme` is not one of the dynamic \"customers\" partition keys: there are none yet"
        );
        assert_eq!(
            dynamic.index_of("acme", now, &["acme".to_owned()]).unwrap(),
            0
        );
    }

    #[test]
    fn encoded_keys_stay_inside_one_directory() {
        assert_eq!(encode_key("2024-01-05"), "2024-01-05");
        assert_eq!(encode_key("../etc/passwd"), "%2E.%2Fetc%2Fpasswd");
        assert_eq!(encode_key("a\0b"), "a%00b");
        assert_eq!(encode_key("12:00 é"), "12%3A00%20%C3%A9");
        assert_ne!(encode_key("a/b"), encode_key("a%2Fb"));
    }

    #[test]
    fn a_hundred_thousand_hourly_keys_are_cheap_to_count() {
        let p = PartitionsDefinition::from(hourly("2014-01-01"))
            .resolve()
            .unwrap();
        let now = ts("2025-05-29T16:00:00Z");
        assert_eq!(p.len(now, &[]), 100_000);
        let last = "2025-05-29-15:00";
        assert_eq!(p.index_of(last, now, &[]).unwrap(), 99_999);
    }
}
