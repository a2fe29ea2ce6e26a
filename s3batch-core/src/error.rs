//! What a task returns when it fails, and how errors become result codes.
//!
//! A [`TaskError`] is either *temporary* (S3 redrives the task before the job completes) or
//! *permanent* (the task is marked failed). The split matters: S3 fails the whole job once
//! more than half of at least 1,000 tasks have failed, so a throttled request reported as
//! permanent can kill a job that would have finished.
//!
//! `?` converts these errors into a `TaskError` and classifies them:
//!
//! | error | kind |
//! |---|---|
//! | `SdkError` of any aws-sdk-s3 operation | by [`classify`]: throttling and transient codes, HTTP 500/502/503/504, timeouts and dispatch failures are temporary; the rest permanent |
//! | `aws_sdk_s3::Error` | by its error code |
//! | `ByteStreamError` (reading a body failed) | temporary |
//! | `std::io::Error` | temporary for timeouts, interruptions and dropped connections; otherwise permanent |
//! | `serde_json::Error`, `KeyError`, `Box<dyn Error + Send + Sync>` | permanent (a boxed SDK error is still classified) |
//!
//! Any other error: `result.permanent()?` or `result.temporary()?` ([`ResultExt`]), or
//! `impl From<YourError> for TaskError` in your crate.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::ErrorMetadata;
use std::error::Error as StdError;
use std::fmt;

/// Whether S3 should try a failed task again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Worth another try: reported as `TemporaryFailure`, which S3 redrives.
    Temporary,
    /// Will fail the same way again: reported as `PermanentFailure`.
    Permanent,
}

/// The error a task returns: a kind and the message that goes into the completion report.
///
/// ```
/// use s3batch_core::{ErrorKind, TaskError};
/// let e = TaskError::temporary("upstream busy");
/// assert_eq!(e.kind(), ErrorKind::Temporary);
/// assert_eq!(e.message(), "upstream busy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    kind: ErrorKind,
    message: String,
}

impl TaskError {
    /// A failure worth retrying (`TemporaryFailure`).
    pub fn temporary(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Temporary, message)
    }

    /// A failure that will not go away (`PermanentFailure`).
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    /// Whether S3 should redrive the task.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The text for the completion report.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Puts `context` in front of the message, keeping the kind.
    ///
    /// ```
    /// # use s3batch_core::TaskError;
    /// let e = TaskError::permanent("NoSuchKey").context("copying a.txt");
    /// assert_eq!(e.message(), "copying a.txt: NoSuchKey");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Temporary => "temporary",
            ErrorKind::Permanent => "permanent",
        };
        write!(f, "{kind} failure: {}", self.message)
    }
}

/// Marks the error of any `Result` as temporary or permanent, for errors `?` does not
/// convert on its own.
///
/// ```
/// use s3batch_core::{ResultExt, TaskError};
/// fn parse(s: &str) -> Result<u32, TaskError> {
///     Ok(s.parse::<u32>().permanent()?)
/// }
/// assert!(parse("x").unwrap_err().message().contains("invalid digit"));
/// ```
pub trait ResultExt<T> {
    /// On error, a [`TaskError::temporary`] with the error's message (and its sources).
    fn temporary(self) -> Result<T, TaskError>;
    /// On error, a [`TaskError::permanent`] with the error's message (and its sources).
    fn permanent(self) -> Result<T, TaskError>;
}

impl<T, E: StdError + 'static> ResultExt<T> for Result<T, E> {
    fn temporary(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::temporary(chain(&e)))
    }
    fn permanent(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::permanent(chain(&e)))
    }
}

/// The error's message followed by those of its sources, skipping repeats.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];
const TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException", "InternalError"];
const TRANSIENT_STATUS: &[u16] = &[500, 502, 503, 504];

