//! An S3 client interceptor that gives an error response without an error code one.
//!
//! S3 answers `HeadObject` (and any HEAD request) without a body, so a throttled or failed
//! HEAD carries no error code: the SDK's deserializer gives it the code `NotFound` for a 404
//! and no code at all otherwise. The HTTP status is kept only by the `SdkError`; once `?`
//! converts it into `aws_sdk_s3::Error`, a 503 is indistinguishable from any other
//! failure. The same happens to a 5xx from a proxy or load balancer with an empty body or
//! an HTML page.

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// The error code [`FillErrorCodes`] gives an error response of this status that has no
/// body: the code S3 documents for the status where there is one (`InternalError`,
/// `ServiceUnavailable`, `NotImplemented`), the status's reason phrase otherwise.
pub fn code_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "BadRequest",
        403 => "Forbidden",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        412 => "PreconditionFailed",
        500 => "InternalError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => return None,
    })
}

/// An interceptor for aws-sdk-s3 clients: an error response without an S3 error code in its
/// body (every HEAD response, an empty body, or a body that is not an S3 error document,
/// such as a proxy's HTML page) gets an S3 error document with the code of its status
/// ([`code_for_status`]) and the message `HTTP <status> with no error document`.
///
/// With it, the status survives as the error code wherever the error goes: `?` into
/// `aws_sdk_s3::Error`, a boxed error or `anyhow`, and a task that returns any of those is
/// classified like one that returns `TaskError` (a throttled `HeadObject` is a
/// `TemporaryFailure`). A 404 is left alone (the SDK already calls it `NotFound`), and so is
/// a body with an error code (`<Code>` in an `<Error>` document). The SDK's own retries are unchanged: the status is not touched,
/// and the codes are ones its retry classifier either ignores or (`InternalError` for 500)
/// classifies as the status already does.
///
/// The `aws_sdk_s3::Client` extractor installs it; add it to a client you build yourself:
///
/// ```
/// let config = aws_sdk_s3::Config::builder()
///     .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
///     .interceptor(s3batch_core::error::FillErrorCodes)
///     .build();
/// let s3 = aws_sdk_s3::Client::from_conf(config);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FillErrorCodes;

impl Intercept for FillErrorCodes {
    fn name(&self) -> &'static str {
        "s3batch::FillErrorCodes"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        let Some(code) = code_for_status(status) else {
            return Ok(());
        };
        let head = context
            .inner()
            .request()
            .is_some_and(|r| r.method().eq_ignore_ascii_case("HEAD"));
        let body = context.response_mut().body_mut();
        if head || body.content_length() == Some(0) {
            *body = SdkBody::from(error_document(status, code));
        } else if let Some(bytes) = body.bytes() {
            if !has_error_code(bytes) {
                *body = SdkBody::from(error_document(status, code));
            }
        } else {
            // A streamed body (what a real connection gives): decided once it has been read.
            let inner = std::mem::replace(body, SdkBody::taken());
            *body = SdkBody::from_body_1_x(FillWhenRead {
                inner,
                read: Vec::new(),
                status,
                code,
                done: false,
            });
        }
        Ok(())
    }
}

fn error_document(status: u16, code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>HTTP {status} with no error document</Message></Error>"
    )
}

/// Whether an error body carries an S3 error code (`<Code>` in an `<Error>` document); an
/// empty body, an HTML page or plain text does not.
fn has_error_code(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("<Error") && text.contains("<Code>")
}

/// An error body read to its end, then passed on as it was if it carries an error code, or
/// replaced by [`error_document`] if it does not. Error bodies are small.
struct FillWhenRead {
    inner: SdkBody,
    read: Vec<u8>,
    status: u16,
    code: &'static str,
    done: bool,
}

impl Body for FillWhenRead {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.read.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.done = true;
                    let read = std::mem::take(&mut this.read);
                    let out = if has_error_code(&read) {
                        Bytes::from(read)
                    } else {
                        Bytes::from(error_document(this.status, this.code))
                    };
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
            }
        }
    }
}
