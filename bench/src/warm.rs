//! The three ways the warm benchmark turns event bytes into response bytes; shared by
//! `benches/envelope.rs` and the callgrind driver (`src/bin/envelope_once.rs`).

use aws_lambda_events::s3::batch_job::S3BatchJobEvent;
use s3batch::{Context, Handler, TaskFn};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::LazyLock;

/// The invocation's context. Lambda's runtime builds one per invocation for every handler,
/// the hand-written one included, so the benchmark builds it once, outside what is counted.
static CONTEXT: LazyLock<Context> = LazyLock::new(Context::default);

/// The framework: `Handler::handle_bytes` (decoding, per-task extraction, panic capture,
/// ordering, truncation, the response), then `serde_json::to_vec`.
pub async fn s3batch<T: TaskFn<A>, A>(handler: &Handler<T, A>, event: &[u8]) -> Vec<u8> {
    let response = handler
        .handle_bytes(black_box(event), &CONTEXT)
        .await
        .expect("the benchmark event is valid");
    serde_json::to_vec(&response).expect("a response serializes")
}

/// [`s3batch`] with CloudWatch metrics on, as `run` serves it: the invocation collected and
/// its EMF document written to stdout in one write before the response is serialized.
pub async fn s3batch_metrics<T: TaskFn<A>, A>(
    handler: &Handler<T, A>,
    metrics: &s3batch::metrics::MetricsConfig,
    event: &[u8],
) -> Vec<u8> {
    // Pinned in place, as `run` does.
    let handle = std::pin::pin!(handler.handle_bytes(black_box(event), &CONTEXT));
    let (response, collected) = metrics.collect(handle).await;
    let response = response.expect("the benchmark event is valid");
    metrics.write(collected, Some(&CONTEXT.request_id));
    serde_json::to_vec(&response).expect("a response serializes")
}

/// The hand-written baseline on `aws_lambda_events` types.
pub fn handwritten(event: &[u8]) -> Vec<u8> {
    let parsed: S3BatchJobEvent =
        serde_json::from_slice(black_box(event)).expect("the benchmark event is valid");
    serde_json::to_vec(&crate::handwritten::handle(parsed)).expect("a response serializes")
}

/// The floor: `serde_json` alone parses the event into plain derived structs and serializes
/// the finished response; no key decoding, no result building.
pub fn serde_floor(event: &[u8], finished: &FloorResponse) -> Vec<u8> {
    let parsed: FloorEvent =
        serde_json::from_slice(black_box(event)).expect("the benchmark event is valid");
    black_box(parsed);
    serde_json::to_vec(black_box(finished)).expect("a response serializes")
}

/// The event as plain owned fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct FloorEvent {
    invocation_schema_version: String,
    invocation_id: String,
    job: FloorJob,
    tasks: Vec<FloorTask>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorJob {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FloorTask {
    task_id: String,
    s3_key: String,
    s3_version_id: Option<String>,
    s3_bucket_arn: String,
}

/// A finished response as plain fields; read it from the expected response bytes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FloorResponse {
    invocation_schema_version: String,
    treat_missing_keys_as: String,
    invocation_id: String,
    results: Vec<FloorResult>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FloorResult {
    task_id: String,
    result_code: String,
    result_string: String,
}
