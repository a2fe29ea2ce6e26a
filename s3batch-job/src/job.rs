//! Running a job: invocations built as S3 builds them, redrives, the failure threshold.

use crate::invoke::{CheckError, InProcess, Invoke, Invoked};
use crate::journal::{Counts, Journal, JournalError};
use crate::manifest::{ManifestEntry, ManifestSource};
use crate::report::{
    cap_message, valid_job_id, JobOutcome, JobReport, JobStatus, Summary, TaskRecord, TaskStatus,
};
use crate::user_args::{UserArguments, UserArgumentsError};
use futures_util::FutureExt;
use s3batch::wire::{ReceivedResponse, Request, RequestJob, RequestTask};
use s3batch::{BoxError, Handler, Options, ResultCode, TaskFn};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The message S3 records when a response cannot be read.
pub const INVALID_RESPONSE: &str = "Invalid JSON returned in Lambda payload";
/// The start of the message S3 records for a function error; the error document follows.
pub const FUNCTION_ERROR: &str = "Lambda returned function error: ";
/// The message of a task the response left out (S3 documents no text; this is ours).
pub const MISSING_RESULT: &str =
    "no result for this task in the Lambda response (treatMissingKeysAs)";

pub use s3batch::wire::Schema;

/// How `TemporaryFailure`s (and failed Invoke API calls) are redriven: up to `max_redrives`
/// more times per task, waiting `backoff`, doubled on each redrive up to `max_backoff`.
/// S3 does not document its count; the default is 3 redrives from 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redrive {
    /// Redrives per task after the first attempt.
    pub max_redrives: u32,
    /// The wait before the first redrive.
    pub backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for Redrive {
    fn default() -> Self {
        Self::new(3, Duration::from_secs(1))
    }
}

impl Redrive {
    /// Up to `max_redrives` redrives, the first after `backoff`, doubling up to 30 s.
    pub fn new(max_redrives: u32, backoff: Duration) -> Self {
        Self {
            max_redrives,
            backoff,
            max_backoff: Duration::from_secs(30).max(backoff),
        }
    }

    /// The wait before redrive number `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// S3's job failure threshold: once `min_tasks` tasks have finished, the job stops as soon
/// as more than `max_failed_percent` of the finished tasks have failed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct FailureThreshold {
    /// Finished tasks before the threshold applies (S3: 1,000).
    pub min_tasks: usize,
    /// The percentage of failed tasks that stops the job when exceeded (S3: 50).
    pub max_failed_percent: f64,
}

impl Default for FailureThreshold {
    fn default() -> Self {
        Self::new(1000, 50.0)
    }
}

impl FailureThreshold {
    /// A threshold of more than `max_failed_percent` % failed after `min_tasks` tasks.
    pub fn new(min_tasks: usize, max_failed_percent: f64) -> Self {
        Self {
            min_tasks,
            max_failed_percent,
        }
    }

    fn exceeded(&self, succeeded: usize, failed: usize) -> bool {
        let done = succeeded + failed;
        done >= self.min_tasks && failed as f64 * 100.0 > self.max_failed_percent * done as f64
    }
}

/// Where a running job is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Rows in the manifest.
    pub total: usize,
    /// Tasks finished (succeeded or failed for good).
    pub done: usize,
    /// Of which failed.
    pub failed: usize,
    /// Redrives so far.
    pub redriven: usize,
}

/// Why a job could not start (its settings break S3's rules, the function cannot be
/// invoked, the journal is another job's), or stopped before it finished (the manifest
/// cannot be read on, the journal cannot be written).
///
/// ```
/// use s3batch_job::{JobError, LocalJob, Manifest};
/// let err = LocalJob::new(Manifest::default()).job_id("../x").check().unwrap_err();
/// assert!(matches!(&err, JobError::InvalidJobId { id } if id == "../x"));
/// assert!(err.to_string().starts_with("job id \"../x\" is not valid"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job id cannot name the job's folders ([`valid_job_id`]).
    #[error("job id {id:?} is not valid: use 1 to 64 of A-Z a-z 0-9 - _ (S3's job ids are UUIDs)")]
    InvalidJobId {
        /// The id given.
        id: String,
    },
    /// The user arguments break S3's rules.
    #[error(transparent)]
    UserArguments(#[from] UserArgumentsError),
    /// [`Invoke::check`] failed: the function cannot be invoked.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The journal was made for another manifest (another digest or number of rows).
    #[error("the journal in {} is for another manifest", dir.display())]
    OtherManifest {
        /// The journal's folder.
        dir: PathBuf,
    },
    /// The journal is another job's.
    #[error("the journal in {} is job {journal_job}'s, not {job}'s", dir.display())]
    OtherJob {
        /// The journal's folder.
        dir: PathBuf,
        /// The job id the journal is for.
        journal_job: String,
        /// This job's id.
        job: String,
    },
    /// The manifest could not be read while the job ran (a file that cannot be opened again,
    /// a row that no longer reads); the message names the file and line when it has them.
    #[error("{message}")]
    Manifest {
        /// What went wrong.
        message: String,
    },
    /// The manifest has another number of rows than when it was checked.
    #[error("the manifest has {now} rows now, {checked} when it was checked")]
    ManifestChanged {
        /// Rows read while the job ran.
        now: usize,
        /// Rows when the job's manifest was checked.
        checked: usize,
    },
    /// A finished task could not be written to the journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// An S3 Batch Operations `LambdaInvoke` job over a manifest, run on this machine.
///
/// ```
/// use s3batch::{Object, TaskError};
/// use s3batch_job::{LocalJob, Manifest, TaskStatus};
///
/// async fn check(obj: Object) -> Result<String, TaskError> {
///     if obj.key.ends_with(".tmp") {
///         return Err(TaskError::permanent("temporary files are not archived"));
///     }
///     Ok(format!("archived {}", obj.key))
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let manifest = Manifest::from_csv(b"my-bucket,a%20b.txt\nmy-bucket,c.tmp\n").unwrap();
/// let report = LocalJob::new(manifest).run_in_process(check, Default::default()).await.unwrap();
/// assert_eq!(report.summary.succeeded, 1);
/// assert_eq!(report.records[0].message, "archived a b.txt");
/// assert_eq!(report.records[1].status, TaskStatus::Failed);
/// # });
/// ```
#[derive(Clone)]
pub struct LocalJob {
    manifest: ManifestSource,
    job_id: String,
    schema: Schema,
    /// As given, in order: [`LocalJob::check`] refuses a repeated name.
    user_arguments: Vec<(String, String)>,
    tasks_per_invocation: usize,
    concurrency: usize,
    redrive: Redrive,
    threshold: Option<FailureThreshold>,
    grace: Duration,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for LocalJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalJob")
            .field("tasks", &self.manifest.len())
            .field("job_id", &self.job_id)
            .field("schema", &self.schema)
            .field("user_arguments", &self.user_arguments)
            .field("tasks_per_invocation", &self.tasks_per_invocation)
            .field("concurrency", &self.concurrency)
            .field("redrive", &self.redrive)
            .field("threshold", &self.threshold)
            .field("grace", &self.grace)
            .finish()
    }
}

