//! How a job reaches the function: through the Lambda Invoke API ([`LambdaInvoker`]) or
//! in-process ([`InProcess`]), behind one trait ([`Invoke`]).

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use s3batch::{Handler, TaskFn};
use std::future::Future;
use std::time::{Duration, SystemTime};

/// What one invocation came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// The function returned this payload.
    Response(Vec<u8>),
    /// The function failed (unhandled error, crash, timeout); the payload is the error
    /// document, e.g. `{"errorType":"…","errorMessage":"…"}`.
    FunctionError(Vec<u8>),
    /// The Invoke API call itself failed (connection refused, throttled, service error):
    /// the function may not have run. The job redrives the tasks like a `TemporaryFailure`.
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

impl Invoke for LambdaInvoker {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await;
        match sent {
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
                    return Invoked::FunctionError(body);
                }
                Invoked::ApiError {
                    message: format!("{}", aws_sdk_lambda::error::DisplayErrorContext(ctx.err())),
                    status: Some(status),
                }
            }
            Err(SdkError::TimeoutError(_)) => {
                let timeout = self
                    .client
                    .config()
                    .timeout_config()
                    .and_then(|t| t.operation_timeout())
                    .unwrap_or_default();
                Invoked::FunctionError(
                    serde_json::to_vec(&serde_json::json!({
                        "errorMessage": format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                    }))
                    .expect("JSON serializes"),
                )
            }
            Err(other) => Invoked::ApiError {
                status: other.raw_response().map(|r| r.status().as_u16()),
                message: format!("{}", aws_sdk_lambda::error::DisplayErrorContext(&other)),
            },
        }
    }
}

fn is_error_document(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .is_ok_and(|m| m.contains_key("errorType") || m.contains_key("errorMessage"))
}

/// Runs invocations in this process through an [`s3batch::Handler`]: the same envelope,
/// decoding and safety net as the deployed function, without Lambda.
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
        match self.handler.handle_bytes(&payload, &context).await {
            Ok(response) => {
                Invoked::Response(serde_json::to_vec(&response).expect("a Response serializes"))
            }
            Err(e) => Invoked::FunctionError(
                serde_json::to_vec(&serde_json::json!({
                    "errorType": "S3BatchInvalidEvent",
                    "errorMessage": e.message(),
                }))
                .expect("JSON serializes"),
            ),
        }
    }
}
