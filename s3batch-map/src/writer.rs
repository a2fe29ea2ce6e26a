//! `ResultWriter`: the child executions' records, streamed to one staging file per status
//! while the run goes, then written as Step Functions lays them out:
//! `<Prefix>/<map run id>/manifest.json` and `SUCCEEDED_0.json`, `FAILED_0.json`,
//! `PENDING_0.json` (each a JSON array; a status with no record has no file).

use crate::reader::Store;
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A child execution's status, as the result files name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `SUCCEEDED`.
    Succeeded,
    /// `FAILED`.
    Failed,
    /// `PENDING`: formed but never started (the run stopped first).
    Pending,
}

impl Status {
    const ALL: [Status; 3] = [Status::Succeeded, Status::Failed, Status::Pending];

    fn name(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Pending => "PENDING",
        }
    }
}

/// Why results could not be written (Step Functions' `States.ResultWriterFailed`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(pub String);

struct Part {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    count: u64,
}

/// The staging files of one run.
pub(crate) struct Staging {
    parts: Vec<Part>,
}

impl Staging {
    pub(crate) fn create(dir: &Path) -> Result<Self, WriteError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| WriteError(format!("creating {}: {e}", dir.display())))?;
        let mut parts = Vec::new();
        for status in Status::ALL {
            let path = dir.join(format!("{}.json.part", status.name()));
            let file = std::fs::File::create(&path)
                .map_err(|e| WriteError(format!("creating {}: {e}", path.display())))?;
            let mut out = BufWriter::new(file);
            out.write_all(b"[")
                .map_err(|e| WriteError(format!("{}: {e}", path.display())))?;
            parts.push(Part {
                path,
                out,
                count: 0,
            });
        }
        Ok(Staging { parts })
    }

    pub(crate) fn append(&mut self, status: Status, record: &Value) -> Result<(), WriteError> {
        let part = &mut self.parts[Status::ALL.iter().position(|s| *s == status).unwrap()];
        let sep: &[u8] = if part.count == 0 { b"" } else { b"," };
        part.out
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut part.out, record).map_err(Into::into))
            .map_err(|e| WriteError(format!("{}: {e}", part.path.display())))?;
        part.count += 1;
        Ok(())
    }

    /// Closes the arrays; returns each status's file and record count.
    pub(crate) fn finish(self) -> Result<Vec<(Status, PathBuf, u64)>, WriteError> {
        let mut done = Vec::new();
        for (status, mut part) in Status::ALL.into_iter().zip(self.parts) {
            part.out
                .write_all(b"]")
                .and_then(|()| part.out.flush())
                .map_err(|e| WriteError(format!("{}: {e}", part.path.display())))?;
            done.push((status, part.path, part.count));
        }
        Ok(done)
    }
}

/// Writes the result files and `manifest.json` under `s3://bucket/prefix/run_id/`; returns
/// the manifest's location.
pub(crate) async fn publish(
    store: &Store,
    bucket: &str,
    prefix: &str,
    run_id: &str,
    map_run_arn: &str,
    parts: &[(Status, PathBuf, u64)],
) -> Result<String, WriteError> {
    let base = match prefix.trim_end_matches('/') {
        "" => run_id.to_owned(),
        p => format!("{p}/{run_id}"),
    };
    let mut files = serde_json::Map::new();
    for (status, path, count) in parts {
        let mut list = Vec::new();
        if *count > 0 {
            let key = format!("{base}/{}_0.json", status.name());
            let size = std::fs::metadata(path)
                .map_err(|e| WriteError(format!("{}: {e}", path.display())))?
                .len();
            put_file(store, bucket, &key, path).await?;
            list.push(json!({"Key": key, "Size": size}));
        }
        files.insert(status.name().into(), Value::Array(list));
    }
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": Value::Object(files),
    });
    let key = format!("{base}/manifest.json");
    let bytes = serde_json::to_vec_pretty(&manifest).expect("JSON serializes");
    put_bytes(store, bucket, &key, bytes).await?;
    Ok(format!("s3://{bucket}/{key}"))
}

async fn put_file(store: &Store, bucket: &str, key: &str, path: &Path) -> Result<(), WriteError> {
    let name = format!("s3://{bucket}/{key}");
    match store {
        Store::Local(root) => {
            let dest = Store::local_path(root, bucket, key).map_err(|e| WriteError(e.0))?;
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| WriteError(format!("{name}: {e}")))?;
            }
            std::fs::copy(path, &dest).map_err(|e| WriteError(format!("{name}: {e}")))?;
            Ok(())
        }
        Store::S3(s3) => {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
                .await
                .map_err(|e| WriteError(format!("{name}: {e}")))?;
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    WriteError(format!(
                        "writing {name}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ))
                })?;
            Ok(())
        }
    }
}

async fn put_bytes(
    store: &Store,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<(), WriteError> {
    let name = format!("s3://{bucket}/{key}");
    match store {
        Store::Local(root) => {
            let dest = Store::local_path(root, bucket, key).map_err(|e| WriteError(e.0))?;
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| WriteError(format!("{name}: {e}")))?;
            }
            std::fs::write(&dest, bytes).map_err(|e| WriteError(format!("{name}: {e}")))
        }
        Store::S3(s3) => s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                WriteError(format!(
                    "writing {name}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            }),
    }
}
