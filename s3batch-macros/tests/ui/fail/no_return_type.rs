use s3batch::Object;

#[s3batch::task]
async fn silent(obj: Object) {
    let _ = obj;
}
