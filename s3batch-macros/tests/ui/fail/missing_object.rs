use s3batch::TaskError;

#[s3batch::task]
async fn nothing() -> Result<String, TaskError> {
    Ok(String::new())
}
