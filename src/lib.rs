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
//! ## What a task can return
//! `Ok(value)` is `Succeeded` with `value` as the `resultString` (a string as it is, `()` as
//! an empty string, anything else `Serialize` as JSON). `Err(e)` is `TemporaryFailure` or
//! `PermanentFailure` by the error's [`ErrorKind`]; `?` classifies aws-sdk-s3 errors (see
//! [`error`]). `E` may also be `Box<dyn Error + Send + Sync>`, `aws_sdk_s3::Error` or
//! `anyhow::Error` (feature `anyhow`, on by default): the SDK error in its chain is classified
//! the same way. A panic is that task's `PermanentFailure`; a task still running near the Lambda
//! deadline is a `TemporaryFailure`. Every task gets exactly one result.
//!
//! ## Parameters after the `Object`
//! Any [`FromTask`] type, in any order: [`aws_sdk_s3::Client`] (built once per cold start;
//! feature `s3`), [`Job`], [`UserArgs<T>`], [`Context`], or your own.
//!
//! The attribute checks the signature by its types, not their spelling: `use s3batch::Object
//! as Obj` and `type Res<T> = Result<T, TaskError>` work, and each mistake (a parameter that is
//! not an extractor, a return type that is not a `Result`, a future that is not `Send`) is one
//! compile error at the token that causes it.
//!
//! ```no_run
//! use s3batch::{aws_sdk_s3::Client, Job, Object, TaskError, UserArgs};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Args { tag_value: String }
//!
//! #[s3batch::task(concurrency = 16, deadline_margin_ms = 2000)]
//! async fn tag(obj: Object, s3: Client, UserArgs(args): UserArgs<Args>, job: Job) -> Result<String, TaskError> {
//!     let _ = (s3, job);
//!     Ok(args.tag_value)
//! }
//! ```
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `concurrency = N` | 64 | tasks of one invocation run at once |
//! | `deadline_margin_ms = N` | 1000 | unfinished tasks are given up this long before the Lambda deadline |
//! | `max_result_len = N` | 1024 | longest `resultString` in bytes; longer ones are cut with a marker |
//! | `treat_missing_keys_as = "…"` | `"PermanentFailure"` | the response's `treatMissingKeysAs` |
//! | `map_key_encoding = "raw"` / `"url"` | `"raw"` | Step Functions Distributed Map items: how keys are read unless `BatchInput` says (see [`map`]) |
//! | `map_failure = "fail_batch"` / `"report"` | `"fail_batch"` | Distributed Map: a failed item fails its child (`S3Batch.TemporaryFailure`/`PermanentFailure`), or every result is returned and nothing fails |
//! | `metrics_namespace = "…"` | none (env `S3BATCH_METRICS_NAMESPACE`, `POWERTOOLS_METRICS_NAMESPACE`) | turns on CloudWatch metrics, one EMF document per invocation (see [`metrics`]) |
//! | `metrics_service = "…"` | env `POWERTOOLS_SERVICE_NAME` | the metrics' `Service` dimension |
//! | `metrics_job_dimension = true` | `false` | `JobId` as a metrics dimension too, not only a property |
//! | `main = false` | `true` | generate no `main`; call [`run`] yourself |
//! | `crate = "path"` | `"::s3batch"` | where the generated code finds this crate (renamed dependency) |
//!
//! ## Cargo features
//! | feature | default | what it brings |
//! |---|---|---|
//! | `s3` | on | aws-sdk-s3: the `Client` extractor, `?` on the SDK's errors ([`error`]), the `aws_sdk_s3` re-export, `testing::invoke_with_client`, `with_client` and `client_config` |
//! | `anyhow` | on | `anyhow::Error` as a task's error type |
//!
//! A task without a `Client` can leave the AWS SDK and its HTTP and TLS stack out of its
//! binary with `s3batch = { version = "0.1", default-features = false }` (and `features =
//! ["anyhow"]` if it returns `anyhow::Error`). An SDK error in an error chain is then only
//! text, and permanent.
//!
//! [S3 Batch Operations]: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html

#![deny(missing_docs)]

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
/// [crate documentation](crate) for the options.
pub use s3batch_macros::task;
