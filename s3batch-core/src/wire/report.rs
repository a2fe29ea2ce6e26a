//! A row of a completion report (`Report_CSV_20180820`).

use super::ResultCode;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The columns of a results file, in the order `manifest.json`'s `ReportSchema` declares and
/// [`ReportRow::to_fields`] writes them.
pub const REPORT_COLUMNS: [&str; 7] = [
    "Bucket",
    "Key",
    "VersionId",
    "TaskStatus",
    "ErrorCode",
    "HTTPStatusCode",
    "ResultMessage",
];

/// How a task ended, as a report's `TaskStatus` and its results file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// `succeeded`: the function returned `Succeeded`.
    Succeeded,
    /// `failed`: anything else, after the last redrive.
    Failed,
}

impl TaskStatus {
    /// `succeeded` or `failed`, as in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a report's `TaskStatus`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {value:?} is not succeeded or failed")]
pub struct ParseTaskStatusError {
    /// The string given.
    pub value: String,
}

impl FromStr for TaskStatus {
    type Err = ParseTaskStatusError;
    fn from_str(s: &str) -> Result<Self, ParseTaskStatusError> {
        match s {
            "succeeded" => Ok(TaskStatus::Succeeded),
            "failed" => Ok(TaskStatus::Failed),
            other => Err(ParseTaskStatusError {
                value: other.to_owned(),
            }),
        }
    }
}

/// Why fields are not a report row ([`ReportRow::from_fields`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportRowError {
    /// Not 7 fields.
    #[error("{found} columns, expected 7")]
    Columns {
        /// How many there are.
        found: usize,
    },
    /// `TaskStatus` is not `succeeded` or `failed`.
    #[error("TaskStatus: {0}")]
    TaskStatus(#[source] ParseTaskStatusError),
    /// `ErrorCode` is not empty nor one of S3's result codes.
    #[error("ErrorCode {0}")]
    ErrorCode(#[source] super::ParseResultCodeError),
}

/// One row of a completion report's results file:
/// `Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage`.
///
/// ```
/// use s3batch_core::wire::{ReportRow, ResultCode, TaskStatus};
/// let row = ReportRow::from_fields(&["b", "a+b%2Bc", "", "failed", "200", "PermanentFailure", "gone"]).unwrap();
/// assert_eq!((row.key.as_str(), row.task_status), ("a b+c", TaskStatus::Failed));
/// assert_eq!((row.error_code, row.http_status), (Some(ResultCode::PermanentFailure), Some(200)));
/// assert_eq!(row.to_fields()[4], "PermanentFailure");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportRow {
    /// `Bucket`.
    pub bucket: String,
    /// `Key`, decoded (the file holds it URL-encoded as manifests do: a space as `+`, a `+`
    /// as `%2B`, so a row never breaks across lines).
    pub key: String,
    /// `VersionId`, `None` when empty.
    pub version_id: Option<String>,
    /// `TaskStatus`.
    pub task_status: TaskStatus,
    /// `ErrorCode`: `None` (empty) on success, the last result code otherwise.
    pub error_code: Option<ResultCode>,
    /// `HTTPStatusCode`: the Invoke API's status, `None` (empty) when the call got no
    /// response.
    pub http_status: Option<u16>,
    /// `ResultMessage`.
    pub message: String,
}

impl ReportRow {
    /// A row.
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        version_id: Option<String>,
        task_status: TaskStatus,
        error_code: Option<ResultCode>,
        http_status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            version_id,
            task_status,
            error_code,
            http_status,
            message: message.into(),
        }
    }

    /// The row's fields in [`REPORT_COLUMNS`] order, the key encoded.
    pub fn to_fields(&self) -> [Cow<'_, str>; 7] {
        [
            Cow::Borrowed(&self.bucket),
            Cow::Owned(crate::key::encode_key(&self.key)),
            Cow::Borrowed(self.version_id.as_deref().unwrap_or("")),
            Cow::Borrowed(self.task_status.as_str()),
            Cow::Borrowed(self.error_code.map_or("", ResultCode::as_str)),
            self.http_status
                .map_or(Cow::Borrowed(""), |s| Cow::Owned(s.to_string())),
            Cow::Borrowed(&self.message),
        ]
    }

    /// Reads the 7 fields of a row, in [`REPORT_COLUMNS`] order or in the order of AWS's
    /// example rows (the HTTP status before the error code). A key that does not decode is
    /// kept as it is; a status or result code that is not S3's is an error naming it.
    pub fn from_fields<S: AsRef<str>>(fields: &[S]) -> Result<Self, ReportRowError> {
        let [bucket, key, version, status, code, http, message] = fields else {
            return Err(ReportRowError::Columns {
                found: fields.len(),
            });
        };
        let (bucket, key, version, status, message) = (
            bucket.as_ref(),
            key.as_ref(),
            version.as_ref(),
            status.as_ref(),
            message.as_ref(),
        );
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (code, http) = if numeric(http.as_ref()) || !numeric(code.as_ref()) {
            (code.as_ref(), http.as_ref())
        } else {
            (http.as_ref(), code.as_ref())
        };
        let error_code = match code {
            "" => None,
            code => Some(
                code.parse::<ResultCode>()
                    .map_err(ReportRowError::ErrorCode)?,
            ),
        };
        Ok(Self {
            bucket: bucket.to_owned(),
            key: crate::key::decode_key(key).unwrap_or_else(|_| key.to_owned()),
            version_id: Some(version.to_owned()).filter(|v| !v.is_empty()),
            task_status: status.parse().map_err(ReportRowError::TaskStatus)?,
            error_code,
            http_status: http.parse().ok(),
            message: message.to_owned(),
        })
    }
}

