use super::*;
use serde_json::json;

fn machine(map: Value) -> String {
    json!({"StartAt": "Map", "States": {"Map": map}}).to_string()
}

fn base() -> Value {
    json!({
        "Type": "Map",
        "End": true,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket.$": "$.bucket", "Prefix": "in/"}
        },
        "ItemSelector": {"Bucket.$": "$.bucket", "Key.$": "$$.Map.Item.Value.Key"},
        "ItemBatcher": {"MaxItemsPerBatch": 100, "BatchInput": {"run.$": "$.run"}},
        "MaxConcurrency": 4,
        "ToleratedFailurePercentage": 5,
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "results", "Prefix": "runs"}
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:f", "Payload.$": "$"},
                    "Retry": [
                        {"ErrorEquals": ["S3Batch.TemporaryFailure"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 1.5, "MaxDelaySeconds": 5},
                        {"ErrorEquals": ["States.ALL"]}
                    ],
                    "Catch": [{"ErrorEquals": ["S3Batch.PermanentFailure"], "Next": "Failed"}],
                    "End": true
                },
                "Failed": {"Type": "Fail", "Error": "Item.Failed"}
            }
        }
    })
}

fn parse(map: Value) -> Result<MapDefinition, DefinitionError> {
    MapDefinition::parse(&machine(map), None)
}

fn err(map: Value) -> String {
    parse(map).unwrap_err().to_string()
}

#[test]
fn a_full_definition_is_read() {
    let d = parse(base()).unwrap();
    assert_eq!(d.state_name, "Map");
    assert!(matches!(d.source, ItemSource::ListObjects(_)));
    let b = d.batcher.unwrap();
    assert_eq!((b.max_items, b.max_bytes), (Some(100), PAYLOAD_LIMIT));
    assert_eq!(d.max_concurrency, 4);
    assert_eq!(d.tolerated_percentage, Some(5.0));
    assert_eq!(
        d.result_writer,
        Some(ResultWriterSpec {
            bucket: "results".into(),
            prefix: "runs".into()
        })
    );
    assert_eq!(d.task.function, "arn:aws:lambda:us-east-1:1:function:f");
    assert_eq!(
        d.task.retry[0],
        Retrier {
            errors: vec!["S3Batch.TemporaryFailure".into()],
            interval_seconds: 2,
            max_attempts: 4,
            backoff_rate: 1.5,
            max_delay_seconds: Some(5)
        }
    );
    assert_eq!(
        (
            d.task.retry[1].interval_seconds,
            d.task.retry[1].max_attempts,
            d.task.retry[1].backoff_rate
        ),
        (1, 3, 2.0),
        "ASL's defaults"
    );
    assert_eq!(
        d.task.catch[0].target,
        CatchTarget::Fail {
            error: Some("Item.Failed".into()),
            cause: None
        }
    );
}

#[test]
fn every_field_not_emulated_is_an_error_naming_it() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/ResultPath",
            json!("$.out"),
            "States.Map.ResultPath: unknown field `ResultPath`",
        ),
        (
            "/ItemReader/ReaderConfig",
            json!({"MaxItemsPath": "$.n"}),
            "States.Map.ItemReader.ReaderConfig.MaxItemsPath: unknown field `MaxItemsPath`",
        ),
        (
            "/ItemBatcher/MaxItemsPerBatchPath",
            json!("$.n"),
            "States.Map.ItemBatcher.MaxItemsPerBatchPath: unknown field `MaxItemsPerBatchPath`",
        ),
        (
            "/ItemProcessor/States/Call/ResultSelector",
            json!({}),
            "States.Map.ItemProcessor.States.Call.ResultSelector: unknown field `ResultSelector`",
        ),
        (
            "/ItemProcessor/States/Call/TimeoutSeconds",
            json!(5),
            "unknown field `TimeoutSeconds`",
        ),
        (
            "/ResultWriter/WriterConfig",
            json!({"OutputType": "JSONL"}),
            "States.Map.ResultWriter.WriterConfig: unknown field `WriterConfig`",
        ),
        ("/Retry", json!([]), "unknown field `Retry`"),
        (
            "/ItemProcessor/States/Call/Parameters/Qualifier",
            json!("v1"),
            "States.Map.ItemProcessor.States.Call.Parameters.Qualifier: not emulated",
        ),
        (
            "/ItemReader/Parameters/MaxKeys",
            json!(5),
            "States.Map.ItemReader.Parameters.MaxKeys: not emulated",
        ),
        (
            "/ItemBatcher/MaxInputBytesPerBatch",
            json!(262_145),
            "262145 is not between 1 and 262144",
        ),
        (
            "/ItemProcessor/States/Call/Retry/0/JitterStrategy",
            json!("FULL"),
            "Retry[0].JitterStrategy: \"FULL\" is not emulated",
        ),
        (
            "/ItemProcessor/ProcessorConfig/Mode",
            json!("INLINE"),
            "no Distributed Map state",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut map = base();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut map
        } else {
            map.pointer_mut(parent).unwrap()
        };
        match target {
            Value::Object(m) => {
                m.insert(field.to_owned(), value);
            }
            Value::Array(a) => {
                let i: usize = field.parse().unwrap();
                a[i] = value;
            }
            _ => unreachable!(),
        }
        let e = err(map);
        assert!(e.contains(expected), "{pointer}: {e}");
    }
}

