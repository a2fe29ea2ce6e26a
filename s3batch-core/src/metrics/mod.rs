//! CloudWatch metrics in the embedded metric format (EMF): one document per invocation,
//! written to stdout (the function's log) in one write after the response is built.
//!
//! Off unless a namespace is given (custom metrics cost money, so, as with Powertools, you
//! opt in): in the attribute, `#[s3batch::task(metrics_namespace = "MyJobs")]` (or
//! [`OptionsBuilder::metrics_namespace`](crate::OptionsBuilder::metrics_namespace)), or in the
//! environment, `S3BATCH_METRICS_NAMESPACE` or Powertools' `POWERTOOLS_METRICS_NAMESPACE` (the
//! attribute wins, then the variables in that order). Off, each task and each response pays
//! one relaxed atomic load and a branch.
//!
//! Each invocation's document has, in its namespace:
//!
//! | metric | unit | value |
//! |---|---|---|
//! | `Tasks` | Count | the invocation's tasks |
//! | `TasksSucceeded`, `TasksTemporaryFailure`, `TasksPermanentFailure` | Count | tasks by result code |
//! | `TasksAtDeadline` | Count | tasks answered `TemporaryFailure` because the deadline came first |
//! | `TaskPanics` | Count | tasks that panicked |
//! | `ErrorsThrottling`, `ErrorsAccessDenied`, `ErrorsMissingKey`, `ErrorsOther` | Count | failed tasks (not panics) by the S3 error code in their message: `SlowDown`, `ServiceUnavailable`, … / `AccessDenied`, `Forbidden`, … / `NoSuchKey`, `NotFound`, `NoSuchVersion` / anything else |
//! | `TaskDuration` | Milliseconds | each task's run, every value of the invocation |
//! | `ColdStart` | Count | 1, in the first document of a process only |
//!
//! and the task's own metrics ([`Metrics`]). A count that is zero is left out of the document,
//! as Powertools does (`Tasks` alone is always there): alarms fill the gaps with `FILL(m, 0)`. Its dimensions are `FunctionName`
//! (`AWS_LAMBDA_FUNCTION_NAME`) and, when set, `Service` (the attribute's `metrics_service`
//! or `POWERTOOLS_SERVICE_NAME`). `JobId`, `InvocationId` and `RequestId` are plain members
//! of the document, for CloudWatch Logs Insights, not dimensions: each job would make new
//! metrics (`metrics_job_dimension = true` makes `JobId` one all the same). Object keys are
//! never written.
//!
//! EMF's limits are kept by splitting: past 100 metrics, or 100 values of one metric, the
//! invocation's metrics go on in further documents (each with the same dimensions and
//! properties), written in the same single write, one per line. A document over 1 MB (only
//! possible with ids of hundreds of kilobytes) is not written and the error is logged.
//!
//! See `docs/metrics.md` for an alarm on the permanent-failure rate and a Logs Insights query.
//!
//! ```
//! use s3batch_core::metrics::MetricsConfig;
//! use s3batch_core::{Handler, Options, Object, ResultCode, TaskError};
//!
//! async fn size(obj: Object) -> Result<usize, TaskError> {
//!     Ok(obj.key.len())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = MetricsConfig::new("MyJobs", Some("copy-fn"), None).unwrap();
//! let handler = Handler::new(size, Options::new()).await.unwrap();
//! let event = br#"{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},
//!   "tasks":[{"taskId":"t","s3Key":"a","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}]}"#;
//! let context = Default::default();
//! let (response, metrics) = config.collect(handler.handle_bytes(event, &context)).await;
//! assert_eq!(response.unwrap().results.len(), 1);
//! let documents = metrics.documents(&config, Some("req-1"), 1_700_000_000_000).unwrap();
//! let doc: serde_json::Value = serde_json::from_str(documents.lines().next().unwrap()).unwrap();
//! assert_eq!(doc["TasksSucceeded"], 1);
//! assert_eq!(doc["FunctionName"], "copy-fn");
//! assert_eq!(doc["JobId"], "j");
//! assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "MyJobs");
//! # });
//! ```

mod collect;
mod document;
mod user;

pub(crate) use collect::{answered, task_finished, task_started, RunEnd};
pub use document::{
    MAX_DIMENSIONS, MAX_DOCUMENT_BYTES, MAX_METRICS_PER_DOCUMENT, MAX_VALUES_PER_METRIC,
};
pub use user::{Metrics, Unit};

