// Two mistakes, two errors, each at its own token; nothing more.
use s3batch::Object;

#[s3batch::task]
async fn both(obj: Object, n: u32) -> String {
    format!("{} {n}", obj.key)
}
