//! `submit`, `status`, `list`, `cancel`, `confirm`, `priority`: jobs of S3 Batch Operations
//! (on AWS, or on `cargo s3batch serve`) through S3 Control.

use super::{parse_user_arg, Invocation, Scope};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3batch_control::model::{BucketArn, LambdaInvoke, ReportScope, UserArguments};
use s3batch_control::status::{self, Counts};
use s3batch_control::submit::{
    self, explain, Generator, JobRequest, JobSpec, ManifestSpec, ReportSpec,
};
use s3batch_job::{storage::s3_client, LocalJob, Location};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

pub(crate) const SUBMIT_HELP: &str = "\
Examples:
  # a local CSV manifest, uploaded first; a pinned function version; a report of failures
  cargo s3batch submit --manifest manifest.csv --manifest-upload s3://my-bucket/jobs/m.csv \\
      --function my-fn:3 --role-arn arn:aws:iam::123456789012:role/batch \\
      --schema 2.0 --user-arg destBucket=archive \\
      --report s3://my-reports/batch --report-scope failed

  # every object under a prefix, listed by S3 itself
  cargo s3batch submit --generate-from s3://photos/2024/ --match-suffix .jpg \\
      --function my-fn:live --role-arn arn:aws:iam::123456789012:role/batch

  # what would be sent, and the policies of the job's role; nothing is created
  cargo s3batch submit ... --dry-run
  cargo s3batch submit ... --print-policy

