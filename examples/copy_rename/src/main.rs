//! Copies each object, at the version the manifest names, to a destination bucket under a
//! renamed key: AWS's Python sample for S3 Batch Operations, without its bugs (keys with
//! spaces, regional bucket ARNs, every error reported as permanent).
//!
//! The destination comes from the job's user argument `destBucket` (schema 2.0, or a
//! Distributed Map's `BatchInput`) or else from the `DESTINATION_BUCKET` environment variable;
//! the suffix from `keySuffix` or `KEY_SUFFIX` (default `_new_suffix`). The same binary serves
//! S3 Batch Operations and the Distributed Map in `statemachine.asl.json`.

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
    let copied_to = format!(
        "copied to s3://{}/{new_key} (version {version})",
        dest.bucket
    );
    // A Distributed Map child has no job id.
    Ok(if job.id.is_empty() {
        copied_to
    } else {
        format!("job {}: {copied_to}", job.id)
    })
}

/// Offline: the task runs against an aws-smithy-mocks client handed to the test harness.
#[cfg(test)]
mod tests {
    use super::copy_rename;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};
    use s3batch::aws_sdk_s3::config::retry::RetryConfig;
    use s3batch::aws_sdk_s3::operation::copy_object::CopyObjectOutput;
    use s3batch::aws_sdk_s3::Client;
    use s3batch::testing::{client_config, invoke_with_client, EventBuilder};
    use s3batch::ResultCode;

    fn mocked(interceptor: MockResponseInterceptor) -> Client {
        Client::from_conf(
            client_config()
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    }

    /// The copy goes to the `destBucket` argument under the renamed key, from the versioned,
    /// encoded copy source; a throttled copy is a temporary failure.
    #[tokio::test]
    async fn copies_to_the_renamed_key() {
        let copy = mock!(Client::copy_object)
            .match_requests(|r| {
                r.bucket() == Some("archive")
                    && r.key() == Some("photos/a b+c.jpg.bak")
                    && r.copy_source() == Some("src/photos/a%20b%2Bc.jpg?versionId=v1")
            })
            .then_output(|| CopyObjectOutput::builder().version_id("v9").build());
        let slow = mock!(Client::copy_object)
            .match_requests(|r| r.key() == Some("slow.bak"))
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        let client = mocked(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&copy)
                .with_rule(&slow),
        );
        let event = EventBuilder::v2()
            .job_id("job-1")
            .user_argument("destBucket", "archive")
            .user_argument("keySuffix", ".bak")
            .object_version("src", "photos/a b+c.jpg", "v1")
            .object("src", "slow");
        let response = invoke_with_client(copy_rename, event, client)
            .await
            .unwrap();
        let r = &response.results;
        assert_eq!(
            r[0].result_code,
            ResultCode::Succeeded,
            "{}",
            r[0].result_string
        );
        assert_eq!(
            r[0].result_string,
            "job job-1: copied to s3://archive/photos/a b+c.jpg.bak (version v9)"
        );
        assert_eq!(copy.num_calls(), 1);
        assert_eq!(
            r[1].result_code,
            ResultCode::TemporaryFailure,
            "{}",
            r[1].result_string
        );
    }
}
