//! The runner end to end against moto: every reader over real S3 (aws-sdk-s3 on loopback),
//! batching, retry, the tolerated-failure threshold and the result writer writing to S3.
//! The function is a recording fake behind the engine's `Invoke` seam.

use aws_sdk_s3::primitives::ByteStream;
use s3batch_job::{Invoke, Invoked};
use s3batch_map::{MapDefinition, MapRun, MapStatus, Store};
use s3batch_testkit::Moto;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Records every event; answers `{"seen": event}`, or the error `errorType` an item's key
/// asks for (`temp-once` fails with `S3Batch.TemporaryFailure` the first time only).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

impl Invoke for Recorder {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        let text = event.to_string();
        let seen_before = self.0.lock().unwrap().contains(&event);
        self.0.lock().unwrap().push(event.clone());
        let error = if text.contains("perm-fail") {
            Some("S3Batch.PermanentFailure")
        } else if text.contains("temp-once") && !seen_before {
            Some("S3Batch.TemporaryFailure")
        } else {
            None
        };
        match error {
            Some(t) => Invoked::FunctionError(
                serde_json::to_vec(&json!({"errorMessage": "no", "errorType": t})).unwrap(),
            ),
            None => Invoked::Response(serde_json::to_vec(&json!({"seen": event})).unwrap()),
        }
    }
}

fn machine(map: Value) -> MapDefinition {
    let mut map = map;
    map["Type"] = json!("Map");
    map["End"] = json!(true);
    map["ItemProcessor"] = json!({
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "fn", "Payload.$": "$"},
            "Retry": [{"ErrorEquals": ["S3Batch.TemporaryFailure"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "End": true
        }}
    });
    MapDefinition::parse(
        &json!({"StartAt": "Map", "States": {"Map": map}}).to_string(),
        None,
    )
    .unwrap()
}

