//! How a job reaches the function: through the Lambda Invoke API ([`LambdaInvoker`]) or
//! in-process ([`InProcess`]), behind one trait ([`Invoke`]).

use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use s3batch::{Handler, ResultCode, TaskFn};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What one invocation came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// The function returned this payload.
    Response(Vec<u8>),
    /// The function failed (unhandled error, crash, timeout); the payload is the error
    /// document, e.g. `{"errorType":"…","errorMessage":"…"}`.
    FunctionError(Vec<u8>),
    /// The Invoke API call itself failed (connection refused, throttled, service error,
    /// function not found, request too large): the function did not run, or may not have.
    /// [`api_error_code`] decides, from the HTTP status, whether the job redrives the tasks
    /// like a `TemporaryFailure` or fails them for good.
    ApiError {
        /// What went wrong.
        message: String,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
    },
}

/// Something that runs one invocation: a payload in, an [`Invoked`] out.
///
/// Implement it to run jobs through anything else (a recording fake in a test, say).
pub trait Invoke: Send + Sync + 'static {
    /// Sends one event.
    fn invoke(&self, payload: Vec<u8>) -> impl Future<Output = Invoked> + Send;

    /// Checks once, before the first task, that the function can be invoked at all. An
    /// error stops the job before it starts; it should say what to fix (an implementor of
    /// its own returns [`CheckError::other`]). The default accepts.
    fn check(&self) -> impl Future<Output = Result<(), CheckError>> + Send {
        async { Ok(()) }
    }
}

/// Why [`Invoke::check`] found that the function cannot be invoked: the job stops before
/// its first task.
///
/// ```
/// use s3batch_job::invoke::CheckError;
/// let err = CheckError::other("the function's bootstrap is missing");
/// assert_eq!(err.to_string(), "the function's bootstrap is missing");
/// assert!(matches!(err, CheckError::Other(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The function did not answer an empty batch within its timeout (under `cargo lambda
    /// watch`, what a function that fails to start looks like).
    #[error(
        "the function {function:?} did not answer an empty batch within {:.0} s (the \
         function timeout); it may have failed to start: `cargo lambda watch` then waits for \
         it forever, so see its output for the error",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The function, as the invoker names it.
        function: String,
        /// The function timeout waited.
        timeout: Duration,
    },
    /// The Lambda Invoke API did not answer at all (connection refused, say).
    #[error(
        "cannot reach the Lambda Invoke API: {message}. Is `cargo lambda watch` running, and \
         does --endpoint-url give its address?"
    )]
    Unreachable {
        /// What the SDK said.
        message: String,
    },
    /// The Invoke API refused the call with an error a repeat would get again (404: no such
    /// function; 403: access denied; …, see [`api_error_code`]).
    #[error("the function cannot be invoked: {message}")]
    NotInvocable {
        /// The function, as the invoker names it.
        function: String,
        /// The HTTP status.
        status: u16,
        /// What the Invoke API said.
        message: String,
    },
    /// The check of another [`Invoke`] implementation failed.
    #[error(transparent)]
    Other(s3batch::BoxError),
}

impl CheckError {
    /// The error of an [`Invoke::check`] of your own: its message is `error`'s.
    pub fn other(error: impl Into<s3batch::BoxError>) -> Self {
        Self::Other(error.into())
    }
}

/// How the job treats a failed Invoke API call ([`Invoked::ApiError`]) with this HTTP
/// status: whether the same call may succeed later (`TemporaryFailure`, redriven) or never
/// will (`PermanentFailure`).
///
/// - Temporary: no response at all (connection refused or reset: the endpoint may be
///   restarting), 408 (a timeout), 409 (`ResourceConflictException`: the function is being
///   created or updated), 429 (`TooManyRequestsException`: throttled) and every 5xx
///   (`ServiceException`, `EC2ThrottledException`, `ResourceNotReadyException`, ...).
/// - Permanent: every other 4xx, which a repeat gets again: 404 (`ResourceNotFoundException`,
///   or `cargo lambda watch`'s "Missing function"), 413 (`RequestTooLargeException`: the
///   payload is over 6 MB), 400 (`InvalidRequestContentException`), 403 (access denied), ...
pub fn api_error_code(status: Option<u16>) -> ResultCode {
    match status {
        Some(408 | 409 | 429) => ResultCode::TemporaryFailure,
        Some(400..=499) => ResultCode::PermanentFailure,
        _ => ResultCode::TemporaryFailure,
    }
}

