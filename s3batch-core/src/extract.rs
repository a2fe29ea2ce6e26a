//! Extra parameters of a task function.
//!
//! Every parameter after the [`Object`] is an extractor: a type implementing
//! [`FromTask`]. Its [`State`](FromTask::State) is built once per cold start (before the
//! first event), and each task builds the parameter from that state and the invocation.
//! The built-in extractors are `aws_sdk_s3::Client` (feature `s3`, on by default), [`Job`],
//! [`UserArgs<T>`] and [`lambda_runtime::Context`]; implement the trait for your own
//! once-per-cold-start state.
//!
//! ```
//! use s3batch_core::{BoxError, FromTask, TaskError, TaskParts};
//!
//! /// Where to copy objects, read once from the environment.
//! struct Destination(std::sync::Arc<str>);
//!
//! impl FromTask for Destination {
//!     type State = std::sync::Arc<str>;
//!     async fn init() -> Result<Self::State, BoxError> {
//!         Ok(std::env::var("DEST_BUCKET").unwrap_or_else(|_| "fallback".into()).into())
//!     }
//!     fn from_task(state: &Self::State, _: &TaskParts<'_>) -> Result<Self, TaskError> {
//!         Ok(Destination(state.clone()))
//!     }
//! }
//! ```

use crate::envelope::{Job, Object};
use crate::error::TaskError;
use crate::BoxError;
use serde::de::{self, DeserializeOwned, IntoDeserializer};
use std::future::Future;

/// What an extractor can read for one task.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaskParts<'a> {
    /// The job and invocation.
    pub job: &'a Job,
    /// The Lambda context of the invocation.
    pub context: &'a lambda_runtime::Context,
    /// The object the task is about.
    pub object: &'a Object,
}

/// A task parameter built from once-per-cold-start state and the invocation.
///
/// An error from [`from_task`](FromTask::from_task) fails that task with the error's kind
/// and message, without calling the task function. An error from [`init`](FromTask::init)
/// stops the function before it serves any event (a Lambda init error).
#[cfg_attr(
    feature = "s3",
    diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a task parameter",
        label = "does not implement `s3batch::FromTask`",
        note = "task parameters after the `Object` must be extractors: `aws_sdk_s3::Client`, `Job`, `UserArgs<T>`, `lambda_runtime::Context`, or your own type implementing `FromTask`"
    )
)]
#[cfg_attr(
    not(feature = "s3"),
    diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a task parameter",
        label = "does not implement `s3batch::FromTask`",
        note = "task parameters after the `Object` must be extractors: `Job`, `UserArgs<T>`, `lambda_runtime::Context`, or your own type implementing `FromTask`; `aws_sdk_s3::Client` needs s3batch's feature `s3` (on by default)"
    )
)]
pub trait FromTask: Sized + Send + 'static {
    /// Built once per cold start and shared by every task.
    type State: Send + Sync + 'static;

    /// Builds the state.
    fn init() -> impl Future<Output = Result<Self::State, BoxError>> + Send;

    /// Builds the parameter for one task.
    fn from_task(state: &Self::State, parts: &TaskParts<'_>) -> Result<Self, TaskError>;
}

