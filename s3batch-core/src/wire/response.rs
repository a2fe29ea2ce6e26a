//! The response the function sends back, and the same response as S3 reads it.

use crate::error::{ErrorKind, TaskError};
use serde::{Deserialize, Deserializer, Serialize};

/// The outcome of one task, as S3 reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultCode {
    /// The task is done; its result string goes into the completion report.
    Succeeded,
    /// S3 redrives the task before the job completes.
    TemporaryFailure,
    /// The task is marked failed.
    PermanentFailure,
}

impl ResultCode {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Succeeded => "Succeeded",
            ResultCode::TemporaryFailure => "TemporaryFailure",
            ResultCode::PermanentFailure => "PermanentFailure",
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of S3's three result codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a result code: expected Succeeded, TemporaryFailure or PermanentFailure")]
pub struct ParseResultCodeError {
    /// The string given.
    pub value: String,
}

impl std::str::FromStr for ResultCode {
    type Err = ParseResultCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Succeeded" => Ok(ResultCode::Succeeded),
            "TemporaryFailure" => Ok(ResultCode::TemporaryFailure),
            "PermanentFailure" => Ok(ResultCode::PermanentFailure),
            other => Err(ParseResultCodeError {
                value: other.to_owned(),
            }),
        }
    }
}

/// Why S3 could not read a function's response ([`ReceivedResponse::from_slice`]); S3 then
/// fails every task of the invocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// The object is not a response: a field is missing, of the wrong type, or not S3's.
    #[error("{0}")]
    Invalid(#[source] serde_json::Error),
}

impl From<ErrorKind> for ResultCode {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Temporary => ResultCode::TemporaryFailure,
            ErrorKind::Permanent => ResultCode::PermanentFailure,
        }
    }
}

/// One entry of `results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The `taskId` of the task, echoed.
    pub task_id: String,
    /// What happened.
    pub result_code: ResultCode,
    /// The text for the completion report (never `null`; may be empty).
    pub result_string: String,
}

impl TaskResult {
    /// A result for `task_id`.
    pub fn new(
        task_id: impl Into<String>,
        result_code: ResultCode,
        result_string: impl Into<String>,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            result_code,
            result_string: result_string.into(),
        }
    }

    /// The failure result for `err`.
    pub fn failed(task_id: impl Into<String>, err: &TaskError) -> Self {
        Self::new(task_id, err.kind().into(), err.message())
    }
}

/// The whole response to one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The request's `invocationSchemaVersion`, echoed.
    pub invocation_schema_version: String,
    /// What S3 should assume for a task the response leaves out (we never leave one out).
    pub treat_missing_keys_as: ResultCode,
    /// The request's `invocationId`, echoed.
    pub invocation_id: String,
    /// One result per task, in the order of the request's `tasks`.
    pub results: Vec<TaskResult>,
}

/// A response as S3 reads it (the job runner's reading): unknown fields are ignored and the
/// last of duplicate keys wins; what S3 could not parse is an error ("Invalid JSON returned
/// in Lambda payload"). `treatMissingKeysAs`, `invocationId`, `invocationSchemaVersion` and
/// `resultString` may be absent, but none may be `null`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReceivedResponse {
    /// `invocationSchemaVersion`, any string.
    #[serde(default, deserialize_with = "present")]
    pub invocation_schema_version: Option<String>,
    /// `treatMissingKeysAs`.
    #[serde(default, deserialize_with = "present")]
    pub treat_missing_keys_as: Option<ResultCode>,
    /// `invocationId`.
    #[serde(default, deserialize_with = "present")]
    pub invocation_id: Option<String>,
    /// `results`.
    pub results: Vec<ReceivedResult>,
}

/// One entry of a [`ReceivedResponse`]'s `results`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReceivedResult {
    /// `taskId`.
    pub task_id: String,
    /// `resultCode`.
    pub result_code: ResultCode,
    /// `resultString`; absent reads as empty.
    #[serde(default, deserialize_with = "present")]
    pub result_string: Option<String>,
}

/// An optional field that, when present, must hold a `T` (not `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl ReceivedResponse {
    /// Reads a response body, or says why S3 could not.
    ///
    /// ```
    /// use s3batch_core::wire::{ReceivedResponse, ResultCode};
    /// let r = ReceivedResponse::from_slice(br#"{"results":[{"taskId":"t","resultCode":"Succeeded"}]}"#).unwrap();
    /// assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    /// assert!(ReceivedResponse::from_slice(br#"{"results":[{"taskId":"t","resultCode":"Failed"}]}"#).is_err());
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<Self, ResponseError> {
        // Through a `Value`: duplicate keys then keep the last, as a JSON object map does.
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(ResponseError::NotJson)?;
        if !value.is_object() {
            return Err(ResponseError::NotObject);
        }
        Self::deserialize(value).map_err(ResponseError::Invalid)
    }
}
