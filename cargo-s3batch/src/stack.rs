//! `cargo s3batch stack`: the local stack in one command. S3 (moto), the function (under
//! `cargo lambda watch`) and the S3 Control job endpoint (`serve`, in this process) start
//! together; the endpoints and the environment to export are printed; Ctrl-C stops all three.

use clap::Args;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Args, Debug)]
pub struct StackArgs {
    /// The package `cargo lambda watch` serves. Default: the crate in the current directory.
    #[arg(long, short = 'p', value_name = "PACKAGE")]
    package: Option<String>,
    /// Invocations the function serves at once (`cargo lambda watch --concurrency`).
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// An S3 to use instead of starting moto. Default: `moto_server` from PATH
    /// (`scripts/setup.sh` installs it into the clone's `.venv/bin`).
    #[arg(long, value_name = "URL")]
    s3_endpoint_url: Option<String>,
    /// The port of the function's Invoke API (`cargo lambda watch`); 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    lambda_port: u16,
    /// The port of the S3 Control job endpoint; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// The port of moto's S3; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    s3_port: u16,
    /// The region the stack's clients use and job ARNs name.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// More environment for the function, `NAME=VALUE` (repeatable), besides the S3
    /// endpoint, region and test credentials it always gets.
    #[arg(long = "env-var", value_name = "NAME=VALUE")]
    env_vars: Vec<String>,
    /// The folder of `serve`'s jobs (`<dir>/serve`) and the stack's logs (`<dir>/stack`).
    #[arg(
        long,
        value_name = "DIR",
        env = "S3BATCH_STATE_DIR",
        default_value = ".s3batch"
    )]
    state_dir: PathBuf,
}

/// The credentials every part of the stack uses: moto accepts any.
const TEST_CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

/// A child process in a process group of its own, so that stopping it also stops what it
/// started (`cargo lambda watch` runs cargo, which runs the function).
struct Part {
    name: &'static str,
    child: Child,
}

