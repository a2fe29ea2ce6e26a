//! The hand-written baseline without an S3 client: `lambda_runtime` + `aws_lambda_events`
//! types and the same default subscriber as the s3batch version's generated `main`.

use aws_lambda_events::s3::batch_job::{S3BatchJobEvent, S3BatchJobResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<S3BatchJobEvent>| async move {
            Ok::<S3BatchJobResponse, Error>(s3batch_bench_no_s3::handwritten::handle(event.payload))
        },
    ))
    .await
}
