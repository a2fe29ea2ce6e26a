//! The event S3 Batch Operations sends to the function.

use super::Schema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The event of one invocation, as S3 sends it (the test harness and the job runner write
/// it; the handler reads it leniently with [`crate::envelope::Event`]).
///
/// `T` is the type of a task: [`RequestTask`], or `serde_json::Value` for an event that
/// also holds tasks S3 would never send.
///
/// ```
/// use s3batch_core::wire::{Request, RequestJob, RequestTask, Schema};
/// let event = Request {
///     schema: Schema::V2,
///     invocation_id: "inv".into(),
///     job: RequestJob::new("job"),
///     tasks: vec![RequestTask::new(Schema::V2, "t0", "bucket", "a b.txt", None)],
/// };
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"invocationSchemaVersion":"2.0","invocationId":"inv","job":{"id":"job"},"tasks":[{"taskId":"t0","s3Key":"a+b.txt","s3VersionId":null,"s3Bucket":"bucket"}]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<T = RequestTask> {
    /// `invocationSchemaVersion`.
    #[serde(rename = "invocationSchemaVersion")]
    pub schema: Schema,
    /// `invocationId`: opaque, echoed in the response.
    pub invocation_id: String,
    /// `job`.
    pub job: RequestJob,
    /// `tasks`: today S3 sends one per invocation.
    pub tasks: Vec<T>,
}

/// `job`: its id and (schema 2.0) the user arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RequestJob {
    /// `id`.
    pub id: String,
    /// `userArguments` (schema 2.0): left out when empty; absent or `null` reads as empty.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub user_arguments: BTreeMap<String, String>,
}

impl RequestJob {
    /// A job with no user arguments.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            user_arguments: BTreeMap::new(),
        }
    }

    /// With these user arguments.
    pub fn with_user_arguments(mut self, args: BTreeMap<String, String>) -> Self {
        self.user_arguments = args;
        self
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

/// One element of `tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RequestTask {
    /// `taskId`: opaque, echoed in the result.
    pub task_id: String,
    /// `s3Key`: the key URL-encoded form-style ([`crate::key::encode_key`]).
    pub s3_key: String,
    /// `s3VersionId`: `null` when the manifest names no version.
    pub s3_version_id: Option<String>,
    /// `s3BucketArn` (schema 1.0) or `s3Bucket` (2.0).
    #[serde(flatten)]
    pub bucket: TaskBucket,
}

impl RequestTask {
    /// The task for the object `key` (decoded; encoded here) in `bucket`, with the bucket
    /// field `schema` carries.
    pub fn new(
        schema: Schema,
        task_id: impl Into<String>,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Self {
        Self::encoded(
            schema,
            task_id,
            bucket,
            crate::key::encode_key(key),
            version_id,
        )
    }

    /// The task with `s3Key` exactly as given (already encoded, or deliberately wrong).
    pub fn encoded(
        schema: Schema,
        task_id: impl Into<String>,
        bucket: &str,
        raw_key: impl Into<String>,
        version_id: Option<&str>,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            s3_key: raw_key.into(),
            s3_version_id: version_id.map(str::to_owned),
            bucket: schema.task_bucket(bucket),
        }
    }
}

/// How a task names its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskBucket {
    /// `s3BucketArn` (schema 1.0), e.g. `arn:aws:s3:::my-bucket`; the bucket is the text
    /// after the last `:` ([`bucket_from_arn`]).
    #[serde(rename = "s3BucketArn")]
    Arn(String),
    /// `s3Bucket` (schema 2.0): the bucket name.
    #[serde(rename = "s3Bucket")]
    Name(String),
}

impl TaskBucket {
    /// The bucket name: [`Name`](Self::Name)'s, or the end of the [`Arn`](Self::Arn) (`None`
    /// when it does not end in a bucket name).
    pub fn name(&self) -> Option<&str> {
        match self {
            TaskBucket::Arn(arn) => bucket_from_arn(arn),
            TaskBucket::Name(name) => Some(name),
        }
    }
}

/// The bucket name in an S3 bucket ARN: the text after the last `:` (bucket names never
/// contain one). Works for regional ARNs and every partition.
///
/// ```
/// use s3batch_core::envelope::bucket_from_arn;
/// assert_eq!(bucket_from_arn("arn:aws:s3:::my-bucket"), Some("my-bucket"));
/// assert_eq!(bucket_from_arn("arn:aws:s3:us-east-1:0123456788:awsexamplebucket"), Some("awsexamplebucket"));
/// assert_eq!(bucket_from_arn("arn:aws:s3:::"), None);
/// ```
pub fn bucket_from_arn(arn: &str) -> Option<&str> {
    let name = arn.rsplit(':').next()?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}