impl LocalJob {
    /// A job over `manifest` (a [`Manifest`](crate::Manifest) in memory or a streamed
    /// [`ManifestSource`]) with S3's defaults: schema 1.0, one task per invocation, the
    /// 50 % / 1,000 tasks failure threshold; 16 invocations at once, 3 redrives from 1 s; a
    /// cancelled job waits up to 30 s for the invocations in flight.
    pub fn new(manifest: impl Into<ManifestSource>) -> Self {
        Self {
            manifest: manifest.into(),
            job_id: random_job_id(),
            schema: Schema::V1,
            user_arguments: Vec::new(),
            tasks_per_invocation: 1,
            concurrency: 16,
            redrive: Redrive::default(),
            threshold: Some(FailureThreshold::default()),
            grace: Duration::from_secs(30),
            progress: None,
        }
    }

    /// The job id (default: a random UUID). It must be 1 to 64 of `A-Z a-z 0-9 - _`
    /// ([`valid_job_id`]): the job refuses to start otherwise, since the id names folders.
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = id.into();
        self
    }

    /// The invocation schema.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Adds a user argument (schema 2.0 only). S3's rules ([`UserArguments`]) are applied
    /// by [`LocalJob::check`] and every run: a name given twice, a name or value too long,
    /// more than 10 arguments, or any with schema 1.0 stop the job before it starts.
    pub fn user_argument(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_arguments.push((name.into(), value.into()));
        self
    }

    /// Tasks per invocation (S3 sends 1; at least 1).
    pub fn tasks_per_invocation(mut self, n: usize) -> Self {
        self.tasks_per_invocation = n.max(1);
        self
    }

    /// Invocations in flight at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The redrive policy.
    pub fn redrive(mut self, redrive: Redrive) -> Self {
        self.redrive = redrive;
        self
    }

    /// The failure threshold; `None` runs every task whatever fails.
    pub fn failure_threshold(mut self, threshold: Option<FailureThreshold>) -> Self {
        self.threshold = threshold;
        self
    }

    /// How long a cancelled job waits for the invocations in flight before it gives up on
    /// them (their tasks are then not recorded, and a resumed job runs them again).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Called after each invocation with the job's progress.
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The job id in use.
    pub fn id(&self) -> &str {
        &self.job_id
    }

    /// The manifest.
    pub fn manifest(&self) -> &ManifestSource {
        &self.manifest
    }

    /// Runs the task function in this process through [`s3batch::Handler`] (no Lambda, no
    /// deadline): for integration tests of a task over a whole manifest. The records are kept
    /// in memory; for a large manifest use [`LocalJob::run_journaled`] with an
    /// [`InProcess`] invoker.
    pub async fn run_in_process<T: TaskFn<Args>, Args: 'static>(
        &self,
        task: T,
        options: Options,
    ) -> Result<JobReport, BoxError> {
        let handler = Handler::new(task, options).await?;
        Ok(self.run(InProcess::new(handler)).await?)
    }

    /// Runs the job through `invoker` until every task has finished or the failure
    /// threshold stops it, keeping every record in memory. [`Invoke::check`] runs first:
    /// when it fails, so does the job, before any task.
    pub async fn run<I: Invoke>(&self, invoker: I) -> Result<JobReport, JobError> {
        self.validate()?;
        invoker.check().await?;
        let mut sink = Memory(vec![None; self.manifest.len()]);
        let outcome = Run::new(self, Arc::new(invoker), &mut sink)
            .go(std::future::pending())
            .await?;
        Ok(JobReport {
            job_id: outcome.job_id,
            status: outcome.status,
            records: sink.0.into_iter().flatten().collect(),
            summary: outcome.summary,
        })
    }

    /// Runs the job through `invoker`, writing each task's record to `journal` as it
    /// finishes (and nothing per row in memory), until every task has finished, the failure
    /// threshold stops it, or `stop` completes. Rows the journal already holds (a resumed
    /// job) are not run again; the summary counts them.
    ///
    /// When `stop` completes the job is `Cancelled`: nothing new starts, tasks waiting for a
    /// redrive are left for a resumed job, and invocations in flight get the
    /// [grace period](LocalJob::grace_period) to finish and be recorded.
    ///
    /// The journal's manifest must be this job's (same digest and rows). Write the report
    /// from it with [`crate::journal::write_report`]. [`Invoke::check`] runs first, as in
    /// [`LocalJob::run`].
    pub async fn run_journaled<I: Invoke>(
        &self,
        invoker: I,
        journal: &mut Journal,
        stop: impl Future<Output = ()>,
    ) -> Result<JobOutcome, JobError> {
        self.validate()?;
        if journal.manifest_digest() != self.manifest.digest()
            || journal.rows() != self.manifest.len()
        {
            return Err(JobError::OtherManifest {
                dir: journal.dir().to_owned(),
            });
        }
        if journal.job_id() != self.job_id {
            return Err(JobError::OtherJob {
                dir: journal.dir().to_owned(),
                journal_job: journal.job_id().to_owned(),
                job: self.job_id.clone(),
            });
        }
        invoker.check().await?;
        Run::new(self, Arc::new(invoker), journal).go(stop).await
    }

    /// Checks the job's settings against S3's rules (job id, user arguments), as every run
    /// does before it starts.
    pub fn check(&self) -> Result<(), JobError> {
        self.validate()
    }

    fn validate(&self) -> Result<(), JobError> {
        if !valid_job_id(&self.job_id) {
            return Err(JobError::InvalidJobId {
                id: self.job_id.clone(),
            });
        }
        UserArguments::for_schema(self.user_arguments.iter().cloned(), self.schema)?;
        Ok(())
    }

    fn event<'e>(
        &self,
        invocation_id: &str,
        batch: impl Iterator<Item = (usize, &'e ManifestEntry)>,
    ) -> Vec<u8> {
        let mut job = RequestJob::new(self.job_id.clone());
        if self.schema.has_user_arguments() {
            job = job.with_user_arguments(self.user_arguments.iter().cloned().collect());
        }
        let tasks = batch
            .map(|(i, e)| {
                let (bucket, key, version) = (&e.bucket, &e.key, e.version_id.as_deref());
                RequestTask::new(self.schema, task_id(i), bucket, key, version)
            })
            .collect();
        serde_json::to_vec(&Request {
            schema: self.schema,
            invocation_id: invocation_id.to_owned(),
            job,
            tasks,
        })
        .expect("JSON serializes")
    }
}

