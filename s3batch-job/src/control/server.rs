//! The HTTP server of `cargo s3batch serve` and the runner of its jobs.

use super::state::{Created, Jobs, SharedJob, Signal, Status};
use super::xml::{bucket_name, document, function_name, manifest_object, ApiError, CreateJob, El};
use crate::journal::{self, Journal};
use crate::manifest::{Manifest, ManifestSource};
use crate::report::ReportScope;
use crate::storage::Location;
use crate::{FailureThreshold, LambdaInvoker, LocalJob, Redrive, Schema};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// `FailureCode` of a job the failure threshold stopped (S3 documents no code; ours).
pub const TASK_FAILURE_THRESHOLD: &str = "TaskFailureThresholdExceeded";
/// `FailureCode` of a manifest that could not be read from S3.
pub const MANIFEST_NOT_READABLE: &str = "ManifestNotReadable";
/// `FailureCode` of a manifest whose ETag is not the one the job was created with.
pub const MANIFEST_ETAG_MISMATCH: &str = "ManifestETagMismatch";
/// `FailureCode` of a manifest that is not well formed (the code S3's troubleshooting guide
/// names).
pub const INVALID_MANIFEST_CONTENT: &str = "InvalidManifestContent";
/// `FailureCode` of a report destination that cannot be written.
pub const REPORT_NOT_WRITABLE: &str = "ReportNotWritable";
/// `FailureCode` of a job whose function cannot be invoked, or that stopped on an error of
/// the runner.
pub const JOB_ERROR: &str = "JobFailed";

const BASE: &str = "v20180820";
const MAX_BODY: usize = 1 << 20;

/// How `cargo s3batch serve` runs jobs: where S3 and the Invoke API are, and the runner's
/// settings (those of `cargo s3batch run`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    s3_endpoint: Option<String>,
    lambda_endpoint: Option<String>,
    region: String,
    state_dir: PathBuf,
    concurrency: usize,
    grace: Duration,
    function_timeout: Duration,
    redrive: Redrive,
    threshold: FailureThreshold,
    max_active: Option<usize>,
}

impl ServeConfig {
    /// Jobs' journals in `state_dir` (one `job-<id>` folder while a job runs); S3 and Lambda
    /// from the usual AWS configuration; region `us-east-1` in job ARNs; 16 invocations at
    /// once per job, 30 s grace period for a cancelled job, 900 s function timeout, S3's
    /// redrive and failure threshold defaults.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            s3_endpoint: None,
            lambda_endpoint: None,
            region: "us-east-1".into(),
            state_dir: state_dir.into(),
            concurrency: 16,
            grace: Duration::from_secs(30),
            function_timeout: Duration::from_secs(900),
            redrive: Redrive::default(),
            threshold: FailureThreshold::default(),
            max_active: None,
        }
    }
    /// The S3 endpoint manifests are read from and reports written to (e.g. moto).
    pub fn s3_endpoint(mut self, url: impl Into<String>) -> Self {
        self.s3_endpoint = Some(url.into());
        self
    }
    /// The Lambda Invoke API endpoint (e.g. `cargo lambda watch`).
    pub fn lambda_endpoint(mut self, url: impl Into<String>) -> Self {
        self.lambda_endpoint = Some(url.into());
        self
    }
    /// The region written in job ARNs.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }
    /// Invocations in flight at once, per job.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// How long a cancelled job waits for its invocations in flight.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    /// The function timeout the runner enforces.
    pub fn function_timeout(mut self, timeout: Duration) -> Self {
        self.function_timeout = timeout;
        self
    }
    /// The redrive policy.
    pub fn redrive(mut self, redrive: Redrive) -> Self {
        self.redrive = redrive;
        self
    }
    /// At most `n` jobs running at once (`Active`, or ending): the others wait `Ready`, and
    /// the one with the highest priority (then the oldest) starts when a job ends. Default:
    /// no limit, every job starts once ready.
    pub fn max_active_jobs(mut self, n: usize) -> Self {
        self.max_active = Some(n.max(1));
        self
    }
    /// The failure threshold.
    pub fn failure_threshold(mut self, threshold: FailureThreshold) -> Self {
        self.threshold = threshold;
        self
    }
}

struct Shared {
    config: ServeConfig,
    jobs: Mutex<Jobs>,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    runners: Mutex<JoinSet<()>>,
    /// Woken when a job may start: one ended, was cancelled or changed priority.
    wake: tokio::sync::Notify,
}

