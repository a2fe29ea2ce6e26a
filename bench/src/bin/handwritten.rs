//! The hand-written baseline Lambda: `lambda_runtime` + `aws_lambda_events` types, with an
//! aws-sdk-s3 client built at start like the s3batch version's `Client` parameter.

use aws_lambda_events::s3::batch_job::{S3BatchJobEvent, S3BatchJobResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::new(&config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3BatchJobEvent>| {
        // The trivial task makes no S3 call; the client is here for its cold-start cost.
        let _s3 = s3.clone();
        async move { Ok::<S3BatchJobResponse, Error>(s3batch_bench::handwritten::handle(event.payload)) }
    }))
    .await
}
