//! Warm envelope overhead: JSON bytes in, response bytes out, for one event of 1 and of 100
//! tasks, three ways (see `s3batch_bench::warm`): `s3batch` (the `#[s3batch::task]` function
//! through `Handler::handle_bytes`), `handwritten` (`aws_lambda_events` types doing the same
//! work) and `serde_floor` (`serde_json` parse and serialize alone).
//!
//! All three run under the same Tokio current-thread runtime via `to_async`, and their
//! outputs are checked to be byte-identical before anything is timed.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use s3batch::{Handler, Options};
use s3batch_bench::warm::{self, FloorResponse};
use std::time::Duration;

fn envelope(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handler = rt
        .block_on(Handler::new(s3batch_bench::hello, Options::new()))
        .unwrap();
    for tasks in [1, 100] {
        let event = s3batch_bench::event(tasks);
        let expected = rt.block_on(warm::s3batch(&handler, &event));
        s3batch_bench::check_response(&event, &expected).unwrap();
        let finished: FloorResponse = serde_json::from_slice(&expected).unwrap();
        assert_eq!(warm::handwritten(&event), expected);
        assert_eq!(warm::serde_floor(&event, &finished), expected);

        let mut group = c.benchmark_group(format!("envelope-{tasks}"));
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_function("s3batch", |b| {
            b.to_async(&rt).iter(|| warm::s3batch(&handler, &event))
        });
        group.bench_function("handwritten", |b| {
            b.to_async(&rt).iter(|| async { warm::handwritten(&event) })
        });
        group.bench_function("serde_floor", |b| {
            b.to_async(&rt)
                .iter(|| async { warm::serde_floor(&event, &finished) })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = envelope
}
criterion_main!(benches);
