//! Adds one tag to each object, keeping the tags it already has. A schema 2.0 job: the tag
//! comes from the job's user arguments, read into a typed struct.
//!
//! ```text
//! aws s3control create-job ... --operation '{"LambdaInvoke": {"FunctionArn": "...",
//!   "InvocationSchemaVersion": "2.0",
//!   "UserArguments": {"tagKey": "retention", "tagValue": "7y"}}}'
//! ```

use s3batch::aws_sdk_s3::types::{Tag, Tagging};
use s3batch::aws_sdk_s3::Client;
use s3batch::{Object, TaskError, UserArgs};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    tag_key: String,
    tag_value: String,
}

/// The result string: this struct as JSON.
#[derive(Serialize)]
struct Tagged {
    key: String,
    version: Option<String>,
    tags: usize,
}

#[s3batch::task(concurrency = 16)]
async fn tag(obj: Object, s3: Client, UserArgs(args): UserArgs<Args>) -> Result<Tagged, TaskError> {
    let current = s3
        .get_object_tagging()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .set_version_id(obj.version_id.clone())
        .send()
        .await?;
    let mut tags: Vec<Tag> = current
        .tag_set()
        .iter()
        .filter(|t| t.key() != args.tag_key)
        .cloned()
        .collect();
    if tags.len() >= 10 {
        return Err(TaskError::permanent(format!(
            "{} already has 10 tags",
            obj.key
        )));
    }
    tags.push(
        Tag::builder()
            .key(&args.tag_key)
            .value(&args.tag_value)
            .build()
            .map_err(TaskError::permanent)?,
    );
    let count = tags.len();
    let tagging = Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(TaskError::permanent)?;
    s3.put_object_tagging()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .set_version_id(obj.version_id.clone())
        .tagging(tagging)
        .send()
        .await?;
    Ok(Tagged {
        key: obj.key,
        version: obj.version_id,
        tags: count,
    })
}
