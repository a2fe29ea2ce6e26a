//! Metrics through the Lambda Runtime API: `examples/hello` served by `cargo lambda watch`
//! with `S3BATCH_METRICS_NAMESPACE` and `POWERTOOLS_SERVICE_NAME` set, invoked twice; the EMF
//! documents are read back from the function's log, validated against AWS's schema
//! (tests/fixtures/emf-schema.json) and checked: one per invocation, its counts, the cold
//! start in the first only, the ids as properties, no object key anywhere.

use s3batch_testkit::{workspace_root, LambdaWatch};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The EMF documents in the log: the lines that are JSON objects with `_aws`.
fn documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| l.starts_with("{\"_aws\":"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn each_invocation_logs_one_valid_document() {
    let env = [
        ("S3BATCH_METRICS_NAMESPACE", "S3Batch/WatchTest"),
        ("POWERTOOLS_SERVICE_NAME", "hello-svc"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let watch = LambdaWatch::start("hello", &env, None);
    let event = std::fs::read(workspace_root().join("examples/events/hello-v2.json")).unwrap();
    for _ in 0..2 {
        let inv = watch.warm_up(&event);
        assert_eq!(inv.status, 200, "{inv:?}\n{}", watch.log());
    }
    // Each document is written before its response is sent; the log file may lag a little.
    let started = Instant::now();
    let docs = loop {
        let docs = documents(&watch.log());
        if docs.len() >= 2 || started.elapsed() > Duration::from_secs(120) {
            break docs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = watch.log();
    assert_eq!(docs.len(), 2, "one document per invocation:\n{log}");

    let path = workspace_root().join("s3batch-core/tests/fixtures/emf-schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    for d in &docs {
        let errors: Vec<String> = validator.iter_errors(d).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{d}\n{errors:#?}");
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "S3Batch/WatchTest");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["FunctionName", "Service"]])
        );
        assert_eq!(d["FunctionName"], "hello");
        assert_eq!(d["Service"], "hello-svc");
        assert_eq!(d["JobId"], "ade3a8c2-3f38-4cbe-a2ae-b66a7c62fbbf");
        assert_eq!(d["InvocationId"], "aGVsbG8tdjI");
        assert!(!d["RequestId"].as_str().unwrap().is_empty());
        // hello-v2.json: one success, one panic, one temporary failure, one key that does not
        // decode (a permanent failure before the task runs).
        for (name, value) in [
            ("Tasks", 4),
            ("TasksSucceeded", 1),
            ("TasksTemporaryFailure", 1),
            ("TasksPermanentFailure", 2),
            ("TaskPanics", 1),
            ("ErrorsOther", 1),
        ] {
            assert_eq!(d[name], value, "{name} in {d}");
        }
        // Counts of zero are left out (alarms use `FILL(m, 0)`).
        for name in [
            "TasksAtDeadline",
            "ErrorsThrottling",
            "ErrorsAccessDenied",
            "ErrorsMissingKey",
        ] {
            assert!(d.get(name).is_none(), "{name} in {d}");
        }
        assert_eq!(d["TaskDuration"].as_array().unwrap().len(), 3, "{d}");
        // Object keys never go in.
        let text = d.to_string();
        for key in ["reports/", "panic.txt", "fail-temporary", "FF%FE"] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }
    assert_eq!(docs[0]["ColdStart"], 1);
    assert!(docs[1].get("ColdStart").is_none());
    assert_ne!(docs[0]["RequestId"], docs[1]["RequestId"]);
}
