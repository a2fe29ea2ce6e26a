use super::*;
use crate::envelope::Event;
use serde_json::{json, Value};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn schemas_parse_print_and_name_a_bad_value() {
    assert_eq!(Schema::ALL, [Schema::V1, Schema::V2]);
    for schema in Schema::ALL {
        assert_eq!(schema.as_str().parse::<Schema>(), Ok(schema));
        assert_eq!(schema.to_string(), schema.as_str());
        let json = serde_json::to_string(&schema).unwrap();
        assert_eq!(json, format!("\"{schema}\""));
        assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), schema);
    }
    assert_eq!(Schema::default(), Schema::V1);
    assert!(!Schema::V1.has_user_arguments() && Schema::V2.has_user_arguments());
    let err = "3.0".parse::<Schema>().unwrap_err();
    assert_eq!(err.value(), "3.0");
    assert_eq!(
        err.to_string(),
        r#""3.0" is not an invocation schema version: expected 1.0 or 2.0"#
    );
    let err = serde_json::from_str::<Schema>(r#""2""#).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#""2" is not an invocation schema version"#),
        "{err}"
    );
}

/// The vectors read strictly into the typed event, write back to the same JSON, and what is
/// written reads through the handler's lenient reader to the same object.
#[test]
fn the_vectors_round_trip_for_each_schema() {
    for (file, schema, bucket, key, version) in [
        (
            "event-v1.json",
            Schema::V1,
            "example-bucket",
            "customer images/imageé1.jpg",
            Some("1"),
        ),
        (
            "event-v2.json",
            Schema::V2,
            "source-bucket",
            "reports/2024 Q1+Q2.csv",
            None,
        ),
    ] {
        let bytes = vector(file);
        let event: Request = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(event.schema, schema, "{file}");
        assert_eq!(event.tasks.len(), 1);
        let task = &event.tasks[0];
        assert_eq!(task.bucket.name(), Some(bucket));
        assert_eq!(task.bucket, schema.task_bucket(bucket), "{file}");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            "{file}"
        );
        // Built from the decoded key, the task is the vector's.
        let built = RequestTask::new(schema, task.task_id.clone(), bucket, key, version);
        assert_eq!(&built, task, "{file}");
        // And the handler reads it back.
        let written = serde_json::to_vec(&event).unwrap();
        let inv = Event::from_slice(&written)
            .unwrap()
            .into_invocation()
            .unwrap();
        assert_eq!(inv.job.schema_version, schema.as_str());
        assert_eq!(inv.job.schema(), Ok(schema));
        assert_eq!(inv.job.id, event.job.id);
        assert_eq!(inv.job.user_arguments, event.job.user_arguments);
        let obj = inv.tasks[0].as_ref().unwrap();
        assert_eq!((obj.bucket.as_str(), obj.key.as_str()), (bucket, key));
        assert_eq!(obj.version_id.as_deref(), version);
    }
    // A version this crate does not know is echoed as it is; `Job::schema` names it.
    let mut future: Value = serde_json::from_slice(&vector("event-v2.json")).unwrap();
    future["invocationSchemaVersion"] = "3.0".into();
    let inv = Event::from_slice(&serde_json::to_vec(&future).unwrap())
        .unwrap()
        .into_invocation()
        .unwrap();
    assert_eq!(inv.job.schema_version, "3.0");
    assert_eq!(inv.job.schema().unwrap_err().value(), "3.0");
    assert!(serde_json::from_value::<Request>(future).is_err());
    let regional: Request = serde_json::from_slice(&vector("event-v1-regional-arn.json")).unwrap();
    let names: Vec<_> = regional.tasks.iter().map(|t| t.bucket.name()).collect();
    assert_eq!(names, [Some("awsexamplebucket"), Some("china-bucket")]);
}

#[test]
fn user_arguments_are_left_out_when_empty_and_read_as_empty_when_null() {
    let job = RequestJob::new("j");
    assert_eq!(serde_json::to_value(&job).unwrap(), json!({"id": "j"}));
    let read: RequestJob =
        serde_json::from_value(json!({"id": "j", "userArguments": null})).unwrap();
    assert_eq!(read, job);
    let with = job.with_user_arguments([("k".to_owned(), "v".to_owned())].into());
    assert_eq!(
        serde_json::to_value(&with).unwrap(),
        json!({"id": "j", "userArguments": {"k": "v"}})
    );
}

