mod lambda {
    use s3batch::aws_sdk_s3::Client;
    use s3batch::{Context, Job, Object, TaskError, UserArgs};

    #[derive(serde::Deserialize)]
    struct Args {
        #[allow(dead_code)]
        dest: String,
    }

    // Extractors come in any order after the `Object`.
    #[s3batch::task]
    async fn all(obj: Object, job: Job, UserArgs(args): UserArgs<Args>, ctx: Context, s3: Client) -> Result<String, TaskError> {
        let _ = (job, args, ctx, s3);
        Ok(obj.key)
    }
}

fn main() {}
