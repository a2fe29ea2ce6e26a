//! Build events and run a task through the whole envelope path in-process.
//!
//! ```
//! use s3batch_core::testing::{invoke, EventBuilder};
//! use s3batch_core::{Object, ResultCode, TaskError};
//!
//! async fn shout(obj: Object) -> Result<String, TaskError> {
//!     Ok(obj.key.to_uppercase())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let event = EventBuilder::v2().object("bucket", "a b+c.txt").user_argument("mode", "loud");
//! let response = invoke(shout, event).await.unwrap();
//! assert_eq!(response.results[0].result_code, ResultCode::Succeeded);
//! assert_eq!(response.results[0].result_string, "A B+C.TXT");
//! # });
//! ```
//!
//! A task that calls S3 gets its `Client` from the environment, as in Lambda, unless the test
//! hands one over (feature `s3`, on by default): [`invoke_with_client`] (or [`with_client`] around any of these functions)
//! gives the `Client` extractor that client, for instance an
//! [`aws-smithy-mocks`](https://docs.rs/aws-smithy-mocks) client built on [`client_config`],
//! or one pointed at a local S3 server.

use crate::envelope::{Event, InvocationError};
use crate::response::Response;
use crate::runtime::{Handler, Options};
use crate::task::TaskFn;
use crate::wire::{Request, RequestJob, RequestTask, Schema};
use serde_json::Value;

/// Builds an S3 Batch Operations event of either schema. Keys given to [`object`](Self::object)
/// are encoded the way S3 encodes them; [`raw_task`](Self::raw_task) adds anything at all.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    /// Tasks as JSON: [`raw_task`](Self::raw_task) adds anything.
    event: Request<Value>,
}

impl EventBuilder {
    /// Schema 1.0: tasks carry `s3BucketArn`.
    pub fn v1() -> Self {
        Self::new(Schema::V1)
    }

    /// Schema 2.0: tasks carry `s3Bucket`, the job may carry `userArguments`.
    pub fn v2() -> Self {
        Self::new(Schema::V2)
    }

    /// An event of `schema`: its tasks carry the bucket field that schema has.
    pub fn new(schema: Schema) -> Self {
        Self {
            event: Request {
                schema,
                invocation_id: "test-invocation".into(),
                job: RequestJob::new("test-job"),
                tasks: Vec::new(),
            },
        }
    }

    /// Sets `invocationId`.
    pub fn invocation_id(mut self, id: &str) -> Self {
        self.event.invocation_id = id.into();
        self
    }

    /// Sets `job.id`.
    pub fn job_id(mut self, id: &str) -> Self {
        self.event.job.id = id.into();
        self
    }

    /// Adds one entry to `job.userArguments`.
    pub fn user_argument(mut self, name: &str, value: &str) -> Self {
        self.event
            .job
            .user_arguments
            .insert(name.into(), value.into());
        self
    }

    /// Adds a task for `key` (decoded; it is encoded here), with task id `task-N`.
    pub fn object(self, bucket: &str, key: &str) -> Self {
        self.task(|schema, id| RequestTask::new(schema, id, bucket, key, None))
    }

    /// Adds a task for a versioned object.
    pub fn object_version(self, bucket: &str, key: &str, version_id: &str) -> Self {
        self.task(|schema, id| RequestTask::new(schema, id, bucket, key, Some(version_id)))
    }

    /// Adds a task with `s3Key` exactly as given (already encoded, or deliberately wrong).
    pub fn encoded_object(self, bucket: &str, raw_key: &str) -> Self {
        self.task(|schema, id| RequestTask::encoded(schema, id, bucket, raw_key, None))
    }

    /// Adds the task `make` builds from the schema and the next task id, `task-N`.
    fn task(mut self, make: impl FnOnce(Schema, String) -> RequestTask) -> Self {
        let task = make(
            self.event.schema,
            format!("task-{}", self.event.tasks.len()),
        );
        self.event
            .tasks
            .push(serde_json::to_value(task).expect("a task serializes"));
        self
    }

    /// Adds any JSON value as a task.
    pub fn raw_task(mut self, task: Value) -> Self {
        self.event.tasks.push(task);
        self
    }

