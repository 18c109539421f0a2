//! Declarative automation conditions: `#[asset(automation = eager())]`. A condition says when
//! an asset should be requested, from the state of the asset and its upstream assets; the
//! daemon evaluates every asset's condition on a timer and on each materialization, and
//! records why each asset was or was not requested (`automation explain ASSET`).
//!
//! The composites are Dagster's (`AutomationCondition.eager()`, `.on_cron()`,
//! `.on_missing()`), built from the same primitives, which combine with `&`, `|` and `!`:
//!
//! - [`eager()`]: the asset is missing, or an upstream asset was updated, since it was last
//!   requested or updated; and no upstream asset is missing or in progress; and it is not in
//!   progress itself. An upstream requested in the same evaluation counts as updated (and not
//!   missing), so `a → b → c` from empty is one run of all three.
//! - [`on_cron(c)`](on_cron): a tick of `c` passed since the asset was last requested or
//!   updated, and every upstream asset was updated since that tick (or is requested with it).
//! - [`on_missing()`]: the asset is missing and was never requested, and no upstream asset is
//!   missing or in progress, and it is not in progress.
//!
//! ```
//! use orch_core::automation::conditions::*;
//! let when = eager() & !any_deps_in_progress();
//! assert_eq!(when.to_string(), "eager() & !any_deps_in_progress()");
//! ```

use std::fmt;

use super::cron::CronSchedule;

/// When an asset should be requested: see the [module docs](self). Build one with the
/// functions of [`conditions`] and combine them with `&`, `|` and `!`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AutomationCondition {
    /// [`conditions::eager`].
    Eager,
    /// [`conditions::on_cron`].
    OnCron(Cron),
    /// [`conditions::on_missing`].
    OnMissing,
    /// [`conditions::missing`].
    Missing,
    /// [`conditions::in_progress`].
    InProgress,
    /// [`conditions::any_deps_updated`].
    AnyDepsUpdated,
    /// [`conditions::any_deps_missing`].
    AnyDepsMissing,
    /// [`conditions::any_deps_in_progress`].
    AnyDepsInProgress,
    /// [`conditions::cron_tick_passed`].
    CronTickPassed(Cron),
    /// [`conditions::all_deps_updated_since_cron`].
    AllDepsUpdatedSinceCron(Cron),
    /// Every operand holds (`a & b`).
    And(Vec<AutomationCondition>),
    /// Some operand holds (`a | b`).
    Or(Vec<AutomationCondition>),
    /// The operand does not hold (`!a`).
    Not(Box<AutomationCondition>),
}

/// A cron string in a time zone, as a condition names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cron {
    /// The cron string.
    pub cron: String,
    /// The IANA time zone (`UTC` unless given).
    pub timezone: String,
}

impl Cron {
    /// The parsed schedule, or why it does not parse.
    pub fn schedule(&self) -> Result<CronSchedule, super::CronError> {
        CronSchedule::new(&self.cron, &self.timezone)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timezone == "UTC" {
            write!(f, "{:?}", self.cron)
        } else {
            write!(f, "{:?}, {:?}", self.cron, self.timezone)
        }
    }
}

/// The functions that build conditions. `#[asset(automation = ...)]` has them in scope.
pub mod conditions {
    use super::{AutomationCondition, Cron};

    /// Missing, or an upstream updated since the asset was last requested or updated; and no
    /// upstream missing or in progress; and not in progress.
    pub fn eager() -> AutomationCondition {
        AutomationCondition::Eager
    }

    /// A tick of `cron` (in UTC) passed since the asset was last requested or updated, and
    /// every upstream was updated since that tick.
    pub fn on_cron(cron: &str) -> AutomationCondition {
        on_cron_in(cron, "UTC")
    }

    /// [`on_cron`] in the time zone `timezone` (an IANA name such as `Europe/Paris`).
    pub fn on_cron_in(cron: &str, timezone: &str) -> AutomationCondition {
        AutomationCondition::OnCron(cron_in(cron, timezone))
    }

    /// Missing and never requested; no upstream missing or in progress; not in progress.
    pub fn on_missing() -> AutomationCondition {
        AutomationCondition::OnMissing
    }

    /// The asset has never been materialized.
    pub fn missing() -> AutomationCondition {
        AutomationCondition::Missing
    }

    /// The asset is in a run that is queued or going.
    pub fn in_progress() -> AutomationCondition {
        AutomationCondition::InProgress
    }

    /// An upstream asset was updated (or is requested in this evaluation) since the asset was
    /// last requested or updated, or since its condition was first evaluated.
    pub fn any_deps_updated() -> AutomationCondition {
        AutomationCondition::AnyDepsUpdated
    }

    /// An upstream asset is missing and not requested in this evaluation.
    pub fn any_deps_missing() -> AutomationCondition {
        AutomationCondition::AnyDepsMissing
    }

    /// An upstream asset is in a run that is queued or going.
    pub fn any_deps_in_progress() -> AutomationCondition {
        AutomationCondition::AnyDepsInProgress
    }

    /// A tick of `cron` (in UTC) passed since the asset was last requested or updated, or
    /// since its condition was first evaluated.
    pub fn cron_tick_passed(cron: &str) -> AutomationCondition {
        AutomationCondition::CronTickPassed(cron_in(cron, "UTC"))
    }

    /// Every upstream asset was updated since the latest tick of `cron` (in UTC), or is
    /// requested in this evaluation.
    pub fn all_deps_updated_since_cron(cron: &str) -> AutomationCondition {
        AutomationCondition::AllDepsUpdatedSinceCron(cron_in(cron, "UTC"))
    }

