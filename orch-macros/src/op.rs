//! `#[op]`: a step of an op job. Parsed with the asset's [`ItemFn`], classified here (an op's
//! parameters are positional inputs wired in a `#[job]` body, not named upstreams), and
//! expanded into the function, a marker type, the `Op` impl with its definition, and the
//! wiring checks a job body's calls go through.
//!
//! For `fn process_data(ctx: &OpContext, data: &Vec<Row>) -> Summary` the macro emits, beside
//! the unchanged function and `struct process_data {}`:
//! - a trait per input, `__orch_input_process_data_0<P>`, implemented only for `Vec<Row>`,
//!   whose `on_unimplemented` message names the op, the parameter and the producing op `P`;
//! - `impl Wire<(Handle<T0, P0>,)> for process_data where T0: __orch_input_process_data_0<P0>`:
//!   the one shape of call the op accepts. A call with another number of handles fails on
//!   `Wire`; a handle of another type fails on the input's trait, at the argument.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::ast::{ItemFn, Passing, doc_comment};
use crate::attr::{self, AssetAttrs};
use crate::hash;

/// One parameter of an op.
enum OpParam {
    /// `&OpContext`.
    Context,
    /// `#[resource] name: &T`.
    Resource(Type),
    /// `#[config] name: &T` or `T`.
    Config(Type, Passing),
    /// An input wired in the job.
    Input {
        name: syn::Ident,
        ty: Type,
        passing: Passing,
    },
}

/// What the op returns.
struct OpOut {
    ty: Type,
    fallible: bool,
    optional: bool,
}

/// Entry point: never panics; on error, emits the original item plus `compile_error!`s.
pub(crate) fn op(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let attrs = attr::parse_op(args, &mut errors);
    let parsed: ItemFn = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            errors.push(syn::Error::new(
                item.clone()
                    .into_iter()
                    .next()
                    .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
                "#[op] goes on a function, e.g. `fn process_data(data: &Vec<Row>) -> Summary { ... }`",
            ));
            return with_errors(item, errors);
        }
    };
    let (params, output) = classify(&parsed, &mut errors);
    match (errors.is_empty(), output) {
        (true, Some(output)) => generate(&attrs, &parsed, &params, &output),
        _ => with_errors(parsed.to_token_stream(), errors),
    }
}

fn with_errors(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote!(#item #(#errors)*)
}

fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        other => other,
    }
}

/// The last path segment of `&T`'s `T`, if `ty` is a shared reference to a path.
fn referenced_name(ty: &Type) -> Option<String> {
    match ungroup(ty) {
        Type::Reference(r) => match ungroup(&r.elem) {
            Type::Path(p) if p.qself.is_none() => {
                p.path.segments.last().map(|s| s.ident.to_string())
            }
            _ => None,
        },
        _ => None,
    }
}

/// `T` for `&T` (borrowed) or `T` (owned).
fn passing(ty: &Type) -> (Type, Passing) {
    match ungroup(ty) {
        Type::Reference(r) => ((*r.elem).clone(), Passing::Borrowed),
        other => (other.clone(), Passing::Owned),
    }
}

