//! The pieces the benchmarks share: the event they all handle, the hand-written baseline
//! handler, and the s3batch task it is compared with.
//!
//! `bench/run.sh` runs everything and writes `BENCHMARKS.md`; see that file for the method.

pub mod handwritten;
pub mod map;
pub mod warm;

use s3batch::{Object, TaskError};

/// The work both Rust handlers do per task: nothing but echo the decoded object.
pub fn greeting(bucket: &str, key: &str) -> String {
    format!("hello s3://{bucket}/{key}")
}

/// The trivial task the framework runs in the warm benchmark; `main = false` keeps the
/// attribute's checks without generating an entry point.
#[s3batch::task(main = false)]
pub async fn hello(obj: Object) -> Result<String, TaskError> {
    Ok(greeting(&obj.bucket, &obj.key))
}

/// A schema 1.0 event with `tasks` tasks, as S3 Batch Operations sends it: form-encoded keys
/// (a space as `+`, non-ASCII as `%XX`), `null` version ids, a bucket ARN.
pub fn event(tasks: usize) -> Vec<u8> {
    let tasks: Vec<serde_json::Value> = (0..tasks)
        .map(|i| {
            serde_json::json!({
                "taskId": format!("dGFza2lkZ29lc2hlcmUK-{i}"),
                "s3Key": format!("photos/summer+2024/img%C3%A9-{i}.jpg"),
                "s3VersionId": null,
                "s3BucketArn": "arn:aws:s3:::source-bucket",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmbGtqYXNkZmxrYXNqZGZsa2FzamRmbGtqYXNkZg",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
        "tasks": tasks,
    }))
    .expect("a JSON value serializes")
}

/// Checks a response body against the event it answers: same invocation id, one
/// `Succeeded` result per task with the expected text. Returns what is wrong.
pub fn check_response(event: &[u8], response: &[u8]) -> Result<(), String> {
    let event: serde_json::Value = serde_json::from_slice(event).map_err(|e| e.to_string())?;
    let response: serde_json::Value =
        serde_json::from_slice(response).map_err(|e| format!("response is not JSON: {e}"))?;
    if response["invocationId"] != event["invocationId"] {
        return Err("invocationId not echoed".into());
    }
    if response["treatMissingKeysAs"] != "PermanentFailure" {
        return Err("treatMissingKeysAs is not PermanentFailure".into());
    }
    let tasks = event["tasks"].as_array().ok_or("event has no tasks")?;
    let results = response["results"]
        .as_array()
        .ok_or("response has no results")?;
    if tasks.len() != results.len() {
        return Err(format!("{} tasks, {} results", tasks.len(), results.len()));
    }
    for (i, (t, r)) in tasks.iter().zip(results).enumerate() {
        let want = format!("hello s3://source-bucket/photos/summer 2024/imgé-{i}.jpg");
        if r["taskId"] != t["taskId"]
            || r["resultCode"] != "Succeeded"
            || r["resultString"] != want.as_str()
        {
            return Err(format!("result {i} is {r}"));
        }
    }
    Ok(())
}
