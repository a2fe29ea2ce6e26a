//! Jobs and their state machine, as S3 Batch Operations keeps them.
//!
//! `New` → `Preparing` (the manifest is read and checked) → `Suspended` when confirmation is
//! required, until `UpdateJobStatus Ready` → `Ready` → `Active` (tasks run) → `Complete`, or
//! `Failing` → `Failed` (the failure threshold, or a job-level problem), or `Cancelling` →
//! `Cancelled` (`UpdateJobStatus Cancelled`). The transitions asked for by clients are
//! checked here ([`Status::confirm`], [`Status::cancel`]); the runner drives the others.
//!
//! With a records folder ([`Jobs::open`]), every job is also a file there, `<id>.json`
//! (replaced atomically: written beside it, then renamed), saved at each change of status,
//! failure reason and priority, and now and then while tasks run: what a restarted server
//! needs to list and describe it and to take it up again. Ended jobs are kept
//! [`RETENTION`] (90 days, as S3 keeps them) after they end.

use crate::model::JobSpec;
use crate::xml::{echo, parse_create_job, ApiError, El};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How long an ended job is kept after its `TerminationDate`: S3 lists and describes a job
/// for 90 days.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// How often a running job's counts are saved at most ([`Job::save_progress`]): a resumed
/// job takes its counts from its journal, so the record only has to be roughly current.
const PROGRESS_SAVE: Duration = Duration::from_secs(5);

/// A job's status: S3's `JobStatus` values this emulator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Just created.
    New,
    /// Reading and checking the manifest.
    Preparing,
    /// Waiting for confirmation (`UpdateJobStatus Ready`).
    Suspended,
    /// Confirmed, about to run.
    Ready,
    /// Running tasks.
    Active,
    /// The failure threshold (or a job-level problem) stopped it; the report is being written.
    Failing,
    /// Failed (terminal).
    Failed,
    /// Cancelled by a client; invocations in flight finish, the report is being written.
    Cancelling,
    /// Cancelled (terminal).
    Cancelled,
    /// Every task ran (terminal).
    Complete,
}

/// Every status S3's model has (ListJobs accepts them all as filters).
const ALL: [&str; 13] = [
    "Active",
    "Cancelled",
    "Cancelling",
    "Complete",
    "Completing",
    "Failed",
    "Failing",
    "New",
    "Paused",
    "Pausing",
    "Preparing",
    "Ready",
    "Suspended",
];

impl Status {
    /// S3's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::Preparing => "Preparing",
            Status::Suspended => "Suspended",
            Status::Ready => "Ready",
            Status::Active => "Active",
            Status::Failing => "Failing",
            Status::Failed => "Failed",
            Status::Cancelling => "Cancelling",
            Status::Cancelled => "Cancelled",
            Status::Complete => "Complete",
        }
    }

    /// The status S3 calls `name` (one this emulator uses).
    pub fn parse(name: &str) -> Option<Status> {
        [
            Status::New,
            Status::Preparing,
            Status::Suspended,
            Status::Ready,
            Status::Active,
            Status::Failing,
            Status::Failed,
            Status::Cancelling,
            Status::Cancelled,
            Status::Complete,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the job will never change status again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Complete | Status::Failed | Status::Cancelled)
    }

    /// `UpdateJobStatus Ready`: only a `Suspended` job can be confirmed.
    pub fn confirm(self) -> Result<Status, ApiError> {
        match self {
            Status::Suspended => Ok(Status::Ready),
            other => Err(ApiError::job_status(format!(
                "the job is {}; only a Suspended job (one created with ConfirmationRequired) \
                 can be set to Ready",
                other.as_str()
            ))),
        }
    }

    /// `UpdateJobStatus Cancelled`: a job that has not started tasks is `Cancelled` at once;
    /// a running one is `Cancelling` until its invocations in flight are back; a job that
    /// has ended, or is already ending, cannot be cancelled.
    pub fn cancel(self) -> Result<Status, ApiError> {
        match self {
            Status::New | Status::Suspended | Status::Ready => Ok(Status::Cancelled),
            Status::Preparing | Status::Active => Ok(Status::Cancelling),
            other => Err(ApiError::job_status(format!(
                "the job is {}; it can no longer be cancelled",
                other.as_str()
            ))),
        }
    }
}

/// What a client asked the runner of a job to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Nothing yet.
    None,
    /// Confirmed (`Ready`).
    Confirmed,
    /// Cancel.
    Cancel,
}