/// Calls a function through the Lambda Invoke API (`POST
/// /2015-03-31/functions/{name}/invocations`), on AWS or on any endpoint that speaks it,
/// such as `cargo lambda watch`.
///
/// The SDK's own retries are off: a retried Invoke would run the function twice, and the job
/// redrives failed invocations itself.
///
/// An invocation still running after the client's operation timeout (see
/// [`LambdaInvoker::client`]) is recorded the way Lambda records a function timeout: a
/// function error `{"errorMessage":"Task timed out after N seconds"}`. `cargo lambda watch`
/// enforces no timeout of its own that works for this (its `--timeout` also cuts idle
/// runtime polls), so the runner does.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaInvoker {
    /// An invoker for `function` (a name, a name with `:qualifier`, or an ARN).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self {
            client,
            function: function.into(),
        }
    }

    /// A client from the usual AWS configuration (environment, profile), optionally with an
    /// endpoint such as `http://127.0.0.1:9000` (`cargo lambda watch`). On a loopback
    /// endpoint without configured credentials, placeholder credentials are used: the local
    /// emulator does not check them but the SDK signs every request. `timeout` is the
    /// function's timeout: a longer invocation is a function error.
    pub async fn client(endpoint: Option<&str>, timeout: Duration) -> aws_sdk_lambda::Client {
        let config = crate::aws::load(endpoint).await;
        let builder = aws_sdk_lambda::config::Builder::from(&config)
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            );
        aws_sdk_lambda::Client::from_conf(builder.build())
    }
}

/// The event [`LambdaInvoker::check`] sends: a batch of no tasks, which an S3 Batch function
/// answers with no results.
fn probe() -> Vec<u8> {
    use s3batch::wire::{Request, RequestJob, RequestTask, Schema};
    serde_json::to_vec(&Request::<RequestTask> {
        schema: Schema::V1,
        invocation_id: "s3batch-job-check".into(),
        job: RequestJob::new("s3batch-job-check"),
        tasks: Vec::new(),
    })
    .expect("JSON serializes")
}

impl LambdaInvoker {
    /// One Invoke call; `Err(timeout)` when it did not answer within the client's timeout.
    async fn call(
        &self,
        payload: Vec<u8>,
        invocation_type: InvocationType,
    ) -> Result<Invoked, Duration> {
        let size = payload.len();
        let endpoint = RecordEndpoint::default();
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(invocation_type)
            .payload(Blob::new(payload))
            .customize()
            .interceptor(endpoint.clone())
            .send()
            .await;
        let endpoint = endpoint.get();
        Ok(match sent {
            Ok(out) => {
                let body = out
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                if out.function_error().is_some() {
                    Invoked::FunctionError(body)
                } else {
                    Invoked::Response(body)
                }
            }
            Err(SdkError::ServiceError(ctx)) => {
                let raw = ctx.raw();
                let status = raw.status().as_u16();
                let body = raw.body().bytes().unwrap_or_default().to_vec();
                // `cargo lambda watch` answers a function error with HTTP 500 and the error
                // document, where Lambda answers 200 with `X-Amz-Function-Error`.
                if raw.headers().get("x-amzn-errortype").is_none() && is_error_document(&body) {
                    return Ok(Invoked::FunctionError(body));
                }
                let err = ctx.err();
                let detail = match (err.code(), err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    // `cargo lambda watch`'s 404 is `{"detail":…,"title":"Missing function"}`.
                    _ => format!(
                        "HTTP {status}: {}",
                        shorten(&String::from_utf8_lossy(&body))
                    ),
                };
                Invoked::ApiError {
                    message: self.describe(Some(status), err.code(), detail, size, &endpoint),
                    status: Some(status),
                }
            }
            Err(SdkError::TimeoutError(_)) => {
                return Err(self
                    .client
                    .config()
                    .timeout_config()
                    .and_then(|t| t.operation_timeout())
                    .unwrap_or_default());
            }
            Err(other) => {
                let status = other.raw_response().map(|r| r.status().as_u16());
                let detail = format!("{}", aws_sdk_lambda::error::DisplayErrorContext(&other));
                Invoked::ApiError {
                    message: self.describe(status, None, detail, size, &endpoint),
                    status,
                }
            }
        })
    }

