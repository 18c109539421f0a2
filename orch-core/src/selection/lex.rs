//! The selection syntax's tokens: words, quoted strings and punctuation, with their byte
//! offsets for error messages.

use super::SelectionError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A run of `[A-Za-z0-9_.\-/]`.
    Word(String),
    /// A double-quoted string, unescaped.
    Quoted(String),
    LParen,
    RParen,
    Plus,
    Star,
    Colon,
    Equals,
    End,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    /// Byte offsets in the input.
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')
}

pub(super) fn syntax_error(
    input: &str,
    position: usize,
    message: impl Into<String>,
) -> SelectionError {
    SelectionError::Syntax {
        input: input.to_owned(),
        position,
        message: message.into(),
    }
}

pub(super) fn lex(input: &str) -> Result<Vec<Token>, SelectionError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let kind = match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => Kind::LParen,
            b')' => Kind::RParen,
            b'+' => Kind::Plus,
            b'*' => Kind::Star,
            b':' => Kind::Colon,
            b'=' => Kind::Equals,
            // Set operators as symbols too (`a | b`, `a & b`, `!a`), as in the seed's
            // `asset_job!(daily_refresh, "group:sources | group:transforms")`.
            b'|' | b'&' | b'!' => {
                let word = match bytes[i] {
                    b'|' => "or",
                    b'&' => "and",
                    _ => "not",
                };
                i += 1;
                tokens.push(Token {
                    kind: Kind::Word(word.to_owned()),
                    start,
                    end: i,
                });
                continue;
            }
            b'"' => {
                let mut text = String::new();
                let mut chars = input[i + 1..].char_indices();
                loop {
                    match chars.next() {
                        None => {
                            return Err(syntax_error(
                                input,
                                start,
                                "this string has no closing `\"`",
                            ));
                        }
                        Some((offset, '"')) => {
                            i += 1 + offset + 1;
                            break;
                        }
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c)) => text.push(c),
                            None => {
                                return Err(syntax_error(
                                    input,
                                    start,
                                    "this string has no closing `\"`",
                                ));
                            }
                        },
                        Some((_, c)) => text.push(c),
                    }
                }
                tokens.push(Token {
                    kind: Kind::Quoted(text),
                    start,
                    end: i,
                });
                continue;
            }
            b if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    kind: Kind::Word(input[start..i].to_owned()),
                    start,
                    end: i,
                });
                continue;
            }
            _ => {
                let c = input[i..].chars().next().unwrap_or_default();
                let hint = match c {
                    '~' => "; write `not`",
                    ',' => "; write `or` between keys",
                    '\'' => "; quote with `\"`",
                    _ => "",
                };
                return Err(syntax_error(
                    input,
                    start,
                    format!("unexpected character `{c}`{hint}"),
                ));
            }
        };
        i += 1;
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        start: input.len(),
        end: input.len(),
    });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_byte_offsets() {
        let tokens = lex(r#"2+key:"a\"b" or (x)"#).unwrap();
        let summary: Vec<(Kind, usize, usize)> = tokens
            .into_iter()
            .map(|t| (t.kind, t.start, t.end))
            .collect();
        assert_eq!(
            summary,
            [
                (Kind::Word("2".into()), 0, 1),
                (Kind::Plus, 1, 2),
                (Kind::Word("key".into()), 2, 5),
                (Kind::Colon, 5, 6),
                (Kind::Quoted("a\"b".into()), 6, 12),
                (Kind::Word("or".into()), 13, 15),
                (Kind::LParen, 16, 17),
                (Kind::Word("x".into()), 17, 18),
                (Kind::RParen, 18, 19),
                (Kind::End, 19, 19),
            ]
        );
    }
}
