//! [`CronSchedule`]: a cron string in a time zone, and its ticks, with the rules Dagster's
//! scheduler applies at daylight-saving changes (checked against ticks Dagster itself
//! generated, `tests/data/cron/`).
//!
//! croner finds the wall-clock times that match the string (searching in UTC, which has no
//! daylight saving, so it sees every wall-clock time once). Each is then placed in the zone:
//!
//! - **A time that exists once** is that instant.
//! - **A time in a spring-forward gap** (02:30 when clocks jump from 02:00 to 03:00): a schedule
//!   whose hour field is `*` skips it (it runs in every real hour anyway); any other runs at the
//!   end of the gap (03:00), so a daily schedule never loses a day. Outside 01:00–03:59 (zones
//!   that change at midnight) Dagster keeps the wall-clock distance instead (00:30 → 01:30).
//! - **A time in a fall-back overlap** (01:30 happens twice): a schedule whose hour field is `*`
//!   runs at both; any other runs once, at the second. Dagster's daily, weekly and monthly
//!   schedules take the first one outside 01:00–03:59.
//!
//! Ticks come out strictly increasing, each after the instant the iteration started from.

use std::collections::VecDeque;
use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan, Zoned};

/// Why a cron string or time zone is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The cron string does not parse.
    #[error(
        "`{cron}` is not a valid cron string ({reason}): use five fields, `minute hour day-of-month month day-of-week`, e.g. `0 2 * * *`, or `@daily`, `@hourly`, `@weekly`, `@monthly`"
    )]
    Cron {
        /// The string.
        cron: String,
        /// What croner said.
        reason: String,
    },
    /// The time zone is not an IANA name this build knows.
    #[error(
        "`{0}` is not a time zone: use an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`"
    )]
    TimeZone(String),
}

/// A cron string in a time zone: what a schedule runs on.
#[derive(Clone)]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
    zone: TimeZone,
    zone_name: String,
    /// The hour field is `*`: runs every hour, so gaps are skipped and overlaps run twice.
    every_hour: bool,
    /// A daily, weekly or monthly string (one minute and one hour, no ranges): Dagster's fast
    /// path, which treats overlaps outside 01:00–03:59 as the first occurrence.
    calendar: bool,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?} in {})", self.text, self.zone_name)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.zone_name)
    }
}

/// Parses `cron` as five fields (or a `@` nickname), as Dagster accepts them.
pub fn parse_cron(cron: &str) -> Result<croner::Cron, CronError> {
    let refuse = |reason: String| CronError::Cron {
        cron: cron.to_owned(),
        reason,
    };
    if !cron.trim_start().starts_with('@') && cron.split_whitespace().count() != 5 {
        return Err(refuse(format!(
            "it has {} fields, not 5",
            cron.split_whitespace().count()
        )));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| refuse(e.to_string()))
}

/// The time zone named `name` (an IANA name).
pub fn parse_time_zone(name: &str) -> Result<TimeZone, CronError> {
    TimeZone::get(name).map_err(|_| CronError::TimeZone(name.to_owned()))
}

impl CronSchedule {
    /// `cron` (five fields, or `@daily`, `@hourly`, `@weekly`, `@monthly`, `@yearly`) in the
    /// time zone `timezone` (an IANA name such as `Europe/Paris`).
    pub fn new(cron: &str, timezone: &str) -> Result<CronSchedule, CronError> {
        let parsed = parse_cron(cron)?;
        let zone = parse_time_zone(timezone)?;
        let fields = expand_nickname(cron);
        let field = |i: usize| fields.split_whitespace().nth(i).unwrap_or("*");
        let every_hour = matches!(field(1), "*" | "*/1" | "0-23");
        let single = |f: &str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit());
        let calendar = single(field(0)) && single(field(1));
        Ok(CronSchedule {
            text: cron.to_owned(),
            cron: parsed,
            zone,
            zone_name: timezone.to_owned(),
            every_hour,
            calendar,
        })
    }

    /// The cron string as written.
    pub fn cron(&self) -> &str {
        &self.text
    }

    /// The time zone's name.
    pub fn time_zone(&self) -> &str {
        &self.zone_name
    }

    /// The time zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The ticks strictly after `after`, in order, in the schedule's zone.
    pub fn ticks_after(&self, after: Timestamp) -> Ticks<'_> {
        // Wall-clock search starts a few hours back, so that both halves of an overlap that
        // `after` sits in are seen; anything not after `after` is dropped.
        let start = after.to_zoned(self.zone.clone()).datetime() - 3.hours();
        Ticks {
            schedule: self,
            cursor: start,
            last: after,
            pending: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The latest tick at or before `at` (searching back up to about three years).
    pub fn latest_at_or_before(&self, at: Timestamp) -> Option<Zoned> {
        let mut window = jiff::SignedDuration::from_hours(25);
        while window <= jiff::SignedDuration::from_hours(24 * 1100) {
            let from = at.checked_sub(window).ok()?;
            let latest = self
                .ticks_after(from)
                .take_while(|t| t.timestamp() <= at)
                .last();
            if latest.is_some() {
                return latest;
            }
            window *= 4;
        }
        None
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Zoned> {
        self.ticks_after(after).next()
    }

    /// The instants a wall-clock match stands for (none, one or two), by the rules above;
    /// whether it fell in an overlap.
    fn place(&self, civil: DateTime, out: &mut VecDeque<Timestamp>) -> bool {
        let ambiguous = self.zone.to_ambiguous_timestamp(civil);
        let dst_hours = (1..=3).contains(&civil.hour());
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                out.extend(offset.to_timestamp(civil).ok());
                false
            }
            AmbiguousOffset::Gap { before, after } => {
                if self.every_hour {
                    return false;
                }
                if dst_hours {
                    // The end of the gap: the first transition after the earliest reading.
                    let earliest = after.to_timestamp(civil).ok();
                    let end = earliest.and_then(|t| self.zone.following(t).next());
                    out.extend(end.map(|transition| transition.timestamp()));
                } else {
                    out.extend(before.to_timestamp(civil).ok());
                }
                false
            }
            AmbiguousOffset::Fold { before, after } => {
                let first = before.to_timestamp(civil).ok();
                let second = after.to_timestamp(civil).ok();
                if self.every_hour {
                    out.extend(first);
                    out.extend(second);
                } else if self.calendar && !dst_hours {
                    out.extend(first);
                } else {
                    out.extend(second);
                }
                true
            }
        }
    }

    /// The next wall-clock match after `civil`, searched in UTC (which walks wall-clock times
    /// one by one, with no gap or overlap).
    fn next_civil(&self, civil: DateTime) -> Option<DateTime> {
        let from = civil.to_zoned(TimeZone::UTC).ok()?;
        let found = self.cron.find_next_occurrence(&from, false).ok()?;
        Some(found.datetime())
    }
}

