//! Creating a real S3 Batch Operations `LambdaInvoke` job (`cargo s3batch submit`).
//!
//! A [`JobRequest`] is the normalized request: the account and the typed job
//! ([`JobSpec`], the model `serve` reads too), every value already resolved (the manifest's
//! `ETag`, the account, the function's ARN). From it come
//! - the `CreateJob` input ([`JobRequest::input`]) that the client sends, unchanged;
//! - the equivalent `aws s3control create-job` command ([`JobRequest::aws_cli`]);
//! - the `ClientRequestToken` ([`JobRequest::token`]): a digest of the request, so the same
//!   `submit` run twice creates one job (S3 answers the second `CreateJob` with the first
//!   job's id), while any change (another ETag after the manifest changed, another argument)
//!   makes a new job;
//! - the job role's trust and least-privilege policies ([`trust_policy`],
//!   [`JobRequest::role_policy`]).
//!
//! The `resolve_*` functions read what the request needs from AWS (HeadObject for the
//! manifest's ETag, STS for the account, Lambda `GetFunction` for the function), and
//! [`explain`] turns an SDK error into a message that names the fix. Every error is a
//! [`SubmitError`].

pub use crate::model::{
    local_function_arn, Generator, JobSpec, ManifestLocation, ManifestSpec, ReportSpec,
    LOCAL_ACCOUNT_ID,
};
use crate::model::{
    report_scope_name, ArnError, BucketArn, FunctionArn, ObjectArn, SpecError, REPORT_FORMAT,
};
use aws_sdk_s3control::operation::create_job::CreateJobInput;
use aws_sdk_s3control::types::{
    GeneratedManifestFormat, JobManifest, JobManifestFieldName, JobManifestFormat,
    JobManifestGenerator, JobManifestGeneratorFilter, JobManifestLocation, JobManifestSpec,
    JobOperation, JobReport, JobReportFormat, JobReportScope, KeyNameConstraint,
    LambdaInvokeOperation, S3JobManifestGenerator, S3ManifestOutputLocation, S3StorageClass, S3Tag,
};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use s3batch_job::digest::hex;
use s3batch_job::manifest::{is_inventory, ManifestSource, Staged};
use s3batch_job::storage::Location;
use s3batch_job::ReportScope;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Why `submit` (or one of its steps) could not go on; each message names the file, the
/// field or the value, and the fix where there is one.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A request S3 would refuse (its limits, [`JobSpec::validate`]).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An AWS call failed: what was being done, and what to do about it ([`explain`]).
    #[error("{0}")]
    Aws(String),
    /// An AWS answer without a member it should have.
    #[error("{operation} returned no {member} for {of}")]
    Missing {
        /// The operation, e.g. `GetFunction`.
        operation: &'static str,
        /// The member, e.g. `ARN`.
        member: &'static str,
        /// What was asked for.
        of: String,
    },
    /// A local file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A manifest that is not well formed (as `run` refuses it), or that could not be staged.
    #[error("{0}")]
    Manifest(String),
    /// A local manifest without `--manifest-upload`.
    #[error(
        "{} is a local file: S3 reads the manifest from S3, so name where to upload it with \
         --manifest-upload s3://BUCKET/KEY (or upload it yourself and pass --manifest \
         s3://BUCKET/KEY)",
        .0.display()
    )]
    LocalManifest(PathBuf),
    /// A local Inventory `manifest.json`.
    #[error(
        "{} is an S3 Inventory manifest.json: S3 reads it with its data files from the \
         inventory's bucket, so pass it as --manifest s3://BUCKET/KEY",
        .0.display()
    )]
    LocalInventory(PathBuf),
    /// `--manifest-upload` naming a bucket or folder, not an object.
    #[error("--manifest-upload s3://{bucket}/{key} names no object key")]
    UploadKey {
        /// Its bucket.
        bucket: String,
        /// Its key (empty, or ending with `/`).
        key: String,
    },
    /// `--manifest-upload` with a manifest in S3 already.
    #[error(
        "--manifest-upload {upload} is for a local manifest; {manifest} is in S3 already: \
         leave --manifest-upload out"
    )]
    UploadNotNeeded {
        /// `--manifest-upload`.
        upload: String,
        /// `--manifest`.
        manifest: String,
    },
    /// The report bucket does not exist.
    #[error(
        "the report bucket {0} does not exist (in this region): create it (aws s3 mb \
         s3://{0}), or name another with --report s3://BUCKET/PREFIX"
    )]
    NoReportBucket(String),
    /// A function in another region than the job.
    #[error(
        "function {function} is in region {region}, the job in {job_region}: a job invokes \
         functions of its own region; submit in {region} (--region {region}) or deploy the \
         function in {job_region}"
    )]
    OtherRegion {
        /// The function.
        function: String,
        /// Its region.
        region: String,
        /// The job's.
        job_region: String,
    },
    /// No such function in the job's region.
    #[error(
        "function {function} not found in region {region}: a job invokes functions of its \
         own region; deploy it there, or submit the job in the function's region (--region)"
    )]
    NoFunction {
        /// The function.
        function: String,
        /// The job's region.
        region: String,
    },
    /// A function name or ARN that is none (`--function`, or what `GetFunction` returned).
    #[error("the function: {0}")]
    Function(ArnError),
    /// A time for the generator's filters that is not RFC 3339.
    #[error("{value:?} is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z): {reason}")]
    Date {
        /// The text given.
        value: String,
        /// Why it is not a time.
        reason: String,
    },
}

/// Sends the `CreateJob` request of `request` (with `token`, default
/// [`JobRequest::token`]) and returns the job's id. A request S3 would refuse
/// ([`JobSpec::validate`]) is refused here, before anything is sent.
pub async fn create(
    client: &aws_sdk_s3control::Client,
    request: &JobRequest,
    token: Option<&str>,
) -> Result<String, SubmitError> {
    request.check()?;
    let input = request.input(token);
    let out = client
        .create_job()
        .set_account_id(input.account_id)
        .set_confirmation_required(input.confirmation_required)
        .set_operation(input.operation)
        .set_report(input.report)
        .set_client_request_token(input.client_request_token)
        .set_manifest(input.manifest)
        .set_description(input.description)
        .set_priority(input.priority)
        .set_role_arn(input.role_arn)
        .set_tags(input.tags)
        .set_manifest_generator(input.manifest_generator)
        .send()
        .await
        .map_err(|e| {
            SubmitError::Aws(explain(
                &e,
                "creating the job",
                "s3:CreateJob, and iam:PassRole on the job's role",
            ))
        })?;
    out.job_id.ok_or_else(|| SubmitError::Missing {
        operation: "CreateJob",
        member: "job id",
        of: "the job".into(),
    })
}

/// A `CreateJob` request for a `LambdaInvoke` job: the account and the job, every value
/// resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRequest {
    /// The account the job belongs to.
    pub account_id: String,
    /// The job (its `client_request_token`, when set, overrides [`token`](Self::token)).
    pub spec: JobSpec,
}

fn scope(scope: Option<ReportScope>) -> JobReportScope {
    match scope.unwrap_or_default() {
        ReportScope::AllTasks => JobReportScope::AllTasks,
        ReportScope::FailedTasksOnly => JobReportScope::FailedTasksOnly,
    }
}

impl JobRequest {
    /// Checks the request against S3's limits ([`JobSpec::validate`]; the user arguments
    /// are [`UserArguments`](crate::model::UserArguments), which cannot repeat a name).
    pub fn check(&self) -> Result<(), SpecError> {
        self.spec.validate()
    }

    /// The `ClientRequestToken`: `s3batch-` and the MD5 of the request's canonical JSON (40
    /// characters; S3 allows 64). The same request always gives the same token, so a
    /// retried `submit` returns the job it created the first time; any difference gives
    /// another one. A token set in the spec is used as it is.
    pub fn token(&self) -> String {
        if let Some(t) = &self.spec.client_request_token {
            return t.clone();
        }
        use md5::Digest;
        let canonical = serde_json::to_vec(self).expect("a request serializes");
        let digest = md5::Md5::digest(&canonical);
        format!("s3batch-{}", hex(&digest))
    }

