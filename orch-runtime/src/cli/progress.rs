//! Live progress: a bar on a terminal, one plain line per event otherwise (CI logs, pipes).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{EventSink, RunEvent};

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    tty: bool,
    running: BTreeSet<String>,
}

impl Progress {
    pub(super) fn new(tty: bool) -> Self {
        Progress {
            bar: None,
            tty,
            running: BTreeSet::new(),
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            crate::logging::set_active_bar(None);
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            let mut names: Vec<&str> = self.running.iter().map(String::as_str).take(3).collect();
            if self.running.len() > 3 {
                names.push("…");
            }
            bar.set_message(names.join(", "));
        }
    }
}

pub(super) use crate::events::format_duration;

impl EventSink for Progress {
    fn on_event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted { run_id, planned } => {
                if self.tty {
                    let bar = ProgressBar::new(planned.len() as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(100));
                    crate::logging::set_active_bar(Some(bar.clone()));
                    self.bar = Some(bar);
                }
                let plural = if planned.len() == 1 { "" } else { "s" };
                let line = match planned.first().and_then(|k| crate::jobs::job_of_step(k)) {
                    Some(job) => format!(
                        "run {}: running {} step{plural} of job {}",
                        run_id.short(),
                        planned.len(),
                        job.name()
                    ),
                    None => format!(
                        "run {}: materializing {} asset{plural}",
                        run_id.short(),
                        planned.len()
                    ),
                };
                self.line(&line);
            }
            RunEvent::AssetStarted { key, .. } => {
                self.running.insert(key.to_string());
                self.update_message();
            }
            RunEvent::AssetRetrying {
                key,
                attempt,
                error,
            } => {
                self.line(&format!(
                    "  retry    {key} (attempt {attempt} failed: {error})"
                ));
            }
            RunEvent::AssetSucceeded { key, duration, .. } => {
                self.running.remove(&key.to_string());
                match &self.bar {
                    Some(bar) => bar.inc(1),
                    None => self.line(&format!(
                        "  ok       {key} ({})",
                        format_duration(*duration)
                    )),
                }
                self.update_message();
            }
            RunEvent::AssetFailed { key, error, .. } => {
                self.running.remove(&key.to_string());
                self.line(&format!("  FAILED   {key}: {error}"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.update_message();
            }
            RunEvent::CheckEvaluated { key, check } => {
                let mut line = format!("  check    {key}: {} {}", check.name, check.label());
                if let Some(why) = check.description.as_deref().filter(|_| !check.passed) {
                    line.push_str(&format!(" ({why})"));
                }
                if check.blocks() {
                    line.push_str("; its downstream is skipped");
                }
                self.line(&line);
            }
            RunEvent::AssetSkipped {
                key,
                because_of,
                check,
            } => {
                let why = crate::storage::skip_reason(because_of, *check);
                self.line(&format!("  skipped  {key} ({why})"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            RunEvent::AssetNotRequired { key, because_of } => {
                let why = crate::storage::not_required_reason(because_of);
                self.line(&format!("  not run  {key} ({why})"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            RunEvent::AssetCanceled { key } => {
                self.running.remove(&key.to_string());
                self.line(&format!("  canceled {key}"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.update_message();
            }
            RunEvent::RunFinished { .. } => self.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(format_duration(Duration::from_micros(42)), "42 µs");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1.5 ms");
        assert_eq!(format_duration(Duration::from_millis(2_346)), "2.35 s");
    }
}
