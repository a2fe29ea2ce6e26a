use s3batch::{Object, TaskError};

#[s3batch::task]
async fn takes_string(obj: Object, name: String) -> Result<String, TaskError> {
    Ok(format!("{} {name}", obj.key))
}
