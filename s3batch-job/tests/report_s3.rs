//! A report written from a journal to S3 (moto): checked before the job, written, and
//! replaced whole by a rerun of the same job id.

use s3batch::{Handler, Object, Options, TaskError};
use s3batch_job::journal::{check_destination, write_report, Journal, JournalError};
use s3batch_job::{
    parse_report_csv, InProcess, LocalJob, Location, Manifest, ManifestSource, ReportScope,
};
use s3batch_testkit::{object_bytes, Moto};

async fn task(obj: Object) -> Result<String, TaskError> {
    if obj.key.starts_with("fail") {
        return Err(TaskError::permanent(format!("{} failed", obj.key)));
    }
    Ok(format!("did {}", obj.key))
}

async fn run(state: &std::path::Path, csv: &str) {
    let source = ManifestSource::from(Manifest::from_csv(csv.as_bytes()).unwrap());
    let _ = std::fs::remove_dir_all(state);
    let mut journal = Journal::create(state, "s3job", "m.csv", &source).unwrap();
    let handler = Handler::new(task, Options::new()).await.unwrap();
    let outcome = LocalJob::new(source)
        .job_id("s3job")
        .run_journaled(
            InProcess::new(handler),
            &mut journal,
            std::future::pending(),
        )
        .await
        .unwrap();
    journal.finish(&outcome.status).unwrap();
}

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket("reports")
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_report_is_checked_first_and_replaced_whole_by_a_rerun() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    let missing = Location::S3 {
        bucket: "no-such-bucket".into(),
        key: "x/".into(),
    };
    let err = check_destination(&missing, "s3job", &s3).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::DestinationS3 { bucket, prefix, .. } if bucket == "no-such-bucket" && prefix == "x/"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the report cannot be written to s3://no-such-bucket/x/"),
        "{err}"
    );

    s3.create_bucket().bucket("reports").send().await.unwrap();
    let location = Location::S3 {
        bucket: "reports".into(),
        key: "batch".into(),
    };
    check_destination(&location, "s3job", &s3).await.unwrap();
    assert!(keys(&s3, "").await.is_empty(), "the probe is deleted");

    let state = std::env::temp_dir().join(format!("s3batch-report-s3-{}", std::process::id()));
    run(&state, "bucket-one,ok1\nbucket-one,fail1\n").await;
    write_report(&state, &location, ReportScope::AllTasks, &s3)
        .await
        .unwrap();
    assert_eq!(keys(&s3, "batch/job-s3job/results/").await.len(), 2);

    // The rerun has no failed task: the first run's failed results file must go.
    run(&state, "bucket-one,ok1\nbucket-one,ok2\n").await;
    let written = write_report(&state, &location, ReportScope::AllTasks, &s3)
        .await
        .unwrap();
    assert_eq!(
        written,
        Location::S3 {
            bucket: "reports".into(),
            key: "batch/job-s3job/manifest.json".into()
        }
    );
    let manifest = object_bytes(&s3, "reports", "batch/job-s3job/manifest.json").await;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let results = manifest["Results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let key = results[0]["Key"].as_str().unwrap();
    assert_eq!(results[0]["Bucket"], "reports");
    assert_eq!(keys(&s3, "batch/job-s3job/results/").await, [key]);
    let csv = object_bytes(&s3, "reports", key).await;
    let mut rows: Vec<(String, String)> = parse_report_csv(&csv)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.message))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("ok1".to_owned(), "did ok1".to_owned()),
            ("ok2".to_owned(), "did ok2".to_owned())
        ]
    );
    std::fs::remove_dir_all(&state).unwrap();
}
