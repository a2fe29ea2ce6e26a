//! The s3batch version of the baseline: the same trivial task, with an aws-sdk-s3 `Client`
//! parameter so that, like the hand-written one, it builds a client at start.

use s3batch::{aws_sdk_s3::Client, Object, TaskError};

#[s3batch::task]
async fn hello(obj: Object, _s3: Client) -> Result<String, TaskError> {
    Ok(s3batch_bench::greeting(&obj.bucket, &obj.key))
}
