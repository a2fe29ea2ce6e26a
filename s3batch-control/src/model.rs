//! The S3 Control job model: one typed `CreateJob` request ([`JobSpec`]) with S3's limits
//! ([`JobSpec::validate`]), and the ARNs it names, each parsed once ([`BucketArn`],
//! [`ObjectArn`], [`FunctionArn`]).
//!
//! Both sides use it: `serve` reads a `CreateJobRequest` body into a [`JobSpec`]
//! ([`crate::xml::parse_create_job`]) and runs it; `submit` builds one from its arguments and
//! sends it ([`crate::submit::JobRequest`]: the `aws-sdk-s3control` input and the equivalent
//! `aws s3control create-job` command). The schema is core's [`Schema`], the user arguments
//! the engine's [`UserArguments`] (no name twice, S3's limits) and the report scope the
//! engine's [`ReportScope`].
//!
//! ```
//! use s3batch_control::model::{BucketArn, FunctionArn, ObjectArn};
//! let f: FunctionArn = "arn:aws:lambda:us-east-1:123456789012:function:thumbs:live".parse().unwrap();
//! assert_eq!((f.name(), f.qualifier()), ("thumbs", Some("live")));
//! assert_eq!(f.to_string(), "arn:aws:lambda:us-east-1:123456789012:function:thumbs:live");
//! let o: ObjectArn = "arn:aws:s3:::man/jobs/m.csv".parse().unwrap();
//! assert_eq!((o.bucket(), o.key()), ("man", "jobs/m.csv"));
//! assert_eq!(BucketArn::new("reports").to_string(), "arn:aws:s3:::reports");
//! let err = "arn:aws:s3:::man".parse::<ObjectArn>().unwrap_err();
//! assert_eq!(err.to_string(), "\"arn:aws:s3:::man\" is not an object ARN (arn:aws:s3:::bucket/key): it names no object key");
//! ```

pub use s3batch_job::{ReportScope, Schema, UserArguments, UserArgumentsError};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The account of a local S3 Control endpoint (`cargo s3batch serve`) when none is given:
/// the one moto and the AWS documentation's examples use. A local endpoint answers no STS.
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// The ARN a job invokes `function` (a name, `name:qualifier` or an ARN) by, when the Lambda
/// endpoint is local (`cargo lambda watch` has no `GetFunction`): an ARN is kept as it is, a
/// name becomes `arn:aws:lambda:<region>:<account>:function:<name>`.
///
/// ```
/// use s3batch_control::model::local_function_arn;
/// assert_eq!(
///     local_function_arn("my-task", "us-east-1", "123456789012"),
///     "arn:aws:lambda:us-east-1:123456789012:function:my-task"
/// );
/// let arn = "arn:aws:lambda:eu-west-1:111122223333:function:f:live";
/// assert_eq!(local_function_arn(arn, "us-east-1", "123456789012"), arn);
/// ```
pub fn local_function_arn(function: &str, region: &str, account: &str) -> String {
    if function.starts_with("arn:") {
        function.to_owned()
    } else {
        format!("arn:aws:lambda:{region}:{account}:function:{function}")
    }
}

// ---------------------------------------------------------------------------------------
// ARNs

/// Which kind of ARN was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnKind {
    /// `arn:aws:s3:::bucket`.
    Bucket,
    /// `arn:aws:s3:::bucket/key`.
    Object,
    /// `arn:aws:lambda:region:account:function:NAME[:QUALIFIER]` (or `NAME[:QUALIFIER]`).
    Function,
}

impl fmt::Display for ArnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArnKind::Bucket => "a bucket ARN (arn:aws:s3:::bucket)",
            ArnKind::Object => "an object ARN (arn:aws:s3:::bucket/key)",
            ArnKind::Function => {
                "a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER])"
            }
        })
    }
}

/// The part of an ARN that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnProblem {
    /// It does not start with `arn:`.
    #[error("it does not start with \"arn:\"")]
    NotAnArn,
    /// It has fewer than the six parts of an ARN.
    #[error(
        "it has {0} of the 6 colon-separated parts (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
    )]
    Parts(usize),
    /// The partition (`aws`, `aws-cn`, ...) is empty.
    #[error("its partition is empty")]
    EmptyPartition,
    /// The service is not the expected one.
    #[error("its service is {found:?}, not {expected:?}")]
    Service {
        /// The service found.
        found: String,
        /// `s3` or `lambda`.
        expected: &'static str,
    },
    /// No bucket name.
    #[error("it names no bucket")]
    NoBucket,
    /// A bucket ARN with a key.
    #[error("it names an object, not a bucket")]
    HasKey,
    /// An object ARN without a key.
    #[error("it names no object key")]
    NoKey,
    /// A Lambda ARN whose resource is not `function:…`.
    #[error("its resource type is {0:?}, not \"function\"")]
    NotAFunction(String),
    /// No function name.
    #[error("it names no function")]
    NoName,
    /// `NAME:` with nothing after it.
    #[error("its qualifier (version or alias, after NAME:) is empty")]
    EmptyQualifier,
    /// More parts after the qualifier.
    #[error("it has {0:?} after the qualifier")]
    Trailing(String),
}

