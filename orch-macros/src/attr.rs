//! The arguments of `#[asset(...)]`: parsed into [`AssetAttrs`], collecting every error so a
//! user sees all bad keys in one compile (serde_derive's habit).

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

const GROUP: &str = "group";
const DESCRIPTION: &str = "description";
const KEY_PREFIX: &str = "key_prefix";
const CODE_VERSION: &str = "code_version";
const TAGS: &str = "tags";
const METADATA: &str = "metadata";
const OWNERS: &str = "owners";
const DEPS: &str = "deps";
const RETRIES: &str = "retries";
const RETRY_DELAY: &str = "retry_delay";
const IO_MANAGER: &str = "io_manager";
const ALWAYS_RUN: &str = "always_run";
const PARTITIONS: &str = "partitions";
const PARTITION_BY: &str = "partition_by";
const AUTOMATION: &str = "automation";
const FRESHNESS: &str = "freshness";

/// Every key `#[asset]` accepts, in the order the error message lists them.
const VALID_KEYS: &[&str] = &[
    GROUP,
    DESCRIPTION,
    KEY_PREFIX,
    CODE_VERSION,
    TAGS,
    METADATA,
    OWNERS,
    DEPS,
    RETRIES,
    RETRY_DELAY,
    IO_MANAGER,
    ALWAYS_RUN,
    PARTITIONS,
    PARTITION_BY,
    AUTOMATION,
    FRESHNESS,
];

/// Every key `#[op]` accepts.
const OP_KEYS: &[&str] = &[
    DESCRIPTION,
    CODE_VERSION,
    TAGS,
    RETRIES,
    RETRY_DELAY,
    IO_MANAGER,
];

/// An order-only dependency from `deps = [...]`.
pub(crate) enum Dep {
    /// An asset named like a parameter (a path to its function), checked by the compiler.
    Asset(syn::Path),
    /// A key as a string, checked at startup (for assets the compiler cannot see).
    Key(Vec<String>),
}

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct AssetAttrs {
    pub(crate) group: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) key_prefix: Vec<String>,
    pub(crate) code_version: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) owners: Vec<String>,
    pub(crate) deps: Vec<Dep>,
    pub(crate) retries: u32,
    /// Milliseconds before the first retry (doubling after each failed attempt).
    pub(crate) retry_delay_ms: u64,
    /// `io_manager = "name"`; `None` (or `"fs"`) is the default filesystem manager.
    pub(crate) io_manager: Option<String>,
    /// `always_run = true`: never up to date.
    pub(crate) always_run: bool,
    /// `partitions = daily("2024-01-01")`: any expression that converts into a
    /// `PartitionsDefinition`, type-checked where it is written.
    pub(crate) partitions: Option<Expr>,
    /// `partition_by = "date"`: the output column that splits a range run's frame into its
    /// partitions (the asset can run over a range of partitions).
    pub(crate) partition_by: Option<LitStr>,
    /// `automation = eager()`: an expression of `AutomationCondition`, type-checked where it is
    /// written, with the condition functions in scope. Cron strings written as literals in
    /// it are checked here.
    pub(crate) automation: Option<Expr>,
    /// `freshness = "1h"` or an expression of `FreshnessPolicy`; literal durations, cron
    /// strings and time zones in it are checked here.
    pub(crate) freshness: Option<Expr>,
}

/// Parses the attribute's arguments. Returns what could be parsed and every error found.
pub(crate) fn parse(args: TokenStream, errors: &mut Vec<syn::Error>) -> AssetAttrs {
    parse_for(args, errors, "asset", VALID_KEYS)
}

/// Parses the arguments of `#[op(...)]`: the keys an asset and an op share.
pub(crate) fn parse_op(args: TokenStream, errors: &mut Vec<syn::Error>) -> AssetAttrs {
    parse_for(args, errors, "op", OP_KEYS)
}

/// Parses the arguments of `#[job(...)]`.
pub(crate) fn parse_job(args: TokenStream, errors: &mut Vec<syn::Error>) -> AssetAttrs {
    parse_for(args, errors, "job", &[DESCRIPTION, TAGS])
}