/// One job: what was asked, where it is, and its counts.
#[derive(Debug)]
pub struct Job {
    /// The job id (a UUID).
    pub id: String,
    /// The account (`x-amz-account-id`).
    pub account: String,
    /// The region in the job ARN.
    pub region: String,
    /// The request.
    pub request: JobSpec,
    /// The request's body as it came (what the record keeps: parsed again on load).
    body: String,
    /// Where it is.
    pub status: Status,
    /// Its priority (UpdateJobPriority changes it).
    pub priority: i32,
    /// When it was created.
    pub created: SystemTime,
    /// When it ended.
    pub terminated: Option<SystemTime>,
    /// The last `statusUpdateReason` a client gave.
    pub status_update_reason: Option<String>,
    /// `(FailureCode, FailureReason)`s.
    pub failure_reasons: Vec<(String, String)>,
    /// Manifest rows (known once prepared).
    pub total: u64,
    /// Tasks succeeded.
    pub succeeded: u64,
    /// Tasks failed.
    pub failed: u64,
    active_since: Option<Instant>,
    active_before: Duration,
    /// Creation order, for ListJobs.
    pub seq: u64,
    signal: watch::Sender<Signal>,
    /// Its record file, when the jobs are kept on disk.
    record: Option<PathBuf>,
    /// When the record was last written.
    saved: Option<Instant>,
}

impl Job {
    /// A `New` job, created by `request`, whose body was `body`.
    pub fn new(
        id: String,
        account: String,
        region: String,
        request: JobSpec,
        body: String,
        seq: u64,
    ) -> Job {
        Job {
            id,
            account,
            region,
            priority: request.priority,
            request,
            body,
            status: Status::New,
            created: SystemTime::now(),
            terminated: None,
            status_update_reason: None,
            failure_reasons: Vec::new(),
            total: 0,
            succeeded: 0,
            failed: 0,
            active_since: None,
            active_before: Duration::ZERO,
            seq,
            signal: watch::channel(Signal::None).0,
            record: None,
            saved: None,
        }
    }

    /// Moves to `status`, keeping the time spent `Active` and the termination date, and
    /// saves the record.
    pub fn set_status(&mut self, status: Status) {
        if self.status.is_terminal() {
            return;
        }
        if status != self.status {
            tracing::info!(
                "job {}: {} -> {}",
                self.id,
                self.status.as_str(),
                status.as_str()
            );
        }
        if self.status == Status::Active && status != Status::Active {
            if let Some(since) = self.active_since.take() {
                self.active_before += since.elapsed();
            }
        }
        if status == Status::Active && self.active_since.is_none() {
            self.active_since = Some(Instant::now());
        }
        self.status = status;
        if status.is_terminal() {
            self.terminated = Some(SystemTime::now());
        }
        self.save();
    }

    /// Records a job-level failure (`FailureReasons`), each field capped at S3's lengths, and
    /// saves the record.
    pub fn fail_reason(&mut self, code: &str, reason: &str) {
        let cap = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        self.failure_reasons.push((
            cap(code, 64),
            cap(if reason.is_empty() { code } else { reason }, 256),
        ));
        self.save();
    }

    /// Sets the priority (`UpdateJobPriority`) and saves the record.
    pub fn set_priority(&mut self, priority: i32) {
        self.priority = priority;
        self.save();
    }

    /// Saves the record if the last save is older than a few seconds: for the counts of a
    /// running job, which change with every task.
    pub fn save_progress(&mut self) {
        if self.saved.is_none_or(|at| at.elapsed() >= PROGRESS_SAVE) {
            self.save();
        }
    }

    /// Writes the record (when the jobs are kept on disk). A record that cannot be written
    /// is logged: the job goes on, and the record is written again at its next change.
    pub fn save(&mut self) {
        let Some(path) = &self.record else {
            return;
        };
        let record = Record {
            version: 1,
            id: self.id.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            seq: self.seq,
            request: self.body.clone(),
            status: self.status.as_str().to_owned(),
            priority: self.priority,
            created: timestamp(self.created),
            terminated: self.terminated.map(timestamp),
            status_update_reason: self.status_update_reason.clone(),
            failure_reasons: self
                .failure_reasons
                .iter()
                .map(|(code, reason)| FailureRecord {
                    code: code.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            total: self.total,
            succeeded: self.succeeded,
            failed: self.failed,
            active_ms: self.active_time().as_millis() as u64,
        };
        let bytes = serde_json::to_vec_pretty(&record).expect("a job record serializes");
        let tmp = path.with_extension("json.tmp");
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!(
                "saving job {} to {} failed: {e}; a restarted server would not see its last change",
                self.id,
                path.display()
            );
        }
        self.saved = Some(Instant::now());
    }

    fn active_time(&self) -> Duration {
        self.active_before + self.active_since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Seconds spent `Active` so far.
    pub fn active_seconds(&self) -> u64 {
        self.active_time().as_secs()
    }

    /// `arn:aws:s3:<region>:<account>:job/<id>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:s3:{}:{}:job/{}",
            self.region, self.account, self.id
        )
    }

