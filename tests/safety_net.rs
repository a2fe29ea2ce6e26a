//! The safety net as a real Lambda: `examples/s3_probe` under `cargo lambda watch`, invoked
//! through the Lambda Invoke API. A task that hangs is answered as `TemporaryFailure` before
//! the function's timeout, a task that panics as `PermanentFailure`, the other tasks of the
//! same invocation still succeed, and the same instance (one process id) goes on serving.

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{Invocation, LambdaWatch, Moto};

const BUCKET: &str = "safety-bucket";

/// The function's timeout under `cargo lambda watch --timeout`. `s3_probe` gives up on
/// unfinished tasks 3 s before it (its `deadline_margin_ms`), so the hang's answer has 3 s to
/// reach watch before watch would answer 408 instead: room for a loaded machine. (That the
/// margin is the one set, not the default, is shown by
/// `renamed_crate::deadline_margin_given_up_before_the_default_would`.)
const TIMEOUT_SECS: u64 = 10;

fn response(inv: Invocation) -> Response {
    assert_eq!(inv.status, 200, "{inv:?}");
    assert_eq!(inv.function_error, None, "{inv:?}");
    serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body))
}

fn codes(r: &Response) -> Vec<(&str, ResultCode, &str)> {
    r.results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect()
}

/// The process id of the instance serving `watch`, asked with `s3_probe`'s `pid/` key.
fn pid(inv: Invocation) -> String {
    let r = response(inv);
    assert_eq!(r.results.len(), 1, "{r:?}");
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
    r.results[0]
        .result_string
        .strip_prefix("pid ")
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_owned()
}

async fn setup(moto: &Moto) {
    let s3 = moto.client().await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("ok/data.txt")
        .body(b"twelve bytes".to_vec().into())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hang_and_panic_are_answered_and_the_instance_serves_on() {
    let moto = Moto::start();
    setup(&moto).await;
    let watch = tokio::task::spawn_blocking({
        let env = moto.env();
        move || LambdaWatch::start("s3_probe", &env, Some(TIMEOUT_SECS))
    })
    .await
    .unwrap();
    // Started and warm before anything runs against the function's timeout.
    let first_pid =
        pid(watch.warm_up(&EventBuilder::v2().object(BUCKET, "pid/warm-up").to_bytes()));
    // Every invocation ends with a `pid/` task: one process served all of them, the hang and
    // the panic included.
    let invoke = |event: EventBuilder| {
        let mut r = response(watch.invoke(&event.object(BUCKET, "pid/check").to_bytes()));
        let last = r
            .results
            .pop()
            .unwrap_or_else(|| panic!("no results: {r:?}"));
        assert_eq!(
            (last.result_code, last.result_string.as_str()),
            (ResultCode::Succeeded, format!("pid {first_pid}").as_str()),
            "another process answered:\n{}",
            watch.log()
        );
        r
    };
    let ok = |task_id| {
        (
            task_id,
            ResultCode::Succeeded,
            "read 12 bytes of s3://safety-bucket/ok/data.txt",
        )
    };

    // Deadline: the hanging task is a TemporaryFailure, its neighbour still succeeds, and a
    // proper response (not watch's 408 at the timeout) comes back.
    let r = invoke(
        EventBuilder::v1()
            .object(BUCKET, "hang/forever.txt")
            .object(BUCKET, "ok/data.txt"),
    );
    assert_eq!(
        codes(&r),
        [
            (
                "task-0",
                ResultCode::TemporaryFailure,
                "did not finish before the Lambda deadline"
            ),
            ok("task-1"),
        ]
    );

    // The same instance serves the next event.
    let r = invoke(EventBuilder::v2().object(BUCKET, "ok/data.txt"));
    assert_eq!(codes(&r), [ok("task-0")]);

    // Panic: that task's PermanentFailure, the second task of the invocation succeeds.
    let r = invoke(
        EventBuilder::v2()
            .object(BUCKET, "panic/now.txt")
            .object(BUCKET, "ok/data.txt"),
    );
    assert_eq!(
        codes(&r),
        [
            (
                "task-0",
                ResultCode::PermanentFailure,
                "task panicked: asked to panic on panic/now.txt"
            ),
            ok("task-1"),
        ]
    );

    // And the next invocations after the panic, in both schemas.
    let r = invoke(EventBuilder::v1().object(BUCKET, "ok/data.txt"));
    assert_eq!(codes(&r), [ok("task-0")]);
    let r = invoke(EventBuilder::v2().object(BUCKET, "ok/data.txt"));
    assert_eq!(codes(&r), [ok("task-0")]);
    drop(watch);
}
