//! The handler under Step Functions Distributed Map events: golden events for each item
//! reader's shape (`tests/fixtures/distributed-map/`), hostile events, both failure policies,
//! the deadline, panics and concurrency per item, and S3 Batch events answered as before.

use s3batch_core::map::{
    Answer, FailedBatch, FunctionError, ItemResult, KeyEncoding, MapFailure, MapResponse,
    BATCH_TOO_LARGE, CAUSE_BUDGET, INVALID_EVENT, MAP_RESPONSE_BUDGET, PERMANENT_FAILURE,
    TEMPORARY_FAILURE, UNRECOGNIZED_EVENT,
};
use s3batch_core::{
    BoxError, Context, FromTask, Handler, Object, Options, ResultCode, TaskError, TaskFn,
    TaskParts, UserArgs,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/distributed-map")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reports what it was given; keys naming an outcome get it.
async fn echo(obj: Object) -> Result<String, TaskError> {
    if obj.key.contains("fail-temporary") {
        return Err(TaskError::temporary(format!("{} is busy", obj.key)));
    }
    if obj.key.contains("fail-permanent") {
        return Err(TaskError::permanent(format!("{} is refused", obj.key)));
    }
    if obj.key.contains("missing") {
        return Err(TaskError::permanent(
            "NoSuchKey: The specified key does not exist.",
        ));
    }
    if obj.key.contains("panic") {
        panic!("asked to panic on {}", obj.key);
    }
    if obj.key.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Ok(format!(
        "{}|{}|{}|{}",
        obj.bucket,
        obj.key,
        obj.version_id.as_deref().unwrap_or("-"),
        obj.task_id
    ))
}

async fn serve_with(options: Options, event: &[u8]) -> Result<Answer, FunctionError> {
    let handler = Handler::new(echo, options).await.unwrap();
    served(&handler, event, &Default::default()).await
}

/// `Handler::serve_bytes`'s answer, checked against what the generated `main` serves
/// (`serve_lambda`: a Distributed Map output written straight from the results, the echoes
/// copied from the event): the same bytes once serialized, or the same function error. The
/// tasks run twice.
async fn served<T: TaskFn<A>, A>(
    handler: &Handler<T, A>,
    event: &[u8],
    ctx: &Context,
) -> Result<Answer, FunctionError> {
    let answer = handler.serve_bytes(event, ctx).await;
    let lambda = handler.serve_lambda(event, ctx).await;
    match (&answer, &lambda) {
        (Ok(a), Ok(l)) => assert_eq!(
            serde_json::to_string(l).unwrap(),
            serde_json::to_string(a).unwrap()
        ),
        (Err(a), Err(l)) => assert_eq!(a, l),
        _ => panic!("serve_bytes: {answer:?}; serve_lambda: {lambda:?}"),
    }
    answer
}

fn report() -> Options {
    Options::builder().map_failure(MapFailure::Report).build()
}

fn map(answer: Result<Answer, FunctionError>) -> MapResponse {
    match answer {
        Ok(Answer::Map(m)) => m,
        other => panic!("expected a Distributed Map answer, got {other:?}"),
    }
}

/// An item result's bucket, key, version id, code and text.
type Row<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    ResultCode,
    &'a str,
);

fn rows(m: &MapResponse) -> Vec<Row<'_>> {
    rows_of(&m.results)
}

fn rows_of(results: &[ItemResult]) -> Vec<Row<'_>> {
    results
        .iter()
        .map(|r| {
            (
                r.bucket.as_deref(),
                r.key.as_deref(),
                r.version_id.as_deref(),
                r.result_code,
                r.result_string.as_str(),
            )
        })
        .collect()
}

use ResultCode::{PermanentFailure as Perm, Succeeded as Ok_, TemporaryFailure as Temp};

/// A prefix listing batched with `BatchInput.Bucket`: keys raw (`+` stays), the quoted
/// `Etag` and `LastModified` as a number, an ISO string and a float are accepted, task ids
/// are the positions; the output is S3 Batch's vocabulary, byte for byte.
#[tokio::test]
async fn listing_batch_golden() {
    let m = map(serve_with(Options::new(), &fixture("listing-batch.json")).await);
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"results":[{"bucket":"listing-bucket","key":"photos/a b+c.jpg","versionId":null,"resultCode":"Succeeded","resultString":"listing-bucket|photos/a b+c.jpg|-|0"},{"bucket":"listing-bucket","key":"photos/é 100%.jpg","versionId":null,"resultCode":"Succeeded","resultString":"listing-bucket|photos/é 100%.jpg|-|1"},{"bucket":"listing-bucket","key":"photos/","versionId":null,"resultCode":"Succeeded","resultString":"listing-bucket|photos/|-|2"}]}"#
    );
}

