//! Reading a `ResultWriter` output back: the counts of its result files, the most frequent
//! errors, and the failed (and pending) children's items, to run again.

use crate::reader::ReadError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a `ResultWriter` `manifest.json` is.
#[derive(Debug, Clone)]
pub enum ResultsSource {
    /// A `manifest.json` on this machine; its result files are read beside it.
    Local(PathBuf),
    /// `s3://bucket/key` of a `manifest.json`; its result files are read from
    /// `DestinationBucket` at their `Key`.
    S3 {
        /// A client for the endpoint.
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// The manifest's key.
        key: String,
    },
}

/// What a Map Run's result files hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapResults {
    /// `MapRunArn`.
    pub map_run_arn: String,
    /// Child execution records per status (`SUCCEEDED`, `FAILED`, `PENDING`).
    pub executions: BTreeMap<String, u64>,
    /// Failed children per `Error`, most frequent first.
    pub errors: Vec<(String, u64)>,
    /// The items of the failed and pending children, as those children received them
    /// (after `ItemSelector`; a batch's `Items` one by one), in file order.
    pub items_to_rerun: Vec<Value>,
}

/// True when `bytes` is a `ResultWriter` `manifest.json` (it has `MapRunArn` and
/// `ResultFiles`), as opposed to an S3 Batch report's.
pub fn is_map_manifest(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .is_ok_and(|v| v.get("MapRunArn").is_some() && v.get("ResultFiles").is_some())
}

impl ResultsSource {
    async fn get(&self, key: &str) -> Result<Vec<u8>, ReadError> {
        match self {
            ResultsSource::Local(manifest) => {
                let name = key.rsplit('/').next().unwrap_or(key);
                let path = manifest.with_file_name(name);
                std::fs::read(&path).map_err(|e| ReadError(format!("{}: {e}", path.display())))
            }
            ResultsSource::S3 { client, bucket, .. } => {
                s3batch_job::storage::get(client, bucket, key)
                    .await
                    .map_err(|e| ReadError(e.to_string()))
            }
        }
    }

    /// Reads the manifest and its result files (each held in memory while it is read).
    pub async fn read(&self) -> Result<MapResults, ReadError> {
        let (manifest, name) = match self {
            ResultsSource::Local(p) => (
                std::fs::read(p).map_err(|e| ReadError(format!("{}: {e}", p.display())))?,
                p.display().to_string(),
            ),
            ResultsSource::S3 { bucket, key, .. } => {
                (self.get(key).await?, format!("s3://{bucket}/{key}"))
            }
        };
        let manifest: Value =
            serde_json::from_slice(&manifest).map_err(|e| ReadError(format!("{name}: {e}")))?;
        if !is_map_manifest(&serde_json::to_vec(&manifest).unwrap_or_default()) {
            return Err(ReadError(format!(
                "{name} is not a ResultWriter manifest.json (no MapRunArn and ResultFiles)"
            )));
        }
        let mut results = MapResults {
            map_run_arn: manifest["MapRunArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ..MapResults::default()
        };
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for status in ["SUCCEEDED", "FAILED", "PENDING"] {
            let files = manifest["ResultFiles"][status]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut count = 0;
            for file in files {
                let key = file["Key"].as_str().ok_or_else(|| {
                    ReadError(format!(
                        "{name}: ResultFiles.{status} has an entry with no Key"
                    ))
                })?;
                let records: Vec<Value> = serde_json::from_slice(&self.get(key).await?)
                    .map_err(|e| ReadError(format!("{key}: {e}")))?;
                count += records.len() as u64;
                if status == "SUCCEEDED" {
                    continue;
                }
                for r in records {
                    if status == "FAILED" {
                        let error = r["Error"].as_str().unwrap_or("(none)").to_owned();
                        *errors.entry(error).or_default() += 1;
                    }
                    let input: Value = r["Input"]
                        .as_str()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .ok_or_else(|| ReadError(format!("{key}: a record with no JSON Input")))?;
                    match input.get("Items").and_then(Value::as_array) {
                        Some(items) => results.items_to_rerun.extend(items.iter().cloned()),
                        None => results.items_to_rerun.push(input),
                    }
                }
            }
            results.executions.insert(status.to_owned(), count);
        }
        let mut errors: Vec<(String, u64)> = errors.into_iter().collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        results.errors = errors;
        Ok(results)
    }
}
