//! Raw bytes → envelope → response, with a task that always succeeds.
//!
//! Whatever the bytes, the handler must not panic, and must either answer with exactly one
//! result per element of `tasks` (ids echoed in order, no nulls anywhere) or fail with an
//! invocation error that says what was wrong — and only when the ids cannot be recovered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use s3batch_core::{Handler, Object, Options, TaskError};
use std::sync::OnceLock;

// The assertions, shared with s3batch-core's replay of `fuzz/regressions/`.
#[path = "../oracle.rs"]
mod oracle;

async fn trivial(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}

type Trivial = Handler<fn(Object) -> TrivialFuture, ()>;
type TrivialFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, TaskError>> + Send>>;

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
            .block_on(Handler::new(
                boxed as fn(Object) -> TrivialFuture,
                Options::new(),
            ))
            .unwrap();
        Fixture { runtime, handler }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let outcome = f
        .runtime
        .block_on(f.handler.handle_bytes(data, &Default::default()));
    oracle::check(data, outcome);
});
