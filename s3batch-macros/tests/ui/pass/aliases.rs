// The macro asks the type system, not the spelling: a renamed `Object` and an alias of
// `Result` are the same types, so they are a task like any other.
mod lambda {
    use s3batch::{Job, Object as Obj, TaskError};

    type Res<T> = Result<T, TaskError>;

    #[s3batch::task]
    async fn renamed(obj: Obj, job: Job) -> Res<String> {
        Ok(format!("{} {}", obj.key, job.id))
    }
}

mod paths {
    pub type Input = s3batch::Object;
    pub type Outcome = Result<(), anyhow::Error>;

    #[s3batch::task(main = false)]
    async fn aliased(_obj: Input) -> Outcome {
        Ok(())
    }
}

fn main() {}
