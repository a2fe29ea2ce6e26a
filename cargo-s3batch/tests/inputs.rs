//! What the runner reads before and around a job: S3 Inventory manifests (local copies and
//! `s3://`), and the function it is told to invoke (checked before the first task; Invoke API
//! errors redriven only when a repeat may succeed).

use s3batch::ResultCode;
use s3batch_job::{
    LambdaInvoker, LocalJob, Location, Manifest, ManifestEntry, Redrive, TaskRecord,
};
use s3batch_testkit::{fresh_dir, LambdaWatch, Moto};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- local inventory copies

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    fresh_dir(&format!("inputs-{name}"))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn inventory_json(keys: &[&str]) -> String {
    let files: Vec<String> = keys
        .iter()
        .map(|k| format!(r#"{{"key":"{k}","size":1}}"#))
        .collect();
    format!(
        r#"{{"sourceBucket":"src-bucket","destinationBucket":"arn:aws:s3:::inv-bucket","version":"2016-11-30",
            "fileFormat":"CSV","fileSchema":"Bucket, Key","files":[{}]}}"#,
        files.join(",")
    )
}

/// `dir` as `aws s3 sync s3://inv-bucket/ dir/` leaves an inventory with prefix `inv`:
/// returns the manifest's path.
fn inventory_copy(dir: &Path, keys: &[&str]) -> PathBuf {
    let manifest = dir.join("inv/src-bucket/cfg/2026-11-24T01-00Z/manifest.json");
    write(&manifest, inventory_json(keys).as_bytes());
    manifest
}

fn problems(result: Result<Manifest, s3batch_job::ManifestError>) -> Vec<String> {
    match result {
        Ok(m) => panic!("read {:?}", m.entries()),
        Err(e) => e.problems().to_vec(),
    }
}