    /// Tells the runner what a client asked.
    pub fn signal(&self, s: Signal) {
        self.signal.send_replace(s);
    }

    /// What clients asked, for the runner to wait on.
    pub fn signals(&self) -> watch::Receiver<Signal> {
        self.signal.subscribe()
    }

    fn progress(&self) -> El {
        El::parent(
            "ProgressSummary",
            vec![
                El::text("TotalNumberOfTasks", self.total.to_string()),
                El::text("NumberOfTasksSucceeded", self.succeeded.to_string()),
                El::text("NumberOfTasksFailed", self.failed.to_string()),
                El::parent(
                    "Timers",
                    vec![El::text(
                        "ElapsedTimeInActiveSeconds",
                        self.active_seconds().to_string(),
                    )],
                ),
            ],
        )
    }

    /// DescribeJob's `Job` (a `JobDescriptor`).
    pub fn descriptor(&self) -> El {
        let mut out = vec![
            El::text("JobId", &self.id),
            El::text(
                "ConfirmationRequired",
                self.request.confirmation_required.to_string(),
            ),
        ];
        if let Some(d) = &self.request.description {
            out.push(El::text("Description", d));
        }
        out.push(El::text("JobArn", self.arn()));
        out.push(El::text("Status", self.status.as_str()));
        out.extend(echo(&self.request));
        out.push(El::text("Priority", self.priority.to_string()));
        out.push(self.progress());
        if let Some(r) = &self.status_update_reason {
            out.push(El::text("StatusUpdateReason", r));
        }
        if !self.failure_reasons.is_empty() {
            out.push(El::list(
                "FailureReasons",
                self.failure_reasons
                    .iter()
                    .map(|(c, r)| vec![El::text("FailureCode", c), El::text("FailureReason", r)])
                    .collect(),
            ));
        }
        out.push(El::text("CreationTime", timestamp(self.created)));
        if let Some(t) = self.terminated {
            out.push(El::text("TerminationDate", timestamp(t)));
        }
        out.push(El::text("RoleArn", &self.request.role_arn));
        El::parent("Job", out)
    }

    /// ListJobs' `member` (a `JobListDescriptor`).
    pub fn list_descriptor(&self) -> Vec<El> {
        let mut out = vec![El::text("JobId", &self.id)];
        if let Some(d) = &self.request.description {
            out.push(El::text("Description", d));
        }
        out.push(El::text("Operation", "LambdaInvoke"));
        out.push(El::text("Priority", self.priority.to_string()));
        out.push(El::text("Status", self.status.as_str()));
        out.push(El::text("CreationTime", timestamp(self.created)));
        if let Some(t) = self.terminated {
            out.push(El::text("TerminationDate", timestamp(t)));
        }
        out.push(self.progress());
        out
    }
}

