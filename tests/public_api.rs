//! The facade's public face, by name: everything users need is reachable from `s3batch`
//! alone (the internals left out are checked by
//! `s3batch-macros/tests/ui/fail/core_internals.rs`).

#![allow(unused_imports)]

use s3batch::aws_sdk_s3::Client;
use s3batch::error::{classify, code_for_status, FillErrorCodes};
use s3batch::key::{copy_source, decode_key, encode_key, KeyError};
use s3batch::lambda_runtime::LambdaEvent;
use s3batch::testing::{invoke, invoke_with, EventBuilder};
use s3batch::{
    init_tracing, run, task, BoxError, Context, ErrorKind, FromTask, Handler, InvocationError, Job,
    Object, Options, OptionsBuilder, Response, ResultCode, ResultExt, TaskError, TaskFn,
    TaskOutput, TaskParts, TaskResult, TaskReturn, UserArgs,
};

#[s3batch::task(main = false)]
async fn echo(obj: Object, job: Job) -> Result<String, TaskError> {
    Ok(format!("{} {}", job.id, obj.key))
}

/// A task served through the facade's names only.
#[tokio::test]
async fn a_task_runs_through_the_facades_names() {
    fn is_task<T: TaskFn<A>, A>(_: &T) {}
    is_task(&echo);
    let options: Options = Options::builder().concurrency(2).build();
    let event = EventBuilder::v1().job_id("j").object("b", "a b");
    let response: Result<Response, InvocationError> =
        invoke_with(echo, options, event, Context::default()).await;
    let results: Vec<TaskResult> = response.unwrap().results;
    assert_eq!(results[0].result_code, ResultCode::Succeeded);
    assert_eq!(results[0].result_string, "j a b");
    assert_eq!(decode_key("a+b").unwrap(), "a b");
    assert_eq!(classify(Some("SlowDown"), Some(503)), ErrorKind::Temporary);
}