impl Part {
    fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Result<Part, String> {
        let out = std::fs::File::create(log)
            .map_err(|e| format!("creating the log {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("opening the log {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            format!(
                "starting {name} ({:?}): {e}",
                cmd.as_std().get_program().to_string_lossy()
            )
        })?;
        Ok(Part { name, child })
    }

    /// SIGTERM to the whole group, then SIGKILL after a grace period.
    async fn stop(mut self) {
        let Some(pid) = self.child.id() else { return };
        let group = format!("-{pid}");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &group])
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
            let _ = self.child.wait().await;
        }
        // Whatever the leader left behind in its group.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
    }

    /// Fails when the process has exited: it will not start listening.
    fn check_running(&mut self, log: &Path) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}) before it listened; its log, {}:\n{}",
                self.name,
                log.display(),
                tail(log)
            )),
            _ => Ok(()),
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn free_port(port: u16) -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("port {port} on 127.0.0.1 is not free: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Waits until `port` accepts a connection, `part` still running, for up to `limit`.
async fn wait_listening(
    part: &mut Part,
    port: u16,
    log: &Path,
    limit: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        part.check_running(log)?;
        if started.elapsed() > limit {
            return Err(format!(
                "{} did not listen on port {port} within {} s; its log, {}:\n{}",
                part.name,
                limit.as_secs(),
                log.display(),
                tail(log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Finds `program` on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

pub async fn stack(
    args: StackArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ExitCode, String> {
    for kv in &args.env_vars {
        if !kv.contains('=') {
            return Err(format!("--env-var {kv}: expected NAME=VALUE"));
        }
    }
    let logs = args.state_dir.join("stack");
    std::fs::create_dir_all(&logs)
        .map_err(|e| format!("creating the folder {}: {e}", logs.display()))?;
    let mut parts = Vec::new();
    let result = start(&args, &logs, &mut parts).await;
    let result = match result {
        Ok((server, s3, lambda)) => {
            print_environment(&args, &logs, &s3, &lambda, &server.endpoint());
            stop.await;
            eprintln!("stopping the local stack");
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    };
    for part in parts.into_iter().rev() {
        part.stop().await;
    }
    result
}

async fn start(
    args: &StackArgs,
    logs: &Path,
    parts: &mut Vec<Part>,
) -> Result<(s3batch_control::ControlServer, String, String), String> {
    let s3 = match &args.s3_endpoint_url {
        Some(url) => url.clone(),
        None => {
            let moto = on_path("moto_server").ok_or(
                "moto_server is not on PATH: run scripts/setup.sh in the s3batch clone and put \
                 its .venv/bin on PATH, or give --s3-endpoint-url",
            )?;
            let port = free_port(args.s3_port)?;
            let mut cmd = Command::new(moto);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            let log = logs.join("moto.log");
            parts.push(Part::spawn("moto_server", cmd, &log)?);
            let part = parts.last_mut().expect("just pushed");
            wait_listening(part, port, &log, Duration::from_secs(120)).await?;
            format!("http://127.0.0.1:{port}")
        }
    };

    let lambda_port = free_port(args.lambda_port)?;
    let mut cmd = Command::new("cargo");
    cmd.args(["lambda", "watch", "-A", "127.0.0.1", "-P"])
        .arg(lambda_port.to_string())
        .args(["--concurrency", &args.concurrency.to_string()]);
    if let Some(package) = &args.package {
        cmd.args(["--package", package]);
    }
    let mut env: Vec<String> = vec![
        format!("AWS_ENDPOINT_URL={s3}"),
        format!("AWS_REGION={}", args.region),
        "AWS_EC2_METADATA_DISABLED=true".into(),
    ];
    env.extend(TEST_CREDENTIALS.iter().map(|(k, v)| format!("{k}={v}")));
    env.extend(args.env_vars.iter().cloned());
    for kv in &env {
        cmd.args(["--env-var", kv]);
    }
    let log = logs.join("watch.log");
    parts.push(Part::spawn("cargo lambda watch", cmd, &log)?);
    let part = parts.last_mut().expect("just pushed");
    // watch listens at once and builds the function on its first invocation.
    wait_listening(part, lambda_port, &log, Duration::from_secs(300))
        .await
        .map_err(|e| {
            format!("{e}\n(`cargo lambda` comes from scripts/setup.sh: put the clone's .venv/bin on PATH)")
        })?;
    let lambda = format!("http://127.0.0.1:{lambda_port}");

    let config = s3batch_control::ServeConfig::new(args.state_dir.join("serve"))
        .region(&args.region)
        .s3_endpoint(&s3)
        .lambda_endpoint(&lambda);
    // serve's clients need no credentials set here: the engine's AWS configuration gives
    // placeholder ones to a loopback endpoint that has none (`s3batch_job::aws::load`).
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.control_port));
    let server = s3batch_control::ControlServer::start(addr, config)
        .await
        .map_err(|e| format!("starting the S3 Control endpoint on {addr}: {e}"))?;
    Ok((server, s3, lambda))
}

fn print_environment(args: &StackArgs, logs: &Path, s3: &str, lambda: &str, control: &str) {
    let function = args.package.as_deref().unwrap_or("the crate here");
    println!(
        "local stack up; Ctrl-C stops all three\n\
         \x20 S3 (moto)                     {s3}  (log: {moto})\n\
         \x20 function: {function}, under cargo lambda watch  {lambda}  (log: {watch})\n\
         \x20 S3 Control job endpoint       {control}  (jobs: {jobs})\n\
         # in another shell, for cargo s3batch, the AWS CLI and your code (the AWS CLI and boto3\n\
         # put the account id in front of the S3 Control host, which then does not resolve: give\n\
         # them HTTP_PROXY={control} and --endpoint-url http://s3control.emulator.invalid):\n\
         export AWS_ENDPOINT_URL_S3={s3}\n\
         export AWS_ENDPOINT_URL_LAMBDA={lambda}\n\
         export AWS_ENDPOINT_URL_S3_CONTROL={control}\n\
         export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION={region} \
         AWS_DEFAULT_REGION={region} AWS_EC2_METADATA_DISABLED=true",
        moto = if args.s3_endpoint_url.is_some() {
            "not started here".into()
        } else {
            logs.join("moto.log").display().to_string()
        },
        watch = logs.join("watch.log").display(),
        jobs = args.state_dir.join("serve").display(),
        region = args.region,
    );
}
