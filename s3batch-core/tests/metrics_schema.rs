//! Every EMF document s3batch writes validates against the JSON schema AWS publishes for the
//! embedded metric format (tests/fixtures/emf-schema.json, see its README), checked with a
//! JSON-schema validator, plus the count limits the schema does not state (100 metrics per
//! document, 100 values per metric).
//!
//! The documents come from real handler runs (`Handler::handle_bytes` inside
//! `MetricsConfig::collect`), in every shape: one task, many with each kind of failure, a
//! panic, tasks cut off at the deadline, user metrics split by values and by count, `JobId` as a
//! dimension, no dimensions at all.

use s3batch_core::metrics::{
    InvocationMetrics, Metrics, MetricsConfig, Unit, MAX_METRICS_PER_DOCUMENT,
    MAX_VALUES_PER_METRIC,
};
use s3batch_core::testing::EventBuilder;
use s3batch_core::{Handler, Object, Options, TaskError};
use serde_json::Value;
use std::time::Duration;

fn validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/emf-schema.json"
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft7::new(&schema).expect("AWS's EMF schema compiles")
}

/// Validates each line of `text` as an EMF document; returns them.
fn validate(validator: &jsonschema::Validator, text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'), "documents end with a newline");
    text.lines()
        .map(|line| {
            let doc: Value = serde_json::from_str(line).expect("one JSON object per line");
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{line}\n{errors:#?}");
            // The limits the schema leaves out, and every metric's value present.
            for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                let metrics = directive["Metrics"].as_array().unwrap();
                assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DOCUMENT);
                for m in metrics {
                    let name = m["Name"].as_str().unwrap();
                    match &doc[name] {
                        Value::Number(_) => {}
                        Value::Array(values) => {
                            assert!(values.len() <= MAX_VALUES_PER_METRIC, "{name}");
                            assert!(values.iter().all(Value::is_number), "{name}");
                        }
                        other => panic!("metric {name} has value {other}"),
                    }
                }
                for set in directive["Dimensions"].as_array().unwrap() {
                    for d in set.as_array().unwrap() {
                        assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d}");
                    }
                }
            }
            doc
        })
        .collect()
}

/// A task whose outcome its key chooses, and that adds metrics of its own.
async fn task(obj: Object, metrics: Metrics) -> Result<String, TaskError> {
    metrics
        .add("KeyBytes", Unit::Bytes, obj.key.len() as f64)
        .unwrap();
    if let Some(n) = obj.key.strip_prefix("many-values-") {
        for i in 0..n.parse::<u32>().unwrap() {
            metrics
                .add("Sample", Unit::Milliseconds, f64::from(i) / 4.0)
                .unwrap();
        }
    }
    if let Some(n) = obj.key.strip_prefix("many-metrics-") {
        for i in 0..n.parse::<u32>().unwrap() {
            metrics
                .add(&format!("Custom{i}"), Unit::CountPerSecond, 1.5)
                .unwrap();
        }
    }
    match obj.key.as_str() {
        "slow" => Err(TaskError::temporary(
            "SlowDown: Please reduce your request rate. (HTTP 503)",
        )),
        "denied" => Err(TaskError::permanent(
            "AccessDenied: Access Denied (HTTP 403)",
        )),
        "gone" => Err(TaskError::permanent(
            "NoSuchKey: The specified key does not exist. (HTTP 404)",
        )),
        "odd" => Err(TaskError::permanent("the object is odd")),
        "panic" => panic!("boom"),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok("late".into())
        }
        _ => Ok("ok".into()),
    }
}

/// Runs `keys` as one invocation; its documents, validated.
async fn run(config: &MetricsConfig, options: Options, keys: &[&str]) -> Vec<Value> {
    let handler = Handler::new(task, options).await.unwrap();
    let mut event = EventBuilder::v1().job_id("job-7").invocation_id("inv-7");
    for k in keys {
        event = event.object("bucket", k);
    }
    let bytes = event.to_bytes();
    let context = lambda_runtime::Context::default();
    let (response, metrics): (_, InvocationMetrics) =
        config.collect(handler.handle_bytes(&bytes, &context)).await;
    assert_eq!(response.unwrap().results.len(), keys.len());
    let text = metrics
        .documents(config, Some("req-7"), 1_765_000_000_000)
        .unwrap();
    validate(&validator(), &text)
}

