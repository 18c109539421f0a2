//! `jobs`, `job show` and `job run`: op jobs on the command line, over [`crate::jobs`].

use clap::Subcommand;

use super::materialize::finish_run;
use super::table::print_rows;
use super::{EXIT_OK, Env, LineageFormat, fail_usage, parse_tag};
use crate::jobs::{OpJobGraph, op_job, op_jobs};

#[derive(Subcommand, Debug)]
pub(crate) enum JobCommand {
    /// The ops of an op job and their wiring (text, Graphviz DOT or Mermaid).
    Show {
        /// The job.
        name: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = LineageFormat::Text)]
        format: LineageFormat,
    },
    /// Run an op job, recorded in the run store; the config is checked against every op
    /// before anything runs.
    Run {
        /// The job.
        name: String,
        /// The run config: TOML or JSON, one table per op (`[ops.fetch_data] limit = 100`).
        #[arg(long, short)]
        config: Option<std::path::PathBuf>,
        /// Tags for the run, as `key=value` (repeatable).
        #[arg(long, value_parser = parse_tag)]
        tag: Vec<(String, String)>,
        /// Run at most this many sync ops at once.
        #[arg(long, short)]
        jobs: Option<usize>,
    },
}

pub(super) fn job_command(env: &Env<'_>, command: JobCommand) -> u8 {
    match command {
        JobCommand::Show { name, format } => match op_job(&name) {
            Ok(job) => {
                print!("{}", show(job, format));
                EXIT_OK
            }
            Err(e) => fail_usage(&e),
        },
        JobCommand::Run {
            name,
            config,
            tag,
            jobs,
        } => run(env, &name, config.as_deref(), tag, jobs),
    }
}

/// The run config in file `path` (TOML or JSON), or why it cannot be read.
pub(super) fn read_config(path: &std::path::Path) -> Result<orch_core::RunConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the run config {}: {e}", path.display()))?;
    orch_core::RunConfig::parse(&text).map_err(|e| format!("{e} ({})", path.display()))
}

fn run(
    env: &Env<'_>,
    name: &str,
    config: Option<&std::path::Path>,
    tags: Vec<(String, String)>,
    jobs: Option<usize>,
) -> u8 {
    let job = match op_job(name) {
        Ok(job) => job,
        Err(e) => return fail_usage(&e),
    };
    let mut request = job.request();
    for (k, v) in tags {
        request = request.tag(k, v);
    }
    if let Some(path) = config {
        match read_config(path) {
            Ok(parsed) => request = request.config(parsed),
            Err(e) => return fail_usage(&e),
        }
    }
    // Checked here too, so a bad config is refused before a run store is even opened.
    if let Err(e) = job.check_config(
        request
            .run_config()
            .unwrap_or(&orch_core::RunConfig::empty()),
    ) {
        return fail_usage(&format!("{e}; nothing ran"));
    }
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let mut builder = instance.materialize(request).keep_outputs(false);
    if let Some(jobs) = jobs {
        builder = builder.jobs(jobs);
    }
    finish_run(builder, Some(&instance))
}

/// `jobs`: asset jobs, then op jobs.
pub(super) fn print_op_jobs() -> u8 {
    let jobs = match op_jobs() {
        Ok(jobs) => jobs,
        Err(e) => return fail_usage(e),
    };
    if jobs.is_empty() {
        return EXIT_OK;
    }
    // A blank line after the asset jobs' table, when there is one.
    if super::schedules::checked().is_ok_and(|a| !a.jobs().is_empty()) {
        println!();
    }
    let mut rows = vec![vec![
        "OP JOB".to_owned(),
        "OPS".to_owned(),
        "CONFIG".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for job in jobs {
        let n = job.graph().len();
        let configured: Vec<&str> = (0..n)
            .filter(|&id| job.op(id).config().is_some())
            .map(|id| job.step_name(id))
            .collect();
        rows.push(vec![
            job.name().to_owned(),
            n.to_string(),
            if configured.is_empty() {
                "-".to_owned()
            } else {
                configured.join(", ")
            },
            job.def()
                .description()
                .and_then(|d| d.lines().next())
                .unwrap_or("")
                .to_owned(),
        ]);
    }
    print_rows(&rows);
    EXIT_OK
}

/// The job's steps in run order with their op, inputs, config and output.
pub(crate) fn show(job: &OpJobGraph, format: LineageFormat) -> String {
    let graph = job.graph();
    if format != LineageFormat::Text {
        let all: Vec<usize> = (0..graph.len()).collect();
        return super::lineage::render(graph, &all, format, &vec![None; graph.len()]);
    }
    let mut out = format!("job {}", job.name());
    if let Some(description) = job.def().description() {
        out.push_str(&format!(": {}", description.lines().next().unwrap_or("")));
    }
    out.push_str(&format!(" ({})\n", job.def().location()));
    let mut rows = Vec::new();
    for &id in graph.topological_order() {
        let node = graph.node(id);
        let op = job.op(id);
        let inputs: Vec<String> = op
            .inputs()
            .iter()
            .zip(&node.inputs)
            .map(|((name, ty), &up)| format!("{name}: {ty} <- {}", graph.node(up).key.name()))
            .collect();
        let mut notes = Vec::new();
        if let Some(over) = job.maps_over(id) {
            notes.push(format!("map over {over}"));
        }
        if let Some(config) = op.config() {
            notes.push(format!("config {}", config.type_name));
        }
        let after: Vec<&str> = node
            .upstream
            .iter()
            .filter(|up| !node.inputs.contains(up))
            .map(|&up| graph.node(up).key.name())
            .collect();
        if !after.is_empty() {
            notes.push(format!("after {}", after.join(", ")));
        }
        match (op.retries(), op.mapped()) {
            (0, _) => {}
            (n, None) => notes.push(format!("retries {n}")),
            (n, Some(_)) => notes.push(format!("retries {n} per element")),
        }
        let output = job.output_text(id);
        let step = job.step_name(id);
        let called = if step == op.name() {
            String::new()
        } else {
            format!(" (op {})", op.name())
        };
        rows.push(vec![
            format!("  {step}{called}"),
            format!("({}) -> {output}", inputs.join(", ")),
            notes.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line = format!(
            "{:w0$}  {:w1$}  {}",
            row[0],
            row[1],
            row[2],
            w0 = widths[0],
            w1 = widths[1]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
