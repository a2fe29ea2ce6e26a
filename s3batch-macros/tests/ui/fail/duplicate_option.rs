use s3batch::{Object, TaskError};

#[s3batch::task(concurrency = 8, concurrency = 16)]
async fn twice(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