/// An ARN that could not be read: the ARN, what it should have been, and the part that is
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arn:?} is not {kind}: {problem}")]
pub struct ArnError {
    /// The text given.
    pub arn: String,
    /// What was expected.
    pub kind: ArnKind,
    /// What is wrong.
    pub problem: ArnProblem,
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` split, the service checked.
fn split_arn<'a>(
    arn: &'a str,
    kind: ArnKind,
    service: &'static str,
) -> Result<[&'a str; 4], ArnError> {
    let err = |problem| ArnError {
        arn: arn.to_owned(),
        kind,
        problem,
    };
    if !arn.starts_with("arn:") {
        return Err(err(ArnProblem::NotAnArn));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 {
        return Err(err(ArnProblem::Parts(parts.len())));
    }
    if parts[1].is_empty() {
        return Err(err(ArnProblem::EmptyPartition));
    }
    if parts[2] != service {
        return Err(err(ArnProblem::Service {
            found: parts[2].to_owned(),
            expected: service,
        }));
    }
    Ok([parts[1], parts[3], parts[4], parts[5]])
}

/// A bucket ARN, `arn:PARTITION:s3:REGION:ACCOUNT:BUCKET` (S3 writes region and account
/// empty: `arn:aws:s3:::bucket`). [`Display`](fmt::Display) writes it back as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct BucketArn {
    partition: String,
    region: String,
    account: String,
    bucket: String,
}

impl BucketArn {
    /// `arn:aws:s3:::<bucket>`.
    pub fn new(bucket: impl Into<String>) -> BucketArn {
        BucketArn {
            partition: "aws".into(),
            region: String::new(),
            account: String::new(),
            bucket: bucket.into(),
        }
    }
    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
    /// The ARN of the object `key` in this bucket (same partition, region and account).
    pub fn object(&self, key: impl Into<String>) -> ObjectArn {
        ObjectArn {
            partition: self.partition.clone(),
            region: self.region.clone(),
            account: self.account.clone(),
            bucket: self.bucket.clone(),
            key: key.into(),
        }
    }
}

impl FromStr for BucketArn {
    type Err = ArnError;
    fn from_str(arn: &str) -> Result<Self, ArnError> {
        let kind = ArnKind::Bucket;
        let [partition, region, account, bucket] = split_arn(arn, kind, "s3")?;
        let problem = if bucket.is_empty() {
            Some(ArnProblem::NoBucket)
        } else if bucket.contains('/') {
            Some(ArnProblem::HasKey)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ArnError {
                arn: arn.to_owned(),
                kind,
                problem,
            });
        }
        Ok(BucketArn {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            bucket: bucket.into(),
        })
    }
}

impl fmt::Display for BucketArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:s3:{}:{}:{}",
            self.partition, self.region, self.account, self.bucket
        )
    }
}

impl From<BucketArn> for String {
    fn from(arn: BucketArn) -> String {
        arn.to_string()
    }
}

/// An object ARN, `arn:PARTITION:s3:REGION:ACCOUNT:BUCKET/KEY`. The object's version is not
/// part of an ARN: S3 Control gives it beside it (`ObjectVersionId`, [`ManifestLocation`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct ObjectArn {
    partition: String,
    region: String,
    account: String,
    bucket: String,
    key: String,
}

impl ObjectArn {
    /// `arn:aws:s3:::<bucket>/<key>`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> ObjectArn {
        BucketArn::new(bucket).object(key)
    }
    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
    /// The object's key (everything after the first `/`).
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl FromStr for ObjectArn {
    type Err = ArnError;
    fn from_str(arn: &str) -> Result<Self, ArnError> {
        let kind = ArnKind::Object;
        let [partition, region, account, resource] = split_arn(arn, kind, "s3")?;
        let err = |problem| ArnError {
            arn: arn.to_owned(),
            kind,
            problem,
        };
        match resource.split_once('/') {
            None if resource.is_empty() => Err(err(ArnProblem::NoBucket)),
            Some(("", _)) => Err(err(ArnProblem::NoBucket)),
            None | Some((_, "")) => Err(err(ArnProblem::NoKey)),
            Some((bucket, key)) => Ok(ObjectArn {
                partition: partition.into(),
                region: region.into(),
                account: account.into(),
                bucket: bucket.into(),
                key: key.into(),
            }),
        }
    }
}

impl fmt::Display for ObjectArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:s3:{}:{}:{}/{}",
            self.partition, self.region, self.account, self.bucket, self.key
        )
    }
}

impl From<ObjectArn> for String {
    fn from(arn: ObjectArn) -> String {
        arn.to_string()
    }
}

/// A Lambda function as `FunctionArn` names it, in any of the forms Lambda accepts:
/// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`,
/// `ACCOUNT:function:NAME[:QUALIFIER]` or `NAME[:QUALIFIER]`. [`Display`](fmt::Display)
/// writes it back in the form it was read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct FunctionArn {
    /// `(partition, region)` of a full ARN.
    arn: Option<(String, String)>,
    account: Option<String>,
    name: String,
    qualifier: Option<String>,
}

