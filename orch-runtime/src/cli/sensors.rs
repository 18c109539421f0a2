//! `sensors` and `sensor start | stop | tick | preview | history | cursor NAME`: thin shells
//! over the automation module's sensor evaluation and the store.

use clap::Subcommand;
use jiff::Timestamp;
use orch_core::{DefaultStatus, ScheduleTarget, SensorDef};

use super::daemon::sensor_outcome;
use super::schedules::{checked, instant_or_now, unknown};
use super::table::print_rows;
use super::{EXIT_ASSET_FAILED, EXIT_OK, Env, fail_usage};
use crate::automation::{Automation, SensorOutcome, preview_sensor, run_sensor, sensor_cursor_key};
use crate::storage::InstigatorStatus;

/// `sensor ...`.
#[derive(Subcommand, Debug)]
pub(super) enum SensorCommand {
    /// Start a sensor: the daemon evaluates it every interval (persisted in the run store).
    Start {
        /// The sensor's name.
        name: String,
    },
    /// Stop a sensor.
    Stop {
        /// The sensor's name.
        name: String,
    },
    /// Evaluate it now, record the evaluation, and run what it asks for in this process.
    Tick {
        /// The sensor's name.
        name: String,
        /// Evaluate as of this instant (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// What it would ask for now, with its stored cursor; records and runs nothing.
    Preview {
        /// The sensor's name.
        name: String,
    },
    /// Its recorded evaluations, newest first: instant, status, runs, reason.
    History {
        /// The sensor's name.
        name: String,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// Its stored cursor; with `--set`, replaces it (`--set ''` clears it).
    Cursor {
        /// The sensor's name.
        name: String,
        /// The new cursor.
        #[arg(long)]
        set: Option<String>,
    },
}

/// What its runs run, and for an asset sensor what it watches: `job nightly`,
/// `summary (on orders_cleaned)`.
fn target_text(sensor: &SensorDef) -> String {
    let target = match sensor.target() {
        Some(ScheduleTarget::Job(job)) => format!("job {job}"),
        Some(ScheduleTarget::Selection(text)) => text.to_owned(),
        _ => "-".to_owned(),
    };
    match sensor.kind() {
        orch_core::SensorKind::OnAsset { asset, .. } => {
            format!("{target} (on {})", asset.to_key())
        }
        orch_core::SensorKind::OnRunFailure(_) => format!("{target} (on run failure)"),
        _ => target,
    }
}

fn find(automation: &Automation, name: &str) -> Result<&'static SensorDef, String> {
    automation.sensor(name).ok_or_else(|| {
        let names: Vec<&str> = automation.sensors().iter().map(|s| s.name()).collect();
        unknown("a sensor", name, &names, "sensors")
    })
}

/// `sensors`: each sensor, its target, interval, status, last evaluation and cursor.
pub(super) fn print_sensors(env: &Env<'_>) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    if automation.sensors().is_empty() {
        println!(
            "no sensors: declare one with `#[sensor(job = JOB, interval = \"30s\")]` on `fn name(ctx: &SensorContext) -> Result<SensorResult, BoxError>`"
        );
        return EXIT_OK;
    }
    let instance = match env.existing() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let mut rows = vec![
        ["SENSOR", "TARGET", "INTERVAL", "STATUS", "LAST", "CURSOR"]
            .map(str::to_owned)
            .to_vec(),
    ];
    let states = instance
        .as_ref()
        .and_then(|i| i.storage().instigator_states().ok())
        .unwrap_or_default();
    for sensor in automation.sensors() {
        let status = match states.get(sensor.name()) {
            Some(state) => state.status.as_str().to_owned(),
            None => match sensor.default_status() {
                DefaultStatus::Running => "running (default)".to_owned(),
                _ => "stopped (default)".to_owned(),
            },
        };
        let (last, cursor) = match &instance {
            Some(i) => {
                let store = i.storage();
                let last = store
                    .ticks(sensor.name(), 1)
                    .ok()
                    .and_then(|t| t.into_iter().next())
                    .map_or("-".to_owned(), |t| t.status.as_str().to_owned());
                let cursor = store
                    .cursor(&sensor_cursor_key(sensor.name()))
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "-".to_owned());
                (last, cursor)
            }
            None => ("-".to_owned(), "-".to_owned()),
        };
        rows.push(vec![
            sensor.name().to_owned(),
            target_text(sensor),
            humantime::format_duration(sensor.interval()).to_string(),
            status,
            last,
            cursor,
        ]);
    }
    print_rows(&rows);
    EXIT_OK
}

/// `sensor start | stop | tick | preview | history | cursor NAME`.
pub(super) fn sensor(env: &Env<'_>, command: SensorCommand) -> u8 {
    sensor_command(env, command).unwrap_or_else(|e| fail_usage(&e))
}

