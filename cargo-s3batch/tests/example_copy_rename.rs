//! `examples/copy_rename` as deployed, driven by both engines: the one binary under
//! `cargo lambda watch` against moto, run as an S3 Batch Operations job (`cargo s3batch run`,
//! a CSV manifest, the completion report) and as the Distributed Map of its own
//! `statemachine.asl.json` (`cargo s3batch map`, a prefix listing, the ResultWriter's
//! files). Also: that state machine and its IAM files parse, are accepted by the local
//! runner, and grant what the state machine does.

use s3batch::map::MapResponse;
use s3batch::ResultCode;
use s3batch_map::asl::ResultWriterSpec;
use s3batch_map::MapDefinition;
use s3batch_testkit::{
    fresh_dir, manifest_key, object_bytes as body, output_text as text, workspace_root,
    LambdaWatch, Moto,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const SOURCE: &str = "source-bucket";
const RESULTS: &str = "results-bucket";
const MACHINE: &str = "copy-rename-map";

fn example_file(name: &str) -> String {
    let path = workspace_root().join("examples/copy_rename").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `${Name}` placeholders in `text`, as written.
fn placeholders(text: &str) -> BTreeSet<String> {
    text.match_indices("${")
        .map(|(at, _)| {
            let end = text[at..].find('}').expect("an unclosed placeholder") + at;
            text[at..=end].to_owned()
        })
        .collect()
}

/// What docs/deploy.md's `fill` does with `sed`.
fn fill(text: &str) -> String {
    let filled = text
        .replace("${Region}", REGION)
        .replace("${Account}", ACCOUNT)
        .replace("${SourceBucket}", SOURCE)
        .replace("${ResultsBucket}", RESULTS);
    assert!(
        placeholders(&filled).is_empty(),
        "placeholders left: {:?}",
        placeholders(&filled)
    );
    filled
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// A string or an array of strings, as IAM writes `Action` and `Resource`.
fn one_or_many(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap()).collect(),
        other => panic!("expected a string or an array: {other}"),
    }
}

/// Whether `policy` (only `Allow` statements, no conditions) allows `action` on `resource`.
fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        assert_eq!(s["Effect"], "Allow", "{s}");
        assert!(s.get("Condition").is_none(), "{s}");
        one_or_many(&s["Action"]).contains(&action)
            && one_or_many(&s["Resource"])
                .iter()
                .any(|r| glob(r.as_bytes(), resource.as_bytes()))
    })
}

#[test]
fn the_state_machine_and_its_iam_files_agree() {
    let asl = example_file("statemachine.asl.json");
    let policy = example_file("statemachine-policy.json");
    let trust = example_file("statemachine-trust.json");

    // docs/deploy.md fills every placeholder the files hold.
    let deploy = std::fs::read_to_string(workspace_root().join("docs/deploy.md")).unwrap();
    for name in [&asl, &policy, &trust]
        .into_iter()
        .flat_map(|t| placeholders(t))
    {
        let escaped = format!("\\{name}");
        assert!(
            deploy.contains(&escaped),
            "docs/deploy.md's fill does not replace {name}"
        );
    }

    let trust: Value = serde_json::from_str(&trust).unwrap();
    assert_eq!(
        trust["Statement"],
        json!([{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole"}])
    );

    let def = MapDefinition::parse(&fill(&asl), None).unwrap_or_else(|e| panic!("{e}"));
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:copy_rename");
    assert_eq!(def.task.function, function);
    assert_eq!(
        def.result_writer,
        Some(ResultWriterSpec {
            bucket: RESULTS.into(),
            prefix: "copy-rename".into()
        })
    );
    let retried: Vec<&str> = def
        .task
        .retry
        .iter()
        .flat_map(|r| r.errors.iter().map(String::as_str))
        .collect();
    for error in [
        "S3Batch.TemporaryFailure",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ] {
        assert!(retried.contains(&error), "{error} is not retried");
    }
    assert!(!retried.contains(&"S3Batch.PermanentFailure"));
    assert!(def.tolerated_percentage.is_some());

    // The role may do what the machine does, and not more on the source.
    let policy: Value = serde_json::from_str(&fill(&policy)).unwrap();
    let machine = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}");
    let child = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}/CopyEach:0a1b");
    for (action, resource) in [
        ("lambda:InvokeFunction", function.as_str()),
        ("s3:ListBucket", &format!("arn:aws:s3:::{SOURCE}")),
        (
            "s3:PutObject",
            &format!("arn:aws:s3:::{RESULTS}/copy-rename/run/manifest.json"),
        ),
        ("states:StartExecution", &machine),
        ("states:DescribeExecution", &child),
        ("states:StopExecution", &child),
    ] {
        assert!(allows(&policy, action, resource), "{action} on {resource}");
    }
    for (action, resource) in [
        ("s3:PutObject", format!("arn:aws:s3:::{SOURCE}/x")),
        ("s3:GetObject", format!("arn:aws:s3:::{SOURCE}/x")),
        (
            "lambda:InvokeFunction",
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"),
        ),
    ] {
        assert!(
            !allows(&policy, action, &resource),
            "{action} on {resource}"
        );
    }
}

fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("copy-rename-{name}"))
}

