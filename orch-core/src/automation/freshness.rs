//! Freshness policies (Dagster 1.11's `FreshnessPolicy`): how recent an asset's latest
//! materialization should be, as `#[asset(freshness = "1h")]` declares it, and its state as of
//! an instant: pass, warn, fail, or unknown (never materialized, or no deadline yet).
//!
//! - [`window(fail)`](window)`.warn(warn)`: fails once the latest materialization is older than
//!   `fail`, warns once it is older than `warn`.
//! - [`cron(deadline, lower_bound)`](cron): by each tick of `deadline`, the asset must have been
//!   materialized within `lower_bound` before it; fails from a deadline missed until it is.
//!
//! ```
//! use orch_core::automation::freshness::{self, FreshnessState};
//! let policy = freshness::window("1h").warn("30m").resolve().unwrap();
//! let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
//! let done = Some(t("2026-12-04T10:00:00Z"));
//! assert_eq!(policy.state(done, t("2026-12-04T10:20:00Z")).0, FreshnessState::Pass);
//! assert_eq!(policy.state(done, t("2026-12-04T10:45:00Z")).0, FreshnessState::Warn);
//! assert_eq!(policy.state(done, t("2026-12-04T11:30:00Z")).0, FreshnessState::Fail);
//! ```

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use super::cron::CronSchedule;
use super::sensor::parse_interval;

/// How recent an asset's latest materialization should be: see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FreshnessPolicy {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Window {
        fail: String,
        warn: Option<String>,
    },
    Cron {
        deadline: String,
        timezone: String,
        lower_bound: String,
    },
}

/// Fails once the latest materialization is older than `fail` (`"24h"`, `"90m"`).
pub fn window(fail: &str) -> FreshnessPolicy {
    FreshnessPolicy {
        kind: Kind::Window {
            fail: fail.to_owned(),
            warn: None,
        },
    }
}

/// By each tick of `deadline` (a cron string, in UTC unless [`FreshnessPolicy::timezone`]
/// says otherwise), the asset must have been materialized within `lower_bound` before it.
pub fn cron(deadline: &str, lower_bound: &str) -> FreshnessPolicy {
    FreshnessPolicy {
        kind: Kind::Cron {
            deadline: deadline.to_owned(),
            timezone: "UTC".to_owned(),
            lower_bound: lower_bound.to_owned(),
        },
    }
}

impl From<&str> for FreshnessPolicy {
    /// `freshness = "1h"` is `window("1h")`.
    fn from(fail: &str) -> Self {
        window(fail)
    }
}

impl FreshnessPolicy {
    /// A window policy also warns once the latest materialization is older than `warn`.
    /// (On a cron policy, it changes nothing.)
    pub fn warn(mut self, warn: &str) -> Self {
        if let Kind::Window { warn: w, .. } = &mut self.kind {
            *w = Some(warn.to_owned());
        }
        self
    }

    /// A cron policy's deadlines in time zone `timezone` (an IANA name). (On a window policy,
    /// it changes nothing.)
    pub fn timezone(mut self, timezone: &str) -> Self {
        if let Kind::Cron { timezone: tz, .. } = &mut self.kind {
            *tz = timezone.to_owned();
        }
        self
    }

    /// The policy with its durations and cron string parsed, or what is wrong with them.
    pub fn resolve(&self) -> Result<ResolvedFreshness, String> {
        match &self.kind {
            Kind::Window { fail, warn } => {
                let fail = parse_interval(fail)?;
                let warn = warn.as_deref().map(parse_interval).transpose()?;
                if let Some(w) = warn
                    && w >= fail
                {
                    return Err(format!(
                        "its warning window ({}) is not shorter than its failure window ({})",
                        humantime::format_duration(w),
                        humantime::format_duration(fail)
                    ));
                }
                Ok(ResolvedFreshness::Window { fail, warn })
            }
            Kind::Cron {
                deadline,
                timezone,
                lower_bound,
            } => Ok(ResolvedFreshness::Cron {
                deadline: Box::new(
                    CronSchedule::new(deadline, timezone).map_err(|e| e.to_string())?,
                ),
                lower_bound: parse_interval(lower_bound)?,
            }),
        }
    }
}

impl fmt::Display for FreshnessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Window { fail, warn: None } => write!(f, "within {fail}"),
            Kind::Window {
                fail,
                warn: Some(warn),
            } => write!(f, "within {fail} (warn after {warn})"),
            Kind::Cron {
                deadline,
                timezone,
                lower_bound,
            } => write!(
                f,
                "within {lower_bound} before each `{deadline}` ({timezone})"
            ),
        }
    }
}

/// A policy ready to evaluate.
#[derive(Clone, Debug)]
pub enum ResolvedFreshness {
    /// Fails once the latest materialization is older than `fail`; warns after `warn`.
    Window {
        /// The failure window.
        fail: Duration,
        /// The warning window, shorter.
        warn: Option<Duration>,
    },
    /// Materialized within `lower_bound` before each deadline.
    Cron {
        /// The deadlines.
        deadline: Box<CronSchedule>,
        /// How long before a deadline a materialization counts for it.
        lower_bound: Duration,
    },
}

/// A freshness state, Dagster's four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FreshnessState {
    /// Fresh enough.
    Pass,
    /// Older than the warning window.
    Warn,
    /// Older than the failure window, or a deadline was missed.
    Fail,
    /// Never materialized (or, for a cron policy, no deadline yet).
    Unknown,
}

