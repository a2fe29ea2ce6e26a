//! Running tasks: options, the per-invocation [`Handler`], and the Lambda entry points.
//!
//! One file per job: [`Options`] (`options.rs`); the [`Handler`], which answers an event by
//! running its tasks (`handler.rs`); the future of one task, in its span, with its outcome
//! and panics caught (`task_run.rs`); the invocation's deadline (`deadline.rs`); and serving
//! on the Lambda Runtime API, [`run`] and the generated `main` (`lambda.rs`). Logging,
//! [`init_tracing`] and the escaping of logged text, is the crate's `logging` module.

mod deadline;
mod handler;
mod lambda;
mod options;
mod task_run;

pub use crate::logging::init_tracing;
pub use handler::{Handler, DEADLINE_MESSAGE};
pub use lambda::{main, run};
pub use options::{Options, OptionsBuilder};
pub use task_run::PANIC_WITHOUT_MESSAGE;

#[cfg(test)]
mod tests;
