//! Creating a real S3 Batch Operations `LambdaInvoke` job (`cargo s3batch submit`).
//!
//! A [`JobRequest`] is the normalized request: every value the job is created with, already
//! resolved (the manifest's `ETag`, the account, the function's ARN). From it come
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
//! [`explain`] turns an SDK error into a message that names the fix.

use crate::manifest::{is_inventory, Manifest};
use crate::storage::Location;
use aws_sdk_s3control::operation::create_job::CreateJobInput;
use aws_sdk_s3control::types::{
    GeneratedManifestFormat, JobManifest, JobManifestFieldName, JobManifestFormat,
    JobManifestGenerator, JobManifestGeneratorFilter, JobManifestLocation, JobManifestSpec,
    JobOperation, JobReport, JobReportFormat, JobReportScope, KeyNameConstraint,
    LambdaInvokeOperation, S3JobManifestGenerator, S3ManifestOutputLocation, S3StorageClass, S3Tag,
};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where the job's objects come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ManifestSpec {
    /// An `S3BatchOperations_CSV_20180820` manifest object.
    Csv {
        /// Its bucket.
        bucket: String,
        /// Its key.
        key: String,
        /// Its ETag (quotes removed).
        etag: String,
        /// Its version, when pinned.
        version_id: Option<String>,
        /// Whether its rows carry a version id (a third column).
        with_version_ids: bool,
    },
    /// An S3 Inventory `manifest.json` (`S3InventoryReport_CSV_20161130`).
    Inventory {
        /// Its bucket.
        bucket: String,
        /// Its key.
        key: String,
        /// Its ETag (quotes removed).
        etag: String,
        /// Its version, when pinned.
        version_id: Option<String>,
    },
    /// A manifest S3 generates from a bucket listing (`S3JobManifestGenerator`).
    Generated(Generator),
}

/// The `S3JobManifestGenerator` options: the source bucket and the filters S3 offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Generator {
    /// The bucket whose objects the job runs on.
    pub source_bucket: String,
    /// Keys starting with any of these (none: every key).
    pub prefixes: Vec<String>,
    /// Keys ending with any of these.
    pub suffixes: Vec<String>,
    /// Keys containing any of these.
    pub substrings: Vec<String>,
    /// Objects created after this time (RFC 3339).
    pub created_after: Option<String>,
    /// Objects created before this time (RFC 3339).
    pub created_before: Option<String>,
    /// Objects larger than this many bytes.
    pub size_greater_than: Option<i64>,
    /// Objects smaller than this many bytes.
    pub size_less_than: Option<i64>,
    /// Objects in any of these storage classes (S3's names, e.g. `STANDARD`, `GLACIER`).
    pub storage_classes: Vec<String>,
    /// Where S3 writes the generated manifest (bucket, prefix); none: not kept.
    pub output: Option<(String, String)>,
}

/// Where the completion report goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSpec {
    /// The report bucket.
    pub bucket: String,
    /// The key prefix (the report goes in `<prefix>/job-<id>/`); empty for none.
    pub prefix: String,
    /// Only failed tasks (`FailedTasksOnly`) rather than all (`AllTasks`).
    pub failed_only: bool,
}

/// A `CreateJob` request for a `LambdaInvoke` job, every value resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRequest {
    /// The account the job belongs to.
    pub account_id: String,
    /// The function's ARN (qualified with a version or alias, ideally).
    pub function_arn: String,
    /// The invocation schema: `1.0` or `2.0`.
    pub schema: String,
    /// The user arguments (schema 2.0), sorted by name.
    pub user_arguments: BTreeMap<String, String>,
    /// The manifest.
    pub manifest: ManifestSpec,
    /// The completion report; none: no report.
    pub report: Option<ReportSpec>,
    /// The job's priority (higher runs first).
    pub priority: i32,
    /// The description, if any.
    pub description: Option<String>,
    /// Whether the job waits in `Suspended` until confirmed.
    pub confirmation_required: bool,
    /// The job's tags, in order.
    pub tags: Vec<(String, String)>,
    /// The role S3 runs the job with.
    pub role_arn: String,
}

/// The ARN of an object (`arn:aws:s3:::bucket/key`).
fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// The ARN of a bucket.
fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

