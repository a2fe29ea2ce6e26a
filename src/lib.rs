//! # s3batch
//!
//! Write the Lambda function an [S3 Batch Operations] job calls (`LambdaInvoke`) as one plain
//! async fn. `#[s3batch::task]` generates the rest: reading the event (schema 1.0 and 2.0),
//! decoding keys form-style, mapping errors to result codes, assembling the response, and a
//! `main` that serves it on `lambda_runtime`.
//!
//! ```no_run
//! use s3batch::{Object, TaskError};
//!
//! #[s3batch::task]
//! async fn archive(obj: Object) -> Result<String, TaskError> {
//!     // obj.bucket, obj.key (decoded), obj.version_id, obj.task_id
//!     Ok(format!("archived {}", obj.key))
//! }
//! ```
//!
//! ## Writing a task
//!
//! A task is `async fn name(obj: Object, …) -> Result<T, E>`. The [`Object`] comes first:
//! `bucket`, `key` (decoded), `raw_key` (as S3 sent it), `version_id` and `task_id`.
//!
//! `Ok(value)` is `Succeeded`; `Err(e)` is `TemporaryFailure` (S3 redrives the task) or
//! `PermanentFailure` by the error's [`ErrorKind`]. `E` is [`TaskError`] or any error `?`
//! converts into one, `anyhow::Error` included. Every task gets exactly one result, a panic
//! and the Lambda deadline included: [`guide::errors`] has each outcome and what it writes in
//! the report.
//!
//! Any [`FromTask`] type may follow the `Object`, in any order: [`aws_sdk_s3::Client`]
//! (feature `s3`), [`Job`], [`UserArgs<T>`], [`Context`], [`metrics::Metrics`]
//! (feature `metrics`), or your own
//! ([`guide::extractors`]). The attribute checks the signature by its types, not their
//! spelling: `use s3batch::Object as Obj` and `type Res<T> = Result<T, TaskError>` work, and
//! each mistake (a parameter that is not an extractor, a return type that is not a `Result`, a
//! future that is not `Send`) is one compile error at the token that causes it.
//!
//! A task that calls S3 takes the `Client` and uses `?` on the SDK's errors:
//!
//! ```no_run
//! use s3batch::aws_sdk_s3::Client;
//! use s3batch::{Object, TaskError};
//!
//! #[s3batch::task]
//! async fn size(obj: Object, s3: Client) -> Result<String, TaskError> {
//!     let head = s3
//!         .head_object()
//!         .bucket(&obj.bucket)
//!         .key(&obj.key)
//!         .set_version_id(obj.version_id.clone())
//!         .send()
//!         .await?; // classified: SlowDown → temporary, NoSuchKey → permanent
//!     Ok(format!("{} bytes", head.content_length().unwrap_or(0)))
//! }
//! ```
//!
//! A task that copies objects passes the key through [`key::copy_source`], never as it is:
//! `CopySource` is percent-encoded (a space as `%20`), unlike the event's keys.
//!
//! ## The guide
//!
//! | page | what is in it |
//! |---|---|
//! | [`guide::errors`] | each outcome's result code and `resultString`; temporary or permanent for your own errors; `anyhow` with `.context` |
//! | [`guide::extractors`] | the parameters after the `Object`; user arguments as a struct; your own extractor |
//! | [`guide::options`] | every `#[s3batch::task(…)]` option (Distributed Map and metrics included); your own `main` with [`run`] |
//! | [`guide::features`] | the `s3` and `anyhow` features; a task crate's `Cargo.toml`; a task without the AWS SDK |
//! | [`guide::logging`] | what the generated `main` logs and how; the task span; escaping |
//! | [`guide::testing`] | tests in-process, with a mocked S3 client (and the versions it needs), under `cargo lambda watch` |
//!
//! The modules with items: [`error`] (how each error type is classified), [`key`] (decoding
//! keys, building a `CopySource`), [`testing`] (running a task in-process), [`map`] (the same
//! task behind a Step Functions Distributed Map), [`metrics`] (CloudWatch metrics) and
//! [`wire`] (S3 Batch Operations' wire format, typed).
//!
//! Running jobs (the `cargo s3batch` tool), deploying with IAM, manifests and key encoding,
//! limits and troubleshooting are in the repository's `README.md` and `docs/`.
//!
//! [S3 Batch Operations]: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html

#![deny(missing_docs)]

pub mod guide;

// The public face is this list, not everything `s3batch-core` has: the envelope's parsing
// (`Event`, `Invocation`), the response's budget helpers and `runtime::main` are the core's
// business and may change without a major version of `s3batch`.

// A task's signature: the object, the extractors that may follow it, and the trait for your
// own extractors.
pub use s3batch_core::{Context, FromTask, Job, Object, TaskParts, UserArgs};

// What a task returns: its error, how errors are classified, and the traits that say which
// values and results a task may return (compiler errors name them).
pub use s3batch_core::{
    BoxError, ErrorKind, ResultCode, ResultExt, TaskError, TaskOutput, TaskReturn,
};

// Serving a task from your own `main` (`#[s3batch::task(main = false)]`) or a test: the
// options, the handler, what it answers, and the trait every task fn implements (the bound
// of `run`, `Handler` and `s3batch-job`'s runner).
pub use s3batch_core::{
    init_tracing, run, Handler, InvocationError, Options, OptionsBuilder, Response, TaskFn,
    TaskResult,
};

// Error classification: how SDK errors, HTTP statuses and error codes become an
// `ErrorKind`, and `FillErrorCodes` for clients that talk to S3-compatible servers.
pub use s3batch_core::error;

// S3 keys: the form-style decoding S3 Batch Operations needs (`decode_key`), and building
// `CopySource` values (`copy_source`, `encode_key`).
pub use s3batch_core::key;

// Step Functions Distributed Map: the shapes the handler accepts besides S3 Batch's, its
// answer and errors, and the options' `KeyEncoding` and `MapFailure`.
pub use s3batch_core::map;

// Running a task in-process on built events, for unit tests.
pub use s3batch_core::testing;

// CloudWatch metrics (EMF): the `Metrics` extractor for a task's own, and their settings.
#[cfg(feature = "metrics")]
pub use s3batch_core::metrics;

// The S3 Batch Operations wire format, typed: the schema version, the event, the response and
// a completion-report row (what `testing` and `s3batch-job` build and read).
pub use s3batch_core::wire;

/// The AWS SDK for S3 this crate is built with, re-exported so a task names the same
/// `Client` the extractor builds (with the `s3` feature).
#[cfg(feature = "s3")]
pub use s3batch_core::aws_sdk_s3;

/// The Lambda runtime this crate serves tasks on, re-exported so a task names the same
/// `Context`.
pub use s3batch_core::lambda_runtime;

#[doc(hidden)]
pub use s3batch_core::__private;

/// Makes an `async fn(obj: Object, …) -> Result<T, E>` an S3 Batch Operations Lambda; see the
/// [crate documentation](crate) for the signature and [`guide::options`] for the options.
pub use s3batch_macros::task;
