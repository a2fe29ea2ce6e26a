//! `cargo s3batch serve` end to end: moto holds the objects, the manifests and the reports,
//! `examples/chaos` is served by `cargo lambda watch`, the S3 Control endpoint runs in this
//! process, and the real `aws-sdk-s3control` client drives it.
//!
//! The client reaches the endpoint through a static endpoint resolver (the README's option
//! A; see `s3batch_testkit::control`).

use aws_sdk_s3control::types::{
    JobOperation, JobStatus, LambdaInvokeOperation, RequestedJobStatus,
};
use s3batch_control::{ControlServer, ServeConfig};
use s3batch_job::{FailureThreshold, Redrive};
use s3batch_testkit::control::{
    counts, created, expected_report, status, ChaosJobs, ACCOUNT, DATA, REPORTS,
};
use std::time::{Duration, Instant};

/// A server's state folder (emptied as each job ends; removed by the test).
fn state_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("s3batch-serve-{}-{name}", std::process::id()))
}

/// The server's settings: 4 invocations at once, a 1 s grace period, short redrives.
fn config(kit: &ChaosJobs, name: &str) -> ServeConfig {
    ServeConfig::new(state_dir(name))
        .s3_endpoint(kit.moto.endpoint())
        .lambda_endpoint(kit.lambda_endpoint())
        .concurrency(4)
        .grace_period(Duration::from_secs(1))
        .redrive(Redrive::new(3, Duration::from_millis(200)))
}

/// The fixtures, and the server (state folder `a`) the control client is connected to.
async fn start() -> (ChaosJobs, ControlServer) {
    let mut env = ChaosJobs::start().await;
    let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), config(&env, "a"))
        .await
        .unwrap();
    env.connect(&server.endpoint());
    (env, server)
}

