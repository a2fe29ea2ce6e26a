//! Does not compile, on purpose (`tests/no_s3.rs` checks the error): an `aws_sdk_s3::Client`
//! parameter while s3batch is built without its `s3` feature.

use s3batch::{Object, TaskError};

#[s3batch::task]
async fn with_client(obj: Object, s3: aws_sdk_s3::Client) -> Result<String, TaskError> {
    let _ = s3;
    Ok(obj.key)
}
