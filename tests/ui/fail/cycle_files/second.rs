use orch::prelude::*;

use crate::first::extracted;

#[asset]
pub fn transformed(extracted: &String) -> String {
    extracted.to_uppercase()
}