impl FunctionArn {
    /// The function's name (what a local Invoke endpoint such as `cargo lambda watch` serves
    /// it by).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The version or alias, when qualified.
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }
    /// The region, when a full ARN gives it.
    pub fn region(&self) -> Option<&str> {
        self.arn.as_ref().map(|(_, r)| r.as_str())
    }
    /// The account, when given.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

impl FromStr for FunctionArn {
    type Err = ArnError;
    fn from_str(text: &str) -> Result<Self, ArnError> {
        let kind = ArnKind::Function;
        let err = |problem| ArnError {
            arn: text.to_owned(),
            kind,
            problem,
        };
        let (arn, account, rest) = if text.starts_with("arn:") {
            let [partition, region, account, resource] = split_arn(text, kind, "lambda")?;
            (
                Some((partition.to_owned(), region.to_owned())),
                Some(account.to_owned()),
                resource.to_owned(),
            )
        } else {
            match text.split_once(":function:") {
                Some((account, rest)) if !account.contains(':') => {
                    (None, Some(account.to_owned()), format!("function:{rest}"))
                }
                _ => (None, None, format!("function:{text}")),
            }
        };
        if rest == "function" {
            return Err(err(ArnProblem::NoName));
        }
        let Some(rest) = rest.strip_prefix("function:") else {
            let kind = rest.split(':').next().unwrap_or_default();
            return Err(err(ArnProblem::NotAFunction(kind.to_owned())));
        };
        let mut parts = rest.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err(err(ArnProblem::NoName));
        }
        let qualifier = parts.next();
        if qualifier == Some("") {
            return Err(err(ArnProblem::EmptyQualifier));
        }
        if let Some(trailing) = parts.next() {
            return Err(err(ArnProblem::Trailing(trailing.to_owned())));
        }
        Ok(FunctionArn {
            arn,
            account,
            name: name.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }
}

impl fmt::Display for FunctionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((partition, region)) = &self.arn {
            write!(f, "arn:{partition}:lambda:{region}:")?;
        }
        if let Some(account) = &self.account {
            write!(f, "{account}:function:")?;
        }
        f.write_str(&self.name)?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

impl From<FunctionArn> for String {
    fn from(arn: FunctionArn) -> String {
        arn.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// The job

/// `Spec.Format` of a CSV manifest.
pub const CSV_MANIFEST: &str = "S3BatchOperations_CSV_20180820";
/// `Spec.Format` of an S3 Inventory `manifest.json`.
pub const INVENTORY_MANIFEST: &str = "S3InventoryReport_CSV_20161130";
/// `Report.Format`, the only one S3 has.
pub const REPORT_FORMAT: &str = "Report_CSV_20180820";

/// A column of a CSV manifest (`Spec.Fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ManifestField {
    /// A column that is not read.
    Ignore,
    /// The bucket.
    Bucket,
    /// The key (URL-encoded).
    Key,
    /// The object's version.
    VersionId,
}

impl ManifestField {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ManifestField::Ignore => "Ignore",
            ManifestField::Bucket => "Bucket",
            ManifestField::Key => "Key",
            ManifestField::VersionId => "VersionId",
        }
    }
}

