//! Checks the signature and classifies the parameters. Every error points at the token to fix
//! and names the asset.

use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::ast::{AssetFn, Input, ItemFn, Mapping, Output, Param, Passing, doc_comment};

/// Validates `item`, pushing an error for each problem found.
pub(crate) fn check(item: ItemFn, errors: &mut Vec<syn::Error>) -> Option<AssetFn> {
    let before = errors.len();
    let sig = &item.sig;
    let asset = sig.ident.to_string();
    let err = |errors: &mut Vec<syn::Error>, span: proc_macro2::Span, msg: String| {
        errors.push(syn::Error::new(span, msg));
    };

    if !sig.generics.params.is_empty() {
        err(
            errors,
            sig.generics.span(),
            format!(
                "asset `{asset}` cannot be generic: an asset produces one concrete type; write one asset per type, or make the type a parameter of a plain helper function that assets call"
            ),
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        err(
            errors,
            where_clause.span(),
            format!("asset `{asset}` cannot have a `where` clause: assets are not generic"),
        );
    }
    let plain = syn::ext::IdentExt::unraw(&sig.ident).to_string();
    if !plain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        err(
            errors,
            sig.ident.span(),
            format!(
                "asset `{asset}` needs an ASCII name: the name is its key, which names files and URLs; rename the function"
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        err(
            errors,
            unsafety.span(),
            format!(
                "asset `{asset}` cannot be an `unsafe fn`: orch calls it with no way to uphold its safety contract"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        err(
            errors,
            abi.span(),
            format!("asset `{asset}` cannot declare an ABI: orch calls it as a Rust function"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        err(
            errors,
            variadic.span(),
            format!("asset `{asset}` cannot be variadic"),
        );
    }

    let mut params = Vec::new();
    let mut context_seen = false;
    for (position, arg) in sig.inputs.iter().enumerate() {
        let pat_type = match arg {
            FnArg::Receiver(receiver) => {
                err(
                    errors,
                    receiver.span(),
                    format!(
                        "asset `{asset}` cannot take `self`: an asset is a free function; move it out of the `impl` block"
                    ),
                );
                continue;
            }
            FnArg::Typed(pat_type) => pat_type,
        };
        let marks = item
            .partition_marks
            .get(position)
            .cloned()
            .unwrap_or_default();
        if let Some(second) = marks.get(1) {
            err(
                errors,
                second.span(),
                format!(
                    "a parameter of asset `{asset}` takes one `#[partitions(...)]`; remove this one"
                ),
            );
            continue;
        }
        let mapping_attr = marks.into_iter().next();
        if let Some(Some(config)) = item.config_marks.get(position) {
            err(
                errors,
                config.span(),
                format!(
                    "asset `{asset}` cannot take `#[config]`: run config is for ops (`#[op]`); give an asset its settings through a `#[resource]`"
                ),
            );
            continue;
        }
        let is_resource = item.resource_marks.get(position).copied().unwrap_or(false);
        if let Some(attr) = &mapping_attr
            && (is_resource || is_context(&pat_type.ty))
        {
            err(
                errors,
                attr.span(),
                format!(
                    "`#[partitions(...)]` in asset `{asset}` goes on a parameter that names a partitioned upstream asset, not on {}",
                    if is_resource {
                        "a resource"
                    } else {
                        "the context"
                    }
                ),
            );
            continue;
        }
        if is_resource {
            let name = match &*pat_type.pat {
                Pat::Ident(pat) => pat.ident.to_string(),
                _ => "_".to_owned(),
            };
            match ungroup(&pat_type.ty) {
                Type::Reference(r) if r.mutability.is_none() && r.lifetime.is_none() => {
                    params.push(Param::Resource(r.elem.clone()));
                }
                other => err(
                    errors,
                    other.span(),
                    format!(
                        "resource parameter `{name}` of asset `{asset}` must be `&Type`: a resource is shared by every asset that uses it (write `#[resource] {name}: &Type`)"
                    ),
                ),
            }
            continue;
        }
        if is_context(&pat_type.ty) {
            if let Type::Reference(r) = ungroup(&pat_type.ty)
                && let Some(m) = &r.mutability
            {
                err(
                    errors,
                    m.span(),
                    format!(
                        "asset `{asset}` takes the context as `&mut AssetContext`; take `&AssetContext` (its methods need no `mut`)"
                    ),
                );
                continue;
            }
            if context_seen {
                err(
                    errors,
                    pat_type.span(),
                    format!(
                        "asset `{asset}` takes `&AssetContext` twice; remove this parameter, one context is enough"
                    ),
                );
            }
            context_seen = true;
            params.push(Param::Context);
            continue;
        }
        let name = match &*pat_type.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            other => {
                err(
                    errors,
                    other.span(),
                    format!(
                        "parameters of asset `{asset}` must be plain names: a parameter's name is the upstream asset it consumes (write `upstream_name: &Type`)"
                    ),
                );
                continue;
            }
        };
        if contains_impl_trait(&pat_type.ty) {
            err(
                errors,
                pat_type.ty.span(),
                format!(
                    "parameter `{name}` of asset `{asset}` cannot use `impl Trait`: write the type that asset `{name}` produces"
                ),
            );
            continue;
        }
        let (ty, passing) = match ungroup(&pat_type.ty) {
            Type::Reference(reference) => {
                if let Some(lifetime) = &reference.lifetime {
                    err(
                        errors,
                        lifetime.span(),
                        format!(
                            "parameter `{name}` of asset `{asset}` cannot name a lifetime: write `&T`; orch keeps the upstream's output alive for as long as the asset runs"
                        ),
                    );
                    continue;
                }
                if let Some(mutability) = &reference.mutability {
                    err(
                        errors,
                        mutability.span(),
                        format!(
                            "parameter `{name}` of asset `{asset}` cannot be `&mut`: an upstream's output is shared by every consumer; take `&T`, or `T` for your own copy"
                        ),
                    );
                    continue;
                }
                ((*reference.elem).clone(), Passing::Borrowed)
            }
            other => (other.clone(), Passing::Owned),
        };
        let mapping = match &mapping_attr {
            None => None,
            Some(attr) => match parse_mapping(attr, &asset, &name) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
        };
        params.push(Param::Input(Box::new(Input {
            name,
            ty,
            passing,
            mapping,
        })));
    }

    let output = match &sig.output {
        ReturnType::Default => Output {
            ty: syn::parse_quote!(()),
            fallible: false,
        },
        ReturnType::Type(_, ty) => {
            if contains_impl_trait(ty) {
                err(
                    errors,
                    ty.span(),
                    format!(
                        "asset `{asset}` cannot return `impl Trait`: downstream assets name its output type, so write the concrete type"
                    ),
                );
            }
            match result_ok_type(ty) {
                Some(ok) => Output {
                    ty: ok,
                    fallible: true,
                },
                None => Output {
                    ty: (**ty).clone(),
                    fallible: false,
                },
            }
        }
    };

    if errors.len() > before {
        return None;
    }
    let doc = doc_comment(&item.attrs);
    Some(AssetFn {
        item,
        params,
        output,
        doc,
    })
}

/// The type inside invisible groups (types passed through `macro_rules!` arrive wrapped).
fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        other => other,
    }
}

/// `&AssetContext`, `&orch::AssetContext`, … (recognised by the last path segment).
fn is_context(ty: &Type) -> bool {
    match ungroup(ty) {
        Type::Reference(r) => match ungroup(&r.elem) {
            Type::Path(p) => {
                p.qself.is_none()
                    && p.path
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "AssetContext")
            }
            _ => false,
        },
        _ => false,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => contains_impl_trait(&r.elem),
        Type::Paren(p) => contains_impl_trait(&p.elem),
        Type::Group(g) => contains_impl_trait(&g.elem),
        Type::Slice(s) => contains_impl_trait(&s.elem),
        Type::Array(a) => contains_impl_trait(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(p) => p.path.segments.iter().any(|s| match &s.arguments {
            syn::PathArguments::AngleBracketed(args) => args
                .args
                .iter()
                .any(|a| matches!(a, syn::GenericArgument::Type(t) if contains_impl_trait(t))),
            _ => false,
        }),
        _ => false,
    }
}

/// The output of a signature, if it can be named (for the marker emitted beside an invalid
/// asset, so its downstream assets do not report it missing too).
pub(crate) fn nameable_output(sig: &syn::Signature) -> Option<Type> {
    // Generic: no single output type. A method: the marker could not sit inside the `impl`.
    if !sig.generics.params.is_empty() || sig.receiver().is_some() {
        return None;
    }
    match &sig.output {
        ReturnType::Default => Some(syn::parse_quote!(())),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => None,
        ReturnType::Type(_, ty) => Some(result_ok_type(ty).unwrap_or_else(|| (**ty).clone())),
    }
}

/// `T` of a return type written `Result<T, E>` or an alias of it whose name ends in
/// `Result` (`anyhow::Result<T>`, `io::Result<T>`, `PolarsResult<T>`, a crate's own
/// `MyResult<T>`): the last path segment ends in `Result` and has type arguments, the first
/// of which is the success type.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ungroup(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if !last.ident.to_string().ends_with("Result") {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `#[partitions(offset = -1)]` or `#[partitions(last = 7)]` on input `name`.
fn parse_mapping(
    attr: &syn::Attribute,
    asset: &str,
    name: &syn::Ident,
) -> Result<Mapping, syn::Error> {
    let usage = format!(
        "write `#[partitions(offset = -1)]` (the partition before) or `#[partitions(last = 7)]` (the last 7, concatenated) on parameter `{name}` of asset `{asset}`"
    );
    let nv: syn::MetaNameValue = attr
        .parse_args()
        .map_err(|_| syn::Error::new(attr.span(), &usage))?;
    let number = |expr: &syn::Expr| -> Option<i64> {
        match expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) => i.base10_parse::<i64>().ok(),
            syn::Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                ..
            }) => match &**expr {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i),
                    ..
                }) => i.base10_parse::<i64>().ok().map(|v| -v),
                _ => None,
            },
            _ => None,
        }
    };
    let value = number(&nv.value);
    if nv.path.is_ident("offset") {
        return match value {
            Some(0) | None => Err(syn::Error::new(
                nv.value.span(),
                format!(
                    "the offset of parameter `{name}` of asset `{asset}` must be a non-zero integer, such as `-1` for the partition before"
                ),
            )),
            Some(v) => Ok(Mapping::Offset(v)),
        };
    }
    if nv.path.is_ident("last") {
        let n = value
            .filter(|&v| v >= 1)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                syn::Error::new(
                    nv.value.span(),
                    format!(
                        "`last` of parameter `{name}` of asset `{asset}` must be a positive integer, such as `7`"
                    ),
                )
            })?;
        // Only frames concatenate: checked on the type (`assert_concat_frames`), so an
        // alias of `DataFrame` works.
        return Ok(Mapping::Last(n));
    }
    Err(syn::Error::new(nv.path.span(), usage))
}
