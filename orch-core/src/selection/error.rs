//! [`SelectionError`]: why a selection cannot be parsed or resolved against a graph.

use crate::error::did_you_mean;
use crate::key::KeyError;

/// Why a selection string does not parse, or why a selection does not fit the graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// The selection names a key that no asset has.
    #[error("no asset has the key `{key}`{}", did_you_mean(.suggestion))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The closest existing key or name, if any is close.
        suggestion: Option<String>,
    },
    /// A bare name is the last segment of several prefixed keys, and no key is exactly it.
    #[error(
        "`{name}` is ambiguous: it is the name of {}; write the full key{}",
        join_quoted(.candidates),
        example_key(.candidates)
    )]
    AmbiguousKey {
        /// The name as written.
        name: String,
        /// Every key whose last segment is `name` (at least two), sorted.
        candidates: Vec<String>,
    },
    /// The selection names a group that no asset is in.
    #[error("no asset is in the group `{group}`{}", group_hint(.suggestion, .groups))]
    UnknownGroup {
        /// The group as written.
        group: String,
        /// The closest existing group, if any is close.
        suggestion: Option<String>,
        /// Every group in use, sorted.
        groups: Vec<String>,
    },
    /// A key given to [`AssetSelection::keys`](super::AssetSelection::keys) is not a valid
    /// asset key.
    #[error("invalid selection: {source}")]
    InvalidKey {
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// The selection string does not follow the syntax.
    #[error(
        "invalid selection `{input}`: {message}\n  {}\n  {}^",
        one_line(.input),
        " ".repeat(column(.input, *.position))
    )]
    Syntax {
        /// The whole selection string.
        input: String,
        /// The byte offset of the problem in `input` (`input.len()` for the end).
        position: usize,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

/// `, e.g. `key:a/users`` from the first candidate; nothing if (against the variant's
/// promise) there is none, since a message must never panic.
fn example_key(candidates: &[String]) -> String {
    candidates
        .first()
        .map_or_else(String::new, |c| format!(", e.g. `key:{c}`"))
}

fn join_quoted(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|s| format!("`{s}`")).collect();
            format!("{} and `{last}`", init.join(", "))
        }
    }
}

fn group_hint(suggestion: &Option<String>, groups: &[String]) -> String {
    match (suggestion, groups) {
        (Some(_), _) => did_you_mean(suggestion),
        (None, []) => "; the graph has no assets".to_owned(),
        (None, [one]) => format!("; the only group is `{one}`"),
        (None, groups) => format!("; the groups are {}", join_quoted(groups)),
    }
}

/// The input with line breaks and tabs as spaces, so the caret line stays aligned.
fn one_line(input: &str) -> String {
    input
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The column (in characters) of a byte offset.
fn column(input: &str, position: usize) -> usize {
    input.get(..position).map_or(0, |s| s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_points_at_the_position() {
        let err = SelectionError::Syntax {
            input: "a and (b".to_owned(),
            position: 8,
            message: "expected `)` at the end".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "invalid selection `a and (b`: expected `)` at the end\n  a and (b\n          ^"
        );
    }

    #[test]
    fn group_errors_list_groups_when_nothing_is_close() {
        let err = SelectionError::UnknownGroup {
            group: "zzz".to_owned(),
            suggestion: None,
            groups: vec!["marts".to_owned(), "raw".to_owned(), "staging".to_owned()],
        };
        assert_eq!(
            err.to_string(),
            "no asset is in the group `zzz`; the groups are `marts`, `raw` and `staging`"
        );
    }

    #[test]
    fn ambiguous_key_without_candidates_does_not_panic() {
        let err = SelectionError::AmbiguousKey {
            name: "users".to_owned(),
            candidates: Vec::new(),
        };
        assert!(err.to_string().ends_with("write the full key"), "{err}");
    }

    #[test]
    fn ambiguous_key_lists_candidates() {
        let err = SelectionError::AmbiguousKey {
            name: "users".to_owned(),
            candidates: vec!["a/users".to_owned(), "b/users".to_owned()],
        };
        assert_eq!(
            err.to_string(),
            "`users` is ambiguous: it is the name of `a/users` and `b/users`; write the full key, e.g. `key:a/users`"
        );
    }
}
