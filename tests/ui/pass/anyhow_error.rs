// `anyhow::Error` as a task's error type: `?` on any error, `.context(…)`; an SDK error
// anywhere in its chain is classified as it would be in a `TaskError`.
mod lambda {
    use anyhow::Context;
    use s3batch::aws_sdk_s3::Client;
    use s3batch::Object;

    #[s3batch::task]
    async fn size(obj: Object, s3: Client) -> Result<String, anyhow::Error> {
        let head = s3
            .head_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
            .with_context(|| format!("HeadObject {}", obj.key))?;
        let limit: i64 = std::env::var("LIMIT").unwrap_or_else(|_| "10".into()).parse()?;
        anyhow::ensure!(head.content_length().unwrap_or(0) <= limit, "too large");
        Ok(format!("{} bytes", head.content_length().unwrap_or(0)))
    }
}

fn main() {}