/// An S3 client built from the environment (`aws-config`): region, credentials,
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3` work as in any AWS SDK program. With a custom
/// endpoint (an S3-compatible server such as moto or MinIO), requests use path-style
/// addressing, which those servers need. The client carries
/// [`FillErrorCodes`](crate::error::FillErrorCodes), so a bodiless error response (a HEAD
/// request's) keeps its HTTP status as an error code wherever its error goes.
///
/// In tests, [`testing::with_client`](crate::testing::with_client) and
/// [`testing::invoke_with_client`](crate::testing::invoke_with_client) hand it a client of
/// your own (a mocked one, or one for a local S3 server) instead.
///
/// Needs the feature `s3` (on by default).
#[cfg(feature = "s3")]
impl FromTask for aws_sdk_s3::Client {
    type State = aws_sdk_s3::Client;

    async fn init() -> Result<Self::State, BoxError> {
        // A test harness's own client (see `testing::with_client`): read once per cold start.
        if let Ok(client) = TEST_CLIENT.try_with(Clone::clone) {
            return Ok(client);
        }
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        Ok(aws_sdk_s3::Client::from_conf(
            s3_config(&config, custom_endpoint).build(),
        ))
    }

    fn from_task(state: &Self::State, _: &TaskParts<'_>) -> Result<Self, TaskError> {
        Ok(state.clone())
    }
}

#[cfg(feature = "s3")]
tokio::task_local! {
    /// The client [`crate::testing::with_client`] hands the `Client` extractor instead of one
    /// built from the environment.
    pub(crate) static TEST_CLIENT: aws_sdk_s3::Client;
}

/// The `Client` extractor's S3 configuration on top of the loaded SDK configuration.
#[cfg(feature = "s3")]
fn s3_config(config: &aws_config::SdkConfig, custom_endpoint: bool) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .interceptor(crate::error::FillErrorCodes)
}

impl FromTask for Job {
    type State = ();
    async fn init() -> Result<(), BoxError> {
        Ok(())
    }
    fn from_task(_: &(), parts: &TaskParts<'_>) -> Result<Self, TaskError> {
        Ok(parts.job.clone())
    }
}

impl FromTask for lambda_runtime::Context {
    type State = ();
    async fn init() -> Result<(), BoxError> {
        Ok(())
    }
    fn from_task(_: &(), parts: &TaskParts<'_>) -> Result<Self, TaskError> {
        Ok(parts.context.clone())
    }
}

/// The job's `userArguments` (schema 2.0) as your own type.
///
/// Under a Step Functions Distributed Map (see [`crate::map`]) the arguments are a batch's
/// `BatchInput` less the keys s3batch reserves (`Bucket`, `bucket`, `KeyEncoding`), or, for a
/// child given one item, that item's fields other than the object's own (`Key`, `Bucket`,
/// `VersionId`, `Etag`, …); a mismatch names `BatchInput` (or `item`) instead of
/// `userArguments`.
///
/// Values arrive as strings; fields of type `bool`, integers, floats and `Option` are parsed
/// from them. A missing or unparsable argument fails every task permanently, with a message
/// naming the argument. Schema 1.0 events carry no user arguments: there a `T` that needs one
/// fails with a message saying user arguments need invocation schema 2.0 (a `T` whose fields
/// are all optional or defaulted still builds).
///
/// ```
/// use s3batch_core::{Object, TaskError, UserArgs};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Args {
///     dest_bucket: String,
///     max_copies: Option<u32>,
/// }
///
/// async fn copy(obj: Object, UserArgs(args): UserArgs<Args>) -> Result<String, TaskError> {
///     Ok(format!("{} -> {}", obj.key, args.dest_bucket))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserArgs<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromTask for UserArgs<T> {
    type State = ();
    async fn init() -> Result<(), BoxError> {
        Ok(())
    }
    fn from_task(_: &(), parts: &TaskParts<'_>) -> Result<Self, TaskError> {
        parse_user_arguments(parts.job).map(UserArgs)
    }
}

/// Builds `T` from the job's user arguments (what [`UserArgs`] does).
pub fn parse_user_arguments<T: DeserializeOwned>(job: &Job) -> Result<T, TaskError> {
    // A Distributed Map's arguments come from `BatchInput` (or the item's own fields).
    let from = job.arguments_from.unwrap_or("userArguments");
    if let Some(e) = &job.user_arguments_error {
        return Err(TaskError::permanent(format!("{from}: {e}")));
    }
    let map = job
        .user_arguments
        .iter()
        .map(|(k, v)| (k.as_str(), ArgValue { name: k, value: v }));
    T::deserialize(de::value::MapDeserializer::<_, de::value::Error>::new(map)).map_err(|e| {
        if job.arguments_from.is_none()
            && job.schema_version == "1.0"
            && job.user_arguments.is_empty()
        {
            // Schema 1.0 has no `userArguments` at all: the field the type missed cannot come.
            TaskError::permanent(format!(
                "userArguments: user arguments need invocation schema 2.0, and this job uses \
                 1.0 (create the job with `InvocationSchemaVersion` \"2.0\" and \
                 `UserArguments`); reading them gave: {e}"
            ))
        } else {
            TaskError::permanent(format!("{from}: {e}"))
        }
    })
}

/// One user-argument value: a string that can also be read as a number or a boolean.
struct ArgValue<'a> {
    name: &'a str,
    value: &'a str,
}

impl<'de, 'a> IntoDeserializer<'de, de::value::Error> for ArgValue<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.value.trim().parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(e) => Err(de::Error::custom(format_args!(
                        "argument `{}` = {:?} is not a valid {}: {e}",
                        self.name,
                        self.value,
                        stringify!($ty)
                    ))),
                }
            }
        )*
    };
}

