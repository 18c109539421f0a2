//! Asset keys: slash-separated paths such as `sources/api_users_raw`.

use std::fmt;
use std::str::FromStr;

/// The compile-time form of an [`AssetKey`]: the path segments as static strings.
///
/// The `#[asset]` macro emits one per asset (`key_prefix` segments followed by the function
/// name), so registration stays const data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StaticKey {
    /// The path segments, outermost first.
    pub path: &'static [&'static str],
}

impl StaticKey {
    /// The owned key.
    pub fn to_key(&self) -> AssetKey {
        AssetKey(self.path.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// The identity of an asset: a non-empty path of segments, written `prefix/name`.
///
/// Segments contain only ASCII letters, digits, `_`, `-` and `.` (but are never `.` or `..`),
/// so a key is always safe to use as a file path, a URL segment or a metric label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetKey(Vec<String>);

/// Why a string is not a valid [`AssetKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key has no segments at all.
    #[error("an asset key cannot be empty")]
    Empty,
    /// A segment between two slashes is empty, e.g. `a//b`.
    #[error("asset key `{key}` has an empty segment")]
    EmptySegment {
        /// The whole key as written.
        key: String,
    },
    /// A segment uses a character outside `[A-Za-z0-9_.-]`, or is `.`/`..`.
    #[error(
        "asset key `{key}` has an invalid segment `{segment}`: use only ASCII letters, digits, `_`, `-` and `.` (and not `.` or `..` alone)"
    )]
    BadSegment {
        /// The whole key as written.
        key: String,
        /// The offending segment.
        segment: String,
    },
}

/// Whether `segment` may appear in an asset key.
pub fn is_valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl AssetKey {
    /// Builds a key from segments, validating each one.
    pub fn new<I, S>(segments: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let path: Vec<String> = segments.into_iter().map(Into::into).collect();
        if path.is_empty() {
            return Err(KeyError::Empty);
        }
        let key = path.join("/");
        for segment in &path {
            if segment.is_empty() {
                return Err(KeyError::EmptySegment { key });
            }
            if !is_valid_segment(segment) {
                return Err(KeyError::BadSegment {
                    key,
                    segment: segment.clone(),
                });
            }
        }
        Ok(AssetKey(path))
    }

    /// The path segments, outermost first.
    pub fn path(&self) -> &[String] {
        &self.0
    }

    /// The last segment: the asset's own name (usually its function name).
    pub fn name(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or_default()
    }
}

impl FromStr for AssetKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        AssetKey::new(s.split('/'))
    }
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

impl serde::Serialize for AssetKey {
    /// As written: `prefix/name`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AssetKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for AssetKey {
    fn eq(&self, other: &str) -> bool {
        let mut parts = other.split('/');
        self.0.iter().all(|s| parts.next() == Some(s.as_str())) && parts.next().is_none()
    }
}

impl PartialEq<&str> for AssetKey {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_paths() {
        let key: AssetKey = "sources/api_users_raw".parse().unwrap();
        assert_eq!(key.path(), ["sources", "api_users_raw"]);
        assert_eq!(key.name(), "api_users_raw");
        assert_eq!(key.to_string(), "sources/api_users_raw");
        assert_eq!(key, "sources/api_users_raw");
        assert_ne!(key, "sources");
    }

    #[test]
    fn rejects_unsafe_keys() {
        assert_eq!("".parse::<AssetKey>(), Err(KeyError::Empty));
        assert!(matches!(
            "a//b".parse::<AssetKey>(),
            Err(KeyError::EmptySegment { .. })
        ));
        for bad in ["../etc", "a/..", "a b", "a\0b", "a\\b", "."] {
            let err = bad.parse::<AssetKey>().unwrap_err();
            assert!(matches!(err, KeyError::BadSegment { .. }), "{bad}: {err}");
        }
        assert!("v1.2/x-y_z".parse::<AssetKey>().is_ok());
    }

    #[test]
    fn static_key_converts() {
        const K: StaticKey = StaticKey {
            path: &["p", "name"],
        };
        assert_eq!(K.to_key().to_string(), "p/name");
    }
}
