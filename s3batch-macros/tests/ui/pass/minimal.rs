// The generated `main` is put in a module here so that trybuild runs the file's own `main`
// (the generated one would wait for the Lambda Runtime API). It still has to compile.
mod lambda {
    use s3batch::{Object, TaskError};

    #[s3batch::task]
    async fn archive(obj: Object) -> Result<String, TaskError> {
        Ok(format!("archived {}", obj.key))
    }
}

fn main() {}
