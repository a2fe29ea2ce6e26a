//! Copies each object, at the version the manifest names, to a destination bucket under a
//! renamed key: AWS's Python sample for S3 Batch Operations, without its bugs (keys with
//! spaces, regional bucket ARNs, every error reported as permanent).
//!
//! The destination comes from the job's user argument `destBucket` (schema 2.0) or else from
//! the `DESTINATION_BUCKET` environment variable; the suffix from `keySuffix` or
//! `KEY_SUFFIX` (default `_new_suffix`).

use s3batch::aws_sdk_s3::Client;
use s3batch::key::copy_source;
use s3batch::{BoxError, FromTask, Job, Object, TaskError, TaskParts};

/// Where copies go: read from the environment once per cold start, overridable per job.
struct Destination {
    bucket: String,
    suffix: String,
}

struct Defaults {
    bucket: Option<String>,
    suffix: String,
}

impl FromTask for Destination {
    type State = Defaults;

    async fn init() -> Result<Defaults, BoxError> {
        Ok(Defaults {
            bucket: std::env::var("DESTINATION_BUCKET")
                .ok()
                .filter(|b| !b.is_empty()),
            suffix: std::env::var("KEY_SUFFIX").unwrap_or_else(|_| "_new_suffix".into()),
        })
    }

    fn from_task(defaults: &Defaults, parts: &TaskParts<'_>) -> Result<Self, TaskError> {
        let args = &parts.job.user_arguments;
        let bucket = args
            .get("destBucket")
            .or(defaults.bucket.as_ref())
            .ok_or_else(|| {
                TaskError::permanent(
                    "no destination: set the user argument `destBucket` or DESTINATION_BUCKET",
                )
            })?;
        let suffix = args.get("keySuffix").unwrap_or(&defaults.suffix);
        Ok(Destination {
            bucket: bucket.clone(),
            suffix: suffix.clone(),
        })
    }
}

#[s3batch::task]
async fn copy_rename(
    obj: Object,
    s3: Client,
    dest: Destination,
    job: Job,
) -> Result<String, TaskError> {
    let new_key = format!("{}{}", obj.key, dest.suffix);
    let copied = s3
        .copy_object()
        .copy_source(copy_source(
            &obj.bucket,
            &obj.key,
            obj.version_id.as_deref(),
        ))
        .bucket(&dest.bucket)
        .key(&new_key)
        .send()
        .await?;
    let version = copied.version_id().unwrap_or("none");
    Ok(format!(
        "job {}: copied to s3://{}/{new_key} (version {version})",
        job.id, dest.bucket
    ))
}
