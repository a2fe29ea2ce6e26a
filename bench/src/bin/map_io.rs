//! Wall time of one Distributed Map batch whose items each await 10 ms of I/O (a Tokio sleep
//! standing in for an S3 round trip), through `Handler::serve_bytes` with
//! `Options::concurrency(C)`, on a multi-threaded runtime like the generated `main`'s.
//!
//! ```text
//! map_io ITEMS CONCURRENCY RUNS
//! ```
//!
//! Prints one JSON object: every run's wall time in ms (after one discarded warm-up run) and
//! their median. Each run's output is checked: one `Succeeded` result per item, in order.
//! A measurement, not a test: nothing here asserts a time.

use s3batch::map::Answer;
use s3batch::{Context, Handler, Object, Options, TaskError};
use std::time::{Duration, Instant};

async fn io_10ms(obj: Object) -> Result<String, TaskError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(obj.key)
}

fn main() -> Result<(), s3batch::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, items, concurrency, runs] = args.as_slice() else {
        return Err("usage: map_io ITEMS CONCURRENCY RUNS".into());
    };
    let (items, concurrency, runs): (usize, usize, usize) =
        (items.parse()?, concurrency.parse()?, runs.parse()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let event = s3batch_bench::map::batch_event(items);
    let context = Context::default();
    let options = Options::builder().concurrency(concurrency).build();
    let handler = rt.block_on(Handler::new(io_10ms, options))?;
    let mut ms = Vec::with_capacity(runs);
    for run in 0..=runs {
        let start = Instant::now();
        let answer = rt.block_on(handler.serve_bytes(&event, &context))?;
        let elapsed = start.elapsed();
        let Answer::Map(answer) = answer else {
            return Err("a batch was answered as an S3 Batch event".into());
        };
        let output = serde_json::to_value(&answer)?;
        let results = output["results"].as_array().ok_or("no results")?;
        if results.len() != items {
            return Err(format!("{items} items, {} results", results.len()).into());
        }
        for (i, r) in results.iter().enumerate() {
            let key = format!("photos/summer 2024/imgé-{i}.jpg");
            if r["resultCode"] != "Succeeded" || r["resultString"] != key.as_str() {
                return Err(format!("result {i} is {r}").into());
            }
        }
        // Run 0 warms the runtime's threads and the allocator; it is not counted.
        if run > 0 {
            ms.push(elapsed.as_secs_f64() * 1e3);
        }
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    println!(
        "{}",
        serde_json::json!({
            "items": items,
            "concurrency": concurrency,
            "io_ms": 10,
            "runs": runs,
            "ms": ms,
            "median_ms": median,
            "min_ms": sorted.first(),
            "max_ms": sorted.last(),
        })
    );
    Ok(())
}
