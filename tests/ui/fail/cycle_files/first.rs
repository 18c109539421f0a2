use orch::prelude::*;

use crate::third::enriched;

#[asset]
pub fn extracted(enriched: &String) -> String {
    enriched.clone()
}
