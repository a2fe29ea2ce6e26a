use s3batch::{Object, TaskError};

#[s3batch::task]
async fn borrowed(obj: &Object) -> Result<String, TaskError> {
    Ok(obj.key.clone())
}