impl FromStr for ManifestField {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        Ok(match s {
            "Ignore" => ManifestField::Ignore,
            "Bucket" => ManifestField::Bucket,
            "Key" => ManifestField::Key,
            "VersionId" => ManifestField::VersionId,
            other => return Err(SpecError::ManifestField(other.to_owned())),
        })
    }
}

/// `Manifest.Location`: the manifest object, its version and its `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestLocation {
    /// `ObjectArn`.
    pub object: ObjectArn,
    /// `ObjectVersionId`, when pinned.
    pub version_id: Option<String>,
    /// `ETag`, as given (S3 accepts it quoted or not).
    pub etag: String,
}

/// Where the job's objects come from: `Manifest` (CSV or Inventory) or `ManifestGenerator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ManifestSpec {
    /// An `S3BatchOperations_CSV_20180820` manifest object.
    Csv {
        /// `Spec.Fields`, the column order (none given: `Bucket,Key[,VersionId]`).
        fields: Vec<ManifestField>,
        /// `Location`.
        location: ManifestLocation,
    },
    /// An S3 Inventory `manifest.json` (`S3InventoryReport_CSV_20161130`).
    Inventory {
        /// `Spec.Fields` as given (S3 reads an inventory's columns from its own schema).
        fields: Vec<ManifestField>,
        /// `Location`.
        location: ManifestLocation,
    },
    /// A manifest S3 generates from a bucket listing (`S3JobManifestGenerator`).
    Generated(Generator),
}

impl ManifestSpec {
    /// A CSV manifest with columns `Bucket,Key`, or `Bucket,Key,VersionId`.
    pub fn csv(location: ManifestLocation, with_version_ids: bool) -> ManifestSpec {
        let mut fields = vec![ManifestField::Bucket, ManifestField::Key];
        if with_version_ids {
            fields.push(ManifestField::VersionId);
        }
        ManifestSpec::Csv { fields, location }
    }
    /// `Manifest.Location` (none for a generated manifest).
    pub fn location(&self) -> Option<&ManifestLocation> {
        match self {
            ManifestSpec::Csv { location, .. } | ManifestSpec::Inventory { location, .. } => {
                Some(location)
            }
            ManifestSpec::Generated(_) => None,
        }
    }
    /// `Spec.Fields` (empty for a generated manifest).
    pub fn fields(&self) -> &[ManifestField] {
        match self {
            ManifestSpec::Csv { fields, .. } | ManifestSpec::Inventory { fields, .. } => fields,
            ManifestSpec::Generated(_) => &[],
        }
    }
    /// `Spec.Format` (none for a generated manifest).
    pub fn format(&self) -> Option<&'static str> {
        match self {
            ManifestSpec::Csv { .. } => Some(CSV_MANIFEST),
            ManifestSpec::Inventory { .. } => Some(INVENTORY_MANIFEST),
            ManifestSpec::Generated(_) => None,
        }
    }
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

/// The name of a report scope on the wire: `AllTasks` or `FailedTasksOnly`.
pub const fn report_scope_name(scope: ReportScope) -> &'static str {
    match scope {
        ReportScope::AllTasks => "AllTasks",
        ReportScope::FailedTasksOnly => "FailedTasksOnly",
    }
}

/// A report scope read from the wire; anything else is a [`SpecError::ReportScope`].
///
/// ```
/// use s3batch_control::model::{parse_report_scope, report_scope_name, ReportScope};
/// assert_eq!(parse_report_scope("FailedTasksOnly").unwrap(), ReportScope::FailedTasksOnly);
/// assert_eq!(report_scope_name(ReportScope::AllTasks), "AllTasks");
/// assert!(parse_report_scope("Failed").is_err());
/// ```
pub fn parse_report_scope(s: &str) -> Result<ReportScope, SpecError> {
    match s {
        "AllTasks" => Ok(ReportScope::AllTasks),
        "FailedTasksOnly" => Ok(ReportScope::FailedTasksOnly),
        other => Err(SpecError::ReportScope(other.to_owned())),
    }
}

/// An invocation schema read from the wire; anything but `1.0` or `2.0` is a
/// [`SpecError::Schema`].
pub fn parse_schema(s: &str) -> Result<Schema, SpecError> {
    s.parse::<Schema>()
        .map_err(|_| SpecError::Schema(s.to_owned()))
}

fn serialize_scope<S: serde::Serializer>(
    scope: &Option<ReportScope>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_some(&scope.map(report_scope_name))
}