/// The rule for service errors, after the AWS SDK's own retry classifier: a throttling or
/// transient error code, or an HTTP status of 500, 502, 503 or 504, is temporary; anything
/// else is permanent.
///
/// ```
/// use s3batch_core::{classify, ErrorKind};
/// assert_eq!(classify(Some("SlowDown"), Some(503)), ErrorKind::Temporary);
/// assert_eq!(classify(None, Some(502)), ErrorKind::Temporary);
/// assert_eq!(classify(Some("NoSuchKey"), Some(404)), ErrorKind::Permanent);
/// ```
pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    let by_code =
        code.is_some_and(|c| THROTTLING_CODES.contains(&c) || TRANSIENT_CODES.contains(&c));
    let by_status = status.is_some_and(|s| TRANSIENT_STATUS.contains(&s));
    if by_code || by_status {
        ErrorKind::Temporary
    } else {
        ErrorKind::Permanent
    }
}

fn connector_kind(e: &ConnectorError) -> ErrorKind {
    if e.is_user() {
        ErrorKind::Permanent
    } else {
        // Timeouts, I/O and other transport failures: the request may well work next time.
        ErrorKind::Temporary
    }
}

/// Describes a service error: `Code: message (HTTP status)`.
fn service_message(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    fallback: &str,
) -> String {
    let mut out = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => fallback.to_owned(),
    };
    if let Some(s) = status {
        out.push_str(&format!(" (HTTP {s})"));
    }
    out
}

impl<E> From<SdkError<E, HttpResponse>> for TaskError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        match &err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let e = ctx.err();
                let kind = classify(e.code(), Some(status));
                let msg = service_message(e.code(), e.message(), Some(status), &chain(e));
                TaskError::new(kind, msg)
            }
            SdkError::TimeoutError(_) => {
                TaskError::temporary(format!("S3 request timed out: {}", chain(&err)))
            }
            SdkError::DispatchFailure(d) => match d.as_connector_error() {
                Some(c) => TaskError::new(
                    connector_kind(c),
                    format!("S3 request failed to send: {}", chain(&err)),
                ),
                None => TaskError::temporary(format!("S3 request failed to send: {}", chain(&err))),
            },
            SdkError::ResponseError(ctx) => {
                let status = ctx.raw().status().as_u16();
                // The response arrived but could not be read: treat like a dropped connection
                // unless the status says the request itself was wrong.
                let kind = if (400..500).contains(&status) {
                    ErrorKind::Permanent
                } else {
                    ErrorKind::Temporary
                };
                TaskError::new(
                    kind,
                    format!(
                        "S3 response could not be read (HTTP {status}): {}",
                        chain(&err)
                    ),
                )
            }
            // Building the request failed: the same input will fail the same way.
            _ => TaskError::permanent(format!("S3 request could not be built: {}", chain(&err))),
        }
    }
}

impl From<aws_sdk_s3::Error> for TaskError {
    fn from(err: aws_sdk_s3::Error) -> Self {
        let kind = classify(err.code(), None);
        let msg = service_message(err.code(), err.message(), None, &chain(&err));
        TaskError::new(kind, msg)
    }
}

impl From<aws_smithy_types::byte_stream::error::Error> for TaskError {
    fn from(err: aws_smithy_types::byte_stream::error::Error) -> Self {
        TaskError::temporary(format!("reading the object body failed: {}", chain(&err)))
    }
}

impl From<std::io::Error> for TaskError {
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::TimedOut
            | K::Interrupted
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::BrokenPipe
            | K::UnexpectedEof => ErrorKind::Temporary,
            _ => ErrorKind::Permanent,
        };
        TaskError::new(kind, chain(&err))
    }
}

impl From<serde_json::Error> for TaskError {
    fn from(err: serde_json::Error) -> Self {
        TaskError::permanent(format!("JSON: {}", chain(&err)))
    }
}

impl From<crate::key::KeyError> for TaskError {
    fn from(err: crate::key::KeyError) -> Self {
        TaskError::permanent(err)
    }
}