use collect::{Collected, Scope};
// The tests reach the slot through `super::*`.
#[cfg(test)]
use collect::CURRENT;
use document::Fixed;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// What went wrong with a metric or a document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A metric name that is empty or longer than 255 bytes.
    #[error("metric name {name:?} must be 1 to 255 bytes long")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// A metric name that s3batch's document uses itself.
    #[error(
        "metric name {name:?} is one of s3batch's own (its metrics, dimensions and properties)"
    )]
    ReservedName {
        /// The name.
        name: String,
    },
    /// A value that is NaN or infinite.
    #[error("metric {name:?}: value {value} is not a finite number")]
    NotFinite {
        /// The metric.
        name: String,
        /// The value.
        value: f64,
    },
    /// A metric given a second unit in one invocation.
    #[error("metric {name:?} was given unit {first:?} first and now {now:?}")]
    UnitMismatch {
        /// The metric.
        name: String,
        /// Its first unit.
        first: Unit,
        /// The unit given now.
        now: Unit,
    },
    /// A value added outside the invocation's own Tokio task (from a spawned task).
    #[error(
        "metric {name:?}: added outside the invocation's task (from a spawned task?); add \
         metrics from the task function itself"
    )]
    OutsideInvocation {
        /// The metric.
        name: String,
    },
    /// A namespace with characters CloudWatch does not allow, only spaces, or starting with
    /// `AWS/`.
    #[error(
        "metrics namespace {namespace:?}: CloudWatch allows A-Z a-z 0-9 . - _ / # : and space, \
         not only spaces, and no `AWS/` at the start"
    )]
    InvalidNamespace {
        /// The namespace.
        namespace: String,
    },
    /// A namespace that is empty or longer than 255 bytes, or a dimension value (function or
    /// service name) that is empty or longer than 1,024 bytes.
    #[error("metrics {what} {value:?} must be 1 to {max} bytes long")]
    InvalidConfig {
        /// What the value is (`namespace`, `service`, `function name`).
        what: &'static str,
        /// The value.
        value: String,
        /// Its longest length.
        max: usize,
    },
    /// A document over 1 MB, CloudWatch Logs' limit per event.
    #[error(
        "an EMF document would be {bytes} bytes, over CloudWatch Logs' limit of 1,048,576; \
         the invocation's metrics were not written"
    )]
    DocumentTooLarge {
        /// Its size.
        bytes: usize,
    },
}

/// Where and how an invocation's metrics go: the namespace and dimensions, read once per
/// process.
#[derive(Debug)]
pub struct MetricsConfig {
    fixed: Fixed,
    job_dimension: bool,
    /// What is kept between invocations (one lock for all of it).
    kept: Mutex<Kept>,
    /// Standard output as a file (a duplicate of its descriptor), when there is one.
    stdout: Option<std::fs::File>,
}

#[derive(Debug, Default)]
struct Kept {
    /// The output buffer.
    buffer: Vec<u8>,
    /// What the head `buffer` starts with was written for (see `document::write_reusing`).
    head: Option<document::Head>,
}

/// Whether no document has been written by this process yet.
static COLD: AtomicBool = AtomicBool::new(true);

/// The first non-empty value among the variables `get` reads.
fn first(get: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| get(n).filter(|v| !v.is_empty()))
}

fn check(what: &'static str, value: &str, max: usize) -> Result<(), MetricsError> {
    if value.is_empty() || value.len() > max {
        return Err(MetricsError::InvalidConfig {
            what,
            value: value.to_owned(),
            max,
        });
    }
    Ok(())
}

impl MetricsConfig {
    /// A configuration: the namespace, and the values of the `FunctionName` and `Service`
    /// dimensions (each left out when `None`).
    pub fn new(
        namespace: &str,
        function_name: Option<&str>,
        service: Option<&str>,
    ) -> Result<Self, MetricsError> {
        check("namespace", namespace, 255)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
        if namespace.trim().is_empty()
            || !namespace.chars().all(allowed)
            || namespace.starts_with("AWS/")
        {
            return Err(MetricsError::InvalidNamespace {
                namespace: namespace.to_owned(),
            });
        }
        let mut dimensions = Vec::new();
        if let Some(f) = function_name {
            check("function name", f, 1024)?;
            dimensions.push((document::FUNCTION_NAME, f));
        }
        if let Some(s) = service {
            check("service", s, 1024)?;
            dimensions.push((document::SERVICE, s));
        }
        debug_assert!(dimensions.len() < MAX_DIMENSIONS);
        Ok(Self {
            fixed: Fixed::new(namespace, &dimensions),
            job_dimension: false,
            kept: Mutex::default(),
            stdout: stdout_file(),
        })
    }

