use orch::prelude::*;

use crate::second::transformed;

#[asset]
pub fn enriched(transformed: &String) -> String {
    format!("{transformed}!")
}
