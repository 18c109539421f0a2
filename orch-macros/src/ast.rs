//! The asset function, parsed. Only the signature is parsed; the body stays tokens (cheap,
//! and the body's own errors stay rustc's to report).

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Signature, Type, Visibility};

/// The item under `#[asset]`, split into its parts.
pub(crate) struct ItemFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    /// The signature without the `#[resource]` markers (rustc knows no such attribute).
    pub(crate) sig: Signature,
    pub(crate) body: TokenStream,
    /// Per parameter: whether it was marked `#[resource]`.
    pub(crate) resource_marks: Vec<bool>,
    /// Per parameter: the `#[config]` mark, if it has one (ops only).
    pub(crate) config_marks: Vec<Option<Attribute>>,
    /// Per parameter: its `#[partitions(...)]` mapping attributes (one at most is valid).
    pub(crate) partition_marks: Vec<Vec<Attribute>>,
}

impl quote::ToTokens for ItemFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

impl Parse for ItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let mut sig: Signature = input.parse()?;
        let body: TokenStream = input.parse()?;
        let mut partition_marks = Vec::new();
        let mut config_marks = Vec::new();
        let resource_marks = sig
            .inputs
            .iter_mut()
            .map(|arg| match arg {
                syn::FnArg::Typed(pat_type) => {
                    let before = pat_type.attrs.len();
                    pat_type.attrs.retain(|a| !a.path().is_ident("resource"));
                    let marked = pat_type.attrs.len() != before;
                    let config = pat_type
                        .attrs
                        .iter()
                        .position(|a| a.path().is_ident("config"))
                        .map(|i| pat_type.attrs.remove(i));
                    config_marks.push(config);
                    // Every `#[partitions(...)]` comes off (rustc knows no such attribute);
                    // a second one is reported by validation.
                    let mut found: Vec<Attribute> = Vec::new();
                    pat_type.attrs.retain(|a| {
                        let mapping = a.path().is_ident("partitions");
                        if mapping {
                            found.push(a.clone());
                        }
                        !mapping
                    });
                    partition_marks.push(found);
                    marked
                }
                syn::FnArg::Receiver(_) => {
                    partition_marks.push(Vec::new());
                    config_marks.push(None);
                    false
                }
            })
            .collect();
        Ok(ItemFn {
            attrs,
            vis,
            sig,
            body,
            resource_marks,
            config_marks,
            partition_marks,
        })
    }
}

/// How a parameter receives its upstream's value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passing {
    /// `name: &T`: borrows the shared output.
    Borrowed,
    /// `name: T`: a clone of the shared output.
    Owned,
}

/// A parameter that names an upstream asset.
pub(crate) struct Input {
    /// The parameter's name, which names the upstream asset.
    pub(crate) name: Ident,
    /// The type it expects (`T` for both `&T` and `T`).
    pub(crate) ty: Type,
    pub(crate) passing: Passing,
    /// `#[partitions(offset = N)]` or `#[partitions(last = N)]`, if declared.
    pub(crate) mapping: Option<Mapping>,
}

/// A partition mapping declared on an input parameter.
#[derive(Clone, Copy)]
pub(crate) enum Mapping {
    Offset(i64),
    Last(u32),
}

/// One parameter, classified.
pub(crate) enum Param {
    /// `&AssetContext`.
    Context,
    /// An upstream asset's value.
    Input(Box<Input>),
    /// `#[resource] name: &T`: the configured resource of type `T` (not a dependency).
    Resource(Box<Type>),
}

/// What the function returns.
pub(crate) struct Output {
    /// The value type the asset produces.
    pub(crate) ty: Type,
    /// Whether the function returns `Result<ty, E>`.
    pub(crate) fallible: bool,
}

/// The asset function after validation: what expansion needs.
pub(crate) struct AssetFn {
    pub(crate) item: ItemFn,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
    pub(crate) doc: Option<String>,
}

impl AssetFn {
    pub(crate) fn name(&self) -> &Ident {
        &self.item.sig.ident
    }

    pub(crate) fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }

    pub(crate) fn inputs(&self) -> impl Iterator<Item = &Input> {
        self.params.iter().filter_map(|p| match p {
            Param::Input(input) => Some(&**input),
            Param::Context | Param::Resource(_) => None,
        })
    }
}

/// The doc comment, with the single leading space of each `///` line removed and blank lines
/// at either end trimmed.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(syn::MetaNameValue {
            value:
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }),
            ..
        }) = &attr.meta
        {
            let value = s.value();
            for line in value.split('\n') {
                lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
            }
        }
    }
    let text = lines.join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
