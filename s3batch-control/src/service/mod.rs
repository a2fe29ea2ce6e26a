//! A local S3 Control job endpoint (`cargo s3batch serve`): the job service of S3 Batch
//! Operations on one machine, for `LambdaInvoke` jobs.
//!
//! It speaks S3 Control's REST-XML protocol (`/v20180820/jobs…`) so real clients work
//! against it: `CreateJob`, `DescribeJob`, `ListJobs`, `UpdateJobStatus`,
//! `UpdateJobPriority` and `GetJobTagging`. Jobs run on the `s3batch-job` engine, as with
//! `cargo s3batch run` ([`LocalJob`](s3batch_job::LocalJob) through
//! [`LambdaInvoker`](s3batch_job::LambdaInvoker)): the manifest is read from, and the
//! completion report written to, an S3 endpoint (e.g. moto), and the function is called
//! through the Lambda Invoke API (e.g. `cargo lambda watch`).
//!
//! - **Routing**: by method and path only; any `Host` (clients put the account id in front of
//!   it) and absolute-form request targets are accepted; the account is the
//!   `x-amz-account-id` header; signatures are not checked.
//! - **States** ([`state`]): `New` → `Preparing` (the manifest is read, its ETag compared
//!   with the request's after stripping quotes, the report destination checked) →
//!   `Suspended` when `ConfirmationRequired` is true, until `UpdateJobStatus Ready` →
//!   `Ready` → `Active` → `Complete`; `Failing` → `Failed` when the failure threshold (more
//!   than 50 % of at least 1,000 finished tasks) stops it or a job-level problem does;
//!   `Cancelling` → `Cancelled` after `UpdateJobStatus Cancelled` (invocations in flight get
//!   the grace period). A job cancelled before it started tasks is `Cancelled` at once.
//! - **FailureReasons**: S3 documents no codes; ours are the `FailureCode` constants of
//!   [`server`] ([`TASK_FAILURE_THRESHOLD`], [`MANIFEST_ETAG_MISMATCH`], ...).
//! - **Report**: when enabled and at least one task ran, `<prefix>/job-<id>/manifest.json`
//!   and `results/<md5>.csv` in the report bucket, as `cargo s3batch run` writes it.
//! - **Idempotency**: the same `ClientRequestToken` with the same request returns the first
//!   job's id; with a different request, `IdempotencyException`.
//! - **Priorities**: with [`ServeConfig::max_active_jobs`] (`--max-active-jobs`), at most
//!   that many jobs run at once and the `Ready` job with the highest priority (then the
//!   oldest) starts when one ends; without it every `Ready` job starts at once.
//! - **Restarts**: every job is recorded in the state folder (`jobs/<id>.json`, saved at
//!   each change), so a server started again on it lists and describes the jobs of the one
//!   before (ended ones for 90 days after they end, as S3 keeps them) and takes up those
//!   that had not ended: an `Active` job resumes from its journal (its finished tasks are
//!   not invoked again), a `Cancelling` or `Failing` one ends from it, the others are
//!   prepared again ([`ControlServer::start`]). One server at a time holds a state folder.
//! - **Not emulated**: `ManifestGenerator`, operations other than `LambdaInvoke`,
//!   `Pausing`/`Paused` (a running job is never pre-empted), tagging writes, and function
//!   qualifiers (an alias or version in the `FunctionArn` is dropped: a local endpoint serves
//!   functions by name).

pub mod server;
pub mod state;

pub use server::{
    ControlServer, ServeConfig, INVALID_MANIFEST_CONTENT, JOB_ERROR, MANIFEST_ETAG_MISMATCH,
    MANIFEST_NOT_READABLE, REPORT_NOT_WRITABLE, TASK_FAILURE_THRESHOLD,
};
