use super::*;
use crate::asl::MapDefinition;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type Answer = Box<dyn Fn(&Value, usize) -> Invoked + Send + Sync>;

/// A fake function: records every event, answers with `answer(event, call number)`, and
/// tracks how many invocations run at once.
#[derive(Clone)]
struct Fake(Arc<FakeInner>);

struct FakeInner {
    answer: Answer,
    events: Mutex<Vec<Value>>,
    active: AtomicUsize,
    peak: AtomicUsize,
    delay: Duration,
}

impl Fake {
    fn new(
        delay: Duration,
        answer: impl Fn(&Value, usize) -> Invoked + Send + Sync + 'static,
    ) -> Self {
        Fake(Arc::new(FakeInner {
            answer: Box::new(answer),
            events: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            delay,
        }))
    }

    fn events(&self) -> Vec<Value> {
        self.0.events.lock().unwrap().clone()
    }
}

impl Invoke for Fake {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        let n = {
            let mut events = self.0.events.lock().unwrap();
            events.push(event.clone());
            events.len()
        };
        let active = self.0.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(active, Ordering::SeqCst);
        tokio::time::sleep(self.0.delay).await;
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        (self.0.answer)(&event, n)
    }
}

fn ok(v: Value) -> Invoked {
    Invoked::Response(serde_json::to_vec(&v).unwrap())
}

fn function_error(error_type: &str) -> Invoked {
    Invoked::FunctionError(
        serde_json::to_vec(&json!({"errorMessage": "boom", "errorType": error_type})).unwrap(),
    )
}

