//! The Distributed Map options through the attribute: `map_failure = "report"` (a failed item
//! does not fail the child) and `map_key_encoding = "url"` (keys decoded as S3 Batch manifests
//! encode them), observed served as a Lambda by `tests/distributed_map.rs`.

use batch::{Object, TaskError};

#[batch::task(crate = "batch", map_failure = "report", map_key_encoding = "url")]
async fn map_options(obj: Object) -> Result<String, TaskError> {
    if obj.key.contains("fail") {
        return Err(TaskError::temporary(format!("{} failed", obj.key)));
    }
    Ok(format!("s3://{}/{}", obj.bucket, obj.key))
}