/// The generic argument of a last path segment called `wrapper` (`Option<T>`, `Result<T, E>`
/// or an alias ending in `Result`).
fn wrapped(ty: &Type, wrapper: &str) -> Option<Type> {
    let Type::Path(path) = ungroup(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    let name = last.ident.to_string();
    let matches = match wrapper {
        "Result" => name.ends_with("Result"),
        _ => name == wrapper,
    };
    if !matches {
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

fn classify(item: &ItemFn, errors: &mut Vec<syn::Error>) -> (Vec<OpParam>, Option<OpOut>) {
    let sig = &item.sig;
    let op = sig.ident.unraw().to_string();
    let mut err = |span: proc_macro2::Span, msg: String| errors.push(syn::Error::new(span, msg));
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        err(
            sig.generics.span(),
            format!(
                "op `{op}` cannot be generic: a job wires concrete types; write one op per type"
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        err(
            unsafety.span(),
            format!("op `{op}` cannot be an `unsafe fn`"),
        );
    }
    if !op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        err(
            sig.ident.span(),
            format!("op `{op}` needs an ASCII name: it names the op's steps, files and URLs"),
        );
    }
    if let Some(mark) = item.partition_marks.iter().flatten().next() {
        err(
            mark.span(),
            format!("op `{op}` cannot map partitions: ops are not partitioned"),
        );
    }
    let mut params = Vec::new();
    let mut context_seen = false;
    let mut config_seen = false;
    for (position, arg) in sig.inputs.iter().enumerate() {
        let pat_type = match arg {
            FnArg::Receiver(r) => {
                err(
                    r.span(),
                    format!("op `{op}` cannot take `self`: an op is a free function"),
                );
                continue;
            }
            FnArg::Typed(pat_type) => pat_type,
        };
        let name = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                err(
                    other.span(),
                    format!("parameters of op `{op}` must be plain names (`data: &Vec<Row>`)"),
                );
                continue;
            }
        };
        let is_resource = item.resource_marks.get(position).copied().unwrap_or(false);
        let config = item.config_marks.get(position).cloned().flatten();
        if is_resource {
            match ungroup(&pat_type.ty) {
                Type::Reference(r) if r.mutability.is_none() && r.lifetime.is_none() => {
                    params.push(OpParam::Resource((*r.elem).clone()));
                }
                other => err(
                    other.span(),
                    format!(
                        "resource parameter `{name}` of op `{op}` must be `&Type` (write `#[resource] {name}: &Type`)"
                    ),
                ),
            }
            continue;
        }
        if let Some(config) = config {
            if config_seen {
                err(
                    config.span(),
                    format!(
                        "op `{op}` takes `#[config]` twice: an op has one config table; put both in one type"
                    ),
                );
                continue;
            }
            config_seen = true;
            let (ty, passing) = passing(&pat_type.ty);
            params.push(OpParam::Config(ty, passing));
            continue;
        }
        match referenced_name(&pat_type.ty).as_deref() {
            Some("OpContext") => {
                if context_seen {
                    err(
                        pat_type.span(),
                        format!("op `{op}` takes `&OpContext` twice; one is enough"),
                    );
                }
                context_seen = true;
                params.push(OpParam::Context);
                continue;
            }
            Some("AssetContext") => {
                err(
                    pat_type.ty.span(),
                    format!("op `{op}` takes `&AssetContext`; an op's context is `&OpContext`"),
                );
                continue;
            }
            _ => {}
        }
        if let Type::Reference(r) = ungroup(&pat_type.ty)
            && (r.mutability.is_some() || r.lifetime.is_some())
        {
            err(
                r.span(),
                format!(
                    "input `{name}` of op `{op}` must be `&T` or `T`: an output is shared by every op that takes it"
                ),
            );
            continue;
        }
        if matches!(ungroup(&pat_type.ty), Type::ImplTrait(_)) {
            err(
                pat_type.ty.span(),
                format!("input `{name}` of op `{op}` cannot be `impl Trait`: write the type"),
            );
            continue;
        }
        let (ty, passing) = passing(&pat_type.ty);
        params.push(OpParam::Input { name, ty, passing });
    }
    let output = match &sig.output {
        ReturnType::Default => Some(OpOut {
            ty: syn::parse_quote!(()),
            fallible: false,
            optional: false,
        }),
        ReturnType::Type(_, ty) if matches!(ungroup(ty), Type::ImplTrait(_)) => {
            err(
                ty.span(),
                format!("op `{op}` cannot return `impl Trait`: the job names its output type"),
            );
            None
        }
        ReturnType::Type(_, ty) => {
            let (inner, fallible) = match wrapped(ty, "Result") {
                Some(ok) => (ok, true),
                None => ((**ty).clone(), false),
            };
            Some(match wrapped(&inner, "Option") {
                Some(value) => OpOut {
                    ty: value,
                    fallible,
                    optional: true,
                },
                None => OpOut {
                    ty: inner,
                    fallible,
                    optional: false,
                },
            })
        }
    };
    (params, output)
}

fn generate(attrs: &AssetAttrs, item: &ItemFn, params: &[OpParam], out: &OpOut) -> TokenStream {
    let krate = quote!(::orch::__private);
    let name = &item.sig.ident;
    let plain = name.unraw().to_string();
    let vis = &item.vis;
    let fn_attrs = &item.attrs;
    let sig = &item.sig;
    let body = &item.body;
    let out_ty = &out.ty;
    let is_async = sig.asyncness.is_some();
    let ctx = if is_async {
        quote!(&__orch_ctx)
    } else {
        quote!(__orch_ctx)
    };

    let mut prelude = Vec::new();
    let mut call_args = Vec::new();
    let mut resources = Vec::new();
    let mut input_meta = Vec::new();
    let mut wired: Vec<(syn::Ident, Type)> = Vec::new();
    let mut config = quote!(::core::option::Option::None);
    let mut index = 0usize;
    for param in params {
        match param {
            OpParam::Context => {
                // One context at most (a second is an error).
                prelude.insert(
                    0,
                    quote!(let __orch_op_ctx = #krate::OpContext::from_step(#ctx);),
                );
                call_args.push(quote!(&__orch_op_ctx));
            }
            OpParam::Resource(ty) => {
                crate::expand::resource_param(
                    ty,
                    &ctx,
                    &mut prelude,
                    &mut resources,
                    &mut call_args,
                );
            }
            OpParam::Config(ty, passing) => {
                let span = ty.span();
                prelude.push(quote_spanned! {span=>
                    let __orch_config: #ty = #krate::op_config::<#ty>(#ctx)?;
                });
                call_args.push(match passing {
                    Passing::Borrowed => quote!(&__orch_config),
                    Passing::Owned => quote!(__orch_config),
                });
                let type_text = crate::expand::type_text(ty);
                config = quote_spanned! {span=>
                    ::core::option::Option::Some(#krate::ConfigSchema {
                        type_name: #type_text,
                        check: #krate::check_config::<#ty>,
                    })
                };
            }
            OpParam::Input {
                name: input,
                ty,
                passing,
            } => {
                let i = index;
                index += 1;
                let input_text = input.unraw().to_string();
                let type_text = crate::expand::type_text(ty);
                input_meta.push(quote!((#input_text, #type_text)));
                let var = format_ident!("__orch_in_{}", i);
                let span = ty.span();
                prelude.push(quote! {
                    let #var = #krate::input::<#ty>(&__orch_inputs, #i, #input_text)?;
                    let #var: &#ty = &*#var;
                });
                call_args.push(match passing {
                    Passing::Borrowed => quote!(#var),
                    Passing::Owned => {
                        quote_spanned!(span=> #krate::clone_op_input::<#ty, #name>(#var))
                    }
                });
                wired.push((input.clone(), ty.clone()));
            }
        }
    }
    let out_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => name.span(),
    };
    let finish = match (out.fallible, out.optional) {
        (false, false) => quote_spanned!(out_span=> #krate::op_share::<_, #name>(__orch_out)),
        (true, false) => {
            quote_spanned!(out_span=> #krate::op_share_result::<_, _, #name>(__orch_out))
        }
        (false, true) => quote_spanned!(out_span=> #krate::share_optional::<_, #name>(__orch_out)),
        (true, true) => {
            quote_spanned!(out_span=> #krate::share_optional_result::<_, _, #name>(__orch_out))
        }
    };
    let compute = crate::expand::compute_fn(name, is_async, &prelude, &call_args, &finish);
    let codec = match &attrs.io_manager {
        None => crate::expand::default_codec(out_span, out_ty, name, "op_codec"),
        Some(_) => quote!(::core::option::Option::None),
    };
    let opt = |v: &Option<String>| match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let description = opt(&attrs
        .description
        .clone()
        .or_else(|| doc_comment(&item.attrs)));
    let io_manager = opt(&attrs.io_manager);
    let code_version = attrs
        .code_version
        .clone()
        .unwrap_or_else(|| hash::code_version(&format!("{} {}", sig.to_token_stream(), body)));
    let tags = attrs.tags.iter().map(|(k, v)| quote!((#k, #v)));
    let retries = attrs.retries;
    let retry_delay_ms = attrs.retry_delay_ms;
    let output_type = crate::expand::type_text(out_ty);
    let output_kind = if out.optional {
        quote!(#krate::OpOutput::Optional)
    } else {
        quote!(#krate::OpOutput::Value)
    };
    let line = quote_spanned!(name.span()=> ::core::line!());
    let marker_doc = format!(
        "The op `{plain}` as a type: a job body calls it, and `execute_job` results name it \
         (`result.output::<{plain}>()`). Generated by `#[op]`."
    );
    let wiring = wiring_checks("op", vis, name, &wired);

    quote! {
        #(#fn_attrs)*
        #[allow(clippy::ptr_arg)]
        #vis #sig #body

        #[doc = #marker_doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        #wiring

        impl #krate::Callable for #name {
            type Output = #out_ty;
            fn add(
                __orch_b: &mut #krate::JobBuilder,
                __orch_name: &'static str,
                __orch_inputs: ::std::vec::Vec<usize>,
                __orch_after: &[usize],
            ) -> usize {
                __orch_b.push_op(<Self as #krate::Op>::DEF, __orch_name, __orch_inputs, __orch_after)
            }
        }

        impl #krate::Op for #name {
            type Output = #out_ty;
            const DEF: &'static #krate::OpDef = &#krate::OpDef::from_parts(#krate::OpParts {
                name: #plain,
                location: #krate::SourceLocation {
                    module: ::core::module_path!(),
                    file: ::core::file!(),
                    line: #line,
                },
                description: #description,
                code_version: #code_version,
                tags: &[#(#tags),*],
                inputs: &[#(#input_meta),*],
                output_type: #output_type,
                output: #output_kind,
                resources: &[#(#resources),*],
                config: #config,
                retries: #retries,
                retry_delay: ::core::time::Duration::from_millis(#retry_delay_ms),
                io_manager: #io_manager,
                codec: #codec,
                compute: { #compute },
                mapped: ::core::option::Option::None,
            });
        }
    }
}

/// The checks a job body's calls of `name` (an op or a graph, `kind`) go through: a trait per
/// input, implemented only for the input's type, whose message names `name`, the input and the
/// producer; `InputAt` per input (checked at each argument); and `Wire` for the tuple of
/// handles of the right length (the arity).
pub(crate) fn wiring_checks(
    kind: &str,
    vis: &syn::Visibility,
    name: &syn::Ident,
    inputs: &[(syn::Ident, Type)],
) -> TokenStream {
    let krate = quote!(::orch::__private);
    let plain = name.unraw().to_string();
    let mut items = Vec::new();
    let mut params = Vec::new();
    let mut handles = Vec::new();
    let mut nodes = Vec::new();
    for (i, (input, ty)) in inputs.iter().enumerate() {
        let input_text = input.unraw().to_string();
        let type_text = crate::expand::type_text(ty);
        let span = ty.span();
        let check = format_ident!("__orch_input_{}_{}", plain, i, span = input.span());
        let message = format!(
            "{kind} `{plain}` expects `{type_text}` for input `{input_text}`, but `{{P}}` produces `{{Self}}`"
        );
        let label = format!(
            "this is an output of `{{P}}`, not the `{type_text}` that `{input_text}` takes"
        );
        items.push(quote_spanned! {span=>
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #[diagnostic::on_unimplemented(message = #message, label = #label)]
            #vis trait #check<P> {}
            impl<P> #check<P> for #ty {}
            impl<__P, __T> #krate::InputAt<#name, #i> for #krate::Handle<__T, __P> where __T: #check<__P> {}
        });
        let p = format_ident!("__P{}", i);
        let t = format_ident!("__T{}", i);
        params.push(quote!(#p, #t));
        handles.push(quote!(#krate::Handle<#t, #p>));
        let field = syn::Index::from(i);
        nodes.push(quote!(__orch_args.#field.node()));
    }
    quote! {
        #(#items)*

        impl<#(#params),*> #krate::Wire<#name> for (#(#handles,)*) {
            fn nodes(&self) -> ::std::vec::Vec<usize> {
                let __orch_args = self;
                ::std::vec![#(#nodes),*]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_gets_a_marker_its_wiring_checks_and_a_definition() {
        let out = op(
            quote!(retries = 2),
            quote!(
                fn process(ctx: &OpContext, #[config] cfg: &Cfg, data: &Vec<u32>) -> Option<u8> {
                    None
                }
            ),
        )
        .to_string();
        assert!(out.contains("struct process { }"), "{out}");
        assert!(out.contains("trait __orch_input_process_0 < P >"), "{out}");
        assert!(out.contains("InputAt < process , 0usize >"), "{out}");
        assert!(out.contains("check_config :: < Cfg >"), "{out}");
        assert!(out.contains("share_optional"), "{out}");
        assert!(out.contains("OpOutput :: Optional"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_never_panic() {
        for item in [
            quote!(
                struct S;
            ),
            quote!(
                fn f<T>(x: T) -> T {
                    x
                }
            ),
            quote!(
                fn f(self) {}
            ),
            quote!(
                fn f((a, b): (u8, u8)) {}
            ),
            quote!(
                fn f(#[config] a: &A, #[config] b: &B) {}
            ),
        ] {
            let out = op(quote!(), item).to_string();
            assert!(out.contains("compile_error"), "{out}");
        }
        let out = op(
            quote!(group = "g"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("unknown key `group` in #[op]"), "{out}");
    }
}
