use s3batch::Object;

#[s3batch::task]
async fn text(obj: Object) -> String {
    obj.key
}
