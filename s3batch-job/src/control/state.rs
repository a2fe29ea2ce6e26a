//! Jobs and their state machine, as S3 Batch Operations keeps them.
//!
//! `New` → `Preparing` (the manifest is read and checked) → `Suspended` when confirmation is
//! required, until `UpdateJobStatus Ready` → `Ready` → `Active` (tasks run) → `Complete`, or
//! `Failing` → `Failed` (the failure threshold, or a job-level problem), or `Cancelling` →
//! `Cancelled` (`UpdateJobStatus Cancelled`). The transitions asked for by clients are
//! checked here ([`Status::confirm`], [`Status::cancel`]); the runner drives the others.

use super::xml::{ApiError, CreateJob, El};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

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
    pub request: CreateJob,
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
}

impl Job {
    /// A `New` job.
    pub fn new(id: String, account: String, region: String, request: CreateJob, seq: u64) -> Job {
        Job {
            id,
            account,
            region,
            priority: request.priority,
            request,
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
        }
    }

    /// Moves to `status`, keeping the time spent `Active` and the termination date.
    pub fn set_status(&mut self, status: Status) {
        if self.status.is_terminal() {
            return;
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
    }

    /// Records a job-level failure (`FailureReasons`), each field capped at S3's lengths.
    pub fn fail_reason(&mut self, code: &str, reason: &str) {
        let cap = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        self.failure_reasons.push((
            cap(code, 64),
            cap(if reason.is_empty() { code } else { reason }, 256),
        ));
    }

    /// Seconds spent `Active` so far.
    pub fn active_seconds(&self) -> u64 {
        (self.active_before + self.active_since.map_or(Duration::ZERO, |s| s.elapsed())).as_secs()
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
        out.extend(self.request.echo());
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

/// A shared job.
pub type SharedJob = Arc<Mutex<Job>>;

/// Every job of the server, by account and id.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: HashMap<(String, String), SharedJob>,
    tokens: HashMap<(String, String), String>,
    seq: u64,
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
    /// Creates a job, or returns the job an identical earlier request created; a token used
    /// before with a different request is an `IdempotencyException`.
    pub fn create(
        &mut self,
        account: &str,
        region: &str,
        request: CreateJob,
        new_id: String,
    ) -> Result<Created, ApiError> {
        let token = (account.to_owned(), request.client_request_token.clone());
        if let Some(id) = self.tokens.get(&token) {
            let job = &self.jobs[&(account.to_owned(), id.clone())];
            if job.lock().expect("job lock").request == request {
                return Ok(Created::Again(id.clone()));
            }
            return Err(ApiError::idempotency(format!(
                "ClientRequestToken {:?} was used by job {id} with a different request; use a \
                 new token for a new job",
                request.client_request_token
            )));
        }
        self.seq += 1;
        let job = Arc::new(Mutex::new(Job::new(
            new_id.clone(),
            account.to_owned(),
            region.to_owned(),
            request,
            self.seq,
        )));
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

    fn request(token: &str) -> CreateJob {
        let body = include_str!("testdata/create_job.xml").replace("TOKEN", token);
        CreateJob::parse(body.as_bytes()).unwrap()
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
            .create(a, "us-east-1", request("t1"), "id1".into())
            .unwrap()
        else {
            panic!("a new job")
        };
        assert_eq!(first.lock().unwrap().id, "id1");
        match jobs
            .create(a, "us-east-1", request("t1"), "id2".into())
            .unwrap()
        {
            Created::Again(id) => assert_eq!(id, "id1"),
            other => panic!("{other:?}"),
        }
        let mut changed = request("t1");
        changed.priority = 99;
        let err = jobs
            .create(a, "us-east-1", changed, "id3".into())
            .unwrap_err();
        assert_eq!(err.code, "IdempotencyException");
        // Another account's token space is its own.
        assert!(matches!(
            jobs.create("210987654321", "us-east-1", request("t1"), "id4".into())
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
            let mut r = request(&format!("t{i}"));
            r.priority = p;
            let Created::New(j) = jobs.create(a, "r", r, format!("id{i}")).unwrap() else {
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
                .create(a, "r", request(&format!("t{i}")), format!("id{i}"))
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
