//! [`ExecuteJob`]: an op job run in this process, for tests (Dagster's `execute_in_process`),
//! with config, resources, injected op outputs and typed results.

use std::sync::Arc;

use orch_core::op::{Op, OpJob, RunConfig};
use orch_core::{Resources, StaticKey};

use crate::instance::Instance;
use crate::materialize::{Materialize, MaterializeError};
use crate::result::RunResult;
use crate::run::RunRequest;

/// A run of op job `J` in this process: nothing is recorded unless an instance is given.
///
/// ```ignore
/// let result = orch::testing::execute_job::<my_pipeline>()
///     .config(RunConfig::parse("[ops.fetch_data]\nlimit = 3")?)
///     .resource(FakeApi::default())
///     .inject::<fetch_data>(vec![row(1)])
///     .run()?;
/// assert_eq!(*result.output::<process_data>(), 1);
/// ```
pub struct ExecuteJob {
    request: RunRequest,
    resources: Resources,
    injected: Vec<(StaticKey, orch_core::__private::Value)>,
    instance: Option<Instance>,
    jobs: Option<usize>,
}

impl ExecuteJob {
    /// A run of job `J`.
    pub fn new<J: OpJob>() -> Self {
        // The job's request (its tags) if it is registered; else a request that fails to
        // start with the lookup's error.
        let request = match crate::jobs::op_job(J::DEF.name()) {
            Ok(job) => job.request(),
            Err(_) => RunRequest::job(J::DEF.name()),
        };
        ExecuteJob {
            request,
            resources: Resources::default(),
            injected: Vec::new(),
            instance: None,
            jobs: None,
        }
    }

    /// The run config (checked against every op before anything runs).
    pub fn config(mut self, config: RunConfig) -> Self {
        self.request = self.request.config(config);
        self
    }

    /// Adds `value` as the resource of type `T` (a mock, say).
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Pretends op `O` (its first call in the job) produced `value`: it does not run.
    pub fn inject<O: Op>(mut self, value: O::Output) -> Self
    where
        O::Output: Send + Sync,
    {
        let path: &'static [&'static str] = Box::leak(Box::new([self.job_name(), O::DEF.name()]));
        self.injected.push((StaticKey { path }, Arc::new(value)));
        self
    }

    /// Records the run in `instance` (its store and I/O managers), e.g. to re-execute it.
    pub fn instance(mut self, instance: &Instance) -> Self {
        self.instance = Some(instance.clone());
        self
    }

    /// Runs at most `jobs` sync ops at once.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs);
        self
    }

    fn job_name(&self) -> &'static str {
        match crate::jobs::op_job(self.request.target().job().unwrap_or_default()) {
            Ok(job) => job.name(),
            Err(_) => "",
        }
    }

    /// Runs the job to its end. Errors are reasons it could not start (bad config, a missing
    /// resource); an op that fails is an outcome in the result.
    pub fn run(self) -> Result<JobResult, MaterializeError> {
        let mut run = Materialize::request(self.request).resources(self.resources);
        for (key, value) in self.injected {
            run = run.inject_value(key, value);
        }
        if let Some(instance) = &self.instance {
            run = run.instance(instance);
        }
        if let Some(jobs) = self.jobs {
            run = run.jobs(jobs);
        }
        run.run().map(JobResult)
    }
}

/// The result of an op job's run: a [`RunResult`] whose outputs are read by op.
#[derive(Debug)]
pub struct JobResult(pub RunResult);

impl JobResult {
    /// The output of op `O`'s first call, if it ran (or was injected) and produced one.
    pub fn try_output<O: Op>(&self) -> Option<&O::Output> {
        self.0.step_output::<O::Output>(O::DEF.name())
    }

    /// The output of op `O`'s first call.
    ///
    /// # Panics
    /// If `O` produced no output in this run (meant for tests, where the panic is the failure).
    pub fn output<O: Op>(&self) -> &O::Output {
        match self.try_output::<O>() {
            Some(v) => v,
            None => {
                let name = O::DEF.name();
                let why = match self.0.outcomes().iter().find(|o| o.key.name() == name) {
                    Some(o) => format!("its status is {}", o.status.label()),
                    None => "it was not part of this run".to_owned(),
                };
                panic!("no output for op `{name}`: {why}")
            }
        }
    }

    /// The output of step `step` (a second call's `<op>_2`, or a `.named("..")` step).
    pub fn step_output<T: 'static>(&self, step: &str) -> Option<&T> {
        self.0.step_output::<T>(step)
    }
}

impl std::ops::Deref for JobResult {
    type Target = RunResult;

    fn deref(&self) -> &RunResult {
        &self.0
    }
}
