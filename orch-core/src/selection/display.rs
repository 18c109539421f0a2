//! Writing a selection back in the string syntax, with only the parentheses it needs.

use std::fmt::{self, Write};

use super::AssetSelection;
use super::parse::{is_bare_key, is_bare_value};

/// Binding strength, loosest first: an operand printed where `min` is required gets
/// parentheses if its own precedence is lower.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Or,
    And,
    Not,
    /// `+x`, `x+`.
    Plus,
    /// What `+` applies to without parentheses.
    Primary,
}

impl fmt::Display for AssetSelection {
    /// The selection in the [string syntax](super); parsing it gives an equivalent selection.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write(self, Prec::Or, f)
    }
}

fn prec(s: &AssetSelection) -> Prec {
    match s {
        AssetSelection::Keys(items) if items.len() == 1 => Prec::Primary,
        AssetSelection::Groups(items) if items.len() == 1 => Prec::Primary,
        // Nothing to select is written `not *`.
        AssetSelection::Keys(items) if items.is_empty() => Prec::Not,
        AssetSelection::Groups(items) if items.is_empty() => Prec::Not,
        AssetSelection::Keys(_) | AssetSelection::Groups(_) | AssetSelection::Union(..) => Prec::Or,
        AssetSelection::Intersection(..) => Prec::And,
        AssetSelection::Difference(a, _) if **a == AssetSelection::All => Prec::Not,
        AssetSelection::Difference(..) => Prec::And,
        AssetSelection::Upstream { .. } | AssetSelection::Downstream { .. } => Prec::Plus,
        AssetSelection::All
        | AssetSelection::Tag { .. }
        | AssetSelection::Roots(_)
        | AssetSelection::Sinks(_) => Prec::Primary,
    }
}

fn write(s: &AssetSelection, min: Prec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if prec(s) < min {
        f.write_char('(')?;
        write(s, Prec::Or, f)?;
        return f.write_char(')');
    }
    match s {
        AssetSelection::All => f.write_char('*'),
        AssetSelection::Keys(keys) if keys.is_empty() => f.write_str("not *"),
        AssetSelection::Keys(keys) => {
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    f.write_str(" or ")?;
                }
                let key = key.to_string();
                if !is_bare_key(&key) {
                    f.write_str("key:")?;
                }
                f.write_str(&key)?;
            }
            Ok(())
        }
        AssetSelection::Groups(groups) if groups.is_empty() => f.write_str("not *"),
        AssetSelection::Groups(groups) => {
            for (i, group) in groups.iter().enumerate() {
                if i > 0 {
                    f.write_str(" or ")?;
                }
                f.write_str("group:")?;
                write_value(group, f)?;
            }
            Ok(())
        }
        AssetSelection::Tag { key, value } => {
            f.write_str("tag:")?;
            write_value(key, f)?;
            if let Some(value) = value {
                f.write_char('=')?;
                write_value(value, f)?;
            }
            Ok(())
        }
        AssetSelection::Upstream { of, depth } => {
            write_depth(*depth, f)?;
            f.write_char('+')?;
            write(of, Prec::Primary, f)
        }
        AssetSelection::Downstream { of, depth } => {
            write(of, Prec::Primary, f)?;
            f.write_char('+')?;
            write_depth(*depth, f)
        }
        AssetSelection::Roots(inner) => write_call("roots", inner, f),
        AssetSelection::Sinks(inner) => write_call("sinks", inner, f),
        AssetSelection::Union(a, b) => match (&**a, &**b) {
            // `+x+` is the union of `+x` and `x+`.
            (
                AssetSelection::Upstream { of: up, depth: d1 },
                AssetSelection::Downstream {
                    of: down,
                    depth: d2,
                },
            ) if up == down => {
                write_depth(*d1, f)?;
                f.write_char('+')?;
                write(up, Prec::Primary, f)?;
                f.write_char('+')?;
                write_depth(*d2, f)
            }
            _ => {
                write(a, Prec::Or, f)?;
                f.write_str(" or ")?;
                write(b, Prec::Or, f)
            }
        },
        AssetSelection::Intersection(a, b) => {
            write(a, Prec::And, f)?;
            f.write_str(" and ")?;
            write(b, Prec::And, f)
        }
        AssetSelection::Difference(a, b) => {
            if **a != AssetSelection::All {
                write(a, Prec::And, f)?;
                f.write_str(" and ")?;
            }
            f.write_str("not ")?;
            write(b, Prec::Not, f)
        }
    }
}

