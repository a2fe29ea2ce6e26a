// With `main = false` the signature is checked all the same, at the same tokens.
use s3batch::{Object, TaskError};

#[s3batch::task(main = false)]
async fn takes_number(obj: Object, n: u32) -> Result<String, TaskError> {
    Ok(format!("{} {n}", obj.key))
}

fn main() {}