    /// The `CreateJob` input that `submit` sends, with [`token`](Self::token) as its
    /// `ClientRequestToken` unless `token` overrides it.
    pub fn input(&self, token: Option<&str>) -> CreateJobInput {
        let job = &self.spec;
        let op = &job.operation;
        let mut lambda = LambdaInvokeOperation::builder()
            .function_arn(op.function.to_string())
            .invocation_schema_version(op.schema.as_str());
        for (k, v) in &op.user_arguments {
            lambda = lambda.user_arguments(k, v);
        }
        let r = &job.report;
        let mut report = JobReport::builder()
            .enabled(r.enabled)
            .set_bucket(r.bucket.as_ref().map(BucketArn::to_string))
            .set_prefix(r.prefix.clone());
        if r.format {
            report = report.format(JobReportFormat::ReportCsv20180820);
        }
        if r.scope.is_some() {
            report = report.report_scope(scope(r.scope));
        }
        let mut b = CreateJobInput::builder()
            .account_id(&self.account_id)
            .confirmation_required(job.confirmation_required)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(lambda.build())
                    .build(),
            )
            .report(report.build())
            .priority(job.priority)
            .role_arn(&job.role_arn)
            .client_request_token(token.map_or_else(|| self.token(), str::to_owned))
            .set_description(job.description.clone());
        match &job.manifest {
            ManifestSpec::Csv { location, .. } | ManifestSpec::Inventory { location, .. } => {
                let mut spec = JobManifestSpec::builder().format(JobManifestFormat::from(
                    job.manifest.format().unwrap_or_default(),
                ));
                for f in job.manifest.fields() {
                    spec = spec.fields(JobManifestFieldName::from(f.as_str()));
                }
                b = b.manifest(manifest(spec, location));
            }
            ManifestSpec::Generated(g) => {
                b = b
                    .manifest_generator(JobManifestGenerator::S3JobManifestGenerator(generator(g)));
            }
        }
        for (k, v) in &job.tags {
            b = b.tags(
                S3Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set"),
            );
        }
        b.build().expect("every required member is set")
    }

    /// The equivalent `aws s3control create-job` command (arguments quoted for a POSIX
    /// shell; `--operation`, `--manifest`/`--manifest-generator`, `--report` and `--tags`
    /// as JSON).
    pub fn aws_cli(&self, token: Option<&str>) -> String {
        let job = &self.spec;
        let op = &job.operation;
        let mut lambda = json!({"FunctionArn": op.function.to_string(),
            "InvocationSchemaVersion": op.schema.as_str()});
        if !op.user_arguments.is_empty() {
            lambda["UserArguments"] = json!(op.user_arguments);
        }
        let mut args = vec![
            "aws s3control create-job".to_owned(),
            format!("--account-id {}", self.account_id),
            format!(
                "--operation {}",
                sh(&json!({ "LambdaInvoke": lambda }).to_string())
            ),
        ];
        match &job.manifest {
            ManifestSpec::Generated(g) => args.push(format!(
                "--manifest-generator {}",
                sh(&generator_json(g).to_string())
            )),
            m => args.push(format!("--manifest {}", sh(&manifest_json(m).to_string()))),
        }
        let r = &job.report;
        let mut report = serde_json::Map::new();
        if let Some(b) = &r.bucket {
            report.insert("Bucket".into(), json!(b.to_string()));
        }
        if r.format {
            report.insert("Format".into(), json!(REPORT_FORMAT));
        }
        report.insert("Enabled".into(), json!(r.enabled));
        if let Some(p) = &r.prefix {
            report.insert("Prefix".into(), json!(p));
        }
        if let Some(s) = r.scope {
            report.insert("ReportScope".into(), json!(report_scope_name(s)));
        }
        args.push(format!(
            "--report {}",
            sh(&Value::Object(report).to_string())
        ));
        args.push(format!("--priority {}", job.priority));
        args.push(format!("--role-arn {}", sh(&job.role_arn)));
        args.push(format!(
            "--client-request-token {}",
            sh(&token.map_or_else(|| self.token(), str::to_owned))
        ));
        args.push(
            if job.confirmation_required {
                "--confirmation-required"
            } else {
                "--no-confirmation-required"
            }
            .to_owned(),
        );
        if let Some(d) = &job.description {
            args.push(format!("--description {}", sh(d)));
        }
        if !job.tags.is_empty() {
            let tags: Vec<Value> = job
                .tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect();
            args.push(format!("--tags {}", sh(&Value::from(tags).to_string())));
        }
        args.join(" \\\n    ")
    }

    /// The job role's permissions policy, least privilege: invoke the function, read the
    /// manifest (for an Inventory manifest, its folder's data files; for a generated one,
    /// list the source bucket and write the generated manifest), write the report prefix.
    pub fn role_policy(&self) -> Value {
        let job = &self.spec;
        let mut statements = vec![json!({
            "Sid": "InvokeTheFunction",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": job.operation.function.to_string(),
        })];
        match &job.manifest {
            ManifestSpec::Csv { location, .. } => statements.push(json!({
                "Sid": "ReadTheManifest",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": location.object.to_string(),
            })),
            ManifestSpec::Inventory { location, .. } => {
                // <destination prefix>/<source bucket>/<config>/<date>/manifest.json; the
                // data files are in <...>/<config>/data/.
                let object = &location.object;
                let parts: Vec<&str> = object.key().split('/').collect();
                let root = if parts.len() >= 3 {
                    parts[..parts.len() - 2].join("/") + "/*"
                } else {
                    "*".to_owned()
                };
                statements.push(json!({
                    "Sid": "ReadTheInventory",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": [object.to_string(),
                        ObjectArn::new(object.bucket(), root).to_string()],
                }));
            }
            ManifestSpec::Generated(g) => {
                statements.push(json!({
                    "Sid": "ListTheSourceBucket",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": BucketArn::new(&g.source_bucket).to_string(),
                }));
                if let Some((bucket, prefix)) = &g.output {
                    statements.push(json!({
                        "Sid": "WriteTheGeneratedManifest",
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": ObjectArn::new(bucket, format!("{}*", slash(prefix))).to_string(),
                    }));
                }
            }
        }
        if let Some((bucket, prefix, _)) = job.report.destination() {
            statements.push(json!({
                "Sid": "WriteTheReport",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": bucket.object(format!("{}*", slash(prefix))).to_string(),
            }));
        }
        json!({"Version": "2012-10-17", "Statement": statements})
    }
}

/// `prefix` followed by one `/`, or empty.
fn slash(prefix: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// The name of the inline policy [`ensure_role`] puts on the role.
pub const ROLE_POLICY_NAME: &str = "s3batch-job";

/// Creates the job role `name` (trusting S3 Batch Operations, [`trust_policy`]) with the
/// job's least-privilege inline policy ([`JobRequest::role_policy`], named
/// [`ROLE_POLICY_NAME`]) and returns its ARN. A role of that name that exists already is
/// reused: its trust policy is left alone and the inline policy replaced, so submitting
/// again with `--create-role` is harmless. IAM can take a few seconds to let a new role be
/// passed; a `CreateJob` refused for that is worth a second submit.
pub async fn ensure_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    request: &JobRequest,
) -> Result<String, SubmitError> {
    let created = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy().to_string())
        .description("S3 Batch Operations job role (cargo s3batch submit --create-role)")
        .send()
        .await;
    let arn = match created {
        Ok(out) => out
            .role
            .map(|r| r.arn)
            .ok_or_else(|| SubmitError::Missing {
                operation: "CreateRole",
                member: "role",
                of: name.to_owned(),
            })?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_already_exists_exception()) =>
        {
            iam.get_role()
                .role_name(name)
                .send()
                .await
                .map_err(|e| {
                    SubmitError::Aws(explain(&e, &format!("reading role {name}"), "iam:GetRole"))
                })?
                .role
                .map(|r| r.arn)
                .ok_or_else(|| SubmitError::Missing {
                    operation: "GetRole",
                    member: "role",
                    of: name.to_owned(),
                })?
        }
        Err(e) => {
            return Err(SubmitError::Aws(explain(
                &e,
                &format!("creating role {name}"),
                "iam:CreateRole and iam:PutRolePolicy",
            )))
        }
    };
    iam.put_role_policy()
        .role_name(name)
        .policy_name(ROLE_POLICY_NAME)
        .policy_document(request.role_policy().to_string())
        .send()
        .await
        .map_err(|e| {
            SubmitError::Aws(explain(
                &e,
                &format!("putting the job's policy on role {name}"),
                "iam:PutRolePolicy",
            ))
        })?;
    Ok(arn)
}

/// The trust policy of a job role: S3 Batch Operations may assume it.
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    })
}

fn manifest(
    spec: aws_sdk_s3control::types::builders::JobManifestSpecBuilder,
    location: &ManifestLocation,
) -> JobManifest {
    JobManifest::builder()
        .spec(spec.build().expect("the format is set"))
        .location(
            JobManifestLocation::builder()
                .object_arn(location.object.to_string())
                .e_tag(&location.etag)
                .set_object_version_id(location.version_id.clone())
                .build()
                .expect("the ARN and ETag are set"),
        )
        .build()
}