/// `@daily` and friends as five fields (croner accepts them; the rules above need the fields).
fn expand_nickname(cron: &str) -> &str {
    match cron.trim().to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => cron,
    }
}

/// The ticks of a [`CronSchedule`] after an instant (see [`CronSchedule::ticks_after`]).
#[derive(Debug)]
pub struct Ticks<'s> {
    schedule: &'s CronSchedule,
    /// The last wall-clock time searched from.
    cursor: DateTime,
    /// The last instant returned (or the start): every tick is after it.
    last: Timestamp,
    pending: VecDeque<Timestamp>,
    exhausted: bool,
}

impl Iterator for Ticks<'_> {
    type Item = Zoned;

    fn next(&mut self) -> Option<Zoned> {
        loop {
            while let Some(t) = self.pending.pop_front() {
                if t > self.last {
                    self.last = t;
                    return Some(t.to_zoned(self.schedule.zone.clone()));
                }
            }
            if self.exhausted {
                return None;
            }
            let Some(civil) = self.schedule.next_civil(self.cursor) else {
                self.exhausted = true;
                continue;
            };
            self.cursor = civil;
            let overlap = self.schedule.place(civil, &mut self.pending);
            if overlap && self.schedule.every_hour {
                // Both halves of the overlap run: gather every match in it (and the first one
                // after it), then put them in time order.
                while let Some(civil) = self.schedule.next_civil(self.cursor) {
                    self.cursor = civil;
                    if !self.schedule.place(civil, &mut self.pending) {
                        break;
                    }
                }
                self.pending.make_contiguous().sort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(cron: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let schedule = CronSchedule::new(cron, zone).unwrap();
        schedule
            .ticks_after(after.parse().unwrap())
            .take(n)
            .map(|z| z.strftime("%Y-%m-%dT%H:%M%:z").to_string())
            .collect()
    }

    #[test]
    fn a_daily_schedule_runs_at_the_end_of_a_spring_gap_and_once_in_an_overlap() {
        // Paris: 2026-03-29 02:00 → 03:00; 2026-10-25 03:00 → 02:00.
        assert_eq!(
            ticks("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T02:30+01:00",
                "2026-03-29T03:00+02:00",
                "2026-03-30T02:30+02:00"
            ]
        );
        assert_eq!(
            ticks("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30+01:00", "2026-10-26T02:30+01:00"]
        );
    }

    #[test]
    fn an_hourly_schedule_skips_the_gap_and_runs_in_both_halves_of_an_overlap() {
        assert_eq!(
            ticks("30 * * * *", "Europe/Paris", "2026-03-29T00:00:00Z", 2),
            ["2026-03-29T01:30+01:00", "2026-03-29T03:30+02:00"]
        );
        assert_eq!(
            ticks("30 * * * *", "Europe/Paris", "2026-10-24T23:45:00Z", 3),
            [
                "2026-10-25T02:30+02:00",
                "2026-10-25T02:30+01:00",
                "2026-10-25T03:30+01:00"
            ]
        );
    }

    #[test]
    fn the_latest_tick_at_or_before_an_instant() {
        let schedule = CronSchedule::new("30 2 * * *", "Europe/Paris").unwrap();
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let show = |z: Option<Zoned>| z.map(|z| z.strftime("%Y-%m-%dT%H:%M%:z").to_string());
        // The spring gap's tick is 03:00 local (01:00Z); at exactly that instant it counts.
        assert_eq!(
            show(schedule.latest_at_or_before(at("2026-03-29T01:00:00Z"))),
            Some("2026-03-29T03:00+02:00".to_owned())
        );
        assert_eq!(
            show(schedule.latest_at_or_before(at("2026-03-29T00:59:59Z"))),
            Some("2026-03-28T02:30+01:00".to_owned())
        );
        let yearly = CronSchedule::new("@yearly", "UTC").unwrap();
        assert_eq!(
            show(yearly.latest_at_or_before(at("2026-12-04T00:00:00Z"))),
            Some("2026-01-01T00:00+00:00".to_owned())
        );
    }

    #[test]
    fn bad_strings_and_zones_say_what_is_valid() {
        let err = CronSchedule::new("0 2 * *", "UTC").unwrap_err();
        assert!(err.to_string().contains("it has 4 fields, not 5"), "{err}");
        let err = CronSchedule::new("61 2 * * *", "UTC").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`61 2 * * *` is not a valid cron string"),
            "{err}"
        );
        let err = CronSchedule::new("0 2 * * *", "Europe/Pariss").unwrap_err();
        assert_eq!(err, CronError::TimeZone("Europe/Pariss".into()));
    }
}
