//! The AWS SDK's errors (feature `s3`): `?` on an `SdkError` of any operation,
//! `aws_sdk_s3::Error` and `ByteStreamError`, and finding them in an error's `source()` chain.

use super::operations::with_operations;
use super::{chain, ErrorKind, Link, TaskError};
use aws_sdk_s3::operation;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::ErrorMetadata;
use std::error::Error as StdError;

/// Error codes meaning "try again", after the AWS SDK's retry classifier: its throttling and
/// transient codes (taken from aws-runtime, so they follow the SDK), `InternalError` (which
/// aws-sdk-s3 adds as transient to every S3 operation), and the codes that name a transient
/// HTTP status (`BadGateway`, `ServiceUnavailable`, `GatewayTimeout`: S3's own
/// `ServiceUnavailable`, and what [`FillErrorCodes`] gives a bodiless 502/503/504).
fn is_temporary_code(code: &str) -> bool {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    THROTTLING_ERRORS.contains(&code)
        || TRANSIENT_ERRORS.contains(&code)
        || S3_TRANSIENT_CODES.contains(&code)
        || TRANSIENT_STATUS
            .iter()
            .any(|s| super::code_for_status(*s) == Some(code))
}

/// aws-sdk-s3 classifies these as transient in every operation's generated retry setup;
/// the list is not public.
const S3_TRANSIENT_CODES: &[&str] = &["InternalError"];

/// aws-smithy-runtime's `HttpStatusCodeClassifier` list (not public).
const TRANSIENT_STATUS: &[u16] = &[500, 502, 503, 504];

/// The rule for service errors, after the AWS SDK's own retry classifier: a throttling or
/// transient error code, or an HTTP status of 500, 502, 503 or 504, is temporary; anything
/// else is permanent.
///
/// ```
/// use s3batch_core::{classify, ErrorKind};
/// assert_eq!(classify(Some("SlowDown"), Some(503)), ErrorKind::Temporary);
/// assert_eq!(classify(None, Some(502)), ErrorKind::Temporary);
/// assert_eq!(classify(Some("ServiceUnavailable"), None), ErrorKind::Temporary);
/// assert_eq!(classify(Some("NoSuchKey"), Some(404)), ErrorKind::Permanent);
/// ```
pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    let by_code = code.is_some_and(is_temporary_code);
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
        (None, None) if status.is_some() => "S3 error response without an error code".to_owned(),
        (None, None) => fallback.to_owned(),
    };
    if let Some(s) = status {
        out.push_str(&format!(" (HTTP {s})"));
    }
    out
}

/// A service error without its HTTP response (an operation's error, `aws_sdk_s3::Error`,
/// `ErrorMetadata`): classified by its code, or `None` when it has no code (nothing to go by).
pub(super) fn classified_service_error(
    e: &(impl ProvideErrorMetadata + ?Sized),
) -> Option<TaskError> {
    let code = e.code()?;
    Some(TaskError::new(
        classify(Some(code), None),
        service_message(Some(code), e.message(), None, code),
    ))
}

/// The classification of an `SdkError` of any operation (of any AWS service).
pub(super) fn from_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> TaskError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let e = ctx.err();
            let kind = classify(e.code(), Some(status));
            let msg = service_message(e.code(), e.message(), Some(status), &chain(e));
            TaskError::new(kind, msg)
        }
        SdkError::TimeoutError(_) => {
            TaskError::temporary(format!("S3 request timed out: {}", chain(err)))
        }
        SdkError::DispatchFailure(d) => match d.as_connector_error() {
            Some(c) => TaskError::new(
                connector_kind(c),
                format!("S3 request failed to send: {}", chain(err)),
            ),
            None => TaskError::temporary(format!("S3 request failed to send: {}", chain(err))),
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
                    chain(err)
                ),
            )
        }
        // Building the request failed: the same input will fail the same way.
        _ => TaskError::permanent(format!("S3 request could not be built: {}", chain(err))),
    }
}

