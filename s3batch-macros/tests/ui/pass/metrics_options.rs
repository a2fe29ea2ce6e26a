mod lambda {
    use s3batch::metrics::{Metrics, Unit};
    use s3batch::{Object, TaskError};

    // The metrics options, and the `Metrics` extractor.
    #[s3batch::task(
        metrics_namespace = "MyCompany/S3Batch",
        metrics_service = "thumbnails",
        metrics_job_dimension = true
    )]
    async fn measured(obj: Object, metrics: Metrics) -> Result<String, TaskError> {
        metrics
            .add("KeyBytes", Unit::Bytes, obj.key.len() as f64)
            .map_err(TaskError::permanent)?;
        Ok(obj.key)
    }
}

fn main() {}
