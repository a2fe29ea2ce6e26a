//! The S3 Control REST-XML shapes `cargo s3batch serve` reads and writes: `CreateJobRequest`
//! in, `CreateJobResult`, `DescribeJobResult`, `ListJobsResult`, `UpdateJobStatusResult`,
//! `UpdateJobPriorityResult` and `ErrorResponse` out.
//!
//! Requests are read by local element name (any namespace, any element order, lists as
//! `<member>`, maps as `<entry><key/><value/></entry>`), as botocore and `aws-sdk-s3control`
//! send them. Responses carry the exact root names the SDKs expect.

use crate::model::{
    check_length, parse_report_scope, parse_schema, report_scope_name, ArnError, BucketArn,
    JobSpec, LambdaInvoke, ManifestField, ManifestLocation, ManifestSpec, ReportSpec, Schema,
    SpecError, UserArguments, CSV_MANIFEST, INVENTORY_MANIFEST, REPORT_FORMAT,
};
use aws_smithy_xml::encode::{ScopeWriter, XmlWriter};
use roxmltree::Node;

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

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
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

/// `text` read as `T` (an ARN), or a 400 naming `field` and what is wrong.
fn arn<T: std::str::FromStr<Err = ArnError>>(
    text: &str,
    field: &'static str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|error| SpecError::Arn { field, error }.into())
}

