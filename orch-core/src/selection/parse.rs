//! The selection syntax: a lexer and a recursive-descent parser (grammar below; the user
//! documentation is on the [module](super)).
//!
//! ```text
//! or      = and ("or" and)*
//! and     = not ("and" not)*
//! not     = "not" not | unary
//! unary   = [DIGITS] "+" primary ["+" [DIGITS]] | primary ["+" [DIGITS]]
//! primary = "*" | "(" or ")" | FUNCTION "(" or ")" | ATTR ":" value ["=" value] | value
//! value   = WORD | "quoted string"
//! ```
//!
//! Chains of `or` and `and` are built as balanced trees of their flattened operands, with keys
//! and groups merged, and `x and not y` becomes a difference. That keeps trees shallow, and
//! makes parsing the [`Display`](std::fmt::Display) of a parsed selection give it back.

use std::str::FromStr;

use super::lex::{Kind, Token, is_word_byte, lex, syntax_error};
use super::{AssetSelection, SelectionError};
use crate::key::AssetKey;

/// Parentheses, functions and `not`s may nest this deep; more is surely a generated mistake,
/// and the limit keeps the parser's recursion (and the tree's) far from the stack's end.
const MAX_NESTING: usize = 64;

/// What a primary may start with, for "expected ..." messages.
const EXPECTED_PRIMARY: &str = "an asset key, `group:`, `tag:`, `*`, `(` or `not`";

impl FromStr for AssetSelection {
    type Err = SelectionError;

