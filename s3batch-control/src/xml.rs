//! The S3 Control REST-XML shapes `cargo s3batch serve` reads and writes: `CreateJobRequest`
//! in, `CreateJobResult`, `DescribeJobResult`, `ListJobsResult`, `UpdateJobStatusResult`,
//! `UpdateJobPriorityResult` and `ErrorResponse` out.
//!
//! Requests are read by local element name (any namespace, any element order, lists as
//! `<member>`, maps as `<entry><key/><value/></entry>`), as botocore and `aws-sdk-s3control`
//! send them. Responses carry the exact root names the SDKs expect.

use aws_smithy_xml::encode::{ScopeWriter, XmlWriter};
use roxmltree::Node;
use s3batch_job::{Schema, UserArguments};

/// The namespace of S3 Control documents.
pub const NAMESPACE: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";

/// An S3 Control error: its `<Code>`, HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `BadRequestException`, `NotFoundException`, ...
    pub code: &'static str,
    /// The HTTP status (400, or 500 for `InternalServiceException`).
    pub status: u16,
    /// What went wrong, naming the field or value.
    pub message: String,
}

impl ApiError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }
    /// `BadRequestException` (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("BadRequestException", 400, message)
    }
    /// `NotFoundException` (400).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("NotFoundException", 400, message)
    }
    /// `JobStatusException` (400).
    pub fn job_status(message: impl Into<String>) -> Self {
        Self::new("JobStatusException", 400, message)
    }
    /// `IdempotencyException` (400).
    pub fn idempotency(message: impl Into<String>) -> Self {
        Self::new("IdempotencyException", 400, message)
    }
    /// `InvalidRequestException` (400, ListJobs).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", 400, message)
    }
    /// `InvalidNextTokenException` (400, ListJobs).
    pub fn invalid_next_token(message: impl Into<String>) -> Self {
        Self::new("InvalidNextTokenException", 400, message)
    }
    /// `InternalServiceException` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServiceException", 500, message)
    }

    /// `<ErrorResponse><Error><Code/><Message/></Error><RequestId/></ErrorResponse>`, the
    /// wrapped form the Rust SDK needs (botocore reads it too).
    pub fn to_xml(&self, request_id: &str) -> String {
        document(&El::parent(
            "ErrorResponse",
            vec![
                El::parent(
                    "Error",
                    vec![
                        El::text("Code", self.code),
                        El::text("Message", &self.message),
                    ],
                ),
                El::text("RequestId", request_id),
            ],
        ))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `Manifest` of a CreateJob request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSpec {
    /// `S3BatchOperations_CSV_20180820` or `S3InventoryReport_CSV_20161130`.
    pub format: String,
    /// `Fields` (CSV column order), e.g. `["Bucket", "Key"]`; empty when not given.
    pub fields: Vec<String>,
    /// `Location/ObjectArn`: `arn:aws:s3:::bucket/key`.
    pub object_arn: String,
    /// `Location/ObjectVersionId`.
    pub object_version_id: Option<String>,
    /// `Location/ETag` as sent (quoted or not).
    pub etag: String,
}

/// `Report` of a CreateJob request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// `Enabled`.
    pub enabled: bool,
    /// `Bucket`: a bucket ARN.
    pub bucket: Option<String>,
    /// `Format`.
    pub format: Option<String>,
    /// `Prefix`.
    pub prefix: Option<String>,
    /// `ReportScope`: `AllTasks` or `FailedTasksOnly`.
    pub scope: Option<String>,
}

/// A parsed `CreateJobRequest` (LambdaInvoke only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateJob {
    /// `ConfirmationRequired`; absent means `false` here (our clients always send it).
    pub confirmation_required: bool,
    /// `Operation/LambdaInvoke/FunctionArn`.
    pub function_arn: String,
    /// `Operation/LambdaInvoke/InvocationSchemaVersion` (1.0 when absent).
    pub schema: Schema,
    /// `Operation/LambdaInvoke/UserArguments`: S3's limits kept, no name repeated, none
    /// with schema 1.0.
    pub user_arguments: UserArguments,
    /// `Report`.
    pub report: ReportSpec,
    /// `Manifest`.
    pub manifest: ManifestSpec,
    /// `Description`.
    pub description: Option<String>,
    /// `Priority`.
    pub priority: i32,
    /// `RoleArn`.
    pub role_arn: String,
    /// `Tags`.
    pub tags: Vec<(String, String)>,
    /// `ClientRequestToken`.
    pub client_request_token: String,
}

