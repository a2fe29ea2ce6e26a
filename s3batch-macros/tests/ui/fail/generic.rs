use s3batch::{Object, TaskError};

#[s3batch::task]
async fn generic<T: Default>(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
