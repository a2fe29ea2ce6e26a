//! Retrying only the failures through the `cargo-s3batch` binary: a job whose report goes to
//! S3 (moto), `cargo s3batch report s3://…` reading it and writing the failed rows as a
//! manifest, that manifest run again, and the two reports together listing every row once.
//! The function is `examples/hello` under `cargo lambda watch` (keys containing
//! `fail-temporary` / `fail-permanent` fail that way).

use s3batch_job::analyze::read_report_rows;
use s3batch_job::{Location, Manifest, ReportRow, TaskStatus};
use s3batch_testkit::{fresh_dir, object_bytes, output_text as text, LambdaWatch, Moto};
use std::path::PathBuf;
use std::process::{Command, Output};

const BUCKET: &str = "bucket-one";

fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("retry-{name}"))
}

fn cli(moto: &Moto, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .arg("s3batch")
        .args(args)
        .args(["--s3-endpoint-url", &moto.endpoint()])
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("S3BATCH_STATE_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    out
}

async fn rows(location: &str, s3: &aws_sdk_s3::Client) -> Vec<ReportRow> {
    let mut rows = Vec::new();
    read_report_rows(&location.parse::<Location>().unwrap(), s3, &mut |r| {
        rows.push(r);
        Ok(())
    })
    .await
    .unwrap();
    rows
}

fn sorted<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = keys.into_iter().collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_rows_of_an_s3_report_run_again_as_a_manifest() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket().bucket("reports").send().await.unwrap();
    let watch = LambdaWatch::start_with("hello", &[], None, 2);
    let endpoint = format!("http://127.0.0.1:{}", watch.port());
    let dir = temp("cli");
    let state = dir.join("state");
    let state = state.to_str().unwrap();

    let keys = [
        "ok plain.txt",
        "ok a+b 100%.txt",
        "fail-permanent, \"quoted\" a+b.txt",
        "fail-temporary 100% é/日本.txt",
        "fail-permanent\nnew line",
        "ok,comma",
        "fail-temporary+plus %2B",
        "ok 🦀",
    ];
    let failing = sorted(keys.iter().copied().filter(|k| k.contains("fail-")));
    let manifest = dir.join("manifest.csv");
    let csv: String = keys
        .iter()
        .map(|k| format!("{BUCKET},{}\n", s3batch::key::encode_key(k)))
        .collect();
    std::fs::write(&manifest, csv).unwrap();
    let run = |manifest: &str, report: &str, job: &str| {
        cli(
            &moto,
            &[
                "run",
                "--function",
                "hello",
                "--endpoint-url",
                &endpoint,
                "--manifest",
                manifest,
                "--report",
                report,
                "--job-id",
                job,
                "--max-redrives",
                "0",
                "--no-failure-threshold",
                "--state-dir",
                state,
                "-j",
                "2",
            ],
        )
    };

    // The first run reports to S3.
    run(manifest.to_str().unwrap(), "s3://reports/pre/", "first");
    let first = rows("s3://reports/pre/", &s3).await;
    assert_eq!(first.len(), keys.len());

    // The report prefix read back; the failed rows written as a manifest.
    let failed = dir.join("failed.csv");
    let out = cli(
        &moto,
        &[
            "report",
            "s3://reports/pre/",
            "--failed-manifest",
            failed.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(2 results file(s))"), "{stdout}");
    assert!(
        stdout.contains("rows: 8 (4 succeeded, 4 failed)"),
        "{stdout}"
    );
    assert!(stdout.contains("       2  PermanentFailure\n"), "{stdout}");
    assert!(stdout.contains("       2  TemporaryFailure\n"), "{stdout}");
    assert!(stdout.contains("failed manifest: 4 row(s)"), "{stdout}");
    let written = Manifest::from_path(&failed).unwrap();
    assert_eq!(
        sorted(written.entries().iter().map(|e| e.key.as_str())),
        failing
    );

    // Run again: exactly the failed rows, and with the first run's successes every row once.
    run(
        failed.to_str().unwrap(),
        dir.join("retry").to_str().unwrap(),
        "second",
    );
    let retry_dir = dir.join("retry/job-second");
    let second = rows(retry_dir.to_str().unwrap(), &s3).await;
    assert_eq!(sorted(second.iter().map(|r| r.key.as_str())), failing);
    let together = sorted(
        first
            .iter()
            .filter(|r| r.task_status == TaskStatus::Succeeded)
            .chain(&second)
            .map(|r| r.key.as_str()),
    );
    assert_eq!(together, sorted(keys));

    // The local report, temporary failures only, written to S3 as the next manifest.
    let out = cli(
        &moto,
        &[
            "report",
            retry_dir.to_str().unwrap(),
            "--code",
            "TemporaryFailure",
            "--failed-manifest",
            "s3://reports/temporary.csv",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failed manifest: 2 row(s)"),
        "{}",
        text(&out)
    );
    let temporary = Manifest::load(&"s3://reports/temporary.csv".parse().unwrap(), &s3)
        .await
        .unwrap();
    assert_eq!(
        sorted(temporary.entries().iter().map(|e| e.key.as_str())),
        sorted(failing.iter().copied().filter(|k| k.contains("temporary")))
    );

    // The other S3 forms: the report's manifest.json named; a prefix of bare results CSVs
    // (here in AWS's example column order); a prefix holding two reports is refused.
    let out = cli(
        &moto,
        &["report", "s3://reports/pre/job-first/manifest.json"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rows: 8 (4 succeeded, 4 failed)"),
        "{}",
        text(&out)
    );
    for (key, body) in [
        (
            "raw/part-1.csv",
            "bucket-one,a+b,,failed,200,TemporaryFailure,SlowDown\n",
        ),
        (
            "raw/part-2.csv",
            "bucket-one,c%2Bd,,failed,200,TemporaryFailure,SlowDown\n",
        ),
    ] {
        s3.put_object()
            .bucket("reports")
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let raw = dir.join("raw.csv");
    let out = cli(
        &moto,
        &[
            "report",
            "s3://reports/raw/",
            "--failed-manifest",
            raw.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(2 results file(s))"), "{stdout}");
    assert!(
        stdout.contains("       2  TemporaryFailure  SlowDown\n"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&raw).unwrap(),
        "bucket-one,a+b\nbucket-one,c%2Bd\n"
    );
    let manifest_json = object_bytes(&s3, "reports", "pre/job-first/manifest.json").await;
    s3.put_object()
        .bucket("reports")
        .key("other/job-x/manifest.json")
        .body(manifest_json.into())
        .send()
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "report", "s3://reports/", "--s3-endpoint-url"])
        .arg(moto.endpoint())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr.contains("s3://reports/ holds 2 reports")
            && stderr.contains("s3://reports/other/job-x/manifest.json")
            && stderr.contains("s3://reports/pre/job-first/manifest.json"),
        "{stderr}"
    );

    // The two forms of `report` do not mix.
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args([
            "s3batch",
            "report",
            "s3://reports/pre/",
            "--job-id",
            "first",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out)
    );

    // The journal's `report --job-id` still writes a report (here: none left, so an error
    // naming the job, not a usage error about the new form).
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "report", "--job-id", "second", "--report"])
        .arg(dir.join("again"))
        .args(["--state-dir", state])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no journal of job second"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
