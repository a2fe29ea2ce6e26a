//! Fixtures for the tests of the S3 Control endpoint (`cargo s3batch serve`) and of the CLI
//! that drives it: moto with a data and a reports bucket, `examples/chaos` served by
//! `cargo lambda watch`, and an `aws-sdk-s3control` client, with helpers that upload
//! manifests, create and follow jobs and read their reports.
//!
//! The client reaches the endpoint through a static endpoint resolver: S3 Control clients put
//! the account id in front of any endpoint host (`123456789012.127.0.0.1`), which does not
//! resolve.

use crate::{LambdaWatch, Moto};
use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_s3control::operation::create_job::builders::CreateJobFluentBuilder;
use aws_sdk_s3control::operation::update_job_status::builders::UpdateJobStatusFluentBuilder;
use aws_sdk_s3control::types::{
    JobDescriptor, JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation,
    JobManifestSpec, JobOperation, JobReport, JobReportFormat, JobReportScope, JobStatus,
    LambdaInvokeOperation, RequestedJobStatus,
};
use std::time::{Duration, Instant};

/// The account the jobs belong to.
pub const ACCOUNT: &str = "123456789012";
/// The bucket of the objects and the manifests.
pub const DATA: &str = "data";
/// The bucket of the reports.
pub const REPORTS: &str = "reports";

/// Sends every request to one URL, whatever the account id.
#[derive(Debug)]
struct Static(String);

impl ResolveEndpoint for Static {
    fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

/// An S3 Control client for the endpoint at `endpoint`: static test credentials, us-east-1.
pub fn control_client(endpoint: &str) -> aws_sdk_s3control::Client {
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

/// The job's status.
pub fn status(job: &JobDescriptor) -> JobStatus {
    job.status.clone().unwrap()
}

/// The job's task counts: (total, succeeded, failed).
pub fn counts(job: &JobDescriptor) -> (i64, i64, i64) {
    let p = job.progress_summary.as_ref().unwrap();
    (
        p.total_number_of_tasks.unwrap(),
        p.number_of_tasks_succeeded.unwrap(),
        p.number_of_tasks_failed.unwrap(),
    )
}

/// Sends a CreateJob request; the new job's id.
pub async fn created(request: CreateJobFluentBuilder) -> String {
    request.send().await.unwrap().job_id.unwrap()
}

/// The report chaos gives for a job of `keys` (see [`ChaosJobs::report`]): a `perm` key
/// `failed`, any other `succeeded`; sorted.
pub fn expected_report(keys: &[String]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            let s = if k.starts_with("perm") {
                "failed"
            } else {
                "succeeded"
            };
            (k.clone(), s.to_owned())
        })
        .collect();
    rows.sort();
    rows
}

/// moto with the [`DATA`] and [`REPORTS`] buckets, `examples/chaos` served by
/// `cargo lambda watch` (12 instances), and an S3 Control client.
pub struct ChaosJobs {
    /// The S3 server.
    pub moto: Moto,
    /// The function's server.
    pub watch: LambdaWatch,
    /// A client of `moto`.
    pub s3: aws_sdk_s3::Client,
    /// A client of the S3 Control endpoint; until [`ChaosJobs::connect`], of a port nothing
    /// answers on.
    pub control: aws_sdk_s3control::Client,
}

impl ChaosJobs {
    /// Starts moto, creates the buckets and starts `cargo lambda watch` for chaos.
    pub async fn start() -> ChaosJobs {
        let moto = Moto::start();
        let s3 = moto.client_with_buckets(&[DATA, REPORTS]).await;
        let watch = LambdaWatch::start_with("chaos", &moto.env(), None, 12);
        ChaosJobs {
            moto,
            watch,
            s3,
            control: control_client("http://127.0.0.1:1"),
        }
    }

    /// Points [`ChaosJobs::control`] at the endpoint at `endpoint`.
    pub fn connect(&mut self, endpoint: &str) {
        self.control = control_client(endpoint);
    }

