//! The S3-calling examples as real Lambdas against a real S3 server: `copy_rename` and `tag`
//! under `cargo lambda watch`, invoked through the Lambda Invoke API with events of both
//! schemas, their effects checked in moto with aws-sdk-s3.

use s3batch::aws_sdk_s3::Client;
use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{LambdaWatch, Moto};

const SOURCE: &str = "source-bucket";
const DEST: &str = "dest-bucket";

/// Keys that break naive handlers, as `(key, key as S3 Batch Operations sends it)`. The
/// encoded forms are written out by hand from S3's rule (form-style: `+` for a space, `%2B`
/// for a plus), not produced by s3batch's own encoder.
fn tricky_keys() -> Vec<(String, String)> {
    let long = format!("long/{}", "é".repeat(509)) + "x";
    assert_eq!(long.len(), 1024);
    let long_encoded = format!("long/{}", "%C3%A9".repeat(509)) + "x";
    vec![
        ("with space.txt".into(), "with+space.txt".into()),
        ("a+b.txt".into(), "a%2Bb.txt".into()),
        ("100% done ✓.txt".into(), "100%25+done+%E2%9C%93.txt".into()),
        (
            "café/ünïcödé 😀.jpg".into(),
            "caf%C3%A9/%C3%BCn%C3%AFc%C3%B6d%C3%A9+%F0%9F%98%80.jpg".into(),
        ),
        (
            "deep/er/path/file.txt".into(),
            "deep/er/path/file.txt".into(),
        ),
        ("dots/../up.txt".into(), "dots/../up.txt".into()),
        (
            "{\"json\": [1, 2], \"q\": \"?&=\"}".into(),
            "%7B%22json%22%3A+%5B1%2C+2%5D%2C+%22q%22%3A+%22%3F%26%3D%22%7D".into(),
        ),
        (long, long_encoded),
    ]
}

fn invoke(watch: &LambdaWatch, event: &EventBuilder) -> Response {
    let inv = watch.invoke(&event.to_bytes());
    assert_eq!(inv.status, 200, "{inv:?}\n{}", watch.log());
    assert_eq!(inv.function_error, None, "{inv:?}");
    serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body))
}

async fn body(s3: &Client, bucket: &str, key: &str) -> String {
    String::from_utf8(s3batch_testkit::object_bytes(s3, bucket, key).await).unwrap()
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &str) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"))
        .version_id()
        .unwrap_or_default()
        .to_owned()
}

async fn tags(s3: &Client, key: &str, version: Option<String>) -> Vec<(String, String)> {
    let out = s3
        .get_object_tagging()
        .bucket(SOURCE)
        .key(key)
        .set_version_id(version)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    tags
}