    /// A failed call's message: what happened in words, the likely fix, then the details.
    fn describe(
        &self,
        status: Option<u16>,
        code: Option<&str>,
        detail: String,
        size: usize,
        endpoint: &str,
    ) -> String {
        let function = &self.function;
        if status == Some(404) || code == Some("ResourceNotFoundException") {
            return format!(
                "function {function:?} not found at {endpoint} ({detail}). Check the function \
                 name (under `cargo lambda watch` it is the binary's name) and the endpoint: \
                 for `cargo lambda watch`, pass its address with --endpoint-url (e.g. \
                 http://127.0.0.1:9000); without it, AWS_ENDPOINT_URL_LAMBDA or else \
                 AWS_ENDPOINT_URL (which may be meant for S3 only) decides where Lambda is{}",
                endpoint_variables()
            );
        }
        if status == Some(413) || code == Some("RequestTooLargeException") {
            return format!(
                "the request payload ({size} bytes) is too large: Lambda takes at most 6 MB \
                 (6,291,456 bytes) per synchronous invocation; send fewer tasks per invocation \
                 ({detail})"
            );
        }
        if status.is_none() {
            return format!("no answer from {endpoint}: {detail}");
        }
        detail
    }
}

/// The endpoint variables set in this environment, for a message.
fn endpoint_variables() -> String {
    let set: Vec<String> = ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|v| std::env::var(v).ok().map(|value| format!("{v}={value}")))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!(" (set here: {})", set.join(", "))
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Records the URL a request went to (scheme and authority), for messages.
#[derive(Debug, Clone, Default)]
struct RecordEndpoint(Arc<Mutex<Option<String>>>);

impl RecordEndpoint {
    fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the Lambda endpoint".into())
    }
}

impl Intercept for RecordEndpoint {
    fn name(&self) -> &'static str {
        "s3batch_job::RecordEndpoint"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let origin = origin(context.request().uri());
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(origin);
        Ok(())
    }
}

/// `scheme://host:port` of `scheme://host:port/2015-03-31/functions/…` (the port only when
/// it is not the scheme's default); a URI that does not parse as it is.
fn origin(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => uri.to_owned(),
        },
        Err(_) => uri.to_owned(),
    }
}