#[test]
fn readers_are_checked() {
    let mut m = base();
    m["ItemReader"] = json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": "b", "Key": "m.csv"},
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["Bucket", "Key"], "CSVDelimiter": "PIPE", "MaxItems": 10}
    });
    let d = parse(m.clone()).unwrap();
    assert!(matches!(
        &d.source,
        ItemSource::GetObject(_, InputType::Csv { header: CsvHeader::Given(h), delimiter: b'|' }) if h == &["Bucket", "Key"]
    ));
    assert_eq!(d.max_items, Some(10));
    m["ItemReader"]["ReaderConfig"]["CSVDelimiter"] = json!("COLON");
    assert!(err(m.clone())
        .contains("CSVDelimiter: \"COLON\": use COMMA, PIPE, SEMICOLON, SPACE or TAB"));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"});
    assert!(err(m.clone()).contains("GIVEN needs a non-empty CSVHeaders"));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "JSON", "CSVDelimiter": "PIPE"});
    assert!(err(m.clone()).contains("CSVDelimiter: is only for InputType CSV"));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "MANIFEST"});
    assert!(matches!(
        parse(m.clone()).unwrap().source,
        ItemSource::GetObject(_, InputType::Manifest)
    ));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "MANIFEST", "CSVDelimiter": "PIPE"});
    assert!(err(m.clone()).contains("CSVDelimiter: is only for InputType CSV"));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "PARQUET"});
    assert!(err(m.clone()).contains("PARQUET is not emulated yet"));
    m["ItemReader"]["ReaderConfig"] = json!({"InputType": "JSONL"});
    assert!(matches!(
        parse(m.clone()).unwrap().source,
        ItemSource::GetObject(_, InputType::Jsonl)
    ));
    m["ItemReader"]["Resource"] = json!("arn:aws:states:::dynamodb:scan");
    assert!(
        err(m).contains("ItemReader.Resource: \"arn:aws:states:::dynamodb:scan\" is not emulated")
    );
}

#[test]
fn jsonata_anywhere_is_refused() {
    let mut m = base();
    m["ItemProcessor"]["States"]["Call"]["QueryLanguage"] = json!("JSONata");
    let e = err(m);
    assert!(e.starts_with("$.States.Map.ItemProcessor.States.Call: \"QueryLanguage\": \"JSONata\" is not supported"), "{e}");
    let top = json!({"QueryLanguage": "JSONata", "StartAt": "Map", "States": {"Map": base()}});
    let e = MapDefinition::parse(&top.to_string(), None).unwrap_err();
    assert!(
        matches!(e, DefinitionError::Jsonata { ref at } if at == "$"),
        "{e}"
    );
}

#[test]
fn the_map_must_be_the_start_or_named() {
    let asl = json!({"StartAt": "Prep", "States": {
        "Prep": {"Type": "Pass", "Next": "Map"},
        "Map": base()
    }})
    .to_string();
    let e = MapDefinition::parse(&asl, None).unwrap_err().to_string();
    assert!(
        e.contains("not the StartAt state") && e.contains("--state Map"),
        "{e}"
    );
    assert_eq!(
        MapDefinition::parse(&asl, Some("Map")).unwrap().state_name,
        "Map"
    );
    let e = MapDefinition::parse(&asl, Some("Prep"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"Prep\" is not a Distributed Map state"), "{e}");
}

#[test]
fn the_processor_is_one_task_and_its_catch_targets() {
    let mut m = base();
    m["ItemProcessor"]["States"]["Extra"] = json!({"Type": "Succeed"});
    assert!(err(m).contains("States.Map.ItemProcessor.States.Extra: not reachable"));
    let mut m = base();
    m["ItemProcessor"]["States"]["Call"]["Retry"] =
        json!([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]);
    assert!(err(m).contains("States.ALL must appear alone, in the last rule"));
    let mut m = base();
    m["ItemProcessor"]["States"]["Failed"] = json!({"Type": "Pass", "Next": "Call"});
    assert!(err(m).contains("States.Map.ItemProcessor.States.Failed.Next: unknown field `Next`"));
    let mut m = base();
    m["ItemProcessor"]["States"]["Call"]["Parameters"] = json!({"FunctionName": "f"});
    assert!(err(m).contains("exactly one of Payload and Payload.$"));
    let mut m = base();
    m["ItemProcessor"]["States"]["Call"]["Resource"] =
        json!("arn:aws:lambda:us-east-1:123456789012:function:f");
    m["ItemProcessor"]["States"]["Call"]["Parameters"] = json!({"Items.$": "$.Items"});
    let d = parse(m).unwrap();
    assert!(matches!(
        d.task.kind,
        TaskKind::FunctionArn {
            parameters: Some(_)
        }
    ));
}