fn children<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(Node::is_element)
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    children(n).find(|c| c.tag_name().name() == name)
}

fn text_of(n: Node) -> String {
    n.text().unwrap_or_default().to_owned()
}

fn opt(n: Node, name: &str) -> Option<String> {
    child(n, name).map(text_of)
}

fn req(n: Node, path: &str, name: &str) -> Result<String, ApiError> {
    opt(n, name).ok_or_else(|| ApiError::bad_request(format!("{path}.{name} is missing")))
}

fn boolean(value: &str, path: &str) -> Result<bool, ApiError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "{path} is {other:?}, not true or false"
        ))),
    }
}

fn length(value: &str, path: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{path} must be {min} to {max} characters; it has {n}"
        )));
    }
    Ok(())
}

impl CreateJob {
    /// Parses a `CreateJobRequest` body; problems are `BadRequestException`s naming the field.
    pub fn parse(body: &[u8]) -> Result<CreateJob, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not UTF-8: {e}")))?;
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| ApiError::bad_request(format!("the request body is not XML: {e}")))?;
        let root = doc.root_element();
        if root.tag_name().name() != "CreateJobRequest" {
            return Err(ApiError::bad_request(format!(
                "the request body's root is <{}>, not <CreateJobRequest>",
                root.tag_name().name()
            )));
        }
        let r = "CreateJobRequest";
        let confirmation_required = match opt(root, "ConfirmationRequired") {
            Some(v) => boolean(&v, "CreateJobRequest.ConfirmationRequired")?,
            None => false,
        };
        if child(root, "ManifestGenerator").is_some() {
            return Err(ApiError::bad_request(
                if child(root, "Manifest").is_some() {
                    "CreateJobRequest has both Manifest and ManifestGenerator; give one".to_owned()
                } else {
                    "CreateJobRequest.ManifestGenerator (a manifest generated by S3) is not \
                 supported by cargo s3batch serve; give a Manifest"
                        .to_owned()
                },
            ));
        }
        let operation = child(root, "Operation")
            .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Operation is missing"))?;
        let lambda = match child(operation, "LambdaInvoke") {
            Some(l) => l,
            None => {
                let name = children(operation)
                    .next()
                    .map_or("nothing".to_owned(), |n| n.tag_name().name().to_owned());
                return Err(ApiError::bad_request(format!(
                    "CreateJobRequest.Operation is {name}; cargo s3batch serve runs LambdaInvoke jobs only"
                )));
            }
        };
        let lp = "CreateJobRequest.Operation.LambdaInvoke";
        let function_arn = req(lambda, lp, "FunctionArn")?;
        length(&function_arn, &format!("{lp}.FunctionArn"), 1, 1024)?;
        let schema = match opt(lambda, "InvocationSchemaVersion") {
            None => Schema::V1,
            Some(s) => s.parse::<Schema>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{lp}.InvocationSchemaVersion is {s:?}; use 1.0 or 2.0"
                ))
            })?,
        };
        let user_arguments = match child(lambda, "UserArguments") {
            None => UserArguments::default(),
            Some(args) => {
                let mut entries = Vec::new();
                for entry in children(args) {
                    let key = req(entry, &format!("{lp}.UserArguments.entry"), "key")?;
                    entries.push((key, opt(entry, "value").unwrap_or_default()));
                }
                if entries.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "{lp}.UserArguments has no entries; give 1 to 10"
                    )));
                }
                UserArguments::for_schema(entries, schema)
                    .map_err(|e| ApiError::bad_request(format!("{lp}.UserArguments: {e}")))?
            }
        };

        let report = child(root, "Report")
            .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Report is missing"))?;
        let rp = "CreateJobRequest.Report";
        let report = ReportSpec {
            enabled: boolean(
                &req(report, rp, "Enabled")?,
                "CreateJobRequest.Report.Enabled",
            )?,
            bucket: opt(report, "Bucket"),
            format: opt(report, "Format"),
            prefix: opt(report, "Prefix"),
            scope: opt(report, "ReportScope"),
        };
        if report.enabled {
            if report.bucket.is_none() {
                return Err(ApiError::bad_request(
                    "CreateJobRequest.Report.Bucket is missing (the report is enabled)",
                ));
            }
            if let Some(f) = report
                .format
                .as_deref()
                .filter(|f| *f != "Report_CSV_20180820")
            {
                return Err(ApiError::bad_request(format!(
                    "CreateJobRequest.Report.Format is {f:?}; use Report_CSV_20180820"
                )));
            }
        }
        if let Some(s) = report
            .scope
            .as_deref()
            .filter(|s| !matches!(*s, "AllTasks" | "FailedTasksOnly"))
        {
            return Err(ApiError::bad_request(format!(
                "CreateJobRequest.Report.ReportScope is {s:?}; use AllTasks or FailedTasksOnly"
            )));
        }
        if let Some(p) = &report.prefix {
            length(p, "CreateJobRequest.Report.Prefix", 1, 512)?;
        }

        let manifest = child(root, "Manifest").ok_or_else(|| {
            ApiError::bad_request("CreateJobRequest.Manifest is missing (give a Manifest)")
        })?;
        let spec = child(manifest, "Spec")
            .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Manifest.Spec is missing"))?;
        let location = child(manifest, "Location").ok_or_else(|| {
            ApiError::bad_request("CreateJobRequest.Manifest.Location is missing")
        })?;
        let format = req(spec, "CreateJobRequest.Manifest.Spec", "Format")?;
        if !matches!(
            format.as_str(),
            "S3BatchOperations_CSV_20180820" | "S3InventoryReport_CSV_20161130"
        ) {
            return Err(ApiError::bad_request(format!(
                "CreateJobRequest.Manifest.Spec.Format is {format:?}; use \
                 S3BatchOperations_CSV_20180820 or S3InventoryReport_CSV_20161130"
            )));
        }
        let fields: Vec<String> = child(spec, "Fields")
            .map(|f| children(f).map(text_of).collect())
            .unwrap_or_default();
        if let Some(bad) = fields
            .iter()
            .find(|f| !matches!(f.as_str(), "Ignore" | "Bucket" | "Key" | "VersionId"))
        {
            return Err(ApiError::bad_request(format!(
                "CreateJobRequest.Manifest.Spec.Fields has {bad:?}; use Ignore, Bucket, Key or VersionId"
            )));
        }
        let lp = "CreateJobRequest.Manifest.Location";
        let manifest = ManifestSpec {
            format,
            fields,
            object_arn: req(location, lp, "ObjectArn")?,
            object_version_id: opt(location, "ObjectVersionId"),
            etag: req(location, lp, "ETag")?,
        };
        length(&manifest.etag, &format!("{lp}.ETag"), 1, 1024)?;
        manifest_object(&manifest.object_arn)?;

        let description = opt(root, "Description");
        if let Some(d) = &description {
            length(d, "CreateJobRequest.Description", 1, 256)?;
        }
        let priority = req(root, r, "Priority")?;
        let priority = priority
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "CreateJobRequest.Priority is {priority:?}; give 0 to 2147483647"
                ))
            })?;
        let role_arn = req(root, r, "RoleArn")?;
        let mut tags = Vec::new();
        if let Some(t) = child(root, "Tags") {
            for tag in children(t) {
                tags.push((
                    req(tag, "CreateJobRequest.Tags.member", "Key")?,
                    opt(tag, "Value").unwrap_or_default(),
                ));
            }
        }
        let client_request_token = req(root, r, "ClientRequestToken")?;
        length(
            &client_request_token,
            "CreateJobRequest.ClientRequestToken",
            1,
            64,
        )?;
        Ok(CreateJob {
            confirmation_required,
            function_arn,
            schema,
            user_arguments,
            report,
            manifest,
            description,
            priority,
            role_arn,
            tags,
            client_request_token,
        })
    }
}