/// What a link of a chain says, if it is an S3 operation's error.
pub(super) enum Found {
    /// The link decides the outcome.
    Classified(TaskError),
    /// An SDK wrapper that says nothing by itself (no code); look at its source.
    Transparent,
}

/// Makes, from the list of `with_operations!`, `find`: each operation's errors tried in turn.
macro_rules! find_operation_errors {
    ($($module:ident :: $error:ident),* $(,)?) => {
        /// `e` as an `SdkError` of an S3 operation, or as an operation's error.
        pub(super) fn find(e: &(dyn StdError + 'static)) -> Option<Found> {
            $(
                if let Some(sdk) = e.downcast_ref::<SdkError<operation::$module::$error, HttpResponse>>() {
                    return Some(Found::Classified(from_sdk_error(sdk)));
                }
                if let Some(op) = e.downcast_ref::<operation::$module::$error>() {
                    return Some(classified_service_error(op).map_or(Found::Transparent, Found::Classified));
                }
            )*
            None
        }

        /// The operation modules listed in `operations.rs`.
        #[cfg(test)]
        pub(super) const LISTED: &[&str] = &[$(stringify!($module)),*];
    };
}

with_operations!(find_operation_errors);

/// What one link of an error chain says, if it is an SDK error: an `SdkError` of any S3
/// operation, `aws_sdk_s3::Error` or an operation's error, `ErrorMetadata`, a
/// `ConnectorError` or a `ByteStreamError`.
pub(super) fn recognize(e: &(dyn StdError + 'static)) -> Option<Link> {
    if let Some(found) = find(e) {
        return Some(match found {
            Found::Classified(t) => Link::Classified(t),
            Found::Transparent => Link::Transparent,
        });
    }
    if let Some(s3) = e.downcast_ref::<aws_sdk_s3::Error>() {
        return Some(classified_service_error(s3).map_or(Link::Transparent, Link::Classified));
    }
    if let Some(meta) = e.downcast_ref::<ErrorMetadata>() {
        return Some(classified_service_error(meta).map_or(Link::Transparent, Link::Classified));
    }
    if let Some(c) = e.downcast_ref::<ConnectorError>() {
        return Some(Link::Classified(TaskError::new(
            connector_kind(c),
            format!("S3 request failed to send: {}", chain(c)),
        )));
    }
    if let Some(b) = e.downcast_ref::<aws_smithy_types::byte_stream::error::Error>() {
        return Some(Link::Classified(TaskError::temporary(format!(
            "reading the object body failed: {}",
            chain(b)
        ))));
    }
    None
}

impl<E> From<SdkError<E, HttpResponse>> for TaskError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        from_sdk_error(&err)
    }
}

impl From<aws_sdk_s3::Error> for TaskError {
    /// By its error code; an error without one (a timeout or a dispatch failure, which
    /// `aws_sdk_s3::Error` keeps as its source) by its source, as [`TaskError::from_chain`].
    fn from(err: aws_sdk_s3::Error) -> Self {
        TaskError::from_chain(&err)
    }
}

