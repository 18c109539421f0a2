//! Code generation. Input is already validated; nothing here re-checks it.
//!
//! For an asset `b(ctx: &AssetContext, a: &Vec<u32>) -> Result<String, E>` the macro emits:
//! - the function itself, unchanged (so it stays callable from unit tests);
//! - `struct b {}`: a braced struct, which lives in the type namespace only, beside the fn in
//!   the value namespace. Downstream parameters named `b` resolve to it, so a missing asset is
//!   rustc's own "cannot find type `b`" error at the parameter, with its `use` suggestion;
//! - `impl Asset for b` with `Output`, `KEY` and `DEPTH = __depth_of_b`, a free const
//!   `1 + max(upstream DEPTH)`. rustc evaluates every free const, so a dependency cycle, even
//!   across modules and files, is a cycle in const evaluation (E0391) naming each asset;
//! - inside `const _: () = { ... }`: the wrapper the runtime calls, which also checks each
//!   parameter's type against its upstream's `Output` through traits whose
//!   `#[diagnostic::on_unimplemented]` messages read as sentences, spanned on the parameter;
//!   and the `inventory` registration.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{AssetFn, ItemFn, Param, Passing};
use crate::attr::{self, AssetAttrs, Dep};
use crate::{hash, valid};

/// Entry point: never panics; on error, emits the original item plus `compile_error!`s.
pub(crate) fn asset(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let attrs = attr::parse(args, &mut errors);
    let parsed: ItemFn = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            errors.push(syn::Error::new(
                first_span(&item),
                "#[asset] goes on a function, e.g. `fn users_cleaned(api_users_raw: &Vec<User>) -> Vec<User> { ... }`",
            ));
            return with_errors(item, errors);
        }
    };
    if !is_block(&parsed.body) {
        errors.push(syn::Error::new(
            parsed.sig.span(),
            format!(
                "asset `{}` needs a body: #[asset] goes on a function definition",
                parsed.sig.ident
            ),
        ));
        return with_errors(item, errors);
    }
    let fallback_marker = valid::nameable_output(&parsed.sig)
        .map(|output| marker_only(&attrs, &parsed.vis, &parsed.sig.ident, &output));
    // The item as emitted on error: without `#[resource]` markers, which rustc would reject.
    let cleaned = parsed.to_token_stream();
    match valid::check(parsed, &mut errors) {
        // Bad attribute keys alone still generate the asset (with the keys that parsed), so
        // downstream assets do not report a cascade of "cannot find type" errors.
        Some(asset) => {
            if let Some(column) = &attrs.partition_by {
                let name = asset.name();
                if attrs.partitions.is_none() {
                    errors.push(syn::Error::new(
                        column.span(),
                        format!(
                            "asset `{name}` has `partition_by` but no `partitions = ...`: it splits a range of partitions, so declare them"
                        ),
                    ));
                } else if attrs.io_manager.is_some() {
                    // Whether the output is a frame is the type's to say (`assert_split_frame`
                    // in the generated code), so an alias of `DataFrame` works.
                    errors.push(syn::Error::new(
                        column.span(),
                        format!(
                            "asset `{name}` has `partition_by`, which splits a frame stored by the default I/O manager: drop `io_manager`"
                        ),
                    ));
                }
            }
            let mut out = generate(&attrs, &asset);
            out.extend(errors.into_iter().map(|e| e.to_compile_error()));
            out
        }
        None => {
            let mut out = with_errors(cleaned, errors);
            out.extend(fallback_marker);
            out
        }
    }
}

/// The marker type and `Asset` impl alone (no registration), for an asset whose signature is
/// invalid: downstream assets still resolve it, so the user sees one error, not a cascade.
fn marker_only(
    attrs: &AssetAttrs,
    vis: &syn::Visibility,
    name: &syn::Ident,
    output: &syn::Type,
) -> TokenStream {
    let krate = quote!(::orch::__private);
    let key_path: Vec<String> = attrs
        .key_prefix
        .iter()
        .cloned()
        .chain(std::iter::once(name.unraw().to_string()))
        .collect();
    quote_spanned! {name.span()=>
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        impl #krate::Asset for #name {
            type Output = #output;
            const KEY: #krate::StaticKey = #krate::StaticKey { path: &[#(#key_path),*] };
            const DEPTH: usize = 1;
        }
    }
}

