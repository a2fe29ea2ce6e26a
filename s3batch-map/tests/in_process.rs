//! A real `#[s3batch::task]`-style fn serving the children of a local Distributed Map run over
//! moto: a prefix listing's items (AWS's shape, no bucket) batched with the bucket in
//! `BatchInput`, answered by the core handler's Distributed Map path through the engine's
//! `InProcess` invoker (`Handler::serve_bytes`). How a batch with a failed item is answered
//! is the handler's policy, tested in core; here every item succeeds.

use aws_sdk_s3::primitives::ByteStream;
use s3batch::{Handler, Object, Options, TaskError};
use s3batch_job::InProcess;
use s3batch_map::{MapDefinition, MapRun, MapStatus, Store};
use s3batch_testkit::{object_bytes, Moto};
use serde_json::{json, Value};

async fn touch(obj: Object) -> Result<String, TaskError> {
    Ok(format!("done s3://{}/{}", obj.bucket, obj.key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_batched_into_a_real_handler() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket().bucket("photos").send().await.unwrap();
    for key in ["in/a b.txt", "in/c+d.txt", "in/e%20f.txt", "in/ü.txt"] {
        s3.put_object()
            .bucket("photos")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let asl = json!({"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": true,
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                       "Parameters": {"Bucket.$": "$.bucket", "Prefix": "in/"}},
        "ItemBatcher": {"MaxItemsPerBatch": 3, "BatchInput": {"Bucket.$": "$.bucket"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Call",
            "States": {"Call": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "touch", "Payload.$": "$"}}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "photos", "Prefix": "results"}}
    }}});
    let def = MapDefinition::parse(&asl.to_string(), None).unwrap();
    let handler = Handler::new(touch, Options::new()).await.unwrap();
    let work = std::env::temp_dir().join(format!("s3batch-map-inproc-{}", std::process::id()));
    let out = MapRun::new(def, InProcess::new(handler), Store::S3(s3.clone()), work)
        .run_id("r1")
        .run(json!({"bucket": "photos"}))
        .await
        .unwrap();
    if out.status != MapStatus::Succeeded {
        let failed = object_bytes(&s3, "photos", "results/r1/FAILED_0.json").await;
        panic!("{out:?}\n{}", String::from_utf8_lossy(&failed));
    }
    assert_eq!(out.execution_counts.succeeded, 2);
    let body = object_bytes(&s3, "photos", "results/r1/SUCCEEDED_0.json").await;
    let records: Value = serde_json::from_slice(&body).unwrap();
    let mut results: Vec<(String, String, String)> = Vec::new();
    for r in records.as_array().unwrap() {
        let output: Value = serde_json::from_str(r["Output"].as_str().unwrap()).unwrap();
        for item in output["Payload"]["results"].as_array().unwrap() {
            assert_eq!(item["bucket"], "photos");
            assert_eq!(item["versionId"], Value::Null);
            results.push((
                item["key"].as_str().unwrap().to_owned(),
                item["resultCode"].as_str().unwrap().to_owned(),
                item["resultString"].as_str().unwrap().to_owned(),
            ));
        }
    }
    results.sort();
    let r = |k: &str, c: &str, s: String| (k.to_owned(), c.to_owned(), s);
    assert_eq!(
        results,
        [
            r(
                "in/a b.txt",
                "Succeeded",
                "done s3://photos/in/a b.txt".into()
            ),
            r(
                "in/c+d.txt",
                "Succeeded",
                "done s3://photos/in/c+d.txt".into()
            ),
            r(
                "in/e%20f.txt",
                "Succeeded",
                "done s3://photos/in/e%20f.txt".into()
            ),
            r("in/ü.txt", "Succeeded", "done s3://photos/in/ü.txt".into()),
        ],
        "raw keys from the listing, the bucket from BatchInput"
    );
}