fn manifest_json(m: &ManifestSpec) -> Value {
    let location = m.location().expect("a generated manifest has no location");
    let mut spec = json!({ "Format": m.format().unwrap_or_default() });
    if !m.fields().is_empty() {
        spec["Fields"] = json!(m.fields().iter().map(|f| f.as_str()).collect::<Vec<_>>());
    }
    let mut loc = json!({"ObjectArn": location.object.to_string(), "ETag": location.etag});
    if let Some(v) = &location.version_id {
        loc["ObjectVersionId"] = json!(v);
    }
    json!({"Spec": spec, "Location": loc})
}

fn date(s: &str) -> DateTime {
    DateTime::from_str(s, Format::DateTime).expect("checked by parse_date")
}

/// Checks an RFC 3339 time for the generator's filters.
pub fn parse_date(s: &str) -> Result<String, SubmitError> {
    DateTime::from_str(s, Format::DateTime)
        .map(|_| s.to_owned())
        .map_err(|e| SubmitError::Date {
            value: s.to_owned(),
            reason: e.to_string(),
        })
}

fn generator(g: &Generator) -> S3JobManifestGenerator {
    let mut filter = JobManifestGeneratorFilter::builder()
        .set_created_after(g.created_after.as_deref().map(date))
        .set_created_before(g.created_before.as_deref().map(date))
        .set_object_size_greater_than_bytes(g.size_greater_than)
        .set_object_size_less_than_bytes(g.size_less_than);
    if !(g.prefixes.is_empty() && g.suffixes.is_empty() && g.substrings.is_empty()) {
        let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        filter = filter.key_name_constraint(
            KeyNameConstraint::builder()
                .set_match_any_prefix(nonempty(&g.prefixes))
                .set_match_any_suffix(nonempty(&g.suffixes))
                .set_match_any_substring(nonempty(&g.substrings))
                .build(),
        );
    }
    for c in &g.storage_classes {
        filter = filter.match_any_storage_class(S3StorageClass::from(c.as_str()));
    }
    let mut b = S3JobManifestGenerator::builder()
        .source_bucket(BucketArn::new(&g.source_bucket).to_string())
        .enable_manifest_output(g.output.is_some())
        .filter(filter.build());
    if let Some((bucket, prefix)) = &g.output {
        let mut out = S3ManifestOutputLocation::builder()
            .bucket(BucketArn::new(bucket).to_string())
            .manifest_format(GeneratedManifestFormat::S3InventoryReportCsv20211130);
        if !prefix.is_empty() {
            out = out.manifest_prefix(prefix);
        }
        b = b.manifest_output_location(out.build().expect("bucket and format are set"));
    }
    b.build().expect("source bucket and output flag are set")
}

fn generator_json(g: &Generator) -> Value {
    let mut filter = serde_json::Map::new();
    if let Some(t) = &g.created_after {
        filter.insert("CreatedAfter".into(), json!(t));
    }
    if let Some(t) = &g.created_before {
        filter.insert("CreatedBefore".into(), json!(t));
    }
    if let Some(n) = g.size_greater_than {
        filter.insert("ObjectSizeGreaterThanBytes".into(), json!(n));
    }
    if let Some(n) = g.size_less_than {
        filter.insert("ObjectSizeLessThanBytes".into(), json!(n));
    }
    let mut names = serde_json::Map::new();
    for (name, v) in [
        ("MatchAnyPrefix", &g.prefixes),
        ("MatchAnySuffix", &g.suffixes),
        ("MatchAnySubstring", &g.substrings),
    ] {
        if !v.is_empty() {
            names.insert(name.into(), json!(v));
        }
    }
    if !names.is_empty() {
        filter.insert("KeyNameConstraint".into(), Value::Object(names));
    }
    if !g.storage_classes.is_empty() {
        filter.insert("MatchAnyStorageClass".into(), json!(g.storage_classes));
    }
    let mut gen = json!({
        "SourceBucket": BucketArn::new(&g.source_bucket).to_string(),
        "EnableManifestOutput": g.output.is_some(),
        "Filter": Value::Object(filter),
    });
    if let Some((bucket, prefix)) = &g.output {
        let mut out = json!({"Bucket": BucketArn::new(bucket).to_string(),
            "ManifestFormat": "S3InventoryReport_CSV_20211130"});
        if !prefix.is_empty() {
            out["ManifestPrefix"] = json!(prefix);
        }
        gen["ManifestOutputLocation"] = out;
    }
    json!({ "S3JobManifestGenerator": gen })
}

/// Quotes `s` for a POSIX shell when it needs it.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An ETag without its quotes (HeadObject and PutObject return it quoted).
pub fn bare_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

/// What the manifest check found: how many rows, and the manifest for the request (with
/// whether the rows carry version ids). The rows themselves are not kept: the manifest is
/// read as a stream, so memory does not grow with it.
#[derive(Debug)]
pub struct CheckedManifest {
    /// How many rows (tasks) the manifest has.
    pub rows: usize,
    /// The manifest for the request.
    pub spec: ManifestSpec,
}

/// The largest object one PutObject writes (5 GiB); a larger manifest is uploaded in parts.
const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The part size of the multipart upload of a manifest larger than [`MAX_PUT_SIZE`]: 64 MiB,
/// or more for the file to fit in S3's 10,000 parts. Given to the engine's [`Upload`] as is,
/// so a dry run computes the ETag S3 will give the object.
///
/// [`Upload`]: s3batch_job::storage::Upload
fn multipart_part_size(size: u64) -> u64 {
    (64 * 1024 * 1024).max(size.div_ceil(10_000))
}

/// The ETag S3 gives a multipart upload of the file at `path` in parts of `part_size`: the MD5
/// of the parts' MD5s, `-` the number of parts. Read as a stream.
fn multipart_etag(path: &std::path::Path, part_size: u64) -> Result<String, SubmitError> {
    use md5::Digest;
    use std::io::Read;
    let reading = |source| io(path, source);
    let mut file = std::fs::File::open(path).map_err(reading)?;
    let (mut all, mut parts) = (md5::Md5::new(), 0u64);
    let mut buf = vec![0; 1 << 16];
    loop {
        let (mut part, mut got) = (md5::Md5::new(), 0u64);
        while got < part_size {
            let want = buf.len().min((part_size - got) as usize);
            match file.read(&mut buf[..want]).map_err(reading)? {
                0 => break,
                n => {
                    part.update(&buf[..n]);
                    got += n as u64;
                }
            }
        }
        if got == 0 {
            break;
        }
        all.update(part.finalize());
        parts += 1;
    }
    Ok(format!("{}-{parts}", hex(&all.finalize())))
}

