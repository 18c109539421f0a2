//! `asset_job!` and `schedule!`: parse the arguments, check the selection, cron string and time
//! zone at compile time (with orch-core's own parsers, so the compiler and the runtime agree),
//! and register the definition through `inventory`. Also the compile-time checks of the
//! literals in `#[asset(automation = ..)]` conditions and `freshness = ..` policies.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitBool, LitInt, LitStr, Token, Visibility};

use crate::ast::doc_comment;

/// `asset_job!(/// doc  NAME, "selection" [, description = ".."])`.
struct JobInput {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    selection: LitStr,
    description: Option<LitStr>,
}

impl Parse for JobInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![,]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("asset job `{name}`: expected `, \"selection\"` after the name, e.g. `asset_job!({name}, \"group:sources\")`"),
            )
        })?;
        let selection: LitStr = input.parse()?;
        let mut description = None;
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "description" if description.is_none() => description = Some(input.parse()?),
                "description" => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("asset job `{name}`: `description` is given twice"),
                    ));
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "asset job `{name}`: unknown key `{other}`; the keys are `description`"
                        ),
                    ));
                }
            }
        }
        Ok(JobInput {
            attrs,
            vis,
            name,
            selection,
            description,
        })
    }
}

/// Checks a selection string at compile time.
pub(crate) fn check_selection(what: &str, lit: &LitStr) -> syn::Result<()> {
    lit.value()
        .parse::<orch_core::AssetSelection>()
        .map(drop)
        .map_err(|e| syn::Error::new(lit.span(), format!("{what}: {e}")))
}

pub(crate) fn location(name: &Ident) -> TokenStream {
    let line = quote_spanned!(name.span()=> ::core::line!());
    quote! {
        ::orch::__private::SourceLocation {
            module: ::core::module_path!(),
            file: ::core::file!(),
            line: #line,
        }
    }
}

/// The item a job or schedule is named by: a braced struct with the name, implementing
/// `trait_path` (whose `NAME` is the name).
fn marker(
    attrs: &[Attribute],
    vis: &Visibility,
    name: &Ident,
    doc: &str,
    trait_path: TokenStream,
) -> TokenStream {
    let name_text = name.to_string();
    quote! {
        #(#attrs)*
        #[doc = #doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        impl #trait_path for #name {
            const NAME: &'static str = #name_text;
        }
    }
}

pub(crate) fn description(given: Option<&LitStr>, attrs: &[Attribute]) -> TokenStream {
    match given.map(LitStr::value).or_else(|| doc_comment(attrs)) {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    }
}

pub(crate) fn asset_job(input: TokenStream) -> TokenStream {
    let job: JobInput = match syn::parse2(input) {
        Ok(job) => job,
        Err(e) => return e.to_compile_error(),
    };
    let name = &job.name;
    if let Err(e) = check_selection(&format!("asset job `{name}`"), &job.selection) {
        return e.to_compile_error();
    }
    let name_text = name.to_string();
    let selection = &job.selection;
    let description = description(job.description.as_ref(), &job.attrs);
    let location = location(name);
    let attrs = &job.attrs;
    let vis = &job.vis;
    let marker_doc = format!(" The asset job `{name_text}` (`{}`).", selection.value());
    let marker = marker(
        attrs,
        vis,
        name,
        &marker_doc,
        quote!(::orch::__private::Job),
    );
    quote! {
        #marker

        const _: () = {
            ::orch::__private::inventory::submit! {
                ::orch::__private::JobDef::new(#name_text, #selection, #description, #location)
            }
        };
    }
}

/// `running` or `stopped`, after `default_status =` (true for running); `who` prefixes the
/// error.
pub(crate) fn parse_status(input: ParseStream<'_>, who: &str) -> syn::Result<bool> {
    let status: Ident = input.parse()?;
    match status.to_string().as_str() {
        "running" => Ok(true),
        "stopped" => Ok(false),
        other => Err(syn::Error::new(
            status.span(),
            format!("{who}`default_status = {other}` is not a status; use `running` or `stopped`"),
        )),
    }
}

/// `schedule!(NAME, job = JOB | select = "..", cron = "..", [timezone = "..",]
/// [default_status = running | stopped,] [description = "..",] [catchup = N,]
/// [skip_if_running = BOOL])`.
struct ScheduleInput {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    job: Option<syn::Path>,
    select: Option<LitStr>,
    cron: Option<LitStr>,
    timezone: Option<LitStr>,
    running: Option<bool>,
    description: Option<LitStr>,
    catchup: Option<LitInt>,
    skip_if_running: Option<LitBool>,
    decide: Option<syn::Path>,
    timeout: Option<LitStr>,
}

const SCHEDULE_KEYS: &str = "`job`, `select`, `cron`, `timezone`, `default_status`, `description`, `catchup`, `skip_if_running`, `decide`, `timeout`";

impl Parse for ScheduleInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        let mut s = ScheduleInput {
            attrs,
            vis,
            name,
            job: None,
            select: None,
            cron: None,
            timezone: None,
            running: None,
            description: None,
            catchup: None,
            skip_if_running: None,
            decide: None,
            timeout: None,
        };
        let who = format!("schedule `{}`", s.name);
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let twice = || syn::Error::new(key.span(), format!("{who}: `{key}` is given twice"));
            match key.to_string().as_str() {
                "job" if s.job.is_none() => s.job = Some(input.parse()?),
                "select" if s.select.is_none() => s.select = Some(input.parse()?),
                "cron" if s.cron.is_none() => s.cron = Some(input.parse()?),
                "timezone" if s.timezone.is_none() => s.timezone = Some(input.parse()?),
                "description" if s.description.is_none() => s.description = Some(input.parse()?),
                "catchup" if s.catchup.is_none() => s.catchup = Some(input.parse()?),
                "skip_if_running" if s.skip_if_running.is_none() => {
                    s.skip_if_running = Some(input.parse()?);
                }
                "decide" if s.decide.is_none() => s.decide = Some(input.parse()?),
                "timeout" if s.timeout.is_none() => s.timeout = Some(input.parse()?),
                "default_status" if s.running.is_none() => {
                    s.running = Some(parse_status(input, &format!("{who}: "))?);
                }
                "job" | "select" | "cron" | "timezone" | "description" | "catchup"
                | "skip_if_running" | "default_status" | "decide" | "timeout" => {
                    return Err(twice());
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("{who}: unknown key `{other}`; the keys are {SCHEDULE_KEYS}"),
                    ));
                }
            }
        }
        if !input.is_empty() {
            return Err(input.error(format!("{who}: expected `, key = value`")));
        }
        Ok(s)
    }
}

