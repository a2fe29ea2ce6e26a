//! Faults in the event and in the response, through a real Lambda: `examples/hello` served by
//! `cargo lambda watch` and invoked with raw bytes over the Lambda Invoke API. This is the
//! runtime path (`s3batch::run` and lambda_runtime), which receives the event differently
//! from `Handler::handle_bytes`.

use s3batch::{Response, ResultCode};
use s3batch_testkit::LambdaWatch;

/// Lambda's limit on a response payload.
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

fn answer(watch: &LambdaWatch, event: &[u8]) -> Response {
    let out = watch.invoke(event);
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.function_error, None, "{}", out.body);
    serde_json::from_str(&out.body).unwrap_or_else(|e| panic!("{e}: {}", out.body))
}

#[test]
fn event_and_response_faults_through_a_real_lambda() {
    let watch = LambdaWatch::start("hello", &[], None);

    // Strings that are not valid Unicode, and user arguments nested past serde_json's
    // recursion limit: only the tasks holding them fail.
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let mut event = format!(
        r#"{{"invocationSchemaVersion":"2.0","invocationId":"inv-1","job":{{"id":"j","userArguments":{{"deep":{deep}}}}},"tasks":[
          {{"taskId":"good","s3Key":"a+b.txt","s3VersionId":null,"s3Bucket":"bucket"}},
          {{"taskId":"bad-utf8","s3Key":"BAD","s3VersionId":null,"s3Bucket":"bucket"}},
          {{"taskId":"id\ud800","s3Key":"k","s3VersionId":null,"s3Bucket":"bucket"}},
          {{"taskId":"bad-surrogate","s3Key":"x\udc00","s3VersionId":null,"s3Bucket":"bucket"}}]}}"#
    )
    .into_bytes();
    let at = event.windows(3).position(|w| w == b"BAD").unwrap();
    event.splice(at..at + 3, [b'k', 0xFF, b'k']);
    let r = answer(&watch, &event);
    assert_eq!(r.invocation_id, "inv-1");
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect();
    let unreadable = |field: &str, lossy: &str| {
        format!(
            "invalid task: `{field}` is not valid Unicode (invalid UTF-8 or an unpaired surrogate \
             escape; read as {lossy:?}, U+FFFD marking what could not be read)"
        )
    };
    assert_eq!(
        got,
        [
            ("good", ResultCode::Succeeded, "hello s3://bucket/a b.txt"),
            (
                "bad-utf8",
                ResultCode::PermanentFailure,
                unreadable("s3Key", "k\u{fffd}k").as_str()
            ),
            (
                "id\u{fffd}",
                ResultCode::PermanentFailure,
                unreadable("taskId", "id\u{fffd}").as_str()
            ),
            (
                "bad-surrogate",
                ResultCode::PermanentFailure,
                unreadable("s3Key", "x\u{fffd}").as_str()
            ),
        ]
    );

    // The issue's 6.7 MB response: 1,100 tasks in a 3.4 MB event, each answered with 1,024
    // bytes (the default cap) that JSON escapes as 6 bytes each.
    let key = "%01".repeat(1000);
    let tasks: Vec<String> = (0..1100)
        .map(|i| {
            format!(
                r#"{{"taskId":"t{i}","s3Key":"{key}","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}}"#
            )
        })
        .collect();
    let event = format!(
        r#"{{"invocationSchemaVersion":"1.0","invocationId":"inv-2","job":{{"id":"j"}},"tasks":[{}]}}"#,
        tasks.join(",")
    );
    assert!(event.len() > 3_300_000 && event.len() < LAMBDA_RESPONSE_LIMIT);
    let out = watch.invoke(event.as_bytes());
    assert_eq!(out.function_error, None);
    assert!(
        out.body.len() <= LAMBDA_RESPONSE_LIMIT,
        "response of {} bytes",
        out.body.len()
    );
    let r: Response = serde_json::from_str(&out.body).unwrap();
    assert_eq!(r.results.len(), 1100);
    for (i, res) in r.results.iter().enumerate() {
        assert_eq!(res.task_id, format!("t{i}"));
        assert_eq!(res.result_code, ResultCode::Succeeded);
        assert!(res.result_string.starts_with("hello s3://b/\u{1}"));
        assert!(res.result_string.ends_with(" bytes]"), "{i}");
    }

    // The instance serves on.
    let r = answer(
        &watch,
        br#"{"invocationSchemaVersion":"1.0","invocationId":"inv-3","job":{"id":"j"},"tasks":[
          {"taskId":"t","s3Key":"after","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}]}"#,
    );
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].result_string, "hello s3://b/after");
}

/// Polls the watch log until a line satisfies `found` (the function's output reaches it
/// asynchronously).
fn wait_for_log(watch: &LambdaWatch, found: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let log = watch.log();
        if log.lines().any(&found) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the awaited line never reached the log:\n{}", watch.log());
}

#[test]
fn keys_cannot_forge_log_lines_through_a_real_lambda() {
    // Decoded: "fail-permanent\nERROR forged: all tasks failed\x1b[31m red".
    let key = "fail-permanent%0AERROR+forged%3A+all+tasks+failed%1B%5B31m+red";
    let decoded = "fail-permanent\nERROR forged: all tasks failed\x1b[31m red";
    let event = format!(
        r#"{{"invocationSchemaVersion":"1.0","invocationId":"i","job":{{"id":"j"}},"tasks":[
          {{"taskId":"t","s3Key":"{key}","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}}]}}"#
    );

    // Text logs, the default.
    let watch = LambdaWatch::start("hello", &[], None);
    let r = answer(&watch, event.as_bytes());
    assert_eq!(r.results[0].result_code, ResultCode::PermanentFailure);
    assert_eq!(
        r.results[0].result_string,
        format!("{decoded} cannot be processed")
    );
    let log = wait_for_log(&watch, |l| l.contains("cannot be processed"));
    assert!(
        log.contains(r#"key="fail-permanent\nERROR forged: all tasks failed\u{1b}[31m red""#),
        "{log}"
    );
    assert!(
        log.contains(
            r"fail-permanent\nERROR forged: all tasks failed\u{1b}[31m red cannot be processed"
        ),
        "{log}"
    );
    assert!(!log.contains("failed\x1b[31m"), "{log}");
    for line in log.lines().filter(|l| l.contains("ERROR forged")) {
        assert!(
            line.contains(r"\nERROR forged"),
            "forged line {line:?} in:\n{log}"
        );
    }
    drop(watch);

    // JSON logs: the values as they are, escaped once by JSON.
    let env = [("AWS_LAMBDA_LOG_FORMAT".to_string(), "JSON".to_string())];
    let watch = LambdaWatch::start("hello", &env, None);
    answer(&watch, event.as_bytes());
    let log = wait_for_log(&watch, |l| l.contains("cannot be processed"));
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .find(|v: &serde_json::Value| v.to_string().contains("cannot be processed"))
        .unwrap_or_else(|| panic!("no JSON line in:\n{log}"));
    assert_eq!(line["span"]["key"], decoded, "{line}");
    assert_eq!(line["span"]["task_id"], "t", "{line}");
    assert_eq!(
        line["fields"]["message"],
        format!("{decoded} cannot be processed"),
        "{line}"
    );
}
