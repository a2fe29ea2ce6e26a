//! Runs one Distributed Map batch variant a given number of times, for counting instructions
//! under `valgrind --tool=callgrind` (`bench/distributed-map.sh` runs it with N and 3N
//! iterations and takes the difference, so start-up is not counted), as `envelope_once` does
//! for S3 Batch events.
//!
//! ```text
//! map_once s3batch|handwritten ITEMS ITERATIONS
//! ```
//!
//! `s3batch` is `Handler::serve_bytes` (what the generated `main` serves) on a batch
//! `{"Items": [...], "BatchInput": {"Bucket": ...}}` of ITEMS prefix-listing items, then
//! `serde_json::to_vec`; `handwritten` is the plain serde handler in `src/map.rs`.

use s3batch::{Handler, Options};
use s3batch_bench::map;

fn main() -> Result<(), s3batch::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, items, iterations] = args.as_slice() else {
        return Err("usage: map_once s3batch|handwritten ITEMS ITERATIONS".into());
    };
    let event = map::batch_event(items.parse()?);
    let iterations: usize = iterations.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each variant sets up only what it runs (glibc's malloc costs depend on the heap).
    let handler = match variant.as_str() {
        "s3batch" => Some(rt.block_on(Handler::new(s3batch_bench::hello, Options::new()))?),
        "handwritten" => None,
        other => return Err(format!("unknown variant {other}").into()),
    };
    let run = || match &handler {
        Some(handler) => rt.block_on(map::s3batch(handler, &event)),
        // The same `block_on` around the baseline.
        None => rt.block_on(async { map::handwritten(&event) }),
    };
    // One call outside the count's difference, checked, so lazy initialisation is not counted.
    map::check_output(&event, &run())?;
    for _ in 0..iterations {
        std::hint::black_box(run());
    }
    Ok(())
}
