//! What makes an async fn a task: [`TaskFn`], implemented for every
//! `async fn(Object, E1, …, E8) -> Result<O, E>` whose extra parameters are extractors.

use crate::envelope::{Job, Object};
use crate::error::TaskError;
use crate::extract::{FromTask, TaskParts};
use crate::BoxError;
use futures_util::future::Either;
use futures_util::FutureExt;
use serde::Serialize;
use std::future::Future;

/// A value a task returns on success; becomes the `resultString`.
///
/// Implemented for every `T: Serialize + 'static` (a task returns owned values): a value that
/// serializes to a JSON string (`String`, `&'static str`, `Cow<str>`) is used as it is, `()` and `None` give an empty string, and anything
/// else (a struct, a number, a map) gives its JSON, written straight from the value: a
/// struct's fields come out in declaration order (nested ones too), a map's entries in its
/// own iteration order.
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
        // `Ok("done")`: one copy, not JSON-quoted and unquoted again.
        if let Some(s) = (&slot as &dyn std::any::Any).downcast_ref::<Option<&'static str>>() {
            return s.map(str::to_owned).unwrap_or_default();
        }
        let value = slot.expect("still there");
        // Straight to text, not through `serde_json::Value`: without serde_json's
        // `preserve_order` feature its maps sort their keys, and a struct's fields must come
        // out in declaration order.
        match serde_json::to_string(&value) {
            Ok(json) if json == "null" => String::new(),
            // Another string type (`&str`, `Cow<str>`, a string newtype): its text, unquoted.
            Ok(json) if json.starts_with('"') => serde_json::from_str(&json)
                .unwrap_or_else(|e| format!("(result could not be serialized: {e})")),
            Ok(json) => json,
            Err(e) => format!("(result could not be serialized: {e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TaskOutput;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Inner {
        z: u8,
        m: &'static str,
    }

    #[derive(Serialize)]
    struct Outer {
        b: u32,
        a: u32,
        nested: Inner,
        map: BTreeMap<&'static str, Inner>,
        c: Vec<u8>,
    }

    /// A struct's fields keep their declaration order, nested ones too; a map keeps its own
    /// iteration order. (Through `serde_json::Value` this held only because a dependency,
    /// aws-smithy-http-client, turns on serde_json's `preserve_order`; now it does not depend
    /// on that.)
    #[test]
    fn structs_keep_their_field_order() {
        let out = Outer {
            b: 1,
            a: 2,
            nested: Inner { z: 3, m: "x" },
            map: BTreeMap::from([("k", Inner { z: 4, m: "y" })]),
            c: vec![5],
        };
        assert_eq!(
            out.into_result_string(),
            r#"{"b":1,"a":2,"nested":{"z":3,"m":"x"},"map":{"k":{"z":4,"m":"y"}},"c":[5]}"#
        );
    }

    /// The warm path's common case: a returned `String` is moved, not copied (same buffer).
    #[test]
    fn a_string_is_moved_as_it_is() {
        let s = String::from("copied to s3://dest/key");
        let (ptr, cap) = (s.as_ptr(), s.capacity());
        let out = s.into_result_string();
        assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
        assert_eq!(out, "copied to s3://dest/key");
    }

    /// 128-bit integers, which serde_json writes but `serde_json::Value` cannot hold (the
    /// old path through `Value` gave "number out of range").
    #[test]
    fn wide_integers_are_written() {
        #[derive(Serialize)]
        struct Sizes {
            total: u128,
            delta: i128,
        }
        assert_eq!(u128::MAX.into_result_string(), u128::MAX.to_string());
        assert_eq!(
            Sizes {
                total: u64::MAX as u128 + 1,
                delta: i128::MIN
            }
            .into_result_string(),
            format!(
                r#"{{"total":{},"delta":{}}}"#,
                u64::MAX as u128 + 1,
                i128::MIN
            )
        );
    }

    /// The special cases: strings of any type are used as they are (unescaped), `()` and
    /// `None` are empty, numbers are their JSON.
    #[test]
    fn strings_unit_and_none_stay_special() {
        #[derive(Serialize)]
        struct Name(&'static str);
        assert_eq!(
            "a \"q\" \\ é\n".to_string().into_result_string(),
            "a \"q\" \\ é\n"
        );
        assert_eq!("a \"q\" é\n".into_result_string(), "a \"q\" é\n");
        assert_eq!(
            std::borrow::Cow::<'static, str>::Borrowed("c\"d").into_result_string(),
            "c\"d"
        );
        assert_eq!(Name("n\u{1}").into_result_string(), "n\u{1}");
        assert_eq!(().into_result_string(), "");
        assert_eq!(None::<u8>.into_result_string(), "");
        assert_eq!(Some(7u8).into_result_string(), "7");
        assert_eq!(1.5f64.into_result_string(), "1.5");
    }

    /// A value serde_json cannot write gives a visible message, not a panic.
    #[test]
    fn unserializable_values_say_so() {
        let bad = BTreeMap::from([(vec![1u8], 1u8)]);
        assert!(bad
            .into_result_string()
            .starts_with("(result could not be serialized: "));
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
    label = "a task takes one `Object`, first, then at most eight extractors",
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
                // Hot path: not an `async` block (the plain form: `async move { let (…) =
                // extracted?; self(object, …).await.into_outcome() }`), whose state would keep
                // the captured object and parameters beside the task's future. The `async`
                // block measured +152 instructions per 1-task invocation, +3,574 per 100-task
                // one (`SECTIONS=5 bench/run.sh`, as deployed; bench/analysis.md, "Hand-written
                // shapes").
                match extracted {
                    Ok(($($ty,)*)) => Either::Left((self)(object, $($ty,)*).map(TaskReturn::into_outcome as fn(_) -> _)),
                    Err(err) => Either::Right(std::future::ready(Err(err))),
                }
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
