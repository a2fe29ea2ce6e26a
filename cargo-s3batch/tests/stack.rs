//! `cargo s3batch stack`: the local stack in one command. The test starts it as a user would,
//! takes the environment it prints, runs a job through it with `submit` and `status` given
//! no endpoint flag, no --account-id and no --function-arn, and stops it with SIGINT:
//! moto, `cargo lambda watch` with the function it started, and `serve` are all gone.

use s3batch_testkit::{path_with_venv, tool, workspace_root};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CLI: &str = env!("CARGO_BIN_EXE_cargo-s3batch");

/// The stack, stopped (SIGKILL to it and its parts' groups) if the test fails before its
/// own SIGINT.
struct Stack {
    child: Child,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Its parts run in process groups of their own: stop them too.
        for pid in descendants(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `export NAME=VALUE ...` lines the stack printed, as a map.
fn exports(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("export "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The parent of each process, from /proc.
fn parents() -> Vec<(u32, u32)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Every process below `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let all = parents();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// `cargo s3batch ARGS` with only the stack's environment for AWS.
fn cli(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    let out = Command::new(CLI)
        .arg("s3batch")
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .envs(env)
        .output()
        .unwrap();
    eprintln!(
        "$ cargo s3batch {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_stack_starts_runs_a_job_and_stops_together() {
    tool("moto_server");
    tool("cargo-lambda");
    let state = std::env::temp_dir().join(format!("s3batch-stack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let mut child = Command::new(CLI)
        .args([
            "s3batch",
            "stack",
            "--package",
            "hello",
            "--lambda-port",
            "0",
        ])
        .arg("--state-dir")
        .arg(&state)
        .current_dir(workspace_root())
        .env("PATH", path_with_venv())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stack = Stack { child };

    // Everything up to the last export line; moto's first start may take a while on a busy
    // machine, so the limit is generous.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !printed
        .last()
        .is_some_and(|l: &String| l.starts_with("export AWS_ACCESS_KEY_ID"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(e) => panic!("the stack printed no environment ({e}): {printed:#?}"),
        }
    }
    assert!(
        printed[0].starts_with("local stack up; Ctrl-C stops all three"),
        "{printed:#?}"
    );
    let env = exports(&printed);
    assert_eq!(
        env.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_DEFAULT_REGION",
            "AWS_EC2_METADATA_DISABLED",
            "AWS_ENDPOINT_URL_LAMBDA",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_S3_CONTROL",
            "AWS_REGION",
            "AWS_SECRET_ACCESS_KEY"
        ],
        "{printed:#?}"
    );
    let ports = [
        port_of(&env["AWS_ENDPOINT_URL_S3"]),
        port_of(&env["AWS_ENDPOINT_URL_LAMBDA"]),
        port_of(&env["AWS_ENDPOINT_URL_S3_CONTROL"]),
    ];
    assert!(ports.iter().all(|p| listening(*p)), "{printed:#?}");

    // Buckets for the manifest and the report, in the stack's S3.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(&env["AWS_ENDPOINT_URL_S3"])
            .force_path_style(true)
            .build(),
    );
    for bucket in ["jobs", "reports"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let manifest = state.join("manifest.csv");
    std::fs::write(
        &manifest,
        "photos,a+b.jpg\nphotos,fail-permanent.jpg\nphotos,c%2Bd.jpg\n",
    )
    .unwrap();

    // No endpoint flag, no --account-id, no --function-arn: the environment says it all.
    let submitted = cli(
        &env,
        &[
            "submit",
            "--manifest",
            manifest.to_str().unwrap(),
            "--manifest-upload",
            "s3://jobs/manifest.csv",
            "--function",
            "hello",
            "--role-arn",
            "arn:aws:iam::123456789012:role/batch",
            "--report",
            "s3://reports/batch",
        ],
    );
    assert!(submitted.status.success());
    let id = String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(!id.is_empty());
    let watched = cli(&env, &["status", &id, "--watch", "--interval", "0.5"]);
    let watched_out = String::from_utf8_lossy(&watched.stdout);
    assert!(watched.status.success(), "{watched_out}");
    assert!(watched_out.contains(": Complete"), "{watched_out}");
    assert!(
        watched_out.contains("tasks: 3 total, 2 succeeded, 1 failed, 0 to go"),
        "{watched_out}"
    );
    // The AWS CLI (v1, which reads the region from `AWS_DEFAULT_REGION` only) reaches the
    // stack's S3 Control endpoint with the printed environment and the printed proxy recipe.
    let control = &env["AWS_ENDPOINT_URL_S3_CONTROL"];
    let recipe =
        format!("HTTP_PROXY={control} and --endpoint-url http://s3control.emulator.invalid");
    assert!(printed.iter().any(|l| l.contains(&recipe)), "{printed:#?}");
    let described = Command::new(tool("aws"))
        .args(["s3control", "describe-job", "--account-id", "123456789012"])
        .args(["--job-id", &id, "--query", "Job.Status", "--output", "text"])
        .args(["--endpoint-url", "http://s3control.emulator.invalid"])
        .env_clear()
        .env("PATH", path_with_venv())
        .env("HOME", &state)
        .env("HTTP_PROXY", control)
        .envs(&env)
        .output()
        .unwrap();
    assert!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&described.stdout).trim(),
        "Complete"
    );
    // The function saw the keys decoded: its results are in the report.
    let report = cli(
        &env,
        &[
            "report",
            &format!("s3://reports/batch/job-{id}/manifest.json"),
        ],
    );
    assert!(report.status.success());

    // Ctrl-C: the stack stops its parts and exits 0.
    let started = descendants(stack.child.id());
    assert!(
        started.len() >= 3,
        "moto, watch and the function under it: {started:?}"
    );
    let pid = stack.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut stack = stack;
    let stopped = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = stack.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stopped, "the stack did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    for port in ports {
        assert!(!listening(port), "port {port} still listens after the stop");
    }
    // No process the stack started is left: moto, watch, cargo and the function under it.
    let alive: Vec<u32> = started
        .iter()
        .copied()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .filter(|pid| !zombie(*pid))
        .collect();
    assert!(alive.is_empty(), "left running: {alive:?} of {started:?}");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_missing_moto_names_the_setup_command() {
    let state = std::env::temp_dir().join(format!("s3batch-stack-nomoto-{}", std::process::id()));
    let out = Command::new(CLI)
        .args(["s3batch", "stack", "--package", "hello"])
        .arg("--state-dir")
        .arg(&state)
        .current_dir(workspace_root())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("moto_server is not on PATH: run scripts/setup.sh"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(Path::new(&state));
}
