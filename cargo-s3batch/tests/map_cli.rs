//! `cargo s3batch map` end to end: a Distributed Map over a local folder standing in for S3
//! (`--local-s3`), the function (`examples/hello`) under `cargo lambda watch` reached through
//! the Lambda Invoke API, the result files written; and definitions it refuses.

use s3batch_testkit::{fresh_dir, output_text as text, LambdaWatch};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("map-cli-{name}"))
}

fn map_cli(dir: &Path, definition: &Value, input: &str, extra: &[&str]) -> Output {
    let def = dir.join("machine.asl.json");
    std::fs::write(&def, definition.to_string()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "map", "--definition"])
        .arg(&def)
        .args(["--input", input, "--local-s3"])
        .arg(dir.join("s3"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .output()
        .unwrap()
}

/// A machine whose Lambda task builds an S3 Batch event (schema 1.0) from each listed item,
/// so that a function written for S3 Batch serves it unchanged.
fn machine(s3_key: &str) -> Value {
    json!({
        "Comment": "local Distributed Map over a prefix",
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map",
            "End": true,
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                           "Parameters": {"Bucket.$": "$.bucket", "Prefix": "in/"}},
            "ItemSelector": {"Key.$": "$$.Map.Item.Value.Key", "Index.$": "$$.Map.Item.Index"},
            "MaxConcurrency": 2,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": "results", "Prefix": "out"}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Hello",
                "States": {"Hello": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {
                        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:hello",
                        "Payload": {
                            "invocationSchemaVersion": "1.0",
                            "invocationId": "local-map",
                            "job": {"id": "local-map"},
                            "tasks": [{"taskId": "t", "s3BucketArn": "arn:aws:s3:::data", "s3Key.$": s3_key}]
                        }
                    },
                    "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 2}],
                    "End": true
                }}
            }
        }}
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn a_map_over_a_local_prefix_through_cargo_lambda_watch() {
    let watch = LambdaWatch::start_with("hello", &[], None, 2);
    let endpoint = format!("http://127.0.0.1:{}", watch.port());
    let dir = temp("watch");
    for key in [
        "in/one.txt",
        "in/two.txt",
        "in/fail-permanent.txt",
        "elsewhere.txt",
    ] {
        let path = dir.join("s3/data").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key).unwrap();
    }
    // The ASL names the function by ARN; the name under watch is the binary's, taken from it.
    let out = map_cli(
        &dir,
        &machine("$.Key"),
        r#"{"bucket": "data"}"#,
        &["--lambda-endpoint-url", &endpoint, "--run-id", "run-1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["status"],
        json!({"Status": "SUCCEEDED"}),
        "{}",
        text(&out)
    );
    assert_eq!(summary["itemCounts"]["succeeded"], 3);
    assert_eq!(
        summary["resultManifest"],
        "s3://results/out/run-1/manifest.json"
    );

    let base = dir.join("s3/results/out/run-1");
    let manifest = read_json(&base.join("manifest.json"));
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Key"],
        "out/run-1/SUCCEEDED_0.json"
    );
    let mut answers: Vec<(String, String, String)> = read_json(&base.join("SUCCEEDED_0.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let output: Value = serde_json::from_str(r["Output"].as_str().unwrap()).unwrap();
            assert_eq!(output["StatusCode"], 200);
            let result = &output["Payload"]["results"][0];
            let input: Value = serde_json::from_str(r["Input"].as_str().unwrap()).unwrap();
            (
                input["Key"].as_str().unwrap().to_owned(),
                result["resultCode"].as_str().unwrap().to_owned(),
                result["resultString"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [
            (
                "in/fail-permanent.txt".to_owned(),
                "PermanentFailure".to_owned(),
                "in/fail-permanent.txt cannot be processed".to_owned()
            ),
            (
                "in/one.txt".to_owned(),
                "Succeeded".to_owned(),
                "hello s3://data/in/one.txt".to_owned()
            ),
            (
                "in/two.txt".to_owned(),
                "Succeeded".to_owned(),
                "hello s3://data/in/two.txt".to_owned()
            ),
        ]
    );

    // A payload path the child's input lacks fails every child (States.Runtime) before the
    // function is called; nothing is tolerated, so the run fails with exit status 2.
    let out = map_cli(
        &dir,
        &machine("$.Missing"),
        r#"{"bucket": "data"}"#,
        &["--lambda-endpoint-url", &endpoint, "--run-id", "run-2"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["status"]["Error"],
        "States.ExceedToleratedFailureThreshold"
    );
    let failed = read_json(&dir.join("s3/results/out/run-2/FAILED_0.json"));
    assert_eq!(failed[0]["Error"], "States.Runtime");
    assert_eq!(
        failed[0]["Cause"],
        "Hello: the JSONPath '$.Missing' could not be found in the input"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn definitions_it_cannot_run_are_refused_naming_the_field() {
    let dir = temp("refused");
    let mut jsonata = machine("$.Key");
    jsonata["QueryLanguage"] = json!("JSONata");
    let mut result_path = machine("$.Key");
    result_path["States"]["Each"]["ResultPath"] = json!("$.out");
    for (definition, expected) in [
        (jsonata, "\"QueryLanguage\": \"JSONata\" is not supported"),
        (
            result_path,
            "States.Each.ResultPath: unknown field `ResultPath`",
        ),
    ] {
        let out = map_cli(&dir, &definition, "{}", &["--function", "nothing"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{}", text(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_map_over_the_input_through_a_bootstrap() {
    s3batch_testkit::build_package("hello");
    let bootstrap = s3batch_testkit::target_dir().join("debug/hello");
    let dir = temp("bootstrap");
    // Items from the input (no ItemReader); a plain function ARN as the Resource, whose
    // event is the Parameters and whose output is the function's return, unwrapped.
    let definition = json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map",
            "End": true,
            "ItemsPath": "$.keys",
            "ItemSelector": {"Key.$": "$$.Map.Item.Value", "Index.$": "$$.Map.Item.Index"},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": "results", "Prefix": ""}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                "StartAt": "Hello",
                "States": {"Hello": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:hello",
                    "Parameters": {
                        "invocationSchemaVersion": "1.0",
                        "invocationId": "local-map",
                        "job": {"id": "local-map"},
                        "tasks": [{"taskId": "t", "s3BucketArn": "arn:aws:s3:::data", "s3Key.$": "$.Key"}]
                    },
                    "End": true
                }}
            }
        }}
    });
    let out = map_cli(
        &dir,
        &definition,
        r#"{"keys": ["k1", "k2"]}"#,
        &[
            "--bootstrap",
            bootstrap.to_str().unwrap(),
            "--run-id",
            "b-1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let records = read_json(&dir.join("s3/results/b-1/SUCCEEDED_0.json"));
    let mut answers: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let output: Value = serde_json::from_str(r["Output"].as_str().unwrap()).unwrap();
            output["results"][0]["resultString"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    answers.sort();
    assert_eq!(answers, ["hello s3://data/k1", "hello s3://data/k2"]);

    // Children that fail (a payload path the input lacks), tolerated; then `report` on the
    // ResultWriter manifest counts them and writes their items to run again.
    let mut failing = definition.clone();
    failing["States"]["Each"]["ToleratedFailureCount"] = json!(5);
    failing["States"]["Each"]["ItemProcessor"]["States"]["Hello"]["Parameters"]["tasks"][0]
        ["s3Key.$"] = json!("$.Missing");
    let out = map_cli(
        &dir,
        &failing,
        r#"{"keys": ["k1", "k2"]}"#,
        &[
            "--bootstrap",
            bootstrap.to_str().unwrap(),
            "--run-id",
            "b-2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rerun = dir.join("rerun.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "report"])
        .arg(dir.join("s3/results/b-2/manifest.json"))
        .arg("--failed-manifest")
        .arg(&rerun)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "  SUCCEEDED: 0 child execution(s)",
        "  FAILED: 2 child execution(s)",
        "  failed with States.Runtime: 2",
        "  items to run again: 2",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} in {}",
            text(&out)
        );
    }
    let mut items = read_json(&rerun).as_array().unwrap().clone();
    items.sort_by_key(|i| i["Index"].as_u64());
    assert_eq!(
        items,
        [
            json!({"Key": "k1", "Index": 0}),
            json!({"Key": "k2", "Index": 1})
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The complete lines of a map run's journal (a line cut short at the end is not one).
fn journal_lines(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let complete = &bytes[..bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// How many times `examples/chaos` was called for each key: it records every call of a
/// `sleep-<N>ms` key as an object `.chaos/calls/<key>/<pid>-<time>` in the object's bucket.
async fn chaos_calls(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> std::collections::BTreeMap<String, usize> {
    let mut calls = std::collections::BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(".chaos/calls/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let key = o.key().unwrap().strip_prefix(".chaos/calls/").unwrap();
            let key = &key[..key.rfind('/').unwrap()];
            *calls.entry(key.to_owned()).or_insert(0) += 1;
        }
    }
    calls
}

/// `kill -9` in the middle of a Map Run (a prefix listing over moto, batches of two, the
/// `chaos` function under `--bootstrap`), the journal's last line torn as a kill in the
/// middle of a write would leave it; then `--resume`: the children that finished are not run
/// again (chaos counts every call), the others are, and the result files hold every item
/// once, the finished children's records among them.
#[test]
fn kill_9_in_the_middle_of_a_map_run_then_resume() {
    s3batch_testkit::build_package("chaos");
    let bootstrap = s3batch_testkit::target_dir().join("debug/chaos");
    let moto = s3batch_testkit::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(moto.client_with_buckets(&["data"]));
    let keys: Vec<String> = (0..24).map(|i| format!("in/sleep-300ms-{i:02}")).collect();
    rt.block_on(async {
        for key in &keys {
            s3.put_object()
                .bucket("data")
                .key(key)
                .body(b"x".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    });
    let dir = temp("kill9");
    let def = dir.join("machine.asl.json");
    std::fs::write(
        &def,
        json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "End": true, "MaxConcurrency": 1,
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                           "Parameters": {"Bucket": "data", "Prefix": "in/"}},
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"Bucket": "data"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": "data", "Prefix": "results"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Chaos",
                "States": {"Chaos": {"Type": "Task", "End": true,
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "chaos", "Payload.$": "$"}}}}
        }}})
        .to_string(),
    )
    .unwrap();
    let state = dir.join("state");
    let cli = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
        cmd.args(["s3batch", "map", "--definition"])
            .arg(&def)
            .args(["--endpoint-url", &moto.endpoint(), "--bootstrap"])
            .arg(&bootstrap)
            .arg("--state-dir")
            .arg(&state)
            .args(["--run-id", "k9"])
            .args(extra)
            .envs(moto.env())
            .env_remove("S3BATCH_STATE_DIR");
        cmd
    };
    let journal = state.join("map/k9/journal.jsonl");
    let mut child = cli(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while journal_lines(&journal).len() < 4 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run exited ({status}) before its journal had 4 lines");
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(300),
            "no 4 journal lines"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Tear the last line.
    let bytes = std::fs::read(&journal).unwrap();
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    std::fs::write(
        &journal,
        &bytes[..last_start + (bytes.len() - last_start) / 2],
    )
    .unwrap();
    let finished = journal_lines(&journal);
    assert!(
        finished.len() >= 3 && finished.len() < 12,
        "{} of 12 children finished before the kill",
        finished.len()
    );
    let mut finished_keys: Vec<String> = Vec::new();
    for line in &finished {
        assert_eq!(line["s"], "SUCCEEDED", "{line}");
        let input: Value = serde_json::from_str(line["r"]["Input"].as_str().unwrap()).unwrap();
        for item in input["Items"].as_array().unwrap() {
            finished_keys.push(item["Key"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        rt.block_on(
            s3.head_object()
                .bucket("data")
                .key("results/k9/manifest.json")
                .send()
        )
        .is_err(),
        "a killed run wrote no results"
    );

    // Without --resume, the run id is refused (its journal is kept).
    let out = cli(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("continue it with --resume"),
        "{}",
        text(&out)
    );
    assert_eq!(journal_lines(&journal).len(), finished.len());

    let out = cli(&["--resume"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["status"],
        json!({"Status": "SUCCEEDED"}),
        "{}",
        text(&out)
    );
    assert_eq!(summary["itemCounts"]["succeeded"], 24, "{}", text(&out));
    assert_eq!(
        summary["executionCounts"]["succeeded"],
        12,
        "{}",
        text(&out)
    );

    // The finished children were not run again; every other item was run (once, or twice
    // for the child in flight at the kill and the torn line's).
    let calls = rt.block_on(chaos_calls(&s3, "data"));
    for key in &keys {
        let n = calls.get(key).copied().unwrap_or(0);
        if finished_keys.contains(key) {
            assert_eq!(n, 1, "{key} was in a finished child: {calls:?}");
        } else {
            assert!((1..=2).contains(&n), "{key}: {n} calls: {calls:?}");
        }
    }
    // The results hold every item once, with the function's answer.
    let records: Value = rt.block_on(async {
        let out = s3
            .get_object()
            .bucket("data")
            .key("results/k9/SUCCEEDED_0.json")
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap()
    });
    let mut answered: Vec<String> = Vec::new();
    for r in records.as_array().unwrap() {
        let output: Value = serde_json::from_str(r["Output"].as_str().unwrap()).unwrap();
        for result in output["Payload"]["results"].as_array().unwrap() {
            assert_eq!(result["resultCode"], "Succeeded", "{result}");
            assert_eq!(result["resultString"], "ok 1 bytes", "{result}");
            answered.push(result["key"].as_str().unwrap().to_owned());
        }
    }
    answered.sort();
    assert_eq!(answered, keys);
    assert_eq!(records.as_array().unwrap().len(), 12);
    assert!(
        !journal.exists(),
        "the journal is removed once the results are written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