/// The bucket and key of a manifest `ObjectArn` (`arn:<partition>:s3:::bucket/key`).
pub fn manifest_object(arn: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "CreateJobRequest.Manifest.Location.ObjectArn {arn:?} is not an object ARN \
             (arn:aws:s3:::bucket/key)"
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "s3" {
        return Err(bad());
    }
    match parts[5].split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_owned(), k.to_owned())),
        _ => Err(bad()),
    }
}

/// The bucket name of a bucket ARN (`arn:aws:s3:::bucket`); a plain name is taken as is.
pub fn bucket_name(arn: &str) -> Result<String, ApiError> {
    let name = match arn.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            if parts.len() != 6 || parts[2] != "s3" {
                return Err(ApiError::bad_request(format!(
                    "CreateJobRequest.Report.Bucket {arn:?} is not a bucket ARN (arn:aws:s3:::bucket)"
                )));
            }
            parts[5]
        }
        None => arn,
    };
    if name.is_empty() || name.contains('/') {
        return Err(ApiError::bad_request(format!(
            "CreateJobRequest.Report.Bucket {arn:?} names no bucket (arn:aws:s3:::bucket)"
        )));
    }
    Ok(name.to_owned())
}

/// The function name the Invoke API is called with, from a `FunctionArn` in any of its forms
/// (`arn:aws:lambda:region:account:function:NAME[:QUALIFIER]`, `account:function:NAME`,
/// `NAME[:QUALIFIER]`). The qualifier (version or alias) is dropped: a local Invoke endpoint
/// such as `cargo lambda watch` serves one version of each function, by name.
pub fn function_name(arn: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1].to_owned(),
        _ => parts[0].to_owned(),
    }
}