#[test]
fn a_faithful_local_inventory_copy_is_read() {
    let dir = scratch("faithful");
    let manifest = inventory_copy(
        &dir,
        &[
            "inv/src-bucket/cfg/data/0a.csv.gz",
            "inv/src-bucket/cfg/data/1b.csv",
        ],
    );
    write(
        &dir.join("inv/src-bucket/cfg/data/0a.csv.gz"),
        &gzip(b"\"src-bucket\",\"a+b%2Bc\"\n"),
    );
    // A symlink that stays inside the copy is fine.
    write(
        &dir.join("inv/src-bucket/cfg/elsewhere.csv"),
        b"src-bucket,d\n",
    );
    std::os::unix::fs::symlink(
        dir.join("inv/src-bucket/cfg/elsewhere.csv"),
        dir.join("inv/src-bucket/cfg/data/1b.csv"),
    )
    .unwrap();
    let m = Manifest::from_path(&manifest).unwrap();
    assert_eq!(
        m.entries(),
        [
            ManifestEntry::new("src-bucket", "a b+c"),
            ManifestEntry::new("src-bucket", "d")
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_inventory_key_with_dot_dot_reads_nothing_outside_the_copy() {
    let dir = scratch("dotdot");
    // What a `..` key would reach: a file outside the inventory copy.
    write(&dir.join("secret.csv"), b"src-bucket,SECRET-TOKEN\n");
    for key in [
        "../../../secret.csv",
        "inv/src-bucket/cfg/data/../../../../secret.csv",
        "/../../secret.csv",
    ] {
        let manifest = inventory_copy(&dir, &[key]);
        let p = problems(Manifest::from_path(&manifest));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with(&format!("{key}: ")), "{p:?}");
        assert!(!p[0].contains("SECRET"), "{p:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_data_file_is_an_error_not_a_namesake_in_a_parent_folder() {
    let dir = scratch("namesake");
    let key = "inv/src-bucket/cfg/data/7c.csv";
    let manifest = inventory_copy(&dir, &[key]);
    // Not at inv/src-bucket/cfg/data/7c.csv, but same-named files higher up.
    write(&dir.join("7c.csv"), b"src-bucket,from-a-parent\n");
    write(&dir.join("data/7c.csv"), b"src-bucket,from-a-parent\n");
    write(
        &dir.join("inv/src-bucket/7c.csv"),
        b"src-bucket,from-a-parent\n",
    );
    let p = problems(Manifest::from_path(&manifest));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!("{key}: data file not found at ")),
        "{p:?}"
    );
    assert!(p[0].contains("inv/src-bucket/cfg/data/7c.csv"), "{p:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_leading_out_of_the_inventory_copy_is_not_followed() {
    let dir = scratch("symlink");
    write(
        &dir.join("outside/secret.csv"),
        b"src-bucket,SECRET-TOKEN\n",
    );
    let key = "inv/src-bucket/cfg/data/1.csv";
    let manifest = inventory_copy(&dir, &[key]);
    std::fs::create_dir_all(dir.join("inv/src-bucket/cfg/data")).unwrap();
    std::os::unix::fs::symlink(
        dir.join("outside/secret.csv"),
        dir.join("inv/src-bucket/cfg/data/1.csv"),
    )
    .unwrap();
    let p = problems(Manifest::from_path(&manifest));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(key) && p[0].contains("leads outside"),
        "{p:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- s3:// inventories

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_inventory_data_files_come_from_the_destination_bucket_and_its_arn_is_checked() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    for b in ["inv-bucket", "other-bucket"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let put = |bucket: &'static str, key: &'static str, body: Vec<u8>| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    };
    let data = "inv/src-bucket/cfg/data/0a.csv.gz";
    put("inv-bucket", data, gzip(b"src-bucket,right\n")).await;
    put("other-bucket", data, gzip(b"src-bucket,wrong\n")).await;
    let load = |json: String| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("other-bucket")
                .key("inv/src-bucket/cfg/2026-11-24T01-00Z/manifest.json")
                .body(json.into_bytes().into())
                .send()
                .await
                .unwrap();
            let at: Location =
                "s3://other-bucket/inv/src-bucket/cfg/2026-11-24T01-00Z/manifest.json"
                    .parse()
                    .unwrap();
            Manifest::load(&at, &s3).await
        }
    };

    // The same data file listed twice is read twice, from destinationBucket.
    let m = load(inventory_json(&[data, data])).await.unwrap();
    assert_eq!(
        m.entries(),
        [
            ManifestEntry::new("src-bucket", "right"),
            ManifestEntry::new("src-bucket", "right")
        ]
    );
    for (arn, expect) in [
        ("arn:aws:s3:::", "is not an S3 bucket ARN"),
        ("arn:aws:s3:::inv-bucket/inv", "is not an S3 bucket ARN"),
        ("inv-bucket", "is not an S3 bucket ARN"),
        ("", "has no destinationBucket"),
    ] {
        let json = inventory_json(&[data]).replace("arn:aws:s3:::inv-bucket", arn);
        let err = load(json).await.unwrap_err();
        assert!(
            err.problems()[0].contains(expect) && err.problems()[0].contains("destinationBucket"),
            "{arn:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------- the function

fn three_objects() -> Manifest {
    Manifest::from_csv(b"bucket-one,a\nbucket-one,b\nbucket-one,c\n").unwrap()
}

async fn invoker(endpoint: &str, function: &str) -> LambdaInvoker {
    LambdaInvoker::new(
        LambdaInvoker::client(Some(endpoint), Duration::from_secs(300)).await,
        function,
    )
}

/// Forwards invocations but skips the check: what a job meets when the function goes away
/// after it started.
struct Unchecked(LambdaInvoker);

impl s3batch_job::Invoke for Unchecked {
    async fn invoke(&self, payload: Vec<u8>) -> s3batch_job::Invoked {
        self.0.invoke(payload).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_function_under_cargo_lambda_watch_fails_the_job_before_any_task() {
    let watch = LambdaWatch::start("hello", &[], None);
    let endpoint = format!("http://127.0.0.1:{}", watch.port());
    let redrive = Redrive::new(3, Duration::from_millis(1));

    let err = LocalJob::new(three_objects())
        .redrive(redrive)
        .run(invoker(&endpoint, "helo").await)
        .await
        .expect_err("a function that does not exist must fail the job")
        .to_string();
    assert!(err.contains("\"helo\" not found at"), "{err}");
    assert!(err.contains("Missing function"), "{err}");
    assert!(err.contains("--endpoint-url"), "{err}");

    // Gone after the check: each task fails at once, none redriven.
    let report = LocalJob::new(three_objects())
        .redrive(redrive)
        .run(Unchecked(invoker(&endpoint, "helo").await))
        .await
        .unwrap();
    assert_eq!(
        keys_of(&report.records),
        ["a", "b", "c"],
        "one record per row"
    );
    for r in &report.records {
        assert_eq!(r.error_code, Some(ResultCode::PermanentFailure), "{r:?}");
        assert_eq!((r.attempts, r.http_status), (1, Some(404)), "{r:?}");
        assert!(r.message.contains("not found"), "{r:?}");
    }
    assert_eq!(report.summary.redriven, 0);

    // The right name passes the check and runs.
    let report = LocalJob::new(three_objects())
        .run(invoker(&endpoint, "hello").await)
        .await
        .unwrap();
    assert_eq!(report.summary.succeeded, 3, "{:?}", report.records);
    let mut got: Vec<(&str, &str)> = report
        .records
        .iter()
        .map(|r| (r.entry.key.as_str(), r.message.as_str()))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            ("a", "hello s3://bucket-one/a"),
            ("b", "hello s3://bucket-one/b"),
            ("c", "hello s3://bucket-one/c")
        ]
    );
}

/// The keys of `records`, sorted: which rows the report holds, each as often as it does.
fn keys_of(records: &[TaskRecord]) -> Vec<&str> {
    let mut keys: Vec<&str> = records.iter().map(|r| r.entry.key.as_str()).collect();
    keys.sort_unstable();
    keys
}

/// One canned Lambda service answer per function name, as Lambda sends errors: REST-JSON,
/// `x-amzn-ErrorType` naming the error. A `DryRun` call is answered 204 (the function exists)
/// unless the function is `gone`.
async fn fake_lambda() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let seen = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 65536];
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let function = path.split('/').nth(3).unwrap_or_default().to_owned();
                let dry_run = head.contains("x-amz-invocation-type: dryrun");
                let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
                let (status, error_type, body) = match function.as_str() {
                    "gone" => (
                        "404 Not Found",
                        "ResourceNotFoundException",
                        format!(r#"{{"Type":"User","Message":"Function not found: {arn}"}}"#),
                    ),
                    _ if dry_run => ("204 No Content", "", String::new()),
                    "too-big" => (
                        "413 Request Entity Too Large",
                        "RequestTooLargeException",
                        r#"{"Type":"User","message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}"#.into(),
                    ),
                    "bad-request" => (
                        "400 Bad Request",
                        "InvalidRequestContentException",
                        r#"{"Type":"User","message":"Could not parse request body into json: Unexpected character"}"#.into(),
                    ),
                    "throttled" => (
                        "429 Too Many Requests",
                        "TooManyRequestsException",
                        r#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#.into(),
                    ),
                    _ => (
                        "500 Internal Server Error",
                        "ServiceException",
                        r#"{"Type":"Service","message":"An internal error occurred."}"#.into(),
                    ),
                };
                *seen
                    .lock()
                    .unwrap()
                    .entry(format!(
                        "{function}{}",
                        if dry_run { " dry-run" } else { "" }
                    ))
                    .or_default() += 1;
                let mut response = format!(
                    "HTTP/1.1 {status}\r\nx-amzn-RequestId: 0e3a1b2c\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                if !error_type.is_empty() {
                    response.push_str(&format!("x-amzn-ErrorType: {error_type}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&body);
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (endpoint, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_api_errors_are_redriven_only_when_a_repeat_may_succeed() {
    let (endpoint, calls) = fake_lambda().await;
    let redrive = Redrive::new(2, Duration::from_millis(1));
    let run = |function: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            LocalJob::new(three_objects())
                .redrive(redrive)
                .run(invoker(&endpoint, function).await)
                .await
        }
    };
    for (function, code, attempts, status, says) in [
        (
            "too-big",
            ResultCode::PermanentFailure,
            1,
            413,
            "request payload (",
        ),
        (
            "bad-request",
            ResultCode::PermanentFailure,
            1,
            400,
            "InvalidRequestContentException: Could not parse",
        ),
        (
            "throttled",
            ResultCode::TemporaryFailure,
            3,
            429,
            "TooManyRequestsException: Rate Exceeded.",
        ),
        (
            "broken",
            ResultCode::TemporaryFailure,
            3,
            500,
            "ServiceException: An internal error",
        ),
    ] {
        let report = run(function).await.unwrap();
        assert_eq!(
            keys_of(&report.records),
            ["a", "b", "c"],
            "{function}: one record per row"
        );
        for r in &report.records {
            assert_eq!(
                (r.error_code, r.attempts, r.http_status),
                (Some(code), attempts, Some(status)),
                "{function}: {r:?}"
            );
            assert!(
                r.message.starts_with("Lambda Invoke API call failed: "),
                "{r:?}"
            );
            assert!(r.message.contains(says), "{function}: {r:?}");
        }
        assert_eq!(
            calls.lock().unwrap()[function],
            3 * attempts as usize,
            "{function}"
        );
        assert_eq!(
            calls.lock().unwrap()[&format!("{function} dry-run")],
            1,
            "{function}"
        );
    }
    let report = run("too-big").await.unwrap();
    assert!(
        report.records[0]
            .message
            .contains("too large: Lambda takes at most 6 MB"),
        "{}",
        report.records[0].message
    );

    // Not found: the check stops the job; nothing is invoked for real.
    let err = run("gone").await.unwrap_err().to_string();
    assert!(
        err.contains("\"gone\" not found at http://127.0.0.1:")
            && err.contains("ResourceNotFoundException: Function not found")
            && err.contains("--endpoint-url"),
        "{err}"
    );
    assert_eq!(calls.lock().unwrap().get("gone").copied(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_nobody_listens_on_fails_the_job_before_any_task() {
    let endpoint = format!("http://127.0.0.1:{}", s3batch_testkit::free_port());
    let err = LocalJob::new(three_objects())
        .run(invoker(&endpoint, "hello").await)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "cannot reach the Lambda Invoke API: no answer from {endpoint}"
        )),
        "{err}"
    );
}

/// The slip from the issue: `AWS_ENDPOINT_URL` points at a local S3 (moto) and
/// `--endpoint-url` is forgotten, so the Invoke calls go to moto, which has no such function
/// (`ResourceNotFoundException`). The CLI stops before any task, exit status 1, and says why.
#[test]
fn a_forgotten_endpoint_url_stops_the_cli_before_any_task() {
    let moto = Moto::start();
    let dir = scratch("cli-endpoint");
    let manifest = dir.join("manifest.csv");
    write(&manifest, b"bucket-one,a\nbucket-one,b\n");
    let state = dir.join("state");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "run", "--function", "hello", "--quiet"])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--state-dir")
        .arg(&state)
        .args(["--max-redrives", "3", "--redrive-backoff-ms", "1"])
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env_remove("AWS_ENDPOINT_URL_LAMBDA")
        .env_remove("S3BATCH_LAMBDA_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Complete"), "{stdout}");
    assert!(
        stderr.contains("\"hello\" not found at")
            && stderr.contains("ResourceNotFoundException")
            && stderr.contains("--endpoint-url")
            && stderr.contains(&format!("AWS_ENDPOINT_URL={}", moto.endpoint())),
        "{stderr}"
    );
    // Nothing ran, so nothing is kept: no journal that would block a rerun of the job id.
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        state.display()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A function whose instance fails to start: under `cargo lambda watch` the Invoke call then
/// never answers (on Lambda it is a function error at once). The check gives up after the
/// function timeout and stops the job, rather than each task waiting that long in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_fails_to_start_stops_the_job_at_the_check() {
    // lambda_runtime panics at start on a memory size that is not a number: an init error.
    let env = [(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
        "lots".to_owned(),
    )];
    let watch = LambdaWatch::start("hello", &env, None);
    let endpoint = format!("http://127.0.0.1:{}", watch.port());
    // Room for watch's `cargo run` to wait for the target folder's lock while other tests of
    // this file build: the check must see the start fail, not a slow start.
    let client = LambdaInvoker::client(Some(&endpoint), Duration::from_secs(30)).await;
    let err = LocalJob::new(three_objects())
        .run(LambdaInvoker::new(client, "hello"))
        .await
        .expect_err("a function that never starts must fail the job")
        .to_string();
    assert!(
        err.contains("\"hello\" did not answer an empty batch within 30 s")
            && err.contains("failed to start"),
        "{err}"
    );
    assert!(
        watch.log().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "{}",
        watch.log()
    );
}