impl Invoke for LambdaInvoker {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        self.call(payload, InvocationType::RequestResponse)
            .await
            .unwrap_or_else(|timeout| {
                Invoked::FunctionError(
                    serde_json::to_vec(&serde_json::json!({
                        "errorMessage": format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                    }))
                    .expect("JSON serializes"),
                )
            })
    }

    /// Invokes the function with `InvocationType` `DryRun` and an event of no tasks: Lambda
    /// then checks that the function exists and may be invoked, without running it. (`cargo
    /// lambda watch` ignores `DryRun` and runs the function on the empty batch, which starts
    /// its instance.) A function that is not found (404, `ResourceNotFoundException`), any
    /// other error a repeat would get again (see [`api_error_code`]), or an endpoint that does
    /// not answer is an error saying what to fix; so is no answer within the function
    /// timeout (under `cargo lambda watch`, what a function that fails to start looks like).
    /// A throttled or failing service is only logged, and a function error means the
    /// function exists.
    async fn check(&self) -> Result<(), CheckError> {
        let invoked = self
            .call(probe(), InvocationType::DryRun)
            .await
            .map_err(|timeout| CheckError::Timeout {
                function: self.function.clone(),
                timeout,
            })?;
        match invoked {
            Invoked::Response(_) | Invoked::FunctionError(_) => Ok(()),
            Invoked::ApiError {
                message,
                status: None,
            } => Err(CheckError::Unreachable { message }),
            Invoked::ApiError {
                message,
                status: Some(status),
            } => {
                if api_error_code(Some(status)) == ResultCode::PermanentFailure {
                    Err(CheckError::NotInvocable {
                        function: self.function.clone(),
                        status,
                        message,
                    })
                } else {
                    tracing::warn!("checking the function: {message}; starting the job anyway");
                    Ok(())
                }
            }
        }
    }
}

fn is_error_document(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .is_ok_and(|m| m.contains_key("errorType") || m.contains_key("errorMessage"))
}

/// Runs invocations in this process through an [`s3batch::Handler`]: the same envelope,
/// decoding and safety net as the deployed function, without Lambda. Like the deployed
/// function it serves every shape [`s3batch::Handler::serve_bytes`] accepts: S3 Batch events
/// and Step Functions Distributed Map batches and items; a function error keeps its
/// `errorType` (`S3BatchInvalidEvent`, `S3Batch.TemporaryFailure`, ...).
pub struct InProcess<T: TaskFn<Args>, Args> {
    handler: Handler<T, Args>,
    timeout: Option<Duration>,
}

impl<T: TaskFn<Args>, Args> InProcess<T, Args> {
    /// Wraps a handler.
    pub fn new(handler: Handler<T, Args>) -> Self {
        Self {
            handler,
            timeout: None,
        }
    }

    /// Gives every invocation a Lambda deadline this far ahead, so the handler's deadline
    /// margin applies as it would on Lambda. Without it there is no deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<T: TaskFn<Args>, Args: 'static> Invoke for InProcess<T, Args> {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let mut context = s3batch::Context::default();
        if let Some(t) = self.timeout {
            let at = SystemTime::now() + t;
            context.deadline = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
        }
        // `serve_bytes` answers an S3 Batch event exactly as `handle_bytes` does (the same
        // response, the same `S3BatchInvalidEvent` error) and a Distributed Map batch or item
        // as the deployed function does.
        match self.handler.serve_bytes(&payload, &context).await {
            Ok(answer) => {
                Invoked::Response(serde_json::to_vec(&answer).expect("an answer serializes"))
            }
            Err(e) => Invoked::FunctionError(error_doc(e.error_type(), e.message())),
        }
    }
}