/// `Report`: where the completion report goes, and which tasks it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSpec {
    /// `Enabled`.
    pub enabled: bool,
    /// `Bucket` (required when enabled).
    pub bucket: Option<BucketArn>,
    /// Whether `Format` (`Report_CSV_20180820`, the only one) was given.
    pub format: bool,
    /// `Prefix`: the report goes in `<prefix>/job-<id>/`.
    pub prefix: Option<String>,
    /// `ReportScope` (not given: all tasks).
    #[serde(serialize_with = "serialize_scope")]
    pub scope: Option<ReportScope>,
}

impl ReportSpec {
    /// No report (`Enabled` false).
    pub fn disabled() -> ReportSpec {
        ReportSpec {
            enabled: false,
            bucket: None,
            format: false,
            prefix: None,
            scope: None,
        }
    }
    /// A report in `bucket` under `prefix` (empty: none) with the tasks of `scope`.
    pub fn to(bucket: BucketArn, prefix: &str, scope: ReportScope) -> ReportSpec {
        ReportSpec {
            enabled: true,
            bucket: Some(bucket),
            format: true,
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            scope: Some(scope),
        }
    }
    /// The bucket, prefix (empty for none) and scope of an enabled report.
    pub fn destination(&self) -> Option<(&BucketArn, &str, ReportScope)> {
        match (&self.bucket, self.enabled) {
            (Some(bucket), true) => Some((
                bucket,
                self.prefix.as_deref().unwrap_or_default(),
                self.scope.unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

/// `Operation.LambdaInvoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaInvoke {
    /// `FunctionArn`.
    pub function: FunctionArn,
    /// `InvocationSchemaVersion` (1.0 when not given).
    pub schema: Schema,
    /// `UserArguments` (schema 2.0 only).
    pub user_arguments: UserArguments,
}

/// A `CreateJob` request for a `LambdaInvoke` job, typed: what `serve` reads and `submit`
/// sends. [`validate`](JobSpec::validate) checks it against S3's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSpec {
    /// `Operation`.
    pub operation: LambdaInvoke,
    /// `Manifest` or `ManifestGenerator`.
    pub manifest: ManifestSpec,
    /// `Report`.
    pub report: ReportSpec,
    /// `Priority` (higher runs first; 0 or more).
    pub priority: i32,
    /// `ConfirmationRequired`: the job waits in `Suspended` until confirmed.
    pub confirmation_required: bool,
    /// `ClientRequestToken`; none: the client derives one from the request
    /// ([`JobRequest::token`](crate::submit::JobRequest::token)).
    #[serde(skip)]
    pub client_request_token: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `RoleArn`: the role S3 runs the job with.
    pub role_arn: String,
    /// `Tags`, in order.
    pub tags: Vec<(String, String)>,
}

/// A `CreateJob` request S3 would refuse; the message names the field, the value and the
/// limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A text outside S3's length limits.
    #[error("CreateJobRequest.{field} must be {min} to {max} characters; it has {chars}")]
    Length {
        /// The field, e.g. `Description`.
        field: &'static str,
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
        /// Its length in characters.
        chars: usize,
    },
    /// A priority that is not 0 to 2147483647 (the text given).
    #[error("CreateJobRequest.Priority is {0:?}; give 0 to 2147483647")]
    Priority(String),
    /// User arguments S3 refuses (repeated, too many, too long, or with schema 1.0).
    #[error("CreateJobRequest.Operation.LambdaInvoke.UserArguments: {0}")]
    UserArguments(UserArgumentsError),
    /// An enabled report without a bucket.
    #[error("CreateJobRequest.Report.Bucket is missing (the report is enabled)")]
    ReportBucket,
    /// An ARN that is not of the kind the field takes.
    #[error("CreateJobRequest.{field} {error}")]
    Arn {
        /// The field, e.g. `Report.Bucket`.
        field: &'static str,
        /// What is wrong with it.
        error: ArnError,
    },
    /// An invocation schema that is not 1.0 or 2.0.
    #[error(
        "CreateJobRequest.Operation.LambdaInvoke.InvocationSchemaVersion is {0:?}; use 1.0 or 2.0"
    )]
    Schema(String),
    /// A report scope that is not `AllTasks` or `FailedTasksOnly`.
    #[error("CreateJobRequest.Report.ReportScope is {0:?}; use AllTasks or FailedTasksOnly")]
    ReportScope(String),
    /// A report format that is not `Report_CSV_20180820`.
    #[error("CreateJobRequest.Report.Format is {0:?}; use Report_CSV_20180820")]
    ReportFormat(String),
    /// A manifest format S3 does not have.
    #[error(
        "CreateJobRequest.Manifest.Spec.Format is {0:?}; use S3BatchOperations_CSV_20180820 \
         or S3InventoryReport_CSV_20161130"
    )]
    ManifestFormat(String),
    /// A manifest column S3 does not have.
    #[error(
        "CreateJobRequest.Manifest.Spec.Fields has {0:?}; use Ignore, Bucket, Key or VersionId"
    )]
    ManifestField(String),
}

