//! `deadline_margin_ms` observed: a margin of 12 s, far above the default 1 s. Served with a
//! 20 s function timeout, unfinished tasks are given up 8 s into the invocation; with the
//! default margin, 19 s into it. A key `sleep/MS` sleeps MS milliseconds, so a task that sleeps
//! 14 s is answered `TemporaryFailure` only if the margin is honoured
//! (`tests/renamed_crate.rs`).

use batch::{Object, TaskError};
use std::time::Duration;

#[batch::task(crate = "batch", deadline_margin_ms = 12_000)]
async fn deadline_margin(obj: Object) -> Result<String, TaskError> {
    let Some(ms) = obj.key.strip_prefix("sleep/") else {
        return Ok(format!("{} at once", obj.key));
    };
    let ms: u64 = ms
        .parse()
        .map_err(|e| TaskError::permanent(format!("{ms:?}: {e}")))?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(format!("slept {ms} ms"))
}
