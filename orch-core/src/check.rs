//! Asset checks (Dagster's `@asset_check`): a function over an asset's output that says whether
//! the data is right, run after the asset in every run that materializes it (and alone with
//! `check run ASSET`). A failed check with `error` severity on a `blocking` check skips the
//! asset's downstream in that run; a `warn` never blocks.
//!
//! ```ignore
//! #[asset_check(asset = orders_cleaned, blocking = true)]
//! fn amounts_positive(orders_cleaned: &Vec<i64>) -> CheckResult {
//!     let bad = orders_cleaned.iter().filter(|&&a| a <= 0).count();
//!     CheckResult::new(bad == 0).metadata("non_positive", bad as i64)
//! }
//! ```

use crate::asset::{BoxError, SourceLocation, Value};
use crate::context::MetadataValue;
use crate::key::StaticKey;

/// How much a failed check matters.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    /// The data is wrong: a blocking check with this severity stops the asset's downstream.
    #[default]
    Error,
    /// Worth a look; never blocks.
    Warn,
}

impl CheckSeverity {
    /// `error` or `warn`: the stored and printed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckSeverity::Error => "error",
            CheckSeverity::Warn => "warn",
        }
    }

    /// Reads a stored severity.
    pub fn parse(text: &str) -> Option<CheckSeverity> {
        match text {
            "error" => Some(CheckSeverity::Error),
            "warn" => Some(CheckSeverity::Warn),
            _ => None,
        }
    }
}

impl std::fmt::Display for CheckSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check found: passed or not, with a description and metadata. A failed result has
/// the check's declared severity unless it sets its own.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct CheckResult {
    passed: bool,
    severity: Option<CheckSeverity>,
    description: Option<String>,
    metadata: Vec<(String, MetadataValue)>,
}

impl CheckResult {
    /// Passed if `passed`.
    pub fn new(passed: bool) -> Self {
        CheckResult {
            passed,
            severity: None,
            description: None,
            metadata: Vec::new(),
        }
    }

    /// Passed.
    pub fn passed() -> Self {
        Self::new(true)
    }

    /// Failed, saying why.
    pub fn failed(why: impl Into<String>) -> Self {
        Self::new(false).description(why)
    }

    /// A description for people (what was found).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Metadata recorded with the result (`bad_rows = 3`).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// This result's severity, instead of the check's declared one.
    pub fn severity(mut self, severity: CheckSeverity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// Whether it passed.
    pub fn is_passed(&self) -> bool {
        self.passed
    }

    /// Its own severity, if it set one.
    pub fn severity_override(&self) -> Option<CheckSeverity> {
        self.severity
    }

    /// Its description.
    pub fn description_text(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Its metadata, in the order added.
    pub fn metadata_entries(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }

    /// Takes its metadata.
    pub fn into_metadata(self) -> Vec<(String, MetadataValue)> {
        self.metadata
    }
}

/// What `#[asset_check]` registers. Not public API: read a check through [`CheckDef`].
#[doc(hidden)]
#[derive(Debug)]
pub struct CheckParts {
    /// The check's name (the function's).
    pub name: &'static str,
    /// The asset it checks.
    pub asset: StaticKey,
    /// Where it is defined.
    pub location: SourceLocation,
    /// `description = ".."` or the doc comment.
    pub description: Option<&'static str>,
    /// `blocking = true`.
    pub blocking: bool,
    /// `severity = warn`; error by default.
    pub severity: CheckSeverity,
    /// Calls the function on the asset's value (of the asset's output type).
    pub run: fn(&Value) -> Result<CheckResult, BoxError>,
}

/// One registered asset check.
#[derive(Debug)]
pub struct CheckDef {
    parts: CheckParts,
}

inventory::collect!(CheckDef);

impl CheckDef {
    /// What the macro generates.
    #[doc(hidden)]
    pub const fn from_parts(parts: CheckParts) -> CheckDef {
        CheckDef { parts }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// The asset it checks.
    pub fn asset(&self) -> &StaticKey {
        &self.parts.asset
    }

    /// Where it is defined.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }

    /// Its description.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// Whether a failure with error severity skips the asset's downstream.
    pub fn blocking(&self) -> bool {
        self.parts.blocking
    }

    /// The severity of its failures (unless a result sets its own).
    pub fn severity(&self) -> CheckSeverity {
        self.parts.severity
    }

    /// Runs it on the asset's value.
    pub fn run(&self, value: &Value) -> Result<CheckResult, BoxError> {
        (self.parts.run)(value)
    }
}

/// Every check registered with `#[asset_check]` in this binary.
pub fn registered_checks() -> impl Iterator<Item = &'static CheckDef> {
    inventory::iter::<CheckDef>.into_iter()
}

/// For the generated code: the asset's value as the check's parameter type.
#[doc(hidden)]
pub fn downcast<'v, T: 'static>(value: &'v Value, check: &str) -> Result<&'v T, BoxError> {
    value.downcast_ref::<T>().ok_or_else(|| {
        format!("check `{check}` was given a value of another type than its asset's output").into()
    })
}
