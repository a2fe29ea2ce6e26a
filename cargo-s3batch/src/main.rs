//! `cargo s3batch`: run an S3 Batch Operations job on this machine (`run`, `report`), serve a
//! local S3 Control job endpoint (`serve`, or the whole local stack with `stack`), create and
//! follow real jobs (`submit`, `status`, `list`, `cancel`, `confirm`, `priority`), and run a
//! Step Functions Distributed Map state locally (`map`).
//!
//! This crate is the command line only: argument parsing (clap), the progress bar
//! (indicatif), log output (tracing-subscriber) and exit statuses. Each command is a call into
//! the libraries: `s3batch-job`, the engine (`run` is a [`LocalJob`] prepared by
//! [`lifecycle`], `report` is `s3batch_job::analyze` and `s3batch_job::lifecycle`), and
//! `s3batch-control`, the S3 Control side (`serve` is `s3batch_control::ControlServer`, the
//! job commands are `s3batch_control::submit` and `s3batch_control::status`, in `jobs`), and
//! `s3batch-map` (`map`, in `map`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3batch_job::journal::{self, JobDefinition, JobLock};
use s3batch_job::lifecycle::{self, Cancelled, FinishError, JobPlan, Start};
use s3batch_job::report::valid_job_id;
use s3batch_job::{
    storage::s3_client, FailureThreshold, HostConfig, JobStatus, LambdaInvoker, LocalJob, Location,
    ManifestSource, Redrive, ReportScope, RuntimeHost, Schema,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Exit status: the job completed (even with failed tasks).
const EXIT_COMPLETE: u8 = 0;
/// Exit status: the job could not start, or stopped on an error of its own.
const EXIT_ERROR: u8 = 1;
/// Exit status: the failure threshold stopped the job.
const EXIT_FAILED: u8 = 2;
/// Exit status: the job ran but its report could not be written (the results are kept).
const EXIT_REPORT_NOT_WRITTEN: u8 = 3;

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
    Run(Box<RunArgs>),
    /// Read a completion report (`report PATH|S3_URI`): counts by status and error code, the
    /// most frequent failure messages, and with --failed-manifest the failed rows as a manifest
    /// to run again. Or, with --job-id, write the completion report of a job from its journal
    /// again (after a run could not write it, or to write it somewhere else).
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Serve a local S3 Control job endpoint (CreateJob, DescribeJob, ListJobs,
    /// UpdateJobStatus, UpdateJobPriority) on http://127.0.0.1:PORT, running LambdaInvoke jobs
    /// with the engine of `run`.
    Serve(ServeArgs),
    /// The local stack in one command: S3 (moto), the function under `cargo lambda watch`
    /// and the S3 Control job endpoint, started together; prints the endpoints and the
    /// environment to export; Ctrl-C stops all three.
    Stack(stack::StackArgs),
    /// Create a real S3 Batch Operations LambdaInvoke job (S3 Control CreateJob).
    #[command(after_help = jobs::SUBMIT_HELP)]
    Submit(Box<jobs::SubmitArgs>),
    /// Describe a job (DescribeJob); --watch follows it to its end.
    #[command(after_help = jobs::STATUS_HELP)]
    Status(jobs::StatusArgs),
    /// List recent jobs (ListJobs).
    List(jobs::ListArgs),
    /// Cancel a job (UpdateJobStatus Cancelled).
    Cancel(jobs::UpdateArgs),
    /// Confirm a job waiting in Suspended (UpdateJobStatus Ready).
    Confirm(jobs::UpdateArgs),
    /// Change a job's priority (UpdateJobPriority).
    Priority(jobs::PriorityArgs),
    /// Run the Distributed Map state of a Step Functions definition (ASL, JSONPath mode) on
    /// this machine: its ItemReader, ItemSelector, ItemBatcher, Lambda task with Retry and
    /// Catch, tolerated failures and ResultWriter.
    #[command(after_help = map::MAP_HELP)]
    Map(Box<map::MapArgs>),
}

mod jobs;
mod map;
mod stack;

#[derive(Args, Debug)]
struct ServeArgs {
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The S3 endpoint manifests are read from and reports written to (e.g. moto).
    #[arg(long, value_name = "URL")]
    s3_endpoint_url: Option<String>,
    /// The Lambda Invoke API endpoint, e.g. http://127.0.0.1:9000 for `cargo lambda watch`.
    #[arg(long, value_name = "URL", env = "S3BATCH_LAMBDA_ENDPOINT")]
    lambda_endpoint_url: Option<String>,
    /// The region written in job ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Invocations in flight at once, per job.
    #[arg(long, short = 'j', default_value_t = 16, value_name = "N")]
    concurrency: usize,
    /// How long a cancelled job waits for its invocations in flight.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    grace_period: u64,
    /// The function's timeout, as for `run`.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    function_timeout: u64,
    /// At most N jobs running at once; the others wait Ready and start by priority (highest
    /// first, then the oldest). Default: no limit.
    #[arg(long, value_name = "N")]
    max_active_jobs: Option<usize>,
    /// How long a client may take to send a request's headers, then its body; a connection
    /// idle that long is closed.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    request_timeout: u64,
    /// At most N connections at once; more wait until one closes.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_connections: usize,
    #[command(flatten)]
    state: StateDir,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The report to read: a results CSV, a report's manifest.json, a report folder
    /// (`job-<id>`, or a folder holding one), or s3://bucket/ followed by one of those or by a
    /// report prefix. Either column order is read (the declared one, or AWS's example order
    /// with the HTTP status first).
    #[arg(value_name = "PATH|S3_URI", conflicts_with_all = ["job_id", "report", "report_scope"])]
    source: Option<Location>,

    #[command(flatten)]
    analyze: AnalyzeArgs,

    /// The job id (with --report: write this job's report from its journal).
    #[arg(long, value_parser = parse_job_id, required_unless_present = "source")]
    job_id: Option<String>,

    /// Where to write the report: a folder or s3://bucket/prefix.
    #[arg(
        long,
        short = 'r',
        value_name = "DIR|S3_URI",
        required_unless_present = "source"
    )]
    report: Option<Location>,

    /// Which tasks the report lists.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    report_scope: Scope,

    #[command(flatten)]
    state: StateDir,

    /// The S3 endpoint for an s3:// report.
    #[arg(long, value_name = "URL")]
    s3_endpoint_url: Option<String>,
}