#[tokio::test]
async fn one_task_gives_one_valid_document() {
    let config = MetricsConfig::new("S3Batch/Test", Some("fn"), Some("svc")).unwrap();
    let docs = run(&config, Options::new(), &["a.txt"]).await;
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(
        (d["Tasks"].clone(), d["TasksSucceeded"].clone()),
        (1.into(), 1.into())
    );
    assert!(d["TaskDuration"].is_number());
    assert_eq!(d["KeyBytes"], 5.0);
    // Counts of zero are left out (`FILL(m, 0)` in an alarm).
    assert!(d.get("TasksPermanentFailure").is_none() && d.get("ErrorsOther").is_none());
    assert_eq!(
        (d["JobId"].as_str(), d["InvocationId"].as_str()),
        (Some("job-7"), Some("inv-7"))
    );
    // Object keys never go in.
    assert!(!serde_json::to_string(d).unwrap().contains("a.txt"));
}

#[tokio::test(start_paused = true)]
async fn failures_panics_and_the_deadline_give_valid_documents() {
    let config = MetricsConfig::new("S3Batch/Test", Some("fn"), None)
        .unwrap()
        .with_job_dimension(true);
    // The fallback timeout is the deadline (the default context has none); the paused clock
    // runs on to it.
    let options = Options::builder()
        .fallback_timeout(Duration::from_secs(5))
        .deadline_margin(Duration::from_secs(1))
        .build();
    let keys = ["ok", "slow", "denied", "gone", "odd", "panic", "hang"];
    let docs = run(&config, options, &keys).await;
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    for (name, value) in [
        ("Tasks", 7),
        ("TasksSucceeded", 1),
        ("TasksTemporaryFailure", 2),
        ("TasksPermanentFailure", 4),
        ("TasksAtDeadline", 1),
        ("TaskPanics", 1),
        ("ErrorsThrottling", 1),
        ("ErrorsAccessDenied", 1),
        ("ErrorsMissingKey", 1),
        ("ErrorsOther", 1),
    ] {
        assert_eq!(d[name], value, "{name}");
    }
    // Six runs finished (the one at the deadline has no duration).
    assert_eq!(d["TaskDuration"].as_array().unwrap().len(), 6);
    assert_eq!(
        d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["FunctionName", "JobId"]])
    );
}

#[tokio::test]
async fn split_documents_are_valid_and_lose_nothing() {
    let config = MetricsConfig::new("S3Batch/Test", None, None).unwrap();
    let docs = run(
        &config,
        Options::new(),
        &["many-values-250", "many-metrics-180", "x"],
    )
    .await;
    // Values: 250 `Sample`s in 3 rounds; metrics: 3 of s3batch's (`Tasks`, `TasksSucceeded`,
    // `TaskDuration`: counts of zero are left out) + KeyBytes + Sample + 180.
    let samples: Vec<f64> = docs
        .iter()
        .filter_map(|d| d.get("Sample"))
        .flat_map(|v| v.as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        samples,
        (0..250).map(|i| f64::from(i) / 4.0).collect::<Vec<_>>()
    );
    let mut names: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect();
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3 + 2 + 180);
    // `Sample` is named in each of its three documents, the rest once.
    assert_eq!(all, names.len() + 2);
    // 185 metrics in round 0 (two documents), then `Sample`'s second and third hundred.
    assert_eq!(docs.len(), 4);
    assert_eq!(
        docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([[]])
    );
}

/// A Step Functions Distributed Map batch gives the same document, each item a task.
#[tokio::test]
async fn a_distributed_map_batch_counts_each_item_as_a_task() {
    let config = MetricsConfig::new("S3Batch/Test", Some("fn"), None).unwrap();
    let handler = Handler::new(task, Options::new()).await.unwrap();
    let batch = br#"{"Items":[{"Bucket":"b","Key":"ok"},{"Bucket":"b","Key":"gone"},
        {"Bucket":"b","Key":"slow"}]}"#;
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-map".into();
    let (_answer, metrics) = config.collect(handler.serve_bytes(batch, &context)).await;
    let text = metrics.documents(&config, Some("req-map"), 1).unwrap();
    let docs = validate(&validator(), &text);
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    for (name, value) in [
        ("Tasks", 3),
        ("TasksSucceeded", 1),
        ("TasksTemporaryFailure", 1),
        ("TasksPermanentFailure", 1),
        ("ErrorsMissingKey", 1),
        ("ErrorsThrottling", 1),
    ] {
        assert_eq!(d[name], value, "{name} in {d}");
    }
    assert_eq!(d["TaskDuration"].as_array().unwrap().len(), 3);
    assert_eq!(d["InvocationId"], "req-map");
}
