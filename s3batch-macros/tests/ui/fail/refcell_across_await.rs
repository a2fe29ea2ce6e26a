use s3batch::{Object, TaskError};
use std::cell::RefCell;

async fn fetch() {}

#[s3batch::task]
async fn remember(obj: Object) -> Result<String, TaskError> {
    let seen = RefCell::new(Vec::new());
    let mut list = seen.borrow_mut();
    fetch().await;
    list.push(obj.key.clone());
    drop(list);
    Ok(obj.key)
}
