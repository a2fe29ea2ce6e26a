//! # s3batch-job
//!
//! The engine of a local S3 Batch Operations `LambdaInvoke` job: a manifest in, every task
//! sent to the function the way S3 sends it, S3's redrive and failure rules applied, and a
//! completion report out. The function is reached through the Lambda Invoke API (`cargo
//! lambda watch` locally, or a deployed function) with [`LambdaInvoker`], run under a local
//! Lambda Runtime API with [`RuntimeHost`], or called in-process with
//! [`LocalJob::run_in_process`] for integration tests.
//!
//! This crate is a library only, and compiles no command line (no clap, indicatif or
//! tracing-subscriber of its own) and no S3 Control client. Around it:
//! - **`s3batch-control`**: the S3 Control job side. A local S3 Control job endpoint whose
//!   jobs run on this engine (`cargo s3batch serve`), and the client that creates and follows
//!   real S3 Batch Operations jobs (`cargo s3batch submit`, `status`, `list`, `cancel`,
//!   `confirm`, `priority`).
//! - **`cargo-s3batch`**: the `cargo s3batch` command, argument parsing and presentation over
//!   this crate and `s3batch-control` (`cargo s3batch run` and `report` are this engine).
//!
//! The main entry points: [`LocalJob`] (a job: its manifest, schema, user arguments,
//! [`Redrive`] and [`FailureThreshold`]), a manifest ([`Manifest`] in memory, or a streamed
//! [`ManifestSource`]), an invoker ([`Invoke`]: [`LambdaInvoker`], [`RuntimeHost`],
//! [`InProcess`]), the [`Journal`] and its [`lifecycle`], and the report ([`JobReport`],
//! read back by [`read_report`] and [`analyze`]).
//!
//! ```
//! use s3batch::{Object, TaskError};
//! use s3batch_job::{LocalJob, Manifest, Schema};
//!
//! async fn archive(obj: Object) -> Result<String, TaskError> {
//!     Ok(format!("archived s3://{}/{}", obj.bucket, obj.key))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let manifest = Manifest::from_csv(b"photos,summer%202024/img%C3%A9.jpg\n").unwrap();
//! let report = LocalJob::new(manifest)
//!     .schema(Schema::V2)
//!     .user_argument("destBucket", "archive")
//!     .run_in_process(archive, s3batch::Options::new())
//!     .await
//!     .unwrap();
//! assert_eq!(report.records[0].message, "archived s3://photos/summer 2024/imgé.jpg");
//! # });
//! ```
//!
//! ## What is emulated, and how
//! - **Manifests** ([`Manifest`]): `S3BatchOperations_CSV_20180820` and S3 Inventory
//!   `manifest.json`. Keys are decoded form-style (`+` is a space; write a literal `+` as
//!   `%2B`). Any bad row, reported with its line number, rejects the whole manifest.
//! - **Invocations**: schema 1.0 (`s3BucketArn`) or 2.0 (`s3Bucket`, `userArguments`), keys
//!   re-encoded form-style as S3 sends them, one task per invocation unless configured, task
//!   ids stable across redrives.
//! - **Results**: `TemporaryFailure` is redriven ([`Redrive`]: 3 times from 1 s by default,
//!   doubling); a failed Invoke API call is redriven the same way when a repeat may succeed
//!   (no response, 408, 409, 429, 5xx), and fails at once otherwise (404, 413, other 4xx). A
//!   function error is
//!   `PermanentFailure` with `Lambda returned function error: <error document>`; a response
//!   that is not JSON, has no `results` array, a wrong `invocationId`, or a result without a
//!   valid `taskId`/`resultCode` fails every task of the invocation with `Invalid JSON
//!   returned in Lambda payload`; a task missing from `results` gets the response's
//!   `treatMissingKeysAs` (default `PermanentFailure`). A task still `TemporaryFailure` after
//!   its last redrive fails with that message.
//! - **Failure threshold** ([`FailureThreshold`]): once 1,000 tasks have finished, more than
//!   50 % failed stops the job: invocations in flight finish, nothing new starts, tasks
//!   waiting for a redrive are recorded with their last result, and rows never started are
//!   left out of the report (counted as `not_run`).
//! - **Report** ([`JobReport::render`]): `Report_CSV_20180820`, see [`report`] for the column
//!   order chosen (the declared one) and how keys are written.
//! - **Reading a report back** ([`analyze`]; on the command line `cargo s3batch report
//!   PATH|s3://…`): counts by status, error code and message, and the failed rows as a
//!   manifest to run again.
//!
//! - **Journal** ([`Journal`], [`LocalJob::run_journaled`]): each finished task appended to a
//!   file as it finishes, so memory holds only the tasks in flight or waiting for a redrive,
//!   an interrupted job (stop signal: status `Cancelled`; crash; `kill -9`) resumes without
//!   running its finished tasks again, and the report is written from it
//!   ([`journal::write_report`]). A CSV manifest file is streamed ([`ManifestSource`]).
//!
//! Not emulated by [`LocalJob`]: S3's own throttling and ordering, job priorities,
//! confirmation, manifest `ETag`s, and ORC/Parquet inventories. The local S3 Control endpoint
//! of `s3batch-control` (`cargo s3batch serve`) adds the job API around it: job states,
//! confirmation, cancellation, priorities and manifest `ETag` checks.

#![deny(missing_docs)]

pub mod analyze;
pub mod aws;
mod csv_strict;
pub mod digest;
mod file_error;
pub mod host;
pub mod invoke;
pub mod job;
pub mod journal;
pub mod lifecycle;
pub mod manifest;
pub mod report;
pub mod storage;
pub mod user_args;

pub use file_error::FileError;
pub use host::{HostConfig, RuntimeHost};
pub use invoke::{CheckError, InProcess, Invoke, Invoked, LambdaInvoker};
pub use job::{FailureThreshold, JobError, LocalJob, Progress, Redrive, Schema};
pub use journal::Journal;
pub use manifest::{Manifest, ManifestEntry, ManifestError, ManifestSource};
pub use report::{
    parse_report_csv, read_report, JobOutcome, JobReport, JobStatus, ReportError, ReportRow,
    ReportScope, Summary, TaskRecord, TaskStatus,
};
pub use storage::Location;
pub use user_args::{UserArguments, UserArgumentsError};