async fn versioned_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            s3batch::aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(s3batch::aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_rename_copies_the_named_version_to_the_decoded_key() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    versioned_bucket(&s3, SOURCE).await;
    s3.create_bucket().bucket(DEST).send().await.unwrap();
    s3.create_bucket()
        .bucket("other-dest")
        .send()
        .await
        .unwrap();
    let keys = tricky_keys();
    for (key, _) in &keys {
        put(&s3, SOURCE, key, &format!("content of {key}")).await;
    }
    // Two versions of one object: the event names the first.
    let v1 = put(&s3, SOURCE, "versioned.txt", "first").await;
    let v2 = put(&s3, SOURCE, "versioned.txt", "second").await;
    assert_ne!(v1, v2);

    let mut env = moto.env();
    env.push(("DESTINATION_BUCKET".into(), DEST.into()));
    let watch = tokio::task::spawn_blocking(move || LambdaWatch::start("copy_rename", &env, None))
        .await
        .unwrap();

    // Schema 1.0: destination from the environment, default suffix; keys as S3 sends them.
    let mut event = EventBuilder::v1().job_id("job-v1");
    for (_, encoded) in &keys[..keys.len() - 1] {
        event = event.encoded_object(SOURCE, encoded);
    }
    event = event.object_version(SOURCE, "versioned.txt", &v1);
    let r = invoke(&watch, &event);
    assert_eq!(r.invocation_schema_version, "1.0");
    assert_eq!(r.results.len(), keys.len());
    for (i, result) in r.results.iter().enumerate() {
        assert_eq!(result.task_id, format!("task-{i}"));
        assert_eq!(result.result_code, ResultCode::Succeeded, "{result:?}");
    }
    for (key, _) in &keys[..keys.len() - 1] {
        let copy = format!("{key}_new_suffix");
        assert_eq!(body(&s3, DEST, &copy).await, format!("content of {key}"));
        assert!(
            r.results
                .iter()
                .any(|res| res.result_string.contains(&format!("s3://{DEST}/{copy} "))),
            "no result names {copy}"
        );
    }
    assert_eq!(body(&s3, DEST, "versioned.txt_new_suffix").await, "first");

    // Schema 2.0: destination and suffix from the user arguments; the 1,024-byte key keeps
    // its length (no suffix) and a key that does not exist is a permanent failure.
    let (long, long_encoded) = keys.last().unwrap();
    let event = EventBuilder::v2()
        .user_argument("destBucket", "other-dest")
        .user_argument("keySuffix", "")
        .encoded_object(SOURCE, long_encoded)
        .encoded_object(SOURCE, "a%2Bb.txt")
        .object(SOURCE, "no such key.txt");
    let r = invoke(&watch, &event);
    assert_eq!(r.invocation_schema_version, "2.0");
    assert_eq!(r.results.len(), 3, "{r:?}");
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded, "{r:?}");
    assert_eq!(r.results[1].result_code, ResultCode::Succeeded, "{r:?}");
    assert_eq!(r.results[2].result_code, ResultCode::PermanentFailure);
    assert!(
        r.results[2].result_string.contains("NoSuchKey"),
        "{:?}",
        r.results[2]
    );
    assert_eq!(
        body(&s3, "other-dest", long).await,
        format!("content of {long}")
    );
    assert_eq!(
        body(&s3, "other-dest", "a+b.txt").await,
        "content of a+b.txt"
    );
    // A literal plus stayed a plus: nothing was written under "a b.txt" (S3 says 404, not
    // just any error).
    let head = s3
        .head_object()
        .bucket("other-dest")
        .key("a b.txt")
        .send()
        .await
        .expect_err("nothing may be written under \"a b.txt\"");
    assert!(
        head.as_service_error().is_some_and(|e| e.is_not_found()),
        "{head:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_applies_its_user_arguments() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    versioned_bucket(&s3, SOURCE).await;
    let keys = tricky_keys();
    for (key, _) in &keys {
        put(&s3, SOURCE, key, "x").await;
    }
    let v1 = put(&s3, SOURCE, "versioned.txt", "first").await;
    let v2 = put(&s3, SOURCE, "versioned.txt", "second").await;
    // A tag the object already has is kept.
    s3.put_object_tagging()
        .bucket(SOURCE)
        .key("with space.txt")
        .tagging(
            s3batch::aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    s3batch::aws_sdk_s3::types::Tag::builder()
                        .key("owner")
                        .value("me")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let env = moto.env();
    let watch = tokio::task::spawn_blocking(move || LambdaWatch::start("tag", &env, None))
        .await
        .unwrap();

    let mut event = EventBuilder::v2()
        .user_argument("tagKey", "retention")
        .user_argument("tagValue", "7y");
    for (_, encoded) in &keys {
        event = event.encoded_object(SOURCE, encoded);
    }
    event = event.object_version(SOURCE, "versioned.txt", &v1);
    let r = invoke(&watch, &event);
    assert_eq!(r.results.len(), keys.len() + 1, "{r:?}");
    for result in &r.results {
        assert_eq!(result.result_code, ResultCode::Succeeded, "{result:?}");
    }
    let first: serde_json::Value = serde_json::from_str(&r.results[0].result_string).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"key": "with space.txt", "version": null, "tags": 2})
    );

    let retention = ("retention".to_string(), "7y".to_string());
    for (key, _) in &keys {
        let got = tags(&s3, key, None).await;
        assert!(got.contains(&retention), "{key}: {got:?}");
    }
    assert_eq!(
        tags(&s3, "with space.txt", None).await,
        [("owner".to_string(), "me".to_string()), retention.clone()]
    );
    // Only the version the event named was tagged.
    assert_eq!(
        tags(&s3, "versioned.txt", Some(v1)).await,
        std::slice::from_ref(&retention)
    );
    assert!(tags(&s3, "versioned.txt", Some(v2)).await.is_empty());

    // Wrong user arguments: every task fails permanently, naming the problem.
    let bad = EventBuilder::v2()
        .user_argument("tagKey", "retention")
        .object(SOURCE, "a+b.txt");
    let r = invoke(&watch, &bad);
    assert_eq!(r.results.len(), 1, "{r:?}");
    assert_eq!(r.results[0].result_code, ResultCode::PermanentFailure);
    assert!(
        r.results[0].result_string.contains("tagValue"),
        "{:?}",
        r.results[0]
    );
}
