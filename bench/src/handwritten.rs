//! The baseline: what a careful engineer writes by hand on `lambda_runtime` and
//! `aws_lambda_events`, doing the same work as the framework for a trivial task — decode the
//! key form-style, take the bucket from the ARN, echo every id, one result per task.
//!
//! It is deliberately not a straw man: no `serde_json::Value`, no per-task tasks spawned,
//! and a key that does not decode fails only its own task.

use aws_lambda_events::s3::batch_job::{S3BatchJobEvent, S3BatchJobResponse, S3BatchJobResult};
use percent_encoding::percent_decode_str;

/// Handles one event. The tasks run one after another: for a task that does no I/O that is
/// the fastest way, and what a hand-written handler does.
pub fn handle(event: S3BatchJobEvent) -> S3BatchJobResponse {
    let results = event
        .tasks
        .into_iter()
        .map(|task| {
            let (code, text) = match run(task.s3_key.as_deref(), task.s3_bucket_arn.as_deref()) {
                Ok(text) => ("Succeeded", text),
                Err(text) => ("PermanentFailure", text),
            };
            let mut result = S3BatchJobResult::default();
            result.task_id = Some(task.task_id.unwrap_or_default());
            result.result_code = Some(code.to_owned());
            result.result_string = Some(text);
            result
        })
        .collect();
    let mut response = S3BatchJobResponse::default();
    response.invocation_schema_version = Some(
        event
            .invocation_schema_version
            .unwrap_or_else(|| "1.0".to_owned()),
    );
    // Left as `None` it would serialize as `null`, which S3 cannot read.
    response.treat_missing_keys_as = Some("PermanentFailure".to_owned());
    response.invocation_id = Some(event.invocation_id.unwrap_or_default());
    response.results = results;
    response
}

fn run(key: Option<&str>, bucket_arn: Option<&str>) -> Result<String, String> {
    let raw = key.ok_or("missing s3Key")?;
    let key = decode_key(raw)?;
    let bucket = bucket_arn
        .and_then(|arn| arn.rsplit(':').next())
        .filter(|b| !b.is_empty())
        .ok_or("missing s3BucketArn")?;
    Ok(crate::greeting(bucket, &key))
}

/// Form-style: `+` is a space, then `%XX` bytes, which must be UTF-8.
fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("s3Key {raw:?} does not decode: {e}"))
}