fn definition(map_extra: Value, task_extra: Value) -> MapDefinition {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "End": true
    });
    task.as_object_mut()
        .unwrap()
        .extend(task_extra.as_object().unwrap().clone());
    let mut states = json!({"Call": task});
    if let Some(catch) = task_extra.get("Catch") {
        for c in catch.as_array().unwrap() {
            let next = c["Next"].as_str().unwrap();
            states[next] = if next.starts_with("Fail") {
                json!({"Type": "Fail", "Error": "Caught.Failed", "Cause": "caught"})
            } else {
                json!({"Type": "Pass", "End": true})
            };
        }
    }
    let mut map = json!({
        "Type": "Map",
        "End": true,
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "Call",
            "States": states
        }
    });
    map.as_object_mut()
        .unwrap()
        .extend(map_extra.as_object().unwrap().clone());
    MapDefinition::parse(
        &json!({"StartAt": "Map", "States": {"Map": map}}).to_string(),
        None,
    )
    .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s3batch-map-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn run(def: MapDefinition, fake: &Fake, input: Value) -> MapRunOutcome {
    let dir = tmp("run");
    let out = MapRun::new(def, fake.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("run-1")
        .run(input)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[tokio::test]
async fn batches_carry_selected_items_and_the_batch_input() {
    let def = definition(
        json!({
            "ItemSelector": {
                "Bucket.$": "$.bucket",
                "Key.$": "$$.Map.Item.Value.Key",
                "Index.$": "$$.Map.Item.Index",
                "Fixed": "$.literal"
            },
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run", "keyEncoding": "raw"}},
            "MaxConcurrency": 1
        }),
        json!({}),
    );
    let fake = Fake::new(Duration::ZERO, |_, _| ok(json!({"results": []})));
    let input = json!({"bucket": "photos", "run": 7, "items": [
        {"Key": "a b.txt", "Etag": "\"x\""}, {"Key": "c+d"}, {"Key": "é"}
    ]});
    let out = run(def, &fake, input).await;
    assert_eq!(out.status, MapStatus::Succeeded);
    let item =
        |k: &str, i: u64| json!({"Bucket": "photos", "Key": k, "Index": i, "Fixed": "$.literal"});
    assert_eq!(
        fake.events(),
        vec![
            json!({"Items": [item("a b.txt", 0), item("c+d", 1)], "BatchInput": {"run": 7, "keyEncoding": "raw"}}),
            json!({"Items": [item("é", 2)], "BatchInput": {"run": 7, "keyEncoding": "raw"}}),
        ]
    );
    assert_eq!(
        (out.item_counts, out.execution_counts),
        (
            Counts {
                succeeded: 3,
                failed: 0,
                pending: 0,
                total: 3
            },
            Counts {
                succeeded: 2,
                failed: 0,
                pending: 0,
                total: 2
            }
        )
    );
}

#[tokio::test]
async fn without_a_batcher_each_child_gets_one_item() {
    let def = definition(json!({"MaxConcurrency": 1}), json!({}));
    let fake = Fake::new(Duration::ZERO, |e, _| ok(e.clone()));
    let out = run(def, &fake, json!({"items": [{"Key": "a"}, 2, "three"]})).await;
    assert_eq!(
        fake.events(),
        vec![json!({"Key": "a"}), json!(2), json!("three")]
    );
    assert_eq!(out.item_counts.succeeded, 3);
}

#[tokio::test]
async fn batches_stay_under_max_input_bytes() {
    // Objects with a batch input, and one-byte items whose commas weigh as much as they do.
    let objects: Vec<Value> = (0..40)
        .map(|i| json!({"Key": format!("key-{i:03}")}))
        .collect();
    let digits: Vec<Value> = (0..200).map(|i| json!(i % 10)).collect();
    for (batcher, items) in [
        (
            json!({"MaxInputBytesPerBatch": 100, "BatchInput": {"b": "x"}}),
            objects,
        ),
        (json!({"MaxInputBytesPerBatch": 100}), digits),
    ] {
        let def = definition(
            json!({"ItemBatcher": batcher, "MaxConcurrency": 1}),
            json!({}),
        );
        let fake = Fake::new(Duration::ZERO, |_, _| ok(json!(null)));
        let out = run(def, &fake, json!({"items": items})).await;
        let events = fake.events();
        let mut seen = Vec::new();
        for e in &events {
            let len = serde_json::to_vec(e).unwrap().len();
            assert!(len <= 100, "{len}: {e}");
            seen.extend(e["Items"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(seen, items, "every item once, in order");
        // Each batch is full: one more item would have gone over.
        for e in &events[..events.len() - 1] {
            let mut bigger = e.clone();
            bigger["Items"]
                .as_array_mut()
                .unwrap()
                .push(items[0].clone());
            assert!(serde_json::to_vec(&bigger).unwrap().len() > 100, "{e}");
        }
        assert_eq!(out.execution_counts.succeeded, events.len() as u64);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_follows_interval_backoff_and_max_delay() {
    let def = definition(
        json!({}),
        json!({"Retry": [{"ErrorEquals": ["S3Batch.TemporaryFailure"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 3.0, "MaxDelaySeconds": 10}]}),
    );
    let fake = Fake::new(Duration::ZERO, |_, n| {
        if n <= 4 {
            function_error("S3Batch.TemporaryFailure")
        } else {
            ok(json!("done"))
        }
    });
    let start = tokio::time::Instant::now();
    let out = run(def, &fake, json!({"items": ["x"]})).await;
    // Delays 2, 6, then 18 and 54 capped at 10: 28 s of the paused clock.
    assert_eq!(start.elapsed(), Duration::from_secs(28));
    assert_eq!(fake.events().len(), 5);
    assert_eq!(out.status, MapStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_and_the_error_name_is_the_error_type() {
    let def = definition(
        json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "p"}}}),
        json!({"Retry": [
            {"ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}
        ]}),
    );
    let fake = Fake::new(Duration::ZERO, |_, _| {
        function_error("S3Batch.PermanentFailure")
    });
    let dir = tmp("names");
    let out = MapRun::new(def, fake.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("r")
        .run(json!({"items": ["x"]}))
        .await
        .unwrap();
    assert_eq!(
        fake.events().len(),
        3,
        "the first try and TaskFailed's two retries"
    );
    let MapStatus::Failed { error, .. } = &out.status else {
        panic!("{out:?}")
    };
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    let failed: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/p/r/FAILED_0.json")).unwrap()).unwrap();
    assert_eq!(failed[0]["Error"], "S3Batch.PermanentFailure");
    assert_eq!(
        failed[0]["Cause"],
        r#"{"errorMessage":"boom","errorType":"S3Batch.PermanentFailure"}"#
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_names_match_as_asl_says() {
    let e = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(error_matches(&e(&["States.ALL"]), "Lambda.Unknown"));
    assert!(error_matches(
        &e(&["States.TaskFailed"]),
        "S3Batch.TemporaryFailure"
    ));
    assert!(!error_matches(&e(&["States.TaskFailed"]), "States.Timeout"));
    assert!(!error_matches(
        &e(&["States.ALL"]),
        "States.DataLimitExceeded"
    ));
    assert!(error_matches(
        &e(&["States.DataLimitExceeded"]),
        "States.DataLimitExceeded"
    ));
    assert!(!error_matches(
        &e(&["Lambda.ServiceException"]),
        "Lambda.Unknown"
    ));
    assert!(error_matches(
        &e(&["A", "S3Batch.TemporaryFailure"]),
        "S3Batch.TemporaryFailure"
    ));
    assert_eq!(api_error_name(Some(429)), "Lambda.TooManyRequestsException");
    assert_eq!(api_error_name(Some(503)), "Lambda.ServiceException");
    assert_eq!(api_error_name(None), "Lambda.SdkClientException");
    assert_eq!(
        api_error_name(Some(404)),
        "Lambda.ResourceNotFoundException"
    );
}

#[tokio::test]
async fn catch_ends_the_child_as_its_target_says() {
    let def = definition(
        json!({"ToleratedFailureCount": 10}),
        json!({"Catch": [
            {"ErrorEquals": ["S3Batch.PermanentFailure"], "Next": "Skip"},
            {"ErrorEquals": ["States.ALL"], "Next": "FailIt"}
        ]}),
    );
    let fake = Fake::new(Duration::ZERO, |e, _| match e.as_str() {
        Some("perm") => function_error("S3Batch.PermanentFailure"),
        Some("other") => Invoked::FunctionError(
            br#"{"errorMessage":"Task timed out after 3.00 seconds"}"#.to_vec(),
        ),
        _ => ok(json!(1)),
    });
    let dir = tmp("catch");
    let mut def = def;
    def.result_writer = Some(crate::asl::ResultWriterSpec {
        bucket: "o".into(),
        prefix: String::new(),
    });
    let out = MapRun::new(def, fake.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("r")
        .run(json!({"items": ["perm", "other", "fine"]}))
        .await
        .unwrap();
    assert_eq!(out.status, MapStatus::Succeeded);
    assert_eq!((out.item_counts.succeeded, out.item_counts.failed), (2, 1));
    let read = |f: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("o/r").join(f)).unwrap()).unwrap()
    };
    let succeeded = read("SUCCEEDED_0.json");
    let outputs: Vec<Value> = succeeded
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r["Output"].as_str().unwrap()).unwrap())
        .collect();
    assert!(outputs.contains(&json!({"Error": "S3Batch.PermanentFailure", "Cause": r#"{"errorMessage":"boom","errorType":"S3Batch.PermanentFailure"}"#})), "{outputs:?}");
    assert!(
        outputs.contains(&json!({"ExecutedVersion": "$LATEST", "Payload": 1, "StatusCode": 200})),
        "{outputs:?}"
    );
    let failed = read("FAILED_0.json");
    assert_eq!(
        (failed[0]["Error"].as_str(), failed[0]["Cause"].as_str()),
        (Some("Caught.Failed"), Some("caught"))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn tolerated_failures_and_the_threshold() {
    let items: Vec<Value> = (0..10)
        .map(|i| {
            json!(if i % 3 == 0 {
                format!("bad{i}")
            } else {
                format!("ok{i}")
            })
        })
        .collect();
    let answer = |e: &Value, _: usize| {
        let item = e.get("Items").map_or(e, |items| &items[0]);
        if item.as_str().unwrap().starts_with("bad") {
            function_error("S3Batch.PermanentFailure")
        } else {
            ok(json!(null))
        }
    };
    // 4 bad items (0, 3, 6, 9): 4 tolerated, then 3 not.
    let out = run(
        definition(json!({"ToleratedFailureCount": 4}), json!({})),
        &Fake::new(Duration::ZERO, answer),
        json!({"items": items}),
    )
    .await;
    assert_eq!(out.status, MapStatus::Succeeded);
    assert_eq!(
        out.item_counts,
        Counts {
            succeeded: 6,
            failed: 4,
            pending: 0,
            total: 10
        }
    );
    let fake = Fake::new(Duration::ZERO, answer);
    let out = run(
        definition(
            json!({"ToleratedFailureCount": 3, "MaxConcurrency": 1}),
            json!({}),
        ),
        &fake,
        json!({"items": items}),
    )
    .await;
    let MapStatus::Failed { error, cause } = &out.status else {
        panic!("{out:?}")
    };
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    assert!(cause.contains("4 item(s) failed"), "{cause}");
    assert_eq!(fake.events().len(), 10, "the 4th failure is the last item");
    // Percentage: 4 of 10 is 40 %.
    let out = run(
        definition(json!({"ToleratedFailurePercentage": 40}), json!({})),
        &Fake::new(Duration::ZERO, answer),
        json!({"items": items}),
    )
    .await;
    assert_eq!(out.status, MapStatus::Succeeded);
    let out = run(
        definition(json!({"ToleratedFailurePercentage": 39.9}), json!({})),
        &Fake::new(Duration::ZERO, answer),
        json!({"items": items}),
    )
    .await;
    assert!(
        matches!(out.status, MapStatus::Failed { ref error, .. } if error == "States.ExceedToleratedFailureThreshold"),
        "{out:?}"
    );
    // Nothing tolerated by default: the run stops at the first failure, the rest pending.
    let fake = Fake::new(Duration::ZERO, answer);
    let out = run(
        definition(
            json!({"MaxConcurrency": 1, "ItemBatcher": {"MaxItemsPerBatch": 2}}),
            json!({}),
        ),
        &fake,
        json!({"items": items}),
    )
    .await;
    assert!(matches!(out.status, MapStatus::Failed { .. }));
    assert_eq!(fake.events().len(), 1);
    assert_eq!(out.item_counts.failed, 2, "every item of the failed batch");
    assert_eq!(out.execution_counts.failed, 1);
    assert!(out.item_counts.pending >= 1 && out.unread_items, "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_bounds_the_children_in_flight() {
    let items: Vec<Value> = (0..50).map(Value::from).collect();
    let fake = Fake::new(Duration::from_millis(100), |_, _| ok(json!(null)));
    let out = run(
        definition(json!({"MaxConcurrency": 7}), json!({})),
        &fake,
        json!({"items": items}),
    )
    .await;
    assert_eq!(fake.0.peak.load(Ordering::SeqCst), 7);
    assert_eq!(out.item_counts.succeeded, 50);
}

#[tokio::test]
async fn result_writer_writes_the_manifest_and_status_files() {
    let def = definition(
        json!({
            "ToleratedFailureCount": 5,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "results", "Prefix": "runs/"}}
        }),
        json!({}),
    );
    let fake = Fake::new(Duration::ZERO, |e, _| {
        if e == "bad" {
            function_error("S3Batch.PermanentFailure")
        } else {
            ok(json!({"results": [e]}))
        }
    });
    let dir = tmp("writer");
    let out = MapRun::new(def, fake, Store::Local(dir.clone()), dir.clone())
        .run_id("abc")
        .machine_name("demo")
        .run(json!({"items": ["good", "bad"]}))
        .await
        .unwrap();
    assert_eq!(
        out.result_manifest.as_deref(),
        Some("s3://results/runs/abc/manifest.json")
    );
    let base = dir.join("results/runs/abc");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(base.join("manifest.json")).unwrap()).unwrap();
    let size = |f: &str| std::fs::metadata(base.join(f)).unwrap().len();
    assert_eq!(
        manifest,
        json!({
            "DestinationBucket": "results",
            "MapRunArn": "arn:aws:states:us-east-1:000000000000:mapRun:demo/Map:abc",
            "ResultFiles": {
                "FAILED": [{"Key": "runs/abc/FAILED_0.json", "Size": size("FAILED_0.json")}],
                "PENDING": [],
                "SUCCEEDED": [{"Key": "runs/abc/SUCCEEDED_0.json", "Size": size("SUCCEEDED_0.json")}]
            }
        })
    );
    assert!(!base.join("PENDING_0.json").exists());
    let succeeded: Value =
        serde_json::from_slice(&std::fs::read(base.join("SUCCEEDED_0.json")).unwrap()).unwrap();
    let r = &succeeded[0];
    assert_eq!(r["Input"], "\"good\"");
    assert_eq!(
        r["Output"],
        r#"{"ExecutedVersion":"$LATEST","Payload":{"results":["good"]},"StatusCode":200}"#
    );
    assert_eq!(r["Status"], "SUCCEEDED");
    assert_eq!(r["RedriveStatus"], "NOT_REDRIVABLE");
    assert_eq!(
        r["StateMachineArn"],
        "arn:aws:states:us-east-1:000000000000:stateMachine:demo/Map"
    );
    let name = r["Name"].as_str().unwrap();
    assert_eq!(
        r["ExecutionArn"],
        format!("arn:aws:states:us-east-1:000000000000:execution:demo/Map:{name}")
    );
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "ExecutionArn",
            "Input",
            "InputDetails",
            "Name",
            "Output",
            "OutputDetails",
            "RedriveCount",
            "RedriveStatus",
            "RedriveStatusReason",
            "StartDate",
            "StateMachineArn",
            "Status",
            "StopDate"
        ]
    );
    let failed: Value =
        serde_json::from_slice(&std::fs::read(base.join("FAILED_0.json")).unwrap()).unwrap();
    assert_eq!(
        (
            failed[0]["Status"].as_str(),
            failed[0]["RedriveStatus"].as_str()
        ),
        (Some("FAILED"), Some("REDRIVABLE"))
    );
    assert!(failed[0].get("Output").is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn oversized_inputs_and_outputs_fail_with_data_limit_exceeded() {
    let big = "x".repeat(300 * 1024);
    let fake = Fake::new(Duration::ZERO, move |e, _| {
        if e == "small" {
            ok(json!("y".repeat(300 * 1024)))
        } else {
            ok(json!(null))
        }
    });
    let out = run(
        definition(
            json!({"ToleratedFailureCount": 5}),
            json!({"Retry": [{"ErrorEquals": ["States.ALL"]}]}),
        ),
        &fake,
        json!({"items": [big, "small"]}),
    )
    .await;
    assert_eq!(out.item_counts.failed, 2);
    assert_eq!(
        fake.events(),
        vec![json!("small")],
        "the big item never reaches the function, and States.ALL retries neither"
    );
}

#[tokio::test]
async fn input_errors_name_the_path() {
    let fake = Fake::new(Duration::ZERO, |_, _| ok(json!(null)));
    let dir = tmp("inputerr");
    let e = MapRun::new(
        definition(json!({}), json!({})),
        fake.clone(),
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run(json!({"items": {"not": "an array"}}))
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "States.Runtime: ItemsPath $.items is an object, not an array"
    );
    let out = MapRun::new(
        definition(
            json!({"ItemSelector": {"k.$": "$$.Map.Item.Value.Key"}}),
            json!({}),
        ),
        fake,
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run(json!({"items": [{"Key": "a"}, {"NoKey": 1}]}))
    .await
    .unwrap();
    assert_eq!(
        out.status,
        MapStatus::Failed {
            error: "States.Runtime".into(),
            cause: "ItemSelector, item 1: the JSONPath '$$.Map.Item.Value.Key' could not be found in the input".into()
        }
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stop_lets_children_in_flight_finish_and_starts_no_more() {
    let items: Vec<Value> = (0..10).map(Value::from).collect();
    let fake = Fake::new(Duration::from_millis(100), |_, _| ok(json!(null)));
    let dir = tmp("stop");
    let out = MapRun::new(
        definition(json!({"MaxConcurrency": 2}), json!({})),
        fake.clone(),
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run_until(
        json!({"items": items}),
        tokio::time::sleep(Duration::from_millis(150)),
    )
    .await
    .unwrap();
    assert_eq!(out.status, MapStatus::Aborted);
    // Two finished at 100 ms, two were in flight at the stop (150 ms) and finished.
    assert_eq!(fake.events(), vec![json!(0), json!(1), json!(2), json!(3)]);
    assert_eq!(out.item_counts.succeeded, 4);
    assert!(out.unread_items);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The journal: a stopped run keeps it and refuses a new run of its id; `resume` skips the
/// children that finished (they are not sent again) and writes their records with the new
/// ones; a torn last line is cut off and its child run again; failed children in the journal
/// count towards the threshold and are not run again; items that changed since the run
/// started stop the resume; the journal goes once the run has ended.
#[tokio::test]
async fn a_stopped_run_resumes_without_running_finished_children_again() {
    let items: Vec<Value> = (0..10).map(Value::from).collect();
    let input = json!({"items": items});
    let def = || {
        definition(
            json!({"MaxConcurrency": 2, "ItemBatcher": {"MaxItemsPerBatch": 2},
                   "ToleratedFailureCount": 2,
                   "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                                    "Parameters": {"Bucket": "out", "Prefix": "p"}}}),
            json!({}),
        )
    };
    // Item 3 fails (its batch [2, 3] fails: two items, within the tolerated count).
    let answer = |e: &Value, _: usize| {
        if e["Items"].as_array().unwrap().contains(&json!(3)) {
            function_error("S3Batch.PermanentFailure")
        } else {
            ok(json!({"n": e["Items"]}))
        }
    };
    let dir = tmp("resume");
    let first = Fake::new(Duration::from_millis(100), answer);
    let out = MapRun::new(def(), first.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("r")
        .run_until(
            input.clone(),
            tokio::time::sleep(Duration::from_millis(150)),
        )
        .await
        .unwrap();
    assert_eq!(out.status, MapStatus::Aborted);
    let batch = |a: i64, b: i64| json!({"Items": [a, b]});
    assert_eq!(
        first.events(),
        [batch(0, 1), batch(2, 3), batch(4, 5), batch(6, 7)]
    );
    let journal = dir.join("r/journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    // Tear the last line as a kill in the middle of its write would.
    let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let torn: Value = serde_json::from_str(text[last_start..].trim_end()).unwrap();
    std::fs::write(&journal, &text[..last_start + 10]).unwrap();

    // A new run of the same id is refused, naming --resume.
    let err = MapRun::new(def(), first.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("r")
        .run(input.clone())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("continue it with --resume"),
        "{err}"
    );

    // A resume over other items stops at the first child whose input differs.
    let other: Vec<Value> = (100..110).map(Value::from).collect();
    let err = MapRun::new(def(), first.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("r")
        .resume(true)
        .run(json!({"items": other}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("its input is not the one it started with"),
        "{err}"
    );

    let second = Fake::new(Duration::from_millis(1), answer);
    let out = MapRun::new(
        def(),
        second.clone(),
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run_id("r")
    .resume(true)
    .run(input.clone())
    .await
    .unwrap();
    assert_eq!(out.status, MapStatus::Succeeded, "{out:?}");
    // The three whole lines' children are not sent again; the torn line's is, and the rest.
    let torn_items: Value =
        serde_json::from_str::<Value>(torn["r"]["Input"].as_str().unwrap()).unwrap();
    let mut expected = vec![torn_items];
    expected.push(batch(8, 9));
    let mut sent = second.events();
    sent.sort_by_key(|e| e["Items"][0].as_i64());
    expected.sort_by_key(|e| e["Items"][0].as_i64());
    assert_eq!(sent, expected);
    assert_eq!(
        (
            out.item_counts.succeeded,
            out.item_counts.failed,
            out.item_counts.total
        ),
        (8, 2, 10)
    );
    assert_eq!(
        (out.execution_counts.succeeded, out.execution_counts.failed),
        (4, 1)
    );
    // Every child's record is in the result files once.
    let read = |name: &str| -> Vec<Value> {
        let path = dir.join(format!("out/p/r/{name}_0.json"));
        serde_json::from_slice::<Value>(&std::fs::read(path).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r["Input"].as_str().unwrap()).unwrap())
            .collect()
    };
    let mut succeeded = read("SUCCEEDED");
    succeeded.sort_by_key(|e: &Value| e["Items"][0].as_i64());
    assert_eq!(
        succeeded,
        [batch(0, 1), batch(4, 5), batch(6, 7), batch(8, 9)]
    );
    assert_eq!(read("FAILED"), [batch(2, 3)]);
    assert!(!journal.exists(), "the journal goes once the run ended");
    assert!(!dir.join("r/run.json").exists());

    // A resume with nothing to resume says so.
    let err = MapRun::new(
        def(),
        second.clone(),
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run_id("r")
    .resume(true)
    .run(input)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no journal of Map Run r"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Children formed again in the same order but from changed items: the resume stops at the
/// first finished child whose input differs.
#[tokio::test]
async fn a_resume_over_changed_items_is_refused() {
    let dir = tmp("changed");
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("b/items.json"), "[1, 2, 3, 4]").unwrap();
    let def = MapDefinition::parse(
        &json!({"StartAt": "Map", "States": {"Map": {
            "Type": "Map", "End": true, "MaxConcurrency": 1,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "Parameters": {"Bucket": "b", "Key": "items.json"},
                           "ReaderConfig": {"InputType": "JSON"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Call",
                "States": {"Call": {"Type": "Task", "End": true,
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "f", "Payload.$": "$"}}}}
        }}})
        .to_string(),
        None,
    )
    .unwrap();
    let fake = Fake::new(Duration::from_millis(100), |_, _| ok(json!(null)));
    let out = MapRun::new(
        def.clone(),
        fake.clone(),
        Store::Local(dir.clone()),
        dir.clone(),
    )
    .run_id("c")
    .run_until(json!({}), tokio::time::sleep(Duration::from_millis(150)))
    .await
    .unwrap();
    assert_eq!(out.status, MapStatus::Aborted);
    std::fs::write(dir.join("b/items.json"), "[9, 2, 3, 4]").unwrap();
    let err = MapRun::new(def, fake.clone(), Store::Local(dir.clone()), dir.clone())
        .run_id("c")
        .resume(true)
        .run(json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("child execution 0 (numbered from 0 in the order the children are formed) has another input"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