fn parse_for(
    args: TokenStream,
    errors: &mut Vec<syn::Error>,
    which: &str,
    valid: &[&str],
) -> AssetAttrs {
    let mut attrs = AssetAttrs::default();
    let mut seen: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let Some(ident) = meta.path.get_ident() else {
            errors.push(unknown_key(
                meta.path.span(),
                &path_text(&meta.path),
                which,
                valid,
            ));
            return skip_value(meta.input);
        };
        let name = ident.to_string();
        if !valid.contains(&name.as_str()) {
            errors.push(unknown_key(ident.span(), &name, which, valid));
            return skip_value(meta.input);
        }
        if seen.contains(&name) {
            errors.push(syn::Error::new(
                ident.span(),
                format!("duplicate `{name}` in #[{which}]: give each key once"),
            ));
            return skip_value(meta.input);
        }
        seen.push(name.clone());
        match name.as_str() {
            TAGS | METADATA => {
                if !meta.input.peek(syn::token::Paren) {
                    errors.push(syn::Error::new(
                        ident.span(),
                        format!("`{name}` is written `{name}(key = \"value\", ...)`"),
                    ));
                    return skip_value(meta.input);
                }
                let content;
                syn::parenthesized!(content in meta.input);
                let pairs = parse_pairs(&content, &name, errors)?;
                if name == TAGS {
                    attrs.tags = pairs;
                } else {
                    attrs.metadata = pairs;
                }
                return Ok(());
            }
            _ => {}
        }
        if !meta.input.peek(Token![=]) {
            errors.push(syn::Error::new(
                ident.span(),
                format!("`{name}` needs a value: {}", example(&name)),
            ));
            return skip_value(meta.input);
        }
        let value: Expr = meta.value()?.parse()?;
        let value = ungroup(&value).clone();
        match name.as_str() {
            PARTITIONS => attrs.partitions = Some(value),
            FRESHNESS => {
                crate::automation::check_freshness(&value, errors);
                attrs.freshness = Some(value);
            }
            AUTOMATION => {
                crate::automation::check_condition_crons(&value, errors);
                attrs.automation = Some(value);
            }
            RETRY_DELAY => match string(&value).map(|s| (s, parse_duration_ms(&s.value()))) {
                Some((_, Ok(ms))) => attrs.retry_delay_ms = ms,
                Some((s, Err(why))) => errors.push(syn::Error::new(
                    s.span(),
                    format!("invalid `retry_delay`: {why}; write e.g. `retry_delay = \"500ms\"` or `\"2s\"`"),
                )),
                None => errors.push(wrong_type(&value, &name)),
            },
            IO_MANAGER => match string(&value) {
                Some(s) if check_segment(&s.value()).is_ok() => {
                    let name = s.value();
                    attrs.io_manager = (name != "fs").then_some(name);
                }
                Some(s) => errors.push(syn::Error::new(
                    s.span(),
                    "an `io_manager` name may contain only ASCII letters, digits, `_`, `-` and `.`",
                )),
                None => errors.push(wrong_type(&value, &name)),
            },
            PARTITION_BY => match string(&value) {
                Some(s) if !s.value().is_empty() => attrs.partition_by = Some(s.clone()),
                Some(s) => errors.push(syn::Error::new(
                    s.span(),
                    "`partition_by` names an output column, e.g. `partition_by = \"date\"`",
                )),
                None => errors.push(wrong_type(&value, &name)),
            },
            GROUP | DESCRIPTION | CODE_VERSION | KEY_PREFIX => match string(&value) {
                Some(s) => {
                    let text = s.value();
                    match name.as_str() {
                        GROUP => {
                            if check_segment(&text).is_err() {
                                errors.push(syn::Error::new(
                                    s.span(),
                                    format!("group `{text}` may contain only ASCII letters, digits, `_`, `-` and `.`"),
                                ));
                            }
                            attrs.group = Some(text);
                        }
                        DESCRIPTION => attrs.description = Some(text),
                        CODE_VERSION => attrs.code_version = Some(text),
                        _ => match parse_key(&text) {
                            Ok(path) => attrs.key_prefix = path,
                            Err(why) => errors.push(syn::Error::new(
                                s.span(),
                                format!("invalid `key_prefix`: {why}"),
                            )),
                        },
                    }
                }
                None => errors.push(wrong_type(&value, &name)),
            },
            OWNERS => match list(&value) {
                Some(items) => {
                    for item in items {
                        match string(item) {
                            Some(s) => attrs.owners.push(s.value()),
                            None => errors.push(wrong_type(item, &name)),
                        }
                    }
                }
                None => errors.push(wrong_type(&value, &name)),
            },
            DEPS => match list(&value) {
                Some(items) => {
                    for item in items {
                        match ungroup(item) {
                            Expr::Path(p) if p.qself.is_none() => {
                                attrs.deps.push(Dep::Asset(p.path.clone()))
                            }
                            Expr::Lit(ExprLit {
                                lit: Lit::Str(s), ..
                            }) => match parse_key(&s.value()) {
                                Ok(path) => attrs.deps.push(Dep::Key(path)),
                                Err(why) => errors.push(syn::Error::new(
                                    s.span(),
                                    format!("invalid asset key in `deps`: {why}"),
                                )),
                            },
                            other => errors.push(wrong_type(other, &name)),
                        }
                    }
                }
                None => errors.push(wrong_type(&value, &name)),
            },
            ALWAYS_RUN => match &value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => attrs.always_run = b.value,
                _ => errors.push(wrong_type(&value, &name)),
            },
            RETRIES => match &value {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => match i.base10_parse::<u32>() {
                    Ok(n) => attrs.retries = n,
                    Err(_) => errors.push(syn::Error::new(
                        i.span(),
                        "`retries` must be a whole number from 0 to 4294967295",
                    )),
                },
                _ => errors.push(wrong_type(&value, &name)),
            },
            _ => unreachable!("every valid key is handled above"),
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    attrs
}