/// An element of a response document: text, or child elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    name: String,
    content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Text(String),
    Children(Vec<El>),
}

impl El {
    /// `<name>text</name>`.
    pub fn text(name: &str, text: impl Into<String>) -> El {
        El {
            name: name.to_owned(),
            content: Content::Text(text.into()),
        }
    }
    /// `<name>children</name>`.
    pub fn parent(name: &str, children: Vec<El>) -> El {
        El {
            name: name.to_owned(),
            content: Content::Children(children),
        }
    }
    /// A list: `<name><member>…</member>…</name>`.
    pub fn list(name: &str, members: Vec<Vec<El>>) -> El {
        El::parent(
            name,
            members
                .into_iter()
                .map(|m| El::parent("member", m))
                .collect(),
        )
    }

    fn write(&self, scope: &mut ScopeWriter) {
        let mut inner = scope.start_el(&self.name).finish();
        self.body(&mut inner);
    }

    fn body(&self, inner: &mut ScopeWriter) {
        match &self.content {
            Content::Text(t) => inner.data(t),
            Content::Children(c) => c.iter().for_each(|c| c.write(inner)),
        }
    }
}

/// A whole response document: the XML declaration and `root` in the S3 Control namespace.
pub fn document(root: &El) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut w = XmlWriter::new(&mut out);
    let mut scope = w.start_el(&root.name).write_ns(NAMESPACE, None).finish();
    root.body(&mut scope);
    scope.finish();
    out
}