impl serde::Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A completion report's `manifest.json`: where its results files are. Written with
/// [`ReportManifest::to_json`] and read with [`ReportManifest::from_slice`], which accepts
/// S3's own (a bucket given as an ARN) and refuses any other `Format`.
///
/// ```
/// use s3batch_core::wire::{ReportManifest, ResultsFile, TaskStatus};
/// let manifest = ReportManifest::new(
///     "2019-04-05T17:48:39.725Z",
///     vec![ResultsFile {
///         task_execution_status: TaskStatus::Failed,
///         bucket: "arn:aws:s3:::my-job-reports".into(),
///         md5_checksum: "83b1c4cbe93fc893f54053697e10fd6e".into(),
///         key: "job-1/results/6217b0fab0de85c408b4be96aeaca9b195a7daa5.csv".into(),
///     }],
/// );
/// let read = ReportManifest::from_slice(&manifest.to_json()).unwrap();
/// assert_eq!(read, manifest);
/// assert_eq!(read.results[0].bucket_name(), "my-job-reports");
/// assert!(ReportManifest::from_slice(br#"{"Format":"CSV","Results":[]}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ReportManifest {
    /// `Report_CSV_20180820`.
    pub format: String,
    /// When the report was written (RFC 3339 with milliseconds).
    #[serde(default)]
    pub report_creation_date: String,
    /// The results files, one per task status.
    pub results: Vec<ResultsFile>,
    /// The results files' columns, `Bucket, Key, VersionId, …`.
    #[serde(default)]
    pub report_schema: String,
}

/// One results file a [`ReportManifest`] lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultsFile {
    /// The status of every row in the file.
    pub task_execution_status: TaskStatus,
    /// The bucket, as a name or as S3 writes it (`arn:aws:s3:::name`); empty for a report on
    /// this machine.
    #[serde(default)]
    pub bucket: String,
    /// The file's MD5, in hex.
    #[serde(rename = "MD5Checksum", default)]
    pub md5_checksum: String,
    /// The file's key (a path below the report's root, for a report on this machine).
    pub key: String,
}

impl ResultsFile {
    /// The bucket's name, from a name or an ARN.
    pub fn bucket_name(&self) -> &str {
        self.bucket.rsplit(":::").next().unwrap_or(&self.bucket)
    }
}

/// A `manifest.json` that is not a completion report's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportManifestError {
    /// Not JSON, or a field missing or of the wrong type.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// `Format` is missing or not [`ReportManifest::FORMAT`].
    #[error(
        "Format is {}, not {}",
        found.as_ref().map_or("missing".to_owned(), |f| format!("{f:?}")),
        ReportManifest::FORMAT
    )]
    Format {
        /// The `Format` found, if any.
        found: Option<String>,
    },
}

impl ReportManifest {
    /// The only `Format` there is.
    pub const FORMAT: &'static str = "Report_CSV_20180820";

    /// A manifest written at `created` listing `results`, with the declared column order
    /// ([`REPORT_COLUMNS`]).
    pub fn new(created: impl Into<String>, results: Vec<ResultsFile>) -> Self {
        ReportManifest {
            format: Self::FORMAT.to_owned(),
            report_creation_date: created.into(),
            results,
            report_schema: REPORT_COLUMNS.join(", "),
        }
    }

    /// The JSON, pretty-printed, its fields in the order S3 writes them.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a report manifest serializes")
    }

    /// Reads a `manifest.json`; an error says what is wrong (not JSON, a missing field, a
    /// `Format` other than [`ReportManifest::FORMAT`]).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ReportManifestError> {
        // The format first: another file's fields mean nothing here.
        #[derive(serde::Deserialize)]
        struct Format {
            #[serde(rename = "Format")]
            format: Option<String>,
        }
        let Format { format } = serde_json::from_slice(bytes).map_err(ReportManifestError::Json)?;
        if format.as_deref() != Some(Self::FORMAT) {
            return Err(ReportManifestError::Format { found: format });
        }
        serde_json::from_slice(bytes).map_err(ReportManifestError::Json)
    }
}