fn work_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("s3batch-map-moto-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

async fn get_json(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Value {
    serde_json::from_slice(&s3batch_testkit::object_bytes(s3, bucket, key).await).unwrap()
}

async fn run(
    s3: &aws_sdk_s3::Client,
    def: MapDefinition,
    input: Value,
    id: &str,
) -> (s3batch_map::MapRunOutcome, Vec<Value>) {
    let fake = Recorder::default();
    let out = MapRun::new(def, fake.clone(), Store::S3(s3.clone()), work_dir())
        .run_id(id)
        .run(input)
        .await
        .unwrap();
    (out, fake.events())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_batching_retry_threshold_and_writer_against_moto() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    for b in ["data", "results"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    for key in [
        "in/a b.txt",
        "in/c+d.txt",
        "in/ü.txt",
        "in/temp-once",
        "other/x",
    ] {
        put(&s3, "data", key, &format!("body of {key}")).await;
    }

    // 1. listObjectsV2, with the bucket selected in from the input, batched by two, results
    //    written to S3.
    let def = machine(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                       "Parameters": {"Bucket.$": "$.bucket", "Prefix": "in/"}},
        "ItemSelector": {"Bucket.$": "$.bucket", "Item.$": "$$.Map.Item.Value", "Index.$": "$$.Map.Item.Index"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"keyEncoding": "raw"}},
        "MaxConcurrency": 1,
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "results", "Prefix": "listing"}}
    }));
    let (out, events) = run(&s3, def, json!({"bucket": "data"}), "list-1").await;
    assert_eq!(out.status, MapStatus::Succeeded, "{out:?}");
    // The retried batch (temp-once) is sent twice, identical.
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[1], events[2]);
    let items: Vec<&Value> = [&events[0], &events[2]]
        .iter()
        .flat_map(|e| e["Items"].as_array().unwrap())
        .collect();
    let keys: Vec<&str> = items
        .iter()
        .map(|i| i["Item"]["Key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["in/a b.txt", "in/c+d.txt", "in/temp-once", "in/ü.txt"],
        "raw keys, S3's order"
    );
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["Bucket"], "data");
        assert_eq!(item["Index"], i);
        let key = item["Item"]["Key"].as_str().unwrap();
        let head = s3
            .head_object()
            .bucket("data")
            .key(key)
            .send()
            .await
            .unwrap();
        let listed = item["Item"].as_object().unwrap();
        let mut fields: Vec<&str> = listed.keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["Etag", "Key", "LastModified", "Size", "StorageClass"]
        );
        assert_eq!(
            listed["Etag"].as_str(),
            head.e_tag(),
            "the ETag with its quotes"
        );
        assert!(listed["Etag"].as_str().unwrap().starts_with('"'));
        assert_eq!(listed["Size"], format!("body of {key}").len());
        assert_eq!(listed["LastModified"], head.last_modified().unwrap().secs());
        assert_eq!(listed["StorageClass"], "STANDARD");
    }
    assert_eq!(events[0]["BatchInput"], json!({"keyEncoding": "raw"}));
    let manifest = get_json(&s3, "results", "listing/list-1/manifest.json").await;
    assert_eq!(manifest["DestinationBucket"], "results");
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Key"],
        "listing/list-1/SUCCEEDED_0.json"
    );
    let succeeded = get_json(&s3, "results", "listing/list-1/SUCCEEDED_0.json").await;
    assert_eq!(succeeded.as_array().unwrap().len(), 2);
    let inputs: Vec<Value> = succeeded
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r["Input"].as_str().unwrap()).unwrap())
        .collect();
    assert!(inputs.contains(&events[2]), "{inputs:?}");

    // 2. CSV, GIVEN headers, PIPE, MaxItems.
    put(
        &s3,
        "data",
        "m.csv",
        "data|in/a b.txt|\ndata|\"in/c|d\"|v2\ndata|x|\n",
    )
    .await;
    let def = machine(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "data", "Key": "m.csv"},
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN",
                                        "CSVHeaders": ["Bucket", "Key", "VersionId"],
                                        "CSVDelimiter": "PIPE", "MaxItems": 2}}
    }));
    let (out, events) = run(&s3, def, json!({}), "csv-1").await;
    assert_eq!(out.status, MapStatus::Succeeded);
    assert_eq!(
        events,
        vec![
            json!({"Bucket": "data", "Key": "in/a b.txt", "VersionId": ""}),
            json!({"Bucket": "data", "Key": "in/c|d", "VersionId": "v2"}),
        ]
    );

    // 3. CSV with its header in the first row, and an unclosed quote: the reader fails,
    //    naming the object and the line.
    put(
        &s3,
        "data",
        "bad.csv",
        "Bucket,Key\ndata,ok\ndata,\"never closed\ndata,x\n",
    )
    .await;
    let def = machine(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "data", "Key": "bad.csv"},
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}}
    }));
    let (out, events) = run(&s3, def, json!({}), "csv-2").await;
    assert_eq!(
        out.status,
        MapStatus::Failed {
            error: "States.ItemReaderFailed".into(),
            cause: "s3://data/bad.csv: line 3: a quote opened here is never closed".into(),
        }
    );
    assert!(
        events.is_empty(),
        "no row of a file that does not parse is run"
    );

    // 4. JSON, and JSONL; a failing item over the (default zero) tolerated threshold, with
    //    the failures written.
    put(
        &s3,
        "data",
        "items.json",
        r#"[{"Key": "j1"}, {"Key": "j2", "n": [1, 2]}]"#,
    )
    .await;
    let def = machine(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "data", "Key": "items.json"},
                       "ReaderConfig": {"InputType": "JSON"}}
    }));
    let (out, events) = run(&s3, def, json!({}), "json-1").await;
    assert_eq!(out.status, MapStatus::Succeeded);
    let mut events = events;
    events.sort_by_key(|e| e["Key"].as_str().unwrap().to_owned());
    assert_eq!(
        events,
        vec![json!({"Key": "j1"}), json!({"Key": "j2", "n": [1, 2]})]
    );

    put(
        &s3,
        "data",
        "items.jsonl",
        "{\"Key\": \"l1\"}\n{\"Key\": \"perm-fail\"}\n{\"Key\": \"l3\"}\n",
    )
    .await;
    let def = machine(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "data", "Key": "items.jsonl"},
                       "ReaderConfig": {"InputType": "JSONL"}},
        "MaxConcurrency": 1,
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "results", "Prefix": ""}}
    }));
    let (out, events) = run(&s3, def, json!({}), "jsonl-1").await;
    let MapStatus::Failed { error, .. } = &out.status else {
        panic!("{out:?}")
    };
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    assert_eq!(
        events,
        vec![json!({"Key": "l1"}), json!({"Key": "perm-fail"})],
        "nothing starts after the threshold"
    );
    assert_eq!((out.item_counts.succeeded, out.item_counts.failed), (1, 1));
    let failed = get_json(&s3, "results", "jsonl-1/FAILED_0.json").await;
    assert_eq!(failed[0]["Error"], "S3Batch.PermanentFailure");
    assert_eq!(failed[0]["Input"], r#"{"Key":"perm-fail"}"#);
    let manifest = get_json(&s3, "results", "jsonl-1/manifest.json").await;
    assert_eq!(
        manifest["ResultFiles"]["FAILED"][0]["Key"],
        "jsonl-1/FAILED_0.json"
    );

    // Read back from S3: the counts, the errors, the failed items to run again.
    let results = s3batch_map::ResultsSource::S3 {
        client: s3.clone(),
        bucket: "results".into(),
        key: "jsonl-1/manifest.json".into(),
    }
    .read()
    .await
    .unwrap();
    // `l3` may have been read (and formed into a child) before `perm-fail` finished, or
    // not: which of the two is ready first is a race the runner does not order. Formed, it is
    // PENDING and among the items to run again; unread, it is in no file.
    let pending = out.execution_counts.pending;
    assert!(pending <= 1, "{out:?}");
    assert_eq!(
        results.executions.into_iter().collect::<Vec<_>>(),
        [
            ("FAILED".to_owned(), 1),
            ("PENDING".to_owned(), pending),
            ("SUCCEEDED".to_owned(), 1)
        ]
    );
    assert_eq!(results.errors, [("S3Batch.PermanentFailure".to_owned(), 1)]);
    let mut rerun = vec![json!({"Key": "perm-fail"})];
    if pending == 1 {
        rerun.push(json!({"Key": "l3"}));
    }
    assert_eq!(results.items_to_rerun, rerun);
}
