//! The smallest s3batch function: no S3 calls, it reports what it was given.
//!
//! Keys containing `fail-temporary` or `fail-permanent` fail that way, and a key containing
//! `panic` panics, so the safety net can be seen end to end.

use s3batch::{Object, TaskError};

#[s3batch::task]
async fn hello(obj: Object) -> Result<String, TaskError> {
    if obj.key.contains("fail-temporary") {
        return Err(TaskError::temporary(format!(
            "{} is busy, try again",
            obj.key
        )));
    }
    if obj.key.contains("fail-permanent") {
        return Err(TaskError::permanent(format!(
            "{} cannot be processed",
            obj.key
        )));
    }
    if obj.key.contains("panic") {
        panic!("asked to panic on {}", obj.key);
    }
    Ok(format!("hello s3://{}/{}", obj.bucket, obj.key))
}