impl FreshnessState {
    /// `pass`, `warn`, `fail`, `unknown`: the stored and printed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FreshnessState::Pass => "pass",
            FreshnessState::Warn => "warn",
            FreshnessState::Fail => "fail",
            FreshnessState::Unknown => "unknown",
        }
    }

    /// Reads a stored state.
    pub fn parse(text: &str) -> Option<FreshnessState> {
        [
            FreshnessState::Pass,
            FreshnessState::Warn,
            FreshnessState::Fail,
            FreshnessState::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for FreshnessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn ago(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().max(0) as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn show(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

impl ResolvedFreshness {
    /// The state as of `now` of an asset last materialized at `last`, and why.
    pub fn state(&self, last: Option<Timestamp>, now: Timestamp) -> (FreshnessState, String) {
        match self {
            ResolvedFreshness::Window { fail, warn } => {
                let Some(last) = last else {
                    return (FreshnessState::Unknown, "never materialized".to_owned());
                };
                let age = now.duration_since(last);
                let older = |window: &Duration| {
                    jiff::SignedDuration::try_from(*window).is_ok_and(|w| age > w)
                };
                let said = format!("last materialized {} ago", ago(age));
                if older(fail) {
                    let why = format!("{said}, more than {}", humantime::format_duration(*fail));
                    (FreshnessState::Fail, why)
                } else if let Some(w) = warn
                    && older(w)
                {
                    let why = format!("{said}, more than {}", humantime::format_duration(*w));
                    (FreshnessState::Warn, why)
                } else {
                    (FreshnessState::Pass, said)
                }
            }
            ResolvedFreshness::Cron {
                deadline,
                lower_bound,
            } => {
                let Some(due) = deadline.latest_at_or_before(now) else {
                    return (FreshnessState::Unknown, "no deadline yet".to_owned());
                };
                let due = due.timestamp();
                let Some(last) = last else {
                    return (FreshnessState::Unknown, "never materialized".to_owned());
                };
                let from = jiff::SignedDuration::try_from(*lower_bound)
                    .ok()
                    .and_then(|b| due.checked_sub(b).ok())
                    .unwrap_or(due);
                if last >= from {
                    (
                        FreshnessState::Pass,
                        format!(
                            "materialized at {}, on time for the deadline at {}",
                            show(last),
                            show(due)
                        ),
                    )
                } else {
                    (
                        FreshnessState::Fail,
                        format!(
                            "not materialized between {} and the deadline at {} (last at {})",
                            show(from),
                            show(due),
                            show(last)
                        ),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_window_passes_then_warns_then_fails_as_the_materialization_ages() {
        let p = window("1h").warn("30m").resolve().unwrap();
        let last = Some(t("2026-12-04T10:00:00Z"));
        let at = |s| p.state(last, t(s));
        assert_eq!(at("2026-12-04T10:30:00Z").0, FreshnessState::Pass);
        assert_eq!(at("2026-12-04T10:30:01Z").0, FreshnessState::Warn);
        assert_eq!(
            at("2026-12-04T11:00:01Z"),
            (
                FreshnessState::Fail,
                "last materialized 1h 1s ago, more than 1h".to_owned()
            )
        );
        assert_eq!(
            p.state(None, t("2026-12-04T11:00:00Z")).0,
            FreshnessState::Unknown
        );
        // No warning window: pass until it fails.
        let p = FreshnessPolicy::from("2h").resolve().unwrap();
        assert_eq!(
            p.state(last, t("2026-12-04T11:59:00Z")).0,
            FreshnessState::Pass
        );
        assert_eq!(
            p.state(last, t("2026-12-04T12:00:01Z")).0,
            FreshnessState::Fail
        );
    }

    #[test]
    fn a_cron_policy_wants_a_materialization_in_the_window_before_each_deadline() {
        let p = cron("0 9 * * *", "2h")
            .timezone("Europe/Paris")
            .resolve()
            .unwrap();
        // Deadline 09:00 Paris (08:00 UTC in December); the window opens at 07:00 Paris.
        let on_time = Some(t("2026-12-04T06:30:00Z")); // 07:30 Paris
        assert_eq!(
            p.state(on_time, t("2026-12-04T08:00:00Z")).0,
            FreshnessState::Pass
        );
        assert_eq!(
            p.state(on_time, t("2026-12-05T07:59:00Z")).0,
            FreshnessState::Pass
        );
        // The next deadline passes without a new one: fail until it comes.
        assert_eq!(
            p.state(on_time, t("2026-12-05T08:00:00Z")).0,
            FreshnessState::Fail
        );
        let early = Some(t("2026-12-04T05:59:00Z")); // before the window
        let (state, why) = p.state(early, t("2026-12-04T08:30:00Z"));
        assert_eq!(state, FreshnessState::Fail);
        assert!(why.contains("not materialized between 2026-12-04T06:00:00Z and the deadline at 2026-12-04T08:00:00Z"), "{why}");
    }

    #[test]
    fn bad_durations_and_crons_are_refused_with_the_reason() {
        assert!(
            window("soon")
                .resolve()
                .unwrap_err()
                .contains("`soon` is not a duration")
        );
        assert!(
            window("1h")
                .warn("2h")
                .resolve()
                .unwrap_err()
                .contains("not shorter than its failure window")
        );
        assert!(cron("0 25 * * *", "1h").resolve().is_err());
        assert!(
            cron("0 9 * * *", "1h")
                .timezone("Mars/Base")
                .resolve()
                .is_err()
        );
        assert_eq!(
            window("1h").warn("30m").to_string(),
            "within 1h (warn after 30m)"
        );
    }
}