/// A job created with `ConfirmationRequired` waits in `Suspended`, invoking nothing, until
/// `UpdateJobStatus Ready`; then it runs. Its keys are `temp-once` ones: chaos leaves the
/// marker `.chaos/<key>` at a key's first invocation, the function's own record that it was
/// called. Returns its manifest's ETag, its id and the id of the job created while it waited.
///
/// (A function of its own: the test's body is one large debug-build stack frame, and the
/// test thread's stack is 2 MiB.)
async fn confirmation_required(env: &ChaosJobs) -> (String, String, String) {
    let small: Vec<String> = (0..3).map(|i| format!("confirm/temp-once {i}")).collect();
    let etag2 = env.manifest("m2.csv", &small).await;
    let confirm_id = created(
        env.create("m2.csv", etag2.trim_matches('"'), "token-2")
            .confirmation_required(true),
    )
    .await;
    let job = env
        .wait(&confirm_id, "Suspended", |j| {
            status(j) == JobStatus::Suspended
        })
        .await;
    assert_eq!(counts(&job), (3, 0, 0));
    assert_eq!(job.confirmation_required, Some(true));
    // It stays there, whatever else runs: a job created after it is started, invokes the
    // function and ends meanwhile (the service had every chance to start the waiting one
    // too, no time window involved), and the waiting one has still invoked nothing.
    let after: Vec<String> = vec!["after-confirm/temp-once".into(), "after-confirm/x".into()];
    let etag_after = env.manifest("m-after.csv", &after).await;
    let after_id = created(env.create("m-after.csv", &etag_after, "token-after-confirm")).await;
    let job = env
        .wait(&after_id, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (2, 2, 0));
    assert!(
        env.invoked("after-confirm/temp-once").await,
        "the later job invoked the function"
    );
    let job = env.describe(&confirm_id).await;
    assert_eq!(status(&job), JobStatus::Suspended);
    assert_eq!(counts(&job), (3, 0, 0));
    for k in &small {
        assert!(
            !env.invoked(k).await,
            "{k} was invoked before the confirmation"
        );
    }
    let out = env
        .update_status(&confirm_id, RequestedJobStatus::Ready)
        .status_update_reason("looks right")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status, Some(JobStatus::Ready));
    let job = env
        .wait(&confirm_id, "Complete", |j| {
            status(j) == JobStatus::Complete
        })
        .await;
    assert_eq!(counts(&job), (3, 3, 0));
    assert_eq!(job.status_update_reason.as_deref(), Some("looks right"));
    for k in &small {
        assert!(
            env.invoked(k).await,
            "{k} was not invoked after the confirmation"
        );
    }
    let err = env
        .update_status(&confirm_id, RequestedJobStatus::Ready)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_job_status_exception()),
        "{err:?}"
    );
    (etag2, confirm_id, after_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_jobs_for_the_rust_sdk() {
    let (mut env, server) = start().await;

    // --- A job runs to Complete; its report lists every row once.
    let mut keys: Vec<String> = (0..24).map(|i| format!("plain/{i:02} x.txt")).collect();
    keys.extend((0..3).map(|i| format!("perm/{i}")));
    keys.extend((0..3).map(|i| format!("temp-once/{i}")));
    let etag = env.manifest("m1.csv", &keys).await;
    assert!(etag.starts_with('"'), "{etag}");
    let id = created(
        env.create("m1.csv", &etag, "token-1")
            .description("first job"),
    )
    .await;
    // The same request again (an SDK retry, a rerun) is the same job.
    let again = env
        .create("m1.csv", &etag, "token-1")
        .description("first job")
        .send()
        .await;
    assert_eq!(again.unwrap().job_id.as_deref(), Some(id.as_str()));
    let err = env
        .create("m1.csv", &etag, "token-1")
        .description("another job")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_idempotency_exception()),
        "{err:?}"
    );

    let job = env
        .wait(&id, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (30, 27, 3));
    let p = job.progress_summary.as_ref().unwrap();
    assert!(p
        .timers
        .as_ref()
        .unwrap()
        .elapsed_time_in_active_seconds
        .is_some());
    assert_eq!(job.description.as_deref(), Some("first job"));
    assert_eq!(job.priority, 10);
    assert_eq!(job.confirmation_required, Some(false));
    assert!(job.creation_time.is_some() && job.termination_date.is_some());
    assert_eq!(
        job.job_arn.as_deref(),
        Some(format!("arn:aws:s3:us-east-1:{ACCOUNT}:job/{id}").as_str())
    );
    assert!(job
        .failure_reasons
        .as_deref()
        .unwrap_or_default()
        .is_empty());
    let lambda = job
        .operation
        .as_ref()
        .unwrap()
        .lambda_invoke
        .as_ref()
        .unwrap();
    assert_eq!(lambda.invocation_schema_version.as_deref(), Some("2.0"));
    assert_eq!(
        job.report.as_ref().unwrap().prefix.as_deref(),
        Some("batch")
    );
    let report = env.report(&id).await;
    assert_eq!(report, expected_report(&keys));

    // --- Priority.
    let out = env
        .control
        .update_job_priority()
        .account_id(ACCOUNT)
        .job_id(&id)
        .priority(99)
        .send()
        .await
        .unwrap();
    assert_eq!(out.priority, 99);
    assert_eq!(env.describe(&id).await.priority, 99);

    // --- ConfirmationRequired: Suspended until confirmed.
    let (etag2, confirm_id, after_id) = confirmation_required(&env).await;

    // --- An S3 Inventory manifest (manifest.json and a gzipped CSV data file).
    let keys: Vec<String> = (0..4).map(|i| format!("inventory/{i} é")).collect();
    let etag = env.inventory(&keys).await;
    let inv_id = created(env.create("inv/manifest.json", &etag, "token-inventory")).await;
    let job = env
        .wait(&inv_id, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (4, 4, 0));
    assert_eq!(env.report(&inv_id).await, expected_report(&keys));

    // --- A wrong manifest ETag fails the job, saying so.
    let bad = created(env.create("m2.csv", "0123456789abcdef0123456789abcdef", "token-3")).await;
    let job = env
        .wait(&bad, "Failed", |j| status(j) == JobStatus::Failed)
        .await;
    let reasons = job.failure_reasons.unwrap();
    assert_eq!(
        reasons[0].failure_code.as_deref(),
        Some("ManifestETagMismatch")
    );
    let why = reasons[0].failure_reason.as_deref().unwrap();
    assert!(
        why.contains("0123456789abcdef0123456789abcdef") && why.contains(etag2.trim_matches('"')),
        "{why}"
    );

    // --- A function the Invoke API does not know fails the job before any task.
    let mut request = env.create("m2.csv", &etag2, "token-no-function");
    request = request.operation(
        JobOperation::builder()
            .lambda_invoke(
                LambdaInvokeOperation::builder()
                    .function_arn(format!(
                        "arn:aws:lambda:us-east-1:{ACCOUNT}:function:no-such-function"
                    ))
                    .build(),
            )
            .build(),
    );
    let nofn = request.send().await.unwrap().job_id.unwrap();
    let job = env
        .wait(&nofn, "Failed", |j| status(j) == JobStatus::Failed)
        .await;
    assert_eq!(counts(&job), (3, 0, 0));
    let reasons = job.failure_reasons.unwrap();
    assert_eq!(reasons[0].failure_code.as_deref(), Some("JobFailed"));
    let why = reasons[0].failure_reason.as_deref().unwrap();
    assert!(why.contains("cannot be invoked"), "{why}");

    // --- ListJobs: by status, page by page.
    let list = |statuses: Vec<JobStatus>| {
        let c = env.control.clone();
        async move {
            let mut ids = Vec::new();
            let mut token = None;
            loop {
                let out = c
                    .list_jobs()
                    .account_id(ACCOUNT)
                    .set_job_statuses(Some(statuses.clone()))
                    .max_results(1)
                    .set_next_token(token)
                    .send()
                    .await
                    .unwrap();
                ids.extend(
                    out.jobs
                        .unwrap_or_default()
                        .into_iter()
                        .map(|j| j.job_id.unwrap()),
                );
                token = out.next_token;
                if token.is_none() {
                    return ids;
                }
            }
        }
    };
    assert_eq!(
        list(vec![JobStatus::Complete]).await,
        [
            inv_id.clone(),
            after_id.clone(),
            confirm_id.clone(),
            id.clone()
        ]
    );
    assert_eq!(
        list(vec![JobStatus::Failed]).await,
        [nofn.clone(), bad.clone()]
    );
    assert_eq!(
        list(vec![]).await,
        [
            nofn.clone(),
            bad.clone(),
            inv_id.clone(),
            after_id.clone(),
            confirm_id.clone(),
            id.clone()
        ]
    );

    // --- An unknown job.
    let err = env
        .control
        .describe_job()
        .account_id(ACCOUNT)
        .job_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_not_found_exception()),
        "{err:?}"
    );

    // --- Cancel a running job: tasks in flight hang; the report holds what ran.
    let mut keys: Vec<String> = (0..4).map(|i| format!("before-cancel/{i}")).collect();
    keys.extend((0..3).map(|i| format!("hang/{i}")));
    keys.extend((0..3).map(|i| format!("later/{i}")));
    let etag = env.manifest("m3.csv", &keys).await;
    let cancel_id = created(env.create("m3.csv", &etag, "token-4")).await;
    // Concurrency 4: the four plain keys finish, then the three hanging ones hold their
    // slots (the fourth slot runs the `later` keys).
    let job = env
        .wait(&cancel_id, "Active with 4 or more tasks done", |j| {
            status(j) == JobStatus::Active && counts(j).1 >= 4
        })
        .await;
    assert_eq!(counts(&job).0, 10);
    let out = env
        .update_status(&cancel_id, RequestedJobStatus::Cancelled)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status, Some(JobStatus::Cancelling));
    let job = env
        .wait(&cancel_id, "Cancelled", |j| {
            status(j) == JobStatus::Cancelled
        })
        .await;
    let (total, succeeded, failed) = counts(&job);
    assert_eq!((total, failed), (10, 0));
    let report = env.report(&cancel_id).await;
    assert_eq!(report.len() as i64, succeeded);
    assert!(
        report
            .iter()
            .all(|(k, s)| !k.starts_with("hang") && s == "succeeded"),
        "{report:?}"
    );
    for i in 0..4 {
        let k = format!("before-cancel/{i}");
        assert!(
            report.iter().any(|(r, _)| *r == k),
            "{k} missing from {report:?}"
        );
    }
    let err = env
        .update_status(&cancel_id, RequestedJobStatus::Cancelled)
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_job_status_exception()));

    // --- boto3, with the before-sign hook that drops the account label from the host.
    let keys: Vec<String> = (0..5).map(|i| format!("boto3/{i}")).collect();
    let etag = env.manifest("m5.csv", &keys).await;
    let out = std::process::Command::new(s3batch_testkit::tool("python"))
        .arg("-c")
        .arg(BOTO3)
        .args([
            &server.endpoint(),
            ACCOUNT,
            &format!(
                "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}:live",
                env.function()
            ),
            &format!("arn:aws:s3:::{DATA}/m5.csv"),
            &etag,
        ])
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("running the venv's python");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let boto_id = got["id"].as_str().unwrap().to_owned();
    assert_eq!(got["status"], "Complete", "{got}");
    assert_eq!(
        got["progress"],
        serde_json::json!({"TotalNumberOfTasks": 5, "NumberOfTasksSucceeded": 5, "NumberOfTasksFailed": 0})
    );
    assert_eq!(got["not_found"], "NotFoundException");
    assert_eq!(got["tags"], serde_json::json!([{"Key": "a", "Value": "b"}]));
    assert!(
        got["listed"]
            .as_array()
            .unwrap()
            .contains(&boto_id.clone().into()),
        "{got}"
    );
    let report = env.report(&boto_id).await;
    assert_eq!(report, expected_report(&keys));

    // --- The AWS CLI (v1, from the venv), through the proxy recipe: a dummy endpoint host
    // and HTTP_PROXY pointing at the server, so the account label lands in a Host header the
    // server ignores instead of a name that has to resolve.
    let keys: Vec<String> = (0..4).map(|i| format!("awscli/{i}")).collect();
    let etag = env.manifest("m6.csv", &keys).await;
    let aws = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(s3batch_testkit::tool("aws"))
            .args(["s3control", "--region", "us-east-1", "--output", "json"])
            .args(["--endpoint-url", "http://s3control.emulator.invalid"])
            .args(args)
            .env("HTTP_PROXY", server.endpoint())
            .env_remove("http_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("running the venv's aws");
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let operation = serde_json::json!({"LambdaInvoke": {"FunctionArn": format!(
        "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}", env.function())}});
    let manifest = serde_json::json!({
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{DATA}/m6.csv"), "ETag": etag}});
    let report = serde_json::json!({"Bucket": format!("arn:aws:s3:::{REPORTS}"),
        "Format": "Report_CSV_20180820", "Enabled": true, "Prefix": "batch",
        "ReportScope": "AllTasks"});
    let cli_created = aws(&[
        "create-job",
        "--account-id",
        ACCOUNT,
        "--no-confirmation-required",
        "--priority",
        "5",
        "--role-arn",
        &format!("arn:aws:iam::{ACCOUNT}:role/batch"),
        "--operation",
        &operation.to_string(),
        "--manifest",
        &manifest.to_string(),
        "--report",
        &report.to_string(),
    ]);
    let cli_id = cli_created["JobId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(180);
    let job = loop {
        let job = aws(&["describe-job", "--account-id", ACCOUNT, "--job-id", &cli_id]);
        let status = job["Job"]["Status"].as_str().unwrap().to_owned();
        if ["Complete", "Failed", "Cancelled"].contains(&status.as_str()) {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the AWS CLI's job did not end: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["Job"]["Status"], "Complete", "{job}");
    let progress = &job["Job"]["ProgressSummary"];
    assert_eq!(progress["TotalNumberOfTasks"], 4, "{job}");
    assert_eq!(progress["NumberOfTasksSucceeded"], 4, "{job}");
    assert_eq!(progress["NumberOfTasksFailed"], 0, "{job}");
    let listed = aws(&[
        "list-jobs",
        "--account-id",
        ACCOUNT,
        "--job-statuses",
        "Complete",
    ]);
    assert!(
        listed["Jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["JobId"] == cli_id.as_str()),
        "{listed}"
    );
    assert_eq!(env.report(&cli_id).await, expected_report(&keys));

    // --- Any Host, an absolute-form target, the error wrapped as the Rust SDK needs it.
    let raw = raw_http(
        server.addr(),
        &format!(
            "GET http://{ACCOUNT}.s3control.emulator.invalid/v20180820/jobs/{id} HTTP/1.1\r\n\
             Host: {ACCOUNT}.s3control.emulator.invalid\r\nx-amz-account-id: {ACCOUNT}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("<DescribeJobResult xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"><Job><JobId>"), "{raw}");
    let raw = raw_http(
        server.addr(),
        &format!(
            "GET /v20180820/jobs/nope HTTP/1.1\r\nHost: x\r\nx-amz-account-id: {ACCOUNT}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("x-amz-request-id: "),
        "{raw}"
    );
    assert!(raw.contains("<ErrorResponse xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"><Error><Code>NotFoundException</Code>"), "{raw}");

    // --- Priorities, on a server running one job at a time: a job holding the slot (its
    // task hangs), then two waiting Ready; the higher priority starts when the slot frees.
    let one = ControlServer::start(
        "127.0.0.1:0".parse().unwrap(),
        config(&env, "c").max_active_jobs(1),
    )
    .await
    .unwrap();
    env.connect(&one.endpoint());
    let etag = env.manifest("m6.csv", &["hang/p".to_owned()]).await;
    let etag_ok = env.manifest("m7.csv", &["prio/ok".to_owned()]).await;
    let holder = created(env.create("m6.csv", &etag, "token-p0")).await;
    env.wait(&holder, "Active", |j| status(j) == JobStatus::Active)
        .await;
    let low = created(env.create("m6.csv", &etag, "token-p1").priority(1)).await;
    let high = created(env.create("m7.csv", &etag_ok, "token-p2").priority(5)).await;
    for j in [&low, &high] {
        env.wait(j, "Ready", |d| status(d) == JobStatus::Ready)
            .await;
    }
    // Raise the first one above the second: it runs next, and holds the slot (it hangs).
    env.control
        .update_job_priority()
        .account_id(ACCOUNT)
        .job_id(&low)
        .priority(10)
        .send()
        .await
        .unwrap();
    let cancel = |id: &str| env.update_status(id, RequestedJobStatus::Cancelled).send();
    cancel(&holder).await.unwrap();
    env.wait(&low, "Active", |j| status(j) == JobStatus::Active)
        .await;
    assert_eq!(status(&env.describe(&holder).await), JobStatus::Cancelled);
    assert_eq!(status(&env.describe(&high).await), JobStatus::Ready);
    cancel(&low).await.unwrap();
    let job = env
        .wait(&high, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (1, 1, 0));

    // --- The failure threshold (here more than 50 % of at least 4 finished tasks, on a
    // second server) fails the job; its report lists the tasks that ran.
    let strict = ControlServer::start(
        "127.0.0.1:0".parse().unwrap(),
        config(&env, "b").failure_threshold(FailureThreshold::new(4, 50.0)),
    )
    .await
    .unwrap();
    env.connect(&strict.endpoint());
    let keys: Vec<String> = (0..20).map(|i| format!("perm-threshold/{i:02}")).collect();
    let etag = env.manifest("m4.csv", &keys).await;
    let failing = created(env.create("m4.csv", &etag, "token-5")).await;
    let job = env
        .wait(&failing, "Failed", |j| status(j) == JobStatus::Failed)
        .await;
    let (total, succeeded, failed) = counts(&job);
    assert_eq!((total, succeeded), (20, 0));
    assert!((4..20).contains(&failed), "{job:?}");
    let reasons = job.failure_reasons.unwrap();
    assert_eq!(
        reasons[0].failure_code.as_deref(),
        Some("TaskFailureThresholdExceeded")
    );
    let report = env.report(&failing).await;
    assert_eq!(report.len() as i64, failed);
    assert!(report.iter().all(|(_, s)| s == "failed"));
    drop(one);
    for name in ["a", "b", "c"] {
        let dir = state_dir(name);
        // Besides the job records (`jobs/`) and the server's lock, nothing: no journal.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "jobs" && n != "serve.lock")
            .collect();
        assert!(
            left.is_empty(),
            "journals left in {}: {left:?}",
            dir.display()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Creates a job with boto3 (botocore adds the ClientRequestToken), follows it to its end,
/// and prints what it saw as JSON. Arguments: endpoint, account, function ARN, manifest ARN,
/// manifest ETag.
const BOTO3: &str = r#"
import json, re, sys, time
import boto3
endpoint, account, function_arn, manifest_arn, etag = sys.argv[1:6]
c = boto3.client("s3control", region_name="us-east-1", endpoint_url=endpoint,
                 aws_access_key_id="testing", aws_secret_access_key="testing")
c.meta.events.register("before-sign.s3-control", lambda request, **kw: setattr(
    request, "url", re.sub(r"^(https?://)\d{12}\.", r"\1", request.url)))
job_id = c.create_job(
    AccountId=account, ConfirmationRequired=False, Priority=5,
    Operation={"LambdaInvoke": {"FunctionArn": function_arn}},
    Report={"Bucket": "arn:aws:s3:::reports", "Format": "Report_CSV_20180820", "Enabled": True,
            "Prefix": "batch", "ReportScope": "AllTasks"},
    Manifest={"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
              "Location": {"ObjectArn": manifest_arn, "ETag": etag}},
    RoleArn="arn:aws:iam::%s:role/batch" % account, Tags=[{"Key": "a", "Value": "b"}],
)["JobId"]
deadline = time.time() + 120
while True:
    job = c.describe_job(AccountId=account, JobId=job_id)["Job"]
    if job["Status"] in ("Complete", "Failed", "Cancelled"):
        break
    assert time.time() < deadline, job
    time.sleep(0.1)
not_found = None
try:
    c.describe_job(AccountId=account, JobId="00000000-0000-4000-8000-000000000000")
except c.exceptions.NotFoundException:
    not_found = "NotFoundException"
listed = [j["JobId"] for j in c.list_jobs(AccountId=account, JobStatuses=["Complete"])["Jobs"]]
tags = c.get_job_tagging(AccountId=account, JobId=job_id)["Tags"]
progress = {k: v for k, v in job["ProgressSummary"].items() if k != "Timers"}
print(json.dumps({"id": job_id, "status": job["Status"], "progress": progress,
                  "listed": listed, "not_found": not_found, "tags": tags}))
"#;

/// Sends one raw HTTP/1.1 request and returns the whole response.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// Kills the child when dropped.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_cli_says_where_it_listens_and_answers_there() {
    use std::io::BufRead;
    let port = s3batch_testkit::free_port();
    let state = std::env::temp_dir().join(format!("s3batch-serve-cli-{}", std::process::id()));
    let mut child = Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
            .args([
                "s3batch",
                "serve",
                "--port",
                &port.to_string(),
                "--state-dir",
            ])
            .arg(&state)
            .args(["--s3-endpoint-url", "http://127.0.0.1:1"])
            .args(["--lambda-endpoint-url", "http://127.0.0.1:1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    assert!(line.contains(&format!("listening on {url} ")), "{line}");
    let raw = raw_http(
        ([127, 0, 0, 1], port).into(),
        &format!(
            "GET /v20180820/jobs?jobStatuses=Active HTTP/1.1\r\nHost: {ACCOUNT}.127.0.0.1:{port}\r\n\
             x-amz-account-id: {ACCOUNT}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("<ListJobsResult xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"><Jobs></Jobs></ListJobsResult>"), "{raw}");
    drop(child);
    let _ = std::fs::remove_dir_all(&state);
}