pub(crate) fn schedule(input: TokenStream) -> TokenStream {
    match schedule_inner(input) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn schedule_inner(input: TokenStream) -> syn::Result<TokenStream> {
    let s: ScheduleInput = syn::parse2(input)?;
    let name = &s.name;
    let who = format!("schedule `{name}`");
    let target = match (&s.job, &s.select) {
        (Some(job), None) => quote!(::orch::__private::ScheduleTarget::Job(
            <#job as ::orch::__private::Job>::NAME
        )),
        (None, Some(select)) => {
            check_selection(&who, select)?;
            quote!(::orch::__private::ScheduleTarget::Selection(#select))
        }
        (Some(job), Some(_)) => {
            return Err(syn::Error::new_spanned(
                job,
                format!("{who}: give `job` or `select`, not both"),
            ));
        }
        (None, None) => {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "{who}: say what it runs, with `job = JOB` (an `asset_job!`) or `select = \"..\"`"
                ),
            ));
        }
    };
    let Some(cron) = &s.cron else {
        return Err(syn::Error::new(
            name.span(),
            format!("{who}: add `cron = \"..\"`, e.g. `cron = \"0 2 * * *\"` (daily at 02:00)"),
        ));
    };
    orch_core::automation::cron::parse_cron(&cron.value())
        .map_err(|e| syn::Error::new(cron.span(), format!("{who}: {e}")))?;
    let timezone = match &s.timezone {
        Some(tz) => {
            orch_core::automation::cron::parse_time_zone(&tz.value())
                .map_err(|e| syn::Error::new(tz.span(), format!("{who}: {e}")))?;
            tz.value()
        }
        None => "UTC".to_owned(),
    };
    let status = match s.running {
        Some(true) => quote!(::orch::__private::DefaultStatus::Running),
        _ => quote!(::orch::__private::DefaultStatus::Stopped),
    };
    let catchup = match &s.catchup {
        Some(n) => {
            n.base10_parse::<u32>()
                .map_err(|e| syn::Error::new(n.span(), format!("{who}: `catchup`: {e}")))?;
            quote!(#n)
        }
        None => quote!(5),
    };
    let skip = s.skip_if_running.as_ref().is_some_and(LitBool::value);
    // `decide = FN`: a function of `&ScheduleContext` returning a decision (or a `Result` of
    // one); a function of another shape is rustc's error at the path.
    let decide = match &s.decide {
        Some(path) => quote_spanned! {path.span()=>
            ::core::option::Option::Some({
                fn __orch_decide(
                    ctx: &::orch::__private::ScheduleContext,
                ) -> ::core::result::Result<
                    ::orch::__private::ScheduleDecision,
                    ::orch::__private::BoxError,
                > {
                    ::orch::__private::IntoScheduleDecision::into_decision(#path(ctx))
                }
                __orch_decide
            })
        },
        None => quote!(::core::option::Option::None),
    };
    let decide_timeout_ms: u64 = match (&s.timeout, &s.decide) {
        (None, _) => 60_000,
        (Some(lit), None) => {
            return Err(syn::Error::new(
                lit.span(),
                format!("{who}: `timeout` limits a `decide` function, and this schedule has none"),
            ));
        }
        (Some(lit), Some(_)) => orch_core::automation::parse_interval(&lit.value())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .map_err(|e| syn::Error::new(lit.span(), format!("{who}: `timeout`: {e}")))?,
    };
    let name_text = name.to_string();
    let description = description(s.description.as_ref(), &s.attrs);
    let location = location(name);
    let attrs = &s.attrs;
    let vis = &s.vis;
    let marker_doc = format!(" The schedule `{name_text}` (`{}`).", cron.value());
    let marker = marker(
        attrs,
        vis,
        name,
        &marker_doc,
        quote!(::orch::__private::Schedule),
    );
    Ok(quote! {
        #marker

        const _: () = {
            ::orch::__private::inventory::submit! {
                ::orch::__private::ScheduleDef::from_parts(::orch::__private::ScheduleParts {
                    name: #name_text,
                    target: #target,
                    cron: #cron,
                    timezone: #timezone,
                    default_status: #status,
                    description: #description,
                    catchup: #catchup,
                    skip_if_running: #skip,
                    location: #location,
                    decide: #decide,
                    decide_timeout_ms: #decide_timeout_ms,
                })
            }
        };
    })
}

/// Checks the literal cron strings and time zones in an `automation = ...` condition
/// (`on_cron("..")`, `on_cron_in("..", "Zone")`, `cron_tick_passed("..")`,
/// `all_deps_updated_since_cron("..")`), wherever they are nested: each bad one is an error at
/// its string. Strings built at run time are checked at startup instead.
pub(crate) fn check_condition_crons(expr: &syn::Expr, errors: &mut Vec<syn::Error>) {
    use syn::Expr;
    match expr {
        Expr::Binary(b) => {
            check_condition_crons(&b.left, errors);
            check_condition_crons(&b.right, errors);
        }
        Expr::Unary(u) => check_condition_crons(&u.expr, errors),
        Expr::Paren(p) => check_condition_crons(&p.expr, errors),
        Expr::Group(g) => check_condition_crons(&g.expr, errors),
        Expr::MethodCall(m) => {
            check_condition_crons(&m.receiver, errors);
            m.args.iter().for_each(|a| check_condition_crons(a, errors));
        }
        Expr::Call(call) => {
            let name = match &*call.func {
                Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
                _ => None,
            };
            let lit = |i: usize| match call.args.iter().nth(i) {
                Some(Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                })) => Some(s),
                _ => None,
            };
            match name.as_deref() {
                Some(
                    "on_cron" | "on_cron_in" | "cron_tick_passed" | "all_deps_updated_since_cron",
                ) => {
                    let who = name.unwrap_or_default();
                    if let Some(cron) = lit(0)
                        && let Err(e) = orch_core::automation::cron::parse_cron(&cron.value())
                    {
                        errors.push(syn::Error::new(cron.span(), format!("`{who}`: {e}")));
                    }
                    if who == "on_cron_in"
                        && let Some(tz) = lit(1)
                        && let Err(e) = orch_core::automation::cron::parse_time_zone(&tz.value())
                    {
                        errors.push(syn::Error::new(tz.span(), format!("`{who}`: {e}")));
                    }
                }
                _ => call
                    .args
                    .iter()
                    .for_each(|a| check_condition_crons(a, errors)),
            }
        }
        _ => {}
    }
}

