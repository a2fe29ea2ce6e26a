//! Raw bytes → envelope → response, with a task that always succeeds.
//!
//! Whatever the bytes, the handler must not panic, and must either answer with exactly one
//! result per element of `tasks` (ids echoed in order, no nulls anywhere) or fail with an
//! invocation error that says what was wrong — and only when the ids cannot be recovered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use s3batch_core::{Handler, Object, Options, TaskError};
use serde_json::Value;
use std::sync::OnceLock;

async fn trivial(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}

type Trivial = Handler<fn(Object) -> TrivialFuture, ()>;
type TrivialFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, TaskError>> + Send>>;

fn boxed(obj: Object) -> TrivialFuture {
    Box::pin(trivial(obj))
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    handler: Trivial,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handler = runtime
            .block_on(Handler::new(boxed as fn(Object) -> TrivialFuture, Options::new()))
            .unwrap();
        Fixture { runtime, handler }
    })
}

fn no_nulls(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().all(no_nulls),
        Value::Object(o) => o.values().all(no_nulls),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let outcome = f
        .runtime
        .block_on(f.handler.handle_bytes(data, &Default::default()));
    // The same bytes as a plain JSON value: what the response must agree with.
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    match outcome {
        Ok(response) => {
            // serde_json skips ignored fields without checking their UTF-8, so an event may be
            // accepted whose unknown fields hold invalid UTF-8: compare with the lossy text.
            let event = parsed
                .or_else(|| serde_json::from_str(&String::from_utf8_lossy(data)).ok())
                .expect("a response for bytes that are not JSON");
            let tasks = event["tasks"].as_array().expect("a response without a tasks array");
            assert!(event["invocationId"].is_string());
            assert_eq!(response.results.len(), tasks.len());
            assert_eq!(response.invocation_id, event["invocationId"].as_str().unwrap());
            for (result, task) in response.results.iter().zip(tasks) {
                // A task's id is echoed when it is a string; otherwise the result has "".
                let id = task.get("taskId").and_then(Value::as_str).unwrap_or("");
                assert_eq!(result.task_id, id);
            }
            let json = serde_json::to_value(&response).unwrap();
            assert!(no_nulls(&json), "{json}");
            assert!(serde_json::to_vec(&response).is_ok());
        }
        Err(err) => {
            assert!(!err.message().is_empty());
            // Only an event whose ids cannot be recovered is refused.
            if let Some(event) = parsed {
                let recoverable =
                    event["invocationId"].is_string() && event["tasks"].is_array();
                assert!(!recoverable, "refused a recoverable event: {err}");
            }
        }
    }
});