/// `value` has `min` to `max` characters, or a [`SpecError::Length`] naming `field`.
pub fn check_length(
    value: &str,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<(), SpecError> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(SpecError::Length {
            field,
            min,
            max,
            chars,
        });
    }
    Ok(())
}

impl JobSpec {
    /// Checks the request against S3's limits, as `CreateJob` does: `FunctionArn` of 1 to
    /// 1,024 characters; user arguments only with schema 2.0 (their count and lengths are
    /// kept by [`UserArguments`] itself); an enabled report has a bucket and a `Prefix` of 1
    /// to 512 characters; the manifest's `ETag` 1 to 1,024; `Description` 1 to 256;
    /// `Priority` 0 or more; `ClientRequestToken` 1 to 64.
    ///
    /// ```
    /// use s3batch_control::model::*;
    /// let location = ManifestLocation {
    ///     object: ObjectArn::new("man", "m.csv"),
    ///     version_id: None,
    ///     etag: "60e460c9d1046e73f7dde5043ac3ae85".into(),
    /// };
    /// let mut spec = JobSpec {
    ///     operation: LambdaInvoke {
    ///         function: "arn:aws:lambda:us-east-1:123456789012:function:fn:3".parse().unwrap(),
    ///         schema: Schema::V2,
    ///         user_arguments: UserArguments::new([("size", "256")]).unwrap(),
    ///     },
    ///     manifest: ManifestSpec::csv(location, false),
    ///     report: ReportSpec::to(BucketArn::new("rep"), "batch", ReportScope::AllTasks),
    ///     priority: 10,
    ///     confirmation_required: false,
    ///     client_request_token: None,
    ///     description: None,
    ///     role_arn: "arn:aws:iam::123456789012:role/batch".into(),
    ///     tags: vec![],
    /// };
    /// assert_eq!(spec.validate(), Ok(()));
    /// spec.operation.schema = Schema::V1;
    /// assert!(matches!(spec.validate(), Err(SpecError::UserArguments(_))));
    /// ```
    pub fn validate(&self) -> Result<(), SpecError> {
        let op = &self.operation;
        check_length(
            &op.function.to_string(),
            "Operation.LambdaInvoke.FunctionArn",
            1,
            1024,
        )?;
        op.user_arguments
            .check_schema(op.schema)
            .map_err(SpecError::UserArguments)?;
        if self.report.enabled && self.report.bucket.is_none() {
            return Err(SpecError::ReportBucket);
        }
        if let Some(p) = &self.report.prefix {
            check_length(p, "Report.Prefix", 1, 512)?;
        }
        if let Some(location) = self.manifest.location() {
            check_length(&location.etag, "Manifest.Location.ETag", 1, 1024)?;
        }
        if let Some(d) = &self.description {
            check_length(d, "Description", 1, 256)?;
        }
        if self.priority < 0 {
            return Err(SpecError::Priority(self.priority.to_string()));
        }
        if let Some(t) = &self.client_request_token {
            check_length(t, "ClientRequestToken", 1, 64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip() {
        for text in [
            "arn:aws:s3:::reports",
            "arn:aws-cn:s3:::reports",
            "arn:aws:s3:us-east-1:0123456788:awsexamplebucket",
        ] {
            let arn: BucketArn = text.parse().unwrap();
            assert_eq!(arn.to_string(), text);
        }
        let b: BucketArn = "arn:aws:s3:us-east-1:0123456788:awsexamplebucket"
            .parse()
            .unwrap();
        assert_eq!(b.bucket(), "awsexamplebucket");
        assert_eq!(
            b.object("x/y").to_string(),
            "arn:aws:s3:us-east-1:0123456788:awsexamplebucket/x/y"
        );

        for (text, bucket, key) in [
            ("arn:aws:s3:::man/manifest.csv", "man", "manifest.csv"),
            ("arn:aws-cn:s3:::b/dir/m a.csv", "b", "dir/m a.csv"),
            ("arn:aws:s3:::b/a:b/c", "b", "a:b/c"),
        ] {
            let arn: ObjectArn = text.parse().unwrap();
            assert_eq!((arn.bucket(), arn.key()), (bucket, key));
            assert_eq!(arn.to_string(), text);
        }
        assert_eq!(
            ObjectArn::new("man", "jobs/m.csv").to_string(),
            "arn:aws:s3:::man/jobs/m.csv"
        );

        for (text, name, qualifier, region, account) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:hello",
                "hello",
                None,
                Some("us-east-1"),
                Some("123456789012"),
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:hello:$LATEST",
                "hello",
                Some("$LATEST"),
                Some("eu-west-1"),
                Some("123456789012"),
            ),
            (
                "123456789012:function:hello:3",
                "hello",
                Some("3"),
                None,
                Some("123456789012"),
            ),
            ("hello:live", "hello", Some("live"), None, None),
            ("hello", "hello", None, None, None),
        ] {
            let arn: FunctionArn = text.parse().unwrap();
            assert_eq!(arn.name(), name, "{text}");
            assert_eq!(arn.qualifier(), qualifier, "{text}");
            assert_eq!(arn.region(), region, "{text}");
            assert_eq!(arn.account(), account, "{text}");
            assert_eq!(arn.to_string(), text);
        }
    }

    /// Each error names the ARN, the kind expected, and the part that is wrong.
    #[test]
    fn arn_errors_name_the_part_that_is_wrong() {
        let bucket = |s: &str| s.parse::<BucketArn>().unwrap_err();
        let object = |s: &str| s.parse::<ObjectArn>().unwrap_err();
        let function = |s: &str| s.parse::<FunctionArn>().unwrap_err();
        let cases = [
            (bucket("reports"), ArnProblem::NotAnArn),
            (bucket("arn:aws:s3:reports"), ArnProblem::Parts(4)),
            (bucket("arn::s3:::reports"), ArnProblem::EmptyPartition),
            (
                bucket("arn:aws:sqs:::reports"),
                ArnProblem::Service {
                    found: "sqs".into(),
                    expected: "s3",
                },
            ),
            (bucket("arn:aws:s3:::"), ArnProblem::NoBucket),
            (bucket("arn:aws:s3:::b/k"), ArnProblem::HasKey),
            (object("arn:aws:s3:::man"), ArnProblem::NoKey),
            (object("arn:aws:s3:::man/"), ArnProblem::NoKey),
            (object("arn:aws:s3:::/k"), ArnProblem::NoBucket),
            (
                function("arn:aws:lambda:us-east-1:1:layer:x"),
                ArnProblem::NotAFunction("layer".into()),
            ),
            (
                function("arn:aws:lambda:us-east-1:1:function"),
                ArnProblem::NoName,
            ),
            (function(""), ArnProblem::NoName),
            (function("hello:"), ArnProblem::EmptyQualifier),
            (function("a:b:c:d"), ArnProblem::Trailing("c:d".into())),
            (
                function("arn:aws:s3:us-east-1:1:function:f"),
                ArnProblem::Service {
                    found: "s3".into(),
                    expected: "lambda",
                },
            ),
        ];
        for (err, problem) in cases {
            assert_eq!(err.problem, problem, "{err}");
        }
        assert_eq!(
            bucket("arn:aws:s3:::b/k").to_string(),
            "\"arn:aws:s3:::b/k\" is not a bucket ARN (arn:aws:s3:::bucket): it names an \
             object, not a bucket"
        );
        assert_eq!(
            function("hello:").to_string(),
            "\"hello:\" is not a function ARN \
             (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]): its qualifier \
             (version or alias, after NAME:) is empty"
        );
        assert_eq!(
            bucket("arn:aws:sqs:::reports").to_string(),
            "\"arn:aws:sqs:::reports\" is not a bucket ARN (arn:aws:s3:::bucket): its service \
             is \"sqs\", not \"s3\""
        );
    }

    #[test]
    fn report_scopes_have_their_wire_names() {
        for (scope, name) in [
            (ReportScope::AllTasks, "AllTasks"),
            (ReportScope::FailedTasksOnly, "FailedTasksOnly"),
        ] {
            assert_eq!(report_scope_name(scope), name);
            assert_eq!(parse_report_scope(name).unwrap(), scope);
        }
        for bad in ["Failed", "alltasks", ""] {
            assert_eq!(
                parse_report_scope(bad).unwrap_err(),
                SpecError::ReportScope(bad.into())
            );
        }
        // Not given: all tasks.
        let mut report = ReportSpec::to(BucketArn::new("b"), "", ReportScope::AllTasks);
        report.scope = None;
        assert_eq!(report.destination().unwrap().2, ReportScope::AllTasks);
        assert_eq!(report.destination().unwrap().1, "");
        assert_eq!(ReportSpec::disabled().destination(), None);
    }

    #[test]
    fn schemas_other_than_1_0_and_2_0_are_refused() {
        assert_eq!(parse_schema("1.0").unwrap(), Schema::V1);
        assert_eq!(parse_schema("2.0").unwrap(), Schema::V2);
        for bad in ["3.0", "2", "", " 2.0"] {
            let err = parse_schema(bad).unwrap_err();
            assert_eq!(err, SpecError::Schema(bad.into()));
            assert!(
                err.to_string()
                    .contains(&format!("InvocationSchemaVersion is {bad:?}")),
                "{err}"
            );
        }
    }

    fn spec() -> JobSpec {
        JobSpec {
            operation: LambdaInvoke {
                function: "arn:aws:lambda:us-east-1:123456789012:function:fn:3"
                    .parse()
                    .unwrap(),
                schema: Schema::V2,
                user_arguments: UserArguments::new([("size", "256")]).unwrap(),
            },
            manifest: ManifestSpec::csv(
                ManifestLocation {
                    object: ObjectArn::new("man", "m.csv"),
                    version_id: None,
                    etag: "e".into(),
                },
                false,
            ),
            report: ReportSpec::to(BucketArn::new("rep"), "batch", ReportScope::AllTasks),
            priority: 10,
            confirmation_required: false,
            client_request_token: Some("t".into()),
            description: Some("d".into()),
            role_arn: "arn:aws:iam::123456789012:role/batch".into(),
            tags: vec![],
        }
    }

    /// Every limit `validate` keeps, each named in its error.
    #[test]
    fn validation_names_the_limit() {
        assert_eq!(spec().validate(), Ok(()));
        type Change = fn(&mut JobSpec);
        let cases: [(Change, &str); 7] = [
            (
                |s| s.operation.schema = Schema::V1,
                "CreateJobRequest.Operation.LambdaInvoke.UserArguments: user arguments need \
                 invocation schema 2.0 (S3 rejects them with 1.0)",
            ),
            (
                |s| s.report.bucket = None,
                "CreateJobRequest.Report.Bucket is missing (the report is enabled)",
            ),
            (
                |s| s.report.prefix = Some("p".repeat(513)),
                "CreateJobRequest.Report.Prefix must be 1 to 512 characters; it has 513",
            ),
            (
                |s| s.description = Some(String::new()),
                "CreateJobRequest.Description must be 1 to 256 characters; it has 0",
            ),
            (
                |s| s.priority = -5,
                "CreateJobRequest.Priority is \"-5\"; give 0 to 2147483647",
            ),
            (
                |s| s.client_request_token = Some("t".repeat(65)),
                "CreateJobRequest.ClientRequestToken must be 1 to 64 characters; it has 65",
            ),
            (
                |s| {
                    if let ManifestSpec::Csv { location, .. } = &mut s.manifest {
                        location.etag = "é".repeat(1025);
                    }
                },
                "CreateJobRequest.Manifest.Location.ETag must be 1 to 1024 characters; it has 1025",
            ),
        ];
        for (change, expected) in cases {
            let mut s = spec();
            change(&mut s);
            assert_eq!(s.validate().unwrap_err().to_string(), expected);
        }
        // A disabled report needs no bucket; a 2.0 job may have no arguments.
        let mut s = spec();
        s.report = ReportSpec::disabled();
        s.operation.user_arguments = UserArguments::default();
        s.operation.schema = Schema::V1;
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn manifest_fields_and_formats() {
        for f in [
            ManifestField::Ignore,
            ManifestField::Bucket,
            ManifestField::Key,
            ManifestField::VersionId,
        ] {
            assert_eq!(f.as_str().parse::<ManifestField>().unwrap(), f);
        }
        assert_eq!(
            "Kay".parse::<ManifestField>().unwrap_err().to_string(),
            "CreateJobRequest.Manifest.Spec.Fields has \"Kay\"; use Ignore, Bucket, Key or \
             VersionId"
        );
        let s = spec();
        assert_eq!(s.manifest.format(), Some(CSV_MANIFEST));
        assert_eq!(
            s.manifest.fields(),
            [ManifestField::Bucket, ManifestField::Key]
        );
        let g = ManifestSpec::Generated(Generator::default());
        assert_eq!(
            (g.format(), g.location(), g.fields()),
            (None, None, &[][..])
        );
    }
}
