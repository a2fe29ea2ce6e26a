//! The whole local job, end to end: objects with awkward keys in moto, `examples/chaos`
//! served by `cargo lambda watch`, and the `cargo-s3batch` CLI reading the manifest from S3
//! and writing the completion report.

use futures_util::StreamExt;
use s3batch_job::read_report;
use s3batch_testkit::{manifest_key, LambdaWatch, Moto};
use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

const BUCKET: &str = "bucket-one";
/// The function timeout the runner enforces (`--function-timeout`). It bounds every one of
/// the job's invocations, each a HeadObject against moto on a busy machine, so it is roomy;
/// only the hanging task runs into it.
const TIMEOUT_SECS: u64 = 20;

/// What each kind of key should end as: (status, error code, message check).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    TempOnce,
    Perm,
    Panic,
    Hang,
    Missing,
}

fn keys() -> Vec<(String, Kind)> {
    let awkward = [
        "plain",
        "with space",
        "a+plus",
        "100% sure",
        "caf\u{e9}/\u{fc}n\u{ef}c\u{f6}d\u{e9}",
        "emoji \u{1F600}",
        "dir/sub dir/../file",
        "../../etc/passwd",
        "q?x=1&y=2#frag",
        "comma, \"quoted\"",
        "tab\there",
        "%2B literal",
        "{\"json\": [1]}",
        "~tilde*star!",
    ];
    let mut out: Vec<(String, Kind)> = (0..1000)
        .map(|i| {
            (
                format!("{}/{i:04}.txt", awkward[i % awkward.len()]),
                Kind::Plain,
            )
        })
        .collect();
    for i in 0..20 {
        out.push((
            format!("{}/temp-once {i}", awkward[i % awkward.len()]),
            Kind::TempOnce,
        ));
    }
    for i in 0..10 {
        out.push((format!("perm+{i} \u{e9}"), Kind::Perm));
    }
    out.push(("please panic now.txt".into(), Kind::Panic));
    out.push(("hang forever \u{1F600}".into(), Kind::Hang));
    out.push(("not uploaded +%.txt".into(), Kind::Missing));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_awkward_keys_through_cargo_lambda_watch() {
    let moto = Moto::start();
    let s3 = moto.client_with_buckets(&[BUCKET]).await;
    let keys = keys();
    let uploads = futures_util::stream::iter(keys.iter().filter(|(_, k)| *k != Kind::Missing))
        .map(|(key, _)| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .body(key.as_bytes().to_vec().into())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("uploading {key:?}: {e:?}"));
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    uploads.await;
    let manifest: String = keys
        .iter()
        .map(|(k, _)| format!("{BUCKET},{}\n", manifest_key(k)))
        .collect();
    s3.put_object()
        .bucket(BUCKET)
        .key("jobs/manifest.csv")
        .body(manifest.into_bytes().into())
        .send()
        .await
        .unwrap();

    // Several instances, so the hanging task does not hold up the others. No `--timeout`:
    // cargo-lambda 1.9 applies it to the runtime's idle polls too, which breaks an instance
    // left idle that long; the runner enforces the timeout instead.
    let watch = LambdaWatch::start_with("chaos", &moto.env(), None, 8);
    let report_dir = std::env::temp_dir().join(format!("s3batch-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report_dir);
    let cli = |manifest: &str, timeout: u64| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
        cmd.args([
            "s3batch",
            "run",
            "--function",
            "chaos",
            "--manifest",
            manifest,
        ])
        .args(["--s3-endpoint-url", &moto.endpoint()])
        .args([
            "--endpoint-url",
            &format!("http://127.0.0.1:{}", watch.port()),
        ])
        .args([
            "--concurrency",
            "8",
            "--max-redrives",
            "2",
            "--redrive-backoff-ms",
            "200",
        ])
        .args(["--function-timeout", &timeout.to_string()])
        .arg("--state-dir")
        .arg(report_dir.with_extension("state"))
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    };
    // Start all eight instances first: a cold start under `cargo lambda watch` can take
    // longer than the short timeout the job runs with.
    let warm = report_dir.with_extension("warm.csv");
    std::fs::write(&warm, format!("{BUCKET},plain/0000.txt\n").repeat(16)).unwrap();
    let out = cli(warm.to_str().unwrap(), 120).output().unwrap();
    let warm_stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && warm_stdout.contains("16 succeeded"),
        "{warm_stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&warm).unwrap();

    let started = Instant::now();
    let out = cli(&format!("s3://{BUCKET}/jobs/manifest.csv"), TIMEOUT_SECS)
        .args(["--job-id", "e2e", "--report"])
        .arg(&report_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}(in {:?})", started.elapsed());

    let rows = read_report(&report_dir.join("job-e2e")).unwrap();
    assert_eq!(rows.len(), keys.len(), "one row per manifest row");
    let mut by_key: HashMap<&str, &s3batch_job::ReportRow> = HashMap::new();
    for row in &rows {
        assert_eq!(row.bucket, BUCKET);
        assert!(
            by_key.insert(&row.key, row).is_none(),
            "{:?} twice",
            row.key
        );
    }
    let mut expect_ok = 0;
    for (key, kind) in &keys {
        let row = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("{key:?} missing from the report"));
        let got = (
            row.task_status.as_str(),
            row.error_code.map_or("", |c| c.as_str()),
        );
        match kind {
            Kind::Plain | Kind::TempOnce => {
                expect_ok += 1;
                assert_eq!(got, ("succeeded", ""), "{key:?}: {row:?}");
                assert_eq!(row.message, format!("ok {} bytes", key.len()), "{key:?}");
            }
            Kind::Perm => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{key:?}");
                assert_eq!(row.message, format!("{key} cannot be processed"));
            }
            Kind::Panic => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{key:?}");
                assert_eq!(
                    row.message,
                    format!("task panicked: asked to panic on {key}")
                );
            }
            Kind::Hang => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{key:?}");
                assert_eq!(
                    row.message,
                    format!(
                        r#"Lambda returned function error: {{"errorMessage":"Task timed out after {TIMEOUT_SECS}.00 seconds"}}"#
                    )
                );
            }
            Kind::Missing => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{key:?}: {row:?}");
                // Failed because S3 has no such object, not for any other reason.
                assert!(row.message.contains("(HTTP 404)"), "{key:?}: {row:?}");
            }
        }
        assert_eq!(row.http_status, Some(200), "{key:?}");
    }
    let failed = keys.len() - expect_ok;
    // 20 temp-once keys redriven once; a timeout is a function error, never redriven.
    let summary = [
        format!(
            "tasks: {} total, {expect_ok} succeeded, {failed} failed",
            keys.len()
        ),
        "redriven: 20 redrives of 20 tasks".to_string(),
    ];
    for line in summary {
        assert!(stdout.contains(&line), "{line:?} not in\n{stdout}");
    }
    std::fs::remove_dir_all(&report_dir).unwrap();
    std::fs::remove_dir_all(report_dir.with_extension("state")).unwrap();
}