/// One item after an ItemSelector: `Index` is its task id, the answer is one result.
#[tokio::test]
async fn listing_item_golden() {
    let m = map(serve_with(Options::new(), &fixture("listing-item.json")).await);
    assert_eq!(
        rows(&m),
        [(
            Some("listing-bucket"),
            Some("photos/a b+c.jpg"),
            None,
            Ok_,
            "listing-bucket|photos/a b+c.jpg|-|7"
        )]
    );
}

/// CSV items are all strings: `VersionId: ""` is no version, an empty `BatchInput` is
/// accepted, an empty bucket fails that row alone.
#[tokio::test]
async fn csv_batch_golden() {
    let m = map(serve_with(report(), &fixture("csv-batch.json")).await);
    assert_eq!(
        rows(&m),
        [
            (
                Some("csv-bucket"),
                Some("data/2024 report.csv"),
                None,
                Ok_,
                "csv-bucket|data/2024 report.csv|-|0"
            ),
            (
                Some("csv-bucket"),
                Some("data/a+b.csv"),
                Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
                Ok_,
                "csv-bucket|data/a+b.csv|3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY|1"
            ),
            (
                None,
                Some("data/no-bucket.csv"),
                None,
                Perm,
                "invalid item: `Bucket` is empty"
            ),
        ]
    );
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    destination: String,
    max_copies: u32,
}

async fn with_args(obj: Object, UserArgs(a): UserArgs<Args>) -> Result<String, TaskError> {
    Ok(format!(
        "{} -> {} x{}",
        obj.key, a.destination, a.max_copies
    ))
}

/// JSON items with lower-case names, a `null` version, a caller's `TaskId`; `BatchInput`
/// (less the reserved keys) is the `UserArgs`, a number read from its JSON text.
#[tokio::test]
async fn json_batch_golden_with_user_args() {
    let m = map(serve_with(Options::new(), &fixture("json-batch.json")).await);
    assert_eq!(
        rows(&m),
        [
            (
                Some("json-bucket"),
                Some("logs/2024/01/01.json"),
                None,
                Ok_,
                "json-bucket|logs/2024/01/01.json|-|0"
            ),
            (
                Some("json-bucket"),
                Some("logs/ü ñ.json"),
                Some("v2"),
                Ok_,
                "json-bucket|logs/ü ñ.json|v2|job-42"
            ),
        ]
    );
    let handler = Handler::new(with_args, Options::new()).await.unwrap();
    let m = map(handler
        .serve_bytes(&fixture("json-batch.json"), &Default::default())
        .await);
    let texts: Vec<&str> = m.results.iter().map(|r| r.result_string.as_str()).collect();
    assert_eq!(
        texts,
        [
            "logs/2024/01/01.json -> archive-bucket x3",
            "logs/ü ñ.json -> archive-bucket x3"
        ]
    );
}

/// A mismatch names where the arguments came from: `BatchInput` for a batch, `item` for a
/// single item (whose own extra fields are its arguments).
#[tokio::test]
async fn user_args_mismatch_names_batch_input_or_item() {
    let handler = Handler::new(with_args, report()).await.unwrap();
    let m = map(handler
        .serve_bytes(
            br#"{"Items":[{"Key":"a"},{"Key":"b"}],"BatchInput":{"Bucket":"b","maxCopies":"3"}}"#,
            &Default::default(),
        )
        .await);
    for r in &m.results {
        assert_eq!(r.result_code, Perm);
        assert_eq!(r.result_string, "BatchInput: missing field `destination`");
    }
    let m = map(handler
        .serve_bytes(
            br#"{"Bucket":"b","Key":"a","destination":"d","maxCopies":"two"}"#,
            &Default::default(),
        )
        .await);
    assert_eq!(m.results[0].result_code, Perm);
    assert!(
        m.results[0]
            .result_string
            .starts_with("item: argument `maxCopies` = \"two\" is not a valid u32"),
        "{}",
        m.results[0].result_string
    );
    let m = map(handler
        .serve_bytes(
            br#"{"Bucket":"b","Key":"a","destination":"d","maxCopies":2}"#,
            &Default::default(),
        )
        .await);
    assert_eq!(m.results[0].result_string, "a -> d x2");
}