fn with_errors(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote!(#item #(#errors)*)
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

fn is_block(body: &TokenStream) -> bool {
    let mut tokens = body.clone().into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(proc_macro2::TokenTree::Group(g)), None) if g.delimiter() == proc_macro2::Delimiter::Brace
    )
}

fn generate(attrs: &AssetAttrs, asset: &AssetFn) -> TokenStream {
    let krate = quote!(::orch::__private);
    let item = &asset.item;
    let name = asset.name();
    let plain_name = name.unraw().to_string();
    let vis = &item.vis;
    let fn_attrs = &item.attrs;
    let sig = &item.sig;
    let body = &item.body;
    let out_ty = &asset.output.ty;
    let depth_const = format_ident!("__depth_of_{}", plain_name, span = name.span());

    let key_path: Vec<String> = attrs
        .key_prefix
        .iter()
        .cloned()
        .chain(std::iter::once(plain_name.clone()))
        .collect();

    // Each upstream is named once, by a type alias spanned on the parameter name: a missing
    // asset or a function that is not one is then a single error at the parameter, and every
    // later use goes through the alias.
    let mut aliases = Vec::new();
    let mut alias_for = |path: &dyn ToTokens, span: Span, kind: &str| {
        let alias = format_ident!(
            "__orch_{}_{}_{}",
            kind,
            plain_name,
            aliases.len(),
            span = span
        );
        aliases.push(quote_spanned! {span=>
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #alias = #path;
        });
        alias
    };
    let input_aliases: Vec<syn::Ident> = asset
        .inputs()
        .map(|input| alias_for(&input.name, input.name.span(), "in"))
        .collect();
    let dep_aliases: Vec<Option<syn::Ident>> = attrs
        .deps
        .iter()
        .map(|dep| match dep {
            Dep::Asset(path) => Some(alias_for(path, path.span(), "dep")),
            Dep::Key(_) => None,
        })
        .collect();
    // `<alias as Asset>`, spanned like the alias, so errors about it land on the parameter
    // (and identical errors from several uses are reported once).
    let asset_of = |alias: &syn::Ident| {
        let span = alias.span();
        quote_spanned!(span=> <#alias as #krate::Asset>)
    };
    let depth = input_aliases
        .iter()
        .chain(dep_aliases.iter().flatten())
        .fold(quote!(0usize), |acc, alias| {
            let up = asset_of(alias);
            quote_spanned!(name.span()=> #krate::max(#acc, #up::DEPTH))
        });
    let input_keys: Vec<TokenStream> = input_aliases
        .iter()
        .map(|alias| {
            let up = asset_of(alias);
            quote!(#up::KEY)
        })
        .collect();
    let input_partitions: Vec<TokenStream> = asset
        .inputs()
        .map(|input| match input.mapping {
            None => quote!(#krate::PartitionMapping::Identity),
            Some(crate::ast::Mapping::Offset(o)) => quote!(#krate::PartitionMapping::Offset(#o)),
            Some(crate::ast::Mapping::Last(n)) => quote!(#krate::PartitionMapping::Last(#n)),
        })
        .collect();
    let dep_keys: Vec<TokenStream> = attrs
        .deps
        .iter()
        .zip(&dep_aliases)
        .map(|(dep, alias)| match (dep, alias) {
            (Dep::Asset(_), Some(alias)) => {
                let up = asset_of(alias);
                quote!(#up::KEY)
            }
            (Dep::Key(path), _) => quote!(#krate::StaticKey { path: &[#(#path),*] }),
            (Dep::Asset(_), None) => unreachable!("every asset dep has an alias"),
        })
        .collect();

    // The wrapper's body: take each input out of the slice as the type the parameter asks for
    // (so a wrong type is one error, the trait check below, not a cascade), then call.
    let mut prelude = Vec::new();
    let mut call_args = Vec::new();
    let ctx_expr = if asset.is_async() {
        quote!(&__orch_ctx)
    } else {
        quote!(__orch_ctx)
    };
    let mut inputs = asset.inputs().zip(&input_aliases).enumerate();
    let mut resources = Vec::new();
    for param in &asset.params {
        match param {
            Param::Context => call_args.push(ctx_expr.clone()),
            Param::Resource(ty) => {
                resource_param(ty, &ctx_expr, &mut prelude, &mut resources, &mut call_args);
            }
            Param::Input(_) => {
                let Some((index, (input, alias))) = inputs.next() else {
                    unreachable!("one alias per input")
                };
                let var = format_ident!("__orch_in_{}", index);
                let ty = &input.ty;
                let up_text = input.name.unraw().to_string();
                let produced = asset_of(alias);
                let ty_span = ty.span();
                prelude.push(quote_spanned! {ty_span=>
                    #krate::assert_input::<#ty, #alias, #name, #produced::Output>();
                });
                if let Some(crate::ast::Mapping::Last(_)) = input.mapping {
                    prelude.push(quote_spanned! {ty_span=>
                        #krate::assert_concat_frames::<#ty, #name>();
                    });
                }
                prelude.push(quote! {
                    let #var = #krate::input::<#ty>(&__orch_inputs, #index, #up_text)?;
                    let #var: &#ty = &*#var;
                });
                call_args.push(match input.passing {
                    Passing::Borrowed => quote!(#var),
                    Passing::Owned => {
                        quote_spanned!(ty_span=> #krate::clone_input::<#ty, #alias, #name>(#var))
                    }
                });
            }
        }
    }
    let out_span = match &sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => name.span(),
    };
    let finish = if asset.output.fallible {
        quote_spanned!(out_span=> #krate::share_result::<_, _, #name>(__orch_out))
    } else {
        quote_spanned!(out_span=> #krate::share::<_, #name>(__orch_out))
    };
    if attrs.partition_by.is_some() {
        prelude.push(quote_spanned! {out_span=>
            #krate::assert_split_frame::<#out_ty, #name>();
        });
    }
    let compute = compute_fn(name, asset.is_async(), &prelude, &call_args, &finish);

    let opt = |v: &Option<String>| match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let group = opt(&attrs.group);
    let description = opt(&attrs.description.clone().or_else(|| asset.doc.clone()));
    let code_version = attrs
        .code_version
        .clone()
        .unwrap_or_else(|| hash::code_version(&format!("{} {}", sig.to_token_stream(), body)));
    let pairs = |pairs: &[(String, String)]| {
        let items = pairs.iter().map(|(k, v)| quote!((#k, #v)));
        quote!(&[#(#items),*])
    };
    let tags = pairs(&attrs.tags);
    let metadata = pairs(&attrs.metadata);
    let owners = &attrs.owners;
    let retries = attrs.retries;
    let io_manager = opt(&attrs.io_manager);
    // The default manager stores bytes: the output must be serde-storable (checked here, at
    // the output type). Other managers take the value as it is.
    let codec = match &attrs.io_manager {
        // Frame or serde is decided by the type (see `CodecProbe`), so aliases work; spanned on
        // the output type, where an unstorable type's error belongs.
        None => default_codec(out_span, out_ty, name, "codec"),
        Some(_) => quote!(::core::option::Option::None),
    };
    let retry_delay_ms = attrs.retry_delay_ms;
    let always_run = attrs.always_run;
    let partition_by = opt(&attrs.partition_by.as_ref().map(syn::LitStr::value));
    // A plain fn (no closure in a static); the definition's builders are in scope without an
    // import, and the expression's type errors point at the expression.
    let partitions = match &attrs.partitions {
        Some(expr) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some({
                fn __orch_partitions() -> #krate::PartitionsDefinition {
                    #[allow(unused_imports)]
                    use #krate::partitions::*;
                    ::core::convert::Into::into(#expr)
                }
                __orch_partitions
            })
        },
        None => quote!(::core::option::Option::None),
    };
    let automation = match &attrs.automation {
        Some(expr) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some({
                fn __orch_automation() -> #krate::AutomationCondition {
                    #[allow(unused_imports)]
                    use #krate::conditions::*;
                    #expr
                }
                __orch_automation
            })
        },
        None => quote!(::core::option::Option::None),
    };
    let freshness = match &attrs.freshness {
        Some(expr) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some({
                fn __orch_freshness() -> #krate::FreshnessPolicy {
                    #[allow(unused_imports)]
                    use #krate::freshness::{self, *};
                    ::core::convert::Into::into(#expr)
                }
                __orch_freshness
            })
        },
        None => quote!(::core::option::Option::None),
    };
    let output_type = type_text(out_ty);
    let line = quote_spanned!(name.span()=> ::core::line!());
    let marker_doc = format!(
        "The asset `{plain_name}` as a type: names it in `deps`, in typed results \
         (`result.output::<{plain_name}>()`) and in test injections. Generated by `#[asset]`."
    );
    let computed = compute;
    // Spanned on the function name, so cycle notes point at each asset on the cycle.
    let marker_items = quote_spanned! {name.span()=>
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #depth_const: usize = 1 + #depth;

        impl #krate::Asset for #name {
            type Output = #out_ty;
            const KEY: #krate::StaticKey = #krate::StaticKey { path: &[#(#key_path),*] };
            const DEPTH: usize = #depth_const;
        }
    };

    quote! {
        #(#fn_attrs)*
        #[allow(clippy::ptr_arg)]
        #vis #sig #body

        #[doc = #marker_doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        #(#aliases)*

        #marker_items

        const _: () = {
            #krate::inventory::submit! {
                #krate::AssetDef::from_parts(#krate::AssetParts {
                    key: <#name as #krate::Asset>::KEY,
                    location: #krate::SourceLocation {
                        module: ::core::module_path!(),
                        file: ::core::file!(),
                        line: #line,
                    },
                    group: #group,
                    description: #description,
                    code_version: #code_version,
                    tags: #tags,
                    metadata: #metadata,
                    owners: &[#(#owners),*],
                    inputs: &[#(#input_keys),*],
                    input_partitions: &[#(#input_partitions),*],
                    input_adapters: &[],
                    deps: &[#(#dep_keys),*],
                    retries: #retries,
                    retry_delay: ::core::time::Duration::from_millis(#retry_delay_ms),
                    always_run: #always_run,
                    partitions: #partitions,
                    partition_by: #partition_by,
                    automation: #automation,
                    freshness: #freshness,
                    resources: &[#(#resources),*],
                    io_manager: #io_manager,
                    codec: #codec,
                    output_type: #output_type,
                    compute: { #computed },
                })
            }
        };
    }
}

/// A `#[resource] name: &T` parameter of an asset or an op: fetched from the context before
/// the call (`prelude`), declared in the registration (`resources`), passed (`call_args`).
pub(crate) fn resource_param(
    ty: &syn::Type,
    ctx: &TokenStream,
    prelude: &mut Vec<TokenStream>,
    resources: &mut Vec<TokenStream>,
    call_args: &mut Vec<TokenStream>,
) {
    let krate = quote!(::orch::__private);
    let var = format_ident!("__orch_res_{}", resources.len());
    let span = ty.span();
    prelude.push(quote_spanned! {span=>
        let #var: &#ty = #krate::resource::<#ty>(#ctx)?;
    });
    resources.push(quote_spanned! {span=>
        #krate::ResourceKey {
            type_id: ::core::any::TypeId::of::<#ty>,
            type_name: ::core::any::type_name::<#ty>,
        }
    });
    call_args.push(quote!(#var));
}

/// The function the runtime calls for an asset or an op `name`: takes each input out of the
/// slice (`prelude`), calls the user's function with `call_args` and shares the output
/// (`finish`); sync on the blocking pool, or async on the workers.
pub(crate) fn compute_fn(
    name: &syn::Ident,
    is_async: bool,
    prelude: &[TokenStream],
    call_args: &[TokenStream],
    finish: &TokenStream,
) -> TokenStream {
    let krate = quote!(::orch::__private);
    if is_async {
        quote! {
            fn __orch_compute(
                __orch_ctx: #krate::AssetContext,
                __orch_inputs: ::std::vec::Vec<#krate::Value>,
            ) -> #krate::BoxFuture {
                ::std::boxed::Box::pin(async move {
                    #(#prelude)*
                    let __orch_out = #name(#(#call_args),*).await;
                    #finish
                })
            }
            #krate::Compute::Async(__orch_compute)
        }
    } else {
        quote! {
            fn __orch_compute(
                __orch_ctx: &#krate::AssetContext,
                __orch_inputs: &[#krate::Value],
            ) -> ::core::result::Result<#krate::Value, #krate::BoxError> {
                #(#prelude)*
                let __orch_out = #name(#(#call_args),*);
                #finish
            }
            #krate::Compute::Sync(__orch_compute)
        }
    }
}

/// The default I/O manager's codec of output type `out_ty` of `name`: frame or serde, decided
/// by the type itself (see `CodecProbe`), through `method` (`codec` for an asset, `op_codec`
/// for an op, whose messages name an op); spanned on the output type, where an unstorable
/// type's error belongs.
pub(crate) fn default_codec(
    out_span: Span,
    out_ty: &syn::Type,
    name: &syn::Ident,
    method: &str,
) -> TokenStream {
    let krate = quote!(::orch::__private);
    let method = syn::Ident::new(method, out_span);
    quote_spanned! {out_span=>
        ::core::option::Option::Some({
            fn __orch_codec() -> #krate::Codec {
                #[allow(unused_imports)]
                use #krate::{ProbeFrame as _, ProbeSerde as _};
                (&&#krate::CodecProbe::<#out_ty, #name>::new()).kind().#method()
            }
            __orch_codec
        })
    }
}

/// The type as a person writes it: `Vec<User>`, not `Vec < User >`.
pub(crate) fn type_text(ty: &syn::Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            let tight_before = matches!(next, Some('<' | '>' | ',' | ':' | ')' | ']'));
            let tight_after = matches!(prev, Some('<' | '&' | ':' | '(' | '['));
            if tight_before || tight_after {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        asset(args, item).to_string()
    }

    #[test]
    fn type_text_reads_naturally() {
        let ty: syn::Type =
            syn::parse_quote!(Vec<std::collections::HashMap<String, (u32, &'static str)>>);
        assert_eq!(
            type_text(&ty),
            "Vec<std::collections::HashMap<String, (u32, &'static str)>>"
        );
    }

    #[test]
    fn generates_marker_registration_and_checks() {
        let out = expand(
            quote!(group = "g"),
            quote!(
                /// Doc line.
                fn b(ctx: &AssetContext, a: &Vec<u32>, c: String) -> Result<u8, E> {
                    1
                }
            ),
        );
        assert!(out.contains("struct b { }"), "{out}");
        assert!(out.contains("const __depth_of_b : usize"), "{out}");
        assert!(out.contains("type Output = u8"), "{out}");
        assert!(out.contains("\"Doc line.\""), "{out}");
        assert!(out.contains("type __orch_in_b_0 = a ;"), "{out}");
        assert!(
            out.contains("assert_input :: < Vec < u32 > , __orch_in_b_0 , b"),
            "{out}"
        );
        assert!(
            out.contains("clone_input :: < String , __orch_in_b_1 , b >"),
            "{out}"
        );
        assert!(out.contains("share_result"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_never_panic() {
        let out = expand(
            quote!(),
            quote!(
                fn a<T>(x: T) -> T {
                    x
                }
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("fn a < T > (x : T) -> T { x }"), "{out}");
        // Generic: no marker can be named.
        assert!(!out.contains("struct a"), "{out}");
        // A bad parameter: the marker is still there, unregistered.
        let out = expand(
            quote!(),
            quote!(
                fn b((x, y): &(u8, u8)) -> u8 {
                    x
                }
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("struct b { }"), "{out}");
        assert!(!out.contains("inventory"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("goes on a function"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                fn f();
            ),
        );
        assert!(out.contains("needs a body"), "{out}");
    }
}