    /// The event as JSON.
    pub fn build(&self) -> Value {
        serde_json::to_value(&self.event).expect("an event serializes")
    }

    /// The event as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.event).expect("an event serializes")
    }
}

impl From<EventBuilder> for Value {
    fn from(b: EventBuilder) -> Value {
        b.build()
    }
}

/// Runs `task` over `event` with default options and no deadline, building the extractors'
/// state first (as a cold start does).
pub async fn invoke<T: TaskFn<Args>, Args>(
    task: T,
    event: impl Into<Value>,
) -> Result<Response, InvocationError> {
    invoke_with(
        task,
        Options::new(),
        event,
        lambda_runtime::Context::default(),
    )
    .await
}

/// Runs `task` over `event` with the given options and Lambda context.
///
/// # Panics
/// If an extractor's state cannot be built: that is a test setup problem.
pub async fn invoke_with<T: TaskFn<Args>, Args>(
    task: T,
    options: Options,
    event: impl Into<Value>,
    context: lambda_runtime::Context,
) -> Result<Response, InvocationError> {
    let handler = Handler::new(task, options)
        .await
        .unwrap_or_else(|e| panic!("building the task's extractor state failed: {e}"));
    let event: Event = serde_json::from_value(event.into()).expect("an Event reads any JSON value");
    // Boxed: the handler's future nests the task's (and an SDK call's) futures deeply; a test
    // that awaits it inline could exceed the compiler's default recursion limit computing its
    // layout ("queries overflow the depth limit!").
    Box::pin(handler.handle(event, &context)).await
}

/// Runs `task` over `event` with default options, as [`invoke`] does, but the task's
/// `aws_sdk_s3::Client` parameter is `client` (with [`FillErrorCodes`](crate::error::FillErrorCodes)
/// added, as the extractor adds it) instead of a client built from the environment.
///
/// ```
/// use aws_sdk_s3::operation::head_object::HeadObjectOutput;
/// use aws_sdk_s3::Client;
/// use aws_smithy_mocks::{mock, MockResponseInterceptor};
/// use s3batch_core::testing::{client_config, invoke_with_client, EventBuilder};
/// use s3batch_core::{Object, ResultCode, TaskError};
///
/// async fn size(obj: Object, s3: Client) -> Result<String, TaskError> {
///     let head = s3.head_object().bucket(&obj.bucket).key(&obj.key).send().await?;
///     Ok(head.content_length().unwrap_or(0).to_string())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let head = mock!(Client::head_object)
///     .match_requests(|r| r.key() == Some("a b.txt"))
///     .then_output(|| HeadObjectOutput::builder().content_length(42).build());
/// let client = Client::from_conf(
///     client_config()
///         .http_client(aws_smithy_mocks::create_mock_http_client())
///         .interceptor(MockResponseInterceptor::new().with_rule(&head))
///         .build(),
/// );
/// let event = EventBuilder::v2().object("bucket", "a b.txt");
/// let response = invoke_with_client(size, event, client).await.unwrap();
/// assert_eq!(response.results[0].result_code, ResultCode::Succeeded);
/// assert_eq!(response.results[0].result_string, "42");
/// # });
/// ```
#[cfg(feature = "s3")]
pub async fn invoke_with_client<T: TaskFn<Args>, Args>(
    task: T,
    event: impl Into<Value>,
    client: aws_sdk_s3::Client,
) -> Result<Response, InvocationError> {
    with_client(client, invoke(task, event)).await
}

