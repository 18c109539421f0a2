//! `#[sensor]`: checks the arguments (the job's name by the compiler; the selection, the
//! interval and the time-out with orch-core's parsers) and the function's shape, keeps the
//! function as written (so a test can call it), and registers the sensor through `inventory`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, ItemFn, LitBool, LitStr, Token};

use crate::automation::{check_selection, description, location, parse_status};

/// `#[sensor([on_asset = ASSET | on_run_failure,] job = JOB | select = "..", [interval = "30s",] [timeout = "60s",]
/// [default_status = running | stopped,] [description = "..",] [skip_if_running = BOOL])]`.
#[derive(Default)]
struct SensorArgs {
    on_asset: Option<syn::Path>,
    on_run_failure: bool,
    job: Option<syn::Path>,
    select: Option<LitStr>,
    interval: Option<LitStr>,
    timeout: Option<LitStr>,
    running: Option<bool>,
    description: Option<LitStr>,
    skip_if_running: Option<LitBool>,
}

const SENSOR_KEYS: &str = "`job`, `select`, `on_asset`, `on_run_failure`, `interval`, `timeout`, `default_status`, `description`, `skip_if_running`";

impl Parse for SensorArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut s = SensorArgs::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if key == "on_run_failure" {
                if s.on_run_failure {
                    return Err(syn::Error::new(
                        key.span(),
                        "`on_run_failure` is given twice",
                    ));
                }
                s.on_run_failure = true;
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            input.parse::<Token![=]>()?;
            let twice = || syn::Error::new(key.span(), format!("`{key}` is given twice"));
            match key.to_string().as_str() {
                "job" if s.job.is_none() => s.job = Some(input.parse()?),
                "on_asset" if s.on_asset.is_none() => s.on_asset = Some(input.parse()?),
                "select" if s.select.is_none() => s.select = Some(input.parse()?),
                "interval" if s.interval.is_none() => s.interval = Some(input.parse()?),
                "timeout" if s.timeout.is_none() => s.timeout = Some(input.parse()?),
                "description" if s.description.is_none() => s.description = Some(input.parse()?),
                "skip_if_running" if s.skip_if_running.is_none() => {
                    s.skip_if_running = Some(input.parse()?);
                }
                "default_status" if s.running.is_none() => {
                    s.running = Some(parse_status(input, "")?);
                }
                "job" | "select" | "on_asset" | "interval" | "timeout" | "description"
                | "skip_if_running" | "default_status" => return Err(twice()),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown key `{other}`; the keys are {SENSOR_KEYS}"),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(s)
    }
}

pub(crate) fn sensor(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let mut out = syn::Error::new(
                e.span(),
                "#[sensor] goes on a function: `fn name(ctx: &SensorContext) -> Result<SensorResult, BoxError>`",
            )
            .to_compile_error();
            out.extend(item);
            return out;
        }
    };
    match sensor_inner(args, &function) {
        Ok(registration) => quote!(#function #registration),
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#function #error)
        }
    }
}

/// Milliseconds of a duration literal, checked with orch-core's parser.
fn millis(who: &str, key: &str, lit: Option<&LitStr>, default: u64) -> syn::Result<u64> {
    let Some(lit) = lit else {
        return Ok(default);
    };
    let d = orch_core::automation::parse_interval(&lit.value())
        .map_err(|e| syn::Error::new(lit.span(), format!("{who}: `{key}`: {e}")))?;
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn sensor_inner(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let name = &function.sig.ident;
    let who = format!("sensor `{name}`");
    let args: SensorArgs =
        syn::parse2(args).map_err(|e| syn::Error::new(e.span(), format!("{who}: {e}")))?;
    if let Some(asyncness) = &function.sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            format!(
                "{who}: a sensor function is not async (the daemon runs it on a thread of its own, with a time-out); block inside it if you must"
            ),
        ));
    }
    if args.on_run_failure && args.on_asset.is_some() {
        return Err(syn::Error::new(
            name.span(),
            format!("{who}: give `on_asset` or `on_run_failure`, not both"),
        ));
    }
    let (params, shape) = match (&args.on_asset, args.on_run_failure) {
        (Some(_), _) => (
            2,
            "an asset sensor takes `ctx: &SensorContext, materialization: &AssetMaterialization` and returns `Result<SensorResult, BoxError>`",
        ),
        (None, true) => (
            2,
            "a run-failure sensor takes `ctx: &SensorContext, run: &RunFailure` and returns `Result<SensorResult, BoxError>`",
        ),
        (None, false) => (
            1,
            "a sensor takes one parameter, `ctx: &SensorContext`, and returns `Result<SensorResult, BoxError>`",
        ),
    };
    if function.sig.inputs.len() != params || !function.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &function.sig,
            format!("{who}: {shape}"),
        ));
    }
    let target = match (&args.job, &args.select) {
        (Some(job), None) => quote!(::core::option::Option::Some(
            ::orch::__private::ScheduleTarget::Job(<#job as ::orch::__private::Job>::NAME)
        )),
        (None, Some(select)) => {
            check_selection(&who, select)?;
            quote!(::core::option::Option::Some(
                ::orch::__private::ScheduleTarget::Selection(#select)
            ))
        }
        (Some(job), Some(_)) => {
            return Err(syn::Error::new_spanned(
                job,
                format!("{who}: give `job` or `select`, not both"),
            ));
        }
        // A run-failure sensor may only alert.
        (None, None) if args.on_run_failure => quote!(::core::option::Option::None),
        (None, None) => {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "{who}: say what its runs run, with `job = JOB` (an `asset_job!`) or `select = \"..\"`"
                ),
            ));
        }
    };
    let interval = millis(&who, "interval", args.interval.as_ref(), 30_000)?;
    let timeout = millis(&who, "timeout", args.timeout.as_ref(), 60_000)?;
    let status = match args.running {
        Some(true) => quote!(::orch::__private::DefaultStatus::Running),
        _ => quote!(::orch::__private::DefaultStatus::Stopped),
    };
    let skip = args.skip_if_running.as_ref().is_some_and(LitBool::value);
    // `on_asset` names the asset's generated item: a typo is rustc's error at that token.
    let kind = match &args.on_asset {
        Some(asset) => quote!(::orch::__private::SensorKind::OnAsset {
            asset: <#asset as ::orch::__private::Asset>::KEY,
            function: #name,
        }),
        None if args.on_run_failure => {
            quote!(::orch::__private::SensorKind::OnRunFailure(#name))
        }
        None => quote!(::orch::__private::SensorKind::Custom(#name)),
    };
    let name_text = name.to_string();
    let description = description(args.description.as_ref(), &function.attrs);
    let location = location(name);
    Ok(quote! {
        const _: () = {
            ::orch::__private::inventory::submit! {
                ::orch::__private::SensorDef::from_parts(::orch::__private::SensorParts {
                    name: #name_text,
                    target: #target,
                    kind: #kind,
                    interval_ms: #interval,
                    timeout_ms: #timeout,
                    default_status: #status,
                    description: #description,
                    skip_if_running: #skip,
                    location: #location,
                })
            }
        };
    })
}
