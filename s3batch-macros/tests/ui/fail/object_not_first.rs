use s3batch::{Job, Object, TaskError};

#[s3batch::task]
async fn swapped(job: Job, obj: Object) -> Result<String, TaskError> {
    Ok(format!("{} {}", job.id, obj.key))
}