/// A [`SubmitError::Io`] for `path`.
fn io(path: &std::path::Path, source: std::io::Error) -> SubmitError {
    SubmitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks the CSV manifest at `path` as `run` does, streamed with the engine's strict reader
/// (every bad row named by its line, a manifest with any rejected whole; `name` names it in
/// the message): its number of rows, whether they carry version ids, and the MD5 of its bytes.
fn check_csv(path: &std::path::Path, name: Option<String>) -> Result<CsvCheck, SubmitError> {
    let source = ManifestSource::open_csv(path).map_err(|e| {
        SubmitError::Manifest(match &name {
            Some(name) => e.of(name.clone()).to_string(),
            None => e.to_string(),
        })
    })?;
    Ok(CsvCheck {
        rows: source.len(),
        with_version_ids: source.has_version_ids(),
        md5: source
            .digest()
            .strip_prefix("md5:")
            .unwrap_or_default()
            .to_owned(),
    })
}

struct CsvCheck {
    rows: usize,
    with_version_ids: bool,
    md5: String,
}

/// Resolves the manifest of a job: a local CSV is checked and uploaded to `upload`
/// (PutObject, streamed from the file, gives its ETag; a file over 5 GiB is uploaded in
/// parts); an `s3://` CSV or Inventory `manifest.json` is downloaded to a temporary folder as
/// it arrives and checked there the way `run` reads it, its ETag taken from the GetObject
/// that read it. With `create` false (a dry run) nothing is uploaded: the ETag is the one S3
/// would give the local file (its MD5). Memory does not grow with the manifest.
pub async fn resolve_manifest(
    location: &Location,
    upload: Option<&Location>,
    s3: &aws_sdk_s3::Client,
    create: bool,
) -> Result<CheckedManifest, SubmitError> {
    let aws = SubmitError::Aws;
    match location {
        Location::Local(path) => {
            let Some(Location::S3 { bucket, key }) = upload else {
                return Err(SubmitError::LocalManifest(path.clone()));
            };
            if key.is_empty() || key.ends_with('/') {
                return Err(SubmitError::UploadKey {
                    bucket: bucket.clone(),
                    key: key.clone(),
                });
            }
            let mut head = Vec::new();
            {
                use std::io::Read;
                std::fs::File::open(path)
                    .and_then(|f| f.take(64).read_to_end(&mut head))
                    .map_err(|e| io(path, e))?;
            }
            if is_inventory(&path.to_string_lossy(), &head) {
                return Err(SubmitError::LocalInventory(path.clone()));
            }
            let checked = check_csv(path, None)?;
            let size = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
            let doing = format!("uploading the manifest to s3://{bucket}/{key}");
            let etag = match (create, size <= MAX_PUT_SIZE) {
                (true, true) => {
                    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
                        .await
                        .map_err(|e| io(path, std::io::Error::other(e)))?;
                    let out = s3
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| aws(explain(&e, &doing, "s3:PutObject")))?;
                    bare_etag(out.e_tag().unwrap_or_default())
                }
                (true, false) => {
                    // Over PutObject's 5 GiB: the engine's multipart writer, parts streamed
                    // from the file; the ETag is the object's.
                    s3batch_job::storage::Upload::new()
                        .threshold(MAX_PUT_SIZE)
                        .part_size(multipart_part_size(size))
                        .file(s3, path, bucket, key)
                        .await
                        .map_err(|e| {
                            aws(format!(
                                "{doing} ({size} bytes, in parts; needs s3:PutObject): {e}"
                            ))
                        })?;
                    let head = s3
                        .head_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| aws(explain(&e, &doing, "s3:GetObject")))?;
                    bare_etag(head.e_tag().unwrap_or_default())
                }
                (false, true) => checked.md5.clone(),
                (false, false) => multipart_etag(path, multipart_part_size(size))?,
            };
            Ok(CheckedManifest {
                rows: checked.rows,
                spec: ManifestSpec::csv(
                    ManifestLocation {
                        object: ObjectArn::new(bucket, key),
                        version_id: None,
                        etag,
                    },
                    checked.with_version_ids,
                ),
            })
        }
        Location::S3 { bucket, key } => {
            if let Some(upload) = upload {
                return Err(SubmitError::UploadNotNeeded {
                    upload: upload.to_string(),
                    manifest: format!("s3://{bucket}/{key}"),
                });
            }
            let doing = format!("reading the manifest s3://{bucket}/{key}");
            let got = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| aws(explain(&e, &doing, "s3:GetObject")))?;
            // The ETag of the bytes read, so the job runs over what was checked.
            let etag = bare_etag(got.e_tag().unwrap_or_default());
            let staged = Staged::create(std::env::temp_dir().join("s3batch-submit").join(format!(
                    "{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_nanos()
                )))
            .map_err(|e| SubmitError::Manifest(e.to_string()))?;
            let path = staged.dir().join("manifest.csv");
            s3batch_job::storage::save_body(got.body, &path, &format!("s3://{bucket}/{key}"))
                .await
                .map_err(|e| SubmitError::Manifest(e.to_string()))?;
            let mut head = Vec::new();
            {
                use std::io::Read;
                std::fs::File::open(&path)
                    .and_then(|f| f.take(64).read_to_end(&mut head))
                    .map_err(|e| io(&path, e))?;
            }
            let object = ObjectArn::new(bucket, key);
            let (rows, spec) = if is_inventory(key, &head) {
                // Its data files, from the inventory's bucket, saved and checked as `run`
                // reads them.
                let json = std::fs::read(&path).map_err(|e| io(&path, e))?;
                let source = s3batch_job::storage::fetch_inventory(&json, s3, staged.dir())
                    .await
                    .map_err(|e| SubmitError::Manifest(e.of(location.to_string()).to_string()))?;
                let rows = source.len();
                drop(source);
                (
                    rows,
                    ManifestSpec::Inventory {
                        fields: Vec::new(),
                        location: ManifestLocation {
                            object,
                            version_id: None,
                            etag,
                        },
                    },
                )
            } else {
                let checked = check_csv(&path, Some(location.to_string()))?;
                (
                    checked.rows,
                    ManifestSpec::csv(
                        ManifestLocation {
                            object,
                            version_id: None,
                            etag,
                        },
                        checked.with_version_ids,
                    ),
                )
            };
            drop(staged);
            Ok(CheckedManifest { rows, spec })
        }
    }
}

/// Checks that the report bucket exists and can be reached (HeadBucket).
pub async fn check_report_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), SubmitError> {
    s3.head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            match e.code() {
                Some("NotFound" | "NoSuchBucket") => SubmitError::NoReportBucket(bucket.to_owned()),
                _ => SubmitError::Aws(explain(
                    &e,
                    &format!("checking the report bucket {bucket}"),
                    "s3:ListBucket on the report bucket",
                )),
            }
        })
}

/// The caller's account, from STS `GetCallerIdentity`.
pub async fn resolve_account(sts: &aws_sdk_sts::Client) -> Result<String, SubmitError> {
    use aws_sdk_sts::error::SdkError;
    let out = sts.get_caller_identity().send().await.map_err(|e| {
        SubmitError::Aws(match &e {
            // STS is not the S3 Control endpoint: --endpoint-url does not change where it
            // is, so the flag that helps is --account-id.
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "finding your account with STS GetCallerIdentity: STS could not be reached \
                     ({}); pass --account-id ID",
                chain(&e)
            ),
            _ => explain(
                &e,
                "finding your account with STS GetCallerIdentity (or pass --account-id)",
                "sts:GetCallerIdentity",
            ),
        })
    })?;
    out.account.ok_or_else(|| SubmitError::Missing {
        operation: "STS GetCallerIdentity",
        member: "account",
        of: "the caller (pass --account-id)".into(),
    })
}

/// The function resolved for a job: its ARN, and what to warn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFunction {
    /// The ARN the job invokes (qualified when the name was).
    pub arn: String,
    /// Warnings for the user (an unqualified or `$LATEST` function, a short timeout).
    pub warnings: Vec<String>,
}

/// Resolves `function` (a name, `name:qualifier` or ARN) with Lambda `GetFunction`: a
/// function in another region than the job's is an error; an unqualified or `$LATEST`
/// function, and a timeout not longer than twice `deadline_margin` (the time the task keeps
/// for its result), are warnings.
pub async fn resolve_function(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    job_region: &str,
    deadline_margin: std::time::Duration,
) -> Result<ResolvedFunction, SubmitError> {
    let given: FunctionArn = function.parse().map_err(SubmitError::Function)?;
    if let Some(region) = given.region().filter(|r| *r != job_region) {
        return Err(other_region(function, region, job_region));
    }
    let out = lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                SubmitError::NoFunction {
                    function: function.to_owned(),
                    region: job_region.to_owned(),
                }
            } else {
                SubmitError::Aws(explain(
                    &e,
                    &format!("looking up function {function}"),
                    "lambda:GetFunction",
                ))
            }
        })?;
    let config = out.configuration.ok_or_else(|| SubmitError::Missing {
        operation: "GetFunction",
        member: "configuration",
        of: function.to_owned(),
    })?;
    let found = config.function_arn.ok_or_else(|| SubmitError::Missing {
        operation: "GetFunction",
        member: "ARN",
        of: function.to_owned(),
    })?;
    let found: FunctionArn = found.parse().map_err(SubmitError::Function)?;
    let region = found.region().unwrap_or_default();
    if region != job_region {
        return Err(other_region(&found.to_string(), region, job_region));
    }
    let mut arn = found.to_string();
    let mut warnings = Vec::new();
    // GetFunction names the qualifier of a qualified name in its ARN; if not, the name's.
    let qualifier = found.qualifier().or(given.qualifier());
    match qualifier {
        None => warnings.push(format!(
            "{arn} is unqualified: the job invokes $LATEST, and a deployment during the job \
             switches it to the new code; pin a version or an alias (NAME:VERSION)"
        )),
        Some("$LATEST") => warnings.push(format!(
            "{arn} is $LATEST: a deployment during the job switches it to the new code; pin \
             a version or an alias"
        )),
        Some(q) if found.qualifier().is_none() => arn = format!("{arn}:{q}"),
        Some(_) => {}
    }
    if let Some(timeout) = config.timeout {
        let timeout = std::time::Duration::from_secs(timeout.max(0) as u64);
        if timeout <= deadline_margin * 2 {
            warnings.push(format!(
                "the function's timeout is {} s: a task keeps {} ms of it to return its \
                 result, which leaves too little to work; raise the function's timeout",
                timeout.as_secs(),
                deadline_margin.as_millis()
            ));
        }
    }
    Ok(ResolvedFunction { arn, warnings })
}