    fn cron_in(cron: &str, timezone: &str) -> Cron {
        Cron {
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
        }
    }
}

impl AutomationCondition {
    /// Every cron string in the condition, to check once at startup.
    pub fn crons(&self) -> Vec<&Cron> {
        let mut found = Vec::new();
        self.visit(&mut |c| match c {
            AutomationCondition::OnCron(cron)
            | AutomationCondition::CronTickPassed(cron)
            | AutomationCondition::AllDepsUpdatedSinceCron(cron) => found.push(cron),
            _ => {}
        });
        found
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a AutomationCondition)) {
        f(self);
        match self {
            AutomationCondition::And(all) | AutomationCondition::Or(all) => {
                all.iter().for_each(|c| c.visit(f))
            }
            AutomationCondition::Not(c) => c.visit(f),
            _ => {}
        }
    }

    /// How tightly it binds when written (for parentheses in `Display`).
    fn precedence(&self) -> u8 {
        match self {
            AutomationCondition::Or(_) => 1,
            AutomationCondition::And(_) => 2,
            _ => 3,
        }
    }
}

impl fmt::Display for AutomationCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = |f: &mut fmt::Formatter<'_>, c: &AutomationCondition, min: u8| {
            if c.precedence() < min {
                write!(f, "({c})")
            } else {
                write!(f, "{c}")
            }
        };
        match self {
            AutomationCondition::Eager => f.write_str("eager()"),
            AutomationCondition::OnCron(c) if c.timezone == "UTC" => write!(f, "on_cron({c})"),
            AutomationCondition::OnCron(c) => write!(f, "on_cron_in({c})"),
            AutomationCondition::OnMissing => f.write_str("on_missing()"),
            AutomationCondition::Missing => f.write_str("missing()"),
            AutomationCondition::InProgress => f.write_str("in_progress()"),
            AutomationCondition::AnyDepsUpdated => f.write_str("any_deps_updated()"),
            AutomationCondition::AnyDepsMissing => f.write_str("any_deps_missing()"),
            AutomationCondition::AnyDepsInProgress => f.write_str("any_deps_in_progress()"),
            AutomationCondition::CronTickPassed(c) => write!(f, "cron_tick_passed({c})"),
            AutomationCondition::AllDepsUpdatedSinceCron(c) => {
                write!(f, "all_deps_updated_since_cron({c})")
            }
            AutomationCondition::And(all) | AutomationCondition::Or(all) => {
                let (sep, min) = match self {
                    AutomationCondition::And(_) => (" & ", 3),
                    _ => (" | ", 2),
                };
                for (i, c) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    operand(f, c, min)?;
                }
                Ok(())
            }
            AutomationCondition::Not(c) => {
                f.write_str("!")?;
                operand(f, c, 3)
            }
        }
    }
}

impl std::ops::BitAnd for AutomationCondition {
    type Output = AutomationCondition;
    fn bitand(self, rhs: AutomationCondition) -> AutomationCondition {
        match self {
            AutomationCondition::And(mut all) => {
                all.push(rhs);
                AutomationCondition::And(all)
            }
            lhs => AutomationCondition::And(vec![lhs, rhs]),
        }
    }
}

impl std::ops::BitOr for AutomationCondition {
    type Output = AutomationCondition;
    fn bitor(self, rhs: AutomationCondition) -> AutomationCondition {
        match self {
            AutomationCondition::Or(mut any) => {
                any.push(rhs);
                AutomationCondition::Or(any)
            }
            lhs => AutomationCondition::Or(vec![lhs, rhs]),
        }
    }
}

impl std::ops::Not for AutomationCondition {
    type Output = AutomationCondition;
    fn not(self) -> AutomationCondition {
        AutomationCondition::Not(Box::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::conditions::*;

    #[test]
    fn conditions_print_as_written_with_the_parentheses_they_need() {
        assert_eq!(eager().to_string(), "eager()");
        assert_eq!(
            (eager() | on_cron("0 * * * *")).to_string(),
            "eager() | on_cron(\"0 * * * *\")"
        );
        assert_eq!(
            ((on_missing() | eager()) & !in_progress()).to_string(),
            "(on_missing() | eager()) & !in_progress()"
        );
        assert_eq!(
            !(missing() & any_deps_missing()) | on_cron_in("0 9 * * *", "Europe/Paris"),
            !(missing() & any_deps_missing()) | on_cron_in("0 9 * * *", "Europe/Paris")
        );
        assert_eq!(
            (!(missing() & any_deps_missing()) | on_cron_in("0 9 * * *", "Europe/Paris"))
                .to_string(),
            "!(missing() & any_deps_missing()) | on_cron_in(\"0 9 * * *\", \"Europe/Paris\")"
        );
        // `a & b & c` is one conjunction, not nested pairs.
        assert_eq!(
            (missing() & in_progress() & any_deps_updated()).to_string(),
            "missing() & in_progress() & any_deps_updated()"
        );
    }

    #[test]
    fn crons_are_found_wherever_they_are_nested() {
        let c = eager() | !(cron_tick_passed("0 0 * * *") & all_deps_updated_since_cron("@hourly"));
        let crons: Vec<_> = c.crons().iter().map(|c| c.cron.as_str()).collect();
        assert_eq!(crons, ["0 0 * * *", "@hourly"]);
        assert!(on_cron("not a cron").crons()[0].schedule().is_err());
        assert!(
            on_cron_in("0 * * * *", "Mars/Base").crons()[0]
                .schedule()
                .is_err()
        );
        assert!(on_cron("0 * * * *").crons()[0].schedule().is_ok());
    }
}
