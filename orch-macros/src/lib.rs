//! The `#[asset]` attribute of orch. Use it through the `orch` crate (`use orch::prelude::*;`);
//! see the `orch` crate's documentation for the contract.
//!
//! The crate is split the way thiserror's is: [`attr`] parses the attribute's arguments,
//! [`ast`] parses the function signature into a typed form that keeps the original tokens for
//! spans, [`valid`] checks it, and [`expand`] generates code without re-validating.

mod ast;
mod attr;
mod automation;
mod expand;
mod hash;
mod valid;

use proc_macro::TokenStream;

/// Declares an asset: a function whose parameters name the upstream assets it consumes.
///
/// See the `orch` crate for the full contract and the attribute keys.
#[proc_macro_attribute]
pub fn asset(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::asset(args.into(), item.into()).into()
}

/// Declares an asset job: a named selection of assets (Dagster's `define_asset_job`), which
/// `materialize --job NAME` and schedules run. The selection is checked at compile time.
///
/// ```ignore
/// /// Sources and their transforms, every night.
/// asset_job!(daily_refresh, "group:sources | group:transforms");
/// ```
#[proc_macro]
pub fn asset_job(input: TokenStream) -> TokenStream {
    automation::asset_job(input.into()).into()
}

/// Declares a schedule: a cron string in a time zone, on an asset job (`job = NAME`, checked
/// by the compiler) or a selection (`select = ".."`). The cron string and the time zone are
/// checked at compile time.
///
/// ```ignore
/// schedule!(nightly, job = daily_refresh, cron = "0 2 * * *", timezone = "Europe/Paris");
/// ```
#[proc_macro]
pub fn schedule(input: TokenStream) -> TokenStream {
    automation::schedule(input.into()).into()
}
