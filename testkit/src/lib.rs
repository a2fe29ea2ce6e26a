//! Fixtures for s3batch's own integration tests: real tools on loopback, started per test
//! and stopped when dropped.
//!
//! - [`Moto`]: an S3-compatible server (`moto_server`), with an aws-sdk-s3 client for it.
//! - [`LambdaWatch`]: `cargo lambda watch` serving one of the workspace's functions, invoked
//!   through the Lambda Invoke API or with `cargo lambda invoke`.
//!
//! - [`FaultProxy`]: an HTTP proxy in front of moto that answers chosen requests with S3
//!   errors, dropped connections or stalls.
//! - `control` (feature `control`): moto, `examples/chaos` and an S3 Control client, for
//!   the tests of the S3 Control endpoint and its CLI.
//!
//! Both tools come from the project-local venv that `scripts/setup.sh` creates. A missing tool
//! is a test failure whose message names that command, never a skip.

#[cfg(feature = "control")]
pub mod control;
mod fault;

pub use fault::{Fault, FaultProxy};

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory cargo builds into: `CARGO_TARGET_DIR` when set (a relative one is taken from
/// the workspace root, where [`build_package`] and the tests run cargo), else the workspace's
/// `target/`. Built binaries are under `debug/`, `cargo lambda build`'s under `lambda/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A fresh folder for a test, `s3batch-NAME-PID` in the system's temporary folder: emptied
/// if a run before left it, and created.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s3batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a command that ran gave (its status, stdout and stderr), for an assertion's message.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// GetObject `s3://BUCKET/KEY`, or a panic naming it.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::get_object::GetObjectOutput {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"))
}

/// The content of `s3://BUCKET/KEY`, or a panic naming it.
pub async fn object_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = get_object(s3, bucket, key).await;
    out.body.collect().await.unwrap().to_vec()
}

