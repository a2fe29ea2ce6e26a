use s3batch::Object;

type Answer = String;

#[s3batch::task]
async fn text(obj: Object) -> Answer {
    obj.key
}
