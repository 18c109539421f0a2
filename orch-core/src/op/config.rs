//! Run config for op jobs: one table per op (`[ops.fetch_data] limit = 100`), read from TOML
//! or JSON, checked against every op's config type before anything runs, and handed to each
//! op's `#[config]` parameter.

use std::fmt;

use serde::de::DeserializeOwned;

/// A run's config: `{"ops": {"<op>": {...}}}`, as written in `run.toml` or `run.json`.
///
/// ```
/// use orch_core::op::RunConfig;
/// let config = RunConfig::from_toml("[ops.fetch_data]\nlimit = 100\n").unwrap();
/// assert_eq!(config.op("fetch_data").unwrap()["limit"], 100);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    root: serde_json::Map<String, serde_json::Value>,
}

/// Why a run's config is not usable: the file does not parse, it has a key orch does not know,
/// or an op's table does not fit the op's config type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML or JSON, or not a table.
    #[error("the run config does not parse: {0}")]
    Parse(String),
    /// A top-level key other than `ops`.
    #[error(
        "the run config has a top-level `{key}`: the config of an op job is one table per op, under `ops` (`[ops.fetch_data]`)"
    )]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A table under `ops` for an op the job does not have.
    #[error("the run config has a table for op `{op}`, which job `{job}` does not have{hint}")]
    UnknownOp {
        /// The job.
        job: String,
        /// The op named in the config.
        op: String,
        /// ` (did you mean ..?)`, or empty.
        hint: String,
    },
    /// An op's table does not deserialize into its config type.
    #[error(
        "the config of op `{op}` is invalid{}: {message}",
        if path == "." { format!(" (in `[ops.{op}]`)") } else { format!(" at `{path}`") }
    )]
    Invalid {
        /// The op (its node name in the job).
        op: String,
        /// Where in the op's table (`limit`, `source.url`, `.` for the table itself).
        path: String,
        /// What serde said.
        message: String,
    },
}

impl RunConfig {
    /// No config: every op reads an empty table (so config types with defaults still work).
    pub fn empty() -> Self {
        RunConfig::default()
    }

    /// Reads TOML (`[ops.fetch_data]` tables).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            toml_to_json(text).map_err(|e| ConfigError::Parse(e.trim().to_owned()))?;
        Self::from_value(value)
    }

    /// Reads JSON (`{"ops": {"fetch_data": {...}}}`).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_value(value)
    }

    /// Reads `text` as JSON if it starts with `{`, as TOML otherwise.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.trim_start().starts_with('{') {
            true => Self::from_json(text),
            false => Self::from_toml(text),
        }
    }

    /// From a JSON value (an object with an `ops` object).
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        let serde_json::Value::Object(root) = value else {
            return Err(ConfigError::Parse(
                "the run config must be a table".to_owned(),
            ));
        };
        if let Some(key) = root.keys().find(|k| *k != "ops") {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        match root.get("ops") {
            None | Some(serde_json::Value::Object(_)) => Ok(RunConfig { root }),
            Some(_) => Err(ConfigError::Parse(
                "`ops` must be a table of tables, one per op".to_owned(),
            )),
        }
    }

    /// Sets op `op`'s table (for tests and programs that build config in code).
    pub fn with_op(mut self, op: &str, table: serde_json::Value) -> Self {
        let ops = self
            .root
            .entry("ops")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(ops) = ops {
            ops.insert(op.to_owned(), table);
        }
        self
    }

    /// Op `op`'s table, if the config has one.
    pub fn op(&self, op: &str) -> Option<&serde_json::Value> {
        self.ops()?.get(op)
    }

    /// Every op named in the config.
    pub fn op_names(&self) -> impl Iterator<Item = &str> {
        self.ops()
            .into_iter()
            .flat_map(|ops| ops.keys().map(String::as_str))
    }

    fn ops(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match self.root.get("ops") {
            Some(serde_json::Value::Object(ops)) => Some(ops),
            _ => None,
        }
    }

    /// Whether the config says nothing.
    pub fn is_empty(&self) -> bool {
        self.ops().is_none_or(serde_json::Map::is_empty)
    }

    /// The config as JSON (how the run store keeps it).
    pub fn to_json(&self) -> String {
        serde_json::Value::Object(self.root.clone()).to_string()
    }

    /// Op `op`'s config as `T`: its table, or an empty table when the config has none (so a
    /// type whose fields all have defaults needs no config). Errors name the field.
    pub fn op_config<T: DeserializeOwned>(&self, op: &str) -> Result<T, ConfigError> {
        static EMPTY: std::sync::LazyLock<serde_json::Value> =
            std::sync::LazyLock::new(|| serde_json::Value::Object(Default::default()));
        deserialize(op, self.op(op).unwrap_or(&EMPTY))
    }
}

impl fmt::Display for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// Deserializes `value` as `T`, with the path of the first field that does not fit.
pub(crate) fn deserialize<T: DeserializeOwned>(
    op: &str,
    value: &serde_json::Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e: serde_path_to_error::Error<_>| {
        let path = e.path().to_string();
        ConfigError::Invalid {
            op: op.to_owned(),
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// TOML text as a JSON value (TOML datetimes become strings).
fn toml_to_json(text: &str) -> Result<serde_json::Value, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(table).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Fetch {
        limit: u32,
        #[serde(default)]
        source: Source,
    }

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    struct Source {
        #[serde(default)]
        retries: u8,
    }

    #[test]
    fn toml_and_json_read_the_same() {
        let a = RunConfig::parse("[ops.fetch]\nlimit = 3\n").unwrap();
        let b = RunConfig::parse(r#"{"ops": {"fetch": {"limit": 3}}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.op_config::<Fetch>("fetch").unwrap(),
            Fetch {
                limit: 3,
                source: Source::default()
            }
        );
    }

    #[test]
    fn errors_name_the_op_and_the_field() {
        let config = RunConfig::parse("[ops.fetch]\nlimit = \"many\"\n").unwrap();
        let e = config.op_config::<Fetch>("fetch").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { path, .. } if path == "limit"),
            "{e}"
        );
        let config = RunConfig::parse("[ops.fetch]\nlimit = 1\nsource = { retries = -1 }").unwrap();
        let e = config.op_config::<Fetch>("fetch").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the config of op `fetch` is invalid at `source.retries`"),
            "{e}"
        );
        // A missing table reads as empty, so a required field is reported, not a panic.
        let e = RunConfig::empty().op_config::<Fetch>("fetch").unwrap_err();
        assert!(e.to_string().contains("missing field `limit`"), "{e}");
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(matches!(
            RunConfig::parse("limit = 3"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(matches!(
            RunConfig::parse("[ops\n"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            RunConfig::parse("ops = 3"),
            Err(ConfigError::Parse(_))
        ));
    }
}