/// Reads a `CreateJobRequest` body into the typed job, checked as S3 checks it
/// ([`JobSpec::validate`]); problems are `BadRequestException`s naming the field.
pub fn parse_create_job(body: &[u8]) -> Result<JobSpec, ApiError> {
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
    check_length(&function_arn, "Operation.LambdaInvoke.FunctionArn", 1, 1024)?;
    let function = arn(&function_arn, "Operation.LambdaInvoke.FunctionArn")?;
    let schema = match opt(lambda, "InvocationSchemaVersion") {
        None => Schema::V1,
        Some(s) => parse_schema(&s)?,
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
            UserArguments::for_schema(entries, schema).map_err(SpecError::UserArguments)?
        }
    };

    let report = child(root, "Report")
        .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Report is missing"))?;
    let rp = "CreateJobRequest.Report";
    let enabled = boolean(
        &req(report, rp, "Enabled")?,
        "CreateJobRequest.Report.Enabled",
    )?;
    let bucket = match opt(report, "Bucket") {
        Some(b) => Some(arn::<BucketArn>(&b, "Report.Bucket")?),
        None => None,
    };
    let format = match opt(report, "Format") {
        Some(f) if f == REPORT_FORMAT => true,
        Some(f) => return Err(SpecError::ReportFormat(f).into()),
        None => false,
    };
    let report = ReportSpec {
        enabled,
        bucket,
        format,
        prefix: opt(report, "Prefix"),
        scope: opt(report, "ReportScope")
            .map(|s| parse_report_scope(&s))
            .transpose()?,
    };

    let manifest = child(root, "Manifest").ok_or_else(|| {
        ApiError::bad_request("CreateJobRequest.Manifest is missing (give a Manifest)")
    })?;
    let spec = child(manifest, "Spec")
        .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Manifest.Spec is missing"))?;
    let location = child(manifest, "Location")
        .ok_or_else(|| ApiError::bad_request("CreateJobRequest.Manifest.Location is missing"))?;
    let format = req(spec, "CreateJobRequest.Manifest.Spec", "Format")?;
    if !matches!(format.as_str(), CSV_MANIFEST | INVENTORY_MANIFEST) {
        return Err(SpecError::ManifestFormat(format).into());
    }
    let fields = child(spec, "Fields")
        .map(|f| {
            children(f)
                .map(|f| text_of(f).parse::<ManifestField>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let lp = "CreateJobRequest.Manifest.Location";
    let object_arn = req(location, lp, "ObjectArn")?;
    let object_version_id = opt(location, "ObjectVersionId");
    let etag = req(location, lp, "ETag")?;
    let location = ManifestLocation {
        object: arn(&object_arn, "Manifest.Location.ObjectArn")?,
        version_id: object_version_id,
        etag,
    };
    let manifest = if format == INVENTORY_MANIFEST {
        ManifestSpec::Inventory { fields, location }
    } else {
        ManifestSpec::Csv { fields, location }
    };

    let description = opt(root, "Description");
    let priority = req(root, r, "Priority")?;
    let priority = priority
        .trim()
        .parse::<i32>()
        .map_err(|_| SpecError::Priority(priority.clone()))?;
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
    let job = JobSpec {
        operation: LambdaInvoke {
            function,
            schema,
            user_arguments,
        },
        manifest,
        report,
        priority,
        confirmation_required,
        client_request_token: Some(client_request_token),
        description,
        role_arn,
        tags,
    };
    job.validate()?;
    Ok(job)
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

/// The request's `Operation`, `Manifest` and `Report`, echoed in `DescribeJob` as they were
/// sent.
pub fn echo(job: &JobSpec) -> Vec<El> {
    let mut out = Vec::new();
    if let Some(location) = job.manifest.location() {
        let mut spec = vec![El::text(
            "Format",
            job.manifest.format().unwrap_or_default(),
        )];
        let fields = job.manifest.fields();
        if !fields.is_empty() {
            spec.push(El::parent(
                "Fields",
                fields
                    .iter()
                    .map(|f| El::text("member", f.as_str()))
                    .collect(),
            ));
        }
        let mut loc = vec![El::text("ObjectArn", location.object.to_string())];
        if let Some(v) = &location.version_id {
            loc.push(El::text("ObjectVersionId", v));
        }
        loc.push(El::text("ETag", &location.etag));
        out.push(El::parent(
            "Manifest",
            vec![El::parent("Spec", spec), El::parent("Location", loc)],
        ));
    }
    let op = &job.operation;
    let mut lambda = vec![
        El::text("FunctionArn", op.function.to_string()),
        El::text("InvocationSchemaVersion", op.schema.as_str()),
    ];
    if !op.user_arguments.is_empty() {
        lambda.push(El::parent(
            "UserArguments",
            op.user_arguments
                .iter()
                .map(|(k, v)| El::parent("entry", vec![El::text("key", k), El::text("value", v)]))
                .collect(),
        ));
    }
    out.push(El::parent(
        "Operation",
        vec![El::parent("LambdaInvoke", lambda)],
    ));
    let r = &job.report;
    let mut report = Vec::new();
    if let Some(b) = &r.bucket {
        report.push(El::text("Bucket", b.to_string()));
    }
    if r.format {
        report.push(El::text("Format", REPORT_FORMAT));
    }
    report.push(El::text("Enabled", r.enabled.to_string()));
    if let Some(p) = &r.prefix {
        report.push(El::text("Prefix", p));
    }
    if let Some(s) = r.scope {
        report.push(El::text("ReportScope", report_scope_name(s)));
    }
    out.push(El::parent("Report", report));
    out
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
        let job = parse_create_job(BOTOCORE.as_bytes()).unwrap();
        assert!(!job.confirmation_required);
        assert_eq!(
            job.operation.function.to_string(),
            "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
        );
        assert_eq!(job.operation.function.name(), "fn");
        assert_eq!(job.operation.function.qualifier(), Some("live"));
        assert_eq!(job.operation.schema, Schema::V2);
        assert_eq!(job.operation.user_arguments.get("k1"), Some("v1"));
        assert_eq!(job.operation.user_arguments.len(), 1);
        assert_eq!(
            job.report,
            ReportSpec {
                enabled: true,
                bucket: Some("arn:aws:s3:::rep".parse().unwrap()),
                format: true,
                prefix: Some("reports".into()),
                scope: Some(s3batch_job::ReportScope::AllTasks),
            }
        );
        let ManifestSpec::Csv { fields, location } = &job.manifest else {
            panic!("{:?}", job.manifest);
        };
        assert_eq!(fields, &[ManifestField::Bucket, ManifestField::Key]);
        assert_eq!(location.etag, "\"60e460c9d1046e73f7dde5043ac3ae85\"");
        assert_eq!(
            (location.object.bucket(), location.object.key()),
            ("man", "manifest.csv")
        );
        assert_eq!(location.version_id, None);
        assert_eq!(job.description.as_deref(), Some("d"));
        assert_eq!(job.priority, 10);
        assert_eq!(job.tags, [("a".to_owned(), "b".to_owned())]);
        assert_eq!(
            job.client_request_token.as_deref(),
            Some("6e7a98a4-e68b-46dc-8364-1e9c745381fb")
        );
    }

    /// The Rust SDK's order (members in model order, no whitespace, a prefixed namespace is
    /// also read by local name) gives the same request.
    #[test]
    fn element_order_and_namespace_prefix_are_free() {
        let rust_sdk = r#"<s:CreateJobRequest xmlns:s="http://awss3control.amazonaws.com/doc/2018-08-20/"><s:ClientRequestToken>6e7a98a4-e68b-46dc-8364-1e9c745381fb</s:ClientRequestToken><s:Tags><s:member><s:Value>b</s:Value><s:Key>a</s:Key></s:member></s:Tags><s:RoleArn>arn:aws:iam::123456789012:role/batch</s:RoleArn><s:Priority>10</s:Priority><s:Description>d</s:Description><s:Manifest><s:Location><s:ETag>"60e460c9d1046e73f7dde5043ac3ae85"</s:ETag><s:ObjectArn>arn:aws:s3:::man/manifest.csv</s:ObjectArn></s:Location><s:Spec><s:Fields><s:member>Bucket</s:member><s:member>Key</s:member></s:Fields><s:Format>S3BatchOperations_CSV_20180820</s:Format></s:Spec></s:Manifest><s:Report><s:ReportScope>AllTasks</s:ReportScope><s:Prefix>reports</s:Prefix><s:Enabled>true</s:Enabled><s:Format>Report_CSV_20180820</s:Format><s:Bucket>arn:aws:s3:::rep</s:Bucket></s:Report><s:Operation><s:LambdaInvoke><s:UserArguments><s:entry><s:key>k1</s:key><s:value>v1</s:value></s:entry></s:UserArguments><s:InvocationSchemaVersion>2.0</s:InvocationSchemaVersion><s:FunctionArn>arn:aws:lambda:us-east-1:123456789012:function:fn:live</s:FunctionArn></s:LambdaInvoke></s:Operation><s:ConfirmationRequired>false</s:ConfirmationRequired></s:CreateJobRequest>"#;
        assert_eq!(
            parse_create_job(rust_sdk.as_bytes()).unwrap(),
            parse_create_job(BOTOCORE.as_bytes()).unwrap()
        );
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
        use crate::submit::tests::{all_tasks_report, csv_manifest, lambda_invoke};
        use aws_sdk_s3control::types::S3Tag;
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
            .endpoint_resolver(crate::submit::StaticEndpoint(url))
            .build();
        let out = aws_sdk_s3control::Client::from_conf(config)
            .create_job()
            .account_id("123456789012")
            .confirmation_required(false)
            .operation(lambda_invoke(
                "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
                ("k1", "v1"),
            ))
            .report(all_tasks_report("arn:aws:s3:::rep", "reports"))
            .manifest(csv_manifest(
                "arn:aws:s3:::man/manifest.csv",
                "\"60e460c9d1046e73f7dde5043ac3ae85\"",
            ))
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
            parse_create_job(&body).unwrap(),
            parse_create_job(BOTOCORE.as_bytes()).unwrap(),
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
            // ARNs are parsed once, at CreateJob: the field, the ARN and the part named.
            (
                "<Bucket>arn:aws:s3:::rep</Bucket>",
                "<Bucket>rep</Bucket>",
                "CreateJobRequest.Report.Bucket \"rep\" is not a bucket ARN \
                 (arn:aws:s3:::bucket): it does not start with \"arn:\"",
            ),
            (
                "<Bucket>arn:aws:s3:::rep</Bucket>",
                "<Bucket>arn:aws:s3:::rep/x</Bucket>",
                "Report.Bucket \"arn:aws:s3:::rep/x\" is not a bucket ARN (arn:aws:s3:::bucket): \
                 it names an object, not a bucket",
            ),
            (
                "function:fn:live",
                "layer:fn:live",
                "CreateJobRequest.Operation.LambdaInvoke.FunctionArn \
                 \"arn:aws:lambda:us-east-1:123456789012:layer:fn:live\" is not a function ARN \
                 (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]): its resource type \
                 is \"layer\", not \"function\"",
            ),
            (
                "<ReportScope>AllTasks<",
                "<ReportScope>Failed<",
                "CreateJobRequest.Report.ReportScope is \"Failed\"; use AllTasks or FailedTasksOnly",
            ),
            (
                "<Format>Report_CSV_20180820<",
                "<Format>Report_JSON<",
                "CreateJobRequest.Report.Format is \"Report_JSON\"; use Report_CSV_20180820",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(BOTOCORE.contains(from), "{from}");
            let err = parse_create_job(BOTOCORE.replace(from, to).as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException");
            assert!(err.message.contains(expected), "{expected}: {err}");
        }
        let err = parse_create_job(b"<CreateJobRequest><a></b></CreateJobRequest>").unwrap_err();
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
            let err = parse_create_job(BOTOCORE.replace(entry, &to).as_bytes()).unwrap_err();
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
        let job = parse_create_job(BOTOCORE.replace(entry, &entries(&ten)).as_bytes()).unwrap();
        let args = &job.operation.user_arguments;
        assert_eq!(args.len(), 10);
        assert_eq!(args.get(&key), Some(value.as_str()));
        assert_eq!(args.get("k8"), Some("v"));
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
            parse_create_job(no_args.replace(v2, v1).as_bytes())
                .unwrap()
                .operation
                .schema,
            Schema::V1
        );
        assert_eq!(
            parse_create_job(no_args.replace(v2, "").as_bytes())
                .unwrap()
                .operation
                .schema,
            Schema::V1
        );
        assert_eq!(
            parse_create_job(BOTOCORE.as_bytes())
                .unwrap()
                .operation
                .schema,
            Schema::V2
        );
        for bad in ["3.0", "1.1", "2", " 2.0", "2.0.0", "v2", ""] {
            let body = BOTOCORE.replace(
                v2,
                &format!("<InvocationSchemaVersion>{bad}</InvocationSchemaVersion>"),
            );
            let err = parse_create_job(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException", "{err}");
            assert_eq!(
                err.message,
                format!(
                    "CreateJobRequest.Operation.LambdaInvoke.InvocationSchemaVersion is {bad:?}; use 1.0 or 2.0"
                )
            );
        }
        for schema in [v1, ""] {
            let err = parse_create_job(BOTOCORE.replace(v2, schema).as_bytes()).unwrap_err();
            assert_eq!(err.code, "BadRequestException", "{err}");
            assert_eq!(
                err.message,
                "CreateJobRequest.Operation.LambdaInvoke.UserArguments: user arguments need \
                 invocation schema 2.0 (S3 rejects them with 1.0)"
            );
        }
        // The echo carries the schema as it is on the wire.
        let job = parse_create_job(no_args.replace(v2, "").as_bytes()).unwrap();
        let echo = document(&El::parent("X", echo(&job)));
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
        let job = parse_create_job(BOTOCORE.as_bytes()).unwrap();
        let mut body = vec![
            El::text(
                "ClientRequestToken",
                job.client_request_token.clone().unwrap(),
            ),
            El::text("Priority", "10"),
            El::text("RoleArn", &job.role_arn),
            El::text("Description", "d"),
            El::text("ConfirmationRequired", "false"),
            El::list(
                "Tags",
                vec![vec![El::text("Key", "a"), El::text("Value", "b")]],
            ),
        ];
        body.extend(echo(&job));
        let doc = document(&El::parent("CreateJobRequest", body));
        assert_eq!(parse_create_job(doc.as_bytes()).unwrap(), job);
    }

    /// Every form the model reads is echoed as it was sent: an Inventory manifest with a
    /// version and no `Fields`, a partial function ARN, a failed-only report without format
    /// or prefix, an ARN with a region and account.
    #[test]
    fn echo_keeps_every_form() {
        let body = BOTOCORE
            .replace(
                "S3BatchOperations_CSV_20180820</Format>\n      <Fields><member>Bucket</member><member>Key</member></Fields>",
                "S3InventoryReport_CSV_20161130</Format>",
            )
            .replace(
                "<ObjectArn>arn:aws:s3:::man/manifest.csv</ObjectArn>",
                "<ObjectArn>arn:aws:s3:us-east-1:123456789012:man/inv/manifest.json</ObjectArn>\
                 <ObjectVersionId>v7</ObjectVersionId>",
            )
            .replace(
                "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
                "123456789012:function:fn",
            )
            .replace("<Format>Report_CSV_20180820</Format>", "")
            .replace("<Prefix>reports</Prefix>", "")
            .replace("AllTasks", "FailedTasksOnly");
        let job = parse_create_job(body.as_bytes()).unwrap();
        let location = job.manifest.location().unwrap();
        assert!(matches!(job.manifest, ManifestSpec::Inventory { .. }));
        assert_eq!(location.version_id.as_deref(), Some("v7"));
        assert_eq!(location.object.key(), "inv/manifest.json");
        assert_eq!(job.operation.function.name(), "fn");
        assert_eq!(
            job.report.destination().map(|(b, p, s)| (b.bucket(), p, s)),
            Some(("rep", "", s3batch_job::ReportScope::FailedTasksOnly))
        );
        let echoed = document(&El::parent("X", echo(&job)));
        for part in [
            "<Spec><Format>S3InventoryReport_CSV_20161130</Format></Spec>",
            "<ObjectArn>arn:aws:s3:us-east-1:123456789012:man/inv/manifest.json</ObjectArn>\
             <ObjectVersionId>v7</ObjectVersionId>",
            "<FunctionArn>123456789012:function:fn</FunctionArn>",
            "<Report><Bucket>arn:aws:s3:::rep</Bucket><Enabled>true</Enabled>\
             <ReportScope>FailedTasksOnly</ReportScope></Report>",
        ] {
            assert!(echoed.contains(part), "{part}\n{echoed}");
        }
    }
}
