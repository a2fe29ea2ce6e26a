//! The runtime behind [`s3batch`](https://docs.rs/s3batch): everything the `#[s3batch::task]`
//! attribute's generated code calls, as plain Rust.
//!
//! Users depend on the `s3batch` facade, which re-exports this crate; see its documentation
//! for the guide. The modules follow the path of an event: [`envelope`] reads it, [`key`]
//! decodes keys, [`extract`] builds task parameters, [`task`] calls the function,
//! [`error`] classifies failures, [`response`] assembles the answer, and [`runtime`] ties it
//! to Lambda. [`testing`] runs the same path in-process. [`wire`] has the S3 Batch Operations
//! wire format itself, typed: the schema version, the event, the response, a report row.

#![deny(missing_docs)]

pub mod envelope;
pub mod error;
pub mod extract;
pub mod key;
mod logging;
pub mod map;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_off.rs"]
mod metrics;
pub mod response;
pub mod runtime;
pub mod task;
pub mod testing;
pub mod wire;

pub use envelope::{BadTask, Event, Invocation, InvocationError, Job, Object};
#[cfg(feature = "s3")]
pub use error::classify;
pub use error::{ErrorKind, ResultExt, TaskError};
pub use extract::{FromTask, TaskParts, UserArgs};
pub use response::{Response, ResultCode, TaskResult};
pub use runtime::{init_tracing, run, Handler, Options, OptionsBuilder};
pub use task::{TaskFn, TaskOutput, TaskReturn};

/// The error type of fallible setup (extractor state, the runtime).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Re-exported so users name one version of these.
#[cfg(feature = "s3")]
pub use aws_sdk_s3;
pub use lambda_runtime;
pub use lambda_runtime::Context;

#[doc(hidden)]
pub mod __private {
    //! Used by the code `#[s3batch::task]` generates; not a public API.
    //!
    //! The macro checks a task's signature with the type system, one assertion per part,
    //! each spanned at the user's token, so aliases (`use s3batch::Object as Obj`,
    //! `type Res<T> = Result<T, TaskError>`) work and each mistake is reported once, where
    //! it is. The assertions run inside the const argument of [`Checked`]: when one fails,
    //! that const is an error, and rustc stays silent about the `main` call that depends on
    //! it instead of adding a second "is not a task function" error.
    pub use crate::map::{KeyEncoding, MapFailure};
    pub use crate::{BoxError, Options, ResultCode};
    use crate::{FromTask, Object, TaskFn, TaskReturn};
    use std::future::Future;

    /// Compile-time check that a parameter after the `Object` is an extractor.
    pub const fn assert_from_task<T: TaskParam>() {}

    /// Compile-time check of the return type.
    pub const fn assert_task_return<T: TaskReturn>() {}

    /// Compile-time check that the first parameter is the `Object`.
    pub const fn assert_object<T: IsObject>() {}

    /// Compile-time check that the task's future can move between threads. Only ever named
    /// in a closure that is never called; a failure makes rustc say what is held across
    /// which `.await`.
    pub fn assert_send<F: Future + Send>(_: F) {}

    /// The type of a task's first parameter.
    #[diagnostic::on_unimplemented(
        message = "a task's first parameter must be the `Object` to process, not `{Self}`",
        label = "expected `s3batch::Object`",
        note = "extractors (`Client`, `Job`, `UserArgs<T>`, …) come after the `Object`: `async fn name(obj: Object, job: Job)`"
    )]
    pub trait IsObject {}

    impl IsObject for Object {}

    /// A parameter after the `Object`: any extractor. The `Object` itself passes here because
    /// an `Object` out of place is reported once, at the first parameter (two `Object`s are
    /// still refused, by the `TaskFn` bound of [`Serve`]).
    #[cfg_attr(
        feature = "s3",
        diagnostic::on_unimplemented(
            message = "`{Self}` cannot be a task parameter",
            label = "does not implement `s3batch::FromTask`",
            note = "task parameters after the `Object` must be extractors: `aws_sdk_s3::Client`, `Job`, `UserArgs<T>`, `lambda_runtime::Context`, or your own type implementing `FromTask`"
        )
    )]
    #[cfg_attr(
        not(feature = "s3"),
        diagnostic::on_unimplemented(
            message = "`{Self}` cannot be a task parameter",
            label = "does not implement `s3batch::FromTask`",
            note = "task parameters after the `Object` must be extractors: `Job`, `UserArgs<T>`, `lambda_runtime::Context`, or your own type implementing `FromTask`; `aws_sdk_s3::Client` needs s3batch's feature `s3` (on by default)"
        )
    )]
    pub trait TaskParam {}

    impl<T: FromTask> TaskParam for T {}

    impl TaskParam for Object {}

    /// The task function once the macro's checks have passed (`OK` is `true`); when they
    /// have not, `OK` is a const error and nothing is asked of `F`.
    pub struct Checked<F, const OK: bool>(pub F);

    /// The generated `main`: tracing, a Tokio runtime, and [`crate::run`].
    pub trait Serve<Args> {
        /// Serves the task until the Lambda runtime stops.
        fn main(self, options: Options) -> Result<(), BoxError>;
    }

    impl<F: TaskFn<Args>, Args> Serve<Args> for Checked<F, true> {
        fn main(self, options: Options) -> Result<(), BoxError> {
            crate::runtime::main(self.0, options)
        }
    }
}