/// RFC 3339 with milliseconds, as S3 writes timestamps.
pub fn timestamp(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// A [`timestamp`] read back.
fn parse_timestamp(s: &str, path: &Path) -> Result<SystemTime, RecordError> {
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
        .ok_or_else(|| RecordError::Timestamp {
            path: path.to_owned(),
            value: s.to_owned(),
        })
}

/// A records folder that cannot be used, or a job record that cannot be read; each names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading, writing or deleting a file or folder failed.
    #[error("{doing} {}: {source}", path.display())]
    Io {
        /// `reading`, `creating`, `deleting`.
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record that is not JSON of the record's shape.
    #[error("{}: {source}", path.display())]
    Json {
        /// The record.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A record of another version.
    #[error("{}: record version {version} is not 1", path.display())]
    Version {
        /// The record.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// A record whose `CreateJobRequest` is not one (any more).
    #[error("{}: its request: {}", path.display(), .source.message)]
    Request {
        /// The record.
        path: PathBuf,
        /// Why the request is refused.
        source: ApiError,
    },
    /// A record with an unknown status.
    #[error("{}: status {status:?} is no job status", path.display())]
    Status {
        /// The record.
        path: PathBuf,
        /// The status it has.
        status: String,
    },
    /// A record with a time that is not RFC 3339.
    #[error("{}: {value:?} is not an RFC 3339 time", path.display())]
    Timestamp {
        /// The record.
        path: PathBuf,
        /// The text it has.
        value: String,
    },
}

fn io<'a>(doing: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        doing,
        path: path.to_owned(),
        source,
    }
}

/// A job's record file, `<id>.json`. The client request token (idempotency) is the
/// request's own `ClientRequestToken`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    version: u32,
    id: String,
    account: String,
    region: String,
    seq: u64,
    /// The `CreateJobRequest` body, parsed again on load.
    request: String,
    status: String,
    priority: i32,
    /// `CreationTime`, as DescribeJob gives it.
    created: String,
    /// `TerminationDate`, as DescribeJob gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terminated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_update_reason: Option<String>,
    #[serde(default)]
    failure_reasons: Vec<FailureRecord>,
    total: u64,
    succeeded: u64,
    failed: u64,
    /// Time spent `Active`, in milliseconds.
    active_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct FailureRecord {
    code: String,
    reason: String,
}

impl Record {
    /// The job the record describes (its status as saved: the caller takes it up).
    fn into_job(self, path: PathBuf) -> Result<Job, RecordError> {
        if self.version != 1 {
            return Err(RecordError::Version {
                path,
                version: self.version,
            });
        }
        let request = match parse_create_job(self.request.as_bytes()) {
            Ok(request) => request,
            Err(source) => return Err(RecordError::Request { path, source }),
        };
        let Some(status) = Status::parse(&self.status) else {
            return Err(RecordError::Status {
                path,
                status: self.status,
            });
        };
        let created = parse_timestamp(&self.created, &path)?;
        let terminated = self
            .terminated
            .as_deref()
            .map(|t| parse_timestamp(t, &path))
            .transpose()?;
        let mut job = Job::new(
            self.id,
            self.account,
            self.region,
            request,
            self.request,
            self.seq,
        );
        job.status = status;
        job.priority = self.priority;
        job.created = created;
        job.terminated = terminated;
        job.status_update_reason = self.status_update_reason;
        job.failure_reasons = self
            .failure_reasons
            .into_iter()
            .map(|f| (f.code, f.reason))
            .collect();
        job.total = self.total;
        job.succeeded = self.succeeded;
        job.failed = self.failed;
        job.active_before = Duration::from_millis(self.active_ms);
        job.record = Some(path);
        Ok(job)
    }
}

/// A shared job.
pub type SharedJob = Arc<Mutex<Job>>;

/// Every job of the server, by account and id.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: HashMap<(String, String), SharedJob>,
    tokens: HashMap<(String, String), String>,
    seq: u64,
    /// Where the records are, when the jobs are kept on disk.
    dir: Option<PathBuf>,
}

/// What [`Jobs::open`] found besides the jobs.
#[derive(Debug, Default)]
pub struct Opened {
    /// Ended jobs whose records were deleted: their `TerminationDate` is more than
    /// [`RETENTION`] ago.
    pub expired: Vec<String>,
    /// Record files that could not be read, and why (left where they are).
    pub unreadable: Vec<RecordError>,
}

/// What [`Jobs::create`] did.
#[derive(Debug)]
pub enum Created {
    /// A new job, to be run.
    New(SharedJob),
    /// The same request was sent before (same `ClientRequestToken`, same body): its job id.
    Again(String),
}

