//! `cargo s3batch serve` across a restart: the jobs of a server stopped while it worked are
//! taken up by the next server on the same state folder. moto holds the objects, manifests
//! and reports, `examples/chaos` is served by `cargo lambda watch` (its `sleep-<N>ms` keys
//! take their time and record each call they get as an object `.chaos/calls/<key>/…`, which
//! is how the test sees, at the function's side, which tasks were invoked and how often), the
//! S3 Control endpoint runs in this process, and the real `aws-sdk-s3control` client drives
//! it.

use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_s3control::operation::create_job::builders::CreateJobFluentBuilder;
use aws_sdk_s3control::types::{
    JobDescriptor, JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation,
    JobManifestSpec, JobOperation, JobReport, JobReportFormat, JobReportScope, JobStatus,
    LambdaInvokeOperation, RequestedJobStatus,
};
use s3batch_control::{ControlServer, ServeConfig};
use s3batch_job::{parse_report_csv, Redrive};
use s3batch_testkit::{LambdaWatch, Moto};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const DATA: &str = "data";
const REPORTS: &str = "reports";

/// Sends every request to one URL, whatever the account id (S3 Control clients put it in
/// front of the host).
#[derive(Debug)]
struct Static(String);

impl ResolveEndpoint for Static {
    fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

fn control_client(endpoint: &str) -> aws_sdk_s3control::Client {
    let config = aws_sdk_s3control::Config::builder()
        .behavior_version(aws_sdk_s3control::config::BehaviorVersion::latest())
        .region(aws_sdk_s3control::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3control::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_resolver(Static(endpoint.to_owned()))
        .build();
    aws_sdk_s3control::Client::from_conf(config)
}

/// The state folder, removed when dropped.
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    moto: Moto,
    watch: LambdaWatch,
    s3: aws_sdk_s3::Client,
    control: aws_sdk_s3control::Client,
    state: StateDir,
}

impl Env {
    /// A server on the state folder: 2 invocations at once per job, a grace period of
    /// `grace`, short redrives.
    async fn server(&mut self, grace: Duration) -> ControlServer {
        let config = ServeConfig::new(&self.state.0)
            .s3_endpoint(self.moto.endpoint())
            .lambda_endpoint(format!("http://127.0.0.1:{}", self.watch.port()))
            .concurrency(2)
            .grace_period(grace)
            .redrive(Redrive::new(3, Duration::from_millis(200)));
        let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        self.control = control_client(&server.endpoint());
        server
    }

