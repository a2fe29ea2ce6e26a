//! `examples/hello`, unchanged, served by `cargo lambda watch` and driven by both engines'
//! events: S3 Batch's, a Step Functions Distributed Map batch (`ItemBatcher`) and a single
//! item, through `cargo lambda invoke --data-file` and the Invoke API. The attribute's
//! Distributed Map options are observed on `tests/renamed-crate`'s `map_options` binary.

use s3batch::map::{FailedBatch, MapResponse};
use s3batch::{Response, ResultCode};
use s3batch_testkit::{build_package, target_dir, workspace_root, LambdaWatch};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    workspace_root()
        .join("tests/fixtures/distributed-map")
        .join(name)
}

/// `cargo lambda invoke --data-file`: the answer's JSON, the call having succeeded.
fn invoke_file(watch: &LambdaWatch, path: &std::path::Path) -> String {
    let out = watch.invoke_cli(path);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "cargo lambda invoke {}: {stdout}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn rows(m: &MapResponse) -> Vec<(Option<&str>, Option<&str>, ResultCode, &str)> {
    m.results
        .iter()
        .map(|r| {
            (
                r.bucket.as_deref(),
                r.key.as_deref(),
                r.result_code,
                r.result_string.as_str(),
            )
        })
        .collect()
}

/// A function error through the Invoke API: its `errorType` and `errorMessage`.
fn function_error(watch: &LambdaWatch, event: &[u8]) -> (String, String) {
    let inv = watch.invoke(event);
    // cargo lambda watch reports a function error as HTTP 500 with the error document.
    assert_eq!(inv.status, 500, "{inv:?}");
    let err: serde_json::Value = serde_json::from_str(&inv.body).unwrap();
    (
        err["errorType"].as_str().unwrap().to_owned(),
        err["errorMessage"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn hello_serves_both_engines() {
    let watch = LambdaWatch::start("hello", &[], None);

    // S3 Batch Operations, as before.
    let v1: Response = serde_json::from_str(&invoke_file(
        &watch,
        &workspace_root().join("examples/events/hello-v1.json"),
    ))
    .unwrap();
    assert_eq!(v1.invocation_id, "aGVsbG8tdjE");
    assert_eq!(
        (
            v1.results[0].result_code,
            v1.results[0].result_string.as_str()
        ),
        (
            ResultCode::Succeeded,
            "hello s3://example-bucket/customer images/imageé1.jpg"
        )
    );

    // A Distributed Map batch of listing items: the bucket from BatchInput, keys raw.
    let out = invoke_file(&watch, &fixture("listing-batch.json"));
    assert_eq!(
        out,
        r#"{"results":[{"bucket":"listing-bucket","key":"photos/a b+c.jpg","versionId":null,"resultCode":"Succeeded","resultString":"hello s3://listing-bucket/photos/a b+c.jpg"},{"bucket":"listing-bucket","key":"photos/é 100%.jpg","versionId":null,"resultCode":"Succeeded","resultString":"hello s3://listing-bucket/photos/é 100%.jpg"},{"bucket":"listing-bucket","key":"photos/","versionId":null,"resultCode":"Succeeded","resultString":"hello s3://listing-bucket/photos/"}]}"#
    );

    // One item after an ItemSelector.
    let m: MapResponse =
        serde_json::from_str(&invoke_file(&watch, &fixture("listing-item.json"))).unwrap();
    assert_eq!(
        rows(&m),
        [(
            Some("listing-bucket"),
            Some("photos/a b+c.jpg"),
            ResultCode::Succeeded,
            "hello s3://listing-bucket/photos/a b+c.jpg"
        )]
    );

    // JSON and JSONL readers' batches.
    for (file, expected) in [
        (
            "json-batch.json",
            &[
                "hello s3://json-bucket/logs/2024/01/01.json",
                "hello s3://json-bucket/logs/ü ñ.json",
            ][..],
        ),
        (
            "jsonl-batch.json",
            &[
                "hello s3://jsonl-bucket/lines/one.txt",
                "hello s3://jsonl-bucket/lines/two three.txt",
            ],
        ),
    ] {
        let m: MapResponse = serde_json::from_str(&invoke_file(&watch, &fixture(file))).unwrap();
        let got: Vec<&str> = m.results.iter().map(|r| r.result_string.as_str()).collect();
        assert_eq!(got, expected, "{file}");
    }

    // The default policy, FailBatch: an item that fails (the CSV row with an empty bucket)
    // fails the child with a named errorType, every item's result in the message.
    let (error_type, message) =
        function_error(&watch, &std::fs::read(fixture("csv-batch.json")).unwrap());
    assert_eq!(error_type, "S3Batch.PermanentFailure");
    let doc: FailedBatch = serde_json::from_str(&message).unwrap();
    let got: Vec<(ResultCode, &str)> = doc
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ResultCode::Succeeded,
                "hello s3://csv-bucket/data/2024 report.csv"
            ),
            (ResultCode::Succeeded, "hello s3://csv-bucket/data/a+b.csv"),
            (
                ResultCode::PermanentFailure,
                "invalid item: `Bucket` is empty"
            ),
        ]
    );
    let (error_type, message) = function_error(
        &watch,
        br#"{"Items":[{"Key":"ok"},{"Key":"fail-temporary.txt"},{"Key":"panic.txt"}],"BatchInput":{"Bucket":"b"}}"#,
    );
    assert_eq!(error_type, "S3Batch.TemporaryFailure");
    let doc: FailedBatch = serde_json::from_str(&message).unwrap();
    assert_eq!((doc.failed, doc.temporary), (2, 1));
    assert_eq!(
        doc.results[2].result_string,
        "task panicked: asked to panic on panic.txt"
    );

    // Shapes refused by name.
    let (error_type, message) = function_error(
        &watch,
        &std::fs::read(fixture("hostile-items-not-array.json")).unwrap(),
    );
    assert_eq!(error_type, "S3Batch.InvalidEvent");
    assert!(message.starts_with("`Items` is an object"), "{message}");
    let (error_type, message) = function_error(&watch, br#"{"Records":[]}"#);
    assert_eq!(error_type, "S3Batch.UnrecognizedEvent");
    assert!(message.contains("\"Items\""), "{message}");

    // The instance keeps serving S3 Batch after all that.
    let ok = watch
        .invoke(br#"{"invocationId":"i","tasks":[{"taskId":"t","s3Key":"k","s3Bucket":"b"}]}"#);
    assert_eq!((ok.status, &ok.function_error), (200, &None), "{ok:?}");
    let ok: Response = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(ok.results[0].result_string, "hello s3://b/k");
}

/// `#[task(map_failure = "report", map_key_encoding = "url")]` served: a failed item leaves
/// the child successful with every result, and keys are URL-decoded (the result echoes the
/// key as it arrived).
#[test]
fn attribute_options_reach_the_served_handler() {
    build_package("renamed-crate");
    let watch = LambdaWatch::serve_binary(&target_dir().join("debug").join("map_options"));
    let inv = watch.invoke(
        br#"{"Items":[{"Key":"a+b%2Bc.txt"},{"Key":"fail.txt"}],"BatchInput":{"Bucket":"b"}}"#,
    );
    assert_eq!((inv.status, &inv.function_error), (200, &None), "{inv:?}");
    let m: MapResponse = serde_json::from_str(&inv.body).unwrap();
    assert_eq!(
        rows(&m),
        [
            (
                Some("b"),
                Some("a+b%2Bc.txt"),
                ResultCode::Succeeded,
                "s3://b/a b+c.txt"
            ),
            (
                Some("b"),
                Some("fail.txt"),
                ResultCode::TemporaryFailure,
                "fail.txt failed"
            ),
        ]
    );
}
