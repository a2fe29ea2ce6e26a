//! `cargo s3batch map`: run the Distributed Map state of an ASL definition on this machine,
//! a thin call into `s3batch-map` with the engine's invokers.

use clap::Args;
use s3batch_job::{HostConfig, Invoke, LambdaInvoker, RuntimeHost};
use s3batch_map::{MapDefinition, MapRun, MapStatus, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub(crate) const MAP_HELP: &str = "\
Examples:
  # The function under `cargo lambda watch`, items and results on moto:
  cargo s3batch map --definition machine.asl.json --input '{\"bucket\":\"photos\"}' \\
      --lambda-endpoint-url http://127.0.0.1:9000 --function my_fn \\
      --endpoint-url http://127.0.0.1:5000

  # A built bootstrap, with a local folder standing in for S3 (s3://B/K is ./s3/B/K):
  cargo s3batch map --definition machine.asl.json --input input.json \\
      --bootstrap target/debug/my_fn --local-s3 ./s3

Journal and resume: every finished child execution is appended to
<state-dir>/map/<run id>/journal.jsonl as it finishes. After Ctrl-C (the results so far are
written, PENDING for the children not started), a crash or kill -9, continue with the same
command plus `--run-id <id> --resume`: the items are read again, and the children that
finished are not run again (their results are kept). The journal is removed once a run that
ended has written its results.

Exit status: 0 the Map Run succeeded, 2 it failed (tolerated failure threshold, reader),
130 it was stopped (Ctrl-C: no child starts after it, those in flight finish, the results
are written), 1 it could not run. A JSON summary goes to stdout.";

#[derive(Args, Debug)]
pub(crate) struct MapArgs {
    /// The state machine definition (ASL, JSONPath mode).
    #[arg(long, value_name = "FILE")]
    definition: PathBuf,
    /// The execution input: a JSON file, or JSON text. With --state, the Map state's input.
    #[arg(long, value_name = "FILE|JSON", default_value = "{}")]
    input: String,
    /// The Distributed Map state to run, when it is not the definition's StartAt state.
    #[arg(long, value_name = "NAME")]
    state: Option<String>,
    /// The Lambda Invoke API endpoint, e.g. http://127.0.0.1:9000 for `cargo lambda watch`.
    #[arg(
        long,
        visible_alias = "function-url",
        value_name = "URL",
        env = "S3BATCH_LAMBDA_ENDPOINT"
    )]
    lambda_endpoint_url: Option<String>,
    /// The function to invoke; default: the name in the definition's FunctionName or
    /// Resource ARN (under `cargo lambda watch`, the binary's name).
    #[arg(long, value_name = "NAME", conflicts_with = "bootstrap")]
    function: Option<String>,
    /// Run this built function binary through the Lambda Runtime API instead of invoking a
    /// function by name.
    #[arg(long, value_name = "PATH")]
    bootstrap: Option<PathBuf>,
    /// With --bootstrap: how many function processes (default: MaxConcurrency, at most 64).
    #[arg(long, value_name = "N")]
    instances: Option<usize>,
    /// The function's timeout: a longer invocation is a function error.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    function_timeout: u64,
    /// The S3 endpoint the ItemReader reads from and the ResultWriter writes to (e.g. moto).
    #[arg(long, value_name = "URL", conflicts_with = "local_s3")]
    endpoint_url: Option<String>,
    /// A folder standing in for S3: s3://BUCKET/KEY is DIR/BUCKET/KEY, for reading and
    /// writing.
    #[arg(long, value_name = "DIR")]
    local_s3: Option<PathBuf>,
    /// The folder for staging files (one folder per Map Run).
    #[arg(
        long,
        value_name = "DIR",
        env = "S3BATCH_STATE_DIR",
        default_value = ".s3batch"
    )]
    state_dir: PathBuf,
    /// The Map Run id (default: a random UUID); the ResultWriter folder's name.
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Continue the Map Run --run-id from its journal (after Ctrl-C, a crash or kill -9):
    /// its finished children are not run again. The Map state and its input must be the
    /// same.
    #[arg(long, requires = "run_id")]
    resume: bool,
}

/// The function name of `function` as written in a definition: the name in a Lambda ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`), else as written.
fn function_name(function: &str) -> String {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_owned(),
        None => function.to_owned(),
    }
}

