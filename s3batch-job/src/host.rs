//! Hosting the function's own binary through the Lambda Runtime API ([`RuntimeHost`]), as
//! Lambda does: one process per concurrency slot, a real deadline, and a fresh process when
//! one dies or times out.
//!
//! `cargo lambda watch` (reached through [`LambdaInvoker`](crate::LambdaInvoker)) never
//! replaces a function process that died: after an abort, a `kill -9` or an OOM kill every
//! later invocation waits for the whole timeout. [`RuntimeHost`] runs the built `bootstrap`
//! (any binary that speaks the Runtime API, e.g. `target/debug/my_fn` or the `bootstrap` from
//! `cargo lambda build`) itself:
//!
//! - **Instances.** Up to [`HostConfig::instances`] processes, started on demand. Each has
//!   its own Runtime API server on `127.0.0.1` (an ephemeral port, passed as
//!   `AWS_LAMBDA_RUNTIME_API`) and serves one invocation at a time. Between invocations an
//!   instance waits, idle, for the next one, as a warm Lambda sandbox does.
//! - **Deadline.** `Lambda-Runtime-Deadline-Ms` is the moment the event is handed over plus
//!   the function timeout, so the function's deadline margin works as on Lambda.
//! - **Failures.** An instance that exits or is killed during an invocation fails that
//!   invocation with Lambda's `Runtime.ExitError` document (`Runtime exited with error:
//!   signal: killed`); an invocation still running at its deadline is ended by killing the
//!   instance and fails with `Task timed out after N.NN seconds` (the document
//!   [`LambdaInvoker`](crate::LambdaInvoker) produces too). Either way the next invocation
//!   gets a fresh instance. An idle instance that died is replaced without failing anything.
//! - **Init errors.** A process that reports `/runtime/init/error`, exits before asking for
//!   work, cannot be started, or does not ask for work within [`HostConfig::init_timeout`]
//!   fails the invocation waiting for it with that error. After `n` init failures in a row,
//!   each new process starts only after `0.1 s × 2^(n−1)` (at most 5 s), so a function
//!   that cannot start is not respawned in a hot loop; a successful start resets the count.
//! - **Environment.** The runner's own environment (credentials, `AWS_ENDPOINT_URL`, …), then
//!   Lambda's variables (`AWS_LAMBDA_FUNCTION_NAME`, `…_VERSION`, `…_MEMORY_SIZE`,
//!   `…_LOG_GROUP_NAME`, `…_LOG_STREAM_NAME`, `AWS_REGION`, `LAMBDA_TASK_ROOT`, …), then
//!   [`HostConfig::env`]. `AWS_LAMBDA_MAX_CONCURRENCY` is removed: one invocation per
//!   process, as on Lambda (default capacity).
//! - **Logs.** Every line an instance writes to stdout or stderr, and the host's own notes
//!   (instance started, exited, killed at its deadline), go to [`HostConfig::log_file`] or,
//!   without one, to the runner's stderr, prefixed with `[NAME#N]` (the instance number).
//! - **Shutdown.** Every process is killed (`SIGKILL`) and reaped when the host is dropped,
//!   also while unwinding from a panic. That is the processes the host started, not
//!   processes they start themselves. A runner killed with `SIGKILL` cannot clean up; its
//!   instances then find their Runtime API gone and exit when they next ask for work.

