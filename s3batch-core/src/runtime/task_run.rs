//! The future of one task ([`TaskRun`]): in its span, its parameters built and the task
//! called in its first poll, its outcome (or panic) turned into a result code and text and
//! logged; a panic of a task dropped unfinished (at the deadline) caught and logged.

use crate::error::TaskError;
use crate::logging::{in_task, DeferredSpan, Escaped, TARGET};
use crate::metrics::{self, RunEnd};
use crate::response::ResultCode;
use futures_util::future::CatchUnwind;
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;

pin_project_lite::pin_project! {
    /// A task's future inside its span (entered for each poll, like `future.instrument(span)`),
    /// with its outcome turned into a result code and text and logged there. Its parameters
    /// are built in the first poll (a panic there is caught too). A task that has finished is
    /// dropped at once, inside the poll that finished it (`Instrumented` enters the span once
    /// more to drop it); a task dropped before it finishes (at the deadline) is dropped inside
    /// its span, so whatever its destructors log carries its fields.
    ///
    /// Hot path: the stages are written out, not an `async` block inside a wrapper that
    /// enters the span (the plain form), whose state would keep the call's captures (the
    /// `Object` among them) beside the task's future; `Stage` reuses their room. The `async`
    /// block measured +96 instructions per 1-task invocation, +1,869 per 100-task one
    /// (`SECTIONS=5 bench/run.sh`, as deployed; bench/analysis.md, "Hand-written shapes").
    pub(super) struct TaskRun<C, F> {
        // The task's span, made as it starts; or none, and then, under `init_tracing`'s
        // subscriber, the span made when the task first needs it.
        pub(super) span: tracing::Span,
        pub(super) deferred: Option<Box<DeferredSpan>>,
        // The key, when it is only whitespace (to explain the SDK's "key was missing").
        pub(super) blank_key: Option<String>,
        #[pin]
        pub(super) stage: Stage<C, F>,
    }
    // A task dropped unfinished (at the deadline) is dropped here, inside `catch_unwind`: a
    // destructor that panics there (a guard in the task, a value it holds) would otherwise
    // end the whole invocation as "Lambda panicked", losing its neighbours' results. A task
    // that finished was dropped inside its `poll`, under `catch_unwind` already. `Pin::set`
    // drops the stage in place; if that panics, the stage is `Done` all the same.
    impl<C, F> PinnedDrop for TaskRun<C, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !matches!(*this.stage, Stage::Done) {
                let _entered = this.span.enter();
                let mut stage = this.stage;
                in_task(this.deferred, || {
                    let dropped = catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done)));
                    if let Err(panic) = dropped {
                        log_drop_panic(panic);
                    }
                });
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// Where a [`TaskRun`] is.
    #[project = StageProj]
    pub(super) enum Stage<C, F> {
        /// Not polled yet: builds the parameters and calls the task.
        Start { start: Option<C> },
        // `started`: when the task started, if metrics are being collected.
        Running { #[pin] call: CatchUnwind<AssertUnwindSafe<F>>, started: Option<u64> },
        /// Building the parameters panicked.
        Panicked { panic: Option<Box<dyn Any + Send>>, started: Option<u64> },
        Done,
    }
}

impl<C, F> Future for TaskRun<C, F>
where
    C: FnOnce() -> F,
    F: Future<Output = Result<String, TaskError>>,
{
    type Output = (ResultCode, String);
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let (mut stage, blank_key) = (this.stage, this.blank_key);
        in_task(this.deferred, || {
            if let StageProj::Start { start } = stage.as_mut().project() {
                let start = start.take().expect("a task starts once");
                let started = metrics::task_started();
                stage.set(match catch_unwind(AssertUnwindSafe(start)) {
                    Ok(call) => Stage::Running {
                        call: AssertUnwindSafe(call).catch_unwind(),
                        started,
                    },
                    Err(panic) => Stage::Panicked {
                        panic: Some(panic),
                        started,
                    },
                });
            }
            let (outcome, started) = match stage.as_mut().project() {
                StageProj::Running { call, started } => {
                    (std::task::ready!(call.poll(cx)), *started)
                }
                StageProj::Panicked { panic, started } => (
                    Err(panic.take().expect("a panic is reported once")),
                    *started,
                ),
                StageProj::Start { .. } | StageProj::Done => {
                    panic!("a TaskRun is not polled after it finished")
                }
            };
            stage.set(Stage::Done);
            Poll::Ready(outcome_of(outcome, blank_key.take(), started))
        })
    }
}

