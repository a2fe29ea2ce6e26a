//! The HTTP server of `cargo s3batch serve` and the runner of its jobs.

use super::state::{Created, Jobs, SharedJob, Signal, Status};
use crate::model::{JobSpec, ManifestSpec};
use crate::xml::{document, ApiError, El};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use s3batch_job::journal::{self, Journal};
use s3batch_job::lifecycle;
use s3batch_job::manifest::{reorder_columns, ManifestSource, Staged};
use s3batch_job::report::ReportScope;
use s3batch_job::storage::Location;
use s3batch_job::{FailureThreshold, LambdaInvoker, LocalJob, Redrive};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
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
/// How long the accept loop waits after a failed accept (out of file descriptors, say)
/// before it tries again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
    request_timeout: Duration,
    max_connections: usize,
}

impl ServeConfig {
    /// Jobs' records in `state_dir` (`jobs/<id>.json`, kept 90 days after a job ends), their
    /// journals (one `job-<id>` folder while a job runs) and the server's lock (`serve.lock`:
    /// one server per state folder); S3 and Lambda
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
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
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
    /// How long a client may take to send a request's headers, and then its body; a
    /// connection that sends nothing for that long (a new one, or an idle keep-alive one) is
    /// closed. Default 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// At most `n` connections open at once (default 256): once reached, a new connection
    /// waits in the listen backlog until one closes.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
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

/// A running S3 Control job endpoint. Dropping it stops the server and its jobs, which a
/// server started again on the same state folder takes up ([`ControlServer::start`]).
pub struct ControlServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
    _lock: StateLock,
}