use crate::invoke::{error_doc, Invoke, Invoked};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The largest response Lambda accepts from a function, in bytes (the figure its
/// `Function.ResponseSizeTooLarge` message gives).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

const PREFIX: &str = "/2018-06-01/runtime/";
const ACCOUNT: &str = "000000000000";

/// How a [`RuntimeHost`] runs the function.
#[derive(Debug, Clone)]
pub struct HostConfig {
    bootstrap: PathBuf,
    function_name: String,
    instances: usize,
    timeout: Duration,
    init_timeout: Duration,
    memory_mb: u32,
    region: Option<String>,
    env: Vec<(OsString, OsString)>,
    log_file: Option<PathBuf>,
}

impl HostConfig {
    /// Runs `bootstrap`, a built function binary. The function's name is the binary's name,
    /// or its folder's for a file called `bootstrap` (`target/lambda/NAME/bootstrap`).
    /// Defaults: 16 instances, Lambda's 900 s timeout and 10 s init limit, 128 MB.
    pub fn new(bootstrap: impl Into<PathBuf>) -> Self {
        let bootstrap = bootstrap.into();
        let function_name = default_name(&bootstrap);
        Self {
            bootstrap,
            function_name,
            instances: 16,
            timeout: Duration::from_secs(900),
            init_timeout: Duration::from_secs(10),
            memory_mb: 128,
            region: None,
            env: Vec::new(),
            log_file: None,
        }
    }

    /// `AWS_LAMBDA_FUNCTION_NAME` and the log prefix.
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.function_name = name.into();
        self
    }

    /// Processes at most (at least 1); give it the job's concurrency. More invocations at
    /// once than this wait for a free instance (their timeout starts at the hand-over).
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n.max(1);
        self
    }

    /// The function timeout: the deadline each invocation is given, and when it is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a new process may take to ask for its first invocation (Lambda: 10 s).
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (informational: no limit is enforced).
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// `AWS_REGION` and the region of the function ARN (default: the runner's `AWS_REGION`
    /// or `AWS_DEFAULT_REGION`, else `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets a variable in every instance's environment (over Lambda's and the runner's).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Appends the instances' output and the host's notes to this file instead of stderr.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// The binary run.
    pub fn bootstrap(&self) -> &Path {
        &self.bootstrap
    }

    fn region_or_default(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into())
    }
}

fn default_name(bootstrap: &Path) -> String {
    let stem = bootstrap
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "bootstrap" {
        if let Some(dir) = bootstrap.parent().and_then(Path::file_name) {
            return dir.to_string_lossy().into_owned();
        }
    }
    if stem.is_empty() {
        "function".into()
    } else {
        stem
    }
}

/// An invocation in progress, as [`RuntimeHost::in_flight`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InFlight {
    /// The instance's process id.
    pub pid: u32,
    /// The instance's number (1 for the first process started, and so on).
    pub instance: u64,
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event the instance is working on.
    pub payload: Vec<u8>,
}

/// Runs a function binary through the Lambda Runtime API, one process per concurrency
/// slot, replacing processes that die or time out; see the [module documentation](self).
///
/// Cloning gives another handle to the same processes; they are killed when the last
/// handle is dropped.
///
/// ```no_run
/// use s3batch_job::host::{HostConfig, RuntimeHost};
/// use s3batch_job::{LocalJob, Manifest};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let manifest = Manifest::from_csv(b"photos,a.jpg\nphotos,b.jpg\n").unwrap();
/// let host = RuntimeHost::start(
///     HostConfig::new("target/debug/copy_rename")
///         .instances(8)
///         .timeout(Duration::from_secs(30)),
/// )
/// .unwrap();
/// let report = LocalJob::new(manifest).concurrency(8).run(host).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct RuntimeHost {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RuntimeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHost")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: HostConfig,
    arn: String,
    slots: Semaphore,
    idle: Mutex<Vec<Instance>>,
    started: AtomicU64,
    init_failures: Mutex<u32>,
    busy: Mutex<HashMap<u64, InFlight>>,
    log: Arc<Log>,
}

