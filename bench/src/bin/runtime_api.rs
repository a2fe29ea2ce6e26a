//! A stand-in for the Lambda Runtime API that measures cold starts.
//!
//! For every run it binds a fresh port, spawns the function process with the environment
//! Lambda gives it, serves one event on `GET /2018-06-01/runtime/invocation/next`, and stops
//! the clock when `POST …/invocation/{id}/response` has arrived in full. The time is from just
//! before `spawn` to that moment: exec, loading, runtime and client setup, the first poll,
//! the handler, the response. Peak RSS is the process's `VmHWM` read at that moment.
//!
//! Runs of the programs are interleaved and rotated (a b c, b c a, c a b, …) so drift on a
//! shared machine hits them all alike and none always runs right after the same other one;
//! round 0 is a discarded warm-up (page cache, Python bytecode).
//!
//! ```text
//! runtime_api [--tasks T] --runs N --program LABEL:DIR:COMMAND [--program …]
//! ```
//! `DIR` (may be empty) is the working directory; `COMMAND` is split on spaces, and leading
//! `NAME=VALUE` words are added to the environment. Prints one
//! JSON object with every time and the medians. The event is [`s3batch_bench::event`] with
//! `T` tasks (default 1: S3 sends one task per invocation).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
const NEXT: &str = "/2018-06-01/runtime/invocation/next";

struct Program {
    label: String,
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    command: Vec<String>,
}

enum Outcome {
    Response(Duration, Bytes),
    Failed(String),
}

/// What one run's server shares between connections.
struct Run {
    start: Instant,
    event: Bytes,
    served: AtomicBool,
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Run {
    fn finish(&self, outcome: Outcome) {
        if let Some(tx) = self.done.lock().unwrap().take() {
            let _ = tx.send(outcome);
        }
    }
}

async fn serve(
    req: Request<Incoming>,
    run: Arc<Run>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET && path == NEXT {
        if run.served.swap(true, Ordering::SeqCst) {
            // One event per process: later polls wait until the process is stopped.
            std::future::pending::<()>().await;
        }
        let deadline =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(900);
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", REQUEST_ID)
            .header(
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            )
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:s3batch-bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0",
            )
            .body(Full::new(run.event.clone()))
            .unwrap());
    }
    let body = req.into_body().collect().await?.to_bytes();
    let at = run.start.elapsed();
    let status = if path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response") {
        run.finish(Outcome::Response(at, body));
        StatusCode::ACCEPTED
    } else if path.ends_with("/error") {
        run.finish(Outcome::Failed(format!(
            "{path}: {}",
            String::from_utf8_lossy(&body)
        )));
        StatusCode::ACCEPTED
    } else {
        run.finish(Outcome::Failed(format!("unexpected request {path}")));
        StatusCode::NOT_FOUND
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap())
}

/// Peak resident set size of a live process, in KiB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn run_once(
    program: &Program,
    event: &Bytes,
    home: &std::path::Path,
) -> Result<(Duration, u64), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = oneshot::channel();
    let stderr_path = std::env::temp_dir().join(format!("runtime_api-{}.stderr", program.label));
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let mut command = Command::new(&program.command[0]);
    command
        .args(&program.command[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "s3batch-bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/s3batch-bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK")
        .env("AWS_SECRET_ACCESS_KEY", "benchmark")
        .env("AWS_SESSION_TOKEN", "benchmark")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    command.envs(program.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &program.dir {
        command.current_dir(dir).env("LAMBDA_TASK_ROOT", dir);
    }
    let run = Arc::new(Run {
        start: Instant::now(),
        event: event.clone(),
        served: AtomicBool::new(false),
        done: Mutex::new(Some(tx)),
    });
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", program.command[0]))?;
    let accept = {
        let run = Arc::clone(&run);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let run = Arc::clone(&run);
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| serve(req, Arc::clone(&run)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), rx).await;
    let rss = peak_rss_kb(child.id()).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    accept.abort();
    let fail = |m: String| {
        format!(
            "{}: {m} (stderr in {})",
            program.label,
            stderr_path.display()
        )
    };
    match outcome {
        Ok(Ok(Outcome::Response(at, body))) => {
            s3batch_bench::check_response(event, &body).map_err(fail)?;
            Ok((at, rss))
        }
        Ok(Ok(Outcome::Failed(m))) => Err(fail(m)),
        Ok(Err(_)) => Err(fail("server stopped".into())),
        Err(_) => Err(fail("no response within 60 s".into())),
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn parse_args() -> Result<(usize, usize, Vec<Program>), String> {
    let mut args = std::env::args().skip(1);
    let (mut tasks, mut runs, mut programs) = (1, 10, Vec::new());
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--tasks" => tasks = value()?.parse().map_err(|e| format!("--tasks: {e}"))?,
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--program" => {
                let spec = value()?;
                let mut parts = spec.splitn(3, ':');
                let (label, dir, command) = (parts.next(), parts.next(), parts.next());
                let (Some(label), Some(dir), Some(command)) = (label, dir, command) else {
                    return Err(format!("--program {spec}: expected LABEL:DIR:COMMAND"));
                };
                let mut words = command.split_whitespace().peekable();
                let mut env = Vec::new();
                while let Some((k, v)) = words.peek().and_then(|w| w.split_once('=')) {
                    env.push((k.to_owned(), v.to_owned()));
                    words.next();
                }
                let command: Vec<String> = words.map(str::to_owned).collect();
                if command.is_empty() {
                    return Err(format!("--program {spec}: no command"));
                }
                programs.push(Program {
                    label: label.to_owned(),
                    dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
                    env,
                    command,
                });
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if programs.is_empty() || runs == 0 {
        return Err("need at least one --program and one run".into());
    }
    Ok((tasks, runs, programs))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tasks, runs, programs) = parse_args()?;
    let event = Bytes::from(s3batch_bench::event(tasks));
    let home = std::env::temp_dir().join("runtime_api-home");
    std::fs::create_dir_all(&home)?;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); programs.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); programs.len()];
    for round in 0..=runs {
        // Each round starts with the next program, so none always follows the same one.
        for k in 0..programs.len() {
            let i = (k + round) % programs.len();
            let program = &programs[i];
            let (at, kb) = run_once(program, &event, &home).await?;
            if round > 0 {
                times[i].push(at.as_secs_f64() * 1000.0);
                rss[i].push(kb as f64);
            }
        }
    }
    let report: Vec<serde_json::Value> = programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "label": p.label,
                "command": p.env.iter().map(|(k, v)| format!("{k}={v} ")).collect::<String>() + &p.command.join(" "),
                "ms": times[i],
                "median_ms": median(&times[i]),
                "min_ms": times[i].iter().copied().fold(f64::INFINITY, f64::min),
                "max_ms": times[i].iter().copied().fold(0.0, f64::max),
                "rss_kb": rss[i],
                "median_rss_kb": median(&rss[i]),
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({ "runs": runs, "programs": report })
    );
    Ok(())
}