fn task_id(i: usize) -> String {
    format!("task-{i:08x}")
}

/// A new random job id: a version 4 UUID, as S3's job ids are.
pub fn random_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One attempt's outcome for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub code: ResultCode,
    pub message: String,
    pub http_status: Option<u16>,
}

/// What S3 makes of an invocation's outcome, per task of the batch (in batch order).
pub(crate) fn interpret(
    invocation_id: &str,
    task_ids: &[String],
    invoked: Invoked,
) -> Vec<Attempt> {
    let all = |code, message: String, http_status| {
        task_ids
            .iter()
            .map(|_| Attempt {
                code,
                message: message.clone(),
                http_status,
            })
            .collect()
    };
    match invoked {
        Invoked::FunctionError(body) => all(
            ResultCode::PermanentFailure,
            cap_message(format!(
                "{FUNCTION_ERROR}{}",
                String::from_utf8_lossy(&body)
            )),
            Some(200),
        ),
        Invoked::ApiError { message, status } => all(
            crate::invoke::api_error_code(status),
            cap_message(format!("Lambda Invoke API call failed: {message}")),
            status,
        ),
        Invoked::Response(body) => match read_response(invocation_id, &body) {
            Ok((missing, mut results)) => task_ids
                .iter()
                .map(|id| match results.remove(id.as_str()) {
                    Some((code, message)) => Attempt {
                        code,
                        message: cap_message(message),
                        http_status: Some(200),
                    },
                    None => Attempt {
                        code: missing,
                        message: MISSING_RESULT.into(),
                        http_status: Some(200),
                    },
                })
                .collect(),
            Err(why) => {
                tracing::warn!(invocation_id, "{INVALID_RESPONSE}: {why}");
                all(
                    ResultCode::PermanentFailure,
                    INVALID_RESPONSE.into(),
                    Some(200),
                )
            }
        },
    }
}

type Results = HashMap<String, (ResultCode, String)>;

/// Why S3 would record [`INVALID_RESPONSE`] for a response (logged, not recorded).
#[derive(Debug, thiserror::Error)]
enum BadResponse {
    /// Not a response S3 can read.
    #[error(transparent)]
    Unreadable(#[from] s3batch::wire::ResponseError),
    /// The answer to another invocation.
    #[error("invocationId {got:?} is not the request's {sent:?}")]
    OtherInvocation { got: String, sent: String },
}

/// Reads a response as S3 does ([`ReceivedResponse`]): what S3 could not parse is an error.
/// The first result of a task id counts.
fn read_response(invocation_id: &str, body: &[u8]) -> Result<(ResultCode, Results), BadResponse> {
    let response = ReceivedResponse::from_slice(body)?;
    if let Some(id) = response.invocation_id {
        if id != invocation_id {
            return Err(BadResponse::OtherInvocation {
                got: id,
                sent: invocation_id.to_owned(),
            });
        }
    }
    let mut out = HashMap::new();
    for r in response.results {
        let text = r.result_string.unwrap_or_default();
        out.entry(r.task_id).or_insert((r.result_code, text));
    }
    let missing = response
        .treat_missing_keys_as
        .unwrap_or(ResultCode::PermanentFailure);
    Ok((missing, out))
}

/// Where finished tasks go.
pub(crate) trait Sink {
    fn is_done(&self, i: usize) -> bool;
    fn record(&mut self, i: usize, record: TaskRecord) -> Result<(), JournalError>;
    fn flush(&mut self) -> Result<(), JournalError>;
    fn prior(&self) -> Counts;
}

/// Every record in memory, by manifest row.
struct Memory(Vec<Option<TaskRecord>>);

impl Sink for Memory {
    fn is_done(&self, i: usize) -> bool {
        self.0.get(i).is_some_and(Option::is_some)
    }
    fn record(&mut self, i: usize, record: TaskRecord) -> Result<(), JournalError> {
        self.0[i] = Some(record);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), JournalError> {
        Ok(())
    }
    fn prior(&self) -> Counts {
        Counts::default()
    }
}

impl Sink for Journal {
    fn is_done(&self, i: usize) -> bool {
        Journal::is_done(self, i)
    }
    fn record(&mut self, i: usize, record: TaskRecord) -> Result<(), JournalError> {
        Journal::record(self, i, &record)
    }
    fn flush(&mut self) -> Result<(), JournalError> {
        Journal::flush(self)
    }
    fn prior(&self) -> Counts {
        self.counts()
    }
}

/// A task started and not finished: in flight, or waiting for a redrive.
struct Task {
    entry: ManifestEntry,
    attempts: u32,
    last: Option<Attempt>,
}

enum Stopped {
    Threshold(String),
    Cancelled,
}

struct Run<'a, I, S> {
    job: &'a LocalJob,
    invoker: Arc<I>,
    sink: &'a mut S,
    /// Only the tasks started and not finished: memory does not grow with the manifest.
    tasks: HashMap<usize, Task>,
    counts: Counts,
    redriven: usize,
    invocations: usize,
    stopped: Option<Stopped>,
}

