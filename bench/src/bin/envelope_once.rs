//! Runs one warm-benchmark variant a given number of times, for counting instructions under
//! `valgrind --tool=callgrind` (bench/run.sh runs it with 0 and with N iterations and takes
//! the difference, so start-up is not counted).
//!
//! ```text
//! envelope_once s3batch|s3batch+metrics|handwritten|serde_floor TASKS ITERATIONS
//! ```
//!
//! `s3batch+metrics` is `s3batch` with CloudWatch metrics on (namespace `S3Batch/Bench`): each
//! invocation also writes its EMF document to stdout.

use s3batch::{Handler, Options};
use s3batch_bench::warm::{self, FloorResponse};

fn main() -> Result<(), s3batch::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, tasks, iterations] = args.as_slice() else {
        return Err(
            "usage: envelope_once s3batch|s3batch+metrics|handwritten|serde_floor TASKS ITERATIONS"
                .into(),
        );
    };
    // With `BENCH_TRACING=1`, the subscriber each Lambda installs (INFO level), to count what
    // the per-task span costs when it is recorded: the generated `main`'s for s3batch,
    // lambda_runtime's default for the hand-written handler (as `handwritten.rs` does).
    if std::env::var("BENCH_TRACING").is_ok_and(|v| v == "1") {
        match variant.as_str() {
            "s3batch" => s3batch::init_tracing(),
            _ => lambda_runtime::tracing::init_default_subscriber(),
        }
    }
    let event = s3batch_bench::event(tasks.parse()?);
    let iterations: usize = iterations.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each variant sets up only what it runs, so that what one allocates cannot change the
    // heap the other runs on (glibc's malloc costs depend on it; see bench/analysis.md).
    let handler = match variant.as_str() {
        "s3batch" | "s3batch+metrics" => {
            Some(rt.block_on(Handler::new(s3batch_bench::hello, Options::new()))?)
        }
        _ => None,
    };
    let metrics = match variant.as_str() {
        "s3batch+metrics" => Some(s3batch::metrics::MetricsConfig::new(
            "S3Batch/Bench",
            Some("s3batch-bench"),
            None,
        )?),
        _ => None,
    };
    let finished: Option<FloorResponse> = match variant.as_str() {
        "serde_floor" => Some(serde_json::from_slice(&warm::handwritten(&event))?),
        _ => None,
    };
    let run = || match (variant.as_str(), &handler, &finished) {
        ("s3batch", Some(handler), _) => Ok(rt.block_on(warm::s3batch(handler, &event))),
        ("s3batch+metrics", Some(handler), _) => Ok(rt.block_on(warm::s3batch_metrics(
            handler,
            metrics.as_ref().expect("built for this variant"),
            &event,
        ))),
        // The same `block_on` around the others, as criterion's `to_async` does.
        ("handwritten", _, _) => Ok(rt.block_on(async { warm::handwritten(&event) })),
        ("serde_floor", _, Some(finished)) => {
            Ok(rt.block_on(async { warm::serde_floor(&event, finished) }))
        }
        (other, _, _) => Err(format!("unknown variant {other}")),
    };
    // One call outside the count's difference, so lazy initialisation is not counted.
    run()?;
    for _ in 0..iterations {
        std::hint::black_box(run()?);
    }
    Ok(())
}
