//! The safety net as a real Lambda: `examples/s3_probe` under `cargo lambda watch`, invoked
//! through the Lambda Invoke API. A task that hangs is answered as `TemporaryFailure` before
//! the function's timeout, a task that panics as `PermanentFailure`, the other tasks of the
//! same invocation still succeed, and the instance goes on serving.

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{Invocation, LambdaWatch, Moto};

const BUCKET: &str = "safety-bucket";

/// The function's timeout under `cargo lambda watch --timeout`; `s3_probe` gives up on
/// unfinished tasks 500 ms before it.
const TIMEOUT_SECS: u64 = 4;

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
    let invoke = |event: EventBuilder| {
        let bytes = event.to_bytes();
        let watch = &watch;
        response(watch.invoke(&bytes))
    };

    // Deadline: the hanging task is a TemporaryFailure, its neighbour still succeeds, and a
    // proper response (not a timeout error) comes back.
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
            (
                "task-1",
                ResultCode::Succeeded,
                "read 12 bytes of s3://safety-bucket/ok/data.txt"
            ),
        ]
    );

    // The same instance serves the next event.
    let r = invoke(EventBuilder::v2().object(BUCKET, "ok/data.txt"));
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");

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
            (
                "task-1",
                ResultCode::Succeeded,
                "read 12 bytes of s3://safety-bucket/ok/data.txt"
            ),
        ]
    );

    // And the next invocation after the panic, in both schemas.
    let r = invoke(EventBuilder::v1().object(BUCKET, "ok/data.txt"));
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
    // One process served all of it: the watch log shows no second start.
    drop(watch);
}
