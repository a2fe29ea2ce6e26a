//! Serving on the Lambda Runtime API: [`run`], the generated [`main`], and the layer that
//! hands each event's raw bytes to the [`Handler`].

use super::handler::Handler;
use super::options::Options;
use crate::logging::{init_tracing, TARGET};
use crate::task::TaskFn;
use crate::BoxError;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

/// `AWS_LAMBDA_FUNCTION_TIMEOUT` in seconds, when set to a positive number.
fn timeout_from_env() -> Option<Duration> {
    parse_timeout(&std::env::var("AWS_LAMBDA_FUNCTION_TIMEOUT").ok()?)
}

/// A positive number of seconds that a `Duration` can hold; anything else is no timeout
/// (never a panic at start: `1e300` does not fit a `Duration`).
fn parse_timeout(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Serves the task on the Lambda Runtime API until the process is stopped: what the
/// generated `main` runs. Call it from your own `main` with `#[s3batch::task(main = false)]`.
///
/// ```no_run
/// use s3batch_core::{run, Object, Options, TaskError};
///
/// async fn noop(_: Object) -> Result<(), TaskError> {
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), s3batch_core::BoxError> {
///     s3batch_core::init_tracing();
///     run(noop, Options::builder().concurrency(4).build()).await
/// }
/// ```
pub async fn run<T: TaskFn<Args>, Args>(task: T, mut options: Options) -> Result<(), BoxError> {
    if options.fallback_timeout.is_none() {
        options.fallback_timeout = timeout_from_env();
    }
    if cfg!(panic = "abort") {
        tracing::warn!(
            target: TARGET,
            "built with panic = \"abort\" (cargo lambda's default for --release): a panicking task ends \
             the process and its invocation becomes a function error; add `[profile.release] \
             panic = \"unwind\"` to Cargo.toml so a panic is that task's PermanentFailure"
        );
    }
    // CloudWatch metrics, when a namespace is given: read once; a bad one stops the start.
    let metrics = crate::metrics::MetricsConfig::from_env(
        options.metrics_namespace(),
        options.metrics_service(),
        options.metrics_job_dimension(),
    )?
    .map(Arc::new);
    #[cfg(not(feature = "metrics"))]
    drop(metrics);
    let handler = Arc::new(Handler::new(task, options).await?);
    let bodies = Bodies::default();
    let taken = Arc::clone(&bodies);
    // The event reaches the handler as bytes (see `RawBody`); what lambda_runtime
    // deserializes is a stand-in `{}`.
    let service = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde::de::IgnoredAny>| {
            let handler = Arc::clone(&handler);
            let body = taken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&event.context.request_id)
                .unwrap_or_default();
            #[cfg(feature = "metrics")]
            let metrics = metrics.clone();
            // The answer goes to lambda_runtime, which serializes it: with the `map` feature
            // an `AnswerJson`, a Distributed Map output written by s3batch straight from the
            // results, what they echo copied from `body`, which serde_json copies as it is;
            // without it S3 Batch's `Response`, and neither `AnswerJson` nor `Answer` is in the
            // binary (see `Handler::serve_lambda`). Without `map` or `metrics`, this and the
            // missing metrics branch below cut 5.2 KB of the no-client bootstrap (2,405,360
            // bytes before; `cargo lambda build --release -p s3batch-bench-no-s3`).
            // Without the feature there is no metrics branch: as an `Option<Arc<MetricsConfig>>`
            // that is never `Some` it still kept a second copy of the handler's future and its
            // drop code in the binary.
            #[cfg(not(feature = "metrics"))]
            let serve = async move { handler.serve_lambda(&body, &event.context).await };
            #[cfg(feature = "metrics")]
            let serve = async move {
                let Some(metrics) = metrics else {
                    return handler.serve_lambda(&body, &event.context).await;
                };
                // One EMF document per invocation, written once its answer is built.
                // Pinned in place: `collect` holds a pointer to it rather than a copy (moving
                // the ~700-byte future into `Collect` measured ~290 instructions more per 1-task
                // invocation, in `memcpy`; bench/analysis.md, "Metrics on").
                let serve = std::pin::pin!(handler.serve_lambda(&body, &event.context));
                let (answer, collected) = metrics.collect(serve).await;
                metrics.write(collected, Some(&event.context.request_id));
                answer
            };
            serve
        },
    );
    // As `lambda_runtime::run`, with `RawBody` inside the tracing layer.
    lambda_runtime::Runtime::new(service)
        .layer(RawBodyLayer(bodies))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

/// The raw body of each invocation in flight, by request id.
type Bodies = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Takes each invocation's body before lambda_runtime deserializes it and hands it to the
/// handler through [`Bodies`], replacing it with `{}`. lambda_runtime would read the body with
/// serde_json, which fails the whole event (a function error) for one string that is not
/// valid Unicode; [`Handler::handle_bytes`] fails only the task holding it (see
/// [`Event::from_slice`](crate::Event::from_slice)). Raw bytes also spare lambda_runtime's
/// TRACE log, which fails the invocation when the body is not UTF-8.
struct RawBodyLayer(Bodies);

impl<S> lambda_runtime::tower::Layer<S> for RawBodyLayer {
    type Service = RawBody<S>;
    fn layer(&self, inner: S) -> RawBody<S> {
        RawBody {
            inner,
            bodies: Arc::clone(&self.0),
        }
    }
}

/// The service of [`RawBodyLayer`].
struct RawBody<S> {
    inner: S,
    bodies: Bodies,
}

impl<S> lambda_runtime::tower::Service<lambda_runtime::LambdaInvocation> for RawBody<S>
where
    S: lambda_runtime::tower::Service<
        lambda_runtime::LambdaInvocation,
        Response = (),
        Error = BoxError,
    >,
{
    type Response = ();
    type Error = BoxError;
    type Future = RemoveAfter<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: lambda_runtime::LambdaInvocation) -> Self::Future {
        let body = Vec::from(std::mem::replace(&mut req.body, (&b"{}"[..]).into()));
        tracing::trace!(
            target: TARGET,
            body = ?String::from_utf8_lossy(&body),
            "raw event received from Lambda"
        );
        let id = req.context.request_id.clone();
        self.bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), body);
        RemoveAfter {
            call: Box::pin(self.inner.call(req)),
            bodies: Arc::clone(&self.bodies),
            id,
        }
    }
}

/// The future of [`RawBody`]: the invocation, then its body removed from [`Bodies`] (normally
/// the handler took it already; not when the invocation failed before reaching it).
struct RemoveAfter<F> {
    call: Pin<Box<F>>,
    bodies: Bodies,
    id: String,
}

impl<F: Future> Future for RemoveAfter<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        self.call.as_mut().poll(cx)
    }
}

impl<F> Drop for RemoveAfter<F> {
    fn drop(&mut self) {
        self.bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The generated `main`: tracing, a Tokio runtime, and [`run`].
pub fn main<T: TaskFn<Args>, Args>(task: T, options: Options) -> Result<(), BoxError> {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(task, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_timeouts_that_no_duration_holds_are_no_timeout() {
        assert_eq!(parse_timeout(" 900 "), Some(Duration::from_secs(900)));
        assert_eq!(parse_timeout("0.5"), Some(Duration::from_millis(500)));
        for bad in ["1e300", "inf", "NaN", "0", "-3", "", "x"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }
}
