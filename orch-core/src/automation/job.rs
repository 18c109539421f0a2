//! [`JobDef`]: an asset job, a named selection of assets (Dagster's `define_asset_job`).

use crate::asset::SourceLocation;

/// Implemented by the marker type `asset_job!` emits, so that `schedule!(.., job = NAME)`
/// names the job as an item: a typo is a compile error at that token.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an asset job",
    label = "this names `{Self}`, which is not declared with `asset_job!`"
)]
pub trait Job: 'static {
    /// The job's name.
    const NAME: &'static str;
}

/// One registered asset job: a name, a selection in the CLI's syntax, a description.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobDef {
    name: &'static str,
    selection: &'static str,
    description: Option<&'static str>,
    location: SourceLocation,
}

impl JobDef {
    /// What `asset_job!` generates.
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        selection: &'static str,
        description: Option<&'static str>,
        location: SourceLocation,
    ) -> JobDef {
        JobDef {
            name,
            selection,
            description,
            location,
        }
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The selection, in the CLI's syntax (checked at compile time).
    pub fn selection(&self) -> &'static str {
        self.selection
    }

    /// Its description (`description = ".."` or the doc comment).
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// Where it is declared.
    pub fn location(&self) -> SourceLocation {
        self.location
    }
}

inventory::collect!(JobDef);

/// Every asset job registered in this binary, in link order.
pub fn registered_jobs() -> impl Iterator<Item = &'static JobDef> {
    inventory::iter::<JobDef>.into_iter()
}
