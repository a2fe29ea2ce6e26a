use s3batch::{Object, TaskError};

#[s3batch::task(treat_missing_keys_as = "Failed")]
async fn code(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
