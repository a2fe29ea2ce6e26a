//! `examples/hello` as a real Lambda: served by `cargo lambda watch`, called with
//! `cargo lambda invoke --data-file` on each sample event in `examples/events/`.

use s3batch::{Response, ResultCode};
use s3batch_testkit::{workspace_root, LambdaWatch};

fn invoke(watch: &LambdaWatch, event: &str) -> Response {
    let out = watch.invoke_cli(&workspace_root().join("examples/events").join(event));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda invoke {event} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{event}: {e}: {stdout}"))
}

#[test]
fn hello_answers_each_sample_event() {
    let watch = LambdaWatch::start("hello", &[], None);

    let v1 = invoke(&watch, "hello-v1.json");
    assert_eq!(v1.invocation_schema_version, "1.0");
    assert_eq!(v1.invocation_id, "aGVsbG8tdjE");
    assert_eq!(v1.treat_missing_keys_as, ResultCode::PermanentFailure);
    assert_eq!(v1.results.len(), 1);
    assert_eq!(v1.results[0].task_id, "dGFzay0x");
    assert_eq!(v1.results[0].result_code, ResultCode::Succeeded);
    assert_eq!(
        v1.results[0].result_string,
        "hello s3://example-bucket/customer images/imageé1.jpg"
    );

    let v2 = invoke(&watch, "hello-v2.json");
    assert_eq!(v2.invocation_schema_version, "2.0");
    let got: Vec<(&str, ResultCode, &str)> = v2
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("dGFzay0y", ResultCode::Succeeded, "hello s3://source-bucket/reports/2024 Q1+Q2.csv"),
            ("dGFzay0z", ResultCode::PermanentFailure, "task panicked: asked to panic on please panic.txt"),
            ("dGFzay00", ResultCode::TemporaryFailure, "fail-temporary.txt is busy, try again"),
            (
                "dGFzay01",
                ResultCode::PermanentFailure,
                "invalid task: s3Key \"%FF%FE.bin\" does not decode: not valid UTF-8 after percent-decoding (invalid byte at 0)"
            ),
        ]
    );

    // The shared contract vectors too, through the same running instance; the expected
    // buckets and keys are the ones tests/fixtures/vectors/README.md gives.
    for (vector, expected) in [
        (
            "event-v1.json",
            &[(
                "dGFza2lkZ29lc2hlcmUK",
                "hello s3://example-bucket/customer images/imageé1.jpg",
            )][..],
        ),
        (
            "event-v2.json",
            &[(
                "dGFza2lkZ29lc2hlcmUK",
                "hello s3://source-bucket/reports/2024 Q1+Q2.csv",
            )],
        ),
        (
            "event-v1-regional-arn.json",
            &[
                ("t-1", "hello s3://awsexamplebucket/a.txt"),
                ("t-2", "hello s3://china-bucket/b/c.txt"),
            ],
        ),
    ] {
        let out = watch.invoke_cli(&workspace_root().join("tests/fixtures/vectors").join(vector));
        assert!(
            out.status.success(),
            "{vector}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Response = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<(&str, ResultCode, &str)> = r
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
            .collect();
        let expected: Vec<(&str, ResultCode, &str)> = expected
            .iter()
            .map(|&(id, s)| (id, ResultCode::Succeeded, s))
            .collect();
        assert_eq!(got, expected, "{vector}");
    }
}

#[test]
fn unrecoverable_event_is_an_invocation_error_naming_the_field() {
    let watch = LambdaWatch::start("hello", &[], None);
    let r = watch.invoke(br#"{"invocationSchemaVersion":"1.0","tasks":[]}"#);
    // cargo lambda watch reports a function error as HTTP 500 with the error document.
    assert_eq!(r.status, 500, "{r:?}");
    let err: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(err["errorType"], "S3BatchInvalidEvent");
    assert_eq!(
        err["errorMessage"],
        "event has no usable id: missing `invocationId`"
    );
    // The instance keeps serving.
    let ok = watch
        .invoke(br#"{"invocationId":"i","tasks":[{"taskId":"t","s3Key":"k","s3Bucket":"b"}]}"#);
    assert_eq!((ok.status, &ok.function_error), (200, &None), "{ok:?}");
    let ok: Response = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(ok.invocation_id, "i");
    let got: Vec<(&str, ResultCode, &str)> = ok
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(got, [("t", ResultCode::Succeeded, "hello s3://b/k")]);
}

/// A JSON log line from the watch log containing `message`, waited for: the function's
/// lines reach the log as the function prints them, through `cargo lambda watch`.
fn json_line(watch: &LambdaWatch, message: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let line = watch
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
            .find(|v| v.to_string().contains(message));
        if let Some(line) = line {
            return line;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no JSON log line with {message:?} in:\n{}",
            watch.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn json_log_lines_of_failed_tasks_carry_their_task_span() {
    let env = [("AWS_LAMBDA_LOG_FORMAT".to_string(), "JSON".to_string())];
    let watch = LambdaWatch::start("hello", &env, None);
    let out = watch.invoke_cli(&workspace_root().join("examples/events/hello-v2.json"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The two tasks of hello-v2.json that log: each line is in its own task's span.
    for (message, level, task_id, key) in [
        (
            "fail-temporary.txt is busy",
            "WARN",
            "dGFzay00",
            "fail-temporary.txt",
        ),
        (
            "task panicked: asked to panic on please panic.txt",
            "ERROR",
            "dGFzay0z",
            "please panic.txt",
        ),
    ] {
        let line = json_line(&watch, message);
        assert_eq!(line["level"], level, "{line}");
        let span = &line["span"];
        assert_eq!(span["name"], "task", "{line}");
        assert_eq!(span["task_id"], task_id, "{line}");
        assert_eq!(
            span["job_id"], "ade3a8c2-3f38-4cbe-a2ae-b66a7c62fbbf",
            "{line}"
        );
        assert_eq!(span["bucket"], "source-bucket", "{line}");
        assert_eq!(span["key"], key, "{line}");
    }
}
