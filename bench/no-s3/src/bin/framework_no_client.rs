//! The s3batch version of the pair without an S3 client: the one-line task, on s3batch built
//! without its `s3` feature.

use s3batch::{Object, TaskError};

#[s3batch::task]
async fn hello(obj: Object) -> Result<String, TaskError> {
    Ok(s3batch_bench_no_s3::greeting(&obj.bucket, &obj.key))
}