fn other_region(function: &str, region: &str, job_region: &str) -> SubmitError {
    SubmitError::OtherRegion {
        function: function.to_owned(),
        region: region.to_owned(),
        job_region: job_region.to_owned(),
    }
}

/// A message for an SDK error that names the fix: a missing permission names the `action`,
/// a missing bucket or key says which, an unknown job the region; otherwise the service's
/// code and message (never the whole debug dump). `doing` says what failed.
pub fn explain<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>, doing: &str, action: &str) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default();
    match (code, e) {
        ("AccessDenied" | "AccessDeniedException" | "Forbidden", _) => format!(
            "{doing}: access denied ({message}); the caller needs {action} (see docs/job-tool.md, \
             Run it on AWS, for the policy)"
        ),
        (
            "InvalidClientTokenId"
            | "ExpiredToken"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch",
            _,
        ) => format!(
            "{doing}: your AWS credentials are not valid here ({code}: {message}); check \
             AWS_PROFILE / the credentials, and the region"
        ),
        ("NoSuchBucket", _) => {
            format!("{doing}: the bucket does not exist ({message}); create it, or name another")
        }
        ("NoSuchKey" | "NotFound", _) => format!(
            "{doing}: no such object or bucket{}; check the s3:// URI (and the region)",
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        ),
        ("NotFoundException" | "NoSuchJob" | "NoSuchJobException", _) => format!(
            "{doing}: no such job ({message}); jobs are regional: check --region (or \
             AWS_REGION) and --account-id"
        ),
        (_, SdkError::ServiceError(_)) if !code.is_empty() => {
            format!("{doing}: {code}: {message}")
        }
        (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => format!(
            "{doing}: the endpoint could not be reached ({}); check --endpoint-url / the \
             region and your network",
            chain(e)
        ),
        _ => format!("{doing}: {}", chain(e)),
    }
}

/// An error and its sources, each as it displays itself, joined by `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The AWS configuration for a client of `endpoint` (placeholder credentials on loopback,
/// as for `run`) in `region` (default: the configuration's, else `us-east-1`).
pub async fn aws_config(endpoint: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let config = s3batch_job::aws::load(endpoint).await;
    match region {
        Some(r) => config
            .to_builder()
            .region(aws_config::Region::new(r.to_owned()))
            .build(),
        None => config,
    }
}

/// An S3 Control client. A loopback `endpoint` (a local emulator such as `cargo s3batch
/// serve`) gets a static endpoint resolver: every request goes to that URL, because S3
/// Control clients otherwise put the account id in front of the host
/// (`123456789012.127.0.0.1`), which does not resolve. Any other endpoint is used as an
/// endpoint URL (the account id is prefixed, as on AWS).
pub async fn control_client(
    endpoint: Option<&str>,
    region: Option<&str>,
) -> aws_sdk_s3control::Client {
    let mut b = aws_sdk_s3control::config::Builder::from(&aws_config(endpoint, region).await);
    if let Some(url) = endpoint.filter(|e| s3batch_job::aws::is_loopback(e)) {
        b = b.endpoint_resolver(StaticEndpoint(url.to_owned()));
    }
    aws_sdk_s3control::Client::from_conf(b.build())
}

