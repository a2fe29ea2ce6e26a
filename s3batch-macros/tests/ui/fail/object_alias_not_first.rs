use s3batch::{Job, Object as Obj, TaskError};

#[s3batch::task]
async fn swapped(job: Job, obj: Obj) -> Result<String, TaskError> {
    Ok(format!("{} {}", job.id, obj.key))
}