The job id is printed on stdout (the rest on stderr). The ClientRequestToken is derived from
the request (s3batch- and the MD5 of every resolved value, the manifest's ETag included):
running the same submit again returns the job created the first time instead of a second
one; a changed manifest or option makes a new job. --client-request-token overrides it.

With a loopback --endpoint-url (cargo s3batch serve), requests go to that URL as they are;
other endpoint URLs get the account id in front of their host, as on AWS.";

pub(crate) const STATUS_HELP: &str = "\
Exit status with --watch: 0 the job completed (even with failed tasks), 2 it failed, 3 it
was cancelled; 1 the job could not be described. Without --watch: 0 once described.";

/// Where the S3 Control API is, and the account.
#[derive(Args, Debug)]
pub(crate) struct Control {
    /// The S3 Control endpoint, e.g. http://127.0.0.1:PORT for `cargo s3batch serve`.
    /// Without it, AWS_ENDPOINT_URL_S3_CONTROL (as `cargo s3batch stack` prints it), else the
    /// AWS configuration decides.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_S3_CONTROL")]
    endpoint_url: Option<String>,
    /// The region (jobs are regional). Without it, the AWS configuration decides.
    #[arg(long)]
    region: Option<String>,
    /// The account (12 digits). Without it, STS GetCallerIdentity tells; against a local
    /// --endpoint-url (`cargo s3batch serve`), 123456789012.
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
}

impl Control {
    async fn client(&self) -> aws_sdk_s3control::Client {
        submit::control_client(self.endpoint_url.as_deref(), self.region.as_deref()).await
    }

    async fn account(&self) -> Result<String, String> {
        match &self.account_id {
            Some(a) => Ok(a.clone()),
            // A local endpoint (`cargo s3batch serve`) has no STS beside it.
            None if self
                .endpoint_url
                .as_deref()
                .is_some_and(s3batch_job::aws::is_loopback) =>
            {
                Ok(submit::LOCAL_ACCOUNT_ID.to_owned())
            }
            None => {
                let config = submit::aws_config(None, self.region.as_deref()).await;
                submit::resolve_account(&aws_sdk_sts::Client::new(&config))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct SubmitArgs {
    /// The manifest: a CSV file (`bucket,key[,versionId]`, keys URL-encoded) or an S3
    /// Inventory manifest.json; a local CSV (with --manifest-upload) or s3://bucket/key.
    #[arg(
        long,
        short = 'm',
        value_name = "PATH|S3_URI",
        required_unless_present = "generate_from"
    )]
    manifest: Option<Location>,

    /// Where to upload a local --manifest before creating the job.
    #[arg(long, value_name = "S3_URI", requires = "manifest")]
    manifest_upload: Option<Location>,

    /// Let S3 list the objects instead of a manifest (S3JobManifestGenerator): every object
    /// of the bucket, or under the prefix.
    #[arg(long, value_name = "S3_URI", conflicts_with = "manifest")]
    generate_from: Option<Location>,

    /// With --generate-from: keys starting with this too; repeat for more.
    #[arg(long, value_name = "PREFIX", requires = "generate_from")]
    match_prefix: Vec<String>,

    /// With --generate-from: keys ending with this; repeat for more.
    #[arg(long, value_name = "SUFFIX", requires = "generate_from")]
    match_suffix: Vec<String>,

    /// With --generate-from: keys containing this; repeat for more.
    #[arg(long, value_name = "TEXT", requires = "generate_from")]
    match_substring: Vec<String>,

    /// With --generate-from: objects created after this time (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "generate_from", value_parser = submit::parse_date)]
    created_after: Option<String>,

    /// With --generate-from: objects created before this time (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "generate_from", value_parser = submit::parse_date)]
    created_before: Option<String>,

    /// With --generate-from: objects larger than this many bytes.
    #[arg(long, value_name = "BYTES", requires = "generate_from")]
    larger_than: Option<i64>,

    /// With --generate-from: objects smaller than this many bytes.
    #[arg(long, value_name = "BYTES", requires = "generate_from")]
    smaller_than: Option<i64>,

    /// With --generate-from: objects of this storage class (STANDARD, GLACIER...); repeat.
    #[arg(long, value_name = "CLASS", requires = "generate_from")]
    storage_class: Vec<String>,

    /// With --generate-from: keep the generated manifest at s3://bucket/prefix.
    #[arg(long, value_name = "S3_URI", requires = "generate_from")]
    generated_manifest: Option<Location>,

    /// The function: a name, name:qualifier or ARN, resolved with Lambda GetFunction to its
    /// ARN (warnings for an unqualified or $LATEST function and a too short timeout).
    #[arg(
        long,
        short = 'f',
        value_name = "NAME|ARN",
        required_unless_present = "function_arn"
    )]
    function: Option<String>,

    /// The function's ARN, used as it is (no GetFunction call).
    #[arg(long, value_name = "ARN", conflicts_with = "function")]
    function_arn: Option<String>,

    /// The Lambda endpoint for GetFunction. A local one (`cargo lambda watch`, which has no
    /// GetFunction) is not asked: --function's name becomes
    /// arn:aws:lambda:REGION:ACCOUNT:function:NAME. Without it, AWS_ENDPOINT_URL_LAMBDA.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_LAMBDA")]
    lambda_endpoint_url: Option<String>,

    /// The S3 endpoint for the manifest and report checks and the upload. Without it,
    /// AWS_ENDPOINT_URL_S3, else the AWS configuration decides.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_S3")]
    s3_endpoint_url: Option<String>,

    #[command(flatten)]
    invocation: Invocation,

    /// The time a task keeps to return its result (the function's Options::deadline_margin):
    /// a function timeout not above twice this is warned about.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    deadline_margin_ms: u64,

    /// The job's priority: higher runs first.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..))]
    priority: i32,

    /// The job's description.
    #[arg(long)]
    description: Option<String>,

    /// The job waits in Suspended until `cargo s3batch confirm JOB`.
    #[arg(long)]
    confirmation_required: bool,

    /// A job tag, as KEY=VALUE; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_user_arg)]
    tags: Vec<(String, String)>,

    /// Where S3 writes the completion report: s3://bucket/prefix (it goes in
    /// `prefix/job-<id>/`). Without it, no report.
    #[arg(long, short = 'r', value_name = "S3_URI")]
    report: Option<Location>,

    /// Which tasks the report lists.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    report_scope: Scope,

    /// The IAM role S3 runs the job with (see --print-policy for what it needs).
    #[arg(
        long,
        value_name = "ARN",
        required_unless_present_any = ["print_policy", "create_role"]
    )]
    role_arn: Option<String>,

    /// Create the job's role NAME (or reuse it if it exists): trusting
    /// batchoperations.s3.amazonaws.com, with this job's least-privilege policy (the one
    /// --print-policy prints) as its inline policy `s3batch-job`.
    #[arg(long, value_name = "NAME", conflicts_with = "role_arn")]
    create_role: Option<String>,

    /// Print the job role's trust policy and permissions policy (least privilege for this
    /// job) and exit; nothing is created.
    #[arg(long)]
    print_policy: bool,

    /// The ClientRequestToken (default: derived from the request).
    #[arg(long, value_name = "TOKEN")]
    client_request_token: Option<String>,

    /// Check the manifest and the report bucket, print the CreateJob request and the
    /// equivalent `aws s3control create-job` command; create nothing (not even the upload).
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    control: Control,
}