pub(crate) async fn map(args: MapArgs) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.definition)
        .map_err(|e| format!("reading {}: {e}", args.definition.display()))?;
    let def = MapDefinition::parse(&text, args.state.as_deref())
        .map_err(|e| format!("{}: {e}", args.definition.display()))?;
    let input: serde_json::Value = match serde_json::from_str(&args.input) {
        Ok(v) => v,
        Err(_) => {
            let bytes = std::fs::read(&args.input).map_err(|e| {
                format!(
                    "--input {:?} is neither JSON nor a readable file: {e}",
                    args.input
                )
            })?;
            serde_json::from_slice(&bytes).map_err(|e| format!("--input {}: {e}", args.input))?
        }
    };
    let store = match (&args.local_s3, &args.endpoint_url) {
        (Some(dir), _) => Store::Local(dir.clone()),
        (None, endpoint) => Store::S3(s3batch_job::storage::s3_client(endpoint.as_deref()).await),
    };
    let machine = args
        .definition
        .file_stem()
        .map_or("local".into(), |s| s.to_string_lossy().into_owned())
        .replace(['.', ' '], "-");
    let timeout = Duration::from_secs(args.function_timeout);
    let concurrency = match def.max_concurrency {
        0 => 64,
        n => (n as usize).min(64),
    };
    let work = args.state_dir.join("map");
    match &args.bootstrap {
        Some(bootstrap) => {
            std::fs::create_dir_all(&work)
                .map_err(|e| format!("creating {}: {e}", work.display()))?;
            let log = work.join(format!("{machine}.function.log"));
            let host = RuntimeHost::start(
                HostConfig::new(bootstrap)
                    .function_name(function_name(&def.task.function))
                    .instances(args.instances.unwrap_or(concurrency))
                    .timeout(timeout)
                    .log_file(&log),
            )
            .map_err(|e| e.to_string())?;
            eprintln!("function output: {}", log.display());
            go(def, host, store, work, machine, &args, input).await
        }
        None => {
            if args.lambda_endpoint_url.is_none() {
                eprintln!(
                    "no --lambda-endpoint-url: invoking through the AWS configuration's Lambda \
                     endpoint"
                );
            }
            let name = args
                .function
                .clone()
                .unwrap_or_else(|| function_name(&def.task.function));
            let client = LambdaInvoker::client(args.lambda_endpoint_url.as_deref(), timeout).await;
            let invoker = LambdaInvoker::new(client, name);
            invoker.check().await.map_err(|e| e.to_string())?;
            go(def, invoker, store, work, machine, &args, input).await
        }
    }
}

async fn go<I: Invoke>(
    def: MapDefinition,
    invoker: I,
    store: Store,
    work: PathBuf,
    machine: String,
    args: &MapArgs,
    input: serde_json::Value,
) -> Result<ExitCode, String> {
    let mut run = MapRun::new(def, invoker, store, work)
        .machine_name(machine)
        .resume(args.resume);
    if let Some(id) = &args.run_id {
        run = run.run_id(id);
    }
    eprintln!(
        "Map Run {}: journal in {}",
        run.id(),
        run.journal_dir().display()
    );
    // Ctrl-C: no child starts after it, those in flight finish, the results are written.
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        eprintln!("stopping: waiting for the children in flight, then writing the results");
    };
    let outcome = run
        .run_until(input, stop)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome).expect("JSON serializes")
    );
    Ok(match outcome.status {
        MapStatus::Succeeded => ExitCode::SUCCESS,
        MapStatus::Failed { error, cause } => {
            eprintln!("the Map Run failed: {error}: {cause}");
            ExitCode::from(2)
        }
        MapStatus::Aborted => {
            eprintln!(
                "stopped: the journal is kept in {}; continue with the same command plus \
                 --run-id {} --resume",
                run.journal_dir().display(),
                run.id()
            );
            ExitCode::from(130)
        }
    })
}

/// `report PATH` on a Distributed Map `ResultWriter` `manifest.json` (local or `s3://`):
/// prints its counts and most frequent errors, and with `failed_out` writes the failed and
/// pending children's items (as the children received them) as a JSON array, to run again
/// with an `ItemReader` of `InputType` `JSON` and no `ItemSelector`. `None` when `source` is
/// not such a manifest (an S3 Batch report, then).
pub(crate) async fn report(
    source: &s3batch_job::Location,
    failed_out: Option<&s3batch_job::Location>,
    s3: &aws_sdk_s3::Client,
) -> Result<Option<ExitCode>, String> {
    use s3batch_job::Location;
    use s3batch_map::results::{is_map_manifest, ResultsSource};
    let results_source = match source {
        Location::Local(path) if path.is_file() => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !is_map_manifest(&bytes) {
                return Ok(None);
            }
            ResultsSource::Local(path.clone())
        }
        Location::S3 { bucket, key } if key.ends_with("manifest.json") => {
            let source = ResultsSource::S3 {
                client: s3.clone(),
                bucket: bucket.clone(),
                key: key.clone(),
            };
            let Ok(body) = s3batch_job::storage::get(s3, bucket, key).await else {
                return Ok(None);
            };
            if !is_map_manifest(&body) {
                return Ok(None);
            }
            source
        }
        _ => return Ok(None),
    };
    let results = results_source.read().await.map_err(|e| e.to_string())?;
    println!("Map Run {}", results.map_run_arn);
    for (status, n) in &results.executions {
        println!("  {status}: {n} child execution(s)");
    }
    for (error, n) in &results.errors {
        println!("  failed with {error}: {n}");
    }
    println!("  items to run again: {}", results.items_to_rerun.len());
    if let Some(out) = failed_out {
        let bytes = serde_json::to_vec_pretty(&results.items_to_rerun).expect("JSON serializes");
        match out {
            Location::Local(path) => {
                std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Location::S3 { bucket, key } => {
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.into())
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "writing {out}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        )
                    })?;
            }
        }
        println!("items to run again written to {out} (a JSON array: ItemReader InputType JSON, no ItemSelector)");
    }
    Ok(Some(ExitCode::SUCCESS))
}

#[cfg(test)]
mod tests {
    #[test]
    fn function_names_come_out_of_arns() {
        use super::function_name;
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn:live"),
            "my_fn"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn"),
            "my_fn"
        );
        assert_eq!(function_name("my_fn"), "my_fn");
    }
}
