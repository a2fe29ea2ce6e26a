{%- if no_user_args == true or no_user_args == "true" %}{% assign with_args = false %}{% else %}{% assign with_args = true %}{% endif -%}
{%- if s3_client == true or s3_client == "true" %}{% assign with_s3 = true %}{% else %}{% assign with_s3 = false %}{% endif -%}
//! {{ project_name }}: the function an S3 Batch Operations job calls (`LambdaInvoke`) once per
//! batch of objects. s3batch reads the event (schema 1.0 and 2.0), decodes each key, runs
//! `process` once per object and answers with one result per task.

{% if with_s3 -%}
use s3batch::aws_sdk_s3::Client;
{% endif -%}
use s3batch::{Object, TaskError{% if with_args %}, UserArgs{% endif %}};
{%- if with_args %}
use serde::Deserialize;

/// The job's user arguments (schema 2.0 `UserArguments`). Every field is optional here, so a
/// schema 1.0 job, which has none, works too; a required field makes a 1.0 job fail each task
/// with a message saying so.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    /// `"UserArguments": {"greeting": "hi"}`
    greeting: Option<String>,
}
{%- endif %}

/// One object. `Ok` → `Succeeded` with the value as the result string; `Err` →
/// `TemporaryFailure` (S3 retries it) or `PermanentFailure`, with the error's message.
#[s3batch::task]
{%- if with_s3 and with_args %}
async fn process(
    obj: Object,
    s3: Client,
    UserArgs(args): UserArgs<Args>,
) -> Result<String, TaskError> {
{%- else %}
async fn process(obj: Object{% if with_s3 %}, s3: Client{% endif %}{% if with_args %}, UserArgs(args): UserArgs<Args>{% endif %}) -> Result<String, TaskError> {
{%- endif %}
    if obj.key.ends_with('/') {
        let message = format!("{} is a folder marker", obj.key);
        return Err(TaskError::permanent(message));
    }
{%- if with_s3 %}
    let head = s3
        .head_object()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .set_version_id(obj.version_id.clone())
        .send()
        .await?;
    let size = head.content_length().unwrap_or_default();
{%- endif %}
{%- if with_args %}
    let greeting = args.greeting.as_deref().unwrap_or("hello");
{%- else %}
    let greeting = "hello";
{%- endif %}
{%- if with_s3 %}
    let (bucket, key) = (&obj.bucket, &obj.key);
    Ok(format!("{greeting} s3://{bucket}/{key} ({size} bytes)"))
{%- else %}
    Ok(format!("{greeting} s3://{}/{}", obj.bucket, obj.key))
{%- endif %}
}

#[cfg(test)]
mod tests {
    use super::*;
{%- if with_s3 %}
    use s3batch::testing::{client_config, invoke_with_client, EventBuilder};
{%- else %}
    use s3batch::testing::{invoke, EventBuilder};
{%- endif %}
    use s3batch::ResultCode;
{%- if with_s3 %}

    /// A client for an S3 that is not there (a closed loopback port): no AWS needed. For
    /// answers of your own, add an aws-smithy-mocks HTTP client (see the page
    /// `s3batch::guide::testing` of s3batch's docs: `cargo doc -p s3batch --open`).
    fn offline_client() -> Client {
        Client::from_conf(client_config().endpoint_url("http://127.0.0.1:1").build())
    }
{%- endif %}

    #[tokio::test]
    async fn answers_each_task() {
        let event = EventBuilder::v2()
{%- if with_args %}
            .user_argument("greeting", "hi")
{%- endif %}
            .encoded_object("my-bucket", "photos/a+b%C3%A9.jpg")
            .object("my-bucket", "folder/");
{%- if with_s3 %}
        let response = invoke_with_client(process, event, offline_client())
            .await
            .unwrap();
{%- else %}
        let response = invoke(process, event).await.unwrap();
{%- endif %}

        assert_eq!(response.results.len(), 2);
{%- if with_s3 %}
        // No S3 answered: a temporary failure, which S3 Batch Operations retries.
        let first = &response.results[0];
        assert_eq!(first.result_code, ResultCode::TemporaryFailure);
{%- else %}
        let first = &response.results[0];
        assert_eq!(first.result_code, ResultCode::Succeeded);
        assert_eq!(first.result_string, "{% if with_args %}hi{% else %}hello{% endif %} s3://my-bucket/photos/a bé.jpg");
{%- endif %}
        let second = &response.results[1];
        assert_eq!(second.result_code, ResultCode::PermanentFailure);
        assert_eq!(second.result_string, "folder/ is a folder marker");
    }
}
