//! Step Functions Distributed Map: the batch event the map benchmarks handle, the
//! hand-written baseline for it, and the s3batch side (`Handler::serve_lambda`, what the
//! generated `main` serves), shared by
//! the callgrind driver (`src/bin/map_once.rs`) and the I/O benchmark
//! (`src/bin/map_io.rs`). `bench/distributed-map.sh` runs both.

use s3batch::{Context, Handler, TaskFn};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::LazyLock;

/// The invocation's context, built once outside what is counted (as in [`crate::warm`]).
static CONTEXT: LazyLock<Context> = LazyLock::new(Context::default);

/// A Distributed Map child's input with `items` items as a prefix listing
/// (`s3:listObjectsV2`) and an `ItemBatcher` with `BatchInput` produce it: each item exactly
/// `Etag` (with its quotes), `Key` (raw: a space and an `é`), `LastModified` (epoch
/// seconds), `Size`, `StorageClass`; no bucket in the items, `BatchInput.Bucket` instead.
pub fn batch_event(items: usize) -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..items)
        .map(|i| {
            serde_json::json!({
                "Etag": "\"d41d8cd98f00b204e9800998ecf8427e\"",
                "Key": format!("photos/summer 2024/imgé-{i}.jpg"),
                "LastModified": 1671425036,
                "Size": 1024 + i,
                "StorageClass": "STANDARD",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "Items": items,
        "BatchInput": {"Bucket": "source-bucket"},
    }))
    .expect("a JSON value serializes")
}

/// Checks a child's output against the batch it answers: `{"results": [...]}`, one
/// `Succeeded` result per item in order, echoing bucket and key, with the expected text.
/// Returns what is wrong.
pub fn check_output(event: &[u8], output: &[u8]) -> Result<(), String> {
    let event: serde_json::Value = serde_json::from_slice(event).map_err(|e| e.to_string())?;
    let output: serde_json::Value =
        serde_json::from_slice(output).map_err(|e| format!("output is not JSON: {e}"))?;
    let items = event["Items"].as_array().ok_or("event has no Items")?;
    let results = output["results"]
        .as_array()
        .ok_or("output has no results")?;
    if items.len() != results.len() {
        return Err(format!("{} items, {} results", items.len(), results.len()));
    }
    for (i, (item, r)) in items.iter().zip(results).enumerate() {
        let key = item["Key"].as_str().ok_or("item has no Key")?;
        let want = crate::greeting("source-bucket", key);
        if r["bucket"] != "source-bucket"
            || r["key"] != key
            || !r["versionId"].is_null()
            || r["resultCode"] != "Succeeded"
            || r["resultString"] != want.as_str()
        {
            return Err(format!("result {i} is {r}"));
        }
    }
    Ok(())
}

/// The framework as the generated `main` runs it: `Handler::serve_lambda` (`serve_bytes`'s
/// work: one reading that tells the shape and reads the event, per-item extraction, panic
/// capture, ordering, the 256 KiB budget, the failure policy; its answer as `run` hands it
/// to lambda_runtime, `AnswerJson`: the output written by s3batch straight from the
/// results, what they echo copied from the event), then `serde_json::to_vec` of it, as
/// lambda_runtime serializes it (copying the output).
pub async fn s3batch<T: TaskFn<A>, A>(handler: &Handler<T, A>, event: &[u8]) -> Vec<u8> {
    let answer = handler
        .serve_lambda(black_box(event), &CONTEXT)
        .await
        .expect("the benchmark event is valid");
    serde_json::to_vec(&answer).expect("an answer serializes")
}

/// The hand-written baseline: `serde_json` into derived structs, the trivial task per item
/// one after another, the same `{"results": [...]}`.
pub fn handwritten(event: &[u8]) -> Vec<u8> {
    let batch: Batch = serde_json::from_slice(black_box(event)).expect("the batch is valid");
    serde_json::to_vec(&handle(batch)).expect("a response serializes")
}

/// A Distributed Map batch: `{"Items": [...], "BatchInput": {...}}`. Fields s3batch accepts
/// and ignores (`Etag`, `LastModified`, `Size`, `StorageClass`) are skipped by serde.
#[derive(Deserialize)]
pub struct Batch {
    #[serde(rename = "Items")]
    items: Vec<Item>,
    #[serde(rename = "BatchInput", default)]
    batch_input: Option<BatchInput>,
}

#[derive(Deserialize, Default)]
struct BatchInput {
    #[serde(rename = "Bucket", alias = "bucket", default)]
    bucket: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "Key", alias = "key", default)]
    key: Option<String>,
    #[serde(rename = "Bucket", alias = "bucket", default)]
    bucket: Option<String>,
    #[serde(rename = "VersionId", alias = "versionId", default)]
    version_id: Option<String>,
}

/// The child's output.
#[derive(Serialize)]
pub struct Output {
    results: Vec<ItemResult>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemResult {
    bucket: Option<String>,
    key: Option<String>,
    version_id: Option<String>,
    result_code: &'static str,
    result_string: String,
}

/// Runs the trivial task on every item, in order. As the S3 Batch baseline does, an item
/// with no key or no bucket (in the item or in `BatchInput`) fails only itself.
pub fn handle(batch: Batch) -> Output {
    let default_bucket = batch.batch_input.and_then(|b| b.bucket);
    let results = batch
        .items
        .into_iter()
        .map(|item| {
            let bucket = item.bucket.or_else(|| default_bucket.clone());
            let version_id = item.version_id.filter(|v| !v.is_empty());
            let (result_code, result_string) = match (&bucket, &item.key) {
                (Some(b), Some(k)) if !b.is_empty() && !k.is_empty() => {
                    ("Succeeded", crate::greeting(b, k))
                }
                (_, None) => ("PermanentFailure", "invalid item: missing Key".to_owned()),
                _ => (
                    "PermanentFailure",
                    "invalid item: missing Bucket".to_owned(),
                ),
            };
            ItemResult {
                bucket,
                key: item.key,
                version_id,
                result_code,
                result_string,
            }
        })
        .collect();
    Output { results }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_answer_the_same_bytes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handler = rt
            .block_on(Handler::new(crate::hello, s3batch::Options::new()))
            .unwrap();
        for n in [1, 3, 1000] {
            let event = batch_event(n);
            let framework = rt.block_on(s3batch(&handler, &event));
            let baseline = handwritten(&event);
            check_output(&event, &framework).unwrap();
            assert_eq!(
                String::from_utf8(framework).unwrap(),
                String::from_utf8(baseline).unwrap(),
                "{n} items"
            );
        }
    }

    #[test]
    fn the_baseline_fails_only_the_bad_item() {
        let event = br#"{"Items":[{"Key":"a"},{"Size":1},{"Key":"c","Bucket":"own"}]}"#;
        let out: serde_json::Value = serde_json::from_slice(&handwritten(event)).unwrap();
        assert_eq!(out["results"][0]["resultCode"], "PermanentFailure");
        assert_eq!(
            out["results"][0]["resultString"],
            "invalid item: missing Bucket"
        );
        assert_eq!(
            out["results"][1]["resultString"],
            "invalid item: missing Key"
        );
        assert_eq!(out["results"][2]["resultString"], "hello s3://own/c");
    }
}