fn sensor_command(env: &Env<'_>, command: SensorCommand) -> Result<u8, String> {
    let automation = checked()?;
    match command {
        SensorCommand::Start { name } => set_status(env, find(automation, &name)?, true),
        SensorCommand::Stop { name } => set_status(env, find(automation, &name)?, false),
        SensorCommand::Tick { name, at } => {
            let sensor = find(automation, &name)?;
            let at = instant_or_now(at.as_deref())?;
            let instance = env.open()?;
            // The daemon evaluates running sensors itself; two evaluators would read one
            // cursor and both act on it.
            if let Some(holder) = instance
                .storage()
                .lease(crate::daemon::DAEMON_LEASE)
                .map_err(|e| e.to_string())?
                .filter(|h| h.expires > std::time::SystemTime::now())
            {
                return Err(format!(
                    "a daemon holds this store ({}) and evaluates sensors itself: `sensor tick` would race it; stop the daemon first, or read `sensor history {name}`",
                    holder.description
                ));
            }
            let outcome =
                run_sensor(&instance, automation, sensor, at).map_err(|e| e.to_string())?;
            println!("sensor `{name}`: {}", sensor_outcome(&outcome));
            let SensorOutcome::Requested { runs, .. } = outcome else {
                return Ok(match outcome {
                    SensorOutcome::Failed(_) => EXIT_ASSET_FAILED,
                    _ => EXIT_OK,
                });
            };
            Ok(super::daemon::run_here(&instance, &runs, ""))
        }
        SensorCommand::Preview { name } => {
            let sensor = find(automation, &name)?;
            let instance = match env.existing()? {
                Some(instance) => instance,
                None => env.app.ephemeral_instance(env.config.clone()),
            };
            match preview_sensor(&instance, sensor, Timestamp::now()).map_err(|e| e.to_string())? {
                Err(cause) => {
                    println!("sensor `{name}` would fail: {cause}");
                    Ok(EXIT_ASSET_FAILED)
                }
                Ok(result) => {
                    if result.requested().is_empty() {
                        println!(
                            "sensor `{name}` would ask for nothing: {}",
                            result.skip_reason().unwrap_or("no run requested")
                        );
                    }
                    for run in result.requested() {
                        let Some(request) = automation.sensor_request(sensor, run) else {
                            continue;
                        };
                        let tags: Vec<String> = request
                            .tags()
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        println!("would run `{request}` (tags: {})", tags.join(", "));
                    }
                    if let Some(cursor) = result.new_cursor() {
                        println!("its cursor would become `{cursor}`");
                    }
                    println!("nothing was recorded or run");
                    Ok(EXIT_OK)
                }
            }
        }
        SensorCommand::History { name, limit } => {
            let sensor = find(automation, &name)?;
            let Some(instance) = env.existing()? else {
                println!("sensor `{name}` has no recorded evaluation");
                return Ok(EXIT_OK);
            };
            let ticks = instance
                .storage()
                .ticks(sensor.name(), limit)
                .map_err(|e| e.to_string())?;
            if ticks.is_empty() {
                println!("sensor `{name}` has no recorded evaluation");
                return Ok(EXIT_OK);
            }
            let mut rows = vec![
                ["EVALUATED", "STATUS", "RUNS", "REASON"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for tick in ticks {
                let when = Timestamp::try_from(tick.scheduled)
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
                let ids: Vec<&str> = tick.run_ids.iter().map(orch_core::RunId::short).collect();
                rows.push(vec![
                    when,
                    tick.status.as_str().to_owned(),
                    if ids.is_empty() {
                        "-".to_owned()
                    } else {
                        ids.join(", ")
                    },
                    tick.reason.unwrap_or_default(),
                ]);
            }
            print_rows(&rows);
            Ok(EXIT_OK)
        }
        SensorCommand::Cursor { name, set } => {
            let sensor = find(automation, &name)?;
            let key = sensor_cursor_key(sensor.name());
            match set {
                Some(value) => {
                    let instance = env.open()?;
                    let value = Some(value.as_str()).filter(|v| !v.is_empty());
                    instance
                        .storage()
                        .set_cursor(&key, value)
                        .map_err(|e| e.to_string())?;
                    match value {
                        Some(v) => println!("sensor `{name}`: cursor set to `{v}`"),
                        None => println!("sensor `{name}`: cursor cleared"),
                    }
                }
                None => {
                    let cursor = match env.existing()? {
                        Some(i) => i.storage().cursor(&key).map_err(|e| e.to_string())?,
                        None => None,
                    };
                    match cursor {
                        Some(c) => println!("{c}"),
                        None => println!("sensor `{name}` has no cursor"),
                    }
                }
            }
            Ok(EXIT_OK)
        }
    }
}

/// Stores a sensor's status.
fn set_status(env: &Env<'_>, sensor: &SensorDef, running: bool) -> Result<u8, String> {
    let instance = env.open()?;
    let store = instance.storage();
    let status = match running {
        true => InstigatorStatus::Running,
        false => InstigatorStatus::Stopped,
    };
    store
        .set_instigator_status(sensor.name(), "sensor", status)
        .map_err(|e| e.to_string())?;
    println!("sensor `{}` is {}", sensor.name(), status.as_str());
    if running && store.automation_paused().map_err(|e| e.to_string())? {
        println!("note: automation is paused; `automation resume` lets it run");
    }
    Ok(EXIT_OK)
}
