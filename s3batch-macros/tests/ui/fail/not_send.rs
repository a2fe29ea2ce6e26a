use s3batch::{Object, TaskError};
use std::rc::Rc;

async fn fetch() {}

#[s3batch::task]
async fn shared(obj: Object) -> Result<String, TaskError> {
    let key = Rc::new(obj.key);
    fetch().await;
    Ok(key.to_string())
}
