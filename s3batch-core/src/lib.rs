//! The runtime behind [`s3batch`](https://docs.rs/s3batch): everything the `#[s3batch::task]`
//! attribute's generated code calls, as plain Rust.
//!
//! Users depend on the `s3batch` facade, which re-exports this crate; see its documentation
//! for the guide. The modules follow the path of an event: [`envelope`] reads it, [`key`]
//! decodes keys, [`extract`] builds task parameters, [`task`] calls the function,
//! [`error`] classifies failures, [`response`] assembles the answer, and [`runtime`] ties it
//! to Lambda. [`testing`] runs the same path in-process.

#![warn(missing_docs)]

pub mod envelope;
pub mod error;
pub mod extract;
pub mod key;
pub mod response;
pub mod runtime;
pub mod task;
pub mod testing;

pub use envelope::{BadTask, Event, Invocation, InvocationError, Job, Object};
pub use error::{classify, ErrorKind, ResultExt, TaskError};
pub use extract::{FromTask, TaskParts, UserArgs};
pub use response::{Response, ResultCode, TaskResult};
pub use runtime::{init_tracing, run, Handler, Options};
pub use task::{TaskFn, TaskOutput, TaskReturn};

/// The error type of fallible setup (extractor state, the runtime).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Re-exported so users name one version of these.
pub use aws_sdk_s3;
pub use lambda_runtime;
pub use lambda_runtime::Context;

#[doc(hidden)]
pub mod __private {
    //! Used by the code `#[s3batch::task]` generates; not a public API.
    pub use crate::runtime::main;
    pub use crate::{BoxError, Options, ResultCode};

    /// Compile-time check that a parameter type is an extractor.
    pub const fn assert_from_task<T: crate::FromTask>() {}

    /// Compile-time check of the return type.
    pub const fn assert_task_return<T: crate::TaskReturn>() {}
}