/// `report PATH`: what to print and which failed rows to write.
#[derive(Args, Debug)]
struct AnalyzeArgs {
    /// Write the failed rows as a manifest (`bucket,key[,versionId]`, keys URL-encoded) to this
    /// file or s3://bucket/key, ready for `cargo s3batch run --manifest`.
    #[arg(long, value_name = "PATH|S3_URI", conflicts_with = "job_id")]
    failed_manifest: Option<Location>,

    /// Only failed rows with this error code (repeat for more).
    #[arg(long, value_name = "CODE", value_parser = parse_code, conflicts_with = "job_id")]
    code: Vec<s3batch::ResultCode>,

    /// Only failed rows whose message matches this regular expression (searched anywhere in
    /// the message: a plain word is a substring; `(?i)` ignores case).
    #[arg(long, value_name = "REGEX", conflicts_with = "job_id")]
    message: Option<String>,

    /// How many of the most frequent messages to print.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        conflicts_with = "job_id"
    )]
    top: usize,
}

fn parse_code(s: &str) -> Result<s3batch::ResultCode, String> {
    s.parse::<s3batch::ResultCode>().map_err(|e| e.to_string())
}

const REPORT_EXAMPLES: &str = "\
Examples:
  # what failed, and why
  cargo s3batch report ./report/job-<id>
  # retry the temporary failures only
  cargo s3batch report s3://my-reports/batch/job-<id>/manifest.json \\
      --code TemporaryFailure --failed-manifest failed.csv
  cargo s3batch run --manifest failed.csv --function my-fn --report ./retry
  # write the report of job <id> from its journal again
  cargo s3batch report --job-id <id> --report ./report";