/// A task's outcome as a result code and text, logged (inside the task's span).
fn outcome_of(
    outcome: Result<Result<String, TaskError>, Box<dyn Any + Send>>,
    blank_key: Option<String>,
    started: Option<u64>,
) -> (ResultCode, String) {
    match outcome {
        Ok(Ok(text)) => {
            metrics::task_finished(started, RunEnd::Succeeded);
            tracing::debug!(target: TARGET, "succeeded");
            (ResultCode::Succeeded, text)
        }
        Ok(Err(mut err)) => {
            if let Some(key) = blank_key {
                err = explain_blank_key(err, &key);
            }
            tracing::warn!(target: TARGET, kind = ?err.kind(), "{}", Escaped::text(err.message()));
            let code = err.kind().into();
            metrics::task_finished(started, RunEnd::Failed(code, err.message()));
            (code, err.message().to_owned())
        }
        Err(panic) => {
            let message = match panic_message(&*panic) {
                "" => PANIC_WITHOUT_MESSAGE.to_owned(),
                message => format!("task panicked: {message}"),
            };
            // The payload is the task's value: its destructor may panic too.
            drop_quietly(panic);
            metrics::task_finished(started, RunEnd::Panicked);
            tracing::error!(target: TARGET, "{}", Escaped::text(&message));
            (ResultCode::PermanentFailure, message)
        }
    }
}

/// What aws-sdk-s3 says, before sending anything, about a request whose key is empty or only
/// whitespace (its endpoint parameters refuse `key.trim().is_empty()`).
const SDK_MISSING_KEY: &str = "key was missing";

/// A task about a key that is only whitespace, failed with the SDK's "key was missing": says
/// what happened instead (the key was there; the SDK cannot send requests for it). Other
/// errors are kept as they are.
fn explain_blank_key(err: TaskError, key: &str) -> TaskError {
    if !err.message().contains(SDK_MISSING_KEY) {
        return err;
    }
    TaskError::new(
        err.kind(),
        format!(
            "the key is only whitespace ({:?}): aws-sdk-s3 cannot send requests for such keys \
             (it reported: {})",
            key,
            err.message()
        ),
    )
}

/// The message of a task whose panic message is empty: `panic!("")`, or a message whose
/// formatting failed (`panic!("{}", x)` where `x`'s `Display` returns an error leaves the
/// message empty or cut short). A `Display` that itself panics while the panic message is
/// formatted aborts the process: Rust gives no way to catch that.
pub const PANIC_WITHOUT_MESSAGE: &str =
    "task panicked (the panic message is empty or could not be formatted)";

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(panic payload is not a string)"
    }
}

/// Drops a panic payload, catching a panic of its destructor (whose own payload is leaked
/// rather than dropped: it could panic again).
fn drop_quietly(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Logs (inside the task's span) a panic of a task's destructor at the deadline.
fn log_drop_panic(panic: Box<dyn Any + Send>) {
    tracing::error!(
        target: TARGET,
        "a task panicked while it was being dropped at the deadline: {}",
        Escaped::text(match panic_message(&*panic) {
            "" => "(the panic message is empty or could not be formatted)",
            m => m,
        })
    );
    drop_quietly(panic);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Only a whitespace key's "key was missing" is rewritten.
    #[test]
    fn explain_blank_key_keeps_other_errors() {
        let other = explain_blank_key(TaskError::temporary("busy"), " ");
        assert_eq!(
            (other.kind(), other.message()),
            (ErrorKind::Temporary, "busy")
        );
        let e = explain_blank_key(TaskError::temporary("x: key was missing: y"), " ");
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert!(e
            .message()
            .starts_with("the key is only whitespace (\" \")"));
    }
}
