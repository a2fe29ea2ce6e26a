use s3batch::{Object, TaskError};

// A namespace CloudWatch would refuse, an empty service and a job dimension that is not a
// bool: each is reported at its value.
#[s3batch::task(
    metrics_namespace = "AWS/Lambda",
    metrics_service = "",
    metrics_job_dimension = "yes"
)]
async fn measured(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}