const EXAMPLES: &str = "\
Examples:
  # a function served by `cargo lambda watch` (default port 9000), objects in a local S3
  cargo s3batch run --manifest manifest.csv --function copy_rename \\
      --endpoint-url http://127.0.0.1:9000 --s3-endpoint-url http://127.0.0.1:5000 \\
      --schema 2.0 --user-arg destBucket=archive --report ./report

  # a deployed function, manifest and report in S3, your usual AWS credentials
  cargo s3batch run --manifest s3://my-bucket/manifest.csv --function my-fn \\
      --report s3://my-reports/batch/

Journal and resume: every finished task is appended to <state-dir>/job-<id>/journal.jsonl as
it finishes. Ctrl-C or SIGTERM stops starting tasks, waits up to --grace-period for those in
flight, writes the partial report (status Cancelled) and keeps the journal; a second Ctrl-C
quits at once. Continue with the same command plus `--job-id <id> --resume` (after a crash or
kill -9 too): finished tasks are not run again, and the report lists every row once. The
journal is deleted once the report of a finished job is written.

Exit status: 0 the job completed (even with failed tasks); 1 it could not start (arguments,
manifest, report destination, journal) or stopped on an error; 2 the failure threshold
stopped it; 3 it ran but the report could not be written (the journal is kept: see
`cargo s3batch report`); 130 / 143 cancelled by SIGINT / SIGTERM.";

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

    #[command(flatten)]
    invocation: Invocation,

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
    /// `job-<id>/` below it, as S3 does, replacing an earlier report of the same job id.
    /// Checked before the job starts (and by --dry-run).
    #[arg(long, short = 'r', value_name = "DIR|S3_URI")]
    report: Option<Location>,

    /// Which tasks the report lists.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    report_scope: Scope,

    /// The job id (default: a random UUID): 1 to 64 of A-Z a-z 0-9 - _.
    #[arg(long, value_parser = parse_job_id)]
    job_id: Option<String>,

    /// Continue the job --job-id from its journal: its finished tasks are not run again.
    /// The manifest must be the same (checked by digest).
    #[arg(long, requires = "job_id")]
    resume: bool,

    #[command(flatten)]
    state: StateDir,

    /// After Ctrl-C or SIGTERM, how long to wait for invocations in flight; tasks still
    /// running then are not recorded (a resumed job runs them again).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    grace_period: u64,

    /// The function's timeout: an invocation that runs longer is recorded as Lambda records a
    /// timeout (a function error). `cargo lambda watch` enforces none, so set it here. With
    /// --bootstrap it is also the deadline each process is given.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    function_timeout: u64,

    /// Check the manifest, the report destination (a probe file or object is written and
    /// deleted) and, with --resume, the journal; print what would run; invoke nothing.
    #[arg(long)]
    dry_run: bool,

    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// How the function is invoked: one definition for `run` and `submit`. The user arguments
/// are checked as S3 checks them ([`s3batch_job::UserArguments`]) while the command line is
/// read: a repeated `--user-arg` name, one S3 would refuse, or any with schema 1.0 is a
/// usage error naming it, before anything is read, run or sent.
#[derive(Debug)]
struct Invocation {
    schema: Schema,
    /// As given: distinct names, within S3's limits.
    user_args: Vec<(String, String)>,
}

/// The options of [`Invocation`], as clap reads them (unchecked).
#[derive(Args, Debug)]
struct InvocationArgs {
    /// The invocation schema: 2.0 sends s3Bucket and the user arguments.
    #[arg(long, default_value = "1.0", value_parser = schema_parser())]
    schema: Schema,

    /// A user argument for schema 2.0, as NAME=VALUE; repeat for more (at most 10, each
    /// name once; names 1 to 64 characters, values at most 1024).
    #[arg(long = "user-arg", value_name = "NAME=VALUE", value_parser = parse_user_arg)]
    user_args: Vec<(String, String)>,
}