impl JobRequest {
    /// The `ClientRequestToken`: `s3batch-` and the MD5 of the request's canonical JSON (40
    /// characters; S3 allows 64). The same request always gives the same token, so a
    /// retried `submit` returns the job it created the first time; any difference gives
    /// another one.
    pub fn token(&self) -> String {
        use md5::Digest;
        let canonical = serde_json::to_vec(self).expect("a request serializes");
        let digest = md5::Md5::digest(&canonical);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("s3batch-{hex}")
    }

    /// The `CreateJob` input that `submit` sends, with [`token`](Self::token) as its
    /// `ClientRequestToken` unless `token` overrides it.
    pub fn input(&self, token: Option<&str>) -> CreateJobInput {
        let mut lambda = LambdaInvokeOperation::builder()
            .function_arn(&self.function_arn)
            .invocation_schema_version(&self.schema);
        for (k, v) in &self.user_arguments {
            lambda = lambda.user_arguments(k, v);
        }
        let mut b = CreateJobInput::builder()
            .account_id(&self.account_id)
            .confirmation_required(self.confirmation_required)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(lambda.build())
                    .build(),
            )
            .report(match &self.report {
                Some(r) => {
                    let mut report = JobReport::builder()
                        .enabled(true)
                        .bucket(bucket_arn(&r.bucket))
                        .format(JobReportFormat::ReportCsv20180820)
                        .report_scope(if r.failed_only {
                            JobReportScope::FailedTasksOnly
                        } else {
                            JobReportScope::AllTasks
                        });
                    if !r.prefix.is_empty() {
                        report = report.prefix(&r.prefix);
                    }
                    report.build()
                }
                None => JobReport::builder().enabled(false).build(),
            })
            .priority(self.priority)
            .role_arn(&self.role_arn)
            .client_request_token(token.map_or_else(|| self.token(), str::to_owned))
            .set_description(self.description.clone());
        match &self.manifest {
            ManifestSpec::Csv {
                bucket,
                key,
                etag,
                version_id,
                with_version_ids,
            } => {
                let mut spec = JobManifestSpec::builder()
                    .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                    .fields(JobManifestFieldName::Bucket)
                    .fields(JobManifestFieldName::Key);
                if *with_version_ids {
                    spec = spec.fields(JobManifestFieldName::VersionId);
                }
                b = b.manifest(manifest(spec, bucket, key, etag, version_id));
            }
            ManifestSpec::Inventory {
                bucket,
                key,
                etag,
                version_id,
            } => {
                let spec = JobManifestSpec::builder()
                    .format(JobManifestFormat::S3InventoryReportCsv20161130);
                b = b.manifest(manifest(spec, bucket, key, etag, version_id));
            }
            ManifestSpec::Generated(g) => {
                b = b
                    .manifest_generator(JobManifestGenerator::S3JobManifestGenerator(generator(g)));
            }
        }
        for (k, v) in &self.tags {
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
        let lambda = if self.user_arguments.is_empty() {
            json!({"FunctionArn": self.function_arn, "InvocationSchemaVersion": self.schema})
        } else {
            json!({"FunctionArn": self.function_arn, "InvocationSchemaVersion": self.schema,
                   "UserArguments": self.user_arguments})
        };
        let mut args = vec![
            "aws s3control create-job".to_owned(),
            format!("--account-id {}", self.account_id),
            format!(
                "--operation {}",
                sh(&json!({ "LambdaInvoke": lambda }).to_string())
            ),
        ];
        match &self.manifest {
            ManifestSpec::Generated(g) => args.push(format!(
                "--manifest-generator {}",
                sh(&generator_json(g).to_string())
            )),
            m => args.push(format!("--manifest {}", sh(&manifest_json(m).to_string()))),
        }
        let report = match &self.report {
            Some(r) => {
                let mut v = json!({"Bucket": bucket_arn(&r.bucket), "Format": "Report_CSV_20180820",
                    "Enabled": true,
                    "ReportScope": if r.failed_only { "FailedTasksOnly" } else { "AllTasks" }});
                if !r.prefix.is_empty() {
                    v["Prefix"] = json!(r.prefix);
                }
                v
            }
            None => json!({"Enabled": false}),
        };
        args.push(format!("--report {}", sh(&report.to_string())));
        args.push(format!("--priority {}", self.priority));
        args.push(format!("--role-arn {}", sh(&self.role_arn)));
        args.push(format!(
            "--client-request-token {}",
            sh(&token.map_or_else(|| self.token(), str::to_owned))
        ));
        args.push(
            if self.confirmation_required {
                "--confirmation-required"
            } else {
                "--no-confirmation-required"
            }
            .to_owned(),
        );
        if let Some(d) = &self.description {
            args.push(format!("--description {}", sh(d)));
        }
        if !self.tags.is_empty() {
            let tags: Vec<Value> = self
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
        let mut statements = vec![json!({
            "Sid": "InvokeTheFunction",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": self.function_arn,
        })];
        match &self.manifest {
            ManifestSpec::Csv { bucket, key, .. } => statements.push(json!({
                "Sid": "ReadTheManifest",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": object_arn(bucket, key),
            })),
            ManifestSpec::Inventory { bucket, key, .. } => {
                // <destination prefix>/<source bucket>/<config>/<date>/manifest.json; the
                // data files are in <...>/<config>/data/.
                let parts: Vec<&str> = key.split('/').collect();
                let root = if parts.len() >= 3 {
                    parts[..parts.len() - 2].join("/") + "/*"
                } else {
                    "*".to_owned()
                };
                statements.push(json!({
                    "Sid": "ReadTheInventory",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": [object_arn(bucket, key), object_arn(bucket, &root)],
                }));
            }
            ManifestSpec::Generated(g) => {
                statements.push(json!({
                    "Sid": "ListTheSourceBucket",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn(&g.source_bucket),
                }));
                if let Some((bucket, prefix)) = &g.output {
                    statements.push(json!({
                        "Sid": "WriteTheGeneratedManifest",
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": object_arn(bucket, &format!("{}*", slash(prefix))),
                    }));
                }
            }
        }
        if let Some(r) = &self.report {
            statements.push(json!({
                "Sid": "WriteTheReport",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": object_arn(&r.bucket, &format!("{}*", slash(&r.prefix))),
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
    bucket: &str,
    key: &str,
    etag: &str,
    version_id: &Option<String>,
) -> JobManifest {
    JobManifest::builder()
        .spec(spec.build().expect("the format is set"))
        .location(
            JobManifestLocation::builder()
                .object_arn(object_arn(bucket, key))
                .e_tag(etag)
                .set_object_version_id(version_id.clone())
                .build()
                .expect("the ARN and ETag are set"),
        )
        .build()
}

fn manifest_json(m: &ManifestSpec) -> Value {
    let (format, fields, bucket, key, etag, version_id) = match m {
        ManifestSpec::Csv {
            bucket,
            key,
            etag,
            version_id,
            with_version_ids,
        } => {
            let mut fields = vec!["Bucket", "Key"];
            if *with_version_ids {
                fields.push("VersionId");
            }
            (
                "S3BatchOperations_CSV_20180820",
                Some(fields),
                bucket,
                key,
                etag,
                version_id,
            )
        }
        ManifestSpec::Inventory {
            bucket,
            key,
            etag,
            version_id,
        } => (
            "S3InventoryReport_CSV_20161130",
            None,
            bucket,
            key,
            etag,
            version_id,
        ),
        ManifestSpec::Generated(_) => unreachable!("a generated manifest has no location"),
    };
    let mut spec = json!({ "Format": format });
    if let Some(f) = fields {
        spec["Fields"] = json!(f);
    }
    let mut location = json!({"ObjectArn": object_arn(bucket, key), "ETag": etag});
    if let Some(v) = version_id {
        location["ObjectVersionId"] = json!(v);
    }
    json!({"Spec": spec, "Location": location})
}

fn date(s: &str) -> DateTime {
    DateTime::from_str(s, Format::DateTime).expect("checked by parse_date")
}

/// Checks an RFC 3339 time for the generator's filters.
pub fn parse_date(s: &str) -> Result<String, String> {
    DateTime::from_str(s, Format::DateTime)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z): {e}"))
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
        .source_bucket(bucket_arn(&g.source_bucket))
        .enable_manifest_output(g.output.is_some())
        .filter(filter.build());
    if let Some((bucket, prefix)) = &g.output {
        let mut out = S3ManifestOutputLocation::builder()
            .bucket(bucket_arn(bucket))
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
        "SourceBucket": bucket_arn(&g.source_bucket),
        "EnableManifestOutput": g.output.is_some(),
        "Filter": Value::Object(filter),
    });
    if let Some((bucket, prefix)) = &g.output {
        let mut out = json!({"Bucket": bucket_arn(bucket),
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

/// What the manifest check found: the rows, and whether they carry version ids.
#[derive(Debug)]
pub struct CheckedManifest {
    /// The manifest's rows.
    pub manifest: Manifest,
    /// The manifest for the request.
    pub spec: ManifestSpec,
}

/// Resolves the manifest of a job: a local CSV is checked and uploaded to `upload`
/// (PutObject gives its ETag); an `s3://` CSV or Inventory `manifest.json` is read and
/// checked the way `run` reads it, and its ETag taken from HeadObject. With `create` false
/// (a dry run) nothing is uploaded: the ETag is the local file's MD5, as S3 would give it.
pub async fn resolve_manifest(
    location: &Location,
    upload: Option<&Location>,
    s3: &aws_sdk_s3::Client,
    create: bool,
) -> Result<CheckedManifest, String> {
    match location {
        Location::Local(path) => {
            let Some(Location::S3 { bucket, key }) = upload else {
                return Err(format!(
                    "{} is a local file: S3 reads the manifest from S3, so name where to \
                     upload it with --manifest-upload s3://BUCKET/KEY (or upload it yourself \
                     and pass --manifest s3://BUCKET/KEY)",
                    path.display()
                ));
            };
            if key.is_empty() || key.ends_with('/') {
                return Err(format!(
                    "--manifest-upload s3://{bucket}/{key} names no object key"
                ));
            }
            let bytes =
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            if is_inventory(&path.to_string_lossy(), &bytes) {
                return Err(format!(
                    "{} is an S3 Inventory manifest.json: S3 reads it with its data files \
                     from the inventory's bucket, so pass it as --manifest s3://BUCKET/KEY",
                    path.display()
                ));
            }
            let manifest = Manifest::from_csv(&bytes).map_err(|e| e.to_string())?;
            let etag = if create {
                let out = s3
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.into())
                    .send()
                    .await
                    .map_err(|e| {
                        explain(
                            &e,
                            &format!("uploading the manifest to s3://{bucket}/{key}"),
                            "s3:PutObject",
                        )
                    })?;
                bare_etag(out.e_tag().unwrap_or_default())
            } else {
                use md5::Digest;
                md5::Md5::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            };
            Ok(CheckedManifest {
                spec: ManifestSpec::Csv {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    etag,
                    version_id: None,
                    with_version_ids: with_version_ids(&manifest)?,
                },
                manifest,
            })
        }
        Location::S3 { bucket, key } => {
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    explain(
                        &e,
                        &format!("reading the manifest s3://{bucket}/{key}"),
                        "s3:GetObject",
                    )
                })?;
            let etag = bare_etag(head.e_tag().unwrap_or_default());
            let manifest = Manifest::load(location, s3)
                .await
                .map_err(|e| e.to_string())?;
            let json = key.ends_with(".json") || {
                // An Inventory manifest under another name: look at the first bytes.
                let first = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .range("bytes=0-63")
                    .send()
                    .await
                    .map_err(|e| {
                        explain(&e, &format!("reading s3://{bucket}/{key}"), "s3:GetObject")
                    })?
                    .body
                    .collect()
                    .await
                    .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?
                    .into_bytes();
                is_inventory(key, &first)
            };
            let spec = if json {
                ManifestSpec::Inventory {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    etag,
                    version_id: None,
                }
            } else {
                ManifestSpec::Csv {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    etag,
                    version_id: None,
                    with_version_ids: with_version_ids(&manifest)?,
                }
            };
            Ok(CheckedManifest { manifest, spec })
        }
    }
}

/// Whether the rows carry version ids; S3 wants all or none.
fn with_version_ids(m: &Manifest) -> Result<bool, String> {
    let with = m
        .entries()
        .iter()
        .filter(|e| e.version_id.is_some())
        .count();
    if with != 0 && with != m.len() {
        return Err(format!(
            "{with} of the manifest's {} rows have a version id: S3 needs all rows with one \
             or none",
            m.len()
        ));
    }
    Ok(with != 0)
}

/// Checks that the report bucket exists and can be reached (HeadBucket).
pub async fn check_report_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    s3.head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            match e.code() {
                Some("NotFound" | "NoSuchBucket") => format!(
                    "the report bucket {bucket} does not exist (in this region): create it                      (aws s3 mb s3://{bucket}), or name another with --report s3://BUCKET/PREFIX"
                ),
                _ => explain(
                    &e,
                    &format!("checking the report bucket {bucket}"),
                    "s3:ListBucket on the report bucket",
                ),
            }
        })
}

/// The caller's account, from STS `GetCallerIdentity`.
pub async fn resolve_account(sts: &aws_sdk_sts::Client) -> Result<String, String> {
    let out = sts.get_caller_identity().send().await.map_err(|e| {
        explain(
            &e,
            "finding your account with STS GetCallerIdentity (or pass --account-id)",
            "sts:GetCallerIdentity",
        )
    })?;
    out.account
        .ok_or_else(|| "STS GetCallerIdentity returned no account: pass --account-id".into())
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
) -> Result<ResolvedFunction, String> {
    if let Some(region) = function
        .strip_prefix("arn:")
        .and_then(|r| r.split(':').nth(2))
    {
        if region != job_region {
            return Err(other_region(function, region, job_region));
        }
    }
    let out = lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_lambda::error::ProvideErrorMetadata;
            if e.code() == Some("ResourceNotFoundException") {
                format!(
                    "function {function} not found in region {job_region}: a job invokes \
                     functions of its own region; deploy it there, or submit the job in the \
                     function's region (--region)"
                )
            } else {
                explain(
                    &e,
                    &format!("looking up function {function}"),
                    "lambda:GetFunction",
                )
            }
        })?;
    let config = out
        .configuration
        .ok_or_else(|| format!("GetFunction returned no configuration for {function}"))?;
    let mut arn = config
        .function_arn
        .ok_or_else(|| format!("GetFunction returned no ARN for {function}"))?;
    let region = arn.split(':').nth(3).unwrap_or_default().to_owned();
    if region != job_region {
        return Err(other_region(&arn, &region, job_region));
    }
    let mut warnings = Vec::new();
    // arn:aws:lambda:region:account:function:name[:qualifier]
    let qualifier = arn.split(':').nth(7).map(str::to_owned);
    let given = function.rsplit(':').next().unwrap_or_default();
    let qualifier = qualifier.or_else(|| {
        (function.contains(':') && !function.starts_with("arn:")).then(|| given.to_owned())
    });
    match qualifier.as_deref() {
        None => warnings.push(format!(
            "{arn} is unqualified: the job invokes $LATEST, and a deployment during the job \
             switches it to the new code; pin a version or an alias (NAME:VERSION)"
        )),
        Some("$LATEST") => warnings.push(format!(
            "{arn} is $LATEST: a deployment during the job switches it to the new code; pin \
             a version or an alias"
        )),
        Some(q) if !arn.ends_with(&format!(":{q}")) => arn = format!("{arn}:{q}"),
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

fn other_region(function: &str, region: &str, job_region: &str) -> String {
    format!(
        "function {function} is in region {region}, the job in {job_region}: a job invokes \
         functions of its own region; submit in {region} (--region {region}) or deploy the \
         function in {job_region}"
    )
}

/// A message for an SDK error that names the fix: a missing permission names the `action`,
/// a missing bucket or key says which, an unknown job the region; otherwise the service's
/// code and message (never the whole debug dump). `doing` says what failed.
pub fn explain<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>, doing: &str, action: &str) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default();
    match (code, e) {
        ("AccessDenied" | "AccessDeniedException" | "Forbidden", _) => format!(
            "{doing}: access denied ({message}); the caller needs {action} (see README: \
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
        (_, SdkError::ServiceError(s)) => {
            format!("{doing}: HTTP {:?} with no error code", s.raw())
        }
        (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => format!(
            "{doing}: the endpoint could not be reached ({}); check --endpoint-url / the \
             region and your network",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
        _ => format!("{doing}: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

/// The AWS configuration for a client of `endpoint` (placeholder credentials on loopback,
/// as for `run`) in `region` (default: the configuration's, else `us-east-1`).
pub async fn aws_config(endpoint: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let config = crate::aws::load(endpoint).await;
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
    if let Some(url) = endpoint.filter(|e| crate::aws::is_loopback(e)) {
        b = b.endpoint_resolver(StaticEndpoint(url.to_owned()));
    }
    aws_sdk_s3control::Client::from_conf(b.build())
}

/// Sends every request to one URL, whatever the account id.
#[derive(Debug)]
struct StaticEndpoint(String);

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
