//! `cargo s3batch submit`, `status`, `list`, `confirm`, `cancel`, `priority` end to end: the
//! real CLI binary against `cargo s3batch serve` (in this process), moto for the objects,
//! manifests and reports, and `examples/chaos` served by `cargo lambda watch`.

use aws_sdk_s3control::types::{JobOperation, JobReport, JobStatus, LambdaInvokeOperation};
use s3batch_control::{ControlServer, ServeConfig};
use s3batch_job::Redrive;
use s3batch_testkit::control::{counts, created, expected_report, ChaosJobs, ACCOUNT, DATA};
use std::time::Duration;

/// The fixtures, the server the control client is connected to, and its state folder.
struct Env {
    kit: ChaosJobs,
    server: ControlServer,
    dir: std::path::PathBuf,
}

impl std::ops::Deref for Env {
    type Target = ChaosJobs;

    fn deref(&self) -> &ChaosJobs {
        &self.kit
    }
}

/// What a CLI run gave.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    /// Runs `cargo s3batch <args>` with the endpoint, region and account options.
    async fn cli(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
            .args(args)
            .args([
                "--endpoint-url",
                &self.server.endpoint(),
                "--region",
                "us-east-1",
                "--account-id",
                ACCOUNT,
            ])
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .await
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `submit` with the usual options plus `extra`; the job id.
    async fn submit(&self, extra: &[&str]) -> String {
        let arn = self.function_arn();
        let s3 = self.moto.endpoint();
        let mut args = vec![
            "submit",
            "--function-arn",
            &arn,
            "--role-arn",
            "arn:aws:iam::123456789012:role/batch",
            "--s3-endpoint-url",
            &s3,
            "--report",
            "s3://reports/batch",
        ];
        args.extend_from_slice(extra);
        let out = self.cli(&args).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let id = out.stdout.trim().to_owned();
        assert!(!id.is_empty() && !id.contains('\n'), "{}", out.stdout);
        id
    }

    /// `submit` of `manifest` (uploaded to `s3://data/never.csv` when local), for checks
    /// that must fail.
    async fn submit_only(&self, manifest: &str, extra: &[&str]) -> Out {
        let endpoint = self.moto.endpoint();
        let mut args = vec!["submit", "--manifest", manifest];
        if !manifest.starts_with("s3://") {
            args.extend(["--manifest-upload", "s3://data/never.csv"]);
        }
        args.extend([
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "--role-arn",
            "arn:aws:iam::123456789012:role/batch",
            "--s3-endpoint-url",
            &endpoint,
        ]);
        args.extend_from_slice(extra);
        self.cli(&args).await
    }

    /// `status ID --watch`, polling every 0.2 s until the job ends.
    async fn watch(&self, id: &str) -> Out {
        self.cli(&["status", id, "--watch", "--interval", "0.2"])
            .await
    }

    /// Nothing was uploaded to `key` in the data bucket.
    async fn assert_no_object(&self, key: &str) {
        assert!(self.head_not_found(key).await, "s3://{DATA}/{key} exists");
    }
}

