//! The `#[asset]` attribute of orch. Use it through the `orch` crate (`use orch::prelude::*;`);
//! see the `orch` crate's documentation for the contract.
//!
//! The crate is split the way thiserror's is: [`attr`] parses the attribute's arguments,
//! [`ast`] parses the function signature into a typed form that keeps the original tokens for
//! spans, [`valid`] checks it, and [`expand`] generates code without re-validating.

mod ast;
mod attr;
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