/// A running S3 Control job endpoint. Dropping it stops the server and its jobs.
pub struct ControlServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ControlServer {
    /// Listens on `addr` (port 0: a free port) and serves until dropped.
    pub async fn start(addr: SocketAddr, config: ServeConfig) -> std::io::Result<ControlServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let s3 = crate::storage::s3_client(config.s3_endpoint.as_deref()).await;
        let lambda =
            LambdaInvoker::client(config.lambda_endpoint.as_deref(), config.function_timeout).await;
        let shared = Arc::new(Shared {
            config,
            jobs: Mutex::new(Jobs::default()),
            s3,
            lambda,
            runners: Mutex::new(JoinSet::new()),
            wake: tokio::sync::Notify::new(),
        });
        let accept = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(ControlServer {
            addr,
            shared,
            accept,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.runners.lock().expect("runners").abort_all();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&shared)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = crate::job::random_job_id().replace('-', "")[..16].to_uppercase();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (status, body) = match route(req, &shared).await {
        Ok(root) => (StatusCode::OK, document(&root)),
        Err(e) => {
            tracing::debug!("{method} {path}: {e}");
            (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                e.to_xml(&request_id),
            )
        }
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", &request_id)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response"))
}

fn account(req: &Request<Incoming>) -> Result<String, ApiError> {
    let a = req
        .headers()
        .get("x-amz-account-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("the x-amz-account-id header is missing"))?;
    if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "x-amz-account-id {a:?} is not a 12-digit account id"
        )));
    }
    Ok(a.to_owned())
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn route(req: Request<Incoming>, shared: &Arc<Shared>) -> Result<El, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let unknown = || {
        ApiError::bad_request(format!(
            "{method} {path} is no S3 Control job operation cargo s3batch serve knows"
        ))
    };
    match segments.as_slice() {
        [BASE, "jobs"] if method == Method::POST => {
            let account = account(&req)?;
            let body = Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
                .to_bytes();
            create(shared, &account, &body)
        }
        [BASE, "jobs"] if method == Method::GET => list(shared, &account(&req)?, &query(&req)),
        [BASE, "jobs", id] if method == Method::GET => {
            let job = shared.jobs.lock().expect("jobs").get(&account(&req)?, id)?;
            let job = job.lock().expect("job");
            Ok(El::parent("DescribeJobResult", vec![job.descriptor()]))
        }
        [BASE, "jobs", id, "status"] if method == Method::POST => {
            update_status(shared, &account(&req)?, id, &query(&req))
        }
        [BASE, "jobs", id, "priority"] if method == Method::POST => {
            let q = query(&req);
            let job = shared.jobs.lock().expect("jobs").get(&account(&req)?, id)?;
            let raw = param(&q, "priority")
                .ok_or_else(|| ApiError::bad_request("the priority query parameter is missing"))?;
            let priority = raw.parse::<i32>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("priority is {raw:?}; give 0 to 2147483647"))
            })?;
            let mut job = job.lock().expect("job");
            job.priority = priority;
            shared.wake.notify_waiters();
            Ok(El::parent(
                "UpdateJobPriorityResult",
                vec![
                    El::text("JobId", &job.id),
                    El::text("Priority", priority.to_string()),
                ],
            ))
        }
        [BASE, "jobs", id, "tagging"] if method == Method::GET => {
            let job = shared.jobs.lock().expect("jobs").get(&account(&req)?, id)?;
            let job = job.lock().expect("job");
            Ok(El::parent(
                "GetJobTaggingResult",
                vec![El::list(
                    "Tags",
                    job.request
                        .tags
                        .iter()
                        .map(|(k, v)| vec![El::text("Key", k), El::text("Value", v)])
                        .collect(),
                )],
            ))
        }
        _ => Err(unknown()),
    }
}

fn create(shared: &Arc<Shared>, account: &str, body: &[u8]) -> Result<El, ApiError> {
    let request = CreateJob::parse(body)?;
    let created = shared.jobs.lock().expect("jobs").create(
        account,
        &shared.config.region,
        request,
        crate::job::random_job_id(),
    )?;
    let id = match created {
        Created::Again(id) => id,
        Created::New(job) => {
            let id = job.lock().expect("job").id.clone();
            let mut runners = shared.runners.lock().expect("runners");
            while runners.try_join_next().is_some() {}
            runners.spawn(run(Arc::clone(shared), job));
            id
        }
    };
    Ok(El::parent("CreateJobResult", vec![El::text("JobId", id)]))
}

