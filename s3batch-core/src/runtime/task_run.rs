//! The future of one task ([`TaskRun`]): in its span, its parameters built and the task
//! called in its first poll, its outcome (or panic) turned into a result code and text and
//! logged; and [`DropCaught`], which catches a panic of a task dropped unfinished.

use crate::error::TaskError;
use crate::logging::{in_task, DeferredSpan, Escaped, TARGET};
use crate::response::ResultCode;
use futures_util::future::CatchUnwind;
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;

pin_project_lite::pin_project! {
    /// A task's future inside its span (entered for each poll, like `future.instrument(span)`),
    /// with its outcome turned into a result code and text and logged there. Its parameters
    /// are built in the first poll (a panic there is caught too). A task that has finished is
    /// dropped at once, inside the poll that finished it (`Instrumented` enters the span once
    /// more to drop it); a task dropped before it finishes (at the deadline) is dropped inside
    /// its span, so whatever its destructors log carries its fields. Written out rather than
    /// as an `async` block so that it holds the task's future once (see bench/analysis.md).
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
    impl<C, F> PinnedDrop for TaskRun<C, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if !matches!(*this.stage, Stage::Done) {
                let _entered = this.span.enter();
                in_task(this.deferred, || this.stage.set(Stage::Done));
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
        Running { #[pin] call: CatchUnwind<AssertUnwindSafe<F>> },
        /// Building the parameters panicked.
        Panicked { panic: Option<Box<dyn Any + Send>> },
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
                stage.set(match catch_unwind(AssertUnwindSafe(start)) {
                    Ok(call) => Stage::Running {
                        call: AssertUnwindSafe(call).catch_unwind(),
                    },
                    Err(panic) => Stage::Panicked { panic: Some(panic) },
                });
            }
            let outcome = match stage.as_mut().project() {
                StageProj::Running { call } => std::task::ready!(call.poll(cx)),
                StageProj::Panicked { panic } => {
                    Err(panic.take().expect("a panic is reported once"))
                }
                StageProj::Start { .. } | StageProj::Done => {
                    panic!("a TaskRun is not polled after it finished")
                }
            };
            stage.set(Stage::Done);
            Poll::Ready(outcome_of(outcome, blank_key.take()))
        })
    }
}

/// A task's outcome as a result code and text, logged (inside the task's span).
fn outcome_of(
    outcome: Result<Result<String, TaskError>, Box<dyn Any + Send>>,
    blank_key: Option<String>,
) -> (ResultCode, String) {
    match outcome {
        Ok(Ok(text)) => {
            tracing::debug!(target: TARGET, "succeeded");
            (ResultCode::Succeeded, text)
        }
        Ok(Err(mut err)) => {
            if let Some(key) = blank_key {
                err = explain_blank_key(err, &key);
            }
            tracing::warn!(target: TARGET, kind = ?err.kind(), "{}", Escaped::text(err.message()));
            (err.kind().into(), err.message().to_owned())
        }
        Err(panic) => {
            let message = match panic_message(&*panic) {
                "" => PANIC_WITHOUT_MESSAGE.to_owned(),
                message => format!("task panicked: {message}"),
            };
            // The payload is the task's value: its destructor may panic too.
            drop_quietly(panic);
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

/// A task's future, dropped inside `catch_unwind`: at the deadline the unfinished tasks are
/// dropped, and a destructor that panics there (a guard in the task, a value it holds) would
/// otherwise end the whole invocation as "Lambda panicked", losing its neighbours' results.
/// Once a task has finished, everything of it was dropped inside its `poll`, which runs
/// under `catch_unwind` already.
pub(super) struct DropCaught<F> {
    inner: ManuallyDrop<F>,
}

impl<F> DropCaught<F> {
    pub(super) fn new(inner: F) -> Self {
        Self {
            inner: ManuallyDrop::new(inner),
        }
    }
}

impl<F: Future> Future for DropCaught<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is pinned structurally: it is never moved out of `self`, and it is
        // dropped in place, once, in `Drop`.
        unsafe { self.map_unchecked_mut(|s| &mut *s.inner) }.poll(cx)
    }
}

impl<F> Drop for DropCaught<F> {
    fn drop(&mut self) {
        let inner = &mut self.inner;
        // SAFETY: the only place `inner` is dropped; it is not used afterwards.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(inner) }));
        if let Err(panic) = dropped {
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
    }
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