async fn keys_in(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

fn cli(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
    cmd.arg("s3batch")
        .args(args)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("S3BATCH_STATE_DIR")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

#[test]
fn copy_rename_under_s3_batch_and_distributed_map() {
    let keys = [
        "photos/plain.txt",
        "photos/with space.jpg",
        "photos/a+b.jpg",
        "photos/100% done ✓.txt",
        "photos/café/ünïcödé 😀.jpg",
        "photos/q?x=1&y=2#frag",
    ];
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(moto.client_with_buckets(&[SOURCE, RESULTS, "dest-batch", "dest-map"]));
    rt.block_on(async {
        for key in keys.iter().chain(&["elsewhere/not listed.txt"]) {
            s3.put_object()
                .bucket(SOURCE)
                .key(*key)
                .body(format!("content of {key}").into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    });
    // No DESTINATION_BUCKET: the destination comes from the job (S3 Batch's user argument,
    // the Distributed Map's BatchInput).
    let watch = LambdaWatch::start_with("copy_rename", &moto.env(), None, 4);
    let lambda = format!("http://127.0.0.1:{}", watch.port());
    let dir = temp("engines");

    // S3 Batch Operations: a CSV manifest (one key that does not exist), schema 2.0.
    let manifest = dir.join("manifest.csv");
    let rows: String = keys
        .iter()
        .chain(&["photos/never uploaded.txt"])
        .map(|k| format!("{SOURCE},{}\n", manifest_key(k)))
        .collect();
    std::fs::write(&manifest, rows).unwrap();
    let out = cli(&["run", "--function", "copy_rename"], &dir)
        .arg("--manifest")
        .arg(&manifest)
        .args(["--endpoint-url", &lambda, "--schema", "2.0"])
        .args(["--user-arg", "destBucket=dest-batch", "--job-id", "batch-1"])
        .arg("--report")
        .arg(dir.join("report"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), watch.log());
    let report = s3batch_job::read_report(&dir.join("report/job-batch-1")).unwrap();
    assert_eq!(report.len(), keys.len() + 1);
    for row in &report {
        let status = (row.task_status.as_str(), row.error_code.map(|c| c.as_str()));
        if row.key == "photos/never uploaded.txt" {
            assert_eq!(status, ("failed", Some("PermanentFailure")), "{row:?}");
            assert!(row.message.contains("NoSuchKey"), "{row:?}");
        } else {
            assert_eq!(status, ("succeeded", None), "{row:?}");
            let expected = format!(
                "job batch-1: copied to s3://dest-batch/{}_new_suffix (version ",
                row.key
            );
            assert!(row.message.starts_with(&expected), "{row:?}");
        }
    }

    // Distributed Map: the example's own state machine, its placeholders filled in.
    let definition = dir.join(format!("{MACHINE}.asl.json"));
    std::fs::write(&definition, fill(&example_file("statemachine.asl.json"))).unwrap();
    let input = json!({"bucket": SOURCE, "prefix": "photos/", "destBucket": "dest-map"});
    let out = cli(&["map", "--run-id", "map-1"], &dir)
        .arg("--definition")
        .arg(&definition)
        .args(["--input", &input.to_string()])
        .args(["--lambda-endpoint-url", &lambda])
        .args(["--endpoint-url", &moto.endpoint()])
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), watch.log());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["status"],
        json!({"Status": "SUCCEEDED"}),
        "{}",
        text(&out)
    );
    assert_eq!(
        summary["itemCounts"]["succeeded"],
        keys.len(),
        "{}",
        text(&out)
    );
    assert_eq!(
        summary["resultManifest"],
        format!("s3://{RESULTS}/copy-rename/map-1/manifest.json")
    );

    rt.block_on(async {
        // Both engines made the same copies, byte for byte; nothing outside the prefix.
        let expected: BTreeSet<String> = keys.iter().map(|k| format!("{k}_new_suffix")).collect();
        assert_eq!(keys_in(&s3, "dest-batch").await, expected);
        assert_eq!(keys_in(&s3, "dest-map").await, expected);
        for key in keys {
            let original = body(&s3, SOURCE, key).await;
            let copy = format!("{key}_new_suffix");
            assert_eq!(body(&s3, "dest-batch", &copy).await, original, "{copy}");
            assert_eq!(body(&s3, "dest-map", &copy).await, original, "{copy}");
        }

        // The ResultWriter's files: every child succeeded, every item's result in them.
        let prefix = "copy-rename/map-1";
        let written: Value =
            serde_json::from_slice(&body(&s3, RESULTS, &format!("{prefix}/manifest.json")).await)
                .unwrap();
        assert_eq!(written["ResultFiles"]["FAILED"], json!([]), "{written}");
        let succeeded: Value = serde_json::from_slice(
            &body(&s3, RESULTS, &format!("{prefix}/SUCCEEDED_0.json")).await,
        )
        .unwrap();
        let mut results = Vec::new();
        for record in succeeded.as_array().unwrap() {
            let output: Value = serde_json::from_str(record["Output"].as_str().unwrap()).unwrap();
            assert_eq!(output["StatusCode"], 200, "{record}");
            let answer: MapResponse = serde_json::from_value(output["Payload"].clone()).unwrap();
            for r in answer.results {
                assert_eq!(r.bucket.as_deref(), Some(SOURCE));
                assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
                results.push((r.key.unwrap(), r.result_string));
            }
        }
        results.sort();
        let mut expected: Vec<(String, String)> = keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    format!("copied to s3://dest-map/{k}_new_suffix (version "),
                )
            })
            .collect();
        expected.sort();
        assert_eq!(results.len(), expected.len(), "{results:?}");
        for ((key, result), (expected_key, prefix)) in results.iter().zip(&expected) {
            assert_eq!(key, expected_key);
            assert!(result.starts_with(prefix), "{key}: {result}");
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
