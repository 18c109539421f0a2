//! `storage sweep`: a thin shell over [`Instance::sweep_outputs`](crate::Instance::sweep_outputs).

use std::time::Duration;

use super::{EXIT_OK, EXIT_USAGE, Env, fail_usage};
use crate::io::SweepOptions;

/// What `storage` does.
#[derive(clap::Subcommand, Debug)]
pub(super) enum StorageCommand {
    /// Delete the objects no committed materialization refers to: attempts of killed or
    /// zombie workers, failed attempts, outputs a newer materialization replaced.
    Sweep {
        /// Only objects at least this old, whose asset was last materialized at least this
        /// long ago (a step may still be reading what a newer materialization replaced).
        #[arg(long, default_value = "1h", value_parser = parse_age)]
        older_than: Duration,
        /// Say what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write a duration such as 1h or 30m)"))
}

pub(super) fn run(env: &Env<'_>, command: StorageCommand) -> u8 {
    let StorageCommand::Sweep {
        older_than,
        dry_run,
    } = command;
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let mut options = SweepOptions::older_than(older_than);
    if dry_run {
        options = options.dry_run();
    }
    let report = match instance.sweep_outputs(options) {
        None => {
            println!(
                "outputs are files under {}, replaced in place: nothing to sweep (`[storage] url` puts them on object storage)",
                crate::io::IoManagers::storage_dir(instance.config().home()).display()
            );
            return EXIT_OK;
        }
        Some(Ok(report)) => report,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    for location in &report.deleted {
        println!("{verb} {location}");
    }
    println!(
        "{} object{}: {} referenced, {} kept (younger than {}, or of a running run), {} {verb} ({} bytes){}",
        report.listed,
        if report.listed == 1 { "" } else { "s" },
        report.referenced,
        report.kept,
        humantime::format_duration(older_than),
        report.deleted.len(),
        report.deleted_bytes,
        match report.cache_files_removed {
            0 => String::new(),
            n => format!("; {n} cached copies removed"),
        }
    );
    EXIT_OK
}
