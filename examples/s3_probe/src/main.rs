//! Reads each object and reports its size: the smallest function that calls S3 once per task,
//! used by s3batch's fault and safety-net tests (`tests/faults.rs`, `tests/safety_net.rs`).
//!
//! Two key prefixes misbehave on purpose, so the safety net can be seen end to end: a key
//! under `panic/` panics, and a key under `hang/` never finishes (it is given up 3 s before
//! the function's timeout, the deadline margin set here: room for the answer to reach
//! `cargo lambda watch` before its `--timeout` on a loaded machine). A key under `pid/` is
//! answered with the process id without calling S3, so a test can tell whether one instance
//! served every invocation.

use s3batch::aws_sdk_s3::Client;
use s3batch::{Object, TaskError};

#[s3batch::task(deadline_margin_ms = 3000)]
async fn s3_probe(obj: Object, s3: Client) -> Result<String, TaskError> {
    if obj.key.starts_with("panic/") {
        panic!("asked to panic on {}", obj.key);
    }
    if obj.key.starts_with("pid/") {
        return Ok(format!("pid {}", std::process::id()));
    }
    if obj.key.starts_with("hang/") {
        std::future::pending::<()>().await;
    }
    let object = s3
        .get_object()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .set_version_id(obj.version_id.clone())
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(format!("GetObject {}", obj.key)))?;
    let body = object.body.collect().await?.into_bytes();
    Ok(format!(
        "read {} bytes of s3://{}/{}",
        body.len(),
        obj.bucket,
        obj.key
    ))
}