impl From<Box<dyn StdError + Send + Sync>> for TaskError {
    /// A boxed error is permanent unless something in its chain is an SDK error we can read:
    /// error metadata with a temporary code, or a transport failure.
    fn from(err: Box<dyn StdError + Send + Sync>) -> Self {
        let mut kind = ErrorKind::Permanent;
        let mut next: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
        while let Some(e) = next {
            if let Some(meta) = e.downcast_ref::<ErrorMetadata>() {
                kind = classify(meta.code(), None);
                break;
            }
            if let Some(c) = e.downcast_ref::<ConnectorError>() {
                kind = connector_kind(c);
                break;
            }
            next = e.source();
        }
        TaskError::new(kind, chain(err.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: Option<&str>, status: u16) -> SdkError<GetObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("the message");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    #[test]
    fn every_throttling_and_transient_code_is_temporary() {
        for code in THROTTLING_CODES.iter().chain(TRANSIENT_CODES) {
            let e = TaskError::from(service_error(Some(code), 400));
            assert_eq!(e.kind(), ErrorKind::Temporary, "{code}");
            assert!(
                e.message().starts_with(code) && e.message().contains("the message"),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn server_statuses_are_temporary_without_a_code() {
        for status in [500, 502, 503, 504] {
            let e = TaskError::from(service_error(None, status));
            assert_eq!(e.kind(), ErrorKind::Temporary, "{status}");
            assert!(e.message().contains(&format!("HTTP {status}")));
        }
        assert_eq!(
            TaskError::from(service_error(None, 501)).kind(),
            ErrorKind::Permanent
        );
    }

    #[test]
    fn client_errors_are_permanent_with_code_and_status() {
        for (code, status) in [
            ("NoSuchKey", 404),
            ("AccessDenied", 403),
            ("NoSuchBucket", 404),
            ("InvalidObjectState", 403),
        ] {
            let e = TaskError::from(service_error(Some(code), status));
            assert_eq!(e.kind(), ErrorKind::Permanent);
            assert_eq!(e.message(), format!("{code}: the message (HTTP {status})"));
        }
    }

    #[test]
    fn modeled_no_such_key_is_permanent() {
        let err = GetObjectError::NoSuchKey(
            aws_sdk_s3::types::error::NoSuchKey::builder()
                .message("The specified key does not exist.")
                .meta(
                    ErrorMetadata::builder()
                        .code("NoSuchKey")
                        .message("The specified key does not exist.")
                        .build(),
                )
                .build(),
        );
        let raw = HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::empty());
        let e = TaskError::from(SdkError::service_error(err, raw));
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().contains("NoSuchKey"), "{}", e.message());
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_temporary() {
        let t: SdkError<GetObjectError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert_eq!(TaskError::from(t).kind(), ErrorKind::Temporary);
        for c in [
            ConnectorError::timeout("read timed out".into()),
            ConnectorError::io("connection reset".into()),
            ConnectorError::other("unknown".into(), None),
        ] {
            let d: SdkError<GetObjectError, HttpResponse> = SdkError::dispatch_failure(c);
            let e = TaskError::from(d);
            assert_eq!(e.kind(), ErrorKind::Temporary);
            assert!(e.message().contains("failed to send"), "{}", e.message());
        }
        let user: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::user("bad uri".into()));
        assert_eq!(TaskError::from(user).kind(), ErrorKind::Permanent);
    }

    #[test]
    fn construction_failure_is_permanent() {
        let c: SdkError<GetObjectError, HttpResponse> =
            SdkError::construction_failure("missing bucket");
        let e = TaskError::from(c);
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().contains("missing bucket"));
    }

    #[test]
    fn io_errors_by_kind() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            TaskError::from(Error::new(K::TimedOut, "t")).kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            TaskError::from(Error::new(K::ConnectionReset, "r")).kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            TaskError::from(Error::new(K::NotFound, "n")).kind(),
            ErrorKind::Permanent
        );
    }

    #[test]
    fn boxed_errors_find_sdk_metadata_in_the_chain() {
        let boxed: Box<dyn StdError + Send + Sync> =
            Box::new(ErrorMetadata::builder().code("SlowDown").build());
        assert_eq!(TaskError::from(boxed).kind(), ErrorKind::Temporary);
        let boxed: Box<dyn StdError + Send + Sync> = "plain".into();
        assert_eq!(TaskError::from(boxed).kind(), ErrorKind::Permanent);
    }

