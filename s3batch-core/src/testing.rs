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

use crate::envelope::{Event, InvocationError};
use crate::key::encode_key;
use crate::response::Response;
use crate::runtime::{Handler, Options};
use crate::task::TaskFn;
use serde_json::{json, Map, Value};

/// Builds an S3 Batch Operations event of either schema. Keys given to [`object`](Self::object)
/// are encoded the way S3 encodes them; [`raw_task`](Self::raw_task) adds anything at all.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    schema: String,
    invocation_id: String,
    job_id: String,
    user_arguments: Option<Map<String, Value>>,
    tasks: Vec<Value>,
}

impl EventBuilder {
    /// Schema 1.0: tasks carry `s3BucketArn`.
    pub fn v1() -> Self {
        Self::schema("1.0")
    }

    /// Schema 2.0: tasks carry `s3Bucket`, the job may carry `userArguments`.
    pub fn v2() -> Self {
        Self::schema("2.0")
    }

    fn schema(version: &str) -> Self {
        Self {
            schema: version.into(),
            invocation_id: "test-invocation".into(),
            job_id: "test-job".into(),
            user_arguments: None,
            tasks: Vec::new(),
        }
    }

    /// Sets `invocationId`.
    pub fn invocation_id(mut self, id: &str) -> Self {
        self.invocation_id = id.into();
        self
    }

    /// Sets `job.id`.
    pub fn job_id(mut self, id: &str) -> Self {
        self.job_id = id.into();
        self
    }

    /// Adds one entry to `job.userArguments`.
    pub fn user_argument(mut self, name: &str, value: &str) -> Self {
        self.user_arguments
            .get_or_insert_with(Map::new)
            .insert(name.into(), Value::String(value.into()));
        self
    }

    /// Adds a task for `key` (decoded; it is encoded here), with task id `task-N`.
    pub fn object(self, bucket: &str, key: &str) -> Self {
        self.task(bucket, &encode_key(key), None)
    }

    /// Adds a task for a versioned object.
    pub fn object_version(self, bucket: &str, key: &str, version_id: &str) -> Self {
        self.task(bucket, &encode_key(key), Some(version_id))
    }

    /// Adds a task with `s3Key` exactly as given (already encoded, or deliberately wrong).
    pub fn encoded_object(self, bucket: &str, raw_key: &str) -> Self {
        self.task(bucket, raw_key, None)
    }

    fn task(mut self, bucket: &str, raw_key: &str, version_id: Option<&str>) -> Self {
        let task_id = format!("task-{}", self.tasks.len());
        let mut task = json!({"taskId": task_id, "s3Key": raw_key, "s3VersionId": version_id});
        if self.schema == "1.0" {
            task["s3BucketArn"] = Value::String(format!("arn:aws:s3:::{bucket}"));
        } else {
            task["s3Bucket"] = Value::String(bucket.into());
        }
        self.tasks.push(task);
        self
    }

    /// Adds any JSON value as a task.
    pub fn raw_task(mut self, task: Value) -> Self {
        self.tasks.push(task);
        self
    }

    /// The event as JSON.
    pub fn build(&self) -> Value {
        let mut job = json!({ "id": self.job_id });
        if let Some(args) = &self.user_arguments {
            job["userArguments"] = Value::Object(args.clone());
        }
        json!({
            "invocationSchemaVersion": self.schema,
            "invocationId": self.invocation_id,
            "job": job,
            "tasks": self.tasks,
        })
    }

    /// The event as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.build()).expect("a JSON value serializes")
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
    handler.handle(event, &context).await
}