    /// Makes `JobId` a dimension too (each job then has metrics of its own).
    pub fn with_job_dimension(mut self, on: bool) -> Self {
        self.job_dimension = on;
        self
    }

    /// The configuration for `run`: the namespace from `namespace` or the environment
    /// (`S3BATCH_METRICS_NAMESPACE`, then `POWERTOOLS_METRICS_NAMESPACE`), the service from
    /// `service` or `POWERTOOLS_SERVICE_NAME`, the function name from
    /// `AWS_LAMBDA_FUNCTION_NAME`. `None` when there is no namespace: metrics are off.
    pub fn from_env(
        namespace: Option<&str>,
        service: Option<&str>,
        job_dimension: bool,
    ) -> Result<Option<Self>, MetricsError> {
        Self::from_lookup(namespace, service, job_dimension, |name| {
            std::env::var(name).ok()
        })
    }

    /// [`MetricsConfig::from_env`] with the variables read by `get`.
    fn from_lookup(
        namespace: Option<&str>,
        service: Option<&str>,
        job_dimension: bool,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, MetricsError> {
        let namespace = match namespace {
            Some(n) => n.to_owned(),
            None => match first(
                &get,
                &["S3BATCH_METRICS_NAMESPACE", "POWERTOOLS_METRICS_NAMESPACE"],
            ) {
                Some(n) => n,
                None => return Ok(None),
            },
        };
        let service = service
            .map(str::to_owned)
            .or_else(|| first(&get, &["POWERTOOLS_SERVICE_NAME"]));
        let function = first(&get, &["AWS_LAMBDA_FUNCTION_NAME"]);
        Ok(Some(
            Self::new(&namespace, function.as_deref(), service.as_deref())?
                .with_job_dimension(job_dimension),
        ))
    }

    /// Runs one invocation's future (a [`Handler`](crate::Handler)'s), collecting what it
    /// reports: its output, and the invocation's metrics. Each task run reports itself as it
    /// finishes, and the handler reports every task's result code with its response.
    ///
    /// A future of its own rather than an `async fn`: an `async fn` would keep room for `fut`
    /// twice (as its argument and inside the future that polls it), and every move of the
    /// invocation's future would copy both (+530 instructions per 1-task invocation).
    #[inline(always)]
    pub fn collect<F: Future>(&self, fut: F) -> Collect<F> {
        Collect {
            fut,
            collected: Some(self.take_spare()),
        }
    }

    /// The last invocation's emptied collection, or a new one.
    fn take_spare(&self) -> Box<Collected> {
        collect::ON.store(true, Ordering::Relaxed);
        collect::SPARE.take().unwrap_or_default()
    }

    /// Writes an invocation's documents to stdout in one write; an error (a document over
    /// 1 MB, stdout closed) is logged.
    pub fn write(&self, metrics: InvocationMetrics, request_id: Option<&str>) {
        let now = metrics.collected.timestamp_ms();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let Kept { buffer, head } = &mut *kept;
        match metrics.write_to(buffer, head, self, request_id, now) {
            Ok(()) => self.emit(buffer),
            Err(e) => log_error(&e),
        }
        // A buffer grown by one very large invocation is not kept.
        if buffer.capacity() > 64 * 1024 {
            *buffer = Vec::new();
            *head = None;
        }
        drop(kept);
        let mut collected = metrics.collected;
        if collected.durations.rest.capacity() <= 4096 && collected.user.capacity() <= 256 {
            collected.reset();
            collect::SPARE.set(Some(collected));
        }
    }

    /// Writes the documents to stdout, in one `write` when it can.
    ///
    /// Hot path: straight to the file descriptor rather than through `Stdout`'s line buffer.
    /// That saves its lock, its search for the last newline and its copies (171 instructions
    /// per invocation against ~25; bench/analysis.md, "Metrics on"), and a partial line
    /// another writer left in that buffer stays there rather than being glued to the front of
    /// the document. Up to `PIPE_BUF` (4,096 bytes, a document of s3batch's own metrics) one
    /// `write` to a pipe is never interleaved with another's; a larger one is written under
    /// `Stdout`'s lock, so that no other Rust writer writes in between.
    fn emit(&self, documents: &[u8]) {
        use std::io::Write;
        let Some(file) = &self.stdout else {
            return report(std::io::stdout().lock().write_all(documents));
        };
        let _lock = (documents.len() > 4096).then(|| std::io::stdout().lock());
        // One `write`, as a rule; `write_all` goes on after a short one.
        report(match (&mut &*file).write(documents) {
            Ok(n) if n == documents.len() => Ok(()),
            Ok(n) => (&mut &*file).write_all(&documents[n..]),
            Err(e) => Err(e),
        });

        fn report(written: std::io::Result<()>) {
            if let Err(e) = written {
                log_error(&format!("writing the EMF document to stdout failed: {e}"));
            }
        }
    }
}

/// Standard output as a file of its own (a duplicate of file descriptor 1), for
/// [`MetricsConfig::emit`]; `None` where there is none (closed, or not Unix).
fn stdout_file() -> Option<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        Some(std::fs::File::from(fd))
    }
    #[cfg(not(unix))]
    None
}