    #[test]
    fn question_mark_converts() {
        fn json() -> Result<(), TaskError> {
            let _: u32 = serde_json::from_str("nope")?;
            Ok(())
        }
        let e = json().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().starts_with("JSON: "));
    }

    #[test]
    fn result_ext_keeps_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let r: Result<(), _> = Err(Outer(std::io::Error::other("inner")));
        let e = r.temporary().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "outer: inner");
    }

    /// Real `SdkError`s from a real aws-sdk-s3 client: aws-smithy-mocks answers each request
    /// with raw HTTP, and the SDK's own deserializers and standard retries (3 attempts, with
    /// millisecond backoff here) turn it into the error a task sees.
    mod through_the_sdk {
        use super::super::*;
        use aws_sdk_s3::config::retry::RetryConfig;
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use std::time::Duration;

        fn client(rule: &Rule) -> aws_sdk_s3::Client {
            let config = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(rule),
                )
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(Duration::from_millis(1))
                        .with_max_backoff(Duration::from_millis(2)),
                )
                .build();
            aws_sdk_s3::Client::from_conf(config)
        }

        /// GetObject answered every time with an S3 error document; the task's error and the
        /// number of attempts the SDK made.
        async fn get_object(status: u16, code: &'static str) -> (TaskError, usize) {
            let rule = mock!(aws_sdk_s3::Client::get_object)
                .sequence()
                .http_response(move || {
                    HttpResponse::new(
                        StatusCode::try_from(status).unwrap(),
                        SdkBody::from(format!(
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>about {code}</Message><RequestId>r</RequestId></Error>"
                        )),
                    )
                })
                .repeatedly()
                .build();
            let err = client(&rule)
                .get_object()
                .bucket("b")
                .key("k")
                .send()
                .await
                .unwrap_err();
            (TaskError::from(err), rule.num_calls())
        }

        #[tokio::test]
        async fn retried_errors_are_temporary_after_the_sdks_retries() {
            for (status, code) in [
                (503, "SlowDown"),
                (500, "InternalError"),
                (400, "RequestTimeout"),
                (400, "Throttling"),
                (400, "ThrottlingException"),
                (429, "TooManyRequestsException"),
                (502, "BadGateway"),
                (504, "GatewayTimeout"),
            ] {
                let (e, calls) = get_object(status, code).await;
                assert_eq!(e.kind(), ErrorKind::Temporary, "{code}: {}", e.message());
                assert_eq!(
                    e.message(),
                    format!("{code}: about {code} (HTTP {status})"),
                    "{code}"
                );
                assert_eq!(calls, 3, "{code}: the SDK retries it");
            }
        }

        #[tokio::test]
        async fn client_errors_are_permanent_and_not_retried() {
            for (status, code) in [
                (404, "NoSuchKey"),
                (403, "AccessDenied"),
                (404, "NoSuchBucket"),
                (403, "InvalidObjectState"),
                (400, "InvalidArgument"),
                (501, "NotImplemented"),
            ] {
                let (e, calls) = get_object(status, code).await;
                assert_eq!(e.kind(), ErrorKind::Permanent, "{code}: {}", e.message());
                assert!(e.message().starts_with(code), "{}", e.message());
                assert_eq!(calls, 1, "{code}");
            }
        }

        #[tokio::test]
        async fn modeled_errors_from_the_mock_are_classified() {
            let rule = mock!(aws_sdk_s3::Client::head_object).then_error(|| {
                aws_sdk_s3::operation::head_object::HeadObjectError::NotFound(
                    aws_sdk_s3::types::error::NotFound::builder().build(),
                )
            });
            let err = client(&rule)
                .head_object()
                .bucket("b")
                .key("k")
                .send()
                .await
                .unwrap_err();
            assert!(matches!(err, SdkError::ServiceError(_)), "{err:?}");
            assert_eq!(TaskError::from(err).kind(), ErrorKind::Permanent);
        }

        #[tokio::test]
        async fn unreachable_endpoint_is_a_temporary_dispatch_failure() {
            // A port nothing listens on: a real connector error after the SDK's retries.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .endpoint_url(format!("http://127.0.0.1:{port}"))
                .force_path_style(true)
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(2)
                        .with_initial_backoff(Duration::from_millis(1)),
                )
                .build();
            let err = aws_sdk_s3::Client::from_conf(config)
                .get_object()
                .bucket("b")
                .key("k")
                .send()
                .await
                .unwrap_err();
            assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
            let e = TaskError::from(err);
            assert_eq!(e.kind(), ErrorKind::Temporary);
            assert!(
                e.message().starts_with("S3 request failed to send"),
                "{}",
                e.message()
            );
        }
    }
}
