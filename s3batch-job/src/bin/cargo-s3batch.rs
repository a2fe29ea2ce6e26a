//! `cargo s3batch`: run an S3 Batch Operations job on this machine.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3batch_job::{
    storage::s3_client, FailureThreshold, HostConfig, JobStatus, LambdaInvoker, LocalJob, Location,
    Manifest, Redrive, ReportScope, RuntimeHost, Schema,
};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Run an S3 Batch Operations "Invoke AWS Lambda function" job on this machine: read a
/// manifest, invoke the function once per object the way S3 does (through the Lambda Invoke
/// API, e.g. `cargo lambda watch` or a deployed function), apply S3's redrive and failure
/// rules, and write the completion report.
#[derive(Parser, Debug)]
#[command(name = "cargo-s3batch", bin_name = "cargo s3batch", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a job: manifest in, completion report out.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
}

const EXAMPLES: &str = "\
Examples:
  # a function served by `cargo lambda watch` (default port 9000), objects in a local S3
  cargo s3batch run --manifest manifest.csv --function copy_rename \\
      --endpoint-url http://127.0.0.1:9000 --s3-endpoint-url http://127.0.0.1:5000 \\
      --schema 2.0 --user-arg destBucket=archive --report ./report

  # a deployed function, manifest and report in S3, your usual AWS credentials
  cargo s3batch run --manifest s3://my-bucket/manifest.csv --function my-fn \\
      --report s3://my-reports/batch/

Exit status: 0 when the job completed (even with failed tasks), 2 when the failure threshold
stopped it, 1 when it could not start.";

#[derive(Args, Debug)]
struct RunArgs {
    /// The manifest: a CSV file (`bucket,key[,versionId]`, keys URL-encoded) or an S3
    /// Inventory manifest.json; a local path or s3://bucket/key.
    #[arg(long, short = 'm', value_name = "PATH|S3_URI")]
    manifest: Location,

    /// The function to invoke: a name, name:qualifier or ARN. With `cargo lambda watch` it is
    /// the binary's name.
    #[arg(
        long,
        short = 'f',
        value_name = "NAME",
        required_unless_present = "bootstrap"
    )]
    function: Option<String>,

    /// Run this built function binary (e.g. target/debug/my_fn, or the bootstrap from `cargo
    /// lambda build`) through the Lambda Runtime API instead of invoking a function: one
    /// process per --concurrency slot, each with a real deadline, replaced when it crashes
    /// or times out, as on Lambda. Its output goes to a log file (printed at the start).
    #[arg(long, value_name = "PATH", conflicts_with = "function")]
    bootstrap: Option<std::path::PathBuf>,

    /// With --bootstrap: an environment variable for the function, as NAME=VALUE; repeat for
    /// more. The function also gets this command's environment and Lambda's variables.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_user_arg)]
    env: Vec<(String, String)>,

    /// The Lambda Invoke API endpoint, e.g. http://127.0.0.1:9000 for `cargo lambda watch`.
    /// Without it, the AWS configuration decides (AWS_ENDPOINT_URL_LAMBDA, region...).
    #[arg(long, value_name = "URL", env = "S3BATCH_LAMBDA_ENDPOINT")]
    endpoint_url: Option<String>,

    /// The S3 endpoint for an s3:// manifest or report (e.g. a local moto server).
    /// Without it, the AWS configuration decides (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL...).
    #[arg(long, value_name = "URL")]
    s3_endpoint_url: Option<String>,

    /// The invocation schema: 2.0 sends s3Bucket and the user arguments.
    #[arg(long, default_value = "1.0", value_parser = ["1.0", "2.0"])]
    schema: String,

    /// A user argument for schema 2.0, as NAME=VALUE; repeat for more (at most 10).
    #[arg(long = "user-arg", value_name = "NAME=VALUE", value_parser = parse_user_arg)]
    user_args: Vec<(String, String)>,

    /// Tasks per invocation (S3 sends 1).
    #[arg(long, default_value_t = 1, value_name = "N")]
    tasks_per_invocation: usize,

    /// Invocations in flight at once.
    #[arg(long, short = 'j', default_value_t = 16, value_name = "N")]
    concurrency: usize,

    /// How many times a TemporaryFailure (or a failed Invoke call) is redriven.
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_redrives: u32,

    /// The wait before the first redrive of a task, doubled on each next one (max 30 s).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    redrive_backoff_ms: u64,

    /// Stop the job once more than this percentage of finished tasks have failed...
    #[arg(long, default_value_t = 50.0, value_name = "PERCENT")]
    failure_threshold: f64,

    /// ...after at least this many tasks have finished.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    failure_threshold_min_tasks: usize,

    /// Run every task whatever fails.
    #[arg(long, conflicts_with_all = ["failure_threshold", "failure_threshold_min_tasks"])]
    no_failure_threshold: bool,

    /// Where to write the completion report: a folder or s3://bucket/prefix. It goes in
    /// `job-<id>/` below it, as S3 does.
    #[arg(long, short = 'r', value_name = "DIR|S3_URI")]
    report: Option<Location>,

    /// Which tasks the report lists.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    report_scope: Scope,

    /// The job id (default: a random UUID).
    #[arg(long)]
    job_id: Option<String>,

    /// The function's timeout: an invocation that runs longer is recorded as Lambda records a
    /// timeout (a function error). `cargo lambda watch` enforces none, so set it here. With
    /// --bootstrap it is also the deadline each process is given.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    function_timeout: u64,

    /// Check the manifest and print what would run, without invoking anything.
    #[arg(long)]
    dry_run: bool,

    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scope {
    /// Every task.
    All,
    /// Failed tasks only.
    Failed,
}