impl clap::FromArgMatches for Invocation {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let InvocationArgs { schema, user_args } = InvocationArgs::from_arg_matches(matches)?;
        s3batch_job::UserArguments::for_schema(user_args.iter().cloned(), schema).map_err(|e| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--user-arg: {e}\n"),
            )
        })?;
        Ok(Self { schema, user_args })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for Invocation {
    fn group_id() -> Option<clap::Id> {
        InvocationArgs::group_id()
    }
    fn augment_args(cmd: clap::Command) -> clap::Command {
        InvocationArgs::augment_args(cmd)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        InvocationArgs::augment_args_for_update(cmd)
    }
}

impl Invocation {
    fn schema(&self) -> Schema {
        self.schema
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scope {
    /// Every task.
    All,
    /// Failed tasks only.
    Failed,
}

fn parse_job_id(s: &str) -> Result<String, String> {
    if valid_job_id(s) {
        Ok(s.to_owned())
    } else {
        Err("use 1 to 64 of A-Z a-z 0-9 - _ (S3's job ids are UUIDs)".into())
    }
}

/// `--schema`: one of [`Schema::ALL`] (listed in `--help`), read with `Schema`'s `FromStr`.
fn schema_parser() -> impl clap::builder::TypedValueParser<Value = Schema> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Schema::ALL.map(Schema::as_str)).try_map(|s| s.parse::<Schema>())
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
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 (clap's default, 2, is the failure threshold's).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            // aws-config warns about every unreachable credential and region source; the
            // job service logs each job's state changes at INFO.
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "warn,aws_config=error,s3batch_control=info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let result = match cli.command {
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Report(args) => runtime.block_on(report(args)),
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Stack(args) => {
            runtime.block_on(async { stack::stack(args, stop_signals()?).await })
        }
        Command::Submit(args) => runtime.block_on(jobs::submit(*args)),
        Command::Status(args) => runtime.block_on(jobs::status(args)),
        Command::List(args) => runtime.block_on(jobs::list(args)),
        Command::Cancel(args) => runtime.block_on(jobs::cancel(args)),
        Command::Confirm(args) => runtime.block_on(jobs::confirm(args)),
        Command::Priority(args) => runtime.block_on(jobs::priority(args)),
        Command::Map(args) => runtime.block_on(map::map(*args)),
    };
    // Invocations abandoned after the grace period must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The first SIGINT/SIGTERM received (0: none yet): a job it stopped exits 128 + it.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Catches SIGINT and SIGTERM from now on (Tokio's signal handling) and returns a future that
/// completes once the first has arrived. A second one quits at once: the journal keeps what
/// it has, as after `kill -9`.
fn stop_signals() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind| {
        signal(kind).map_err(|e| format!("listening for signal {}: {e}", kind.as_raw_value()))
    };
    let (int, term) = (SignalKind::interrupt(), SignalKind::terminate());
    let (mut ints, mut terms) = (listen(int)?, listen(term)?);
    Ok(async move {
        let first = tokio::select! {
            _ = ints.recv() => int,
            _ = terms.recv() => term,
        };
        SIGNAL.store(first.as_raw_value(), Ordering::SeqCst);
        tokio::spawn(async move {
            let second = tokio::select! {
                _ = ints.recv() => int,
                _ = terms.recv() => term,
            };
            std::process::exit(128 + second.as_raw_value());
        });
    })
}

/// Completes once SIGINT or SIGTERM has arrived (see [`stop_signals`]), saying so.
async fn signalled(stop: impl std::future::Future<Output = ()>, grace: u64) {
    stop.await;
    eprintln!(
        "\nstopping: no new tasks; waiting up to {grace} s for the invocations in flight \
         (again to quit now)"
    );
}

/// Loads the manifest, streamed (see [`ManifestSource::fetch`]): a local one is read from
/// where it is; an `s3://` one (a CSV manifest, or an S3 Inventory `manifest.json` and its
/// data files) is downloaded into the job's state folder and read from there.
async fn load_manifest(
    location: &Location,
    s3: &aws_sdk_s3::Client,
    dir: &Path,
) -> Result<ManifestSource, String> {
    ManifestSource::fetch(location, s3, dir)
        .await
        .map_err(|e| e.to_string())
}

