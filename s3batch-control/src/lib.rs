//! # s3batch-control
//!
//! The S3 Control side of S3 Batch Operations `LambdaInvoke` jobs, on one machine or on AWS:
//!
//! - **[`service`]**: a local S3 Control job endpoint (`cargo s3batch serve`). It speaks S3
//!   Control's REST-XML protocol (`CreateJob`, `DescribeJob`, `ListJobs`, `UpdateJobStatus`,
//!   `UpdateJobPriority`, `GetJobTagging`), so real clients (`aws s3control`, boto3,
//!   `aws-sdk-s3control`) work against it, and runs each job with the engine of
//!   `s3batch-job`: the manifest read from an S3 endpoint (e.g. moto), the function called
//!   through the Lambda Invoke API (e.g. `cargo lambda watch`), the completion report written
//!   to S3. Job states, confirmation, cancellation, priorities, manifest `ETag` checks and
//!   restarts are emulated. Entry point: [`ControlServer::start`] with a [`ServeConfig`].
//! - **[`model`]**: the job model both sides share: [`model::JobSpec`], one typed
//!   `CreateJob` request with S3's limits ([`model::JobSpec::validate`]), and the ARNs it
//!   names, parsed once ([`model::BucketArn`], [`model::ObjectArn`], [`model::FunctionArn`]).
//! - **[`submit`]** and **[`status`]**: the client that creates and follows real S3 Batch
//!   Operations jobs (`cargo s3batch submit`, `status`, `list`, `cancel`, `confirm`,
//!   `priority`), on AWS or against the local endpoint. Entry points: [`submit::JobRequest`]
//!   (the account and the [`model::JobSpec`] of a `CreateJob` request), [`submit::create`],
//!   [`submit::control_client`] and [`status`]'s summaries of `DescribeJob` and `ListJobs`.
//! - **[`xml`]**: the S3 Control REST-XML wire format the service reads and writes
//!   ([`xml::parse_create_job`] reads a `CreateJobRequest` into a [`model::JobSpec`]).
//!
//! What it is not: the engine that runs a job's tasks (manifests, invocations, S3's redrive
//! and failure rules, the journal, the completion report) is `s3batch-job`, which this crate
//! depends on and which knows nothing of S3 Control; the `cargo s3batch` command line
//! (argument parsing, progress and log output) is `cargo-s3batch`, which calls into both.
//! This crate compiles no command-line crate (clap, indicatif, tracing-subscriber).

#![deny(missing_docs)]

pub mod model;
pub mod service;
pub mod status;
pub mod submit;
pub mod xml;

pub use service::{ControlServer, ServeConfig};
