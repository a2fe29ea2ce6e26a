//! `concurrency = 1` observed: each task answers how many tasks were in flight when it
//! started, itself included. One at a time, every task answers 1; with the default
//! concurrency, the tasks of an event all start before the first finishes and answer 1, 2, 3…
//! (`tests/renamed_crate.rs`).

use batch::{Object, TaskError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[batch::task(crate = "batch", concurrency = 1)]
async fn concurrency_one(obj: Object) -> Result<String, TaskError> {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    // Pending for a while, so a runner that starts more than one task at a time starts the
    // next before this one finishes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    Ok(format!("{}: {now} in flight", obj.key))
}
