//! Concurrency inside one invocation: 100 tasks that each await 10 ms (a Tokio sleep standing
//! in for an S3 round trip) through `Handler::handle_bytes`, on a multi-threaded runtime like
//! the generated `main`'s. Run one after another they would take 1 s; with the default
//! concurrency of 64 they take two waves (~20 ms), with 100 one wave (~10 ms).

use criterion::{criterion_group, criterion_main, Criterion};
use s3batch::{Context, Handler, Object, Options, TaskError};
use std::time::Duration;

async fn io_10ms(obj: Object) -> Result<String, TaskError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(obj.task_id)
}

fn concurrency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = s3batch_bench::event(100);
    let context = Context::default();
    let mut group = c.benchmark_group("io-100x10ms");
    group.sample_size(30);
    for (name, options) in [
        ("default-64", Options::new()),
        (
            "concurrency-100",
            Options::builder().concurrency(100).build(),
        ),
    ] {
        let handler = rt.block_on(Handler::new(io_10ms, options)).unwrap();
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let response = handler.handle_bytes(&event, &context).await.unwrap();
                assert_eq!(response.results.len(), 100);
                response
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = concurrency
}
criterion_main!(benches);