impl RuntimeHost {
    /// A host for `config`. Fails when the binary is not a file or the log file cannot be
    /// opened; processes are started on the first invocations.
    pub fn start(config: HostConfig) -> std::io::Result<Self> {
        if !config.bootstrap.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file", config.bootstrap.display()),
            ));
        }
        let log = match &config.log_file {
            Some(path) => Log::File(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?,
            )),
            None => Log::Stderr,
        };
        let arn = format!(
            "arn:aws:lambda:{}:{ACCOUNT}:function:{}",
            config.region_or_default(),
            config.function_name
        );
        Ok(Self {
            shared: Arc::new(Shared {
                slots: Semaphore::new(config.instances),
                config,
                arn,
                idle: Mutex::new(Vec::new()),
                started: AtomicU64::new(0),
                init_failures: Mutex::new(0),
                busy: Mutex::new(HashMap::new()),
                log: Arc::new(log),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// Processes started so far (replacements and failed starts included).
    pub fn instances_started(&self) -> u64 {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// The invocations an instance is working on right now (handed over, not answered).
    pub fn in_flight(&self) -> Vec<InFlight> {
        let mut v: Vec<InFlight> = lock(&self.shared.busy).values().cloned().collect();
        v.sort_by_key(|f| f.instance);
        v
    }

    /// The process ids of the idle instances, waiting for an invocation.
    pub fn idle_pids(&self) -> Vec<u32> {
        lock(&self.shared.idle).iter().map(|i| i.pid).collect()
    }
}

impl Invoke for RuntimeHost {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let shared = &self.shared;
        let _slot = shared
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let payload = Bytes::from(payload);
        let request_id = uuid();
        // An instance that was idle may have died unnoticed between the check and the
        // hand-over; the event then never reached it, and goes to a fresh instance.
        for _ in 0..3 {
            let mut instance = match shared.take_instance().await {
                Ok(instance) => instance,
                Err(e) => {
                    shared.init_failed();
                    return Invoked::FunctionError(error_doc(
                        "Runtime.InvalidEntrypoint",
                        &format!(
                            "RequestId: {request_id} Error: cannot start {}: {e}",
                            shared.config.bootstrap.display()
                        ),
                    ));
                }
            };
            match instance.run(shared, &request_id, payload.clone()).await {
                Outcome::Keep(invoked) => {
                    lock(&shared.idle).push(instance);
                    return invoked;
                }
                Outcome::Replace(invoked) => {
                    instance.stop().await;
                    return invoked;
                }
                Outcome::NotDelivered => instance.stop().await,
            }
        }
        Invoked::FunctionError(error_doc(
            "Runtime.ExitError",
            &format!("RequestId: {request_id} Error: three instances in a row exited before taking the invocation"),
        ))
    }
}

impl Shared {
    /// An idle instance still alive, or a new one.
    async fn take_instance(&self) -> std::io::Result<Instance> {
        loop {
            let Some(mut instance) = lock(&self.idle).pop() else {
                break;
            };
            match instance.child.try_wait() {
                Ok(None) => return Ok(instance),
                Ok(Some(status)) => {
                    self.log.note(
                        &instance.label,
                        &format!("exited while idle ({}); replaced", describe(status)),
                    );
                    instance.stop().await;
                }
                Err(_) => instance.stop().await,
            }
        }
        let failures = *lock(&self.init_failures);
        if failures > 0 {
            let backoff = Duration::from_millis(100)
                .saturating_mul(1 << (failures - 1).min(10))
                .min(Duration::from_secs(5));
            tokio::time::sleep(backoff).await;
        }
        Instance::spawn(self).await
    }

    fn init_failed(&self) {
        *lock(&self.init_failures) += 1;
    }

    fn init_succeeded(&self) {
        *lock(&self.init_failures) = 0;
    }
}

/// What one invocation did to its instance.
enum Outcome {
    /// The runtime answered; the instance waits for the next invocation.
    Keep(Invoked),
    /// The instance died, timed out or failed to start: it is replaced.
    Replace(Invoked),
    /// The instance died before it took the event; the event may go to another.
    NotDelivered,
}

/// One function process and its Runtime API server.
struct Instance {
    number: u64,
    pid: u32,
    label: String,
    child: tokio::process::Child,
    spawned: Instant,
    api: Arc<Api>,
    events: mpsc::Sender<Pending>,
    notes: mpsc::UnboundedReceiver<Note>,
    server: tokio::task::JoinHandle<()>,
}

/// An event waiting for the instance's next `GET …/invocation/next`.
struct Pending {
    request_id: String,
    payload: Bytes,
}

/// What the Runtime API server tells the invocation.
enum Note {
    /// The first `GET …/next`: initialization is over.
    Ready,
    /// The event was handed over (at this instant).
    Delivered { request_id: String, at: Instant },
    /// `POST …/{id}/response`.
    Response { request_id: String, body: Bytes },
    /// `POST …/{id}/error`.
    Error { request_id: String, body: Bytes },
    /// A response over [`MAX_RESPONSE_BYTES`].
    TooLarge { request_id: String, size: usize },
    /// `POST …/init/error`.
    InitError { body: Bytes },
}

impl Instance {
    async fn spawn(shared: &Shared) -> std::io::Result<Instance> {
        let config = &shared.config;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let label = format!("{}#{number}", config.function_name);
        let region = config.region_or_default();
        let task_root = config
            .bootstrap
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut command = tokio::process::Command::new(&config.bootstrap);
        command
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function_name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/[$LATEST]{number:032x}"),
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", &region)
            .env("AWS_DEFAULT_REGION", &region)
            .env("LAMBDA_TASK_ROOT", &task_root)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        shared.log.note(&label, &format!("started (pid {pid})"));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            tokio::spawn(forward(pipe, Arc::clone(&shared.log), label.clone()));
        }
        let (events, pending) = mpsc::channel(1);
        let (notes_tx, notes) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            pending: tokio::sync::Mutex::new(pending),
            current: Mutex::new(None),
            initialized: AtomicBool::new(false),
            notes: notes_tx,
            timeout: config.timeout,
            arn: shared.arn.clone(),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&api)));
        Ok(Instance {
            number,
            pid,
            label,
            child,
            spawned: Instant::now(),
            api,
            events,
            notes,
            server,
        })
    }

    /// Hands `payload` to the process and waits for what comes of it.
    async fn run(&mut self, shared: &Shared, request_id: &str, payload: Bytes) -> Outcome {
        let config = &shared.config;
        let started = Instant::now();
        let was_ready = self.api.initialized.load(Ordering::SeqCst);
        // Only an instance whose last event was taken is reused, so there is room for this
        // one; if not, the event goes to a fresh instance.
        let handed = self.events.try_send(Pending {
            request_id: request_id.to_owned(),
            payload: payload.clone(),
        });
        if handed.is_err() {
            return Outcome::NotDelivered;
        }
        let mut delivered: Option<Instant> = None;
        let _busy = Busy::new(shared, self.number);
        loop {
            let ready = self.api.initialized.load(Ordering::SeqCst);
            let limit = match delivered {
                Some(at) => at + config.timeout,
                None if ready => started + config.timeout,
                None => self.spawned + config.init_timeout,
            };
            tokio::select! {
                biased;
                note = self.notes.recv() => match note {
                    Some(Note::Ready) => shared.init_succeeded(),
                    Some(Note::Delivered { request_id: id, at }) if id == request_id => {
                        delivered = Some(at);
                        lock(&shared.busy).insert(self.number, InFlight {
                            pid: self.pid,
                            instance: self.number,
                            request_id: id,
                            payload: payload.to_vec(),
                        });
                    }
                    Some(Note::Response { request_id: id, body }) if id == request_id => {
                        return Outcome::Keep(Invoked::Response(body.to_vec()));
                    }
                    Some(Note::Error { request_id: id, body }) if id == request_id => {
                        return Outcome::Keep(Invoked::FunctionError(body.to_vec()));
                    }
                    Some(Note::TooLarge { request_id: id, size }) if id == request_id => {
                        return Outcome::Keep(Invoked::FunctionError(error_doc(
                            "Function.ResponseSizeTooLarge",
                            &format!("Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
                        )));
                    }
                    Some(Note::InitError { body }) => {
                        shared.init_failed();
                        shared.log.note(&self.label, "reported an init error; replaced");
                        return Outcome::Replace(Invoked::FunctionError(body.to_vec()));
                    }
                    Some(_) => {}
                    None => unreachable!("the instance holds the server's sender"),
                },
                status = self.child.wait() => {
                    let status = match status {
                        Ok(s) => describe(s),
                        Err(e) => format!("wait failed: {e}"),
                    };
                    if delivered.is_none() && was_ready {
                        shared.log.note(&self.label, &format!("exited ({status}) before taking the next invocation; replaced"));
                        return Outcome::NotDelivered;
                    }
                    let during = if ready {
                        format!("during request {request_id}")
                    } else {
                        shared.init_failed();
                        "before asking for work (init failed)".to_owned()
                    };
                    shared.log.note(&self.label, &format!("exited ({status}) {during}; replaced"));
                    return Outcome::Replace(Invoked::FunctionError(error_doc(
                        "Runtime.ExitError",
                        &format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                    )));
                }
                _ = tokio::time::sleep_until(limit) => {
                    if delivered.is_none() && !ready {
                        shared.init_failed();
                        let secs = config.init_timeout.as_secs_f64();
                        shared.log.note(&self.label, &format!("did not ask for work within the init timeout ({secs:.2} s); killed"));
                        return Outcome::Replace(Invoked::FunctionError(error_doc(
                            "Runtime.InitTimeout",
                            &format!("RequestId: {request_id} Error: the runtime did not ask for an invocation within the init timeout ({secs:.2} seconds)"),
                        )));
                    }
                    let secs = config.timeout.as_secs_f64();
                    shared.log.note(&self.label, &format!("request {request_id} timed out after {secs:.2} s; killed"));
                    return Outcome::Replace(Invoked::FunctionError(
                        serde_json::to_vec(&serde_json::json!({
                            "errorMessage": format!("Task timed out after {secs:.2} seconds"),
                        }))
                        .expect("JSON serializes"),
                    ));
                }
            }
        }
    }

    /// Kills the process and waits for it.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Killed first, so it does not see its Runtime API go away and log an error.
        // `kill_on_drop` would only signal; reap too, so no zombie outlives the host.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.start_kill();
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.server.abort();
    }
}

