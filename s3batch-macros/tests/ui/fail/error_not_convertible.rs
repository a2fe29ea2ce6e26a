use s3batch::Object;

struct MyError;

#[s3batch::task]
async fn mine(obj: Object) -> Result<String, MyError> {
    Ok(obj.key)
}