/// Lambda's error document, `{"errorMessage":…,"errorType":…}`, in that order whatever
/// serde_json's features (`preserve_order`, enabled by some SDK crates, would otherwise turn
/// a `json!` map's order into its written order).
pub(crate) fn error_doc(error_type: &str, message: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorDoc<'a> {
        error_message: &'a str,
        error_type: &'a str,
    }
    serde_json::to_vec(&ErrorDoc {
        error_message: message,
        error_type,
    })
    .expect("JSON serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_an_event_of_no_tasks() {
        assert_eq!(
            probe(),
            br#"{"invocationSchemaVersion":"1.0","invocationId":"s3batch-job-check","job":{"id":"s3batch-job-check"},"tasks":[]}"#
        );
    }

    #[test]
    fn the_recorded_endpoint_is_the_requests_origin() {
        assert_eq!(
            origin("http://127.0.0.1:9001/2015-03-31/functions/f/invocations"),
            "http://127.0.0.1:9001"
        );
        assert_eq!(
            origin("https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations?q=1"),
            "https://lambda.us-east-1.amazonaws.com"
        );
        assert_eq!(origin("http://[::1]:9000/x"), "http://[::1]:9000");
        // Credentials in an endpoint URL never reach a message.
        assert_eq!(origin("http://user:secret@host:1/x"), "http://host:1");
        assert_eq!(origin("not a url"), "not a url");
    }

    #[test]
    fn only_errors_a_repeat_may_escape_are_temporary() {
        use ResultCode::{PermanentFailure as P, TemporaryFailure as T};
        for (status, code) in [
            (None, T),
            (Some(408), T),
            (Some(409), T),
            (Some(429), T),
            (Some(500), T),
            (Some(502), T),
            (Some(503), T),
            (Some(400), P),
            (Some(403), P),
            (Some(404), P),
            (Some(413), P),
            (Some(415), P),
        ] {
            assert_eq!(api_error_code(status), code, "{status:?}");
        }
    }

    async fn key_len(obj: s3batch::Object) -> Result<usize, s3batch::TaskError> {
        if obj.key == "fail" {
            return Err(s3batch::TaskError::permanent("told to fail"));
        }
        Ok(obj.key.len())
    }

    /// S3 Batch events are answered byte for byte as `handle_bytes` answers them (the
    /// engine's vectors, and an event that cannot be answered keeps `S3BatchInvalidEvent`);
    /// Distributed Map items and batches are served as the deployed function serves them.
    #[tokio::test]
    async fn in_process_serves_s3_batch_as_before_and_distributed_map_items() {
        let handler = Handler::new(key_len, s3batch::Options::new())
            .await
            .unwrap();
        let before = |event: Vec<u8>| {
            let handler = &handler;
            async move {
                match handler.handle_bytes(&event, &Default::default()).await {
                    Ok(r) => Invoked::Response(serde_json::to_vec(&r).unwrap()),
                    Err(e) => Invoked::FunctionError(error_doc("S3BatchInvalidEvent", e.message())),
                }
            }
        };
        let vectors =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vectors");
        let mut events: Vec<Vec<u8>> = [
            "event-v1.json",
            "event-v2.json",
            "event-v1-regional-arn.json",
        ]
        .iter()
        .map(|name| std::fs::read(vectors.join(name)).unwrap())
        .collect();
        events.push(b"not json".to_vec());
        events.push(br#"{"invocationSchemaVersion":"1.0","tasks":[]}"#.to_vec());
        let expected = Handler::new(key_len, s3batch::Options::new())
            .await
            .unwrap();
        let in_process = InProcess::new(expected);
        for event in events {
            let was = before(event.clone()).await;
            assert_eq!(
                in_process.invoke(event.clone()).await,
                was,
                "{}",
                String::from_utf8_lossy(&event)
            );
        }

        let item = in_process
            .invoke(br#"{"Bucket":"b","Key":"a+b.txt"}"#.to_vec())
            .await;
        let Invoked::Response(body) = item else {
            panic!("{item:?}")
        };
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["results"],
            serde_json::json!([{"bucket": "b", "key": "a+b.txt", "versionId": null,
                "resultCode": "Succeeded", "resultString": "7"}])
        );

        // A batch with a failed item: the default policy fails the batch with a named
        // errorType, which the invoker keeps.
        let batch = in_process
            .invoke(
                br#"{"Items":[{"Key":"ok"},{"Key":"fail"}],"BatchInput":{"Bucket":"b"}}"#.to_vec(),
            )
            .await;
        let Invoked::FunctionError(doc) = batch else {
            panic!("{batch:?}")
        };
        let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(doc["errorType"], "S3Batch.PermanentFailure", "{doc}");

        let other = in_process.invoke(br#"{"hello":1}"#.to_vec()).await;
        let Invoked::FunctionError(doc) = other else {
            panic!("{other:?}")
        };
        let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(doc["errorType"], "S3Batch.UnrecognizedEvent", "{doc}");
    }

    #[test]
    fn messages_are_shortened_on_a_char_boundary() {
        let long = "é".repeat(600);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), 501);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }
}