fn write_depth(depth: Option<u32>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match depth {
        Some(depth) => write!(f, "{depth}"),
        None => Ok(()),
    }
}

fn write_call(name: &str, inner: &AssetSelection, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(name)?;
    f.write_char('(')?;
    write(inner, Prec::Or, f)?;
    f.write_char(')')
}

/// A group, tag key or tag value: bare if it is one word, else quoted.
fn write_value(value: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if is_bare_value(value) {
        return f.write_str(value);
    }
    f.write_char('"')?;
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::graph;
    use super::*;

    fn k(key: &str) -> AssetSelection {
        AssetSelection::keys([key]).unwrap()
    }

    #[test]
    fn writes_the_syntax_with_needed_parentheses_only() {
        let cases: Vec<(AssetSelection, &str)> = vec![
            (AssetSelection::all(), "*"),
            (k("raw/users"), "raw/users"),
            (k("and"), "key:and"),
            (k("2024"), "key:2024"),
            (AssetSelection::keys(["a", "b"]).unwrap(), "a or b"),
            (AssetSelection::Keys(vec![]), "not *"),
            (AssetSelection::groups(["my group"]), "group:\"my group\""),
            (
                AssetSelection::tag("owner", "team:\"d\""),
                r#"tag:owner="team:\"d\"""#,
            ),
            (AssetSelection::tag_key("pii"), "tag:pii"),
            (k("x").upstream_depth(2), "2+x"),
            (k("x").downstream(), "x+"),
            (k("x").upstream() | k("x").downstream_depth(1), "+x+1"),
            (k("x").upstream() | k("y").downstream(), "+x or y+"),
            (k("x").downstream().upstream(), "+(x+)"),
            (k("x").upstream().upstream(), "+(+x)"),
            ((k("a") | k("b")).upstream(), "+(a or b)"),
            (
                AssetSelection::keys(["a", "b"]).unwrap().downstream(),
                "(a or b)+",
            ),
            (
                AssetSelection::groups(["g"]).roots().downstream(),
                "roots(group:g)+",
            ),
            ((k("a") | k("b")) & k("c"), "(a or b) and c"),
            (k("a") | (k("b") & k("c")), "a or b and c"),
            (AssetSelection::all() - k("a"), "not a"),
            (k("a") - (k("b") | k("c")), "a and not (b or c)"),
            (k("a") - (k("b") & k("c")), "a and not (b and c)"),
            (k("a") - (AssetSelection::all() - k("b")), "a and not not b"),
            ((k("a") - k("b")) & k("c"), "a and not b and c"),
            (AssetSelection::all() - k("b").upstream(), "not +b"),
            (AssetSelection::all().sinks() & k("a"), "sinks(*) and a"),
        ];
        for (selection, text) in cases {
            assert_eq!(selection.to_string(), text, "{selection:?}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        let g = graph();
        let builtins = [
            AssetSelection::all(),
            k("users") | AssetSelection::groups(["marts"]),
            (k("report").upstream_depth(1) | k("report").downstream())
                - AssetSelection::tag_key("pii"),
            AssetSelection::all().roots() & AssetSelection::tag("tier", "bronze"),
            (AssetSelection::groups(["staging", "marts"]).sinks() | k("events")).upstream(),
            AssetSelection::all() - (AssetSelection::all() - k("raw/orders").downstream_depth(2)),
            AssetSelection::Keys(vec![]) | k("events").downstream(),
        ];
        let texts = [
            "+report+ and not tag:tier=gold",
            "not group:raw and not group:marts or events",
            "roots(group:staging or group:marts)+1",
            "sinks(+users_cleaned) or (report_view and *)",
            "1+(report and not tag:pii) or key:\"raw/users\"",
        ];
        let parsed = texts.iter().map(|t| t.parse::<AssetSelection>().unwrap());
        for selection in builtins.into_iter().chain(parsed) {
            let text = selection.to_string();
            let reparsed: AssetSelection = text
                .parse()
                .unwrap_or_else(|e| panic!("{selection:?} displays as `{text}`: {e}"));
            assert_eq!(
                reparsed.resolve(&g).unwrap(),
                selection.resolve(&g).unwrap(),
                "`{text}`"
            );
            // A parsed selection is in canonical form: it displays and parses back to itself.
            let again: AssetSelection = reparsed.to_string().parse().unwrap();
            assert_eq!(again, reparsed, "`{text}`");
        }
    }
}
