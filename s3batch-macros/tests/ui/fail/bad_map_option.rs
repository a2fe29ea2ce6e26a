use s3batch::{Object, TaskError};

#[s3batch::task(map_failure = "retry", map_key_encoding = "base64")]
async fn code(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