impl CreateJob {
    /// The request's `Operation`, `Manifest` and `Report`, echoed in `DescribeJob`.
    pub fn echo(&self) -> Vec<El> {
        let m = &self.manifest;
        let mut spec = vec![El::text("Format", &m.format)];
        if !m.fields.is_empty() {
            spec.push(El::parent(
                "Fields",
                m.fields.iter().map(|f| El::text("member", f)).collect(),
            ));
        }
        let mut location = vec![El::text("ObjectArn", &m.object_arn)];
        if let Some(v) = &m.object_version_id {
            location.push(El::text("ObjectVersionId", v));
        }
        location.push(El::text("ETag", &m.etag));
        let manifest = El::parent(
            "Manifest",
            vec![El::parent("Spec", spec), El::parent("Location", location)],
        );
        let mut lambda = vec![
            El::text("FunctionArn", &self.function_arn),
            El::text("InvocationSchemaVersion", self.schema.as_str()),
        ];
        if !self.user_arguments.is_empty() {
            lambda.push(El::parent(
                "UserArguments",
                self.user_arguments
                    .iter()
                    .map(|(k, v)| {
                        El::parent("entry", vec![El::text("key", k), El::text("value", v)])
                    })
                    .collect(),
            ));
        }
        let operation = El::parent("Operation", vec![El::parent("LambdaInvoke", lambda)]);
        let r = &self.report;
        let mut report = Vec::new();
        if let Some(b) = &r.bucket {
            report.push(El::text("Bucket", b));
        }
        if let Some(f) = &r.format {
            report.push(El::text("Format", f));
        }
        report.push(El::text("Enabled", r.enabled.to_string()));
        if let Some(p) = &r.prefix {
            report.push(El::text("Prefix", p));
        }
        if let Some(s) = &r.scope {
            report.push(El::text("ReportScope", s));
        }
        vec![manifest, operation, El::parent("Report", report)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// botocore's CreateJob body, as the reference records it (s3control.md §1.2).
    const BOTOCORE: &str = r#"<CreateJobRequest xmlns="http://awss3control.amazonaws.com/doc/2018-08-20/">
  <ConfirmationRequired>false</ConfirmationRequired>
  <Operation><LambdaInvoke>
    <FunctionArn>arn:aws:lambda:us-east-1:123456789012:function:fn:live</FunctionArn>
    <InvocationSchemaVersion>2.0</InvocationSchemaVersion>
    <UserArguments><entry><key>k1</key><value>v1</value></entry></UserArguments>
  </LambdaInvoke></Operation>
  <Report><Bucket>arn:aws:s3:::rep</Bucket><Format>Report_CSV_20180820</Format>
    <Enabled>true</Enabled><Prefix>reports</Prefix><ReportScope>AllTasks</ReportScope></Report>
  <Manifest>
    <Spec><Format>S3BatchOperations_CSV_20180820</Format>
      <Fields><member>Bucket</member><member>Key</member></Fields></Spec>
    <Location><ObjectArn>arn:aws:s3:::man/manifest.csv</ObjectArn>
      <ETag>"60e460c9d1046e73f7dde5043ac3ae85"</ETag></Location>
  </Manifest>
  <Description>d</Description><Priority>10</Priority>
  <RoleArn>arn:aws:iam::123456789012:role/batch</RoleArn>
  <Tags><member><Key>a</Key><Value>b</Value></member></Tags>
  <ClientRequestToken>6e7a98a4-e68b-46dc-8364-1e9c745381fb</ClientRequestToken>
</CreateJobRequest>"#;

    #[test]
    fn botocore_create_job_is_read() {
        let job = CreateJob::parse(BOTOCORE.as_bytes()).unwrap();
        assert!(!job.confirmation_required);
        assert_eq!(
            job.function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
        );
        assert_eq!(job.schema, Schema::V2);
        assert_eq!(job.user_arguments.get("k1"), Some("v1"));
        assert_eq!(job.user_arguments.len(), 1);
        assert_eq!(
            job.report,
            ReportSpec {
                enabled: true,
                bucket: Some("arn:aws:s3:::rep".into()),
                format: Some("Report_CSV_20180820".into()),
                prefix: Some("reports".into()),
                scope: Some("AllTasks".into()),
            }
        );
        assert_eq!(job.manifest.fields, ["Bucket", "Key"]);
        assert_eq!(job.manifest.etag, "\"60e460c9d1046e73f7dde5043ac3ae85\"");
        assert_eq!(
            manifest_object(&job.manifest.object_arn).unwrap(),
            ("man".to_owned(), "manifest.csv".to_owned())
        );
        assert_eq!(job.description.as_deref(), Some("d"));
        assert_eq!(job.priority, 10);
        assert_eq!(job.tags, [("a".to_owned(), "b".to_owned())]);
        assert_eq!(
            job.client_request_token,
            "6e7a98a4-e68b-46dc-8364-1e9c745381fb"
        );
        assert_eq!(function_name(&job.function_arn), "fn");
    }

    /// The Rust SDK's order (members in model order, no whitespace, a prefixed namespace is
    /// also read by local name) gives the same request.
    #[test]
    fn element_order_and_namespace_prefix_are_free() {
        let rust_sdk = r#"<s:CreateJobRequest xmlns:s="http://awss3control.amazonaws.com/doc/2018-08-20/"><s:ClientRequestToken>6e7a98a4-e68b-46dc-8364-1e9c745381fb</s:ClientRequestToken><s:Tags><s:member><s:Value>b</s:Value><s:Key>a</s:Key></s:member></s:Tags><s:RoleArn>arn:aws:iam::123456789012:role/batch</s:RoleArn><s:Priority>10</s:Priority><s:Description>d</s:Description><s:Manifest><s:Location><s:ETag>"60e460c9d1046e73f7dde5043ac3ae85"</s:ETag><s:ObjectArn>arn:aws:s3:::man/manifest.csv</s:ObjectArn></s:Location><s:Spec><s:Fields><s:member>Bucket</s:member><s:member>Key</s:member></s:Fields><s:Format>S3BatchOperations_CSV_20180820</s:Format></s:Spec></s:Manifest><s:Report><s:ReportScope>AllTasks</s:ReportScope><s:Prefix>reports</s:Prefix><s:Enabled>true</s:Enabled><s:Format>Report_CSV_20180820</s:Format><s:Bucket>arn:aws:s3:::rep</s:Bucket></s:Report><s:Operation><s:LambdaInvoke><s:UserArguments><s:entry><s:key>k1</s:key><s:value>v1</s:value></s:entry></s:UserArguments><s:InvocationSchemaVersion>2.0</s:InvocationSchemaVersion><s:FunctionArn>arn:aws:lambda:us-east-1:123456789012:function:fn:live</s:FunctionArn></s:LambdaInvoke></s:Operation><s:ConfirmationRequired>false</s:ConfirmationRequired></s:CreateJobRequest>"#;
        assert_eq!(
            CreateJob::parse(rust_sdk.as_bytes()).unwrap(),
            CreateJob::parse(BOTOCORE.as_bytes()).unwrap()
        );
    }

    /// Sends every request to one URL.
    #[derive(Debug)]
    struct Static(String);

    impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for Static {
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

    /// Reads one HTTP request (headers, then `content-length` bytes) and answers `reply`.
    async fn capture_one(listener: tokio::net::TcpListener, reply: &'static str) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                stream.write_all(response.as_bytes()).await.unwrap();
                return body;
            }
        }
    }

    /// The body `aws-sdk-s3control` really sends for the request botocore sent above reads
    /// as the same request.
    #[tokio::test]
    async fn the_rust_sdk_create_job_body_is_read() {
        use aws_sdk_s3control::types::*;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let captured = tokio::spawn(capture_one(
            listener,
            "<CreateJobResult><JobId>j1</JobId></CreateJobResult>",
        ));
        let config = aws_sdk_s3control::Config::builder()
            .behavior_version(aws_sdk_s3control::config::BehaviorVersion::latest())
            .region(aws_sdk_s3control::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3control::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .endpoint_resolver(Static(url))
            .build();
        let out = aws_sdk_s3control::Client::from_conf(config)
            .create_job()
            .account_id("123456789012")
            .confirmation_required(false)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(
                        LambdaInvokeOperation::builder()
                            .function_arn("arn:aws:lambda:us-east-1:123456789012:function:fn:live")
                            .invocation_schema_version("2.0")
                            .user_arguments("k1", "v1")
                            .build(),
                    )
                    .build(),
            )
            .report(
                JobReport::builder()
                    .bucket("arn:aws:s3:::rep")
                    .format(JobReportFormat::ReportCsv20180820)
                    .enabled(true)
                    .prefix("reports")
                    .report_scope(JobReportScope::AllTasks)
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
                            .object_arn("arn:aws:s3:::man/manifest.csv")
                            .e_tag("\"60e460c9d1046e73f7dde5043ac3ae85\"")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .description("d")
            .priority(10)
            .role_arn("arn:aws:iam::123456789012:role/batch")
            .tags(S3Tag::builder().key("a").value("b").build().unwrap())
            .client_request_token("6e7a98a4-e68b-46dc-8364-1e9c745381fb")
            .send()
            .await
            .unwrap();
        assert_eq!(out.job_id.as_deref(), Some("j1"));
        let body = captured.await.unwrap();
        assert_eq!(
            CreateJob::parse(&body).unwrap(),
            CreateJob::parse(BOTOCORE.as_bytes()).unwrap(),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases = [
            (
                "<ETag>\"60e460c9d1046e73f7dde5043ac3ae85\"</ETag>",
                "",
                "Manifest.Location.ETag is missing",
            ),
            (
                "LambdaInvoke>",
                "S3PutObjectTagging>",
                "Operation is S3PutObjectTagging",
            ),
            (
                "<Priority>10</Priority>",
                "<Priority>-1</Priority>",
                "Priority is \"-1\"",
            ),
            (
                "<Enabled>true</Enabled>",
                "<Enabled>yes</Enabled>",
                "Report.Enabled is \"yes\"",
            ),
            (
                "arn:aws:s3:::man/manifest.csv",
                "arn:aws:s3:::man",
                "ObjectArn \"arn:aws:s3:::man\" is not an object ARN",
            ),
            (
                "<member>Key</member>",
                "<member>Kay</member>",
                "Fields has \"Kay\"",
            ),
            (
                "<Description>d</Description>",
                "<ManifestGenerator/>",
                "both Manifest and ManifestGenerator",
            ),
            (
                "<InvocationSchemaVersion>2.0<",
                "<InvocationSchemaVersion>3.0<",
                "InvocationSchemaVersion is \"3.0\"",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(BOTOCORE.contains(from), "{from}");
            let err = CreateJob::parse(BOTOCORE.replace(from, to).as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException");
            assert!(err.message.contains(expected), "{expected}: {err}");
        }
        let err = CreateJob::parse(b"<CreateJobRequest><a></b></CreateJobRequest>").unwrap_err();
        assert!(err.message.contains("not XML"), "{err}");
    }

    /// `UserArguments` are checked at CreateJob as S3 checks them (a 400 naming the key or
    /// the limit) instead of a repeated key keeping its last value or an over-limit one
    /// failing the job later.
    #[test]
    fn user_arguments_are_checked_at_create_job() {
        let entry = "<entry><key>k1</key><value>v1</value></entry>";
        let entries = |pairs: &[(&str, &str)]| -> String {
            pairs
                .iter()
                .map(|(k, v)| format!("<entry><key>{k}</key><value>{v}</value></entry>"))
                .collect()
        };
        let long_key = "k".repeat(65);
        let long_value = "v".repeat(1025);
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        let eleven: Vec<(&str, &str)> = eleven
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let cases = [
            (
                entries(&[("k1", "v1"), ("k2", "x"), ("k1", "v2")]),
                "UserArguments: user argument \"k1\" is given more than once",
            ),
            (
                entries(&[(long_key.as_str(), "v")]),
                "has 65 characters; names are 1 to 64 characters",
            ),
            (
                entries(&[("", "v")]),
                "UserArguments: a user argument has an empty name; names are 1 to 64 characters",
            ),
            (
                entries(&[("k1", long_value.as_str())]),
                "UserArguments: user argument \"k1\" has a value of 1025 characters; values are at most 1024 characters",
            ),
            (
                entries(&eleven),
                "UserArguments: 11 user arguments; S3 allows at most 10",
            ),
            (String::new(), "UserArguments has no entries; give 1 to 10"),
        ];
        assert!(BOTOCORE.contains(entry));
        for (to, expected) in cases {
            let err = CreateJob::parse(BOTOCORE.replace(entry, &to).as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException", "{err}");
            assert_eq!(err.status, 400, "{err}");
            assert!(
                err.message
                    .starts_with("CreateJobRequest.Operation.LambdaInvoke.UserArguments"),
                "{err}"
            );
            assert!(err.message.contains(expected), "{expected}: {err}");
        }

        // At the limits, counted in characters (`é` is two bytes): accepted, all kept.
        let key = "é".repeat(64);
        let value = "é".repeat(1024);
        let mut ten = vec![(key.as_str(), value.as_str())];
        ten.extend(eleven[..9].iter().copied());
        let job = CreateJob::parse(BOTOCORE.replace(entry, &entries(&ten)).as_bytes()).unwrap();
        assert_eq!(job.user_arguments.len(), 10);
        assert_eq!(job.user_arguments.get(&key), Some(value.as_str()));
        assert_eq!(job.user_arguments.get("k8"), Some("v"));
    }

    /// `InvocationSchemaVersion` is read into the typed schema: absent is 1.0, anything but
    /// 1.0 or 2.0 is a 400 naming the value, and user arguments with 1.0 are a 400.
    #[test]
    fn the_schema_is_typed_and_user_arguments_need_2_0() {
        let v2 = "<InvocationSchemaVersion>2.0</InvocationSchemaVersion>";
        let args = "<UserArguments><entry><key>k1</key><value>v1</value></entry></UserArguments>";
        assert!(BOTOCORE.contains(v2) && BOTOCORE.contains(args));
        let no_args = BOTOCORE.replace(args, "");
        let v1 = "<InvocationSchemaVersion>1.0</InvocationSchemaVersion>";
        assert_eq!(
            CreateJob::parse(no_args.replace(v2, v1).as_bytes())
                .unwrap()
                .schema,
            Schema::V1
        );
        assert_eq!(
            CreateJob::parse(no_args.replace(v2, "").as_bytes())
                .unwrap()
                .schema,
            Schema::V1
        );
        assert_eq!(
            CreateJob::parse(BOTOCORE.as_bytes()).unwrap().schema,
            Schema::V2
        );
        for bad in ["2", " 2.0", "2.0.0", "v2", ""] {
            let body = BOTOCORE.replace(
                v2,
                &format!("<InvocationSchemaVersion>{bad}</InvocationSchemaVersion>"),
            );
            let err = CreateJob::parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException", "{err}");
            assert_eq!(
                err.message,
                format!(
                    "CreateJobRequest.Operation.LambdaInvoke.InvocationSchemaVersion is {bad:?}; use 1.0 or 2.0"
                )
            );
        }
        for schema in [v1, ""] {
            let err = CreateJob::parse(BOTOCORE.replace(v2, schema).as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException", "{err}");
            assert_eq!(
                err.message,
                "CreateJobRequest.Operation.LambdaInvoke.UserArguments: user arguments need \
                 invocation schema 2.0 (S3 rejects them with 1.0)"
            );
        }
        // The echo carries the schema as it is on the wire.
        let job = CreateJob::parse(no_args.replace(v2, "").as_bytes()).unwrap();
        let echo = document(&El::parent("X", job.echo()));
        assert!(echo.contains(v1), "{echo}");
    }

    #[test]
    fn responses_are_namespaced_escaped_and_wrapped() {
        let doc = document(&El::parent(
            "DescribeJobResult",
            vec![El::parent(
                "Job",
                vec![
                    El::text("Description", "a < b & \"c\""),
                    El::list("FailureReasons", vec![vec![El::text("FailureCode", "X")]]),
                ],
            )],
        ));
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeJobResult xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"><Job><Description>a &lt; b &amp; &quot;c&quot;</Description><FailureReasons><member><FailureCode>X</FailureCode></member></FailureReasons></Job></DescribeJobResult>"
        );
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let d = parsed
            .descendants()
            .find(|n| n.has_tag_name("Description"))
            .unwrap();
        assert_eq!(d.text(), Some("a < b & \"c\""));

        let err = ApiError::not_found("no job x").to_xml("R1");
        assert!(
            err.contains("<ErrorResponse xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"><Error><Code>NotFoundException</Code><Message>no job x</Message></Error><RequestId>R1</RequestId></ErrorResponse>"),
            "{err}"
        );
    }

    #[test]
    fn echo_round_trips() {
        let job = CreateJob::parse(BOTOCORE.as_bytes()).unwrap();
        let mut body = vec![
            El::text("ClientRequestToken", &job.client_request_token),
            El::text("Priority", "10"),
            El::text("RoleArn", &job.role_arn),
            El::text("Description", "d"),
            El::text("ConfirmationRequired", "false"),
            El::list(
                "Tags",
                vec![vec![El::text("Key", "a"), El::text("Value", "b")]],
            ),
        ];
        body.extend(job.echo());
        let doc = document(&El::parent("CreateJobRequest", body));
        assert_eq!(CreateJob::parse(doc.as_bytes()).unwrap(), job);
    }

    #[test]
    fn arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:hello"),
            "hello"
        );
        assert_eq!(function_name("123456789012:function:hello:3"), "hello");
        assert_eq!(function_name("hello:live"), "hello");
        assert_eq!(bucket_name("arn:aws:s3:::reports").unwrap(), "reports");
        assert!(bucket_name("arn:aws:s3:::").is_err());
        assert_eq!(
            manifest_object("arn:aws-cn:s3:::b/dir/m a.csv").unwrap(),
            ("b".to_owned(), "dir/m a.csv".to_owned())
        );
    }
}