impl From<aws_smithy_types::byte_stream::error::Error> for TaskError {
    /// Temporary: reading a body failed mid-stream, a transport failure.
    fn from(err: aws_smithy_types::byte_stream::error::Error) -> Self {
        TaskError::temporary(format!("reading the object body failed: {}", chain(&err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::fmt;

    type BoxError = Box<dyn StdError + Send + Sync>;

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
        use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
        // The contract's list (§6), which the SDK's must still contain.
        for code in [
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
            "RequestTimeout",
            "RequestTimeoutException",
            "InternalError",
        ]
        .iter()
        .chain(THROTTLING_ERRORS)
        .chain(TRANSIENT_ERRORS)
        {
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
    fn boxed_errors_find_sdk_metadata_in_the_chain() {
        let boxed: Box<dyn StdError + Send + Sync> =
            Box::new(ErrorMetadata::builder().code("SlowDown").build());
        assert_eq!(TaskError::from(boxed).kind(), ErrorKind::Temporary);
        let boxed: Box<dyn StdError + Send + Sync> = "plain".into();
        assert_eq!(TaskError::from(boxed).kind(), ErrorKind::Permanent);
    }

    /// The operation list behind the chain walk covers every operation of the aws-sdk-s3
    /// in use: an operation missing from it would make its timeouts permanent once boxed.
    #[test]
    fn every_operation_is_listed() {
        let rustc = std::process::Command::new("rustc")
            .arg("-vV")
            .output()
            .unwrap();
        let host = String::from_utf8(rustc.stdout).unwrap();
        let host = host
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host")
            .to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Offline and for this platform only: every crate it needs is already here.
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", &host])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let manifest = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "aws-sdk-s3")
            .and_then(|p| p["manifest_path"].as_str())
            .expect("aws-sdk-s3 is a dependency");
        let dir = std::path::Path::new(manifest).with_file_name("src/operation");
        let mut in_sdk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        in_sdk.sort();
        let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert!(in_sdk.len() > 100, "{in_sdk:?}");
        assert_eq!(listed, in_sdk, "update src/error/operations.rs");
    }

    #[test]
    fn chains_are_walked_to_the_sdk_error() {
        #[derive(Debug)]
        struct Mine(Box<dyn StdError + Send + Sync>);
        impl fmt::Display for Mine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("copying a.txt")
            }
        }
        impl StdError for Mine {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(self.0.as_ref())
            }
        }
        let timeout = || -> SdkError<GetObjectError, HttpResponse> {
            SdkError::timeout_error("operation timeout occurred after 1s")
        };
        // A timeout is temporary however deep it sits.
        for (what, e) in [
            ("boxed", TaskError::from(Box::new(timeout()) as BoxError)),
            (
                "aws_sdk_s3::Error",
                TaskError::from(aws_sdk_s3::Error::from(timeout())),
            ),
            (
                "user error",
                TaskError::from(Box::new(Mine(Box::new(timeout()))) as BoxError),
            ),
            (
                "io::Error::other",
                TaskError::from(std::io::Error::other(timeout())),
            ),
        ] {
            assert_eq!(e.kind(), ErrorKind::Temporary, "{what}: {}", e.message());
            assert!(
                e.message().contains("S3 request timed out"),
                "{what}: {}",
                e.message()
            );
        }
        let e = TaskError::from(
            Box::new(Mine(Box::new(service_error(Some("SlowDown"), 503)))) as BoxError,
        );
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(
            e.message(),
            "copying a.txt: SlowDown: the message (HTTP 503)"
        );
        // A TaskError inside another error keeps its kind.
        let e = TaskError::from(Box::new(Mine(Box::new(TaskError::temporary("busy")))) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "copying a.txt: busy");
        // Nothing known: permanent, with the whole chain.
        let e = TaskError::from(Box::new(Mine("disk full".into())) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "copying a.txt: disk full");
    }

    /// Without [`FillErrorCodes`], a bodiless 503 keeps its status only in the `SdkError`:
    /// what `aws_sdk_s3::Error` cannot know.
    #[test]
    fn a_bodiless_503_without_the_interceptor() {
        let e = TaskError::from(service_error(None, 503));
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "the message (HTTP 503)");
        let e = TaskError::from(Box::new(service_error(None, 503)) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Temporary);
        let s3 = aws_sdk_s3::Error::from(service_error(None, 503));
        let e = TaskError::from(s3);
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "S3 error response without an error code");
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_chains_are_classified() {
        use anyhow::Context;
        let r: Result<(), _> = Err(service_error(Some("SlowDown"), 503));
        let e = TaskError::from(r.context("copying a.txt").unwrap_err());
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(
            e.message(),
            "copying a.txt: SlowDown: the message (HTTP 503)"
        );
        let e = TaskError::from(anyhow::anyhow!("no such thing"));
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "no such thing");
        let inner: anyhow::Error = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow").into();
        let e = TaskError::from(inner.context("reading").context("task"));
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "task: reading: slow");
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
