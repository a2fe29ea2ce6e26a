//! A one-line task without an S3 client, on the facade without its default features.

use s3batch::{Object, TaskError};

#[s3batch::task]
async fn no_client(obj: Object) -> Result<String, TaskError> {
    Ok(format!(
        "{} has {} bytes in its key",
        obj.bucket,
        obj.key.len()
    ))
}