impl<'a, I: Invoke, S: Sink> Run<'a, I, S> {
    fn new(job: &'a LocalJob, invoker: Arc<I>, sink: &'a mut S) -> Self {
        let counts = sink.prior();
        Self {
            job,
            invoker,
            redriven: counts.redriven,
            counts,
            sink,
            tasks: HashMap::new(),
            invocations: 0,
            stopped: None,
        }
    }

    async fn go(mut self, stop: impl Future<Output = ()>) -> Result<JobOutcome, JobError> {
        let start = Instant::now();
        let n = self.job.manifest.len();
        let per = self.job.tasks_per_invocation;
        let mut rows = self
            .job
            .manifest
            .rows()
            .map_err(|message| JobError::Manifest { message })?;
        let mut next = 0usize;
        let mut rows_left = true;
        let mut ready: VecDeque<usize> = VecDeque::new();
        let mut waiting: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
        let mut inflight = tokio::task::JoinSet::new();
        let stop = stop.fuse();
        tokio::pin!(stop);
        let mut give_up_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, i))) = waiting.peek().copied() {
                if at > now {
                    break;
                }
                waiting.pop();
                ready.push_back(i);
            }
            match self.stopped {
                Some(Stopped::Threshold(_)) => {
                    for i in ready
                        .drain(..)
                        .chain(waiting.drain().map(|Reverse((_, i))| i))
                    {
                        self.finish_with_last(i)?;
                    }
                }
                Some(Stopped::Cancelled) => {
                    // Not finished: a resumed job runs them again.
                    for i in ready
                        .drain(..)
                        .chain(waiting.drain().map(|Reverse((_, i))| i))
                    {
                        self.tasks.remove(&i);
                    }
                }
                None => {}
            }
            while inflight.len() < self.job.concurrency {
                let mut batch = Vec::with_capacity(per);
                while batch.len() < per {
                    if let Some(i) = ready.pop_front() {
                        batch.push(i);
                    } else if self.stopped.is_none() && rows_left {
                        match rows.next() {
                            None => rows_left = false,
                            Some(row) => {
                                let i = next;
                                next += 1;
                                let entry =
                                    row.map_err(|message| JobError::Manifest { message })?;
                                if self.sink.is_done(i) {
                                    continue;
                                }
                                self.tasks.insert(
                                    i,
                                    Task {
                                        entry,
                                        attempts: 0,
                                        last: None,
                                    },
                                );
                                batch.push(i);
                            }
                        }
                    } else {
                        break;
                    }
                }
                if batch.is_empty() {
                    break;
                }
                self.invocations += 1;
                let invocation_id = format!("{}-{:x}", &self.job.job_id, self.invocations);
                let payload = self.job.event(
                    &invocation_id,
                    batch.iter().map(|i| (*i, &self.tasks[i].entry)),
                );
                for i in &batch {
                    if let Some(t) = self.tasks.get_mut(i) {
                        t.attempts += 1;
                    }
                }
                let invoker = Arc::clone(&self.invoker);
                inflight.spawn(async move {
                    let invoked = AssertUnwindSafe(invoker.invoke(payload))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Invoked::ApiError {
                            message: "the invoker panicked".into(),
                            status: None,
                        });
                    (invocation_id, batch, invoked)
                });
            }
            if !rows_left && next != n {
                return Err(JobError::ManifestChanged {
                    now: next,
                    checked: n,
                });
            }
            if inflight.is_empty() && ready.is_empty() && waiting.is_empty() {
                break;
            }
            // Everything finished so far reaches the journal before the runner waits.
            self.sink.flush()?;
            let wake = waiting.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                Some(joined) = inflight.join_next(), if !inflight.is_empty() => {
                    let (invocation_id, batch, invoked) = joined.expect("invocations catch their panics");
                    self.handle(&invocation_id, batch, invoked, &mut waiting)?;
                    // Take every other invocation already back before flushing.
                    while let Some(joined) = inflight.try_join_next() {
                        let (invocation_id, batch, invoked) = joined.expect("invocations catch their panics");
                        self.handle(&invocation_id, batch, invoked, &mut waiting)?;
                    }
                    self.report_progress();
                }
                _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                () = &mut stop, if give_up_at.is_none() => {
                    if self.stopped.is_none() {
                        self.stopped = Some(Stopped::Cancelled);
                    }
                    give_up_at = Some(Instant::now() + self.job.grace);
                }
                _ = tokio::time::sleep_until(give_up_at.unwrap_or(now)), if give_up_at.is_some() => {
                    // The grace period is over: the tasks still in flight are not recorded.
                    inflight.abort_all();
                    while inflight.join_next().await.is_some() {}
                    ready.clear();
                    waiting.clear();
                }
            }
        }
        self.sink.flush()?;
        let c = self.counts;
        Ok(JobOutcome {
            job_id: self.job.job_id.clone(),
            status: match self.stopped {
                Some(Stopped::Threshold(reason)) => JobStatus::Failed { reason },
                Some(Stopped::Cancelled) if c.recorded() < n => JobStatus::Cancelled,
                Some(Stopped::Cancelled) | None => JobStatus::Complete,
            },
            summary: Summary {
                total: n,
                succeeded: c.succeeded,
                failed: c.failed,
                redriven: self.redriven,
                tasks_redriven: c.tasks_redriven,
                not_run: n - c.recorded(),
                invocations: self.invocations,
                elapsed: start.elapsed(),
            },
        })
    }

    fn handle(
        &mut self,
        invocation_id: &str,
        batch: Vec<usize>,
        invoked: Invoked,
        waiting: &mut BinaryHeap<Reverse<(Instant, usize)>>,
    ) -> Result<(), JobError> {
        let ids: Vec<String> = batch.iter().map(|&i| task_id(i)).collect();
        for (i, attempt) in batch
            .into_iter()
            .zip(interpret(invocation_id, &ids, invoked))
        {
            let Some(task) = self.tasks.get_mut(&i) else {
                continue;
            };
            let redrives = task.attempts - 1;
            if attempt.code == ResultCode::TemporaryFailure
                && redrives < self.job.redrive.max_redrives
                && self.stopped.is_none()
            {
                self.redriven += 1;
                let at = Instant::now() + self.job.redrive.delay(redrives + 1);
                waiting.push(Reverse((at, i)));
                task.last = Some(attempt);
            } else {
                self.finish(i, attempt)?;
            }
        }
        Ok(())
    }

    fn finish_with_last(&mut self, i: usize) -> Result<(), JobError> {
        let attempt = self
            .tasks
            .get_mut(&i)
            .and_then(|t| t.last.take())
            .expect("a waiting task has run once");
        self.finish(i, attempt)
    }

    fn finish(&mut self, i: usize, attempt: Attempt) -> Result<(), JobError> {
        let task = self.tasks.remove(&i).expect("a finished task was started");
        let status = if attempt.code == ResultCode::Succeeded {
            TaskStatus::Succeeded
        } else {
            TaskStatus::Failed
        };
        let record = TaskRecord {
            entry: task.entry,
            status,
            error_code: (status == TaskStatus::Failed).then_some(attempt.code),
            http_status: attempt.http_status,
            message: attempt.message,
            attempts: task.attempts,
        };
        self.counts.add(&record);
        self.sink.record(i, record)?;
        if let Some(t) = self.job.threshold {
            let (ok, failed) = (self.counts.succeeded, self.counts.failed);
            if self.stopped.is_none() && t.exceeded(ok, failed) {
                self.stopped = Some(Stopped::Threshold(format!(
                    "{failed} of {} finished tasks failed (more than {}% after at least {} tasks)",
                    ok + failed,
                    t.max_failed_percent,
                    t.min_tasks
                )));
            }
        }
        Ok(())
    }

    fn report_progress(&self) {
        if let Some(f) = &self.job.progress {
            f(Progress {
                total: self.job.manifest.len(),
                done: self.counts.recorded(),
                failed: self.counts.failed,
                redriven: self.redriven,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, ManifestEntry};
    use crate::report::JobStatus;
    use s3batch::{Object, TaskError};
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn manifest(keys: &[&str]) -> Manifest {
        Manifest::new(
            keys.iter()
                .map(|k| ManifestEntry::new("bucket-one", *k))
                .collect(),
        )
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(task_id).collect()
    }

    #[test]
    fn random_job_ids_are_valid_v4_uuids() {
        let id = random_job_id();
        assert!(valid_job_id(&id), "{id}");
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(
            id,
            parsed.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
        assert_ne!(id, random_job_id());
    }

    #[test]
    fn responses_are_read_as_s3_reads_them() {
        let ok = br#"{"invocationSchemaVersion":"1.0","treatMissingKeysAs":"TemporaryFailure","invocationId":"i",
            "results":[{"taskId":"task-00000001","resultCode":"Succeeded","resultString":"yes"}]}"#;
        let got = interpret("i", &ids(2), Invoked::Response(ok.to_vec()));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].code, ResultCode::TemporaryFailure);
        assert_eq!(got[0].message, MISSING_RESULT);
        assert_eq!(
            (got[1].code, got[1].message.as_str()),
            (ResultCode::Succeeded, "yes")
        );

        for bad in [
            &b"not json"[..],
            br#"{"invocationId":"i"}"#,
            br#"{"invocationId":"other","results":[]}"#,
            br#"{"invocationId":"i","results":[{"taskId":"task-00000000","resultCode":"Failed"}]}"#,
            br#"{"invocationId":"i","results":[{"taskId":"task-00000000","resultCode":"Succeeded","resultString":null}]}"#,
            br#"{"invocationId":"i","treatMissingKeysAs":null,"results":[]}"#,
        ] {
            let got = interpret("i", &ids(1), Invoked::Response(bad.to_vec()));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].code, ResultCode::PermanentFailure);
            assert_eq!(got[0].message, INVALID_RESPONSE, "{}", String::from_utf8_lossy(bad));
        }

        let err = interpret(
            "i",
            &ids(1),
            Invoked::FunctionError(br#"{"errorType":"Runtime.ExitError"}"#.to_vec()),
        );
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code, ResultCode::PermanentFailure);
        assert_eq!(
            err[0].message,
            r#"Lambda returned function error: {"errorType":"Runtime.ExitError"}"#
        );
        let api = interpret(
            "i",
            &ids(1),
            Invoked::ApiError {
                message: "refused".into(),
                status: None,
            },
        );
        assert_eq!(api.len(), 1);
        assert_eq!(api[0].code, ResultCode::TemporaryFailure);
        // Every task of a batch gets the invocation's outcome.
        let batch = interpret("i", &ids(3), Invoked::FunctionError(b"{}".to_vec()));
        assert_eq!(batch.len(), 3);
        assert!(batch.iter().all(|a| a.code == ResultCode::PermanentFailure));
    }

    #[test]
    fn redrive_delays_double_up_to_the_cap() {
        let r = Redrive::new(10, Duration::from_secs(1));
        let d: Vec<u64> = (1..=7).map(|n| r.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(r.delay(200), Duration::from_secs(30));
    }

    #[test]
    fn threshold() {
        let t = FailureThreshold::default();
        assert!(!t.exceeded(0, 999));
        assert!(t.exceeded(499, 501));
        assert!(!t.exceeded(500, 500));
    }

    #[test]
    fn events_are_built_as_s3_builds_them() {
        let m = Manifest::new(vec![
            ManifestEntry::new("bucket-one", "a b+c/é").with_version_id("v1")
        ]);
        let e = &m.entries()[0];
        let v2: Value = serde_json::from_slice(
            &LocalJob::new(m.clone())
                .job_id("J")
                .schema(Schema::V2)
                .user_argument("k", "v")
                .event("inv", [(0, e)].into_iter()),
        )
        .unwrap();
        assert_eq!(v2["invocationSchemaVersion"], "2.0");
        assert_eq!(v2["job"], json!({"id": "J", "userArguments": {"k": "v"}}));
        assert_eq!(
            v2["tasks"][0],
            json!({"taskId": "task-00000000", "s3Bucket": "bucket-one", "s3Key": "a+b%2Bc/%C3%A9", "s3VersionId": "v1"})
        );
        let v1: Value =
            serde_json::from_slice(&LocalJob::new(m.clone()).event("inv", [(0, e)].into_iter()))
                .unwrap();
        assert_eq!(v1["tasks"].as_array().map(Vec::len), Some(1));
        assert_eq!(v1["tasks"][0]["s3BucketArn"], "arn:aws:s3:::bucket-one");
        assert!(v1["tasks"][0].get("s3Bucket").is_none(), "{v1}");
        // Schema 1.0 has no userArguments, and the default job id is a random UUID.
        let id = v1["job"]["id"].as_str().expect("a job id");
        assert_eq!(v1["job"], json!({ "id": id }));
        assert!(
            id.len() == 36 && id.chars().filter(|&c| c == '-').count() == 4 && valid_job_id(id),
            "{id}"
        );
        let err = LocalJob::new(Manifest::default())
            .user_argument("k", "v")
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("need invocation schema 2.0"),
            "{err}"
        );
    }

    static TEMP_SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    async fn chaos(obj: Object) -> Result<String, TaskError> {
        if obj.key.contains("temp-once") {
            let mut seen = TEMP_SEEN.lock().unwrap();
            if !seen.contains(&obj.key) {
                seen.push(obj.key.clone());
                return Err(TaskError::temporary("first try fails"));
            }
        }
        if obj.key.contains("temp-always") {
            return Err(TaskError::temporary("still busy"));
        }
        if obj.key.contains("perm") {
            return Err(TaskError::permanent("cannot"));
        }
        if obj.key.contains("panic") {
            panic!("asked to");
        }
        Ok(format!("ok {}", obj.key))
    }

    #[tokio::test(start_paused = true)]
    async fn in_process_run_redrives_and_reports_every_row_once() {
        let keys = ["a", "temp-once 1", "perm", "panic", "temp-always", "b+c %"];
        let report = LocalJob::new(manifest(&keys))
            .concurrency(3)
            .redrive(Redrive::new(2, Duration::from_millis(10)))
            .run_in_process(chaos, Options::new())
            .await
            .unwrap();
        assert_eq!(report.status, JobStatus::Complete);
        let got: Vec<(&str, TaskStatus, Option<ResultCode>, &str, u32)> = report
            .records
            .iter()
            .map(|r| {
                (
                    r.entry.key.as_str(),
                    r.status,
                    r.error_code,
                    r.message.as_str(),
                    r.attempts,
                )
            })
            .collect();
        use ResultCode::{PermanentFailure, TemporaryFailure};
        use TaskStatus::{Failed, Succeeded};
        assert_eq!(
            got,
            [
                ("a", Succeeded, None, "ok a", 1),
                ("temp-once 1", Succeeded, None, "ok temp-once 1", 2),
                ("perm", Failed, Some(PermanentFailure), "cannot", 1),
                (
                    "panic",
                    Failed,
                    Some(PermanentFailure),
                    "task panicked: asked to",
                    1
                ),
                (
                    "temp-always",
                    Failed,
                    Some(TemporaryFailure),
                    "still busy",
                    3
                ),
                ("b+c %", Succeeded, None, "ok b+c %", 1),
            ]
        );
        let s = &report.summary;
        assert_eq!(
            (
                s.succeeded,
                s.failed,
                s.redriven,
                s.tasks_redriven,
                s.invocations
            ),
            (3, 3, 3, 2, 9)
        );
    }

    /// Hands every invocation on to `inner` and keeps the keys of its tasks, as sent.
    struct Recording<I> {
        inner: I,
        batches: Arc<Mutex<Vec<Vec<String>>>>,
    }

    impl<I: Invoke> Invoke for Recording<I> {
        async fn invoke(&self, payload: Vec<u8>) -> Invoked {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let keys = event["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["s3Key"].as_str().unwrap().to_owned())
                .collect();
            self.batches.lock().unwrap().push(keys);
            self.inner.invoke(payload).await
        }
    }

    #[tokio::test]
    async fn batches_carry_several_tasks() {
        let keys: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let handler = Handler::new(chaos, Options::new()).await.unwrap();
        let report = LocalJob::new(manifest(&keys))
            .tasks_per_invocation(4)
            .run(Recording {
                inner: InProcess::new(handler),
                batches: Arc::clone(&batches),
            })
            .await
            .unwrap();
        // Manifest rows in order, four to an invocation, each row in one of them.
        let mut sent = batches.lock().unwrap().clone();
        sent.sort();
        assert_eq!(
            sent,
            [
                vec!["0", "1", "2", "3"],
                vec!["4", "5", "6", "7"],
                vec!["8", "9"]
            ]
        );
        assert_eq!(report.summary.invocations, 3);
        // Every task of every batch got its own result back.
        let mut got: Vec<(&str, TaskStatus, String)> = report
            .records
            .iter()
            .map(|r| (r.entry.key.as_str(), r.status, r.message.clone()))
            .collect();
        got.sort_by_key(|r| r.0);
        let expected: Vec<(&str, TaskStatus, String)> = keys
            .iter()
            .map(|k| (*k, TaskStatus::Succeeded, format!("ok {k}")))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(report.summary.succeeded, 10);
    }

    struct AlwaysFails(Arc<AtomicUsize>);
    impl Invoke for AlwaysFails {
        async fn invoke(&self, _: Vec<u8>) -> Invoked {
            self.0.fetch_add(1, Ordering::SeqCst);
            Invoked::FunctionError(b"{}".to_vec())
        }
    }

    #[tokio::test]
    async fn the_failure_threshold_stops_the_job() {
        let keys: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let calls = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let report = LocalJob::new(manifest(&keys))
            .concurrency(8)
            .run(Recording {
                inner: AlwaysFails(Arc::clone(&calls)),
                batches: Arc::clone(&sent),
            })
            .await
            .unwrap();
        assert!(
            matches!(report.status, JobStatus::Failed { .. }),
            "{:?}",
            report.status
        );
        let s = &report.summary;
        assert!(s.failed >= 1000 && s.failed < 1000 + 8, "{s:?}");
        assert_eq!(s.not_run, 3000 - s.failed);
        assert_eq!(report.records.len(), s.failed);
        // Every invocation was one task's only attempt (a function error is not redriven):
        // the job stopped invoking once the threshold was crossed.
        assert_eq!(calls.load(Ordering::SeqCst), s.failed);
        assert_eq!(s.invocations, s.failed);
        // The records are the rows sent, each once and in manifest order (the first
        // `failed` rows), each with the function error; the rows after them never ran.
        let mut sent = sent.lock().unwrap().concat();
        sent.sort_unstable();
        let mut first: Vec<&str> = keys[..s.failed].to_vec();
        first.sort_unstable();
        assert_eq!(sent, first);
        assert_failed_once(&report.records, &first);

        let all = LocalJob::new(manifest(&keys[..1200]))
            .failure_threshold(None)
            .run(AlwaysFails(Arc::clone(&calls)))
            .await
            .unwrap();
        assert_eq!(all.status, JobStatus::Complete);
        assert_eq!(all.summary.failed, 1200);
        assert_eq!(calls.load(Ordering::SeqCst), s.failed + 1200);
        let mut every: Vec<&str> = keys[..1200].to_vec();
        every.sort_unstable();
        assert_failed_once(&all.records, &every);
    }

    /// `records` are exactly the rows `sorted_keys`, one each, every one failed by
    /// [`AlwaysFails`]'s function error on its only attempt.
    fn assert_failed_once(records: &[TaskRecord], sorted_keys: &[&str]) {
        let mut got: Vec<&str> = records.iter().map(|r| r.entry.key.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, sorted_keys);
        for r in records {
            assert_eq!(
                (r.status, r.error_code, r.message.as_str(), r.attempts),
                (
                    TaskStatus::Failed,
                    Some(ResultCode::PermanentFailure),
                    "Lambda returned function error: {}",
                    1
                ),
                "{r:?}"
            );
        }
    }

    #[tokio::test]
    async fn invalid_job_ids_are_refused() {
        for bad in ["x/../../../escaped", "", "a b", "é", &"a".repeat(65)] {
            let err = LocalJob::new(manifest(&["a"]))
                .job_id(bad)
                .run_in_process(chaos, Options::new())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("is not valid"), "{bad:?}: {err}");
        }
        let ok = LocalJob::new(manifest(&["a"]))
            .job_id(format!("Ab-_{}", "9".repeat(60)))
            .run_in_process(chaos, Options::new())
            .await
            .unwrap();
        assert_eq!(ok.summary.succeeded, 1);
        let got: Vec<(&str, TaskStatus, &str)> = ok
            .records
            .iter()
            .map(|r| (r.entry.key.as_str(), r.status, r.message.as_str()))
            .collect();
        assert_eq!(got, [("a", TaskStatus::Succeeded, "ok a")]);
    }

    /// A function (not an s3batch one, which caps its own messages) answering every task
    /// with a 7 MB `resultString`.
    struct Huge;
    impl Invoke for Huge {
        async fn invoke(&self, payload: Vec<u8>) -> Invoked {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let results: Vec<Value> = event["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let code = if t["s3Key"] == "fail" {
                        "PermanentFailure"
                    } else {
                        "Succeeded"
                    };
                    json!({"taskId": t["taskId"], "resultCode": code, "resultString": "é".repeat(3_500_000)})
                })
                .collect();
            Invoked::Response(
                serde_json::to_vec(
                    &json!({"invocationId": event["invocationId"], "results": results}),
                )
                .unwrap(),
            )
        }
    }

    #[tokio::test]
    async fn long_messages_are_capped_on_a_char_boundary() {
        let report = LocalJob::new(manifest(&["ok", "fail"]))
            .run(Huge)
            .await
            .unwrap();
        assert_eq!((report.summary.succeeded, report.summary.failed), (1, 1));
        // 7,000,000 bytes: the marker for that cut is 28 bytes, which leaves 4,068 bytes,
        // 2,034 whole `é`s, so the message fills the 4,096 bytes exactly.
        let capped = format!(
            "{}…[truncated {} bytes]",
            "é".repeat(2034),
            7_000_000 - 4068
        );
        assert_eq!(capped.len(), crate::report::MAX_MESSAGE_BYTES);
        let mut got: Vec<(&str, TaskStatus, Option<ResultCode>, &str)> = report
            .records
            .iter()
            .map(|r| {
                (
                    r.entry.key.as_str(),
                    r.status,
                    r.error_code,
                    r.message.as_str(),
                )
            })
            .collect();
        got.sort_by_key(|r| r.0);
        assert_eq!(
            got,
            [
                (
                    "fail",
                    TaskStatus::Failed,
                    Some(ResultCode::PermanentFailure),
                    capped.as_str()
                ),
                ("ok", TaskStatus::Succeeded, None, capped.as_str()),
            ]
        );
    }
}

