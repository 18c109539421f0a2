//! `#[asset_check]`: checks the arguments (the asset's name by the compiler), the function's
//! shape (one parameter, the asset's output by reference; `CheckResult` or `Result<CheckResult,
//! E>` back), keeps the function as written (so a test can call it), and registers the check
//! through `inventory`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitBool, LitStr, Token};

use crate::automation::{description, location};

/// `#[asset_check(asset = ASSET, [blocking = BOOL,] [severity = error | warn,] [description = ".."])]`.
#[derive(Default)]
struct CheckArgs {
    asset: Option<syn::Path>,
    blocking: Option<LitBool>,
    warn: Option<bool>,
    description: Option<LitStr>,
}

const CHECK_KEYS: &str = "`asset`, `blocking`, `severity`, `description`";

impl Parse for CheckArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut c = CheckArgs::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let twice = || syn::Error::new(key.span(), format!("`{key}` is given twice"));
            match key.to_string().as_str() {
                "asset" if c.asset.is_none() => c.asset = Some(input.parse()?),
                "blocking" if c.blocking.is_none() => c.blocking = Some(input.parse()?),
                "description" if c.description.is_none() => c.description = Some(input.parse()?),
                "severity" if c.warn.is_none() => {
                    let value: Ident = input.parse()?;
                    c.warn = Some(match value.to_string().as_str() {
                        "warn" => true,
                        "error" => false,
                        other => {
                            return Err(syn::Error::new(
                                value.span(),
                                format!(
                                    "`severity` is `error` (the default) or `warn`, not `{other}`"
                                ),
                            ));
                        }
                    });
                }
                "asset" | "blocking" | "description" | "severity" => return Err(twice()),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown key `{other}`; the keys are {CHECK_KEYS}"),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(c)
    }
}

pub(crate) fn asset_check(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let mut out = syn::Error::new(
                e.span(),
                "#[asset_check] goes on a function: `fn name(asset: &Output) -> CheckResult`",
            )
            .to_compile_error();
            out.extend(item);
            return out;
        }
    };
    match check_inner(args, &function) {
        // The parameter is the asset's output type as written (`&Vec<T>`, as for assets).
        Ok(registration) => quote!(#[allow(clippy::ptr_arg)] #function #registration),
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#function #error)
        }
    }
}

fn check_inner(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let name = &function.sig.ident;
    let who = format!("asset check `{name}`");
    let args: CheckArgs =
        syn::parse2(args).map_err(|e| syn::Error::new(e.span(), format!("{who}: {e}")))?;
    let Some(asset) = &args.asset else {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "{who}: say which asset it checks, with `asset = ASSET` (the asset's function)"
            ),
        ));
    };
    if let Some(asyncness) = &function.sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            format!(
                "{who}: a check is not async (it runs right after its asset, on the asset's worker)"
            ),
        ));
    }
    let shape = format!(
        "{who} takes one parameter, the asset's output by reference (`{}: &T`), and returns `CheckResult` or `Result<CheckResult, E>`",
        asset
            .segments
            .last()
            .map_or_else(|| "asset".to_owned(), |s| s.ident.to_string())
    );
    let param = match function.sig.inputs.first() {
        Some(syn::FnArg::Typed(param))
            if function.sig.inputs.len() == 1 && function.sig.generics.params.is_empty() =>
        {
            param
        }
        _ => return Err(syn::Error::new_spanned(&function.sig, shape)),
    };
    let syn::Type::Reference(reference) = &*param.ty else {
        return Err(syn::Error::new_spanned(&param.ty, shape));
    };
    let returns_result = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => match &**ty {
            syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        syn::ReturnType::Default => {
            return Err(syn::Error::new_spanned(&function.sig, shape));
        }
    };
    let output = quote!(<#asset as ::orch::__private::Asset>::Output);
    let name_text = name.to_string();
    // Spanned on the parameter's type: a type that is not the asset's output is rustc's
    // mismatch there.
    let value_ty = &reference.elem;
    let call = quote_spanned! {value_ty.span()=>
        {
            let value: &#output = ::orch::__private::check_downcast::<#output>(value, #name_text)?;
            #name(value)
        }
    };
    let run = match returns_result {
        true => quote!(#call.map_err(::core::convert::Into::into)),
        false => quote!(::core::result::Result::Ok(#call)),
    };
    let blocking = args.blocking.as_ref().is_some_and(LitBool::value);
    let severity = match args.warn {
        Some(true) => quote!(::orch::__private::CheckSeverity::Warn),
        _ => quote!(::orch::__private::CheckSeverity::Error),
    };
    let description = description(args.description.as_ref(), &function.attrs);
    let location = location(name);
    Ok(quote! {
        const _: () = {
            fn __orch_check(
                value: &::orch::__private::Value,
            ) -> ::core::result::Result<::orch::__private::CheckResult, ::orch::__private::BoxError> {
                #run
            }
            ::orch::__private::inventory::submit! {
                ::orch::__private::CheckDef::from_parts(::orch::__private::CheckParts {
                    name: #name_text,
                    asset: <#asset as ::orch::__private::Asset>::KEY,
                    location: #location,
                    description: #description,
                    blocking: #blocking,
                    severity: #severity,
                    run: __orch_check,
                })
            }
        };
    })
}
