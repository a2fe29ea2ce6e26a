//! What makes an async fn a task: [`TaskFn`], implemented for every
//! `async fn(Object, E1, …, E8) -> Result<O, E>` whose extra parameters are extractors.

use crate::envelope::{Job, Object};
use crate::error::TaskError;
use crate::extract::{FromTask, TaskParts};
use crate::BoxError;
use serde::Serialize;
use std::future::Future;

/// A value a task returns on success; becomes the `resultString`.
///
/// Implemented for every `T: Serialize + 'static` (a task returns owned values): a value that
/// serializes to a JSON string (`String`, `&'static str`, `Cow<str>`) is used as it is, `()` and `None` give an empty string, and anything
/// else (a struct, a number, a map) gives its JSON.
///
/// ```
/// use s3batch_core::TaskOutput;
/// assert_eq!("copied".to_string().into_result_string(), "copied");
/// assert_eq!(().into_result_string(), "");
/// assert_eq!(serde_json::json!({"bytes": 3}).into_result_string(), r#"{"bytes":3}"#);
/// ```
pub trait TaskOutput {
    /// The text for the completion report.
    fn into_result_string(self) -> String;
}

impl<T: Serialize + 'static> TaskOutput for T {
    fn into_result_string(self) -> String {
        // The common case, a `String`, is moved as it is rather than copied through JSON.
        let mut slot = Some(self);
        if let Some(s) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<String>>() {
            return s.take().unwrap_or_default();
        }
        let value = slot.expect("still there");
        match serde_json::to_value(&value) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(serde_json::Value::Null) => String::new(),
            Ok(other) => other.to_string(),
            Err(e) => format!("(result could not be serialized: {e})"),
        }
    }
}

/// The return type of a task function: `Result<O, E>` with `O:` [`TaskOutput`] and
/// `E: Into<TaskError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task return type",
    label = "expected `Result<T, E>` where `T: Serialize` and `E: Into<TaskError>`",
    note = "a task returns `Result<String, TaskError>`, or `Result<T, E>` with a serializable `T` and an error convertible into `TaskError`"
)]
pub trait TaskReturn: Send {
    /// Converts into the result text or a classified error.
    fn into_outcome(self) -> Result<String, TaskError>;
}

impl<O: TaskOutput + Send, E: Into<TaskError> + Send> TaskReturn for Result<O, E> {
    fn into_outcome(self) -> Result<String, TaskError> {
        self.map(TaskOutput::into_result_string).map_err(Into::into)
    }
}

/// A task function; `Args` are its extractor parameter types (a tuple).
///
/// You never implement this: any `async fn(Object, …) -> Result<O, E>` whose parameters after
/// the [`Object`] implement [`FromTask`] (up to eight) is a `TaskFn`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task function",
    label = "see the errors on its parameters or return type",
    note = "a task is `async fn(Object, E1, …) -> Result<T, E>` where each `Ei: FromTask`, `T: Serialize` and `E: Into<TaskError>`"
)]
pub trait TaskFn<Args>: Send + Sync + 'static {
    /// The extractors' states, built once per cold start.
    type State: Send + Sync + 'static;

    /// Builds every extractor's state.
    fn init_state() -> impl Future<Output = Result<Self::State, BoxError>> + Send;

    /// Builds the parameters and runs the task.
    fn call(
        &self,
        state: &Self::State,
        job: &Job,
        context: &lambda_runtime::Context,
        object: Object,
    ) -> impl Future<Output = Result<String, TaskError>> + Send;
}

macro_rules! impl_task_fn {
    ($($ty:ident $idx:tt),*) => {
        impl<F, Fut, $($ty,)*> TaskFn<($($ty,)*)> for F
        where
            F: Fn(Object, $($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send,
            Fut::Output: TaskReturn,
            $($ty: FromTask,)*
        {
            type State = ($($ty::State,)*);

            async fn init_state() -> Result<Self::State, BoxError> {
                Ok(($($ty::init().await?,)*))
            }

            #[allow(unused_variables, non_snake_case)]
            fn call(
                &self,
                state: &Self::State,
                job: &Job,
                context: &lambda_runtime::Context,
                object: Object,
            ) -> impl Future<Output = Result<String, TaskError>> + Send {
                let parts = TaskParts { job, context, object: &object };
                // The closure gives `?` a scope: the first extractor that fails fails the task.
                #[allow(clippy::redundant_closure_call)]
                let extracted: Result<($($ty,)*), TaskError> = (|| Ok(($($ty::from_task(&state.$idx, &parts)?,)*)))();
                let fut = extracted.map(|($($ty,)*)| (self)(object, $($ty,)*));
                async move { fut?.await.into_outcome() }
            }
        }
    };
}

impl_task_fn!();
impl_task_fn!(T0 0);
impl_task_fn!(T0 0, T1 1);
impl_task_fn!(T0 0, T1 1, T2 2);
impl_task_fn!(T0 0, T1 1, T2 2, T3 3);
impl_task_fn!(T0 0, T1 1, T2 2, T3 3, T4 4);
impl_task_fn!(T0 0, T1 1, T2 2, T3 3, T4 4, T5 5);
impl_task_fn!(T0 0, T1 1, T2 2, T3 3, T4 4, T5 5, T6 6);
impl_task_fn!(T0 0, T1 1, T2 2, T3 3, T4 4, T5 5, T6 6, T7 7);