/// JSONL items with `s3Key` and no `BatchInput` at all.
#[tokio::test]
async fn jsonl_batch_golden() {
    let m = map(serve_with(Options::new(), &fixture("jsonl-batch.json")).await);
    assert_eq!(
        rows(&m),
        [
            (
                Some("jsonl-bucket"),
                Some("lines/one.txt"),
                None,
                Ok_,
                "jsonl-bucket|lines/one.txt|-|0"
            ),
            (
                Some("jsonl-bucket"),
                Some("lines/two three.txt"),
                None,
                Ok_,
                "jsonl-bucket|lines/two three.txt|-|1"
            ),
        ]
    );
}

/// An S3 Batch CSV manifest read as CSV: `KeyEncoding: url` in `BatchInput` decodes the keys
/// as S3 Batch does (`+` a space, `%2B` a plus); the result echoes the key as it arrived; a
/// key that does not decode fails alone, naming the encoding. The same items with the
/// encoding set as the function's option instead give the same answer.
#[tokio::test]
async fn s3batch_manifest_read_as_csv_decodes_keys() {
    let expected = [
        (
            Some("manifest-bucket"),
            Some("customer+images%2Fimage%C3%A91.jpg"),
            None,
            Ok_,
            "manifest-bucket|customer images/imageé1.jpg|-|0",
        ),
        (
            Some("manifest-bucket"),
            Some("reports%2F2024+Q1%2BQ2.csv"),
            Some("v7"),
            Ok_,
            "manifest-bucket|reports/2024 Q1+Q2.csv|v7|1",
        ),
        (
            Some("manifest-bucket"),
            Some("%FF%FE.bin"),
            None,
            Perm,
            "invalid item: s3Key \"%FF%FE.bin\" does not decode: not valid UTF-8 after percent-decoding (invalid byte at 0) (KeyEncoding url)",
        ),
    ];
    let event = fixture("s3batch-manifest-csv-batch.json");
    let m = map(serve_with(report(), &event).await);
    assert_eq!(rows(&m), expected);

    let mut v: serde_json::Value = serde_json::from_slice(&event).unwrap();
    v["BatchInput"] = serde_json::json!({});
    let bytes = serde_json::to_vec(&v).unwrap();
    let url = Options::builder()
        .map_failure(MapFailure::Report)
        .map_key_encoding(KeyEncoding::Url)
        .build();
    assert_eq!(rows(&map(serve_with(url, &bytes).await)), expected);
    // Without either, the keys are raw.
    let raw = map(serve_with(report(), &bytes).await);
    assert_eq!(
        raw.results[0].result_string,
        "manifest-bucket|customer+images%2Fimage%C3%A91.jpg|-|0"
    );
    // `BatchInput` wins over the option.
    v["BatchInput"] = serde_json::json!({"KeyEncoding": "raw"});
    let url = Options::builder()
        .map_failure(MapFailure::Report)
        .map_key_encoding(KeyEncoding::Url)
        .build();
    let m = map(serve_with(url, &serde_json::to_vec(&v).unwrap()).await);
    assert_eq!(
        m.results[1].result_string,
        "manifest-bucket|reports%2F2024+Q1%2BQ2.csv|v7|1"
    );
}

