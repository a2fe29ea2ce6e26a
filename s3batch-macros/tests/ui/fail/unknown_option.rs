use s3batch::{Object, TaskError};

#[s3batch::task(concurency = 8)]
async fn typo(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