impl Jobs {
    /// The jobs recorded in `dir` (created if missing), which keeps the records of the jobs
    /// created from now on. Records of ended jobs whose `TerminationDate` is more than
    /// [`RETENTION`] before `now` are deleted; the other jobs are listed and described as
    /// they were saved (those not ended are for the caller to take up: [`Jobs::unfinished`]).
    /// New jobs come after them in ListJobs.
    pub fn open(dir: &Path, now: SystemTime) -> Result<(Jobs, Opened), RecordError> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut jobs = Jobs {
            dir: Some(dir.to_owned()),
            ..Jobs::default()
        };
        let mut opened = Opened::default();
        let entries = std::fs::read_dir(dir).map_err(io("reading", dir))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(io("reading", dir))?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => paths.push(path),
                // A record whose save was cut short: the record beside it is whole.
                Some("tmp") => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        let mut loaded = Vec::new();
        for path in paths {
            let job = std::fs::read(&path)
                .map_err(io("reading", &path))
                .and_then(|b| {
                    serde_json::from_slice::<Record>(&b).map_err(|source| RecordError::Json {
                        path: path.clone(),
                        source,
                    })
                })
                .and_then(|r| r.into_job(path.clone()));
            match job {
                Ok(job) => {
                    let expired = job
                        .terminated
                        .is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > RETENTION));
                    if expired {
                        std::fs::remove_file(&path).map_err(io("deleting", &path))?;
                        opened.expired.push(job.id);
                    } else {
                        loaded.push(job);
                    }
                }
                Err(e) => opened.unreadable.push(e),
            }
        }
        loaded.sort_by_key(|j| j.seq);
        for job in loaded {
            jobs.seq = jobs.seq.max(job.seq);
            let key = (job.account.clone(), job.id.clone());
            jobs.tokens
                .entry((
                    job.account.clone(),
                    job.request.client_request_token.clone().unwrap_or_default(),
                ))
                .or_insert_with(|| job.id.clone());
            jobs.jobs.insert(key, Arc::new(Mutex::new(job)));
        }
        Ok((jobs, opened))
    }

    /// The jobs that have not ended, oldest first.
    pub fn unfinished(&self) -> Vec<SharedJob> {
        let mut out: Vec<(u64, SharedJob)> = self
            .jobs
            .values()
            .filter_map(|j| {
                let g = j.lock().expect("job lock");
                (!g.status.is_terminal()).then(|| (g.seq, Arc::clone(j)))
            })
            .collect();
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, j)| j).collect()
    }

    /// Creates a job from a `CreateJobRequest` body, or returns the job an identical earlier
    /// request created; a token used before with a different request is an
    /// `IdempotencyException`. A new job's record is saved at once.
    pub fn create(
        &mut self,
        account: &str,
        region: &str,
        body: &[u8],
        new_id: String,
    ) -> Result<Created, ApiError> {
        let request = parse_create_job(body)?;
        let body = String::from_utf8(body.to_vec()).expect("parse_create_job takes UTF-8 only");
        // `parse_create_job` requires the token.
        let token = (
            account.to_owned(),
            request.client_request_token.clone().unwrap_or_default(),
        );
        if let Some(id) = self.tokens.get(&token) {
            let job = &self.jobs[&(account.to_owned(), id.clone())];
            if job.lock().expect("job lock").request == request {
                return Ok(Created::Again(id.clone()));
            }
            return Err(ApiError::idempotency(format!(
                "ClientRequestToken {:?} was used by job {id} with a different request; use a \
                 new token for a new job",
                token.1
            )));
        }
        self.seq += 1;
        let mut job = Job::new(
            new_id.clone(),
            account.to_owned(),
            region.to_owned(),
            request,
            body,
            self.seq,
        );
        if let Some(dir) = &self.dir {
            job.record = Some(dir.join(format!("{new_id}.json")));
            job.save();
        }
        let job = Arc::new(Mutex::new(job));
        self.tokens.insert(token, new_id.clone());
        self.jobs
            .insert((account.to_owned(), new_id), Arc::clone(&job));
        Ok(Created::New(job))
    }

    /// Jobs running: `Active`, or ending (`Cancelling`, `Failing`).
    pub fn running(&self) -> usize {
        self.jobs
            .values()
            .filter(|j| {
                matches!(
                    j.lock().expect("job lock").status,
                    Status::Active | Status::Cancelling | Status::Failing
                )
            })
            .count()
    }

    /// The `Ready` job to start next: the highest priority, then the oldest.
    pub fn next_ready(&self) -> Option<SharedJob> {
        self.jobs
            .values()
            .filter_map(|j| {
                let g = j.lock().expect("job lock");
                (g.status == Status::Ready)
                    .then(|| ((g.priority, std::cmp::Reverse(g.seq)), Arc::clone(j)))
            })
            .max_by_key(|(k, _)| *k)
            .map(|(_, j)| j)
    }

    /// The job `id` of `account`, or `NotFoundException`.
    pub fn get(&self, account: &str, id: &str) -> Result<SharedJob, ApiError> {
        self.jobs
            .get(&(account.to_owned(), id.to_owned()))
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "The specified job does not exist: no job {id:?} in account {account}"
                ))
            })
    }

    /// ListJobs: `account`'s jobs, newest first, with one of `statuses` (all when empty), at
    /// most `max` from `next_token` on; and the token of the next page.
    pub fn list(
        &self,
        account: &str,
        statuses: &[String],
        max: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<SharedJob>, Option<String>), ApiError> {
        if let Some(bad) = statuses.iter().find(|s| !ALL.contains(&s.as_str())) {
            return Err(ApiError::invalid_request(format!(
                "jobStatuses has {bad:?}; use one of {}",
                ALL.join(", ")
            )));
        }
        let below = match next_token {
            None => u64::MAX,
            Some(t) => t
                .strip_prefix("s3batch-")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::invalid_next_token(format!(
                        "nextToken {t:?} is not a token this server gave"
                    ))
                })?,
        };
        let mut mine: Vec<(u64, SharedJob)> = self
            .jobs
            .iter()
            .filter(|((a, _), _)| a == account)
            .filter_map(|(_, j)| {
                let g = j.lock().expect("job lock");
                (g.seq < below
                    && (statuses.is_empty() || statuses.iter().any(|s| s == g.status.as_str())))
                .then(|| (g.seq, Arc::clone(j)))
            })
            .collect();
        mine.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        let next = (mine.len() > max).then(|| format!("s3batch-{}", mine[max - 1].0));
        mine.truncate(max);
        Ok((mine.into_iter().map(|(_, j)| j).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the events logged while `f` runs.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex as StdMutex};
        use tracing::field::{Field, Visit};
        struct Message<'a>(&'a mut String);
        impl Visit for Message<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        struct Capture(Arc<StdMutex<Vec<String>>>);
        impl tracing::Subscriber for Capture {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut message = String::new();
                event.record(&mut Message(&mut message));
                self.0.lock().unwrap().push(message);
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let lines = Arc::new(StdMutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(lines.clone()), f);
        let lines = lines.lock().unwrap().clone();
        lines
    }

    /// `serve` logs each job's state changes (and only changes), with the job's id.
    #[test]
    fn each_state_change_is_logged_with_the_job_id() {
        let dir = temp("logged");
        let (mut jobs, _) = Jobs::open(&dir, SystemTime::now()).unwrap();
        let job = match jobs
            .create(
                "123456789012",
                "us-east-1",
                &body("t-log"),
                "job-log".into(),
            )
            .unwrap()
        {
            Created::New(j) => j,
            other => panic!("{other:?}"),
        };
        let from = job.lock().unwrap().status.as_str();
        let lines = logged(|| {
            let mut j = job.lock().unwrap();
            j.set_status(Status::Active);
            j.set_status(Status::Active);
            j.set_status(Status::Complete);
            j.set_status(Status::Failed);
        });
        assert_eq!(
            lines,
            [
                format!("job job-log: {from} -> Active"),
                "job job-log: Active -> Complete".to_owned(),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A CreateJob body with the token `token` (and priority 10).
    fn body(token: &str) -> Vec<u8> {
        include_str!("testdata/create_job.xml")
            .replace("TOKEN", token)
            .into_bytes()
    }

    /// [`body`] with priority `p`.
    fn with_priority(token: &str, p: i32) -> Vec<u8> {
        String::from_utf8(body(token))
            .unwrap()
            .replace("<Priority>10<", &format!("<Priority>{p}<"))
            .into_bytes()
    }

    fn request(token: &str) -> JobSpec {
        parse_create_job(&body(token)).unwrap()
    }

    /// An empty folder of its own, under the system's temporary folder.
    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("s3batch-state-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ids(jobs: &[SharedJob]) -> Vec<String> {
        jobs.iter().map(|j| j.lock().unwrap().id.clone()).collect()
    }

    /// Jobs are brought back from their records as they were described; an ended job is
    /// kept 90 days after its TerminationDate and deleted on the first open after that (a job
    /// not ended is kept whatever its age); tokens and creation order go on across opens.
    #[test]
    fn records_bring_jobs_back_and_ended_jobs_expire_after_90_days() {
        use crate::xml::document;
        let dir = temp("records");
        let a = "123456789012";
        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 60 * 60);
        let (mut jobs, opened) = Jobs::open(&dir, now).unwrap();
        assert!(opened.expired.is_empty() && opened.unreadable.is_empty());
        let mut new = |token: &str, id: &str| match jobs
            .create(a, "us-east-1", &body(token), id.into())
            .unwrap()
        {
            Created::New(j) => j,
            other => panic!("{other:?}"),
        };
        let old = new("t-old", "old");
        let recent = new("t-recent", "recent");
        let active = new("t-active", "active");
        let waiting = new("t-waiting", "waiting");
        {
            let mut j = old.lock().unwrap();
            j.set_status(Status::Complete);
            j.terminated = Some(now - 90 * day - Duration::from_secs(60));
            j.save();
        }
        {
            let mut j = recent.lock().unwrap();
            j.set_status(Status::Active);
            (j.total, j.succeeded, j.failed) = (7, 3, 4);
            j.set_priority(42);
            j.status_update_reason = Some("asked to".into());
            j.fail_reason("TaskFailureThresholdExceeded", "too many tasks failed");
            j.set_status(Status::Failed);
            j.terminated = Some(now - 89 * day);
            j.save();
        }
        {
            let mut j = active.lock().unwrap();
            j.created = now - 200 * day;
            j.set_status(Status::Active);
            (j.total, j.succeeded) = (5, 2);
            j.save();
        }
        waiting.lock().unwrap().set_status(Status::Suspended);
        let described = |j: &SharedJob| document(&j.lock().unwrap().descriptor());
        let recent_before = described(&recent);
        assert!(
            recent_before.contains("<Priority>42</Priority>")
                && recent_before.contains("<FailureReason>too many tasks failed</FailureReason>")
                && recent_before.contains("<StatusUpdateReason>asked to</StatusUpdateReason>"),
            "{recent_before}"
        );
        // As DescribeJob gives it (to the microsecond).
        let created = timestamp(active.lock().unwrap().created);
        drop(jobs);

        let (mut jobs, opened) = Jobs::open(&dir, now).unwrap();
        assert_eq!(opened.expired, ["old"]);
        assert!(opened.unreadable.is_empty(), "{:?}", opened.unreadable);
        assert!(!dir.join("old.json").exists());
        assert_eq!(jobs.get(a, "old").unwrap_err().code, "NotFoundException");
        assert_eq!(described(&jobs.get(a, "recent").unwrap()), recent_before);
        {
            let active = jobs.get(a, "active").unwrap();
            let j = active.lock().unwrap();
            assert_eq!(
                (
                    j.status,
                    j.total,
                    j.succeeded,
                    j.failed,
                    timestamp(j.created),
                    j.terminated
                ),
                (Status::Active, 5, 2, 0, created, None)
            );
        }
        let unfinished: Vec<(String, Status)> = jobs
            .unfinished()
            .iter()
            .map(|j| {
                let j = j.lock().unwrap();
                (j.id.clone(), j.status)
            })
            .collect();
        assert_eq!(
            unfinished,
            [
                ("active".to_owned(), Status::Active),
                ("waiting".to_owned(), Status::Suspended)
            ]
        );
        // Idempotency holds across the restart; a new job comes after the loaded ones.
        match jobs
            .create(a, "us-east-1", &body("t-recent"), "x".into())
            .unwrap()
        {
            Created::Again(id) => assert_eq!(id, "recent"),
            other => panic!("{other:?}"),
        }
        let err = jobs
            .create(a, "us-east-1", &with_priority("t-recent", 1), "y".into())
            .unwrap_err();
        assert_eq!(err.code, "IdempotencyException");
        let Created::New(fresh) = jobs
            .create(a, "us-east-1", &body("t-fresh"), "fresh".into())
            .unwrap()
        else {
            panic!("a new job")
        };
        assert_eq!(fresh.lock().unwrap().seq, 5);
        let listed = jobs.list(a, &[], 10, None).unwrap().0;
        assert_eq!(ids(&listed), ["fresh", "waiting", "active", "recent"]);
        drop(jobs);

        // Two days on, the failed job is 91 days past its end; the Active one, created 202
        // days before, has not ended and stays.
        let (jobs, opened) = Jobs::open(&dir, now + 2 * day).unwrap();
        assert_eq!(opened.expired, ["recent"]);
        let listed = jobs.list(a, &[], 10, None).unwrap().0;
        assert_eq!(ids(&listed), ["fresh", "waiting", "active"]);

        // A record that cannot be read is reported and left where it is; the others load.
        std::fs::write(dir.join("broken.json"), b"{").unwrap();
        let (jobs, opened) = Jobs::open(&dir, now).unwrap();
        assert_eq!(opened.unreadable.len(), 1, "{:?}", opened.unreadable);
        let unreadable = opened.unreadable[0].to_string();
        assert!(
            matches!(&opened.unreadable[0], RecordError::Json { path, .. } if path == &dir.join("broken.json")),
            "{unreadable}"
        );
        assert!(unreadable.contains("broken.json"), "{unreadable}");
        assert!(dir.join("broken.json").exists());
        assert_eq!(jobs.list(a, &[], 10, None).unwrap().0.len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clients_may_confirm_a_suspended_job_and_cancel_one_not_ended() {
        use Status::*;
        assert_eq!(Suspended.confirm().unwrap(), Ready);
        for s in [
            New, Preparing, Ready, Active, Failing, Failed, Cancelling, Cancelled, Complete,
        ] {
            let err = s.confirm().unwrap_err();
            assert_eq!(err.code, "JobStatusException", "{s:?}");
            assert!(err.message.contains(s.as_str()), "{err}");
        }
        for (s, then) in [
            (New, Cancelled),
            (Suspended, Cancelled),
            (Ready, Cancelled),
            (Preparing, Cancelling),
            (Active, Cancelling),
        ] {
            assert_eq!(s.cancel().unwrap(), then, "{s:?}");
        }
        for s in [Failing, Failed, Cancelling, Cancelled, Complete] {
            assert_eq!(s.cancel().unwrap_err().code, "JobStatusException", "{s:?}");
        }
    }

    #[test]
    fn terminal_states_stay_and_active_time_is_kept() {
        let mut job = Job::new(
            "j1".into(),
            "123456789012".into(),
            "us-east-1".into(),
            request("t"),
            String::new(),
            1,
        );
        job.set_status(Status::Preparing);
        assert!(job.terminated.is_none());
        job.set_status(Status::Active);
        assert!(job.active_since.is_some());
        job.set_status(Status::Complete);
        assert!(job.active_since.is_none());
        let ended = job.terminated.expect("a termination date");
        job.set_status(Status::Active);
        assert_eq!(
            (job.status, job.terminated),
            (Status::Complete, Some(ended))
        );
        assert_eq!(job.arn(), "arn:aws:s3:us-east-1:123456789012:job/j1");
        job.fail_reason("C", &"x".repeat(300));
        assert_eq!(job.failure_reasons[0].1.len(), 256);
    }

    #[test]
    fn tokens_make_create_idempotent() {
        let mut jobs = Jobs::default();
        let a = "123456789012";
        let Created::New(first) = jobs
            .create(a, "us-east-1", &body("t1"), "id1".into())
            .unwrap()
        else {
            panic!("a new job")
        };
        assert_eq!(first.lock().unwrap().id, "id1");
        match jobs
            .create(a, "us-east-1", &body("t1"), "id2".into())
            .unwrap()
        {
            Created::Again(id) => assert_eq!(id, "id1"),
            other => panic!("{other:?}"),
        }
        let err = jobs
            .create(a, "us-east-1", &with_priority("t1", 99), "id3".into())
            .unwrap_err();
        assert_eq!(err.code, "IdempotencyException");
        // Another account's token space is its own.
        assert!(matches!(
            jobs.create("210987654321", "us-east-1", &body("t1"), "id4".into())
                .unwrap(),
            Created::New(_)
        ));
        assert_eq!(jobs.get(a, "id4").unwrap_err().code, "NotFoundException");
        assert!(jobs.get("210987654321", "id4").is_ok());
    }

    #[test]
    fn the_next_ready_job_has_the_highest_priority_then_is_the_oldest() {
        let mut jobs = Jobs::default();
        let a = "123456789012";
        let mut all = Vec::new();
        for (i, p) in [5, 9, 9, 1].into_iter().enumerate() {
            let r = with_priority(&format!("t{i}"), p);
            let Created::New(j) = jobs.create(a, "r", &r, format!("id{i}")).unwrap() else {
                panic!()
            };
            j.lock().unwrap().set_status(Status::Ready);
            all.push(j);
        }
        let next = |jobs: &Jobs| jobs.next_ready().map(|j| j.lock().unwrap().id.clone());
        assert_eq!(next(&jobs).as_deref(), Some("id1"));
        all[1].lock().unwrap().set_status(Status::Active);
        assert_eq!((next(&jobs).as_deref(), jobs.running()), (Some("id2"), 1));
        all[3].lock().unwrap().priority = 10;
        assert_eq!(next(&jobs).as_deref(), Some("id3"));
        all[1].lock().unwrap().set_status(Status::Cancelling);
        assert_eq!(jobs.running(), 1);
        all[1].lock().unwrap().set_status(Status::Cancelled);
        assert_eq!(jobs.running(), 0);
    }

    #[test]
    fn list_filters_pages_and_checks_its_input() {
        let mut jobs = Jobs::default();
        let a = "123456789012";
        for i in 0..5 {
            let Created::New(j) = jobs
                .create(a, "r", &body(&format!("t{i}")), format!("id{i}"))
                .unwrap()
            else {
                panic!()
            };
            if i % 2 == 0 {
                j.lock().unwrap().set_status(Status::Complete);
            }
        }
        let ids = |v: &[SharedJob]| {
            v.iter()
                .map(|j| j.lock().unwrap().id.clone())
                .collect::<Vec<_>>()
        };
        let (page, next) = jobs.list(a, &[], 2, None).unwrap();
        assert_eq!(ids(&page), ["id4", "id3"]);
        let (page, next) = jobs.list(a, &[], 2, next.as_deref()).unwrap();
        assert_eq!(ids(&page), ["id2", "id1"]);
        let (page, next) = jobs.list(a, &[], 2, next.as_deref()).unwrap();
        assert_eq!((ids(&page), next), (vec!["id0".to_owned()], None));
        let (page, _) = jobs.list(a, &["Complete".into()], 10, None).unwrap();
        assert_eq!(ids(&page), ["id4", "id2", "id0"]);
        let (page, _) = jobs
            .list(a, &["New".into(), "Active".into()], 10, None)
            .unwrap();
        assert_eq!(ids(&page), ["id3", "id1"]);
        assert!(jobs
            .list("210987654321", &[], 10, None)
            .unwrap()
            .0
            .is_empty());
        assert_eq!(
            jobs.list(a, &["Done".into()], 10, None).unwrap_err().code,
            "InvalidRequestException"
        );
        assert_eq!(
            jobs.list(a, &[], 10, Some("x")).unwrap_err().code,
            "InvalidNextTokenException"
        );
    }
}
