mod lambda {
    // `crate = "…"` names the facade when it is renamed or re-exported.
    use s3batch as batch;

    #[batch::task(crate = "batch")]
    async fn renamed(obj: batch::Object) -> Result<String, batch::TaskError> {
        Ok(obj.key)
    }
}

fn main() {}
