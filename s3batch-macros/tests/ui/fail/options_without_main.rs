use s3batch::{Object, TaskError};

#[s3batch::task(main = false, concurrency = 4)]
async fn own(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}

fn main() {}
