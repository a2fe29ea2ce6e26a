//! The renamed facade re-exported from a module, as a crate that wraps its dependencies
//! does: the attribute and its `crate = "…"` both go through `crate::deps::s3`.

mod deps {
    pub use batch as s3;
}

use deps::s3::{Job, Object, TaskError};

#[deps::s3::task(
    crate = "crate::deps::s3",
    treat_missing_keys_as = "Succeeded",
    max_result_len = 64
)]
async fn reexported(obj: Object, job: Job) -> Result<String, TaskError> {
    Ok(format!("{} in {}", obj.key, job.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deps::s3::testing::{invoke, EventBuilder};
    use deps::s3::ResultCode;

    #[tokio::test]
    async fn the_task_runs() {
        let event = EventBuilder::v1()
            .job_id("job-2")
            .object("bucket", "c+d.txt");
        let r = invoke(reexported, event).await.unwrap();
        assert_eq!(r.results.len(), 1, "{r:?}");
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
        assert_eq!(r.results[0].result_string, "c+d.txt in job-2");
    }
}