/// Where job journals live: `--state-dir`, for both `run` and `report`.
#[derive(Args, Debug)]
struct StateDir {
    /// The folder holding job journals, one `job-ID` folder each.
    #[arg(
        long,
        value_name = "DIR",
        env = "S3BATCH_STATE_DIR",
        default_value = ".s3batch"
    )]
    state_dir: PathBuf,
}

fn journal_dir(state: &StateDir, job_id: &str) -> PathBuf {
    state.state_dir.join(format!("job-{job_id}"))
}

/// `report PATH`: reads the report, prints the counts, writes the failed manifest.
async fn analyze(
    source: &Location,
    args: &AnalyzeArgs,
    s3: &aws_sdk_s3::Client,
) -> Result<ExitCode, String> {
    use s3batch_job::analyze::{
        read_report_rows, Analysis, AnalyzeError, FailedManifest, Filter, ManifestOut,
    };
    let mut filter = Filter::new().codes(args.code.iter().copied());
    if let Some(pattern) = &args.message {
        filter = filter.message(pattern).map_err(|e| e.to_string())?;
    }
    let mut analysis = Analysis::default();
    let mut out = match &args.failed_manifest {
        Some(location) => {
            let (out, file) = ManifestOut::create(location).map_err(|e| e.to_string())?;
            Some((out, FailedManifest::to_writer(file)))
        }
        None => None,
    };
    let read = read_report_rows(source, s3, &mut |row| {
        let keep = filter.keeps(&row);
        analysis.add(&row, keep);
        match &mut out {
            Some((_, manifest)) if keep => manifest.push(&row),
            _ => Ok(()),
        }
    })
    .await;
    let files = match read {
        Ok(files) => files,
        Err(e) => {
            if let Some((staged, _)) = out {
                staged.discard();
            }
            return Err(e.to_string());
        }
    };
    println!("report: {source} ({} results file(s))", files.len());
    print!("{}", analysis.render(args.top, 120));
    if let Some((staged, manifest)) = out {
        let rows = manifest.len();
        let flushed = manifest.finish().and_then(|w| {
            w.into_inner()
                .map_err(|e| AnalyzeError::WriteManifest(e.into_error()))
        });
        match flushed {
            Ok(file) => drop(file),
            Err(e) => {
                staged.discard();
                return Err(e.to_string());
            }
        }
        let location = args.failed_manifest.as_ref().expect("set with out");
        staged.publish(s3).await.map_err(|e| e.to_string())?;
        println!(
            "failed manifest: {rows} row(s) -> {location}{}",
            if rows == 0 {
                " (nothing to run again)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn report(args: ReportArgs) -> Result<ExitCode, String> {
    let s3 = s3_client(args.s3_endpoint_url.as_deref()).await;
    if let Some(source) = &args.source {
        // A Distributed Map ResultWriter manifest.json (`cargo s3batch map`, or AWS's).
        let failed = args.analyze.failed_manifest.as_ref();
        if let Some(code) = map::report(source, failed, &s3).await? {
            return Ok(code);
        }
        return analyze(source, &args.analyze, &s3).await;
    }
    let (Some(job_id), Some(destination)) = (&args.job_id, &args.report) else {
        unreachable!("clap requires --job-id and --report without a report to read")
    };
    let dir = journal_dir(&args.state, job_id);
    journal::info(&dir).map_err(|e| format!("no journal of job {job_id}: {e}"))?;
    let lock = JobLock::acquire(&dir).map_err(|e| e.to_string())?;
    let report = Some((destination, scope(args.report_scope)));
    let finished = lifecycle::finish(lock, report, Cancelled::Resumable, &s3)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(written) = &finished.report {
        println!("report: {written}");
    }
    if let Some(kept) = &finished.kept {
        println!(
            "the journal is kept in {}: the job did not finish (resume it with --resume)",
            kept.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let mut config = s3batch_control::ServeConfig::new(args.state.state_dir.join("serve"))
        .region(&args.region)
        .concurrency(args.concurrency)
        .grace_period(Duration::from_secs(args.grace_period))
        .function_timeout(Duration::from_secs(args.function_timeout))
        .request_timeout(Duration::from_secs(args.request_timeout))
        .max_connections(args.max_connections);
    if let Some(url) = &args.s3_endpoint_url {
        config = config.s3_endpoint(url);
    }
    if let Some(url) = &args.lambda_endpoint_url {
        config = config.lambda_endpoint(url);
    }
    if let Some(n) = args.max_active_jobs {
        config = config.max_active_jobs(n);
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = s3batch_control::ControlServer::start(addr, config)
        .await
        .map_err(|e| format!("starting the endpoint on {addr}: {e}"))?;
    println!(
        "S3 Control job endpoint listening on {} (see docs/job-tool.md: Local S3 Control endpoint)",
        server.endpoint()
    );
    stop_signals()?.await;
    // The jobs stop where they are; a server started again on this state folder takes them up.
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn scope(s: Scope) -> ReportScope {
    match s {
        Scope::All => ReportScope::AllTasks,
        Scope::Failed => ReportScope::FailedTasksOnly,
    }
}

async fn run(args: RunArgs) -> Result<ExitCode, String> {
    if !args.env.is_empty() && args.bootstrap.is_none() {
        return Err(
            "--env is for --bootstrap; a function invoked by name has its own environment".into(),
        );
    }
    let s3 = s3_client(args.s3_endpoint_url.as_deref()).await;
    let job_id = args
        .job_id
        .clone()
        .unwrap_or_else(s3batch_job::job::random_job_id);
    let dir = journal_dir(&args.state, &job_id);
    let definition = JobDefinition {
        function: match (&args.function, &args.bootstrap) {
            (Some(name), _) => format!("function {name}"),
            (None, Some(path)) => format!("bootstrap {}", path.display()),
            (None, None) => unreachable!("clap requires one"),
        },
        schema: args.invocation.schema().to_string(),
        user_arguments: args.invocation.user_args.iter().cloned().collect(),
        tasks_per_invocation: args.tasks_per_invocation,
        report: args
            .report
            .as_ref()
            .map(|l| format!("{l} ({:?})", scope(args.report_scope))),
    };
    // The engine's one way to prepare a job (as `serve`'s): the job's folder is this
    // process's until it exits (a second `run` or a `--resume` of a job still running is
    // refused before anything is read or invoked), the journal there agrees with the job, the
    // manifest is the one a resumed job started with, and the report destination is
    // writable. Everything that can stop the job is checked before the first invocation; a
    // job refused here leaves no folder it created behind.
    let claimed = lifecycle::claim(JobPlan {
        dir: dir.clone(),
        job_id: job_id.clone(),
        manifest_name: args.manifest.to_string(),
        definition,
        report: args.report.clone().map(|l| (l, scope(args.report_scope))),
        start: if args.resume {
            Start::Resume
        } else {
            Start::New
        },
    })
    .map_err(|e| e.to_string())?;
    let manifest = load_manifest(&args.manifest, &s3, claimed.dir()).await?;
    let prepared = claimed
        .prepare(manifest, &s3)
        .await
        .map_err(|e| e.to_string())?;
    let mut job = LocalJob::new(prepared.manifest().clone())
        .job_id(&job_id)
        .schema(args.invocation.schema())
        .tasks_per_invocation(args.tasks_per_invocation)
        .concurrency(args.concurrency)
        .grace_period(Duration::from_secs(args.grace_period))
        .redrive(Redrive::new(
            args.max_redrives,
            Duration::from_millis(args.redrive_backoff_ms),
        ))
        .failure_threshold((!args.no_failure_threshold).then(|| {
            FailureThreshold::new(args.failure_threshold_min_tasks, args.failure_threshold)
        }));
    for (k, v) in &args.invocation.user_args {
        job = job.user_argument(k, v);
    }
    let total = job.manifest().len();
    let function = match (&args.function, &args.bootstrap) {
        (Some(name), _) => format!("function {name}"),
        (None, Some(path)) => format!("{} (Runtime API)", path.display()),
        (None, None) => unreachable!("clap requires one"),
    };
    job.check().map_err(|e| e.to_string())?;
    if args.dry_run {
        eprintln!(
            "job {job_id}: {total} tasks from {} -> {function} (schema {}, {} at once); \
             dry run: the manifest{} can be used",
            args.manifest,
            args.invocation.schema,
            args.concurrency,
            if args.report.is_some() {
                " and the report destination"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let timeout = Duration::from_secs(args.function_timeout);
    // Started before the journal exists: a bootstrap that cannot be served leaves nothing
    // behind that would block a rerun of the job id.
    let host = match &args.bootstrap {
        Some(bootstrap) => {
            // Under the state dir, beside the job's folder (which is removed once the report
            // is written): the function's output outlives the job, and stays with the project.
            let log = args
                .state
                .state_dir
                .join(format!("job-{job_id}.function.log"));
            if let Err(e) = std::fs::create_dir_all(&args.state.state_dir) {
                return Err(format!(
                    "creating the state dir {}: {e}",
                    args.state.state_dir.display()
                ));
            }
            let config = args.env.iter().fold(
                HostConfig::new(bootstrap)
                    .instances(args.concurrency)
                    .timeout(timeout)
                    .log_file(&log),
                |config, (k, v)| config.env(k, v),
            );
            let host = RuntimeHost::start(config).map_err(|e| e.to_string())?;
            eprintln!("function output: {}", log.display());
            Some(host)
        }
        None => None,
    };
    let (mut journal, _) = prepared.start().map_err(|e| e.to_string())?;
    eprintln!(
        "job {job_id}: {total} tasks from {} -> {function} (schema {}, {} at once); journal in {}{}",
        args.manifest,
        args.invocation.schema,
        args.concurrency,
        dir.display(),
        if args.resume {
            format!("; resuming: {} already finished", journal.finished())
        } else {
            String::new()
        }
    );

    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} tasks  {per_sec}  eta {eta}  {msg}")
                .expect("a valid template"),
        );
        bar.set_position(journal.finished() as u64);
        bar
    };
    let progress = bar.clone();
    let job = job.on_progress(move |p| {
        progress.set_position(p.done as u64);
        progress.set_message(format!("{} failed, {} redriven", p.failed, p.redriven));
    });

    let stop = signalled(stop_signals()?, args.grace_period);
    let ran = if let Some(host) = host {
        job.run_journaled(host, &mut journal, stop).await
    } else {
        let function = args.function.as_deref().expect("clap requires one");
        let client = LambdaInvoker::client(args.endpoint_url.as_deref(), timeout).await;
        job.run_journaled(LambdaInvoker::new(client, function), &mut journal, stop)
            .await
    };
    bar.finish_and_clear();
    let outcome = match ran {
        Ok(outcome) => outcome,
        Err(e) if journal.finished() == 0 && !args.resume => {
            // Stopped before any task finished (the function check, say): nothing to keep,
            // and a journal left behind would only block a rerun with the same job id.
            let dir = journal.dir().to_owned();
            drop(journal);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.to_string());
        }
        Err(e) => {
            let kept = journal.flush().map_or_else(
                |flush| format!("keeping the results failed too: {flush}"),
                |()| format!("the results so far are kept in {}", journal.dir().display()),
            );
            return Err(format!("{e}\n{kept}"));
        }
    };
    journal.finish(&outcome.status).map_err(|e| e.to_string())?;
    let lock = journal.into_lock().map_err(|e| e.to_string())?;

    let s = &outcome.summary;
    println!("job {job_id}: {}", outcome.status);
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
    let cancelled = outcome.status == JobStatus::Cancelled;
    let report = args.report.as_ref().map(|l| (l, scope(args.report_scope)));
    match lifecycle::finish(lock, report, Cancelled::Resumable, &s3).await {
        Ok(finished) => {
            if let Some(written) = finished.report {
                println!("  report: {written}");
            }
        }
        Err(e @ FinishError::Report { .. }) => {
            eprintln!(
                "error: {e}; write the report with:\n  \
                 cargo s3batch report --job-id {job_id} --state-dir {} --report <DIR|S3_URI>",
                args.state.state_dir.display()
            );
            return Ok(ExitCode::from(EXIT_REPORT_NOT_WRITTEN));
        }
        Err(e) => return Err(e.to_string()),
    }
    if cancelled {
        println!(
            "  the journal is kept in {}: continue with the same command and --job-id {job_id} --resume",
            dir.display()
        );
        let signal = SIGNAL.load(Ordering::SeqCst);
        return Ok(ExitCode::from(128 + signal.clamp(1, 127) as u8));
    }
    Ok(ExitCode::from(match outcome.status {
        JobStatus::Failed { .. } => EXIT_FAILED,
        _ => EXIT_COMPLETE,
    }))
}

#[cfg(test)]
mod user_arg_tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["cargo-s3batch"].iter().chain(args))
    }

    fn run_with(user_args: &[&str]) -> Vec<String> {
        let mut args = vec![
            "run",
            "--manifest",
            "m.csv",
            "--function",
            "f",
            "--schema",
            "2.0",
        ];
        for a in user_args {
            args.extend(["--user-arg", a]);
        }
        args.into_iter().map(str::to_owned).collect()
    }

    fn submit_with(user_args: &[&str]) -> Vec<String> {
        let mut args = vec![
            "submit",
            "--manifest",
            "s3://b/m.csv",
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "--role-arn",
            "arn:aws:iam::123456789012:role/batch",
            "--schema",
            "2.0",
        ];
        for a in user_args {
            args.extend(["--user-arg", a]);
        }
        args.into_iter().map(str::to_owned).collect()
    }

    fn error(args: &[String]) -> clap::Error {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match parse(&args) {
            Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
            Err(e) => e,
        }
    }

    /// A repeated `--user-arg` name used to keep its last value silently; now `run` and
    /// `submit` refuse it while the command line is read, naming it.
    #[test]
    fn a_repeated_user_arg_is_refused_naming_it() {
        for args in [
            run_with(&["dest=a", "other=x", "dest=b"]),
            submit_with(&["dest=a", "other=x", "dest=b"]),
        ] {
            let e = error(&args);
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
            let text = e.to_string();
            assert!(
                text.starts_with(
                    "error: --user-arg: user argument \"dest\" is given more than once; give each name once\n"
                ),
                "{text}"
            );
            assert!(text.contains("Usage: cargo s3batch "), "{text}");
        }
    }

    /// What S3 refuses at CreateJob is refused here too, naming the limit; distinct names
    /// within the limits are kept as given.
    #[test]
    fn user_args_s3_refuses_are_usage_errors() {
        let long_name = format!("{}=v", "k".repeat(65));
        let long_value = format!("k={}", "v".repeat(1025));
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        let cases = [
            (
                run_with(&[&long_name]),
                "has 65 characters; names are 1 to 64 characters",
            ),
            (
                run_with(&["=v"]),
                "empty name; names are 1 to 64 characters",
            ),
            (
                submit_with(&[&long_value]),
                "has a value of 1025 characters; values are at most 1024 characters",
            ),
            (
                submit_with(&eleven),
                "11 user arguments; S3 allows at most 10",
            ),
        ];
        for (args, expected) in cases {
            let text = error(&args).to_string();
            assert!(text.starts_with("error: --user-arg: "), "{text}");
            assert!(text.contains(expected), "{expected}: {text}");
        }
        let mut v1 = run_with(&["k=v"]);
        v1.retain(|a| a != "--schema" && a != "2.0");
        let text = error(&v1).to_string();
        assert!(
            text.contains("user arguments need invocation schema 2.0"),
            "{text}"
        );

        let args = run_with(&["b=2", "a=x=y", "c="]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Command::Run(run) = parse(&args).unwrap().command else {
            panic!("not run");
        };
        assert_eq!(run.invocation.schema, Schema::V2);
        assert_eq!(
            run.invocation.user_args,
            [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "x=y".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
    }
}