#[cold]
fn log_error(e: &dyn std::fmt::Display) {
    tracing::error!(target: crate::logging::TARGET, "metrics: {e}");
}

pin_project_lite::pin_project! {
    /// The future of [`MetricsConfig::collect`]: the invocation's output and its metrics.
    ///
    /// Each poll puts the collection in this thread's slot (see `collect.rs`) and takes it back
    /// after, so the hooks of the task runs polled inside find it, on whichever thread the
    /// poll runs, and a task spawned from the invocation does not.
    #[must_use = "futures do nothing unless polled"]
    pub struct Collect<F> {
        #[pin]
        fut: F,
        // `None` once the output is returned.
        collected: Option<Box<Collected>>,
    }
}

impl<F> std::fmt::Debug for Collect<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collect").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Collect<F> {
    type Output = (F::Output, InvocationMetrics);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let scope = Scope::enter(this.collected);
        let polled = this.fut.poll(cx);
        drop(scope);
        let output = std::task::ready!(polled);
        let collected = this.collected.take().unwrap_or_default();
        std::task::Poll::Ready((output, InvocationMetrics { collected }))
    }
}

/// What one invocation collected, until it is written.
#[derive(Debug)]
pub struct InvocationMetrics {
    collected: Box<Collected>,
}

impl InvocationMetrics {
    /// The documents, one per line, as [`MetricsConfig::write`] would write them (but without
    /// touching the process's cold start).
    pub fn documents(
        &self,
        config: &MetricsConfig,
        request_id: Option<&str>,
        timestamp_ms: u64,
    ) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        self.write_with(&mut out, config, request_id, timestamp_ms, false)?;
        Ok(String::from_utf8(out).expect("documents are UTF-8"))
    }

    /// Into the kept buffer: its head is reused when this invocation's is the same.
    fn write_to(
        &self,
        out: &mut Vec<u8>,
        head: &mut Option<document::Head>,
        config: &MetricsConfig,
        request_id: Option<&str>,
        timestamp_ms: u64,
    ) -> Result<(), MetricsError> {
        // A load first: the swap, a locked instruction, once per process.
        let cold = COLD.load(Ordering::Relaxed) && COLD.swap(false, Ordering::Relaxed);
        let ctx = self.context(config, request_id, timestamp_ms, cold);
        document::write_reusing(out, head, &ctx, &self.collected)
    }

    fn context<'a>(
        &self,
        config: &'a MetricsConfig,
        request_id: Option<&'a str>,
        timestamp_ms: u64,
        cold_start: bool,
    ) -> document::Context<'a> {
        document::Context {
            fixed: &config.fixed,
            job_dimension: config.job_dimension,
            request_id: request_id.filter(|r| !r.is_empty()),
            cold_start,
            timestamp_ms,
        }
    }

    fn write_with(
        &self,
        out: &mut Vec<u8>,
        config: &MetricsConfig,
        request_id: Option<&str>,
        timestamp_ms: u64,
        cold_start: bool,
    ) -> Result<(), MetricsError> {
        let ctx = self.context(config, request_id, timestamp_ms, cold_start);
        document::write(out, &ctx, &self.collected)
    }
}

#[cfg(test)]
mod tests;