#[test]
fn responses_round_trip_and_are_read_as_s3_reads_them() {
    let response = Response {
        invocation_schema_version: Schema::V2.to_string(),
        treat_missing_keys_as: ResultCode::PermanentFailure,
        invocation_id: "inv".into(),
        results: vec![
            TaskResult::new("t0", ResultCode::Succeeded, "done"),
            TaskResult::new("t1", ResultCode::TemporaryFailure, ""),
        ],
    };
    let bytes = serde_json::to_vec(&response).unwrap();
    assert_eq!(
        serde_json::from_slice::<Response>(&bytes).unwrap(),
        response
    );
    let read = ReceivedResponse::from_slice(&bytes).unwrap();
    assert_eq!(read.invocation_schema_version.as_deref(), Some("2.0"));
    assert_eq!(
        read.treat_missing_keys_as,
        Some(ResultCode::PermanentFailure)
    );
    assert_eq!(read.invocation_id.as_deref(), Some("inv"));
    let results: Vec<_> = read
        .results
        .iter()
        .map(|r| {
            (
                r.task_id.as_str(),
                r.result_code,
                r.result_string.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("t0", ResultCode::Succeeded, Some("done")),
            ("t1", ResultCode::TemporaryFailure, Some(""))
        ]
    );
    // Optional fields may be absent, never null; the last duplicate key wins.
    let lean = ReceivedResponse::from_slice(
        br#"{"x":1,"results":[{"taskId":"a","taskId":"b","resultCode":"Succeeded"}]}"#,
    )
    .unwrap();
    assert_eq!(lean.treat_missing_keys_as, None);
    assert_eq!(lean.results[0].task_id, "b");
    assert_eq!(lean.results[0].result_string, None);
    for bad in [
        &b"[]"[..],
        b"{}",
        br#"{"results":[1]}"#,
        br#"{"treatMissingKeysAs":null,"results":[]}"#,
        br#"{"invocationSchemaVersion":2,"results":[]}"#,
        br#"{"results":[{"taskId":"t","resultCode":"Failed"}]}"#,
        br#"{"results":[{"taskId":"t","resultCode":"Succeeded","resultString":null}]}"#,
    ] {
        assert!(
            ReceivedResponse::from_slice(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Told apart by variant.
    assert!(matches!(
        ReceivedResponse::from_slice(b"nope"),
        Err(ResponseError::NotJson(_))
    ));
    assert!(matches!(
        ReceivedResponse::from_slice(b"[]"),
        Err(ResponseError::NotObject)
    ));
    assert!(matches!(
        ReceivedResponse::from_slice(b"{}"),
        Err(ResponseError::Invalid(_))
    ));
    match ReportManifest::from_slice(br#"{"Format":"CSV","Results":[]}"#) {
        Err(e @ ReportManifestError::Format { .. }) => {
            assert_eq!(e.to_string(), r#"Format is "CSV", not Report_CSV_20180820"#)
        }
        other => panic!("not a Format error: {other:?}"),
    }
}

#[test]
fn report_rows_carry_the_enums_and_read_either_column_order() {
    let failed = ReportRow::new(
        "b",
        "a b+c,\"d\"",
        Some("v1".into()),
        TaskStatus::Failed,
        Some(ResultCode::TemporaryFailure),
        Some(200),
        "busy, \"really\"",
    );
    let fields = failed.to_fields();
    assert_eq!(
        fields.iter().map(|f| f.as_ref()).collect::<Vec<_>>(),
        [
            "b",
            "a+b%2Bc%2C%22d%22",
            "v1",
            "failed",
            "TemporaryFailure",
            "200",
            "busy, \"really\""
        ]
    );
    assert_eq!(ReportRow::from_fields(&fields).unwrap(), failed);
    // AWS's example order: the HTTP status before the error code.
    let mut aws = fields.clone();
    aws.swap(4, 5);
    assert_eq!(ReportRow::from_fields(&aws).unwrap(), failed);
    let ok = ReportRow::new("b", "k", None, TaskStatus::Succeeded, None, None, "");
    assert_eq!(ok.to_fields()[4..6], [Cow::Borrowed(""), Cow::Borrowed("")]);
    assert_eq!(ReportRow::from_fields(&ok.to_fields()).unwrap(), ok);
    // What is not S3's is named.
    for (fields, variant, expect) in [
        (
            vec!["b", "k", "", "done", "", "", ""],
            ReportRowError::TaskStatus(ParseTaskStatusError {
                value: "done".into(),
            }),
            r#"TaskStatus: status "done" is not succeeded or failed"#,
        ),
        (
            vec!["b", "k", "", "failed", "Oops", "200", ""],
            ReportRowError::ErrorCode(ParseResultCodeError {
                value: "Oops".into(),
            }),
            r#"ErrorCode "Oops" is not a result code"#,
        ),
        (
            vec!["b", "k"],
            ReportRowError::Columns { found: 2 },
            "2 columns, expected 7",
        ),
    ] {
        let err = ReportRow::from_fields(&fields).unwrap_err();
        assert_eq!(err, variant);
        assert!(err.to_string().contains(expect), "{err}");
    }
    assert_eq!(
        REPORT_COLUMNS.join(", "),
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    );
}

use std::borrow::Cow;