/// Sends every request to one URL, whatever the account id.
#[derive(Debug)]
pub(crate) struct StaticEndpoint(pub(crate) String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for StaticEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(
            aws_sdk_s3control::config::endpoint::Endpoint::builder()
                .url(self.0.clone())
                .build(),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_s3control::operation::create_job::CreateJobOutput;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

    use crate::model::{LambdaInvoke, Schema, UserArguments};

    fn location(bucket: &str, key: &str, etag: &str, version_id: Option<&str>) -> ManifestLocation {
        ManifestLocation {
            object: ObjectArn::new(bucket, key),
            version_id: version_id.map(str::to_owned),
            etag: etag.into(),
        }
    }

    fn request() -> JobRequest {
        JobRequest {
            account_id: "123456789012".into(),
            spec: JobSpec {
                operation: LambdaInvoke {
                    function: "arn:aws:lambda:us-east-1:123456789012:function:fn:3"
                        .parse()
                        .unwrap(),
                    schema: Schema::V2,
                    user_arguments: UserArguments::new([("size", "256")]).unwrap(),
                },
                manifest: ManifestSpec::csv(
                    location(
                        "man",
                        "jobs/m.csv",
                        "60e460c9d1046e73f7dde5043ac3ae85",
                        None,
                    ),
                    false,
                ),
                report: ReportSpec::to(BucketArn::new("rep"), "batch", ReportScope::AllTasks),
                priority: 10,
                description: Some("thumbnails".into()),
                confirmation_required: false,
                client_request_token: None,
                tags: vec![("team".into(), "media".into())],
                role_arn: "arn:aws:iam::123456789012:role/batch".into(),
            },
        }
    }

    /// A LambdaInvoke operation of schema 2.0 with one user argument, as the SDK takes it.
    pub(crate) fn lambda_invoke(function_arn: &str, (k, v): (&str, &str)) -> JobOperation {
        JobOperation::builder()
            .lambda_invoke(
                LambdaInvokeOperation::builder()
                    .function_arn(function_arn)
                    .invocation_schema_version("2.0")
                    .user_arguments(k, v)
                    .build(),
            )
            .build()
    }

    /// A CSV report of all tasks to the bucket `bucket_arn` under `prefix`.
    pub(crate) fn all_tasks_report(bucket_arn: &str, prefix: &str) -> JobReport {
        JobReport::builder()
            .bucket(bucket_arn)
            .format(JobReportFormat::ReportCsv20180820)
            .enabled(true)
            .prefix(prefix)
            .report_scope(JobReportScope::AllTasks)
            .build()
    }

    /// A CSV manifest (`Bucket,Key`) at `object_arn` with the ETag `etag`.
    pub(crate) fn csv_manifest(object_arn: &str, etag: &str) -> JobManifest {
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
                    .object_arn(object_arn)
                    .e_tag(etag)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    /// The recorded expectation: the botocore body of s3control.md §1.2, as the Rust input.
    fn expected(token: &str) -> CreateJobInput {
        CreateJobInput::builder()
            .account_id("123456789012")
            .confirmation_required(false)
            .operation(lambda_invoke(
                "arn:aws:lambda:us-east-1:123456789012:function:fn:3",
                ("size", "256"),
            ))
            .report(all_tasks_report("arn:aws:s3:::rep", "batch"))
            .manifest(csv_manifest(
                "arn:aws:s3:::man/jobs/m.csv",
                "60e460c9d1046e73f7dde5043ac3ae85",
            ))
            .description("thumbnails")
            .priority(10)
            .role_arn("arn:aws:iam::123456789012:role/batch")
            .tags(S3Tag::builder().key("team").value("media").build().unwrap())
            .client_request_token(token)
            .build()
            .unwrap()
    }

    #[test]
    fn a_csv_job_is_the_recorded_request() {
        let r = request();
        assert_eq!(r.input(None), expected(&r.token()));
        assert_eq!(r.input(Some("mine")), expected("mine"));
    }

    #[test]
    fn version_ids_add_the_field_and_a_pinned_manifest_its_version() {
        let mut r = request();
        r.spec.manifest = ManifestSpec::csv(location("man", "m.csv", "e", Some("v1")), true);
        let m = r.input(None).manifest.unwrap();
        let spec = m.spec.unwrap();
        assert_eq!(
            spec.fields.unwrap(),
            [
                JobManifestFieldName::Bucket,
                JobManifestFieldName::Key,
                JobManifestFieldName::VersionId
            ]
        );
        assert_eq!(m.location.unwrap().object_version_id.as_deref(), Some("v1"));
    }

    #[test]
    fn an_inventory_manifest_has_its_format_and_no_fields() {
        let mut r = request();
        r.spec.manifest = ManifestSpec::Inventory {
            fields: Vec::new(),
            location: location(
                "inv",
                "dest/src/cfg/2026-01-01T00-00Z/manifest.json",
                "abc",
                None,
            ),
        };
        let input = r.input(None);
        let m = input.manifest.unwrap();
        let spec = m.spec.unwrap();
        assert_eq!(spec.format, JobManifestFormat::S3InventoryReportCsv20161130);
        assert_eq!(spec.fields, None);
        let loc = m.location.unwrap();
        assert_eq!(
            loc.object_arn,
            "arn:aws:s3:::inv/dest/src/cfg/2026-01-01T00-00Z/manifest.json"
        );
        assert_eq!(loc.e_tag, "abc");
        assert!(input.manifest_generator.is_none());
        // The role reads manifest.json and the data files of the inventory configuration.
        let policy = r.role_policy().to_string();
        assert!(
            policy.contains("arn:aws:s3:::inv/dest/src/cfg/*"),
            "{policy}"
        );
    }

    #[test]
    fn a_generated_manifest_carries_the_filters() {
        let mut r = request();
        r.spec.manifest = ManifestSpec::Generated(Generator {
            source_bucket: "photos".into(),
            prefixes: vec!["2024/".into()],
            suffixes: vec![".jpg".into()],
            created_after: Some("2026-01-31T00:00:00Z".into()),
            size_greater_than: Some(10),
            storage_classes: vec!["STANDARD".into()],
            output: Some(("man".into(), "generated".into())),
            ..Generator::default()
        });
        let input = r.input(None);
        assert!(input.manifest.is_none());
        let Some(JobManifestGenerator::S3JobManifestGenerator(g)) = input.manifest_generator else {
            panic!("no generator");
        };
        assert_eq!(g.source_bucket, "arn:aws:s3:::photos");
        assert!(g.enable_manifest_output);
        let out = g.manifest_output_location.unwrap();
        assert_eq!(out.bucket, "arn:aws:s3:::man");
        assert_eq!(out.manifest_prefix.as_deref(), Some("generated"));
        assert_eq!(
            out.manifest_format,
            GeneratedManifestFormat::S3InventoryReportCsv20211130
        );
        let f = g.filter.unwrap();
        let names = f.key_name_constraint.unwrap();
        assert_eq!(names.match_any_prefix.unwrap(), ["2024/"]);
        assert_eq!(names.match_any_suffix.unwrap(), [".jpg"]);
        assert_eq!(names.match_any_substring, None);
        assert_eq!(f.created_after.unwrap().secs(), 1_769_817_600);
        assert_eq!(f.object_size_greater_than_bytes, Some(10));
        assert_eq!(
            f.match_any_storage_class.unwrap(),
            [S3StorageClass::Standard]
        );
        let cli = r.aws_cli(None);
        assert!(cli.contains("--manifest-generator '"), "{cli}");
        assert!(!cli.contains("--manifest '"), "{cli}");
    }

    #[test]
    fn schema_one_without_arguments_and_no_report() {
        let mut r = request();
        r.spec.operation.schema = Schema::V1;
        r.spec.operation.user_arguments = UserArguments::default();
        r.spec.report = ReportSpec::disabled();
        r.spec.confirmation_required = true;
        let input = r.input(None);
        let lambda = input.operation.unwrap().lambda_invoke.unwrap();
        assert_eq!(lambda.invocation_schema_version.as_deref(), Some("1.0"));
        assert_eq!(lambda.user_arguments, None);
        assert_eq!(
            input.report.unwrap(),
            JobReport::builder().enabled(false).build()
        );
        assert_eq!(input.confirmation_required, Some(true));
    }

    #[test]
    fn a_failed_only_report_without_prefix() {
        let mut r = request();
        r.spec.report = ReportSpec::to(BucketArn::new("rep"), "", ReportScope::FailedTasksOnly);
        let report = r.input(None).report.unwrap();
        assert_eq!(report.report_scope, Some(JobReportScope::FailedTasksOnly));
        assert_eq!(report.prefix, None);
        assert_eq!(report.bucket.as_deref(), Some("arn:aws:s3:::rep"));
    }

    #[test]
    fn the_token_is_stable_and_changes_with_the_request() {
        let r = request();
        assert_eq!(r.token(), request().token());
        assert!(r.token().starts_with("s3batch-") && r.token().len() <= 64);
        type Change = Box<dyn Fn(&mut JobRequest)>;
        let changes: Vec<Change> = vec![
            Box::new(|r| r.account_id = "210987654321".into()),
            Box::new(|r| {
                r.spec.operation.function = "arn:aws:lambda:us-east-1:123456789012:function:fn:30"
                    .parse()
                    .unwrap()
            }),
            Box::new(|r| r.spec.operation.schema = Schema::V1),
            Box::new(|r| {
                r.spec.operation.user_arguments = UserArguments::new([("size", "512")]).unwrap();
            }),
            Box::new(|r| {
                if let ManifestSpec::Csv { location, .. } = &mut r.spec.manifest {
                    location.etag = "another".into();
                }
            }),
            Box::new(|r| r.spec.report = ReportSpec::disabled()),
            Box::new(|r| r.spec.report.scope = Some(ReportScope::FailedTasksOnly)),
            Box::new(|r| r.spec.priority = 11),
            Box::new(|r| r.spec.description = None),
            Box::new(|r| r.spec.confirmation_required = true),
            Box::new(|r| r.spec.tags.clear()),
            Box::new(|r| r.spec.role_arn.push('2')),
        ];
        let mut seen = std::collections::HashSet::from([r.token()]);
        for change in changes {
            let mut other = request();
            change(&mut other);
            assert!(seen.insert(other.token()), "{other:?}");
        }
    }

    /// The JSON arguments of the printed command, parsed back.
    fn cli_json(cli: &str, option: &str) -> serde_json::Value {
        let start = cli.find(&format!("{option} '")).unwrap() + option.len() + 2;
        let end = start + cli[start..].find('\'').unwrap();
        serde_json::from_str(&cli[start..end]).unwrap()
    }

    #[test]
    fn the_aws_cli_command_carries_the_same_request_as_valid_json() {
        let r = request();
        let cli = r.aws_cli(None);
        assert_eq!(
            cli_json(&cli, "--operation"),
            json!({"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn:3",
                "InvocationSchemaVersion": "2.0", "UserArguments": {"size": "256"}}})
        );
        assert_eq!(
            cli_json(&cli, "--manifest"),
            json!({"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                "Location": {"ObjectArn": "arn:aws:s3:::man/jobs/m.csv",
                    "ETag": "60e460c9d1046e73f7dde5043ac3ae85"}})
        );
        assert_eq!(
            cli_json(&cli, "--report"),
            json!({"Bucket": "arn:aws:s3:::rep", "Format": "Report_CSV_20180820",
                "Enabled": true, "Prefix": "batch", "ReportScope": "AllTasks"})
        );
        assert_eq!(
            cli_json(&cli, "--tags"),
            json!([{"Key": "team", "Value": "media"}])
        );
        assert!(cli.contains(&format!("--client-request-token {}", r.token())));
        assert!(cli.contains("--no-confirmation-required"));
        assert!(cli.contains("--description thumbnails"));
        assert!(cli.contains("--priority 10"));
        assert_eq!(sh("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_role_policies() {
        let trust = trust_policy();
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "batchoperations.s3.amazonaws.com"
        );
        assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
        let p = request().role_policy();
        let s = p["Statement"].as_array().unwrap();
        assert_eq!(s[0]["Action"], "lambda:InvokeFunction");
        assert_eq!(
            s[0]["Resource"],
            "arn:aws:lambda:us-east-1:123456789012:function:fn:3"
        );
        assert_eq!(s[1]["Resource"], "arn:aws:s3:::man/jobs/m.csv");
        assert_eq!(s[2]["Action"], "s3:PutObject");
        assert_eq!(s[2]["Resource"], "arn:aws:s3:::rep/batch/*");
        assert_eq!(s.len(), 3);
    }

    /// A client of the SDK crate `$sdk` (us-east-1, placeholder credentials) whose requests
    /// `$rules` answer, any of them matching any request.
    macro_rules! mocked {
        ($sdk:ident, $rules:expr) => {{
            let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
            for r in $rules {
                interceptor = interceptor.with_rule(r);
            }
            $sdk::Client::from_conf(
                $sdk::Config::builder()
                    .behavior_version($sdk::config::BehaviorVersion::latest())
                    .region($sdk::config::Region::new("us-east-1"))
                    .credentials_provider($sdk::config::Credentials::new(
                        "a", "b", None, None, "test",
                    ))
                    .http_client(aws_smithy_mocks::create_mock_http_client())
                    .interceptor(interceptor)
                    .build(),
            )
        }};
    }

    fn control(rule: &Rule) -> aws_sdk_s3control::Client {
        mocked!(aws_sdk_s3control, [rule])
    }

    #[tokio::test]
    async fn the_client_sends_the_request_unchanged() {
        let r = request();
        let want = expected(&r.token());
        let rule = mock!(aws_sdk_s3control::Client::create_job)
            .match_requests(move |input| *input == want)
            .then_output(|| CreateJobOutput::builder().job_id("job-1").build());
        let id = create(&control(&rule), &r, None).await.unwrap();
        assert_eq!(id, "job-1");
        assert_eq!(rule.num_calls(), 1);
    }

    /// User arguments S3 would refuse at CreateJob are refused before anything is sent,
    /// naming the argument and the limit.
    #[tokio::test]
    async fn user_arguments_s3_refuses_are_not_sent() {
        let rule = mock!(aws_sdk_s3control::Client::create_job)
            .then_output(|| CreateJobOutput::builder().job_id("job-1").build());
        let client = control(&rule);
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        // Over S3's limits, or a name twice: the arguments cannot be made.
        let cases = [
            (
                vec![("k".repeat(65), "v".to_owned())],
                format!(
                    "user argument name \"{}\" has 65 characters; names are 1 to 64 characters",
                    "k".repeat(65)
                ),
            ),
            (
                vec![("size".into(), "9".repeat(1025))],
                "user argument \"size\" has a value of 1025 characters; values are at most 1024 characters"
                    .to_owned(),
            ),
            (eleven.clone(), "11 user arguments; S3 allows at most 10".to_owned()),
            (
                vec![("size".into(), "1".into()), ("size".into(), "2".into())],
                "user argument \"size\" is given more than once; give each name once".to_owned(),
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(UserArguments::new(args).unwrap_err().to_string(), expected);
        }
        // With schema 1.0, and a negative priority: refused before anything is sent, naming
        // the field and the limit.
        let mut v1 = request();
        v1.spec.operation.schema = Schema::V1;
        let mut negative = request();
        negative.spec.priority = -1;
        for (request, expected) in [
            (
                v1,
                "CreateJobRequest.Operation.LambdaInvoke.UserArguments: user arguments need \
                 invocation schema 2.0 (S3 rejects them with 1.0)",
            ),
            (
                negative,
                "CreateJobRequest.Priority is \"-1\"; give 0 to 2147483647",
            ),
        ] {
            assert_eq!(request.check().unwrap_err().to_string(), expected);
            let err = create(&client, &request, None).await.unwrap_err();
            assert!(matches!(err, SubmitError::Spec(_)), "{err:?}");
            assert_eq!(err.to_string(), expected);
        }
        assert_eq!(rule.num_calls(), 0);
        // At the limits it is sent.
        let mut ten = request();
        ten.spec.operation.user_arguments = UserArguments::new(eleven[..10].to_vec()).unwrap();
        ten.check().unwrap();
        assert_eq!(create(&client, &ten, None).await.unwrap(), "job-1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_denied_create_names_the_permissions() {
        let rule = mock!(aws_sdk_s3control::Client::create_job).then_error(|| {
            aws_sdk_s3control::operation::create_job::CreateJobError::generic(
                aws_sdk_s3control::error::ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build(),
            )
        });
        let err = create(&control(&rule), &request(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("access denied"), "{err}");
        assert!(
            err.contains("s3:CreateJob") && err.contains("iam:PassRole"),
            "{err}"
        );
        assert!(!err.contains("ServiceError"), "{err}");
    }

    fn lambda(rule: &Rule) -> aws_sdk_lambda::Client {
        mocked!(aws_sdk_lambda, [rule])
    }

    fn function(arn: &'static str, timeout: i32) -> Rule {
        use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
        use aws_sdk_lambda::types::FunctionConfiguration;
        mock!(aws_sdk_lambda::Client::get_function).then_output(move || {
            GetFunctionOutput::builder()
                .configuration(
                    FunctionConfiguration::builder()
                        .function_arn(arn)
                        .timeout(timeout)
                        .build(),
                )
                .build()
        })
    }

    const MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

    #[tokio::test]
    async fn a_qualified_function_resolves_without_warnings() {
        let rule = function("arn:aws:lambda:us-east-1:123456789012:function:fn:3", 60);
        let f = resolve_function(&lambda(&rule), "fn:3", "us-east-1", MARGIN)
            .await
            .unwrap();
        assert_eq!(f.arn, "arn:aws:lambda:us-east-1:123456789012:function:fn:3");
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    /// The name given and the ARN GetFunction returns are read as [`FunctionArn`]s: the
    /// qualifier of `NAME:QUALIFIER` is kept when the ARN has none; a partial ARN
    /// (`ACCOUNT:function:NAME`) is unqualified (its name is no qualifier); a name that is
    /// none is refused naming the part, before GetFunction.
    #[tokio::test]
    async fn function_names_are_read_as_arns() {
        let rule = function("arn:aws:lambda:us-east-1:123456789012:function:fn", 60);
        let f = resolve_function(&lambda(&rule), "fn:live", "us-east-1", MARGIN)
            .await
            .unwrap();
        assert_eq!(
            f.arn,
            "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
        );
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        let f = resolve_function(
            &lambda(&rule),
            "123456789012:function:fn",
            "us-east-1",
            MARGIN,
        )
        .await
        .unwrap();
        assert_eq!(f.arn, "arn:aws:lambda:us-east-1:123456789012:function:fn");
        assert!(f.warnings[0].contains("unqualified"), "{:?}", f.warnings);
        let calls = rule.num_calls();
        let err = resolve_function(&lambda(&rule), "fn:3:x", "us-east-1", MARGIN)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SubmitError::Function(e) if e.problem == crate::model::ArnProblem::Trailing("x".into())),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the function: \"fn:3:x\" is not a function ARN \
             (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]): it has \"x\" after the \
             qualifier"
        );
        assert_eq!(rule.num_calls(), calls, "refused before GetFunction");
    }

    #[tokio::test]
    async fn an_unqualified_function_with_a_short_timeout_is_warned_about() {
        let rule = function("arn:aws:lambda:us-east-1:123456789012:function:fn", 2);
        let f = resolve_function(&lambda(&rule), "fn", "us-east-1", MARGIN)
            .await
            .unwrap();
        assert_eq!(f.arn, "arn:aws:lambda:us-east-1:123456789012:function:fn");
        assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
        assert!(f.warnings[0].contains("unqualified"));
        assert!(f.warnings[1].contains("timeout is 2 s"));
        let rule = function(
            "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST",
            60,
        );
        let f = resolve_function(&lambda(&rule), "fn:$LATEST", "us-east-1", MARGIN)
            .await
            .unwrap();
        assert!(f.warnings[0].contains("$LATEST"), "{:?}", f.warnings);
    }

    #[tokio::test]
    async fn a_function_in_another_region_is_an_error_naming_both() {
        let rule = function("arn:aws:lambda:eu-west-1:123456789012:function:fn:3", 60);
        let err = resolve_function(
            &lambda(&rule),
            "arn:aws:lambda:eu-west-1:123456789012:function:fn:3",
            "us-east-1",
            MARGIN,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SubmitError::OtherRegion { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("eu-west-1") && err.contains("--region"),
            "{err}"
        );
        assert_eq!(rule.num_calls(), 0, "decided from the ARN alone");
        let missing = mock!(aws_sdk_lambda::Client::get_function).then_error(|| {
            aws_sdk_lambda::operation::get_function::GetFunctionError::ResourceNotFoundException(
                aws_sdk_lambda::types::error::ResourceNotFoundException::builder()
                    .message("Function not found")
                    .build(),
            )
        });
        let err = resolve_function(&lambda(&missing), "fn", "us-east-1", MARGIN)
            .await
            .unwrap_err();
        assert!(matches!(err, SubmitError::NoFunction { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("not found in region us-east-1"), "{err}");
    }

    #[tokio::test]
    async fn the_account_comes_from_sts() {
        use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
        let rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
            GetCallerIdentityOutput::builder()
                .account("123456789012")
                .build()
        });
        let sts = mocked!(aws_sdk_sts, [&rule]);
        assert_eq!(resolve_account(&sts).await.unwrap(), "123456789012");
    }

    fn iam(rules: &[&Rule]) -> aws_sdk_iam::Client {
        mocked!(aws_sdk_iam, rules)
    }

    fn role(arn: &str) -> aws_sdk_iam::types::Role {
        aws_sdk_iam::types::Role::builder()
            .path("/")
            .role_name("batch")
            .role_id("AROA")
            .arn(arn)
            .create_date(DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn put_policy() -> Rule {
        let policy = request().role_policy();
        mock!(aws_sdk_iam::Client::put_role_policy)
            .match_requests(move |i| {
                i.role_name() == Some("batch")
                    && i.policy_name() == Some(ROLE_POLICY_NAME)
                    && i.policy_document()
                        .and_then(|d| serde_json::from_str::<Value>(d).ok())
                        .as_ref()
                        == Some(&policy)
            })
            .then_output(|| {
                aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput::builder().build()
            })
    }

    #[tokio::test]
    async fn create_role_trusts_batch_operations_and_puts_the_least_privilege_policy() {
        let create = mock!(aws_sdk_iam::Client::create_role)
            .match_requests(|i| {
                i.role_name() == Some("batch")
                    && i.assume_role_policy_document()
                        .and_then(|d| serde_json::from_str::<Value>(d).ok())
                        == Some(trust_policy())
            })
            .then_output(|| {
                aws_sdk_iam::operation::create_role::CreateRoleOutput::builder()
                    .role(role("arn:aws:iam::123456789012:role/batch"))
                    .build()
            });
        let put = put_policy();
        let arn = ensure_role(&iam(&[&create, &put]), "batch", &request())
            .await
            .unwrap();
        assert_eq!(arn, "arn:aws:iam::123456789012:role/batch");
        assert_eq!((create.num_calls(), put.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_existing_role_is_reused_with_the_policy_replaced() {
        let create = mock!(aws_sdk_iam::Client::create_role).then_error(|| {
            aws_sdk_iam::operation::create_role::CreateRoleError::EntityAlreadyExistsException(
                aws_sdk_iam::types::error::EntityAlreadyExistsException::builder().build(),
            )
        });
        let get = mock!(aws_sdk_iam::Client::get_role)
            .match_requests(|i| i.role_name() == Some("batch"))
            .then_output(|| {
                aws_sdk_iam::operation::get_role::GetRoleOutput::builder()
                    .role(role("arn:aws:iam::123456789012:role/old"))
                    .build()
            });
        let put = put_policy();
        let arn = ensure_role(&iam(&[&create, &get, &put]), "batch", &request())
            .await
            .unwrap();
        assert_eq!(arn, "arn:aws:iam::123456789012:role/old");
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn errors_name_the_fix() {
        use aws_sdk_s3control::operation::describe_job::DescribeJobError;
        for (code, wanted) in [
            ("NotFoundException", "check --region"),
            ("NoSuchJob", "check --region"),
            ("AccessDenied", "the caller needs s3:DescribeJob"),
            ("InvalidClientTokenId", "credentials are not valid"),
            (
                "TooManyRequestsException",
                "TooManyRequestsException: it says",
            ),
        ] {
            let rule = mock!(aws_sdk_s3control::Client::describe_job).then_error(move || {
                DescribeJobError::generic(
                    aws_sdk_s3control::error::ErrorMetadata::builder()
                        .code(code)
                        .message("it says")
                        .build(),
                )
            });
            let err = control(&rule)
                .describe_job()
                .account_id("123456789012")
                .job_id("job-1")
                .send()
                .await
                .unwrap_err();
            let text = explain(&err, "describing job job-1", "s3:DescribeJob");
            assert!(text.starts_with("describing job job-1: "), "{text}");
            assert!(text.contains(wanted), "{code}: {text}");
            assert!(!text.contains("ServiceError"), "{text}");
        }
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(bare_etag("\"60e4\""), "60e4");
        assert_eq!(bare_etag("60e4"), "60e4");
    }

    /// `resolve_manifest` streams the manifest (issue 18, item 7) and checks it as `run`
    /// does: a bad row deep in a local file, or in an `s3://` one, is refused naming its line
    /// (and nothing is uploaded); rows with a version id on some rows only are refused; a
    /// good file is uploaded byte for byte with its MD5 as ETag (which a dry run predicts);
    /// version ids are found on a manifest that has them; the downloaded copy of an `s3://`
    /// manifest is removed. Against moto.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn manifests_are_checked_and_uploaded_as_streams() {
        use md5::Digest;
        let moto = s3batch_testkit::Moto::start();
        let s3 = moto.client().await;
        s3.create_bucket().bucket("man").send().await.unwrap();
        let dir = std::env::temp_dir().join(format!("s3batch-h14-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows = 20_000;
        let csv = |bad: Option<(usize, &str)>, version: bool| -> String {
            (1..=rows)
                .map(|line| match bad {
                    Some((n, row)) if n == line => format!("{row}\n"),
                    _ if version => format!("bench-bucket,photos/{line:09}.jpg,v{line}\n"),
                    _ => format!("bench-bucket,photos/2026/11/24/{line:09}.jpg\n"),
                })
                .collect()
        };
        let upload = Location::S3 {
            bucket: "man".into(),
            key: "up/m.csv".into(),
        };
        let uploaded = |key: &'static str| {
            let s3 = s3.clone();
            async move {
                match s3.get_object().bucket("man").key(key).send().await {
                    Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
                    Err(e) => panic!("GetObject {key}: {e:?}"),
                }
            }
        };

        // A bad key on line 17,345 of 20,000 (past the first 64 KiB buffers): refused, naming
        // the line; nothing uploaded.
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, csv(Some((17_345, "bench-bucket,bad%zz")), false)).unwrap();
        let local = Location::Local(bad.clone());
        let err = resolve_manifest(&local, Some(&upload), &s3, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("\n  line 17345: "), "{err}");
        assert_eq!(err.matches("\n  line ").count(), 1, "{err}");
        assert!(uploaded("up/m.csv").await.is_none(), "uploaded");

        // A version id on one row only: refused, naming that line and the first row's width.
        let mixed = dir.join("mixed.csv");
        std::fs::write(
            &mixed,
            csv(Some((19_999, "bench-bucket,photos/x.jpg,v1")), false),
        )
        .unwrap();
        let err = resolve_manifest(&Location::Local(mixed), Some(&upload), &s3, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "line 19999: 3 columns but line 1 has 2: give a versionId on all rows or on none"
            ),
            "{err}"
        );
        assert!(uploaded("up/m.csv").await.is_none(), "uploaded");

        // A good file: a dry run uploads nothing and predicts the ETag; then it is uploaded
        // as it is, its ETag its MD5.
        let good = dir.join("good.csv");
        let bytes = csv(None, false).into_bytes();
        std::fs::write(&good, &bytes).unwrap();
        let md5 = hex(&md5::Md5::digest(&bytes));
        let expect = |checked: &CheckedManifest, key: &str, versions: bool| {
            assert_eq!(checked.rows, rows);
            let want = ManifestSpec::csv(
                ManifestLocation {
                    object: ObjectArn::new("man", key),
                    version_id: None,
                    etag: checked.spec.location().unwrap().etag.clone(),
                },
                versions,
            );
            assert_eq!(checked.spec, want);
            want.location().unwrap().etag.clone()
        };
        let dry = resolve_manifest(&Location::Local(good.clone()), Some(&upload), &s3, false)
            .await
            .unwrap();
        assert_eq!(expect(&dry, "up/m.csv", false), md5);
        assert!(uploaded("up/m.csv").await.is_none(), "uploaded");
        let done = resolve_manifest(&Location::Local(good.clone()), Some(&upload), &s3, true)
            .await
            .unwrap();
        assert_eq!(expect(&done, "up/m.csv", false), md5);
        let got = uploaded("up/m.csv").await.expect("uploaded");
        assert!(
            got == bytes,
            "{} bytes uploaded, not the file's {}",
            got.len(),
            bytes.len()
        );

        // s3:// manifests: one with version ids (the ETag of the object read), one with a bad
        // row, named by its URL and line.
        let versioned = csv(None, true).into_bytes();
        let put = s3
            .put_object()
            .bucket("man")
            .key("v.csv")
            .body(versioned.clone().into())
            .send()
            .await
            .unwrap();
        let at = |key: &str| Location::S3 {
            bucket: "man".into(),
            key: key.into(),
        };
        let checked = resolve_manifest(&at("v.csv"), None, &s3, true)
            .await
            .unwrap();
        let etag = expect(&checked, "v.csv", true);
        assert_eq!(etag, bare_etag(put.e_tag().unwrap()));
        assert_eq!(etag, hex(&md5::Md5::digest(&versioned)));
        s3.put_object()
            .bucket("man")
            .key("bad.csv")
            .body(std::fs::read(&bad).unwrap().into())
            .send()
            .await
            .unwrap();
        let err = resolve_manifest(&at("bad.csv"), None, &s3, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s3://man/bad.csv") && err.contains("\n  line 17345: "),
            "{err}"
        );
        let err = resolve_manifest(&at("missing.csv"), None, &s3, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such object"), "{err}");
        // The downloaded copies are gone.
        let staged = std::env::temp_dir().join("s3batch-submit");
        let mine = format!("{}-", std::process::id());
        let left: Vec<_> = std::fs::read_dir(&staged)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&mine))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
