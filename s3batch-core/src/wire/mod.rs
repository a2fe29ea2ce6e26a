//! The S3 Batch Operations wire format (LambdaInvoke), typed, in one place: the schema
//! version, the event S3 sends, the response it reads back, and a completion-report row.
//!
//! | what | written by | read by |
//! |---|---|---|
//! | [`Schema`] | [`Schema::as_str`] / `Display` / `Serialize` | [`Schema::from_str`](std::str::FromStr) / `Deserialize`, an error naming the value |
//! | the event: [`Request`], [`RequestJob`], [`RequestTask`], [`TaskBucket`] | `Serialize` (the test harness, the job runner) | `Deserialize`, strict; the handler reads events leniently, see below |
//! | the response: [`Response`], [`TaskResult`], [`ResultCode`] | `Serialize` (the handler) | [`ReceivedResponse::from_slice`], as S3 reads it (the job runner) |
//! | a report row: [`ReportRow`], [`TaskStatus`] | [`ReportRow::to_fields`] | [`ReportRow::from_fields`], either column order |
//! | a report's `manifest.json`: [`ReportManifest`], [`ResultsFile`] | [`ReportManifest::to_json`] | [`ReportManifest::from_slice`] |
//!
//! The handler reads the event with [`crate::envelope::Event`], which accepts any JSON: a
//! field of the wrong type fails only its task, naming the field. Its field names are those
//! of [`Request`], and it reads a task's bucket from either of [`TaskBucket`]'s fields.
//!
//! # Adding a schema version (say 3.0)
//! Everything is in this module and its files:
//! 1. a variant in [`Schema`] and a row in its `VERSIONS` table (its string; parsing,
//!    printing, serde and the parse error's list of versions follow from the table);
//! 2. what its events carry: [`Schema::has_user_arguments`] and [`Schema::task_bucket`]
//!    (the field of a task's bucket); a new task field goes in [`RequestTask`] and, for the
//!    handler's lenient reader, in `envelope.rs`'s `RawTask` and `resolve_task`;
//! 3. its round trip in this module's tests (one entry in their list of schemas).
//!
//! The response and the report are the same for every version so far.

mod report;
// `pub(crate)` for `bucket_from_arn`, which `envelope` re-exports.
pub(crate) mod request;
mod response;

pub use report::{
    ParseTaskStatusError, ReportManifest, ReportManifestError, ReportRow, ReportRowError,
    ResultsFile, TaskStatus, REPORT_COLUMNS,
};
pub use request::{Request, RequestJob, RequestTask, TaskBucket};
pub use response::{
    ParseResultCodeError, ReceivedResponse, ReceivedResult, Response, ResponseError, ResultCode,
    TaskResult,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// `invocationSchemaVersion`: which fields an event carries. Chosen when the job is created;
/// the response echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Schema {
    /// `"1.0"`, S3's default: tasks carry `s3BucketArn`, the job has no `userArguments`.
    #[default]
    V1,
    /// `"2.0"`: tasks carry `s3Bucket`; the job carries `userArguments`.
    V2,
}

/// Every version with its string, oldest first.
const VERSIONS: [(Schema, &str); 2] = [(Schema::V1, "1.0"), (Schema::V2, "2.0")];

impl Schema {
    /// Every schema version, oldest first.
    pub const ALL: [Schema; VERSIONS.len()] = {
        let mut all = [Schema::V1; VERSIONS.len()];
        let mut i = 0;
        while i < VERSIONS.len() {
            all[i] = VERSIONS[i].0;
            i += 1;
        }
        all
    };

    /// The version as it is on the wire: `"1.0"` or `"2.0"`.
    pub const fn as_str(self) -> &'static str {
        let mut i = 0;
        while i < VERSIONS.len() {
            if VERSIONS[i].0 as u8 == self as u8 {
                return VERSIONS[i].1;
            }
            i += 1;
        }
        unreachable!()
    }

    /// Whether events of this version carry `job.userArguments` (S3 refuses user arguments
    /// with 1.0).
    pub const fn has_user_arguments(self) -> bool {
        !matches!(self, Schema::V1)
    }

    /// How a task of this version names its bucket: `s3BucketArn` (1.0) or `s3Bucket`.
    ///
    /// ```
    /// use s3batch_core::wire::{Schema, TaskBucket};
    /// assert_eq!(Schema::V1.task_bucket("b"), TaskBucket::Arn("arn:aws:s3:::b".into()));
    /// assert_eq!(Schema::V2.task_bucket("b"), TaskBucket::Name("b".into()));
    /// ```
    pub fn task_bucket(self, bucket: &str) -> TaskBucket {
        match self {
            Schema::V1 => TaskBucket::Arn(format!("arn:aws:s3:::{bucket}")),
            Schema::V2 => TaskBucket::Name(bucket.to_owned()),
        }
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema version that is not one of [`Schema::ALL`]; its message names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSchemaError(String);

impl ParseSchemaError {
    /// The value that was not a schema version.
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseSchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an invocation schema version: expected ",
            self.0
        )?;
        for (i, (_, name)) in VERSIONS.iter().enumerate() {
            let sep = match i {
                0 => "",
                i if i + 1 == VERSIONS.len() => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{name}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseSchemaError {}

impl FromStr for Schema {
    type Err = ParseSchemaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VERSIONS
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(schema, _)| *schema)
            .ok_or_else(|| ParseSchemaError(s.to_owned()))
    }
}

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Schema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