#[cfg(test)]
mod user_argument_tests {
    use super::*;
    use crate::Manifest;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn job() -> LocalJob {
        LocalJob::new(Manifest::from_csv(b"my-bucket,k\n").unwrap()).schema(Schema::V2)
    }

    /// A name given twice used to keep its last value silently; now the job refuses to
    /// start, naming it, and the task never runs.
    #[tokio::test]
    async fn a_repeated_name_stops_the_job_naming_it() {
        let job = job()
            .user_argument("destBucket", "first")
            .user_argument("other", "x")
            .user_argument("destBucket", "second");
        let err = job.check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "user argument \"destBucket\" is given more than once; give each name once"
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let task = move |_: s3batch::Object| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, s3batch::TaskError>(String::new()) }
        };
        let ran = job.run_in_process(task, Options::new()).await.unwrap_err();
        assert!(ran.to_string().contains("\"destBucket\""), "{ran}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// What S3 refuses at CreateJob, check() refuses too, naming the limit.
    #[test]
    fn check_refuses_what_s3_refuses() {
        let cases = [
            (
                job().user_argument("k".repeat(65), "v"),
                "has 65 characters; names are 1 to 64 characters",
            ),
            (
                job().user_argument("", "v"),
                "empty name; names are 1 to 64 characters",
            ),
            (
                job().user_argument("k", "v".repeat(1025)),
                "user argument \"k\" has a value of 1025 characters; values are at most 1024 characters",
            ),
            (
                (0..11).fold(job(), |j, i| j.user_argument(format!("k{i}"), "v")),
                "11 user arguments; S3 allows at most 10",
            ),
            (
                job().schema(Schema::V1).user_argument("k", "v"),
                "user arguments need invocation schema 2.0",
            ),
        ];
        for (job, expected) in cases {
            let err = job.check().unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        // Distinct names within the limits are sent, sorted, in the event.
        let job = job()
            .user_argument("b", "2")
            .user_argument("a", "é".repeat(1024));
        job.check().unwrap();
        let e = ManifestEntry::new("my-bucket", "k");
        let event: serde_json::Value =
            serde_json::from_slice(&job.event("inv", [(0, &e)].into_iter())).unwrap();
        assert_eq!(
            event["job"]["userArguments"],
            serde_json::json!({"a": "é".repeat(1024), "b": "2"})
        );
    }
}

#[cfg(test)]
mod job_error_tests {
    use super::*;
    use crate::Manifest;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its invocations; its check fails when told to.
    struct Checked {
        refuse: bool,
        calls: Arc<AtomicUsize>,
    }

    impl Invoke for Checked {
        async fn invoke(&self, _: Vec<u8>) -> Invoked {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Invoked::Response(br#"{"results":[]}"#.to_vec())
        }

        async fn check(&self) -> Result<(), CheckError> {
            if self.refuse {
                return Err(CheckError::other("the bootstrap is missing"));
            }
            Ok(())
        }
    }

    fn manifest() -> ManifestSource {
        Manifest::from_csv(b"bucket-one,k\n").unwrap().into()
    }

    /// Each reason a job does not start is its own variant, carrying what it is about, and
    /// its message is the one the command line shows; nothing is invoked.
    #[tokio::test]
    async fn job_errors_are_told_apart_before_anything_is_invoked() {
        let calls = Arc::new(AtomicUsize::new(0));
        let invoker = |refuse| Checked {
            refuse,
            calls: Arc::clone(&calls),
        };

        let err = LocalJob::new(manifest())
            .job_id("a/b")
            .run(invoker(false))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::InvalidJobId { id } if id == "a/b"),
            "{err:?}"
        );

        let err = LocalJob::new(manifest())
            .schema(Schema::V2)
            .user_argument("k", "1")
            .user_argument("k", "2")
            .run(invoker(false))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::UserArguments(UserArgumentsError::Repeated { name }) if name == "k"),
            "{err:?}"
        );

        let err = LocalJob::new(manifest())
            .run(invoker(true))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::Check(CheckError::Other(_))),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the bootstrap is missing");
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        let state = std::env::temp_dir().join(format!("s3batch-job-errors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let source = manifest();
        let mut journal = Journal::create(&state, "j1", "m.csv", &source).unwrap();
        let err = LocalJob::new(source.clone())
            .job_id("j2")
            .run_journaled(invoker(false), &mut journal, std::future::pending())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::OtherJob { dir, journal_job, job }
                if *dir == state && journal_job == "j1" && job == "j2"),
            "{err:?}"
        );
        let other: ManifestSource = Manifest::from_csv(b"bucket-one,k\nbucket-one,k2\n")
            .unwrap()
            .into();
        let err = LocalJob::new(other)
            .job_id("j1")
            .run_journaled(invoker(false), &mut journal, std::future::pending())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::OtherManifest { dir } if *dir == state),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("the journal in {} is for another manifest", state.display())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        drop(journal);
        std::fs::remove_dir_all(&state).unwrap();
    }

    /// A Lambda endpoint that does not answer stops the job as [`CheckError::Unreachable`],
    /// with the message that tells what to fix.
    #[tokio::test]
    async fn an_unreachable_lambda_endpoint_is_a_check_error() {
        // A loopback port nothing listens on any more: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = crate::LambdaInvoker::client(Some(&endpoint), Duration::from_secs(120)).await;
        let err = LocalJob::new(manifest())
            .run(crate::LambdaInvoker::new(client, "f"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobError::Check(CheckError::Unreachable { .. })),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("cannot reach the Lambda Invoke API: "),
            "{err}"
        );
    }
}