    /// The URL of the Lambda Invoke API serving chaos.
    pub fn lambda_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.watch.port())
    }

    /// The function's name.
    pub fn function(&self) -> &str {
        self.watch.function()
    }

    /// The function's ARN.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}",
            self.function()
        )
    }

    /// Puts `body` at `key` in the data bucket; returns its ETag (quoted, as PutObject gives
    /// it).
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> String {
        self.s3
            .put_object()
            .bucket(DATA)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_owned()
    }

    /// Uploads `keys` to the data bucket (chaos looks plain keys up with HeadObject); returns
    /// the rows of a CSV manifest of them.
    pub async fn put_objects(&self, keys: &[String]) -> String {
        for k in keys {
            self.put(k, k.as_bytes()).await;
        }
        keys.iter()
            .map(|k| format!("{DATA},{}\n", k.replace(' ', "%20")))
            .collect()
    }

    /// Uploads `keys` and a CSV manifest of them at `name`; returns the manifest's ETag.
    pub async fn manifest(&self, name: &str, keys: &[String]) -> String {
        let csv = self.put_objects(keys).await;
        self.put(name, csv).await
    }

    /// Uploads `keys` and an S3 Inventory manifest of them (`inv/manifest.json`, its data
    /// file a gzipped CSV); returns the ETag of `manifest.json`.
    pub async fn inventory(&self, keys: &[String]) -> String {
        self.put_objects(keys).await;
        let rows: String = keys
            .iter()
            .map(|k| {
                format!(
                    "\"{DATA}\",\"{}\"\n",
                    k.replace(' ', "%20").replace('é', "%C3%A9")
                )
            })
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, rows.as_bytes()).unwrap();
        self.put("inv/data/0.csv.gz", gz.finish().unwrap()).await;
        let inventory = format!(
            r#"{{"sourceBucket":"{DATA}","destinationBucket":"arn:aws:s3:::{DATA}","version":"2016-11-30",
            "fileFormat":"CSV","fileSchema":"Bucket, Key","files":[{{"key":"inv/data/0.csv.gz","size":1}}]}}"#
        );
        self.put("inv/manifest.json", inventory).await
    }

    /// HeadObject of `key` in the data bucket: S3 says 404 `NotFound` (not just any error).
    pub async fn head_not_found(&self, key: &str) -> bool {
        match self.s3.head_object().bucket(DATA).key(key).send().await {
            Ok(_) => false,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => true,
            Err(e) => panic!("HeadObject {key}: {e:?}"),
        }
    }

    /// Whether chaos was invoked for the `temp-once` key `key` of the data bucket: its
    /// marker `.chaos/<key>` is there.
    pub async fn invoked(&self, key: &str) -> bool {
        !self.head_not_found(&format!(".chaos/{key}")).await
    }

    /// A CreateJob request invoking chaos (schema 2.0, a user argument `k=v`) for the
    /// manifest `manifest` in the data bucket, an S3 Inventory `manifest.json` when its name
    /// ends with `.json`, else a CSV manifest; with an AllTasks report under
    /// `s3://reports/batch`, priority 10.
    pub fn create(&self, manifest: &str, etag: &str, token: &str) -> CreateJobFluentBuilder {
        let spec = if manifest.ends_with(".json") {
            JobManifestSpec::builder().format(JobManifestFormat::S3InventoryReportCsv20161130)
        } else {
            JobManifestSpec::builder()
                .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                .fields(JobManifestFieldName::Bucket)
                .fields(JobManifestFieldName::Key)
        };
        self.control
            .create_job()
            .account_id(ACCOUNT)
            .confirmation_required(false)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(
                        LambdaInvokeOperation::builder()
                            .function_arn(self.function_arn())
                            .invocation_schema_version("2.0")
                            .user_arguments("k", "v")
                            .build(),
                    )
                    .build(),
            )
            .manifest(
                JobManifest::builder()
                    .spec(spec.build().unwrap())
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

    /// An UpdateJobStatus request for the job `id`, asking for `status`.
    pub fn update_status(
        &self,
        id: &str,
        status: RequestedJobStatus,
    ) -> UpdateJobStatusFluentBuilder {
        self.control
            .update_job_status()
            .account_id(ACCOUNT)
            .job_id(id)
            .requested_job_status(status)
    }

    /// DescribeJob.
    pub async fn describe(&self, id: &str) -> JobDescriptor {
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

    /// Describes the job until `done` holds (two minutes at most: a bound for a stuck job);
    /// a job that ends without `done` holding is a failure at once.
    pub async fn wait(
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

    /// The rows of the job's report under `s3://reports/batch`: (key, status), sorted. Each
    /// result file the report's manifest lists is in the reports bucket and holds rows of
    /// the status it is listed with.
    pub async fn report(&self, id: &str) -> Vec<(String, String)> {
        let get = |key: String| async move { crate::object_bytes(&self.s3, REPORTS, &key).await };
        let manifest: serde_json::Value =
            serde_json::from_slice(&get(format!("batch/job-{id}/manifest.json")).await).unwrap();
        let mut rows = Vec::new();
        for r in manifest["Results"].as_array().unwrap() {
            assert_eq!(r["Bucket"], REPORTS);
            let csv = get(r["Key"].as_str().unwrap().to_owned()).await;
            for row in s3batch_job::parse_report_csv(&csv).unwrap() {
                let status = row.task_status.as_str();
                assert_eq!(status, r["TaskExecutionStatus"].as_str().unwrap());
                rows.push((row.key, status.to_owned()));
            }
        }
        rows.sort();
        rows
    }
}