pub(crate) async fn submit(args: SubmitArgs) -> Result<ExitCode, String> {
    let create = !args.dry_run && !args.print_policy;
    let s3 = s3_client(args.s3_endpoint_url.as_deref()).await;
    let control = args.control.client().await;
    let region = control
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let account_id = args.control.account().await?;

    let manifest = match (&args.manifest, &args.generate_from) {
        (_, Some(Location::S3 { bucket, key })) => {
            let mut prefixes = args.match_prefix.clone();
            if !key.is_empty() {
                prefixes.insert(0, key.clone());
            }
            ManifestSpec::Generated(Generator {
                source_bucket: bucket.clone(),
                prefixes,
                suffixes: args.match_suffix.clone(),
                substrings: args.match_substring.clone(),
                created_after: args.created_after.clone(),
                created_before: args.created_before.clone(),
                size_greater_than: args.larger_than,
                size_less_than: args.smaller_than,
                storage_classes: args.storage_class.clone(),
                output: match &args.generated_manifest {
                    Some(Location::S3 { bucket, key }) => Some((bucket.clone(), key.clone())),
                    Some(Location::Local(p)) => {
                        return Err(format!(
                            "--generated-manifest {} must be s3://bucket/prefix",
                            p.display()
                        ))
                    }
                    None => None,
                },
            })
        }
        (_, Some(Location::Local(p))) => {
            return Err(format!(
                "--generate-from {} must be s3://bucket[/prefix]",
                p.display()
            ))
        }
        (Some(location), None) => {
            let checked =
                submit::resolve_manifest(location, args.manifest_upload.as_ref(), &s3, create)
                    .await
                    .map_err(|e| e.to_string())?;
            // The checks `run` applies to the arguments (the manifest's rows were checked
            // as they were read).
            let mut job =
                LocalJob::new(s3batch_job::Manifest::default()).schema(args.invocation.schema());
            for (k, v) in &args.invocation.user_args {
                job = job.user_argument(k, v);
            }
            job.check().map_err(|e| e.to_string())?;
            eprintln!(
                "manifest: {} rows, ETag {}",
                checked.rows,
                checked.spec.location().map_or("", |l| l.etag.as_str())
            );
            checked.spec
        }
        (None, None) => unreachable!("clap requires one"),
    };
    if matches!(manifest, ManifestSpec::Generated(_)) {
        // No manifest to check: the arguments only.
        let mut job =
            LocalJob::new(s3batch_job::Manifest::default()).schema(args.invocation.schema());
        for (k, v) in &args.invocation.user_args {
            job = job.user_argument(k, v);
        }
        job.check().map_err(|e| e.to_string())?;
    }

    let function_arn = match (&args.function_arn, &args.function) {
        (Some(arn), _) => arn.clone(),
        // `cargo lambda watch` has no GetFunction: a local Lambda endpoint gets the ARN made
        // from the name.
        (None, Some(name))
            if args
                .lambda_endpoint_url
                .as_deref()
                .is_some_and(s3batch_job::aws::is_loopback) =>
        {
            submit::local_function_arn(name, &region, &account_id)
        }
        (None, Some(name)) => {
            let config =
                submit::aws_config(args.lambda_endpoint_url.as_deref(), Some(&region)).await;
            let resolved = submit::resolve_function(
                &aws_sdk_lambda::Client::new(&config),
                name,
                &region,
                Duration::from_millis(args.deadline_margin_ms),
            )
            .await
            .map_err(|e| e.to_string())?;
            for w in &resolved.warnings {
                eprintln!("warning: {w}");
            }
            resolved.arn
        }
        (None, None) => unreachable!("clap requires one"),
    };

    let report = match &args.report {
        Some(Location::S3 { bucket, key }) => ReportSpec::to(
            BucketArn::new(bucket),
            key.trim_end_matches('/'),
            match args.report_scope {
                Scope::Failed => ReportScope::FailedTasksOnly,
                Scope::All => ReportScope::AllTasks,
            },
        ),
        Some(Location::Local(p)) => {
            return Err(format!(
                "--report {}: S3 writes the report to S3: use s3://bucket/prefix",
                p.display()
            ))
        }
        None => ReportSpec::disabled(),
    };
    if let (Some((bucket, ..)), false) = (report.destination(), args.print_policy) {
        submit::check_report_bucket(&s3, bucket.bucket())
            .await
            .map_err(|e| e.to_string())?;
    }

    let mut request = JobRequest {
        account_id: account_id.clone(),
        spec: JobSpec {
            operation: LambdaInvoke {
                function: function_arn
                    .parse()
                    .map_err(|e| format!("the function: {e}"))?,
                schema: args.invocation.schema,
                // Checked while the command line was read (a repeated name is refused).
                user_arguments: UserArguments::for_schema(
                    args.invocation.user_args.iter().cloned(),
                    args.invocation.schema,
                )
                .map_err(|e| format!("--user-arg: {e}"))?,
            },
            manifest,
            report,
            priority: args.priority,
            confirmation_required: args.confirmation_required,
            client_request_token: None,
            description: args.description.clone(),
            role_arn: args.role_arn.clone().unwrap_or_else(|| {
                format!(
                    "arn:aws:iam::{account_id}:role/{}",
                    args.create_role.as_deref().unwrap_or("ROLE")
                )
            }),
            tags: args.tags.clone(),
        },
    };
    if args.print_policy {
        println!(
            "trust policy:\n{}\n\npermissions policy:\n{}",
            serde_json::to_string_pretty(&submit::trust_policy()).expect("JSON"),
            serde_json::to_string_pretty(&request.role_policy()).expect("JSON")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let token = args.client_request_token.as_deref();
    if let (Some(name), false) = (&args.create_role, args.dry_run) {
        let config = submit::aws_config(None, Some(&region)).await;
        let arn = submit::ensure_role(&aws_sdk_iam::Client::new(&config), name, &request)
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("role: {arn} (inline policy {})", submit::ROLE_POLICY_NAME);
        if arn != request.spec.role_arn {
            request.spec.role_arn = arn;
        }
    } else if let Some(name) = &args.create_role {
        eprintln!("dry run: role {name} would be created (see --print-policy)");
    }
    if args.dry_run {
        println!("CreateJob request:\n{:#?}\n", request.input(token));
        println!("the same with the AWS CLI:\n{}", request.aws_cli(token));
        eprintln!("dry run: the manifest and the report bucket can be used; nothing was created");
        return Ok(ExitCode::SUCCESS);
    }
    let id = submit::create(&control, &request, token)
        .await
        .map_err(|e| e.to_string())?;
    println!("{id}");
    eprintln!(
        "job {id} created{}; follow it with: cargo s3batch status {id} --watch",
        if args.confirmation_required {
            format!(" (waiting for: cargo s3batch confirm {id})")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// The job id.
    job_id: String,
    /// Follow the job until it ends; the exit status tells how it ended.
    #[arg(long)]
    watch: bool,
    /// With --watch: seconds between two DescribeJob calls.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    interval: f64,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    control: Control,
}

async fn describe(
    client: &aws_sdk_s3control::Client,
    account: &str,
    id: &str,
) -> Result<aws_sdk_s3control::types::JobDescriptor, String> {
    client
        .describe_job()
        .account_id(account)
        .job_id(id)
        .send()
        .await
        .map_err(|e| explain(&e, &format!("describing job {id}"), "s3:DescribeJob"))?
        .job
        .ok_or_else(|| format!("DescribeJob returned no job for {id}"))
}

pub(crate) async fn status(args: StatusArgs) -> Result<ExitCode, String> {
    let client = args.control.client().await;
    let account = args.control.account().await?;
    let mut job = describe(&client, &account, &args.job_id).await?;
    if !args.watch {
        println!("{}", status::describe(&job));
        return Ok(ExitCode::SUCCESS);
    }
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} tasks  {msg}")
                .expect("a valid template"),
        );
        bar
    };
    let mut last = None;
    loop {
        let st = job.status.clone();
        let c = Counts::of(job.progress_summary.as_ref());
        if st.as_ref().is_some_and(status::is_final) {
            bar.finish_and_clear();
            println!("{}", status::describe(&job));
            return Ok(ExitCode::from(status::exit_code(
                st.as_ref().expect("final"),
            )));
        }
        let line = format!(
            "{}: {} succeeded, {} failed of {}{}{}",
            st.as_ref().map_or("?", |s| s.as_str()),
            c.succeeded,
            c.failed,
            c.total,
            c.per_second()
                .map(|r| format!(", {r:.1} tasks/s"))
                .unwrap_or_default(),
            c.eta_seconds()
                .map(|e| format!(", eta {e:.0} s"))
                .unwrap_or_default()
        );
        if bar.is_hidden() {
            if last.as_ref() != Some(&line) {
                eprintln!("{line}");
                last = Some(line);
            }
        } else {
            bar.set_length(c.total.max(0) as u64);
            bar.set_position(c.done().max(0) as u64);
            bar.set_message(line);
        }
        tokio::time::sleep(Duration::from_secs_f64(args.interval.max(0.05))).await;
        job = describe(&client, &account, &args.job_id).await?;
    }
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Only jobs in this status (Active, Complete, Failed, Suspended...); repeat for more.
    #[arg(long = "status", value_name = "STATUS")]
    statuses: Vec<String>,
    #[command(flatten)]
    control: Control,
}

pub(crate) async fn list(args: ListArgs) -> Result<ExitCode, String> {
    let client = args.control.client().await;
    let account = args.control.account().await?;
    let mut request = client.list_jobs().account_id(&account);
    for s in &args.statuses {
        request = request.job_statuses(aws_sdk_s3control::types::JobStatus::from(s.as_str()));
    }
    let mut pages = request.into_paginator().send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain(&e, "listing jobs", "s3:ListJobs"))?;
        for j in page.jobs.unwrap_or_default() {
            println!("{}", status::list_line(&j));
            n += 1;
        }
    }
    eprintln!("{n} jobs");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub(crate) struct UpdateArgs {
    /// The job id.
    job_id: String,
    /// Why (kept with the job as its StatusUpdateReason).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    control: Control,
}