    /// Uploads `keys` (chaos looks each up with HeadObject) and a manifest of them; returns
    /// the manifest's ETag.
    async fn manifest(&self, name: &str, keys: &[String]) -> String {
        for k in keys {
            self.s3
                .put_object()
                .bucket(DATA)
                .key(k)
                .body(k.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap();
        }
        let csv: String = keys.iter().map(|k| format!("{DATA},{k}\n")).collect();
        self.s3
            .put_object()
            .bucket(DATA)
            .key(name)
            .body(csv.into_bytes().into())
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_owned()
    }

    /// A CreateJob request for the CSV manifest `manifest`, with an AllTasks report.
    fn create(&self, manifest: &str, etag: &str, token: &str) -> CreateJobFluentBuilder {
        self.control
            .create_job()
            .account_id(ACCOUNT)
            .confirmation_required(false)
            .description(format!("job of {manifest}"))
            .operation(
                JobOperation::builder()
                    .lambda_invoke(
                        LambdaInvokeOperation::builder()
                            .function_arn(format!(
                                "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}",
                                self.watch.function()
                            ))
                            .invocation_schema_version("2.0")
                            .user_arguments("k", "v")
                            .build(),
                    )
                    .build(),
            )
            .manifest(
                JobManifest::builder()
                    .spec(
                        JobManifestSpec::builder()
                            .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                            .fields(JobManifestFieldName::Bucket)
                            .fields(JobManifestFieldName::Key)
                            .build()
                            .unwrap(),
                    )
                    .location(
                        JobManifestLocation::builder()
                            .object_arn(format!("arn:aws:s3:::{DATA}/{manifest}"))
                            .e_tag(etag)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .report(
                JobReport::builder()
                    .enabled(true)
                    .bucket(format!("arn:aws:s3:::{REPORTS}"))
                    .format(JobReportFormat::ReportCsv20180820)
                    .prefix("batch")
                    .report_scope(JobReportScope::AllTasks)
                    .build(),
            )
            .priority(10)
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/batch"))
            .client_request_token(token)
    }

    async fn create_job(&self, manifest: &str, etag: &str, token: &str) -> String {
        self.create(manifest, etag, token)
            .send()
            .await
            .unwrap()
            .job_id
            .unwrap()
    }

    async fn describe(&self, id: &str) -> JobDescriptor {
        self.control
            .describe_job()
            .account_id(ACCOUNT)
            .job_id(id)
            .send()
            .await
            .unwrap()
            .job
            .unwrap()
    }

    /// Describes the job until `done` holds (two minutes at most: a bound for a stuck job).
    async fn wait(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&JobDescriptor) -> bool,
    ) -> JobDescriptor {
        let start = Instant::now();
        loop {
            let job = self.describe(id).await;
            if done(&job) {
                return job;
            }
            let ended = matches!(
                status(&job),
                JobStatus::Complete | JobStatus::Failed | JobStatus::Cancelled
            );
            assert!(!ended, "job {id} ended without becoming {what}: {job:?}");
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "job {id} did not become {what}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn list(&self) -> Vec<(String, JobStatus)> {
        self.control
            .list_jobs()
            .account_id(ACCOUNT)
            .send()
            .await
            .unwrap()
            .jobs()
            .iter()
            .map(|j| (j.job_id.clone().unwrap(), j.status.clone().unwrap()))
            .collect()
    }

    /// The rows of the job's report: (key, status), sorted.
    async fn report(&self, id: &str) -> Vec<(String, String)> {
        let get = |key: String| async move {
            self.s3
                .get_object()
                .bucket(REPORTS)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: {e:?}"))
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&get(format!("batch/job-{id}/manifest.json")).await).unwrap();
        let mut rows = Vec::new();
        for r in manifest["Results"].as_array().unwrap() {
            let csv = get(r["Key"].as_str().unwrap().to_owned()).await;
            for row in parse_report_csv(&csv).unwrap() {
                rows.push((row.key, row.task_status.as_str().to_owned()));
            }
        }
        rows.sort();
        rows
    }

    /// How many calls chaos recorded for each `sleep-<N>ms` key.
    async fn calls(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(DATA)
            .prefix(".chaos/calls/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for o in page.unwrap().contents() {
                let call = o.key().unwrap().strip_prefix(".chaos/calls/").unwrap();
                let (key, _) = call.rsplit_once('/').unwrap();
                *out.entry(key.to_owned()).or_default() += 1;
            }
        }
        out
    }
}

fn status(job: &JobDescriptor) -> JobStatus {
    job.status.clone().unwrap()
}

fn counts(job: &JobDescriptor) -> (i64, i64, i64) {
    let p = job.progress_summary.as_ref().unwrap();
    (
        p.total_number_of_tasks.unwrap(),
        p.number_of_tasks_succeeded.unwrap(),
        p.number_of_tasks_failed.unwrap(),
    )
}

/// The keys in the journal of job `id` (one line per finished task), in the order they
/// finished.
fn journaled(state: &Path, id: &str) -> Vec<String> {
    let path = state.join(format!("job-{id}/journal.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["k"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// What the job's record on disk says its status is.
fn recorded_status(state: &Path, id: &str) -> String {
    let path = state.join(format!("jobs/{id}.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["status"].as_str().unwrap().to_owned()
}

/// A server stopped in the middle of its work, and a new one on the same state folder:
/// - a job that had completed is listed and described as it was (status, counts, dates, the
///   priority set after it ended), and its token still returns it;
/// - a job `Active` with some of its tasks finished resumes and completes: its report lists
///   every manifest row once, and chaos saw exactly one call for each task the journal had
///   when the server stopped (those were not invoked again);
/// - a job `Cancelling` (waiting for its invocations in flight) ends `Cancelled` from its
///   journal, its report holding the one task that finished, and nothing invoked again;
/// - a `Suspended` job waits for its confirmation again, and runs once confirmed;
/// - a new job comes first in ListJobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_restart_and_the_active_one_resumes() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    for b in [DATA, REPORTS] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let watch = LambdaWatch::start_with("chaos", &moto.env(), None, 12);
    let state = StateDir(
        std::env::temp_dir().join(format!("s3batch-serve-durable-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&state.0);
    let mut env = Env {
        control: control_client("http://127.0.0.1:1"),
        moto,
        watch,
        s3,
        state,
    };
    // A long grace period: the cancelled job stays Cancelling while its calls sleep.
    let server = env.server(Duration::from_secs(300)).await;

    // A job that completes.
    let done_keys: Vec<String> = (0..3).map(|i| format!("done/{i}")).collect();
    let done_etag = env.manifest("done.csv", &done_keys).await;
    let done = env.create_job("done.csv", &done_etag, "token-done").await;
    env.wait(&done, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    env.control
        .update_job_priority()
        .account_id(ACCOUNT)
        .job_id(&done)
        .priority(77)
        .send()
        .await
        .unwrap();
    let done_before = env.describe(&done).await;
    assert_eq!(
        (counts(&done_before), done_before.priority),
        ((3, 3, 0), 77)
    );

    // A job cancelled while two calls of 60 s are in flight: Cancelling until they are back.
    let mut cancelled_keys = vec!["cancelled/quick".to_owned()];
    cancelled_keys.extend((1..5).map(|i| format!("cancelled/sleep-60000ms/{i}")));
    let cancelled_etag = env.manifest("cancelled.csv", &cancelled_keys).await;
    let cancelled = env
        .create_job("cancelled.csv", &cancelled_etag, "token-cancelled")
        .await;
    env.wait(&cancelled, "1 task done", |j| counts(j).1 == 1)
        .await;
    env.control
        .update_job_status()
        .account_id(ACCOUNT)
        .job_id(&cancelled)
        .requested_job_status(RequestedJobStatus::Cancelled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(&env.describe(&cancelled).await),
        JobStatus::Cancelling
    );

    // A job waiting for its confirmation.
    let suspended_etag = env
        .manifest("suspended.csv", &["suspended/0".to_owned()])
        .await;
    let suspended = env
        .create("suspended.csv", &suspended_etag, "token-suspended")
        .confirmation_required(true)
        .send()
        .await
        .unwrap()
        .job_id
        .unwrap();
    env.wait(&suspended, "Suspended", |j| {
        status(j) == JobStatus::Suspended
    })
    .await;

    // A job of 10 calls of 1.5 s, 2 at a time, stopped once some have finished.
    let active_keys: Vec<String> = (0..10)
        .map(|i| format!("active/sleep-1500ms/{i:02}"))
        .collect();
    let active_etag = env.manifest("active.csv", &active_keys).await;
    let active = env
        .create_job("active.csv", &active_etag, "token-active")
        .await;
    env.wait(&active, "2 tasks done", |j| counts(j).1 >= 2)
        .await;
    server.shutdown().await;

    // What the stopped server left: its records, and the journals of the two jobs that had
    // started tasks.
    let state = env.state.0.clone();
    assert_eq!(recorded_status(&state, &active), "Active");
    assert_eq!(recorded_status(&state, &cancelled), "Cancelling");
    assert_eq!(recorded_status(&state, &suspended), "Suspended");
    assert_eq!(recorded_status(&state, &done), "Complete");
    let before = journaled(&state, &active);
    assert!(
        (1..active_keys.len()).contains(&before.len()),
        "some but not all tasks finished before the restart: {before:?}"
    );
    assert_eq!(journaled(&state, &cancelled), ["cancelled/quick"]);

    let server = env.server(Duration::from_secs(1)).await;
    assert_eq!(
        env.list()
            .await
            .iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [&active, &suspended, &cancelled, &done],
        "newest first"
    );
    assert_eq!(env.describe(&done).await, done_before);
    let again = env.create_job("done.csv", &done_etag, "token-done").await;
    assert_eq!(again, done);

    // The Active job resumes and completes: every row once in its report, and no task that
    // had finished was invoked again.
    let job = env
        .wait(&active, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (10, 10, 0));
    let expected: Vec<(String, String)> = active_keys
        .iter()
        .map(|k| (k.clone(), "succeeded".to_owned()))
        .collect();
    assert_eq!(env.report(&active).await, expected);
    let calls = env.calls().await;
    eprintln!(
        "finished before the restart: {} of 10 ({before:?}); calls per key: {calls:?}",
        before.len()
    );
    for key in &before {
        assert_eq!(
            calls.get(key),
            Some(&1),
            "{key} finished before the restart; calls: {calls:?}"
        );
    }
    for key in &active_keys {
        // Invoked at least once; twice at most (in flight when the server stopped).
        assert!(
            (1..=2).contains(calls.get(key).unwrap_or(&0)),
            "{key}: {calls:?}"
        );
    }

    // The Cancelling job ends Cancelled from its journal; nothing is invoked again (its
    // fourth and fifth tasks were never started, its second once, its third at most once).
    let job = env
        .wait(&cancelled, "Cancelled", |j| {
            status(j) == JobStatus::Cancelled
        })
        .await;
    assert_eq!(counts(&job), (5, 1, 0));
    assert_eq!(
        env.report(&cancelled).await,
        [("cancelled/quick".to_owned(), "succeeded".to_owned())]
    );
    let calls = env.calls().await;
    let of = |i: usize| {
        calls
            .get(&format!("cancelled/sleep-60000ms/{i}"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!((of(1), of(4), of(3)), (1, 0, 0), "{calls:?}");
    assert!(of(2) <= 1, "{calls:?}");

    // The Suspended job waits for its confirmation again, then runs.
    env.wait(&suspended, "Suspended", |j| {
        status(j) == JobStatus::Suspended
    })
    .await;
    env.control
        .update_job_status()
        .account_id(ACCOUNT)
        .job_id(&suspended)
        .requested_job_status(RequestedJobStatus::Ready)
        .send()
        .await
        .unwrap();
    let job = env
        .wait(&suspended, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(counts(&job), (1, 1, 0));

    // A new job comes after the ones the server took up.
    let new_etag = env.manifest("new.csv", &["new/0".to_owned()]).await;
    let new = env.create_job("new.csv", &new_etag, "token-new").await;
    env.wait(&new, "Complete", |j| status(j) == JobStatus::Complete)
        .await;
    assert_eq!(
        env.list().await,
        [
            (new.clone(), JobStatus::Complete),
            (active.clone(), JobStatus::Complete),
            (suspended.clone(), JobStatus::Complete),
            (cancelled.clone(), JobStatus::Cancelled),
            (done.clone(), JobStatus::Complete),
        ]
    );
    server.shutdown().await;
    // Every journal went with its job's end; the records stay.
    let journals: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("job-"))
        .collect();
    assert!(journals.is_empty(), "{journals:?}");
    assert_eq!(std::fs::read_dir(state.join("jobs")).unwrap().count(), 5);
}