/// Removes an invocation from [`RuntimeHost::in_flight`] when it ends, however it ends.
struct Busy<'a> {
    shared: &'a Shared,
    number: u64,
}

impl<'a> Busy<'a> {
    fn new(shared: &'a Shared, number: u64) -> Self {
        Self { shared, number }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.shared.busy).remove(&self.number);
    }
}

/// One instance's Runtime API.
struct Api {
    pending: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<String>>,
    initialized: AtomicBool,
    notes: mpsc::UnboundedSender<Note>,
    timeout: Duration,
    arn: String,
}

async fn serve(listener: TcpListener, api: Arc<Api>) {
    // The connections die with this task (the JoinSet aborts them when dropped).
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let api = Arc::clone(&api);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&api)));
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
    api: Arc<Api>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            error_doc("NotFound", &format!("no route {path}")),
        ));
    };
    if req.method() == Method::GET && route == "invocation/next" {
        return Ok(next(&api).await);
    }
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            error_doc("MethodNotAllowed", &format!("{} {path}", req.method())),
        ));
    }
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned();
    let body = req.into_body().collect().await?.to_bytes();
    if route == "init/error" {
        if api.initialized.load(Ordering::SeqCst) {
            return Ok(reply(
                StatusCode::FORBIDDEN,
                error_doc("InvalidStateTransition", "init/error after initialization"),
            ));
        }
        let body = if body.is_empty() {
            Bytes::from(error_doc(&error_type, "init error"))
        } else {
            body
        };
        let _ = api.notes.send(Note::InitError { body });
        return Ok(accepted());
    }
    let Some((id, what)) = route
        .strip_prefix("invocation/")
        .and_then(|r| r.split_once('/'))
    else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            error_doc("NotFound", &format!("no route {path}")),
        ));
    };
    if what != "response" && what != "error" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            error_doc("NotFound", &format!("no route {path}")),
        ));
    }
    {
        let mut current = lock(&api.current);
        if current.as_deref() != Some(id) {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                error_doc(
                    "InvalidRequestID",
                    &format!("{id} is not the invocation in progress"),
                ),
            ));
        }
        *current = None;
    }
    let request_id = id.to_owned();
    if what == "error" {
        let body = if body.is_empty() {
            Bytes::from(error_doc(&error_type, ""))
        } else {
            body
        };
        let _ = api.notes.send(Note::Error { request_id, body });
        return Ok(accepted());
    }
    if body.len() > MAX_RESPONSE_BYTES {
        let _ = api.notes.send(Note::TooLarge {
            request_id,
            size: body.len(),
        });
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_doc(
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            ),
        ));
    }
    let _ = api.notes.send(Note::Response { request_id, body });
    Ok(accepted())
}