    /// Parses the [selection syntax](super).
    fn from_str(input: &str) -> Result<Self, SelectionError> {
        let tokens = lex(input)?;
        let mut parser = Parser {
            input,
            tokens,
            next: 0,
            nesting: 0,
        };
        if parser.peek().kind == Kind::End {
            return Err(parser.error_at(0, "the selection is empty; write `*` for every asset"));
        }
        let selection = parser.or()?;
        let token = parser.peek();
        match &token.kind {
            Kind::End => Ok(selection),
            Kind::RParen => Err(parser.error_at(token.start, "this `)` has no matching `(`")),
            _ => {
                let hint = match parser.text(token) {
                    "-" => "; write `and not` for a difference",
                    _ => "",
                };
                Err(parser.error_at(
                    token.start,
                    format!(
                        "expected `and`, `or` or the end, found {}{hint}",
                        parser.describe(token)
                    ),
                ))
            }
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    /// Always ends with [`Kind::End`].
    tokens: Vec<Token>,
    next: usize,
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.next + ahead).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &str {
        &self.input[token.start..token.end]
    }

    fn describe(&self, token: &Token) -> String {
        match token.kind {
            Kind::End => "the end".to_owned(),
            _ => format!("`{}`", self.text(token)),
        }
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> SelectionError {
        syntax_error(self.input, position, message)
    }

    /// "expected `what`, found ..." at the next token.
    fn expected(&self, what: &str) -> SelectionError {
        let token = self.peek();
        let message = match token.kind {
            Kind::End => format!("expected {what} at the end"),
            _ => format!("expected {what}, found {}", self.describe(token)),
        };
        self.error_at(token.start, message)
    }

    /// Whether the next token is the keyword `keyword` (any case).
    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().kind, Kind::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn enter(&mut self, at: usize) -> Result<(), SelectionError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_at(
                at,
                format!("the selection nests more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    fn or(&mut self) -> Result<AssetSelection, SelectionError> {
        let mut operands = vec![self.and()?];
        while self.at_keyword("or") {
            self.bump();
            operands.push(self.and()?);
        }
        Ok(match operands.len() {
            1 => operands.pop().unwrap_or(AssetSelection::All),
            _ => union_of(operands),
        })
    }

    fn and(&mut self) -> Result<AssetSelection, SelectionError> {
        let mut operands = vec![self.not()?];
        while self.at_keyword("and") {
            self.bump();
            operands.push(self.not()?);
        }
        Ok(match operands.len() {
            1 => operands.pop().unwrap_or(AssetSelection::All),
            _ => intersection_of(operands),
        })
    }

    fn not(&mut self) -> Result<AssetSelection, SelectionError> {
        if !self.at_keyword("not") {
            return self.unary();
        }
        let token = self.bump();
        self.enter(token.start)?;
        let inner = self.not()?;
        self.leave();
        Ok(AssetSelection::All - inner)
    }

    /// A primary with its `+` modifiers. `+x+` is the union of `+x` and `x+` (not the
    /// upstream of the downstream).
    fn unary(&mut self) -> Result<AssetSelection, SelectionError> {
        let up = if let Some(depth) = self.depth_before_plus()? {
            self.bump();
            self.bump();
            Some(Some(depth))
        } else if self.peek().kind == Kind::Plus {
            self.bump();
            Some(None)
        } else {
            None
        };
        let primary = self.primary()?;
        let down = if self.peek().kind == Kind::Plus {
            let plus = self.bump();
            let depth = self.depth_token(plus.end)?;
            if depth.is_some() {
                self.bump();
            }
            Some(depth)
        } else {
            None
        };
        Ok(match (up, down) {
            (None, None) => primary,
            (Some(up), None) => upstream(primary, up),
            (None, Some(down)) => downstream(primary, down),
            (Some(up), Some(down)) => upstream(primary.clone(), up) | downstream(primary, down),
        })
    }

    /// The depth of `2+x`: a number touching the `+` after it.
    fn depth_before_plus(&self) -> Result<Option<u32>, SelectionError> {
        let (token, plus) = (self.peek(), self.peek_at(1));
        if plus.kind == Kind::Plus && plus.start == token.end {
            self.depth_token(token.start)
        } else {
            Ok(None)
        }
    }

    /// The next token as a depth, if it is a number starting at `at`.
    fn depth_token(&self, at: usize) -> Result<Option<u32>, SelectionError> {
        let token = self.peek();
        match &token.kind {
            Kind::Word(w) if token.start == at && w.bytes().all(|b| b.is_ascii_digit()) => w
                .parse::<u32>()
                .map(Some)
                .map_err(|_| self.error_at(token.start, format!("the depth `{w}` is too large"))),
            _ => Ok(None),
        }
    }

    fn primary(&mut self) -> Result<AssetSelection, SelectionError> {
        let token = self.peek().clone();
        match &token.kind {
            Kind::Star => {
                self.bump();
                Ok(AssetSelection::All)
            }
            Kind::LParen => {
                self.bump();
                self.parenthesised(token.start)
            }
            Kind::Word(word) if self.peek_at(1).kind == Kind::Colon => {
                self.bump();
                self.bump();
                self.attribute(word, &token)
            }
            Kind::Word(word) if self.peek_at(1).kind == Kind::LParen && is_function(word) => {
                self.bump();
                self.bump();
                let inner = self.parenthesised(token.start)?;
                Ok(match word.to_ascii_lowercase().as_str() {
                    "roots" => inner.roots(),
                    "sinks" => inner.sinks(),
                    "upstream" => inner.upstream(),
                    _ => inner.downstream(),
                })
            }
            Kind::Word(word) if is_keyword(word) => Err(self.error_at(
                token.start,
                format!(
                    "expected {EXPECTED_PRIMARY}, found `{word}` (write `key:{word}` for an asset with that key)"
                ),
            )),
            Kind::Word(_) | Kind::Quoted(_) => self.key(),
            _ => Err(self.expected(EXPECTED_PRIMARY)),
        }
    }

    /// The rest of `(expr)` or `function(expr)`, after the `(`.
    fn parenthesised(&mut self, open: usize) -> Result<AssetSelection, SelectionError> {
        self.enter(open)?;
        let inner = self.or()?;
        if self.peek().kind != Kind::RParen {
            return Err(self.expected("`)`"));
        }
        self.bump();
        self.leave();
        Ok(inner)
    }

    /// The rest of `key:...`, `group:...` or `tag:...`, after the `:`.
    fn attribute(&mut self, name: &str, token: &Token) -> Result<AssetSelection, SelectionError> {
        match name.to_ascii_lowercase().as_str() {
            "key" => self.key(),
            "group" => Ok(AssetSelection::Groups(vec![self.value("a group name")?])),
            "tag" => {
                let key = self.value("a tag key")?;
                let value = if self.peek().kind == Kind::Equals {
                    self.bump();
                    Some(self.value("a tag value")?)
                } else {
                    None
                };
                Ok(AssetSelection::Tag { key, value })
            }
            _ => Err(self.error_at(
                token.start,
                format!(
                    "unknown attribute `{name}:`; the attributes are `key:`, `group:` and `tag:`"
                ),
            )),
        }
    }

    fn value(&mut self, what: &str) -> Result<String, SelectionError> {
        match &self.peek().kind {
            Kind::Word(s) | Kind::Quoted(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn key(&mut self) -> Result<AssetSelection, SelectionError> {
        let start = self.peek().start;
        let text = self.value("an asset key")?;
        text.parse::<AssetKey>()
            .map(AssetSelection::from)
            .map_err(|e| self.error_at(start, e.to_string()))
    }
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

fn is_function(word: &str) -> bool {
    ["roots", "sinks", "upstream", "downstream"]
        .iter()
        .any(|f| word.eq_ignore_ascii_case(f))
}

/// Whether `key` can be written bare, without `key:`.
pub(super) fn is_bare_key(key: &str) -> bool {
    !is_keyword(key) && !key.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `value` can be written without quotes after `group:`, `tag:` or `=`.
pub(super) fn is_bare_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(is_word_byte)
}

fn upstream(of: AssetSelection, depth: Option<u32>) -> AssetSelection {
    AssetSelection::Upstream {
        of: Box::new(of),
        depth,
    }
}

fn downstream(of: AssetSelection, depth: Option<u32>) -> AssetSelection {
    AssetSelection::Downstream {
        of: Box::new(of),
        depth,
    }
}

/// `a or b or ...`: flattened, keys and groups merged (at the first one's position), balanced.
fn union_of(operands: Vec<AssetSelection>) -> AssetSelection {
    fn flatten(s: AssetSelection, out: &mut Vec<AssetSelection>) {
        match s {
            AssetSelection::Union(a, b) => {
                flatten(*a, out);
                flatten(*b, out);
            }
            AssetSelection::Keys(keys) => match out.iter_mut().find_map(|o| match o {
                AssetSelection::Keys(k) => Some(k),
                _ => None,
            }) {
                Some(merged) => merged.extend(keys),
                None => out.push(AssetSelection::Keys(keys)),
            },
            AssetSelection::Groups(groups) => match out.iter_mut().find_map(|o| match o {
                AssetSelection::Groups(g) => Some(g),
                _ => None,
            }) {
                Some(merged) => merged.extend(groups),
                None => out.push(AssetSelection::Groups(groups)),
            },
            other => out.push(other),
        }
    }
    let mut flat = Vec::with_capacity(operands.len());
    for operand in operands {
        flatten(operand, &mut flat);
    }
    balanced(flat, AssetSelection::union)
}

/// `a and b and not c ...`: the positive operands flattened and balanced, minus the union of
/// the negated ones.
fn intersection_of(operands: Vec<AssetSelection>) -> AssetSelection {
    fn flatten(
        s: AssetSelection,
        positive: &mut Vec<AssetSelection>,
        negative: &mut Vec<AssetSelection>,
    ) {
        match s {
            AssetSelection::Intersection(a, b) => {
                flatten(*a, positive, negative);
                flatten(*b, positive, negative);
            }
            // (a - n) ∩ rest = (a ∩ rest) - n; `not n` is `* - n`, and `*` adds nothing.
            AssetSelection::Difference(a, n) => {
                if *a != AssetSelection::All {
                    flatten(*a, positive, negative);
                }
                negative.push(*n);
            }
            AssetSelection::All => {}
            other => positive.push(other),
        }
    }
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    for operand in operands {
        flatten(operand, &mut positive, &mut negative);
    }
    let positive = match positive.is_empty() {
        true => AssetSelection::All,
        false => balanced(positive, AssetSelection::intersect),
    };
    match negative.is_empty() {
        true => positive,
        false => positive - union_of(negative),
    }
}

/// Combines non-empty `items` with an associative `op` into a tree of logarithmic depth.
fn balanced(
    mut items: Vec<AssetSelection>,
    op: fn(AssetSelection, AssetSelection) -> AssetSelection,
) -> AssetSelection {
    if items.len() <= 1 {
        return items.pop().unwrap_or(AssetSelection::All);
    }
    let right = items.split_off(items.len() / 2);
    op(balanced(items, op), balanced(right, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> AssetSelection {
        s.parse()
            .unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    fn keys(k: &[&str]) -> AssetSelection {
        AssetSelection::keys(k).unwrap()
    }

    /// The position and message of a syntax error.
    fn error(s: &str) -> (usize, String) {
        match s.parse::<AssetSelection>() {
            Err(SelectionError::Syntax {
                input,
                position,
                message,
            }) => {
                assert_eq!(input, s);
                (position, message)
            }
            other => panic!("`{s}` should be a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn primaries() {
        assert_eq!(parse("*"), AssetSelection::All);
        assert_eq!(parse("users"), keys(&["users"]));
        assert_eq!(parse("key:users"), keys(&["users"]));
        assert_eq!(parse("raw/users"), keys(&["raw/users"]));
        assert_eq!(parse("KEY:raw/users"), keys(&["raw/users"]));
        assert_eq!(parse("key:\"raw/users\""), keys(&["raw/users"]));
        assert_eq!(parse("\"raw/users\""), keys(&["raw/users"]));
        assert_eq!(parse("key:v1.2/x-y_z"), keys(&["v1.2/x-y_z"]));
        assert_eq!(parse("key:and"), keys(&["and"]));
        assert_eq!(parse("2024"), keys(&["2024"]));
        assert_eq!(parse("group:sources"), AssetSelection::groups(["sources"]));
        assert_eq!(
            parse("group:\"my group\""),
            AssetSelection::groups(["my group"])
        );
        assert_eq!(parse("tag:tier=gold"), AssetSelection::tag("tier", "gold"));
        assert_eq!(parse("tag:pii"), AssetSelection::tag_key("pii"));
        assert_eq!(
            parse(r#"tag:owner="team:data \"x\"""#),
            AssetSelection::tag("owner", "team:data \"x\"")
        );
        assert_eq!(parse("  ( users )  "), keys(&["users"]));
        // Function names are keys unless they are called.
        assert_eq!(parse("roots"), keys(&["roots"]));
    }

    #[test]
    fn plus_modifiers() {
        let x = || keys(&["x"]);
        assert_eq!(parse("+x"), x().upstream());
        assert_eq!(parse("x+"), x().downstream());
        assert_eq!(parse("2+x"), x().upstream_depth(2));
        assert_eq!(parse("x+3"), x().downstream_depth(3));
        assert_eq!(parse("0+x"), x().upstream_depth(0));
        assert_eq!(parse("+x+"), x().upstream() | x().downstream());
        assert_eq!(
            parse("1+x+2"),
            x().upstream_depth(1) | x().downstream_depth(2)
        );
        assert_eq!(parse("+ x"), x().upstream());
        assert_eq!(
            parse("+(group:g)"),
            AssetSelection::groups(["g"]).upstream()
        );
        assert_eq!(parse("+roots(x)"), x().roots().upstream());
        assert_eq!(parse("upstream(x)"), x().upstream());
        assert_eq!(parse("DownStream(x)"), x().downstream());
        assert_eq!(parse("sinks(*)"), AssetSelection::all().sinks());
        // A digit word is a depth only when it touches its `+`.
        assert_eq!(parse("+2"), keys(&["2"]).upstream());
        assert_eq!(parse("2_x+"), keys(&["2_x"]).downstream());
        assert_eq!(parse("key:2+1"), keys(&["2"]).downstream_depth(1));
    }

    #[test]
    fn symbols_are_the_words() {
        assert_eq!(parse("a | b & !c"), parse("a or b and not c"));
        assert_eq!(
            parse("group:sources | group:transforms"),
            parse("group:sources or group:transforms")
        );
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let [a, b, c] = [keys(&["a"]), keys(&["b"]), keys(&["c"])];
        assert_eq!(parse("a or b and c"), a.clone() | (b.clone() & c.clone()));
        assert_eq!(parse("a and b or c"), (a.clone() & b.clone()) | c.clone());
        assert_eq!(
            parse("not a or b"),
            (AssetSelection::all() - a.clone()) | b.clone()
        );
        assert_eq!(parse("(a or b) and c"), keys(&["a", "b"]) & c.clone());
        assert_eq!(parse("not a"), AssetSelection::all() - a.clone());
        assert_eq!(
            parse("NOT not a"),
            AssetSelection::all() - (AssetSelection::all() - a.clone())
        );
        assert_eq!(parse("a AND NOT b"), a.clone() - b.clone());
        assert_eq!(
            parse("a and not b and not c"),
            a.clone() - keys(&["b", "c"])
        );
        assert_eq!(
            parse("not b and not c"),
            AssetSelection::all() - keys(&["b", "c"])
        );
        assert_eq!(parse("+a and b"), a.clone().upstream() & b.clone());
        assert_eq!(parse("not +a"), AssetSelection::all() - a.upstream());
    }

    #[test]
    fn chains_merge_keys_and_groups_and_stay_shallow() {
        assert_eq!(parse("a or b or c"), keys(&["a", "b", "c"]));
        assert_eq!(
            parse("group:x or a or group:y or b"),
            AssetSelection::groups(["x", "y"]) | keys(&["a", "b"])
        );
        fn depth(s: &AssetSelection) -> usize {
            match s {
                AssetSelection::Union(a, b)
                | AssetSelection::Intersection(a, b)
                | AssetSelection::Difference(a, b) => 1 + depth(a).max(depth(b)),
                AssetSelection::Upstream { of, .. } | AssetSelection::Downstream { of, .. } => {
                    1 + depth(of)
                }
                AssetSelection::Roots(s) | AssetSelection::Sinks(s) => 1 + depth(s),
                _ => 1,
            }
        }
        let long: Vec<String> = (0..1000).map(|i| format!("tag:t{i}")).collect();
        assert!(depth(&parse(&long.join(" or "))) <= 11);
        assert!(depth(&parse(&long.join(" and "))) <= 11);
        let keys_only: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        assert!(matches!(
            parse(&keys_only.join(" or ")),
            AssetSelection::Keys(k) if k.len() == 1000
        ));
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "the selection is empty; write `*` for every asset"),
            (
                "   ",
                0,
                "the selection is empty; write `*` for every asset",
            ),
            ("a and (b", 8, "expected `)` at the end"),
            (
                "a and",
                5,
                "expected an asset key, `group:`, `tag:`, `*`, `(` or `not` at the end",
            ),
            (
                "a or or b",
                5,
                "expected an asset key, `group:`, `tag:`, `*`, `(` or `not`, found `or` (write `key:or` for an asset with that key)",
            ),
            ("a b", 2, "expected `and`, `or` or the end, found `b`"),
            (
                "a - b",
                2,
                "expected `and`, `or` or the end, found `-`; write `and not` for a difference",
            ),
            ("a)", 1, "this `)` has no matching `(`"),
            ("~a", 0, "unexpected character `~`; write `not`"),
            (
                "a, b",
                1,
                "unexpected character `,`; write `or` between keys",
            ),
            ("é", 0, "unexpected character `é`"),
            ("key:\"a", 4, "this string has no closing `\"`"),
            (
                "grp:x",
                0,
                "unknown attribute `grp:`; the attributes are `key:`, `group:` and `tag:`",
            ),
            ("group:", 6, "expected a group name at the end"),
            ("tag:=x", 4, "expected a tag key, found `=`"),
            ("tag:k=", 6, "expected a tag value at the end"),
            (
                "key:\"a b\"",
                4,
                "asset key `a b` has an invalid segment `a b`: use only ASCII letters, digits, `_`, `-` and `.` (and not `.` or `..` alone)",
            ),
            ("a//b", 0, "asset key `a//b` has an empty segment"),
            ("99999999999+a", 0, "the depth `99999999999` is too large"),
            (
                "+",
                1,
                "expected an asset key, `group:`, `tag:`, `*`, `(` or `not` at the end",
            ),
            ("x++", 2, "expected `and`, `or` or the end, found `+`"),
            ("2 +x", 3, "expected `and`, `or` or the end, found `x`"),
            (
                "roots()",
                6,
                "expected an asset key, `group:`, `tag:`, `*`, `(` or `not`, found `)`",
            ),
            ("roots(a", 7, "expected `)` at the end"),
        ];
        for (input, position, message) in cases {
            assert_eq!(error(input), (*position, (*message).to_owned()), "{input}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        let (position, message) = error(&deep);
        assert_eq!(position, MAX_NESTING);
        assert_eq!(message, "the selection nests more than 64 levels deep");
        let ok = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse(&ok), keys(&["a"]));
        assert!("not ".repeat(200).parse::<AssetSelection>().is_err());
    }

    #[test]
    fn error_display_has_a_caret() {
        let err = "a and (b".parse::<AssetSelection>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid selection `a and (b`: expected `)` at the end\n  a and (b\n          ^"
        );
    }
}
