//! Runs one Distributed Map batch variant a given number of times, for counting instructions
//! under `valgrind --tool=callgrind` (`bench/distributed-map.sh` runs it with N and 3N
//! iterations and takes the difference, so start-up is not counted), as `envelope_once` does
//! for S3 Batch events.
//!
//! ```text
//! map_once s3batch|handwritten|s3batch-event ITEMS ITERATIONS
//! ```
//!
//! `s3batch` is `Handler::serve_lambda` (what the generated `main` serves) on a batch
//! `{"Items": [...], "BatchInput": {"Bucket": ...}}` of ITEMS prefix-listing items, then
//! `serde_json::to_vec`; `handwritten` is the plain serde handler in `src/map.rs`.
//! `s3batch-event` is `Handler::serve_lambda` on the S3 Batch event of ITEMS tasks that
//! `envelope_once` counts through `Handler::handle_bytes`: what telling the shape costs an S3
//! Batch event.

use s3batch::{Handler, Options};
use s3batch_bench::map;

fn main() -> Result<(), s3batch::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, items, iterations] = args.as_slice() else {
        return Err("usage: map_once s3batch|handwritten|s3batch-event ITEMS ITERATIONS".into());
    };
    let items: usize = items.parse()?;
    let event = match variant.as_str() {
        "s3batch-event" => s3batch_bench::event(items),
        _ => map::batch_event(items),
    };
    let iterations: usize = iterations.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each variant sets up only what it runs (glibc's malloc costs depend on the heap).
    let handler = match variant.as_str() {
        "s3batch" | "s3batch-event" => {
            Some(rt.block_on(Handler::new(s3batch_bench::hello, Options::new()))?)
        }
        "handwritten" => None,
        other => return Err(format!("unknown variant {other}").into()),
    };
    let run = || match &handler {
        Some(handler) => rt.block_on(map::s3batch(handler, &event)),
        // The same `block_on` around the baseline.
        None => rt.block_on(async { map::handwritten(&event) }),
    };
    // One call outside the count's difference, checked, so lazy initialisation is not counted.
    let first = run();
    match variant.as_str() {
        "s3batch-event" => s3batch_bench::check_response(&event, &first)?,
        _ => map::check_output(&event, &first)?,
    }
    for _ in 0..iterations {
        std::hint::black_box(run());
    }
    Ok(())
}