fn parse_pairs(
    input: ParseStream<'_>,
    name: &str,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    while !input.is_empty() {
        let key = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            (lit.value(), lit.span())
        } else {
            let ident: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            (ident.to_string(), ident.span())
        };
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        match string(&value) {
            Some(v) => {
                if pairs.iter().any(|(k, _)| *k == key.0) {
                    errors.push(syn::Error::new(
                        key.1,
                        format!("duplicate key `{}` in `{name}`", key.0),
                    ));
                } else {
                    pairs.push((key.0, v.value()));
                }
            }
            None => errors.push(syn::Error::new(
                value.span(),
                format!("values in `{name}` are strings, e.g. `{name}(team = \"data\")`"),
            )),
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(pairs)
}

fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<Expr>()?;
    } else if input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in input);
        _content.parse::<TokenStream>()?;
    }
    Ok(())
}

/// A value passed through a `macro_rules!` fragment (`$group:literal`, `$deps:expr`) arrives
/// wrapped in an invisible group; look through it as rustc does.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => ungroup(&group.expr),
        other => other,
    }
}

fn string(expr: &Expr) -> Option<&LitStr> {
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        _ => None,
    }
}

fn list(expr: &Expr) -> Option<&Punctuated<Expr, Token![,]>> {
    match expr {
        Expr::Array(array) => Some(&array.elems),
        _ => None,
    }
}

