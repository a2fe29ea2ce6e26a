//! The `#[s3batch::task]` signatures that take the SDK's `Client`. The attribute's UI tests
//! (`s3batch-macros/tests/ui.rs`) build the facade without the `s3` feature, so these two cases
//! are here: each is expanded with its generated `main` (compiled, not called: it would wait
//! for the Lambda Runtime API), and the task is run through the handler with a client of the
//! test's own (`s3batch::testing::with_client`), its responses mocked with aws-smithy-mocks.

use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule};
use s3batch::aws_sdk_s3::config::retry::RetryConfig;
use s3batch::aws_sdk_s3::operation::head_object::HeadObjectOutput;
use s3batch::aws_sdk_s3::primitives::SdkBody;
use s3batch::aws_sdk_s3::Client;
use s3batch::testing::{client_config, invoke_with, with_client, EventBuilder};
use s3batch::{Context, Options, Response, ResultCode};

// The generated `main` is compiled but never called.
#[allow(dead_code)]
mod extractors {
    use s3batch::aws_sdk_s3::Client;
    use s3batch::{Context, Job, Object, TaskError, UserArgs};

    #[derive(serde::Deserialize)]
    pub(crate) struct Args {
        dest: String,
    }

    // Extractors come in any order after the `Object`.
    #[s3batch::task]
    pub(crate) async fn all(
        obj: Object,
        job: Job,
        UserArgs(args): UserArgs<Args>,
        ctx: Context,
        s3: Client,
    ) -> Result<String, TaskError> {
        let region = s3.config().region().map(ToString::to_string);
        Ok(format!(
            "{} job={} dest={} request={} region={}",
            obj.key,
            job.id,
            args.dest,
            ctx.request_id,
            region.unwrap_or_default()
        ))
    }
}

// The generated `main` is compiled but never called.
#[allow(dead_code)]
mod with_anyhow {
    use anyhow::Context as _;
    use s3batch::aws_sdk_s3::Client;
    use s3batch::Object;

    // `anyhow::Error` as a task's error type: `?` on any error, `.context(…)`; an SDK error
    // anywhere in its chain is classified as it would be in a `TaskError`.
    #[s3batch::task]
    pub(crate) async fn size(obj: Object, s3: Client) -> Result<String, anyhow::Error> {
        let head = s3
            .head_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
            .with_context(|| format!("HeadObject {}", obj.key))?;
        let etag = head.e_tag().context("no ETag")?;
        let bytes = head.content_length().unwrap_or(0);
        anyhow::ensure!(bytes <= 10, "too large: {bytes} bytes");
        Ok(format!("{bytes} bytes {etag}"))
    }
}

/// A client whose HeadObject calls are answered by `rule`, with no retries.
fn client(rule: &Rule) -> Client {
    Client::from_conf(
        client_config()
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(rule))
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// Runs `size` over one object with a client whose HeadObject answers with `rule`.
async fn run_size(rule: Rule) -> Response {
    let event = EventBuilder::v2().object("bucket", "k");
    let options = Options::new();
    with_client(
        client(&rule),
        invoke_with(with_anyhow::size, options, event, Context::default()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn every_extractor_gets_its_value_in_any_order() {
    let rule = mock!(Client::head_object).then_output(|| HeadObjectOutput::builder().build());
    let event = EventBuilder::v2()
        .job_id("job-7")
        .user_argument("dest", "archive")
        .object("bucket", "a b.txt");
    let mut ctx = Context::default();
    ctx.request_id = "req-1".into();
    let response = with_client(
        client(&rule),
        invoke_with(extractors::all, Options::new(), event, ctx),
    )
    .await
    .unwrap();
    let result = &response.results[0];
    assert_eq!(result.result_code, ResultCode::Succeeded, "{result:?}");
    assert_eq!(
        result.result_string,
        "a b.txt job=job-7 dest=archive request=req-1 region=us-east-1"
    );
}

#[tokio::test]
async fn an_anyhow_task_succeeds_with_its_output() {
    let rule = mock!(Client::head_object)
        .match_requests(|r| r.bucket() == Some("bucket") && r.key() == Some("k"))
        .then_output(|| {
            HeadObjectOutput::builder()
                .content_length(3)
                .e_tag("\"e1\"")
                .build()
        });
    let response = run_size(rule).await;
    let result = &response.results[0];
    assert_eq!(result.result_code, ResultCode::Succeeded, "{result:?}");
    assert_eq!(result.result_string, "3 bytes \"e1\"");
}

#[tokio::test]
async fn an_anyhow_task_fails_permanently_with_its_own_errors() {
    let too_large = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .content_length(11)
            .e_tag("\"e1\"")
            .build()
    });
    let no_etag = mock!(Client::head_object).then_output(|| HeadObjectOutput::builder().build());
    for (rule, message) in [(too_large, "too large: 11 bytes"), (no_etag, "no ETag")] {
        let response = run_size(rule).await;
        let result = &response.results[0];
        assert_eq!(
            result.result_code,
            ResultCode::PermanentFailure,
            "{result:?}"
        );
        assert!(result.result_string.contains(message), "{result:?}");
    }
}

#[tokio::test]
async fn an_sdk_error_under_anyhow_context_keeps_its_code() {
    let throttled = mock!(Client::head_object).then_http_response(|| {
        s3batch::aws_sdk_s3::config::http::HttpResponse::new(
            503.try_into().unwrap(),
            SdkBody::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                 <Message>Please reduce your request rate.</Message></Error>",
            ),
        )
    });
    let response = run_size(throttled).await;
    let result = &response.results[0];
    assert_eq!(
        result.result_code,
        ResultCode::TemporaryFailure,
        "{result:?}"
    );
    assert!(result.result_string.contains("HeadObject k"), "{result:?}");
    assert!(result.result_string.contains("SlowDown"), "{result:?}");
}