/// `GET …/invocation/next`: waits for the next event (a long poll, as on Lambda).
async fn next(api: &Api) -> Response<Full<Bytes>> {
    if !api.initialized.swap(true, Ordering::SeqCst) {
        let _ = api.notes.send(Note::Ready);
    }
    let mut pending = api.pending.lock().await;
    let Some(event) = pending.recv().await else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_doc("ServiceException", "the host is shutting down"),
        );
    };
    let deadline = SystemTime::now() + api.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    *lock(&api.current) = Some(event.request_id.clone());
    let _ = api.notes.send(Note::Delivered {
        request_id: event.request_id.clone(),
        at: Instant::now(),
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &event.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &api.arn)
        .header("lambda-runtime-trace-id", trace_id())
        .body(Full::new(event.payload))
        .expect("a valid response")
}

fn accepted() -> Response<Full<Bytes>> {
    reply(StatusCode::ACCEPTED, br#"{"status":"OK"}"#.to_vec())
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// An exit status as Lambda words it (Go's `ExitError`): `exit status 1`, `signal: killed`.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                1 => "hangup".to_owned(),
                2 => "interrupt".to_owned(),
                4 => "illegal instruction".to_owned(),
                6 => "aborted".to_owned(),
                7 => "bus error".to_owned(),
                8 => "floating point exception".to_owned(),
                9 => "killed".to_owned(),
                11 => "segmentation fault".to_owned(),
                13 => "broken pipe".to_owned(),
                15 => "terminated".to_owned(),
                n => format!("signal {n}"),
            };
            let core = if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            };
            return format!("signal: {name}{core}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

/// Where instances' output and the host's notes go.
enum Log {
    Stderr,
    File(Mutex<std::fs::File>),
}

impl Log {
    fn write(&self, label: &str, line: &[u8]) {
        let mut buf = Vec::with_capacity(line.len() + label.len() + 4);
        buf.push(b'[');
        buf.extend_from_slice(label.as_bytes());
        buf.extend_from_slice(b"] ");
        buf.extend_from_slice(line);
        if !buf.ends_with(b"\n") {
            buf.push(b'\n');
        }
        let _ = match self {
            Log::Stderr => std::io::stderr().lock().write_all(&buf),
            Log::File(f) => lock(f).write_all(&buf),
        };
    }

    fn note(&self, label: &str, note: &str) {
        self.write(&format!("host {label}"), note.as_bytes());
    }
}

async fn forward(pipe: Box<dyn AsyncRead + Send + Unpin>, log: Arc<Log>, label: String) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => log.write(&label, &line),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Random bits for ids, from the operating system.
fn random_u64() -> u64 {
    getrandom::u64().expect("the operating system provides random numbers")
}

/// A random UUID (version 4), Lambda's request id format.
fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An X-Ray trace header, as Lambda sends one (not sampled).
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "Root=1-{secs:08x}-{:016x}{:08x};Parent={:016x};Sampled=0",
        random_u64(),
        random_u64() as u32,
        random_u64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses_read_like_lambda() {
        assert_eq!(default_name(Path::new("target/debug/chaos")), "chaos");
        assert_eq!(
            default_name(Path::new("target/lambda/copy_rename/bootstrap")),
            "copy_rename"
        );
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(describe(ExitStatus::from_raw(9)), "signal: killed");
            assert_eq!(
                describe(ExitStatus::from_raw(6 | 0x80)),
                "signal: aborted (core dumped)"
            );
            assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exit status 1");
        }
    }

    #[test]
    fn request_ids_are_random_v4_uuids() {
        let id = uuid();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(
            id,
            parsed.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
        assert_ne!(id, uuid());
    }

    #[test]
    fn trace_ids_read_like_x_rays() {
        let id = trace_id();
        let (root, rest) = id.split_once(";Parent=").unwrap();
        let (parent, sampled) = rest.split_once(';').unwrap();
        let root: Vec<&str> = root.strip_prefix("Root=").unwrap().split('-').collect();
        assert_eq!(root.len(), 3, "{id}");
        assert_eq!(
            (root[0], root[1].len(), root[2].len()),
            ("1", 8, 24),
            "{id}"
        );
        assert_eq!(parent.len(), 16, "{id}");
        assert_eq!(sampled, "Sampled=0");
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        assert!(hex(root[1]) && hex(root[2]) && hex(parent), "{id}");
        assert_ne!(id, trace_id());
    }
}
