//! An S3 client interceptor that gives a bodiless error response an error code.
//!
//! S3 answers `HeadObject` (and any HEAD request) without a body, so a throttled or failed
//! HEAD carries no error code: the SDK's deserializer gives it the code `NotFound` for a 404
//! and no code at all otherwise. The HTTP status is kept only by the `SdkError`; once `?`
//! converts it into `aws_sdk_s3::Error`, a 503 is indistinguishable from any other
//! failure. The same happens to a 5xx with an empty body from a proxy or load balancer.

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;

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

/// An interceptor for aws-sdk-s3 clients: an error response without a body (every HEAD
/// response, or a `Content-Length: 0` error) gets an S3 error document with the code of
/// its status ([`code_for_status`]) and the message `HTTP <status> with no error document`.
///
/// With it, the status survives as the error code wherever the error goes: `?` into
/// `aws_sdk_s3::Error`, a boxed error or `anyhow`, and a task that returns any of those is
/// classified like one that returns `TaskError` (a throttled `HeadObject` is a
/// `TemporaryFailure`). A 404 is left alone (the SDK already calls it `NotFound`), and so is
/// a response with a body. The SDK's own retries are unchanged: the status is not touched,
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
        let empty = context.response().body().content_length() == Some(0);
        if head || empty {
            let document = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>HTTP {status} with no error document</Message></Error>"
            );
            *context.response_mut().body_mut() = SdkBody::from(document);
        }
        Ok(())
    }
}