async fn update(
    args: UpdateArgs,
    to: aws_sdk_s3control::types::RequestedJobStatus,
) -> Result<ExitCode, String> {
    let client = args.control.client().await;
    let account = args.control.account().await?;
    let out = client
        .update_job_status()
        .account_id(&account)
        .job_id(&args.job_id)
        .requested_job_status(to.clone())
        .set_status_update_reason(args.reason.clone())
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_s3control::error::ProvideErrorMetadata;
            if e.code() == Some("JobStatusException") {
                format!(
                    "job {}: {} is not possible now ({}); see cargo s3batch status {}",
                    args.job_id,
                    to.as_str(),
                    e.message().unwrap_or_default(),
                    args.job_id
                )
            } else {
                explain(
                    &e,
                    &format!("updating job {}", args.job_id),
                    "s3:UpdateJobStatus",
                )
            }
        })?;
    println!(
        "job {}: {}",
        args.job_id,
        out.status.as_ref().map_or("?", |s| s.as_str())
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn cancel(args: UpdateArgs) -> Result<ExitCode, String> {
    update(
        args,
        aws_sdk_s3control::types::RequestedJobStatus::Cancelled,
    )
    .await
}

pub(crate) async fn confirm(args: UpdateArgs) -> Result<ExitCode, String> {
    update(args, aws_sdk_s3control::types::RequestedJobStatus::Ready).await
}

#[derive(Args, Debug)]
pub(crate) struct PriorityArgs {
    /// The job id.
    job_id: String,
    /// The new priority (higher runs first).
    #[arg(value_parser = clap::value_parser!(i32).range(0..))]
    priority: i32,
    #[command(flatten)]
    control: Control,
}

pub(crate) async fn priority(args: PriorityArgs) -> Result<ExitCode, String> {
    let client = args.control.client().await;
    let account = args.control.account().await?;
    let out = client
        .update_job_priority()
        .account_id(&account)
        .job_id(&args.job_id)
        .priority(args.priority)
        .send()
        .await
        .map_err(|e| {
            explain(
                &e,
                &format!("changing the priority of job {}", args.job_id),
                "s3:UpdateJobPriority",
            )
        })?;
    println!("job {}: priority {}", args.job_id, out.priority);
    Ok(ExitCode::SUCCESS)
}