async fn start() -> Env {
    let mut kit = ChaosJobs::start().await;
    let state = std::env::temp_dir().join(format!("s3batch-submit-{}", std::process::id()));
    let config = ServeConfig::new(&state)
        .s3_endpoint(kit.moto.endpoint())
        .lambda_endpoint(kit.lambda_endpoint())
        .concurrency(4)
        .grace_period(Duration::from_secs(1))
        .redrive(Redrive::new(3, Duration::from_millis(200)));
    let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    kit.connect(&server.endpoint());
    Env {
        kit,
        server,
        dir: state,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_submits_follows_and_steers_jobs_on_the_local_endpoint() {
    let env = start().await;

    // --- A local CSV manifest, uploaded by submit; schema 2.0 with a user argument.
    let mut keys: Vec<String> = (0..24).map(|i| format!("plain/{i:02} x.txt")).collect();
    keys.extend((0..3).map(|i| format!("perm/{i}")));
    keys.extend((0..3).map(|i| format!("temp-once/{i}")));
    let csv = env.put_objects(&keys).await;
    std::fs::create_dir_all(&env.dir).unwrap();
    let local = env.dir.join("m1.csv");
    std::fs::write(&local, &csv).unwrap();
    let local = local.to_str().unwrap();
    let first = [
        "--manifest",
        local,
        "--manifest-upload",
        "s3://data/uploaded/m1.csv",
        "--schema",
        "2.0",
        "--user-arg",
        "k=v",
        "--description",
        "first job",
        "--tag",
        "team=media",
    ];
    // A dry run prints the request and the AWS CLI command, and creates nothing.
    let dry = env
        .cli(
            &[
                &["submit", "--dry-run"][..],
                &first[..],
                &[
                    "--function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:f:1",
                    "--role-arn",
                    "arn:aws:iam::123456789012:role/batch",
                    "--s3-endpoint-url",
                    &env.moto.endpoint(),
                    "--report",
                    "s3://reports/batch",
                ][..],
            ]
            .concat(),
        )
        .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("aws s3control create-job"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("--client-request-token s3batch-"),
        "{}",
        dry.stdout
    );
    env.assert_no_object("uploaded/m1.csv").await;
    // A generated manifest (S3 lists the objects; not emulated by serve): a dry run shows it.
    let generated = env
        .cli(&[
            "submit",
            "--dry-run",
            "--generate-from",
            "s3://data/plain/",
            "--match-suffix",
            ".txt",
            "--larger-than",
            "1",
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1",
            "--create-role",
            "s3batch-test",
            "--s3-endpoint-url",
            &env.moto.endpoint(),
        ])
        .await;
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let json = generated
        .stdout
        .split("--manifest-generator '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{}", generated.stdout));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json).unwrap(),
        serde_json::json!({"S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::data",
            "EnableManifestOutput": false,
            "Filter": {
                "KeyNameConstraint": {"MatchAnyPrefix": ["plain/"], "MatchAnySuffix": [".txt"]},
                "ObjectSizeGreaterThanBytes": 1
            }
        }})
    );
    assert!(
        generated
            .stdout
            .contains("--role-arn arn:aws:iam::123456789012:role/s3batch-test"),
        "{}",
        generated.stdout
    );
    assert!(
        generated
            .stderr
            .contains("role s3batch-test would be created"),
        "{}",
        generated.stderr
    );
    let listed = env.cli(&["list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stderr.contains("0 jobs"), "{}", listed.stderr);

    let id = env.submit(&first).await;
    // The same submit again: the same request, the same token, the same job.
    assert_eq!(env.submit(&first).await, id);

    // status --watch follows it to Complete and exits 0.
    let watched = env.watch(&id).await;
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    assert!(watched.stdout.contains(": Complete"), "{}", watched.stdout);
    assert!(
        watched
            .stdout
            .contains("tasks: 30 total, 27 succeeded, 3 failed, 0 to go"),
        "{}",
        watched.stdout
    );
    assert!(
        watched.stdout.contains(&format!(
            "report: s3://reports/batch/job-{id}/manifest.json"
        )),
        "{}",
        watched.stdout
    );
    let job = env.describe(&id).await;
    assert_eq!(counts(&job), (30, 27, 3));
    let lambda = job.operation.unwrap().lambda_invoke.unwrap();
    assert_eq!(lambda.invocation_schema_version.as_deref(), Some("2.0"));
    assert_eq!(
        lambda.user_arguments.unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(job.description.as_deref(), Some("first job"));
    let report = env.report(&id).await;
    assert_eq!(report, expected_report(&keys));

    // --- An s3:// manifest (its ETag from HeadObject), confirmation required, a priority.
    // Its keys are `temp-once` ones: chaos leaves the marker `.chaos/<key>` at a key's
    // first invocation, the function's own record that it was called.
    let keys2: Vec<String> = (0..5).map(|i| format!("second/temp-once {i}")).collect();
    env.manifest("m2.csv", &keys2).await;
    let confirm_id = env
        .submit(&["--manifest", "s3://data/m2.csv", "--confirmation-required"])
        .await;
    env.wait(&confirm_id, "Suspended", |j| {
        j.status == Some(JobStatus::Suspended)
    })
    .await;
    let shown = env.cli(&["status", &confirm_id]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains(": Suspended"), "{}", shown.stdout);
    let p = env.cli(&["priority", &confirm_id, "42"]).await;
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(env.describe(&confirm_id).await.priority, 42);
    // Still waiting, whatever else runs: a job submitted after it (and after the priority
    // change) is started, invokes the function and ends meanwhile, so the service had every
    // chance to start the waiting one too (no time window involved); that one has still
    // invoked nothing.
    let after: Vec<String> = vec!["after-confirm/temp-once".into(), "after-confirm/x".into()];
    env.manifest("m-after.csv", &after).await;
    let after_id = env.submit(&["--manifest", "s3://data/m-after.csv"]).await;
    let watched = env.watch(&after_id).await;
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    assert_eq!(counts(&env.describe(&after_id).await), (2, 2, 0));
    assert!(
        env.invoked("after-confirm/temp-once").await,
        "the later job invoked the function"
    );
    let waiting = env.describe(&confirm_id).await;
    assert_eq!(waiting.status, Some(JobStatus::Suspended));
    assert_eq!(counts(&waiting), (5, 0, 0));
    for k in &keys2 {
        assert!(
            !env.invoked(k).await,
            "{k} was invoked before the confirmation"
        );
    }
    let c = env.cli(&["confirm", &confirm_id]).await;
    assert_eq!(c.code, 0, "{}", c.stderr);
    let watched = env.watch(&confirm_id).await;
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    assert_eq!(counts(&env.describe(&confirm_id).await), (5, 5, 0));
    for k in &keys2 {
        assert!(
            env.invoked(k).await,
            "{k} was not invoked after the confirmation"
        );
    }

    // --- A function the Invoke API does not know: the job fails; --watch exits 2.
    let failed = env
        .cli(&[
            "submit",
            "--manifest",
            "s3://data/m2.csv",
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:no-such-function",
            "--role-arn",
            "arn:aws:iam::123456789012:role/batch",
            "--s3-endpoint-url",
            &env.moto.endpoint(),
        ])
        .await;
    assert_eq!(failed.code, 0, "{}", failed.stderr);
    let failed_id = failed.stdout.trim().to_owned();
    let watched = env.watch(&failed_id).await;
    assert_eq!(watched.code, 2, "{}\n{}", watched.stdout, watched.stderr);
    assert!(
        watched.stdout.contains("failure reason: "),
        "{}",
        watched.stdout
    );

    // --- cancel stops a running job; --watch exits 3.
    let mut keys3: Vec<String> = (0..4).map(|i| format!("before-cancel/{i}")).collect();
    keys3.extend((0..3).map(|i| format!("hang/{i}")));
    keys3.extend((0..3).map(|i| format!("later/{i}")));
    env.manifest("m3.csv", &keys3).await;
    let cancel_id = env.submit(&["--manifest", "s3://data/m3.csv"]).await;
    env.wait(&cancel_id, "Active with 4 tasks done", |j| {
        j.status == Some(JobStatus::Active) && counts(j).1 >= 4
    })
    .await;
    let c = env.cli(&["cancel", &cancel_id, "--reason", "enough"]).await;
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("Cancelling"), "{}", c.stdout);
    let watched = env.watch(&cancel_id).await;
    assert_eq!(watched.code, 3, "{}\n{}", watched.stdout, watched.stderr);
    let report = env.report(&cancel_id).await;
    assert!(report.len() >= 4 && report.len() < 10, "{report:?}");
    assert!(
        report.iter().all(|(k, _)| !k.starts_with("hang")),
        "{report:?}"
    );

    // --- An S3 Inventory manifest.json (its ETag from HeadObject), submitted as s3://.
    let keys4: Vec<String> = (0..4).map(|i| format!("inventory/{i} é")).collect();
    env.inventory(&keys4).await;
    let inv_id = env
        .submit(&["--manifest", "s3://data/inv/manifest.json"])
        .await;
    let watched = env.watch(&inv_id).await;
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    assert_eq!(counts(&env.describe(&inv_id).await), (4, 4, 0));
    assert_eq!(env.report(&inv_id).await, expected_report(&keys4));
    let spec = env.describe(&inv_id).await.manifest.unwrap().spec.unwrap();
    assert_eq!(
        spec.format,
        aws_sdk_s3control::types::JobManifestFormat::S3InventoryReportCsv20161130
    );

    // --- A manifest that changed after its ETag was read: status names the fix.
    // (The request of the Rust SDK: no schema, no report, priority 1, the SDK's token.)
    let bad_id = created(
        env.create("m2.csv", "0123456789abcdef0123456789abcdef", "")
            .set_client_request_token(None)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(
                        LambdaInvokeOperation::builder()
                            .function_arn(env.function_arn())
                            .build(),
                    )
                    .build(),
            )
            .report(JobReport::builder().enabled(false).build())
            .priority(1),
    )
    .await;
    let watched = env.watch(&bad_id).await;
    assert_eq!(watched.code, 2, "{}\n{}", watched.stdout, watched.stderr);
    assert!(
        watched
            .stdout
            .contains("fix: the manifest changed after the job was created"),
        "{}",
        watched.stdout
    );

    // --- The role's policies, printed; nothing created.
    let printed = env
        .cli(&[
            "submit",
            "--print-policy",
            "--manifest",
            "s3://data/m2.csv",
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:fn:1",
            "--s3-endpoint-url",
            &env.moto.endpoint(),
            "--report",
            "s3://reports/batch",
        ])
        .await;
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert!(
        printed.stdout.contains("batchoperations.s3.amazonaws.com")
            && printed.stdout.contains("arn:aws:s3:::data/m2.csv")
            && printed.stdout.contains("arn:aws:s3:::reports/batch/*")
            && printed
                .stdout
                .contains("arn:aws:lambda:us-east-1:123456789012:function:fn:1"),
        "{}",
        printed.stdout
    );

    // --- list, with a status filter.
    let all = env.cli(&["list"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    for j in [
        &id,
        &confirm_id,
        &after_id,
        &failed_id,
        &cancel_id,
        &inv_id,
        &bad_id,
    ] {
        assert!(all.stdout.contains(j.as_str()), "{j} not in {}", all.stdout);
    }
    assert!(all.stderr.contains("7 jobs"), "{}", all.stderr);
    let complete = env.cli(&["list", "--status", "Complete"]).await;
    assert_eq!(complete.stdout.lines().count(), 4, "{}", complete.stdout);
    for j in [&id, &confirm_id, &after_id, &inv_id] {
        assert!(complete.stdout.contains(j.as_str()), "{}", complete.stdout);
    }

    // --- Errors name the fix: an unknown job, a report bucket that does not exist.
    let unknown = env
        .cli(&["status", "00000000-0000-4000-8000-000000000000"])
        .await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("--region"), "{}", unknown.stderr);
    let no_bucket = env
        .submit_only("s3://data/m2.csv", &["--report", "s3://no-such-reports/x"])
        .await;
    assert_eq!(no_bucket.code, 1);
    assert!(
        no_bucket.stderr.contains("no-such-reports") && no_bucket.stderr.contains("create it"),
        "{}",
        no_bucket.stderr
    );
    assert!(
        !no_bucket.stderr.contains("ServiceError"),
        "{}",
        no_bucket.stderr
    );
    // A manifest that is not there, one with a bad row, arguments schema 1.0 cannot carry:
    // the checks of `run`, before anything is created.
    let missing = env.submit_only("s3://data/missing.csv", &[]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("s3://data/missing.csv") && missing.stderr.contains("no such"),
        "{}",
        missing.stderr
    );
    let bad_csv = env.dir.join("bad.csv");
    std::fs::write(&bad_csv, "data,ok\ndata,bad%zz\n").unwrap();
    let bad = env.submit_only(bad_csv.to_str().unwrap(), &[]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("line 2"), "{}", bad.stderr);
    let v1 = env
        .submit_only("s3://data/m2.csv", &["--user-arg", "k=v"])
        .await;
    assert_eq!(v1.code, 1);
    assert!(v1.stderr.contains("schema 2.0"), "{}", v1.stderr);
    let upload = env
        .submit_only(
            "s3://data/m2.csv",
            &["--manifest-upload", "s3://data/never.csv"],
        )
        .await;
    assert_eq!(upload.code, 1);
    assert!(upload.stderr.contains("in S3 already"), "{}", upload.stderr);
    env.assert_no_object("never.csv").await;
    assert!(env.cli(&["list"]).await.stderr.contains("7 jobs"));

    // --- Retry only the failures: a job whose objects are partly missing (404) or refused
    // (perm); the missing ones are uploaded, `report --failed-manifest --message` picks the
    // rows that failed with a 404, and that manifest, submitted, succeeds. The two reports
    // together hold every row exactly once as succeeded, except the refused ones.
    let present: Vec<String> = (0..6).map(|i| format!("retry/ok {i}")).collect();
    let late: Vec<String> = (0..3).map(|i| format!("retry/late {i}+é")).collect();
    let refused: Vec<String> = (0..2).map(|i| format!("retry/perm {i}")).collect();
    let mut csv = env.put_objects(&present).await;
    csv.push_str(&env.put_objects(&refused).await);
    for k in &late {
        csv.push_str(&format!("{DATA},{}\n", s3batch::key::encode_key(k)));
    }
    env.put("retry.csv", csv).await;
    let first_id = env.submit(&["--manifest", "s3://data/retry.csv"]).await;
    let watched = env.watch(&first_id).await;
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    assert_eq!(counts(&env.describe(&first_id).await), (11, 6, 5));
    env.put_objects(&late).await;
    let report_uri = format!("s3://reports/batch/job-{first_id}/manifest.json");
    let moto = env.moto.endpoint();
    let analysed = tokio::process::Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["report", &report_uri, "--s3-endpoint-url", &moto])
        .args(["--failed-manifest", "s3://data/retry-failed.csv"])
        .args(["--message", "HTTP 404"])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .unwrap();
    assert!(
        analysed.status.success(),
        "{}",
        String::from_utf8_lossy(&analysed.stderr)
    );
    let retry_id = env
        .submit(&["--manifest", "s3://data/retry-failed.csv"])
        .await;
    let watched = env.watch(&retry_id).await;
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    assert_eq!(counts(&env.describe(&retry_id).await), (3, 3, 0));
    let mut outcome: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for id in [&first_id, &retry_id] {
        for (key, status) in env.report(id).await {
            outcome.entry(key).or_default().push(status);
        }
    }
    let succeeded_once = |k: &String| outcome[k] == ["succeeded"];
    assert!(present.iter().all(succeeded_once), "{outcome:?}");
    assert!(
        late.iter().all(|k| outcome[k] == ["failed", "succeeded"]),
        "{outcome:?}"
    );
    assert!(
        refused.iter().all(|k| outcome[k] == ["failed"]),
        "{outcome:?}"
    );
    assert_eq!(outcome.len(), 11, "{outcome:?}");

    // --- Against local endpoints, neither --account-id nor --function-arn: the account is
    // the local one, and the function's ARN is made from its name without GetFunction (the
    // Lambda endpoint given answers nothing at all: port 1).
    let local = tokio::process::Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["submit", "--endpoint-url", &env.server.endpoint()])
        .args(["--region", "us-east-1", "--function", env.function()])
        .args(["--lambda-endpoint-url", "http://127.0.0.1:1"])
        .args(["--manifest", "s3://data/retry-failed.csv"])
        .args(["--role-arn", "arn:aws:iam::123456789012:role/batch"])
        .args(["--s3-endpoint-url", &moto, "--report", "s3://reports/batch"])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(local.status.success(), "{stderr}");
    let local_id = String::from_utf8_lossy(&local.stdout).trim().to_owned();
    let job = env.describe(&local_id).await;
    assert_eq!(
        job.operation
            .as_ref()
            .and_then(|o| o.lambda_invoke.as_ref())
            .and_then(|l| l.function_arn.as_deref()),
        Some(env.function_arn().as_str()),
        "{job:?}"
    );
    env.wait(&local_id, "Complete", |j| {
        j.status == Some(JobStatus::Complete)
    })
    .await;
    assert_eq!(counts(&env.describe(&local_id).await), (3, 3, 0));
    let _ = std::fs::remove_dir_all(&env.dir);
}