fn list(shared: &Arc<Shared>, account: &str, q: &[(String, String)]) -> Result<El, ApiError> {
    let statuses: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "jobStatuses")
        .map(|(_, v)| v.clone())
        .collect();
    let max = match param(q, "maxResults") {
        None => 1000,
        Some(m) => match m.parse::<usize>() {
            Ok(0) => 1000,
            Ok(n) if n <= 1000 => n,
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "maxResults is {m:?}; give 0 to 1000"
                )))
            }
        },
    };
    let (jobs, next) =
        shared
            .jobs
            .lock()
            .expect("jobs")
            .list(account, &statuses, max, param(q, "nextToken"))?;
    let mut out = Vec::new();
    if let Some(t) = next {
        out.push(El::text("NextToken", t));
    }
    out.push(El::list(
        "Jobs",
        jobs.iter()
            .map(|j| j.lock().expect("job").list_descriptor())
            .collect(),
    ));
    Ok(El::parent("ListJobsResult", out))
}

fn update_status(
    shared: &Arc<Shared>,
    account: &str,
    id: &str,
    q: &[(String, String)],
) -> Result<El, ApiError> {
    let job = shared.jobs.lock().expect("jobs").get(account, id)?;
    let requested = param(q, "requestedJobStatus").ok_or_else(|| {
        ApiError::bad_request("the requestedJobStatus query parameter is missing")
    })?;
    let reason = param(q, "statusUpdateReason");
    if let Some(r) = reason {
        let n = r.chars().count();
        if !(1..=256).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "statusUpdateReason must be 1 to 256 characters; it has {n}"
            )));
        }
    }
    let mut job = job.lock().expect("job");
    let (next, signal) = match requested {
        "Ready" => (job.status.confirm()?, Signal::Confirmed),
        "Cancelled" => (job.status.cancel()?, Signal::Cancel),
        other => {
            return Err(ApiError::bad_request(format!(
                "requestedJobStatus is {other:?}; use Ready (confirm a Suspended job) or Cancelled"
            )))
        }
    };
    job.set_status(next);
    if let Some(r) = reason {
        job.status_update_reason = Some(r.to_owned());
    }
    job.signal(signal);
    shared.wake.notify_waiters();
    let mut out = vec![
        El::text("JobId", &job.id),
        El::text("Status", job.status.as_str()),
    ];
    if let Some(r) = &job.status_update_reason {
        out.push(El::text("StatusUpdateReason", r));
    }
    Ok(El::parent("UpdateJobStatusResult", out))
}

/// What `Preparing` produced.
struct Prepared {
    manifest: ManifestSource,
    report: Option<(Location, ReportScope)>,
}

type Failure = (&'static str, String);

/// Reads the manifest (checking its ETag) and checks the report destination.
async fn prepare(shared: &Shared, request: &CreateJob, id: &str) -> Result<Prepared, Failure> {
    let s3 = &shared.s3;
    let spec = &request.manifest;
    let (bucket, key) =
        manifest_object(&spec.object_arn).map_err(|e| (INVALID_MANIFEST_CONTENT, e.message))?;
    let mut get = s3.get_object().bucket(&bucket).key(&key);
    if let Some(v) = &spec.object_version_id {
        get = get.version_id(v);
    }
    let out = get.send().await.map_err(|e| {
        (
            MANIFEST_NOT_READABLE,
            format!(
                "Reading the manifest s3://{bucket}/{key} failed: {}",
                sdk_message(&e)
            ),
        )
    })?;
    let etag = out.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| {
            (
                MANIFEST_NOT_READABLE,
                format!("Reading the manifest s3://{bucket}/{key} failed: {e}"),
            )
        })?
        .into_bytes();
    let given = spec.etag.trim_matches('"');
    if etag != given {
        return Err((
            MANIFEST_ETAG_MISMATCH,
            format!(
                "The manifest s3://{bucket}/{key} has ETag {etag}, not {given}: create the job \
                 with the object's current ETag (HeadObject)"
            ),
        ));
    }
    let manifest = if spec.format == "S3InventoryReport_CSV_20161130" {
        Manifest::load(&Location::S3 { bucket, key }, s3).await
    } else {
        let csv = reorder(&bytes, &spec.fields).map_err(|e| (INVALID_MANIFEST_CONTENT, e))?;
        Manifest::from_csv(&csv)
    }
    .map_err(|e| {
        (
            INVALID_MANIFEST_CONTENT,
            format!("Invalid manifest content: {e}"),
        )
    })?;
    let report = match &request.report {
        r if r.enabled => {
            let bucket = bucket_name(r.bucket.as_deref().unwrap_or_default())
                .map_err(|e| (REPORT_NOT_WRITABLE, e.message))?;
            let location = Location::S3 {
                bucket,
                key: r.prefix.clone().unwrap_or_default(),
            };
            journal::check_destination(&location, id, s3)
                .await
                .map_err(|e| (REPORT_NOT_WRITABLE, e))?;
            let scope = if r.scope.as_deref() == Some("FailedTasksOnly") {
                ReportScope::FailedTasksOnly
            } else {
                ReportScope::AllTasks
            };
            Some((location, scope))
        }
        _ => None,
    };
    Ok(Prepared {
        manifest: ManifestSource::from(manifest),
        report,
    })
}

