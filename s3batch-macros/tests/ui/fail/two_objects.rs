use s3batch::{Object, TaskError};

#[s3batch::task]
async fn twice(obj: Object, other: Object) -> Result<String, TaskError> {
    Ok(format!("{} {}", obj.key, other.key))
}
