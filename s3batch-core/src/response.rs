//! The response S3 Batch Operations expects back, identical for schema 1.0 and 2.0.

use crate::error::{ErrorKind, TaskError};
use serde::{Deserialize, Serialize};

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

impl std::str::FromStr for ResultCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Succeeded" => Ok(ResultCode::Succeeded),
            "TemporaryFailure" => Ok(ResultCode::TemporaryFailure),
            "PermanentFailure" => Ok(ResultCode::PermanentFailure),
            other => Err(format!(
                "{other:?} is not a result code: expected Succeeded, TemporaryFailure or PermanentFailure"
            )),
        }
    }
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

/// Shortens `s` to at most `max` bytes on a char boundary, ending with a visible marker that
/// says how many bytes were cut. The marker counts towards `max` when `max` leaves room for it.
///
/// ```
/// use s3batch_core::response::truncate_result;
/// let mut s = "é".repeat(100);
/// truncate_result(&mut s, 40);
/// assert!(s.len() <= 40 && s.ends_with("bytes]"), "{s}");
/// ```
pub fn truncate_result(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let original = s.len();
    // The marker's digits depend on the cut; the original length is an upper bound on them.
    let marker_len = format!("…[truncated {original} bytes]").len();
    let mut keep = max.saturating_sub(marker_len);
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    s.truncate(keep);
    s.push_str(&format!("…[truncated {} bytes]", original - keep));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_the_wire_names_and_no_nulls() {
        let r = Response {
            invocation_schema_version: "2.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "inv".into(),
            results: vec![TaskResult::new("t", ResultCode::TemporaryFailure, "")],
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"invocationSchemaVersion":"2.0","treatMissingKeysAs":"PermanentFailure","invocationId":"inv","results":[{"taskId":"t","resultCode":"TemporaryFailure","resultString":""}]}"#
        );
        assert!(!json.contains("null"));
    }

    #[test]
    fn result_codes_parse_and_print() {
        for code in [
            ResultCode::Succeeded,
            ResultCode::TemporaryFailure,
            ResultCode::PermanentFailure,
        ] {
            assert_eq!(code.as_str().parse::<ResultCode>().unwrap(), code);
        }
        assert!("Failed"
            .parse::<ResultCode>()
            .unwrap_err()
            .contains("\"Failed\""));
    }

    #[test]
    fn truncation_respects_char_boundaries_and_limit() {
        for max in [0, 1, 5, 30, 31, 32, 33, 79] {
            let mut s = "😀".repeat(20);
            truncate_result(&mut s, max);
            assert!(s.contains("…[truncated"), "{max}: {s}");
            if max >= 30 {
                assert!(s.len() <= max, "{max}: {} {s}", s.len());
            }
        }
        let mut short = "fits".to_string();
        truncate_result(&mut short, 4);
        assert_eq!(short, "fits");
    }
}