/// A task that fails because the key was not found says which encoding was applied.
#[tokio::test]
async fn no_such_key_names_the_encoding() {
    let m = map(serve_with(report(), br#"{"Bucket":"b","Key":"missing a+b.txt"}"#).await);
    assert_eq!(
        m.results[0].result_string,
        "NoSuchKey: The specified key does not exist. [key read with KeyEncoding raw (as is); \
         if the keys are URL-encoded, as in an S3 Batch CSV manifest, set \"KeyEncoding\": \
         \"url\" in BatchInput]"
    );
    let m = map(serve_with(
        report(),
        br#"{"Items":[{"Key":"missing+a.txt"}],"BatchInput":{"Bucket":"b","KeyEncoding":"url"}}"#,
    )
    .await);
    assert!(
        m.results[0]
            .result_string
            .ends_with("[key read with KeyEncoding url (URL-decoded); if the keys are stored as written, set \"KeyEncoding\": \"raw\" in BatchInput]"),
        "{}",
        m.results[0].result_string
    );
}

/// `Items` that is not an array is the shape itself wrong: a named function error, no item
/// run.
#[tokio::test]
async fn items_not_an_array_is_a_named_error() {
    let err = serve_with(Options::new(), &fixture("hostile-items-not-array.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), INVALID_EVENT);
    assert!(
        err.message()
            .starts_with("`Items` is an object, expected an array of items"),
        "{err}"
    );
    let err = serve_with(Options::new(), br#"{"Items":[],"BatchInput":[1]}"#)
        .await
        .unwrap_err();
    assert_eq!(
        (err.error_type(), err.message()),
        (
            INVALID_EVENT,
            "`BatchInput` is an array, expected an object"
        )
    );
}

/// Each bad item gets its own failed result naming the field; the good ones run.
#[tokio::test]
async fn wrong_types_fail_only_their_item() {
    let m = map(serve_with(report(), &fixture("hostile-wrong-types.json")).await);
    let got: Vec<(ResultCode, &str)> = m
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect();
    let missing = "missing `Bucket`: the item has none and neither has `BatchInput` (a prefix \
                   listing's items carry no bucket: set `BatchInput.Bucket` in the \
                   ItemBatcher, or `Bucket` in the ItemSelector)";
    assert_eq!(
        got,
        [
            (Perm, "invalid item: `Key` is a number, expected a string"),
            (
                Perm,
                "invalid item: `Bucket` is an array, expected a string"
            ),
            (
                Perm,
                &*format!(
                    "invalid item: {missing}; `VersionId` is a number, expected a string"
                )
            ),
            (Perm, "invalid item: item 3 is a string, expected an object"),
            (
                Perm,
                &*format!(
                    "invalid item: `TaskId` is an object, expected a string or a number; {missing}"
                )
            ),
            (Perm, &*format!("invalid item: {missing}")),
            (
                Perm,
                "invalid item: `KeyEncoding` \"base64\" is not one s3batch knows: expected \"raw\" or \"url\""
            ),
            (Perm, "invalid item: `Key` is empty"),
            (Ok_, "b|fine.txt|-|8"),
        ]
    );
    assert_eq!(m.results[1].key.as_deref(), Some("ok.txt"));
    assert_eq!(m.results[1].bucket, None);
}

/// A key that is not valid UTF-8 fails its item, naming the field; the event still reads.
#[tokio::test]
async fn unreadable_strings_fail_their_item() {
    let mut event = br#"{"Items":[{"Key":"ok"},{"Key":"bad-"#.to_vec();
    event.extend_from_slice(b"\xff");
    event.extend_from_slice(br#""}],"BatchInput":{"Bucket":"b"}}"#);
    let m = map(serve_with(report(), &event).await);
    assert_eq!(m.results[0].result_code, Ok_);
    assert_eq!(m.results[1].result_code, Perm);
    assert!(
        m.results[1]
            .result_string
            .starts_with("invalid item: `Key` is not valid Unicode"),
        "{}",
        m.results[1].result_string
    );
}

/// The fields of an item s3batch does not read (a listing's `Etag`, `Size`, …) are skipped
/// unread, as S3 Batch's reader skips the fields it does not know: a string there that is
/// not valid Unicode, a number out of range or nesting deeper than serde_json's limit changes
/// nothing in the answer. The first two were salvaged by the second reading before, for the
/// same answer; the deep one made the event unreadable (the batch failed). A field s3batch
/// reads is still read: nested that deep, the event still cannot be read.
#[tokio::test]
async fn unread_item_fields_are_skipped_unread() {
    let event = |etag: &[u8], size: &[u8]| {
        let mut e =
            br#"{"Items":[{"Etag":"\"d41d\"","Key":"a b","Size":1},{"Key":"c","Etag":"#.to_vec();
        e.extend_from_slice(etag);
        e.extend_from_slice(br#","LastModified":1671425036,"Size":"#);
        e.extend_from_slice(size);
        e.extend_from_slice(br#","StorageClass":"STANDARD"}],"BatchInput":{"Bucket":"b"}}"#);
        e
    };
    let want =
        serde_json::to_string(&map(serve_with(report(), &event(b"\"e\"", b"3")).await)).unwrap();
    assert_eq!(
        want,
        r#"{"results":[{"bucket":"b","key":"a b","versionId":null,"resultCode":"Succeeded","resultString":"b|a b|-|0"},{"bucket":"b","key":"c","versionId":null,"resultCode":"Succeeded","resultString":"b|c|-|1"}]}"#
    );
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let cases: [(&[u8], &[u8]); 5] = [
        (b"\"\xff\"", b"3"),
        (br#""\udc00""#, b"3"),
        (br#"{"\ud800":["x\udfff"]}"#, b"3"),
        (b"\"e\"", b"1e999"),
        (deep.as_bytes(), b"-1e400"),
    ];
    for (etag, size) in cases {
        let e = event(etag, size);
        let got = map(serve_with(report(), &e).await);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            want,
            "{}",
            String::from_utf8_lossy(&e)
        );
    }
    let deep_key = format!(r#"{{"Items":[{{"Key":{deep}}}],"BatchInput":{{"Bucket":"b"}}}}"#);
    let err = serve_with(report(), deep_key.as_bytes()).await.unwrap_err();
    assert_eq!(err.error_type(), INVALID_EVENT);
}

/// Anything of no accepted shape is `S3Batch.UnrecognizedEvent`, and says what is accepted.
#[tokio::test]
async fn other_shapes_are_unrecognized() {
    for (event, what) in [
        (
            &br#"{"hello":1,"Bucket":"b"}"#[..],
            "an object with Bucket, hello",
        ),
        (b"{}", "an empty object"),
        (b"[1,2]", "an array"),
        (br#""Key""#, "a string"),
        (b"null", "null"),
    ] {
        let err = serve_with(Options::new(), event).await.unwrap_err();
        assert_eq!(err.error_type(), UNRECOGNIZED_EVENT, "{err}");
        assert!(
            err.message()
                .starts_with(&format!("event is {what}, which is no shape")),
            "{err}"
        );
        for shape in ["invocationSchemaVersion", "\"Items\"", "`Key`"] {
            assert!(err.message().contains(shape), "{shape}: {err}");
        }
    }
}

/// S3 Batch is tested first and answered byte for byte as before: the same bytes as
/// `handle_bytes`, the same `S3BatchInvalidEvent` for an event it cannot answer, and an event
/// with S3 Batch's fields is S3 Batch's even beside `Items` or `Key`.
#[tokio::test]
async fn s3batch_events_are_answered_as_before() {
    let handler = Handler::new(echo, Options::new()).await.unwrap();
    let ctx = Default::default();
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vectors");
    for name in [
        "event-v1.json",
        "event-v2.json",
        "event-v1-regional-arn.json",
    ] {
        let event = std::fs::read(vectors.join(name)).unwrap();
        let before =
            serde_json::to_string(&handler.handle_bytes(&event, &ctx).await.unwrap()).unwrap();
        let now = serde_json::to_string(&handler.serve_bytes(&event, &ctx).await.unwrap()).unwrap();
        assert_eq!(now, before, "{name}");
        assert!(now.starts_with(r#"{"invocationSchemaVersion""#), "{now}");
    }
    let mixed = br#"{"invocationSchemaVersion":"2.0","invocationId":"i","job":{"id":"j"},
        "tasks":[{"taskId":"t","s3Key":"a+b","s3Bucket":"b"}],"Items":[],"Key":"x"}"#;
    match handler.serve_bytes(mixed, &ctx).await.unwrap() {
        Answer::S3Batch(r) => assert_eq!(r.results[0].result_string, "b|a b|-|t"),
        other => panic!("{other:?}"),
    }
    let err = handler
        .serve_bytes(br#"{"invocationSchemaVersion":"1.0","tasks":[]}"#, &ctx)
        .await
        .unwrap_err();
    assert_eq!(
        (err.error_type(), err.message()),
        (
            "S3BatchInvalidEvent",
            "event has no usable id: missing `invocationId`"
        )
    );
    let err = handler.serve_bytes(b"not json", &ctx).await.unwrap_err();
    assert_eq!(err.error_type(), "S3BatchInvalidEvent");
}

/// The failure policies on one batch (ok, temporary, permanent): `Report` returns every
/// result; `FailBatch` (the default) fails with `S3Batch.TemporaryFailure` carrying every
/// result, or `S3Batch.PermanentFailure` when none failed temporarily.
#[tokio::test]
async fn failure_policies() {
    let event = br#"{"Items":[{"Key":"ok"},{"Key":"fail-temporary"},{"Key":"fail-permanent"}],
        "BatchInput":{"Bucket":"b"}}"#;
    let expected = [
        (Some("b"), Some("ok"), None, Ok_, "b|ok|-|0"),
        (
            Some("b"),
            Some("fail-temporary"),
            None,
            Temp,
            "fail-temporary is busy",
        ),
        (
            Some("b"),
            Some("fail-permanent"),
            None,
            Perm,
            "fail-permanent is refused",
        ),
    ];
    let m = map(serve_with(report(), event).await);
    assert_eq!(rows(&m), expected);

    assert_eq!(Options::new().map_failure(), MapFailure::FailBatch);
    let err = serve_with(Options::new(), event).await.unwrap_err();
    assert_eq!(err.error_type(), TEMPORARY_FAILURE);
    let doc: FailedBatch = serde_json::from_str(err.message()).unwrap();
    assert_eq!((doc.failed, doc.temporary, doc.omitted), (2, 1, 0));
    assert_eq!(rows_of(&doc.results), expected);
    let diagnostic = s3batch_core::lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "S3Batch.TemporaryFailure");

    let permanent =
        br#"{"Items":[{"Key":"ok"},{"Key":"fail-permanent"}],"BatchInput":{"Bucket":"b"}}"#;
    let err = serve_with(Options::new(), permanent).await.unwrap_err();
    assert_eq!(err.error_type(), PERMANENT_FAILURE);
    let doc: FailedBatch = serde_json::from_str(err.message()).unwrap();
    assert_eq!((doc.failed, doc.temporary, doc.results.len()), (1, 0, 2));

    // A single item follows the same policy; all succeeded is an answer under both.
    let err = serve_with(Options::new(), br#"{"Bucket":"b","Key":"fail-temporary"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), TEMPORARY_FAILURE);
    let ok = br#"{"Items":[{"Key":"a"},{"Key":"b"}],"BatchInput":{"Bucket":"b"}}"#;
    assert_eq!(map(serve_with(Options::new(), ok).await).results.len(), 2);
}

/// A failed batch's results always fit Step Functions' error cause: texts are cut first
/// (every result kept); when even empty texts are too many, succeeded results are left out
/// before failed ones and the count says so.
#[tokio::test]
async fn failed_batch_results_fit_the_cause() {
    let twice = |message: &str| serde_json::to_string(message).unwrap().len();
    // 40 items of 1,000-quote results: 160 KB once escaped twice, cut to fit, all 40 kept.
    async fn quotes(obj: Object) -> Result<String, TaskError> {
        if obj.key == "fail-permanent" {
            return Err(TaskError::permanent("refused"));
        }
        Ok("\"".repeat(1000))
    }
    let items: Vec<String> = (0..40)
        .map(|i| {
            let key = if i == 3 {
                "fail-permanent".to_owned()
            } else {
                format!("k{i}")
            };
            serde_json::json!({ "Key": key }).to_string()
        })
        .collect();
    let event = format!(
        r#"{{"Items":[{}],"BatchInput":{{"Bucket":"b"}}}}"#,
        items.join(",")
    );
    let handler = Handler::new(quotes, Options::builder().max_result_len(4096).build())
        .await
        .unwrap();
    let err = served(&handler, event.as_bytes(), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), PERMANENT_FAILURE);
    assert!(
        twice(err.message()) <= CAUSE_BUDGET,
        "{}",
        twice(err.message())
    );
    let doc: FailedBatch = serde_json::from_str(err.message()).unwrap();
    assert_eq!((doc.failed, doc.omitted, doc.results.len()), (1, 0, 40));
    assert_eq!(doc.results[3].result_string, "refused");
    assert!(doc.results[0].result_string.ends_with("bytes]"));

    // 100 items whose keys alone (1 KiB each) exceed the cause: the failed item is kept.
    let items: Vec<String> = (0..100)
        .map(|i| {
            let key = if i == 97 {
                format!("fail-temporary-{}", "k".repeat(1000))
            } else {
                format!("{i}-{}", "k".repeat(1000))
            };
            serde_json::json!({ "Key": key }).to_string()
        })
        .collect();
    let event = format!(
        r#"{{"Items":[{}],"BatchInput":{{"Bucket":"b"}}}}"#,
        items.join(",")
    );
    let handler = Handler::new(echo, Options::new()).await.unwrap();
    let err = served(&handler, event.as_bytes(), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), TEMPORARY_FAILURE);
    assert!(twice(err.message()) <= CAUSE_BUDGET);
    let doc: FailedBatch = serde_json::from_str(err.message()).unwrap();
    assert!(
        doc.omitted > 0 && doc.results.len() + doc.omitted == 100,
        "{doc:?}"
    );
    assert!(doc.message.contains("left out"), "{}", doc.message);
    let failed: Vec<&ItemResult> = doc
        .results
        .iter()
        .filter(|r| r.result_code != Ok_)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]
        .key
        .as_deref()
        .unwrap()
        .starts_with("fail-temporary-"));
}

/// 10,000 items (the most a 256 KiB batch can hold) cannot be answered within Step
/// Functions' limit: refused before any item runs, saying how many would fit. 2,000 items
/// that fit are each answered, in order.
#[tokio::test]
async fn ten_thousand_items_are_refused_two_thousand_answered() {
    static RAN: AtomicUsize = AtomicUsize::new(0);
    async fn count(obj: Object) -> Result<String, TaskError> {
        RAN.fetch_add(1, Ordering::SeqCst);
        Ok(obj.task_id)
    }
    let batch = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| format!(r#"{{"Key":"k{i:05}"}}"#)).collect();
        format!(
            r#"{{"Items":[{}],"BatchInput":{{"Bucket":"b"}}}}"#,
            items.join(",")
        )
    };
    let big = batch(10_000);
    assert!(big.len() <= 256 * 1024, "{}", big.len());
    let handler = Handler::new(count, Options::new()).await.unwrap();
    let err = handler
        .serve_bytes(big.as_bytes(), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), BATCH_TOO_LARGE);
    assert!(
        err.message()
            .starts_with("a batch of 10000 items needs at least"),
        "{err}"
    );
    assert!(err.message().contains("MaxItemsPerBatch"), "{err}");
    assert_eq!(RAN.load(Ordering::SeqCst), 0);

    let m = map(handler
        .serve_bytes(batch(2_000).as_bytes(), &Default::default())
        .await);
    assert_eq!(RAN.load(Ordering::SeqCst), 2_000);
    assert_eq!(m.results.len(), 2_000);
    for (i, r) in m.results.iter().enumerate() {
        assert_eq!(r.key.as_deref(), Some(&*format!("k{i:05}")));
        assert_eq!(
            (r.result_code, r.result_string.as_str()),
            (Ok_, &*i.to_string())
        );
    }
    assert!(serde_json::to_string(&m).unwrap().len() <= MAP_RESPONSE_BUDGET);
}

/// A 256 KiB event of 1 KiB keys cannot be answered within 256 KiB (each result echoes its
/// key): refused before any item runs. 200 such items (200 KiB) whose results would be twice
/// that, and one item whose task returns 1 MB, are answered fitted to Step Functions' 256 KiB
/// (less the wrapper's headroom): the longest texts cut, every item kept with its key.
#[tokio::test]
async fn huge_results_are_fitted_to_256_kib() {
    let batch = |n: usize| {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"Key":"{i:03}-{}"}}"#, "x".repeat(1000)))
            .collect();
        format!(
            r#"{{"Items":[{}],"BatchInput":{{"Bucket":"b"}}}}"#,
            items.join(",")
        )
    };
    let full = batch(250);
    assert!(
        full.len() > 240 * 1024 && full.len() <= 256 * 1024,
        "{}",
        full.len()
    );
    let wide = Options::builder().max_result_len(10_000_000).build();
    let handler = Handler::new(echo, wide.clone()).await.unwrap();
    let err = served(&handler, full.as_bytes(), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), BATCH_TOO_LARGE);
    assert!(
        err.message().contains("(about 224 items like these fit)"),
        "{err}"
    );
    let m = map(served(&handler, batch(200).as_bytes(), &Default::default()).await);
    let len = serde_json::to_string(&m).unwrap().len();
    assert!(len <= MAP_RESPONSE_BUDGET, "{len}");
    assert_eq!(m.results.len(), 200);
    for (i, r) in m.results.iter().enumerate() {
        assert!(r.key.as_deref().unwrap().starts_with(&format!("{i:03}-")));
        assert_eq!(r.result_code, Ok_);
        assert!(r.result_string.ends_with("bytes]"), "{}", r.result_string);
    }

    async fn huge(_: Object) -> Result<String, TaskError> {
        Ok("é".repeat(500_000))
    }
    let handler = Handler::new(huge, wide).await.unwrap();
    let m = map(served(
        &handler,
        br#"{"Bucket":"b","Key":"k"}"#,
        &Default::default(),
    )
    .await);
    let len = serde_json::to_string(&m).unwrap().len();
    assert!(
        len <= MAP_RESPONSE_BUDGET && len > MAP_RESPONSE_BUDGET - 100,
        "{len}"
    );
    assert!(
        m.results[0]
            .result_string
            .ends_with("…[truncated 763884 bytes]")
            || m.results[0].result_string.ends_with("bytes]")
    );
}

fn context_with_deadline(at: SystemTime) -> s3batch_core::Context {
    let mut ctx = s3batch_core::Context::default();
    ctx.deadline = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    ctx
}

/// Per item, as for S3 Batch tasks: an item still running at the deadline is answered
/// `TemporaryFailure` (so `FailBatch` raises `S3Batch.TemporaryFailure`, which `Retry`
/// reruns), a panicking item fails alone.
#[tokio::test(start_paused = true)]
async fn deadline_and_panics_per_item() {
    let event = br#"{"Items":[{"Key":"slow"},{"Key":"panic.txt"},{"Key":"fast"}],
        "BatchInput":{"Bucket":"b"}}"#;
    let handler = Handler::new(echo, report()).await.unwrap();
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
    let m = map(handler.serve_bytes(event, &ctx).await);
    assert_eq!(
        rows(&m),
        [
            (
                Some("b"),
                Some("slow"),
                None,
                Temp,
                s3batch_core::runtime::DEADLINE_MESSAGE
            ),
            (
                Some("b"),
                Some("panic.txt"),
                None,
                Perm,
                "task panicked: asked to panic on panic.txt"
            ),
            (Some("b"), Some("fast"), None, Ok_, "b|fast|-|2"),
        ]
    );
    let handler = Handler::new(echo, Options::new()).await.unwrap();
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
    let err = handler.serve_bytes(event, &ctx).await.unwrap_err();
    assert_eq!(err.error_type(), TEMPORARY_FAILURE);
    // One item alone, at the deadline.
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
    let err = handler
        .serve_bytes(br#"{"Bucket":"b","Key":"slow"}"#, &ctx)
        .await
        .unwrap_err();
    let doc: FailedBatch = serde_json::from_str(err.message()).unwrap();
    assert_eq!(
        doc.results[0].result_string,
        s3batch_core::runtime::DEADLINE_MESSAGE
    );
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// Items run at most `concurrency` at once, answered in input order.
#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_per_batch() {
    async fn busy(obj: Object) -> Result<String, TaskError> {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MOST.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10 * (7 - obj.key.len() as u64))).await;
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        Ok(obj.key)
    }
    let handler = Handler::new(busy, Options::builder().concurrency(2).build())
        .await
        .unwrap();
    let event = br#"{"Items":[{"Key":"a"},{"Key":"bb"},{"Key":"ccc"},{"Key":"dddd"},{"Key":"eeeee"},{"Key":"ffffff"}],"BatchInput":{"Bucket":"b"}}"#;
    let m = map(handler.serve_bytes(event, &Default::default()).await);
    let texts: Vec<&str> = m.results.iter().map(|r| r.result_string.as_str()).collect();
    assert_eq!(texts, ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"]);
    assert_eq!(MOST.load(Ordering::SeqCst), 2);
}

static INITS: AtomicUsize = AtomicUsize::new(0);

struct Counted;

impl FromTask for Counted {
    type State = ();
    async fn init() -> Result<(), BoxError> {
        INITS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn from_task(_: &(), _: &TaskParts<'_>) -> Result<Self, TaskError> {
        Ok(Counted)
    }
}

/// Extractor state is built once per cold start, whatever the engine of each event.
#[tokio::test]
async fn extractor_state_once_per_cold_start() {
    async fn uses(obj: Object, _: Counted) -> Result<String, TaskError> {
        Ok(obj.key)
    }
    let handler = Handler::new(uses, Options::new()).await.unwrap();
    let ctx = Default::default();
    handler
        .serve_bytes(br#"{"Bucket":"b","Key":"a"}"#, &ctx)
        .await
        .unwrap();
    handler
        .serve_bytes(
            br#"{"Items":[{"Key":"a"},{"Key":"b"}],"BatchInput":{"Bucket":"b"}}"#,
            &ctx,
        )
        .await
        .unwrap();
    handler
        .serve_bytes(
            br#"{"invocationSchemaVersion":"2.0","invocationId":"i","tasks":[{"taskId":"t","s3Key":"k","s3Bucket":"b"}]}"#,
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(INITS.load(Ordering::SeqCst), 1);
}