/// How a CSV manifest writes a key, written here independently of the code under test: every
/// byte but unreserved ones and `/` as `%XX` (a space is `%20`, which S3 then forwards as `+`).
pub fn manifest_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// The path of a tool installed by `scripts/setup.sh`, or a panic that says to run it.
pub fn tool(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/setup.sh` (it installs cargo-lambda and moto into .venv)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on port {port}: {status}");
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not listen on port {port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running child process, killed when dropped together with every process it started
/// (`cargo lambda watch` starts the function's processes in process groups of their own, so
/// they would otherwise outlive the test as orphans).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // Collect the descendants first: once the child is gone they are re-parented.
        let descendants = descendants(self.0.id());
        let _ = self.0.kill();
        for pid in descendants {
            // SAFETY: kill(2) only sends a signal; no memory is shared.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = self.0.wait();
    }
}

/// Every process below `root` in the process tree (not `root` itself), read from `/proc`:
/// its children first, then theirs.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the
        // last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A moto S3 server on a free loopback port.
pub struct Moto {
    port: u16,
    _child: Running,
}

impl Moto {
    /// Starts `moto_server` and waits until it answers.
    pub fn start() -> Moto {
        let port = free_port();
        let mut child = Command::new(tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning moto_server");
        wait_for_port(port, &mut child, "moto_server", Duration::from_secs(60));
        Moto {
            port,
            _child: Running(child),
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a function needs to reach this server with aws-sdk-s3.
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&self.endpoint())
    }

    /// An S3 client for this server.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint()).await
    }

    /// An S3 client for this server, once it has created the buckets `names`.
    pub async fn client_with_buckets(&self, names: &[&str]) -> aws_sdk_s3::Client {
        let s3 = self.client().await;
        for name in names {
            s3.create_bucket()
                .bucket(*name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("creating bucket {name}: {e:?}"));
        }
        s3
    }
}

/// The environment for an S3 endpoint on loopback with static test credentials.
pub fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// An S3 client for `endpoint`: path-style, static test credentials, us-east-1.
pub async fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let creds =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "s3batch-testkit");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Builds a workspace package's binaries (debug) so `cargo lambda watch` starts at once.
pub fn build_package(package: &str) {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package])
        .current_dir(workspace_root())
        .status()
        .expect("running cargo build");
    assert!(status.success(), "cargo build -p {package} failed");
}

/// `cargo lambda watch` serving one workspace package on a free loopback port.
pub struct LambdaWatch {
    port: u16,
    package: String,
    log: PathBuf,
    _child: Running,
    _function: Option<Running>,
}

/// What the Lambda Invoke API answered.
#[derive(Debug)]
pub struct Invocation {
    /// The HTTP status.
    pub status: u16,
    /// `X-Amz-Function-Error`, set when the function failed.
    pub function_error: Option<String>,
    /// The body: the function's response, or its error.
    pub body: String,
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` for `package` (built first), with extra environment
    /// variables for the function and an optional function timeout in seconds (passed as
    /// `--timeout` and as `AWS_LAMBDA_FUNCTION_TIMEOUT`).
    ///
    /// The function starts with the first invocation, which so includes cargo's freshness
    /// check and the process's start: warm it up before anything is measured against the
    /// timeout. `--timeout` (cargo-lambda 1.9) bounds every request watch serves, the
    /// function's own poll for its next event included: an instance left idle longer than the
    /// timeout has that poll answered 408, its runtime exits, and watch does not start another,
    /// so every later invocation is a 408. With a timeout, keep invocations back to back.
    pub fn start(
        package: &str,
        env: &[(String, String)],
        timeout_secs: Option<u64>,
    ) -> LambdaWatch {
        Self::start_with(package, env, timeout_secs, 1)
    }

    /// As [`LambdaWatch::start`], with up to `concurrency` function instances
    /// (`--concurrency`), so one slow invocation does not hold up the others.
    pub fn start_with(
        package: &str,
        env: &[(String, String)],
        timeout_secs: Option<u64>,
        concurrency: usize,
    ) -> LambdaWatch {
        build_package(package);
        Self::start_in(&workspace_root(), package, env, timeout_secs, concurrency)
    }

    /// As [`LambdaWatch::start_with`], for `package` in the Cargo project at `dir` (a crate of
    /// its own, such as one made from `templates/task`), which the caller has built. Cargo
    /// runs offline there: the build must need nothing that is not already on the machine.
    pub fn start_in(
        dir: &Path,
        package: &str,
        env: &[(String, String)],
        timeout_secs: Option<u64>,
        concurrency: usize,
    ) -> LambdaWatch {
        let port = free_port();
        let mut cmd = Command::new(tool("cargo-lambda"));
        cmd.args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--quiet",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .args(["--package", package])
        .args(["--concurrency", &concurrency.to_string()]);
        if let Some(t) = timeout_secs {
            // `--timeout` only bounds the wait for the answer: the runtime API still sends a
            // placeholder deadline, so the function learns its timeout from the variable the
            // AWS Lambda Runtime Interface Emulator uses.
            cmd.args(["--timeout", &t.to_string()]);
            cmd.args(["--env-var", &format!("AWS_LAMBDA_FUNCTION_TIMEOUT={t}")]);
        }
        for (k, v) in env {
            cmd.args(["--env-var", &format!("{k}={v}")]);
        }
        let log = std::env::temp_dir().join(format!("s3batch-watch-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .current_dir(dir)
            .env("PATH", path_with_venv())
            .env("CARGO_NET_OFFLINE", "true")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("spawning cargo lambda watch");
        wait_for_port(
            port,
            &mut child,
            "cargo lambda watch",
            Duration::from_secs(120),
        );
        LambdaWatch {
            port,
            package: package.to_owned(),
            log,
            _child: Running(child),
            _function: None,
        }
    }

    /// Serves an already built function binary (such as `cargo lambda build --release`'s
    /// `target/lambda/NAME/bootstrap`): `cargo lambda watch --only-lambda-apis` provides the
    /// Runtime and Invoke APIs, and the binary is started here against them, as Lambda
    /// starts a deployed function. The emulator serves it as its default function, `_`.
    pub fn serve_binary(binary: &Path) -> LambdaWatch {
        Self::serve(binary, None, &[])
    }

    /// As [`LambdaWatch::serve_binary`], with a function timeout in seconds: `--timeout` for
    /// watch, and `AWS_LAMBDA_FUNCTION_TIMEOUT` for the function, which so has a deadline (see
    /// [`LambdaWatch::start`]; the same caveat holds: an idle poll longer than the timeout ends
    /// the function, and nothing starts it again, so keep invocations back to back).
    pub fn serve_binary_with_timeout(binary: &Path, timeout_secs: u64) -> LambdaWatch {
        Self::serve(binary, Some(timeout_secs), &[])
    }

    /// As [`LambdaWatch::serve_binary`], with variables added to the function's environment.
    pub fn serve_binary_with_env(binary: &Path, env: &[(&str, &str)]) -> LambdaWatch {
        Self::serve(binary, None, env)
    }

    fn serve(binary: &Path, timeout_secs: Option<u64>, env: &[(&str, &str)]) -> LambdaWatch {
        let name = "_";
        let port = free_port();
        let log = std::env::temp_dir().join(format!("s3batch-watch-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(tool("cargo-lambda"));
        cmd.args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ]);
        if let Some(t) = timeout_secs {
            cmd.args(["--timeout", &t.to_string()]);
        }
        let mut child = cmd
            .current_dir(workspace_root())
            .env("PATH", path_with_venv())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file.try_clone().unwrap())
            .spawn()
            .expect("spawning cargo lambda watch --only-lambda-apis");
        wait_for_port(
            port,
            &mut child,
            "cargo lambda watch",
            Duration::from_secs(120),
        );
        let watch = Running(child);
        let mut function = Command::new(binary);
        if let Some(t) = timeout_secs {
            function.env("AWS_LAMBDA_FUNCTION_TIMEOUT", t.to_string());
        }
        let function = function
            .envs(env.iter().copied())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        LambdaWatch {
            port,
            package: name.to_owned(),
            log,
            _child: watch,
            _function: Some(Running(function)),
        }
    }

    /// The port the Invoke API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What `cargo lambda watch` and the function printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The function name to invoke (the package's binary).
    pub fn function(&self) -> &str {
        &self.package
    }

    /// `POST /2015-03-31/functions/{name}/invocations` with `payload`.
    pub fn invoke(&self, payload: &[u8]) -> Invocation {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{}/invocations",
            self.port, self.package
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let mut resp = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(payload)
            .unwrap_or_else(|e| panic!("invoking {url}: {e}"));
        let status = resp.status().as_u16();
        let function_error = resp
            .headers()
            .get("x-amz-function-error")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = resp
            .body_mut()
            .read_to_string()
            .expect("reading the invoke response");
        Invocation {
            status,
            function_error,
            body,
        }
    }

    /// Invokes with `payload` until an answer other than 408 comes back, and returns it. The
    /// first invocation includes the function's start, which on a busy machine can take
    /// longer than a short `--timeout`; the function keeps starting, and a later attempt
    /// reaches it. Gives up after five minutes, a bound for a slow start, not for the function.
    pub fn warm_up(&self, payload: &[u8]) -> Invocation {
        let started = Instant::now();
        loop {
            let inv = self.invoke(payload);
            if inv.status != 408 {
                return inv;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{} did not answer within 5 minutes of its start: {inv:?}\n{}",
                self.package,
                self.log()
            );
        }
    }

    /// Runs `cargo lambda invoke --data-file FILE` against this server: the way a user tries
    /// a function by hand.
    pub fn invoke_cli(&self, data_file: &Path) -> Output {
        Command::new(tool("cargo-lambda"))
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(data_file)
            .arg(&self.package)
            .env("PATH", path_with_venv())
            .output()
            .expect("running cargo lambda invoke")
    }
}

/// `PATH` with the venv's tools first (cargo-lambda finds its bundled Zig there).
pub fn path_with_venv() -> String {
    let venv = workspace_root().join(".venv/bin");
    format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