/// Checks the literals of a `freshness = ...` policy: a duration string (`"1h"`), and in
/// `window("..")`, `.warn("..")`, `cron("..", "..")` and `.timezone("..")` the durations, the
/// cron string and the time zone. Each bad one is an error at its string.
pub(crate) fn check_freshness(expr: &syn::Expr, errors: &mut Vec<syn::Error>) {
    use syn::Expr;
    let lit = |e: Option<&Expr>| match e {
        Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        })) => Some(s.clone()),
        _ => None,
    };
    let duration = |s: Option<syn::LitStr>, errors: &mut Vec<syn::Error>| {
        if let Some(s) = s
            && let Err(e) = orch_core::automation::parse_interval(&s.value())
        {
            errors.push(syn::Error::new(
                s.span(),
                format!("invalid freshness window: {e}"),
            ));
        }
    };
    match expr {
        Expr::Lit(_) => duration(lit(Some(expr)), errors),
        Expr::Paren(p) => check_freshness(&p.expr, errors),
        Expr::Group(g) => check_freshness(&g.expr, errors),
        Expr::MethodCall(m) => {
            check_freshness(&m.receiver, errors);
            match m.method.to_string().as_str() {
                "warn" => duration(lit(m.args.first()), errors),
                "timezone" => {
                    if let Some(tz) = lit(m.args.first())
                        && let Err(e) = orch_core::automation::cron::parse_time_zone(&tz.value())
                    {
                        errors.push(syn::Error::new(tz.span(), e.to_string()));
                    }
                }
                _ => {}
            }
        }
        Expr::Call(call) => {
            let name = match &*call.func {
                Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
                _ => None,
            };
            match name.as_deref() {
                Some("window") => duration(lit(call.args.first()), errors),
                Some("cron") => {
                    if let Some(c) = lit(call.args.first())
                        && let Err(e) = orch_core::automation::cron::parse_cron(&c.value())
                    {
                        errors.push(syn::Error::new(
                            c.span(),
                            format!("freshness deadline: {e}"),
                        ));
                    }
                    duration(lit(call.args.iter().nth(1)), errors);
                }
                _ => {}
            }
        }
        _ => {}
    }
}
