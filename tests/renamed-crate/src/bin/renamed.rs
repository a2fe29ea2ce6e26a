//! The facade as a renamed dependency (`batch = { package = "s3batch", … }`), named by
//! `crate = "batch"`. The options and the extractor make the generated code reach every item
//! of `__private` it can use.

use batch::{Job, Object, TaskError};

#[batch::task(
    crate = "batch",
    treat_missing_keys_as = "TemporaryFailure",
    concurrency = 2
)]
async fn renamed(obj: Object, job: Job) -> Result<String, TaskError> {
    Ok(format!("{} in {}", obj.key, job.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch::testing::{invoke, EventBuilder};
    use batch::ResultCode;

    #[tokio::test]
    async fn the_task_runs() {
        let event = EventBuilder::v2()
            .job_id("job-1")
            .object("bucket", "a b.txt");
        let r = invoke(renamed, event).await.unwrap();
        assert_eq!(r.results.len(), 1, "{r:?}");
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
        assert_eq!(r.results[0].result_string, "a b.txt in job-1");
    }
}
