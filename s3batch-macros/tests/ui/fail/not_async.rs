use s3batch::{Object, TaskError};

#[s3batch::task]
fn sync(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
