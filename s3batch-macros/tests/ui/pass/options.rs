mod lambda {
    use s3batch::{Object, TaskError};

    #[s3batch::task(
        concurrency = 8,
        deadline_margin_ms = 250,
        max_result_len = 4096,
        treat_missing_keys_as = "TemporaryFailure"
    )]
    async fn tuned(obj: Object) -> Result<String, TaskError> {
        Ok(obj.key)
    }
}

fn main() {}