fn parse_user_arg(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    Ok((k.to_owned(), v.to_owned()))
}

fn main() -> ExitCode {
    // As a cargo subcommand, cargo passes "s3batch" first.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "s3batch") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            // aws-config warns about every unreachable credential and region source.
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,aws_config=error".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let Command::Run(args) = cli.command;
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: RunArgs) -> Result<ExitCode, String> {
    if !args.env.is_empty() && args.bootstrap.is_none() {
        return Err(
            "--env is for --bootstrap; a function invoked by name has its own environment".into(),
        );
    }
    let s3 = s3_client(args.s3_endpoint_url.as_deref()).await;
    let manifest = Manifest::load(&args.manifest, &s3)
        .await
        .map_err(|e| e.to_string())?;
    let mut job = LocalJob::new(manifest)
        .schema(if args.schema == "2.0" {
            Schema::V2
        } else {
            Schema::V1
        })
        .tasks_per_invocation(args.tasks_per_invocation)
        .concurrency(args.concurrency)
        .redrive(Redrive::new(
            args.max_redrives,
            Duration::from_millis(args.redrive_backoff_ms),
        ))
        .failure_threshold((!args.no_failure_threshold).then(|| {
            FailureThreshold::new(args.failure_threshold_min_tasks, args.failure_threshold)
        }));
    if let Some(id) = args.job_id {
        job = job.job_id(id);
    }
    for (k, v) in args.user_args {
        job = job.user_argument(k, v);
    }
    let total = job.manifest().len();
    let function = match (&args.function, &args.bootstrap) {
        (Some(name), _) => format!("function {name}"),
        (None, Some(path)) => format!("{} (Runtime API)", path.display()),
        (None, None) => unreachable!("clap requires one"),
    };
    eprintln!(
        "job {}: {total} tasks from {} -> {function} (schema {}, {} at once)",
        job.id(),
        args.manifest,
        args.schema,
        args.concurrency
    );
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }

    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} tasks  {per_sec}  eta {eta}  {msg}")
                .expect("a valid template"),
        );
        bar
    };
    let progress = bar.clone();
    let job = job.on_progress(move |p| {
        progress.set_position(p.done as u64);
        progress.set_message(format!("{} failed, {} redriven", p.failed, p.redriven));
    });

    let timeout = Duration::from_secs(args.function_timeout);
    let report = if let Some(bootstrap) = &args.bootstrap {
        let log = std::env::temp_dir().join(format!("s3batch-{}-function.log", job.id()));
        let config = args.env.iter().fold(
            HostConfig::new(bootstrap)
                .instances(args.concurrency)
                .timeout(timeout)
                .log_file(&log),
            |config, (k, v)| config.env(k, v),
        );
        let host = RuntimeHost::start(config).map_err(|e| e.to_string())?;
        eprintln!("function output: {}", log.display());
        job.run(host).await
    } else {
        let function = args.function.as_deref().expect("clap requires one");
        let client = LambdaInvoker::client(args.endpoint_url.as_deref(), timeout).await;
        job.run(LambdaInvoker::new(client, function)).await
    }
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();

    let s = &report.summary;
    println!(
        "job {}: {}",
        report.job_id,
        match &report.status {
            JobStatus::Complete => "Complete".to_owned(),
            JobStatus::Failed { reason } => format!("Failed: {reason}"),
        }
    );
    println!(
        "  tasks: {} total, {} succeeded, {} failed{}",
        s.total,
        s.succeeded,
        s.failed,
        if s.not_run > 0 {
            format!(", {} not run", s.not_run)
        } else {
            String::new()
        }
    );
    println!(
        "  redriven: {} redrives of {} tasks; {} invocations",
        s.redriven, s.tasks_redriven, s.invocations
    );
    println!(
        "  time: {:.2} s, {:.1} tasks/s",
        s.elapsed.as_secs_f64(),
        s.tasks_per_second()
    );
    if let Some(location) = &args.report {
        let scope = match args.report_scope {
            Scope::All => ReportScope::AllTasks,
            Scope::Failed => ReportScope::FailedTasksOnly,
        };
        let written = report.write(location, scope, &s3).await?;
        println!("  report: {written}");
    }
    Ok(match report.status {
        JobStatus::Complete => ExitCode::SUCCESS,
        JobStatus::Failed { .. } => ExitCode::from(2),
    })
}