fn sdk_message<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> String {
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// A CSV manifest whose `Spec.Fields` put the columns in another order than
/// `Bucket, Key[, VersionId]`, rewritten in that order.
pub(crate) fn reorder(bytes: &[u8], fields: &[String]) -> Result<Vec<u8>, String> {
    let standard = |f: &[&str]| fields.iter().map(String::as_str).eq(f.iter().copied());
    if fields.is_empty()
        || standard(&["Bucket", "Key"])
        || standard(&["Bucket", "Key", "VersionId"])
    {
        return Ok(bytes.to_vec());
    }
    let find = |n: &str| fields.iter().position(|f| f == n);
    let (Some(b), Some(k)) = (find("Bucket"), find("Key")) else {
        return Err(format!(
            "Manifest.Spec.Fields {fields:?} names no Bucket or no Key column"
        ));
    };
    let v = find("VersionId");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for (n, record) in reader.byte_records().enumerate() {
        let record = record.map_err(|e| format!("manifest line {}: {e}", n + 1))?;
        if record.len() != fields.len() {
            return Err(format!(
                "manifest line {} has {} columns; Manifest.Spec.Fields names {}",
                n + 1,
                record.len(),
                fields.len()
            ));
        }
        let mut row = vec![&record[b], &record[k]];
        if let Some(v) = v {
            row.push(&record[v]);
        }
        out.write_record(row).map_err(|e| e.to_string())?;
    }
    out.into_inner().map_err(|e| e.to_string())
}

/// Waits until a client has asked for something.
async fn next_signal(signals: &mut tokio::sync::watch::Receiver<Signal>) -> Signal {
    loop {
        let s = *signals.borrow_and_update();
        if s != Signal::None {
            return s;
        }
        if signals.changed().await.is_err() {
            return Signal::Cancel;
        }
    }
}

/// Runs one job through its states.
async fn run(shared: Arc<Shared>, job: SharedJob) {
    let (request, id, mut signals) = {
        let mut j = job.lock().expect("job");
        j.set_status(Status::Preparing);
        (j.request.clone(), j.id.clone(), j.signals())
    };
    let prepared = prepare(&shared, &request, &id).await;
    let prepared = {
        let mut j = job.lock().expect("job");
        if j.status == Status::Cancelling {
            j.set_status(Status::Cancelled);
            return;
        }
        match prepared {
            Err((code, reason)) => {
                j.fail_reason(code, &reason);
                j.set_status(Status::Failed);
                return;
            }
            Ok(p) => {
                j.total = p.manifest.len() as u64;
                if request.confirmation_required {
                    j.set_status(Status::Suspended);
                } else {
                    j.set_status(Status::Ready);
                }
                p
            }
        }
    };
    if request.confirmation_required && next_signal(&mut signals).await == Signal::Cancel {
        // UpdateJobStatus made it Cancelled already.
        return;
    }
    loop {
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match activate(&shared, &job) {
            Some(true) => break,
            Some(false) => woken.await,
            // Cancelled while it waited.
            None => return,
        }
    }
    shared.wake.notify_waiters();
    let ended = execute(&shared, &job, &request, &id, prepared, signals).await;
    if let Err((code, reason)) = ended {
        let mut j = job.lock().expect("job");
        j.fail_reason(code, &reason);
        j.set_status(Status::Failed);
    }
    shared.wake.notify_waiters();
}

/// Makes a `Ready` job `Active` if a slot is free and no other `Ready` job comes first
/// (`Some(true)`); `Some(false)`: it must wait; `None`: it is no longer `Ready`.
fn activate(shared: &Shared, job: &SharedJob) -> Option<bool> {
    let jobs = shared.jobs.lock().expect("jobs");
    if job.lock().expect("job").status != Status::Ready {
        return None;
    }
    if let Some(max) = shared.config.max_active {
        let first = jobs.next_ready();
        if jobs.running() >= max || !first.is_some_and(|f| Arc::ptr_eq(&f, job)) {
            return Some(false);
        }
    }
    job.lock().expect("job").set_status(Status::Active);
    Some(true)
}

/// Runs the tasks (status `Active`) with the engine of `cargo s3batch run`, then writes the
/// report and sets the final status.
async fn execute(
    shared: &Shared,
    job: &SharedJob,
    request: &CreateJob,
    id: &str,
    prepared: Prepared,
    mut signals: tokio::sync::watch::Receiver<Signal>,
) -> Result<(), Failure> {
    let config = &shared.config;
    let dir = config.state_dir.join(format!("job-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut journal = Journal::create(&dir, id, &request.manifest.object_arn, &prepared.manifest)
        .map_err(|e| (JOB_ERROR, e))?;
    let progress_job = Arc::clone(job);
    let mut local = LocalJob::new(prepared.manifest)
        .job_id(id)
        .schema(if request.schema == "2.0" {
            Schema::V2
        } else {
            Schema::V1
        })
        .concurrency(config.concurrency)
        .grace_period(config.grace)
        .redrive(config.redrive)
        .failure_threshold(Some(config.threshold))
        .on_progress(move |p| {
            let mut j = progress_job.lock().expect("job");
            j.succeeded = (p.done - p.failed) as u64;
            j.failed = p.failed as u64;
        });
    for (k, v) in &request.user_arguments {
        local = local.user_argument(k, v);
    }
    let invoker = LambdaInvoker::new(shared.lambda.clone(), function_name(&request.function_arn));
    let stop = async move {
        while next_signal(&mut signals).await != Signal::Cancel {
            if signals.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let ran = local.run_journaled(invoker, &mut journal, stop).await;
    let finished = journal.finished();
    let (status, failure) = match &ran {
        Ok(outcome) => {
            let mut j = job.lock().expect("job");
            j.succeeded = outcome.summary.succeeded as u64;
            j.failed = outcome.summary.failed as u64;
            match &outcome.status {
                crate::JobStatus::Complete => (Status::Complete, None),
                crate::JobStatus::Cancelled => (Status::Cancelled, None),
                crate::JobStatus::Failed { reason } => {
                    j.set_status(Status::Failing);
                    (
                        Status::Failed,
                        Some((TASK_FAILURE_THRESHOLD, reason.clone())),
                    )
                }
            }
        }
        Err(e) => {
            job.lock().expect("job").set_status(Status::Failing);
            (Status::Failed, Some((JOB_ERROR, e.to_string())))
        }
    };
    let _ = journal.finish(match &ran {
        Ok(o) => &o.status,
        Err(_) => &crate::JobStatus::Cancelled,
    });
    drop(journal);
    if let Some((code, reason)) = &failure {
        job.lock().expect("job").fail_reason(code, reason);
    }
    // S3 writes a report once at least one task was invoked.
    if let (Some((location, scope)), true) = (&prepared.report, finished > 0) {
        if let Err(e) = journal::write_report(&dir, location, *scope, &shared.s3).await {
            let _ = std::fs::remove_dir_all(&dir);
            return Err((
                REPORT_NOT_WRITABLE,
                format!("Writing the report failed: {e}"),
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    job.lock().expect("job").set_status(status);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reorder;

    #[test]
    fn fields_put_columns_in_order() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let csv = b"b1,k%201\nb2,k2\n";
        assert_eq!(reorder(csv, &f(&["Bucket", "Key"])).unwrap(), csv);
        assert_eq!(reorder(csv, &[]).unwrap(), csv);
        assert_eq!(
            reorder(
                b"x,k1,b1,v1\ny,\"k,2\",b2,v2\n",
                &f(&["Ignore", "Key", "Bucket", "VersionId"])
            )
            .unwrap(),
            b"b1,k1,v1\nb2,\"k,2\",v2\n"
        );
        let err = reorder(b"k1,b1\nk2\n", &f(&["Key", "Bucket"])).unwrap_err();
        assert!(err.contains("line 2 has 1 columns"), "{err}");
        assert!(reorder(csv, &f(&["Key", "Ignore"]))
            .unwrap_err()
            .contains("no Bucket"));
    }
}