/// The server's state folder, held by one server at a time (the operating system's lock on
/// `serve.lock`, released by a crash too; the file holds the holder's process id).
#[derive(Debug)]
struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    fn acquire(dir: &Path) -> std::io::Result<StateLock> {
        use std::io::{Read, Write};
        let path = dir.join("serve.lock");
        let context =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(context)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(context)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = match pid.trim() {
                    "" => "unknown",
                    pid => pid,
                };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ResourceBusy,
                    format!(
                        "state folder {} is in use by another cargo s3batch serve, process \
                         {pid}: stop that one, or give this one another --state-dir",
                        dir.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(context(e)),
        }
        file.set_len(0)
            .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
            .map_err(context)?;
        Ok(StateLock { _file: file })
    }
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
    ///
    /// The state folder is this server's alone: a second server on it is refused, naming the
    /// process that holds it. The jobs recorded there (`jobs/<id>.json`) by an earlier server
    /// are listed and described again, but those ended more than 90 days ago, which are
    /// deleted; those that had not ended are taken up: `New`, `Preparing`, `Suspended` and
    /// `Ready` ones are prepared again (a `Suspended` one then waits for its confirmation
    /// again, a `Ready` one does not); an `Active` one is prepared again (its manifest read
    /// and its ETag checked) and resumed from its journal, so the tasks that finished are
    /// not invoked again; a `Cancelling` or `Failing` one ends from its journal (its report,
    /// then `Cancelled` or `Failed`) without invoking anything. A job whose journal is
    /// missing or cannot be resumed fails, with a reason naming it.
    pub async fn start(addr: SocketAddr, config: ServeConfig) -> std::io::Result<ControlServer> {
        let lock = StateLock::acquire(&config.state_dir)?;
        let records = config.state_dir.join("jobs");
        let (jobs, opened) = Jobs::open(&records, SystemTime::now())
            .map_err(|e| std::io::Error::other(format!("reading the job records: {e}")))?;
        for id in &opened.expired {
            tracing::info!("job {id} ended more than 90 days ago: its record is deleted");
        }
        for bad in &opened.unreadable {
            tracing::warn!("a job record cannot be read, so its job is not listed: {bad}");
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let s3 = s3batch_job::storage::s3_client(config.s3_endpoint.as_deref()).await;
        let lambda =
            LambdaInvoker::client(config.lambda_endpoint.as_deref(), config.function_timeout).await;
        let unfinished = jobs.unfinished();
        let shared = Arc::new(Shared {
            config,
            jobs: Mutex::new(jobs),
            s3,
            lambda,
            runners: Mutex::new(JoinSet::new()),
            wake: tokio::sync::Notify::new(),
        });
        {
            let mut runners = shared.runners.lock().expect("runners");
            for job in unfinished {
                runners.spawn(run(Arc::clone(&shared), job));
            }
        }
        let accept = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(ControlServer {
            addr,
            shared,
            accept,
            _lock: lock,
        })
    }

    /// Stops the server as dropping it does, and returns once its jobs' runners have
    /// stopped: their journals are closed and unlocked, so a server started next on the same
    /// state folder (even in this process) takes their jobs up at once.
    pub async fn shutdown(mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
        let mut runners = std::mem::take(&mut *self.shared.runners.lock().expect("runners"));
        runners.abort_all();
        while runners.join_next().await.is_some() {}
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

/// The accept loop: at most `max_connections` connections at once, each closed when a
/// request's headers (or an idle connection's next request) take longer than
/// `request_timeout`; a failed accept (no file descriptor left, say) is retried after a
/// pause rather than at once.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(shared.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let stream = loop {
            match listener.accept().await {
                Ok((stream, _)) => break stream,
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        };
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let _slot = slot;
            let timeout = shared.config.request_timeout;
            let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&shared)));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Connections that ended are reaped here; the others run on.
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = s3batch_job::job::random_job_id().replace('-', "")[..16].to_uppercase();
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
            let timeout = shared.config.request_timeout;
            let body =
                tokio::time::timeout(timeout, Limited::new(req.into_body(), MAX_BODY).collect())
                    .await
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "the request body did not arrive within {} s",
                            timeout.as_secs_f64()
                        ))
                    })?
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
            job.set_priority(priority);
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
    let created = shared.jobs.lock().expect("jobs").create(
        account,
        &shared.config.region,
        body,
        s3batch_job::job::random_job_id(),
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
    if let Some(r) = reason {
        job.status_update_reason = Some(r.to_owned());
    }
    // Saves the record, with the reason.
    job.set_status(next);
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

/// Prepares the job with the engine's lifecycle, as `cargo s3batch run` does: its folder
/// held and its journal checked against the job ([`lifecycle::claim`]), the manifest read
/// (checking its ETag), then the report destination checked ([`lifecycle::Claimed::prepare`]).
async fn prepare(
    shared: &Shared,
    request: &JobSpec,
    id: &str,
    start: lifecycle::Start,
) -> Result<lifecycle::PreparedJob, Failure> {
    let s3 = &shared.s3;
    let report = request.report.destination().map(|(bucket, prefix, scope)| {
        let location = Location::S3 {
            bucket: bucket.bucket().to_owned(),
            key: prefix.to_owned(),
        };
        (location, scope)
    });
    let claimed = lifecycle::claim(lifecycle::JobPlan {
        dir: job_dir(shared, id),
        job_id: id.to_owned(),
        manifest_name: request
            .manifest
            .location()
            .map(|l| l.object.to_string())
            .unwrap_or_default(),
        definition: journal::JobDefinition {
            function: format!("function {}", request.operation.function),
            schema: request.operation.schema.to_string(),
            user_arguments: request.operation.user_arguments.as_map().clone(),
            tasks_per_invocation: 1,
            report: report.as_ref().map(|(l, s)| format!("{l} ({s:?})")),
        },
        report,
        start,
    })
    .map_err(|e| (JOB_ERROR, e.to_string()))?;
    let Some(spec) = request.manifest.location() else {
        return Err((
            INVALID_MANIFEST_CONTENT,
            "a generated manifest (ManifestGenerator) is not supported".to_owned(),
        ));
    };
    let (bucket, key) = (spec.object.bucket(), spec.object.key());
    let mut get = s3.get_object().bucket(bucket).key(key);
    if let Some(v) = &spec.version_id {
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
    // The manifest is saved in the job's folder as it arrives and read from there as the job
    // goes, so memory does not grow with its rows. The folder goes with the job's journal, or
    // with the source when the job never runs.
    let name = format!("s3://{bucket}/{key}");
    let staged =
        Staged::create(claimed.dir().join("manifest")).map_err(|e| (JOB_ERROR, e.to_string()))?;
    let inventory = matches!(request.manifest, ManifestSpec::Inventory { .. });
    let saved = staged.dir().join(if inventory {
        "manifest.json"
    } else {
        "object.csv"
    });
    s3batch_job::storage::save_body(out.body, &saved, "its body")
        .await
        .map_err(|e| {
            (
                MANIFEST_NOT_READABLE,
                format!("Reading the manifest {name} failed: {e}"),
            )
        })?;
    let manifest = if inventory {
        let json = std::fs::read(&saved)
            .map_err(|e| (JOB_ERROR, format!("reading {}: {e}", saved.display())))?;
        s3batch_job::storage::fetch_inventory(&json, s3, staged.dir()).await
    } else {
        let csv = staged.dir().join("manifest.csv");
        let rewrite = || -> Result<bool, String> {
            let input = std::fs::File::open(&saved)
                .map_err(|e| format!("reading {}: {e}", saved.display()))?;
            let out = std::fs::File::create(&csv)
                .map_err(|e| format!("creating {}: {e}", csv.display()))?;
            let input = std::io::BufReader::with_capacity(1 << 16, input);
            let fields: Vec<String> = request
                .manifest
                .fields()
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect();
            match reorder_columns(input, &fields, std::io::BufWriter::new(out))
                .map_err(|e| e.to_string())?
            {
                Some(mut out) => std::io::Write::flush(&mut out)
                    .map(|()| true)
                    .map_err(|e| format!("writing {}: {e}", csv.display())),
                None => Ok(false),
            }
        };
        let read = if rewrite().map_err(|e| (INVALID_MANIFEST_CONTENT, e))? {
            &csv
        } else {
            &saved
        };
        ManifestSource::open_csv(read)
    }
    .map_err(|e| {
        (
            INVALID_MANIFEST_CONTENT,
            format!("Invalid manifest content: {}", e.of(name)),
        )
    })?
    .staged(staged);
    claimed.prepare(manifest, s3).await.map_err(|e| match e {
        lifecycle::PrepareError::Destination(e) => (REPORT_NOT_WRITABLE, e.to_string()),
        e => (JOB_ERROR, e.to_string()),
    })
}

/// Creates or resumes the prepared job's journal.
fn start(job: lifecycle::PreparedJob) -> Result<(Journal, Prepared), Failure> {
    let report = job.plan().report.clone();
    let (journal, manifest) = job.start().map_err(|e| (JOB_ERROR, e.to_string()))?;
    Ok((journal, Prepared { manifest, report }))
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

/// Runs one job through its states: from the start, or (a job an earlier server left
/// `Active`, `Cancelling` or `Failing`) from its journal.
async fn run(shared: Arc<Shared>, job: SharedJob) {
    let status = job.lock().expect("job").status;
    match status {
        Status::Active | Status::Cancelling | Status::Failing => resume(&shared, &job).await,
        _ => run_fresh(&shared, &job).await,
    }
    shared.wake.notify_waiters();
}

/// The folder of job `id`'s journal (and of its manifest while it runs).
fn job_dir(shared: &Shared, id: &str) -> PathBuf {
    shared.config.state_dir.join(format!("job-{id}"))
}

/// Records a job-level failure and ends the job `Failed`.
fn fail(job: &SharedJob, (code, reason): Failure) {
    let mut j = job.lock().expect("job");
    j.fail_reason(code, &reason);
    j.set_status(Status::Failed);
}

/// Runs a job from the start: a new one, or one an earlier server left before it started
/// tasks (`New`, `Preparing`, `Suspended` or `Ready`: it keeps that status while it is
/// prepared again, and a `Ready` one is not asked for confirmation again).
async fn run_fresh(shared: &Arc<Shared>, job: &SharedJob) {
    let (request, id, mut signals) = {
        let mut j = job.lock().expect("job");
        if j.status == Status::New {
            j.set_status(Status::Preparing);
        }
        (j.request.clone(), j.id.clone(), j.signals())
    };
    // What an earlier server left of a job that had not started tasks (its manifest).
    let dir = job_dir(shared, &id);
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let prepared = prepare(shared, &request, &id, lifecycle::Start::New).await;
    let (prepared, suspended) = {
        let mut j = job.lock().expect("job");
        if j.status == Status::Cancelling {
            j.set_status(Status::Cancelled);
            return;
        }
        if j.status.is_terminal() {
            // Cancelled while it was prepared again (a Suspended or Ready one).
            return;
        }
        match prepared {
            Err((code, reason)) => {
                j.fail_reason(code, &reason);
                j.set_status(Status::Failed);
                return;
            }
            Ok(p) => {
                j.total = p.manifest().len() as u64;
                if j.status == Status::Preparing {
                    j.set_status(if request.confirmation_required {
                        Status::Suspended
                    } else {
                        Status::Ready
                    });
                }
                (p, j.status == Status::Suspended)
            }
        }
    };
    if suspended && next_signal(&mut signals).await == Signal::Cancel {
        // UpdateJobStatus made it Cancelled already.
        return;
    }
    loop {
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match activate(shared, job) {
            Some(true) => break,
            Some(false) => woken.await,
            // Cancelled while it waited.
            None => return,
        }
    }
    shared.wake.notify_waiters();
    let (journal, prepared) = match start(prepared) {
        Ok(started) => started,
        Err(failure) => return fail(job, failure),
    };
    if let Err(failure) = execute(shared, job, &request, &id, prepared, signals, journal).await {
        fail(job, failure);
    }
}

/// Takes up a job an earlier server left after it started tasks: prepared again (its
/// manifest read and its ETag checked), its journal resumed (which checks that the manifest
/// is the one the job started with, and gives the counts); then an `Active` job runs the
/// tasks not finished, a `Cancelling` or `Failing` one ends at once (its report from what
/// finished). A journal that is missing or cannot be resumed fails the job, naming it: the
/// job is never run again from the start, which would invoke finished tasks again.
async fn resume(shared: &Arc<Shared>, job: &SharedJob) {
    let (request, id, signals) = {
        let j = job.lock().expect("job");
        (j.request.clone(), j.id.clone(), j.signals())
    };
    let dir = job_dir(shared, &id);
    if !Journal::exists(&dir) {
        let mut j = job.lock().expect("job");
        match j.status {
            // Its report was written (the journal goes once it is) or no task ran.
            Status::Cancelling => j.set_status(Status::Cancelled),
            Status::Failing => j.set_status(Status::Failed),
            _ => {
                j.fail_reason(
                    JOB_ERROR,
                    &format!(
                        "The journal {} is missing: the job was Active when the server \
                         stopped, and it is not run again from the start, which would invoke \
                         its finished tasks again",
                        dir.join("job.json").display()
                    ),
                );
                j.set_status(Status::Failed);
            }
        }
        return;
    }
    let kept = || {
        (
            JOB_ERROR,
            format!(
                "The job could not be resumed; the results of its finished tasks are kept in \
                 {}",
                dir.display()
            ),
        )
    };
    let prepared = match prepare(shared, &request, &id, lifecycle::Start::Resume).await {
        Ok(p) => p,
        Err(failure) => {
            job.lock().expect("job").fail_reason(failure.0, &failure.1);
            return fail(job, kept());
        }
    };
    let (journal, prepared) = match start(prepared) {
        Ok(started) => started,
        Err((_, e)) => {
            return fail(
                job,
                (
                    JOB_ERROR,
                    format!("Resuming the journal in {} failed: {e}", dir.display()),
                ),
            )
        }
    };
    let (status, reason) = {
        let mut j = job.lock().expect("job");
        let counts = journal.counts();
        j.total = prepared.manifest.len() as u64;
        j.succeeded = counts.succeeded as u64;
        j.failed = counts.failed as u64;
        j.save();
        (j.status, j.failure_reasons.first().map(|(_, r)| r.clone()))
    };
    let ended = match status {
        Status::Active => execute(shared, job, &request, &id, prepared, signals, journal).await,
        Status::Cancelling => {
            conclude(
                shared,
                job,
                journal,
                prepared.report.as_ref(),
                s3batch_job::JobStatus::Cancelled,
                Status::Cancelled,
            )
            .await
        }
        _ => {
            let reason = reason.unwrap_or_else(|| "the job failed".into());
            conclude(
                shared,
                job,
                journal,
                prepared.report.as_ref(),
                s3batch_job::JobStatus::Failed { reason },
                Status::Failed,
            )
            .await
        }
    };
    if let Err(failure) = ended {
        fail(job, failure);
    }
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

/// Runs the tasks (status `Active`) with the engine of `cargo s3batch run`, recording them
/// in `journal` (new, or resumed: the tasks in it are not run again), then writes the report
/// and sets the final status.
async fn execute(
    shared: &Shared,
    job: &SharedJob,
    request: &JobSpec,
    id: &str,
    prepared: Prepared,
    mut signals: tokio::sync::watch::Receiver<Signal>,
    mut journal: Journal,
) -> Result<(), Failure> {
    let config = &shared.config;
    let progress_job = Arc::clone(job);
    let mut local = LocalJob::new(prepared.manifest)
        .job_id(id)
        .schema(request.operation.schema)
        .concurrency(config.concurrency)
        .grace_period(config.grace)
        .redrive(config.redrive)
        .failure_threshold(Some(config.threshold))
        .on_progress(move |p| {
            let mut j = progress_job.lock().expect("job");
            j.succeeded = (p.done - p.failed) as u64;
            j.failed = p.failed as u64;
            j.save_progress();
        });
    for (k, v) in &request.operation.user_arguments {
        local = local.user_argument(k, v);
    }
    let invoker = LambdaInvoker::new(shared.lambda.clone(), request.operation.function.name());
    let stop = async move {
        while next_signal(&mut signals).await != Signal::Cancel {
            if signals.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let ran = local.run_journaled(invoker, &mut journal, stop).await;
    let (status, failure) = match &ran {
        Ok(outcome) => {
            let mut j = job.lock().expect("job");
            j.succeeded = outcome.summary.succeeded as u64;
            j.failed = outcome.summary.failed as u64;
            match &outcome.status {
                s3batch_job::JobStatus::Complete => (Status::Complete, None),
                s3batch_job::JobStatus::Cancelled => (Status::Cancelled, None),
                s3batch_job::JobStatus::Failed { reason } => (
                    Status::Failed,
                    Some((TASK_FAILURE_THRESHOLD, reason.clone())),
                ),
            }
        }
        Err(e) => (Status::Failed, Some((JOB_ERROR, e.to_string()))),
    };
    if let Some((code, reason)) = &failure {
        // Saved with the reason: a server restarted now ends the job from its journal.
        let mut j = job.lock().expect("job");
        j.fail_reason(code, reason);
        j.set_status(Status::Failing);
    }
    // A run that ended on an error of its own is recorded as failed: the job is over, its
    // report is written from what finished, as for any failed job.
    let ended = match &ran {
        Ok(o) => o.status.clone(),
        Err(e) => s3batch_job::JobStatus::Failed {
            reason: e.to_string(),
        },
    };
    conclude(
        shared,
        job,
        journal,
        prepared.report.as_ref(),
        ended,
        status,
    )
    .await
}

/// Ends a job from its journal: records how it `ended`, writes the report (S3 writes one once
/// at least one task was invoked), removes the journal, and sets the final `status`.
async fn conclude(
    shared: &Shared,
    job: &SharedJob,
    mut journal: Journal,
    report: Option<&(Location, ReportScope)>,
    ended: s3batch_job::JobStatus,
    status: Status,
) -> Result<(), Failure> {
    let finished = journal.finished();
    let lock = journal
        .finish(&ended)
        .and_then(|()| journal.into_lock())
        .map_err(|e| (JOB_ERROR, e.to_string()))?;
    let report = match (report, finished > 0) {
        (Some((location, scope)), true) => Some((location, *scope)),
        _ => None,
    };
    // The journal is removed only once the report is written: when it cannot be, the
    // results stay in the journal's folder, which the failure reason names.
    lifecycle::finish(lock, report, lifecycle::Cancelled::Final, &shared.s3)
        .await
        .map_err(|e| {
            (
                REPORT_NOT_WRITABLE,
                format!("Writing the report failed: {e}"),
            )
        })?;
    job.lock().expect("job").set_status(status);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ControlServer, ServeConfig};

    /// A second server on a state folder in use is refused before it listens, naming the
    /// process that holds the folder; once the first stops, the folder is free again.
    #[tokio::test]
    async fn a_second_server_on_the_same_state_folder_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("s3batch-serve-unit-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = || {
            ServeConfig::new(&dir)
                .s3_endpoint("http://127.0.0.1:1")
                .lambda_endpoint("http://127.0.0.1:1")
        };
        let any_port = "127.0.0.1:0".parse().unwrap();
        let first = ControlServer::start(any_port, config()).await.unwrap();
        let err = ControlServer::start(any_port, config()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "state folder {} is in use by another cargo s3batch serve, process {}",
                dir.display(),
                std::process::id()
            )),
            "{message}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("serve.lock")).unwrap(),
            std::process::id().to_string()
        );
        first.shutdown().await;
        let again = ControlServer::start(any_port, config()).await.unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Jobs an earlier server left after they started tasks, without their journal: the
    /// `Active` one fails, naming the journal it lacks (it is not run again from the start);
    /// the `Cancelling` and `Failing` ones end as they were ending.
    #[tokio::test]
    async fn a_started_job_without_its_journal_is_not_run_again() {
        use super::super::state::{Created, Jobs, Status};
        let dir = std::env::temp_dir().join(format!(
            "s3batch-serve-unit-no-journal-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let a = "123456789012";
        let mut ids = Vec::new();
        {
            let (mut jobs, _) =
                Jobs::open(&dir.join("jobs"), std::time::SystemTime::now()).unwrap();
            for (i, status) in [Status::Active, Status::Cancelling, Status::Failing]
                .into_iter()
                .enumerate()
            {
                let body = include_str!("testdata/create_job.xml").replace("TOKEN", &i.to_string());
                let id = format!("00000000-0000-4000-8000-00000000000{i}");
                let Created::New(job) = jobs
                    .create(a, "us-east-1", body.as_bytes(), id.clone())
                    .unwrap()
                else {
                    panic!("a new job")
                };
                let mut job = job.lock().unwrap();
                job.set_status(Status::Active);
                if status == Status::Failing {
                    job.fail_reason("TaskFailureThresholdExceeded", "too many tasks failed");
                }
                job.set_status(status);
                ids.push(id);
            }
        }
        let server = ControlServer::start(
            "127.0.0.1:0".parse().unwrap(),
            ServeConfig::new(&dir)
                .s3_endpoint("http://127.0.0.1:1")
                .lambda_endpoint("http://127.0.0.1:1"),
        )
        .await
        .unwrap();
        let ended = |id: &str| {
            let job = server.shared.jobs.lock().unwrap().get(a, id).unwrap();
            let job = job.lock().unwrap();
            job.status
                .is_terminal()
                .then(|| (job.status, job.failure_reasons.clone()))
        };
        let start = std::time::Instant::now();
        while ids.iter().any(|id| ended(id).is_none()) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "the jobs did not end"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (status, reasons) = ended(&ids[0]).unwrap();
        assert_eq!(status, Status::Failed);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(reasons[0].0, "JobFailed");
        let journal = dir.join(format!("job-{}", ids[0])).join("job.json");
        assert!(
            reasons[0]
                .1
                .starts_with(&format!("The journal {} is missing", journal.display())),
            "{reasons:?}"
        );
        assert_eq!(ended(&ids[1]).unwrap(), (Status::Cancelled, vec![]));
        assert_eq!(
            ended(&ids[2]).unwrap(),
            (
                Status::Failed,
                vec![(
                    "TaskFailureThresholdExceeded".to_owned(),
                    "too many tasks failed".to_owned()
                )]
            )
        );
        server.shutdown().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
