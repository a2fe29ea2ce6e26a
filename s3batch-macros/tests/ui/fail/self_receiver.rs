use s3batch::{Object, TaskError};

struct Worker;

impl Worker {
    #[s3batch::task]
    async fn run(&self, obj: Object) -> Result<String, TaskError> {
        Ok(obj.key)
    }
}

fn main() {}