impl<'de, 'a> de::Deserializer<'de> for ArgValue<'a> {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.value)
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self.value.into_deserializer())
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    parse_as! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn job(args: &[(&str, &str)]) -> Job {
        Job {
            user_arguments: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Job::default()
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Args {
        dest_bucket: String,
        copies: u32,
        dry_run: Option<bool>,
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        #[default]
        Copy,
        Move,
    }

    #[test]
    fn typed_arguments_parse_from_strings() {
        let a: Args = parse_user_arguments(&job(&[
            ("destBucket", "b"),
            ("copies", "2"),
            ("dryRun", "true"),
            ("mode", "move"),
        ]))
        .unwrap();
        assert_eq!(
            a,
            Args {
                dest_bucket: "b".into(),
                copies: 2,
                dry_run: Some(true),
                mode: Mode::Move
            }
        );
    }

    #[test]
    fn mismatches_name_the_argument() {
        for (args, expect) in [
            (vec![("copies", "2")], "missing field `destBucket`"),
            (
                vec![("destBucket", "b"), ("copies", "two")],
                "argument `copies` = \"two\" is not a valid u32",
            ),
            (
                vec![("destBucket", "b"), ("copies", "1"), ("extra", "x")],
                "unknown field `extra`",
            ),
        ] {
            let err = parse_user_arguments::<Args>(&job(&args)).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Permanent);
            assert!(
                err.message().starts_with("userArguments: ") && err.message().contains(expect),
                "{}",
                err.message()
            );
        }
    }

    /// The extractor's client gives a throttled `HeadObject` (a 503 without a body) an error
    /// code, so it stays temporary even after `?` into `aws_sdk_s3::Error`.
    #[cfg(feature = "s3")]
    #[tokio::test]
    async fn the_client_keeps_a_bodiless_503_temporary() {
        use aws_sdk_s3::config::http::HttpResponse;
        use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition};
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};
        let rule = mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_response(|| {
                HttpResponse::new(
                    503.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::empty(),
                )
            })
            .repeatedly()
            .build();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::new("a", "b", None, None, "test"),
            ))
            .build();
        let config = s3_config(&sdk, false)
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&rule),
            )
            .retry_partition(RetryPartition::new("extract-test"))
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build();
        let err = aws_sdk_s3::Client::from_conf(config)
            .head_object()
            .bucket("b")
            .key("k")
            .send()
            .await
            .unwrap_err();
        let e = TaskError::from(aws_sdk_s3::Error::from(err));
        assert_eq!(e.kind(), crate::ErrorKind::Temporary, "{}", e.message());
        assert_eq!(
            e.message(),
            "ServiceUnavailable: HTTP 503 with no error document"
        );
    }

    /// Schema 1.0 has no `userArguments`: the message says so rather than only naming the
    /// missing field; an all-optional type still builds, and 2.0 keeps the plain message.
    #[test]
    fn user_arguments_under_schema_1_0_say_they_need_2_0() {
        let v1 = Job {
            schema_version: "1.0".into(),
            ..Job::default()
        };
        let err = parse_user_arguments::<Args>(&v1).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Permanent);
        assert!(
            err.message().starts_with("userArguments: ")
                && err
                    .message()
                    .contains("user arguments need invocation schema 2.0, and this job uses 1.0")
                && err.message().contains("missing field `destBucket`"),
            "{}",
            err.message()
        );

        #[derive(Debug, Deserialize, PartialEq)]
        struct Optional {
            dry_run: Option<bool>,
        }
        assert_eq!(
            parse_user_arguments::<Optional>(&v1).unwrap(),
            Optional { dry_run: None }
        );

        let v2 = Job {
            schema_version: "2.0".into(),
            ..Job::default()
        };
        let err = parse_user_arguments::<Args>(&v2).unwrap_err();
        assert!(!err.message().contains("schema 2.0"), "{}", err.message());
    }

    /// Through the whole handler: a 1.0 event and a task taking `UserArgs`.
    #[tokio::test]
    async fn a_schema_1_0_task_with_user_args_fails_naming_the_schema() {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Dest {
            dest_bucket: String,
        }
        async fn task(_: Object, UserArgs(d): UserArgs<Dest>) -> Result<String, TaskError> {
            Ok(d.dest_bucket)
        }
        let event = crate::testing::EventBuilder::v1().object("b", "k");
        let response = crate::testing::invoke(task, event).await.unwrap();
        let r = &response.results[0];
        assert_eq!(r.result_code, crate::ResultCode::PermanentFailure);
        assert!(
            r.result_string
                .contains("user arguments need invocation schema 2.0"),
            "{}",
            r.result_string
        );
    }

    #[test]
    fn malformed_user_arguments_fail_extraction() {
        let mut j = job(&[]);
        j.user_arguments_error = Some("`job.userArguments` is an array, expected an object".into());
        let err =
            parse_user_arguments::<std::collections::HashMap<String, String>>(&j).unwrap_err();
        assert!(err.message().contains("`job.userArguments` is an array"));
    }
}
