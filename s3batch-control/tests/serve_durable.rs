//! `cargo s3batch serve` across a restart: the jobs of a server stopped while it worked are
//! taken up by the next server on the same state folder. moto holds the objects, manifests
//! and reports, `examples/chaos` is served by `cargo lambda watch` (its `sleep-<N>ms` keys
//! take their time and record each call they get as an object `.chaos/calls/<key>/…`, which
//! is how the test sees, at the function's side, which tasks were invoked and how often), the
//! S3 Control endpoint runs in this process, and the real `aws-sdk-s3control` client drives
//! it.

use aws_sdk_s3control::operation::create_job::builders::CreateJobFluentBuilder;
use aws_sdk_s3control::types::{JobStatus, RequestedJobStatus};
use s3batch_control::{ControlServer, ServeConfig};
use s3batch_job::Redrive;
use s3batch_testkit::control::{
    counts, created, expected_report, status, ChaosJobs, ACCOUNT, DATA,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The state folder, removed when dropped.
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixtures, and the state folder of the servers.
struct Env {
    kit: ChaosJobs,
    state: StateDir,
}

impl std::ops::Deref for Env {
    type Target = ChaosJobs;

    fn deref(&self) -> &ChaosJobs {
        &self.kit
    }
}

impl Env {
    /// A server on the state folder: 2 invocations at once per job, a grace period of
    /// `grace`, short redrives.
    async fn server(&mut self, grace: Duration) -> ControlServer {
        let config = ServeConfig::new(&self.state.0)
            .s3_endpoint(self.moto.endpoint())
            .lambda_endpoint(self.lambda_endpoint())
            .concurrency(2)
            .grace_period(grace)
            .redrive(Redrive::new(3, Duration::from_millis(200)));
        let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        self.kit.connect(&server.endpoint());
        server
    }

    /// A CreateJob request for the CSV manifest `manifest` (see [`ChaosJobs::create`]),
    /// described as the job of that manifest.
    fn create(&self, manifest: &str, etag: &str, token: &str) -> CreateJobFluentBuilder {
        self.kit
            .create(manifest, etag, token)
            .description(format!("job of {manifest}"))
    }

    async fn create_job(&self, manifest: &str, etag: &str, token: &str) -> String {
        created(self.create(manifest, etag, token)).await
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
    let kit = ChaosJobs::start().await;
    let state = StateDir(
        std::env::temp_dir().join(format!("s3batch-serve-durable-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&state.0);
    let mut env = Env { kit, state };
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
    env.update_status(&cancelled, RequestedJobStatus::Cancelled)
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
    let suspended = created(
        env.create("suspended.csv", &suspended_etag, "token-suspended")
            .confirmation_required(true),
    )
    .await;
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
    assert_eq!(env.report(&active).await, expected_report(&active_keys));
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
    env.update_status(&suspended, RequestedJobStatus::Ready)
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
