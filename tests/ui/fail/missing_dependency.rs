use orch::prelude::*;

mod sources {
    use orch::prelude::*;

    #[asset]
    pub fn raw_users() -> Vec<String> {
        vec![]
    }
}

// `raw_users` exists in `sources` but is not in scope here: rustc suggests the `use` line.
#[asset]
fn cleaned(raw_users: &Vec<String>) -> usize {
    raw_users.len()
}

// `nowhere` is not an asset anywhere.
#[asset]
fn report(nowhere: &u32) -> u32 {
    *nowhere
}

fn main() {}