fn path_text(path: &syn::Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

fn unknown_key(span: Span, name: &str, which: &str, valid: &[&str]) -> syn::Error {
    syn::Error::new(
        span,
        format!(
            "unknown key `{name}` in #[{which}]; the valid keys are {}",
            valid
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn example(name: &str) -> &'static str {
    match name {
        GROUP => "`group = \"sources\"`",
        DESCRIPTION => "`description = \"Users fetched from the API.\"`",
        KEY_PREFIX => "`key_prefix = \"warehouse/raw\"`",
        CODE_VERSION => "`code_version = \"v2\"`",
        OWNERS => "`owners = [\"team:data\", \"alice@example.com\"]`",
        DEPS => "`deps = [upstream_asset, \"external/key\"]`",
        RETRIES => "`retries = 3`",
        RETRY_DELAY => "`retry_delay = \"500ms\"`",
        IO_MANAGER => "`io_manager = \"memory\"`",
        ALWAYS_RUN => "`always_run = true`",
        PARTITIONS => "`partitions = daily(\"2024-01-01\")`",
        PARTITION_BY => "`partition_by = \"date\"`",
        AUTOMATION => "`automation = eager()`",
        FRESHNESS => {
            "`freshness = \"1h\"` or `freshness = freshness::window(\"1h\").warn(\"30m\")`"
        }
        _ => "`key = \"value\"`",
    }
}

fn wrong_type(value: &Expr, name: &str) -> syn::Error {
    let what = match name {
        GROUP | DESCRIPTION | KEY_PREFIX | CODE_VERSION | IO_MANAGER | PARTITION_BY => "a string",
        RETRY_DELAY => "a duration string",
        OWNERS => "a list of strings",
        DEPS => "a list of asset names or key strings",
        RETRIES => "a whole number",
        ALWAYS_RUN => "`true` or `false`",
        _ => "a different value",
    };
    syn::Error::new(
        value.span(),
        format!("`{name}` expects {what}, e.g. {}", example(name)),
    )
}

/// The checks of `orch_core::key::is_valid_segment`, repeated here so a bad key is a compile
/// error (the macro crate does not link the runtime model).
fn check_segment(segment: &str) -> Result<(), String> {
    let ok = !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else if segment.is_empty() {
        Err("it has an empty segment".to_owned())
    } else if segment == "." || segment == ".." {
        Err(format!(
            "segment `{segment}` is not allowed: keys name storage paths and must not escape them"
        ))
    } else {
        Err(format!(
            "segment `{segment}` may contain only ASCII letters, digits, `_`, `-` and `.`"
        ))
    }
}

/// `"250ms"`, `"2s"`, `"1m"`, `"1h"` (one number and one unit) in milliseconds.
fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Splits and checks a `prefix/name` key.
fn parse_key(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Err("a key cannot be empty".to_owned());
    }
    text.split('/')
        .map(|s| check_segment(s).map(|()| s.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> AssetAttrs {
        let mut errors = Vec::new();
        let attrs = parse(tokens, &mut errors);
        assert!(
            errors.is_empty(),
            "{:?}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        attrs
    }

    fn parse_err(tokens: TokenStream) -> Vec<String> {
        let mut errors = Vec::new();
        parse(tokens, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn sees_through_macro_rules_fragments() {
        // `$group:literal` and `$dep:expr` arrive in invisible (`Delimiter::None`) groups.
        let hidden = |tokens: TokenStream| {
            proc_macro2::TokenTree::Group(proc_macro2::Group::new(
                proc_macro2::Delimiter::None,
                tokens,
            ))
        };
        let (group, dep) = (hidden(quote!("bulk")), hidden(quote!(upstream)));
        let a = parse_ok(quote!(group = #group, deps = [#dep], owners = [#group]));
        assert_eq!(a.group.as_deref(), Some("bulk"));
        assert_eq!(a.deps.len(), 1);
        assert_eq!(a.owners, ["bulk"]);
    }

    #[test]
    fn parses_every_key() {
        let a = parse_ok(quote!(
            group = "sources",
            description = "d",
            key_prefix = "wh/raw",
            code_version = "v2",
            tags(tier = "gold", "data-domain" = "users"),
            metadata(owner_team = "x"),
            owners = ["team:data"],
            deps = [a, crate::b, "ext/c"],
            retries = 3
        ));
        assert_eq!(a.group.as_deref(), Some("sources"));
        assert_eq!(a.key_prefix, ["wh", "raw"]);
        assert_eq!(a.tags[1], ("data-domain".to_owned(), "users".to_owned()));
        assert_eq!(a.metadata.len(), 1);
        assert_eq!(a.owners, ["team:data"]);
        assert_eq!(a.deps.len(), 3);
        assert!(matches!(&a.deps[2], Dep::Key(k) if k == &["ext", "c"]));
        assert_eq!(a.retries, 3);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("3m"), Ok(180_000));
        assert!(parse_duration_ms("3").unwrap_err().contains("no unit"));
        assert!(
            parse_duration_ms("3 days")
                .unwrap_err()
                .contains("unknown unit `days`")
        );
        assert!(
            parse_duration_ms("ms")
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn collects_every_error() {
        let errors = parse_err(quote!(
            grup = "x",
            group = 1,
            group = "y",
            retries = "3",
            key_prefix = "../x"
        ));
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("unknown key `grup`"));
        assert!(errors[0].contains("`group`, `description`"));
        assert!(errors[1].starts_with("`group` expects a string"));
        assert!(errors[2].starts_with("duplicate `group`"));
        assert!(errors[3].starts_with("`retries` expects a whole number"));
        assert!(errors[4].starts_with("invalid `key_prefix`: segment `..` is not allowed"));
    }
}
