//! Runner overhead in-process: a no-op task over N objects (default 100,000) through
//! `LocalJob::run_in_process`; prints tasks per second.
//!
//! `cargo run --release -p s3batch-job --example noop_in_process -- 100000 64`

use s3batch::{Object, Options, TaskError};
use s3batch_job::{LocalJob, Manifest, ManifestEntry};

async fn noop(_: Object) -> Result<(), TaskError> {
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let concurrency: usize = args.next().map_or(64, |a| a.parse().expect("concurrency"));
    let entries = (0..n)
        .map(|i| ManifestEntry::new("bench-bucket", format!("dir {i}/key+{i}.txt")))
        .collect();
    let report = LocalJob::new(Manifest::new(entries))
        .concurrency(concurrency)
        .run_in_process(noop, Options::new())
        .await
        .expect("the job runs");
    let s = &report.summary;
    assert_eq!(s.succeeded, n);
    println!(
        "in-process no-op: {n} tasks, concurrency {concurrency}: {:.2} s, {:.0} tasks/s",
        s.elapsed.as_secs_f64(),
        s.tasks_per_second()
    );
}
