//! Faults between the function and S3: `examples/s3_probe` (one GetObject per task) runs under
//! `cargo lambda watch` with its S3 endpoint pointed at a fault-injecting proxy in front of
//! moto. Each task's key picks its fault, so one invocation shows them all, after the SDK's
//! own retries (standard mode, 3 attempts).

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{Fault, FaultProxy, LambdaWatch, Moto};
use std::time::Duration;

const BUCKET: &str = "fault-bucket";

/// `s3_probe` gives up 3 s before this (its `deadline_margin_ms = 3000`); the stall lasts far
/// longer.
const TIMEOUT_SECS: u64 = 12;

fn rules() -> Vec<(&'static str, Fault)> {
    vec![
        ("slow-down/", Fault::slow_down()),
        ("internal-error/", Fault::internal_error()),
        ("request-timeout/", Fault::request_timeout()),
        ("throttling/", Fault::throttling()),
        (
            "too-many/",
            Fault::error(429, "TooManyRequestsException", "Too many"),
        ),
        ("bad-gateway/", Fault::error(502, "BadGateway", "upstream")),
        ("dropped/", Fault::Drop),
        ("access-denied/", Fault::access_denied()),
        ("stall/", Fault::Stall(Duration::from_secs(600))),
    ]
}

async fn setup(moto: &Moto) {
    let s3 = moto.client().await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    // Every faulty key exists in moto: only the proxy makes its request fail.
    for (prefix, _) in rules() {
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{prefix}object.txt"))
            .body(b"data".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    s3.put_object()
        .bucket(BUCKET)
        .key("ok/object.txt")
        .body(b"data".to_vec().into())
        .send()
        .await
        .unwrap();
}

fn invoke(watch: &LambdaWatch, event: EventBuilder) -> Response {
    let inv = watch.invoke(&event.to_bytes());
    assert_eq!(inv.status, 200, "{inv:?}\n{}", watch.log());
    assert_eq!(inv.function_error, None, "{inv:?}");
    serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body))
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_faults_become_the_right_result_codes() {
    let moto = Moto::start();
    setup(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint(), rules());
    let env = proxy.env();
    let watch = tokio::task::spawn_blocking(move || {
        LambdaWatch::start("s3_probe", &env, Some(TIMEOUT_SECS))
    })
    .await
    .unwrap();

    // (key, code, what the message must contain)
    let cases: &[(&str, ResultCode, &[&str])] = &[
        ("ok/object.txt", ResultCode::Succeeded, &["read 4 bytes"]),
        (
            "slow-down/object.txt",
            ResultCode::TemporaryFailure,
            &[
                "GetObject slow-down/object.txt",
                "SlowDown: Please reduce your request rate.",
                "(HTTP 503)",
            ],
        ),
        (
            "internal-error/object.txt",
            ResultCode::TemporaryFailure,
            &[
                "InternalError: We encountered an internal error",
                "(HTTP 500)",
            ],
        ),
        (
            "request-timeout/object.txt",
            ResultCode::TemporaryFailure,
            &["RequestTimeout: Your socket connection", "(HTTP 400)"],
        ),
        (
            "throttling/object.txt",
            ResultCode::TemporaryFailure,
            &["Throttling: Rate exceeded", "(HTTP 400)"],
        ),
        (
            "too-many/object.txt",
            ResultCode::TemporaryFailure,
            &["TooManyRequestsException: Too many", "(HTTP 429)"],
        ),
        (
            "bad-gateway/object.txt",
            ResultCode::TemporaryFailure,
            &["(HTTP 502)"],
        ),
        (
            "dropped/object.txt",
            ResultCode::TemporaryFailure,
            &["GetObject dropped/object.txt", "S3 request failed to send"],
        ),
        (
            "access-denied/object.txt",
            ResultCode::PermanentFailure,
            &["AccessDenied: Access Denied", "(HTTP 403)"],
        ),
        (
            "missing/object.txt",
            ResultCode::PermanentFailure,
            &["NoSuchKey", "(HTTP 404)"],
        ),
    ];
    let mut event = EventBuilder::v1();
    for (key, _, _) in cases {
        event = event.object(BUCKET, key);
    }
    let r = invoke(&watch, event);
    // Shown with --nocapture: the messages a completion report would carry.
    for result in &r.results {
        eprintln!("{:?} {}", result.result_code, result.result_string);
    }
    assert_eq!(r.results.len(), cases.len());
    for (i, ((key, code, parts), result)) in cases.iter().zip(&r.results).enumerate() {
        assert_eq!(result.task_id, format!("task-{i}"));
        assert_eq!(result.result_code, *code, "{key}: {result:?}");
        for part in *parts {
            assert!(
                result.result_string.contains(part),
                "{key}: {:?} lacks {part:?}",
                result.result_string
            );
        }
    }
    // The SDK retried every transient fault (3 attempts) before the task saw the error, and
    // did not retry the permanent one.
    for prefix in [
        "slow-down/",
        "internal-error/",
        "request-timeout/",
        "throttling/",
        "too-many/",
        "bad-gateway/",
        "dropped/",
    ] {
        assert_eq!(proxy.hits(prefix), 3, "{prefix}");
    }
    assert_eq!(proxy.hits("access-denied/"), 1);

    // A stall longer than the Lambda deadline: the safety net answers before the timeout,
    // and the task beside it is unaffected.
    let r = invoke(
        &watch,
        EventBuilder::v2()
            .object(BUCKET, "stall/object.txt")
            .object(BUCKET, "ok/object.txt"),
    );
    assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
    assert_eq!(
        r.results[0].result_string,
        "did not finish before the Lambda deadline"
    );
    assert_eq!(r.results[1].result_code, ResultCode::Succeeded, "{r:?}");
    assert_eq!(proxy.hits("stall/"), 1);

    // The instance serves the next event.
    let r = invoke(&watch, EventBuilder::v1().object(BUCKET, "ok/object.txt"));
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
}