/// Runs `fut` with `client` as what the `Client` extractor builds its state from: any
/// [`invoke`], [`invoke_with`] or [`Handler::new`] inside it gives a task's
/// `aws_sdk_s3::Client` parameter this client (with
/// [`FillErrorCodes`](crate::error::FillErrorCodes) added) instead of one read from the
/// environment. Your own extractors whose `init` calls
/// `<aws_sdk_s3::Client as FromTask>::init()` get it too.
///
/// ```
/// # use s3batch_core::testing::{client_config, invoke_with, with_client, EventBuilder};
/// # use s3batch_core::{runtime::Options, Object, TaskError};
/// # async fn task(obj: Object, s3: aws_sdk_s3::Client) -> Result<String, TaskError> { Ok(String::new()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let client = aws_sdk_s3::Client::from_conf(client_config().endpoint_url("http://127.0.0.1:9").build());
/// let options = Options::builder().concurrency(1).build();
/// let event = EventBuilder::v1().object("bucket", "key");
/// let response = with_client(client, invoke_with(task, options, event, Default::default()))
///     .await
///     .unwrap();
/// # assert_eq!(response.results.len(), 1);
/// # });
/// ```
#[cfg(feature = "s3")]
pub async fn with_client<F: std::future::Future>(client: aws_sdk_s3::Client, fut: F) -> F::Output {
    let client = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(crate::error::FillErrorCodes)
            .build(),
    );
    crate::extract::TEST_CLIENT.scope(client, fut).await
}

/// An S3 client configuration that reads nothing from the environment: region `us-east-1`,
/// fixed test credentials, path-style addressing, the latest behavior version and
/// [`FillErrorCodes`](crate::error::FillErrorCodes). Add an HTTP client (an
/// `aws-smithy-mocks` one) or an `endpoint_url` (a local S3 server) and build it.
#[cfg(feature = "s3")]
pub fn client_config() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test-access-key",
            "test-secret-key",
            None,
            None,
            "s3batch-testing",
        ))
        .force_path_style(true)
        .interceptor(crate::error::FillErrorCodes)
}

#[cfg(all(test, feature = "s3"))]
mod tests {
    use super::*;
    use crate::{Object, ResultCode, TaskError};
    use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};

    async fn copy(obj: Object, s3: aws_sdk_s3::Client) -> Result<String, TaskError> {
        let out = s3
            .copy_object()
            .copy_source(format!("{}/{}", obj.bucket, obj.key))
            .bucket("dest")
            .key(&obj.key)
            .send()
            .await?;
        Ok(out.version_id().unwrap_or("none").to_string())
    }

    /// The harness's client reaches the task: success from a mocked output, and a bodiless
    /// 503 classified as the extractor's own client would (FillErrorCodes added to a client
    /// built without it).
    #[tokio::test]
    async fn the_task_gets_the_client_it_was_handed() {
        let ok = mock!(aws_sdk_s3::Client::copy_object)
            .match_requests(|r| r.key() == Some("good"))
            .then_output(|| CopyObjectOutput::builder().version_id("v7").build());
        let busy = mock!(aws_sdk_s3::Client::copy_object)
            .match_requests(|r| r.key() == Some("busy"))
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        // Without FillErrorCodes: the harness adds it.
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&ok)
                    .with_rule(&busy),
            )
            .build();
        let event = EventBuilder::v2()
            .object("src", "good")
            .object("src", "busy");
        let response = invoke_with_client(copy, event, aws_sdk_s3::Client::from_conf(config))
            .await
            .unwrap();
        assert_eq!(response.results[0].result_code, ResultCode::Succeeded);
        assert_eq!(response.results[0].result_string, "v7");
        assert_eq!(
            response.results[1].result_code,
            ResultCode::TemporaryFailure
        );
        assert!(
            response.results[1]
                .result_string
                .starts_with("ServiceUnavailable"),
            "{}",
            response.results[1].result_string
        );
        assert_eq!(ok.num_calls(), 1);
    }

    /// Outside `with_client` the extractor builds its client from the environment again.
    #[tokio::test]
    async fn the_client_is_only_handed_over_inside_the_scope() {
        let inside = with_client(
            aws_sdk_s3::Client::from_conf(
                client_config()
                    .region(aws_sdk_s3::config::Region::new("eu-north-1"))
                    .build(),
            ),
            <aws_sdk_s3::Client as crate::FromTask>::init(),
        )
        .await
        .unwrap();
        assert_eq!(
            inside.config().region().map(|r| r.as_ref()),
            Some("eu-north-1")
        );
        assert!(crate::extract::TEST_CLIENT.try_with(|_| ()).is_err());
    }
}
