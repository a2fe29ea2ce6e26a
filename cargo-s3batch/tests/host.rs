//! The runner hosting the function binary itself through the Lambda Runtime API
//! (`RuntimeHost`, `cargo s3batch run --bootstrap`): a process that aborts, is killed or
//! outlives the function timeout fails only its own invocation, and a fresh process serves
//! the next ones, as on Lambda. `examples/chaos` is the function, against moto.

use s3batch::ResultCode;
use s3batch_job::host::{HostConfig, RuntimeHost};
use s3batch_job::{
    read_report, Invoke, Invoked, LocalJob, Manifest, ReportRow, TaskRecord, TaskStatus,
};
use s3batch_testkit::{build_package, fresh_dir, target_dir, Moto};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

const BUCKET: &str = "bucket-one";

fn chaos_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| build_package("chaos"));
    let path = target_dir().join("debug/chaos");
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

fn scratch(name: &str) -> PathBuf {
    fresh_dir(&format!("host-{name}"))
}

async fn upload(moto: &Moto, keys: &[&str]) {
    let s3 = moto.client().await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    for key in keys {
        s3.put_object()
            .bucket(BUCKET)
            .key(*key)
            .body(key.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
}

fn manifest_csv(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("{BUCKET},{}\n", k.replace(' ', "%20")))
        .collect()
}

fn by_key(rows: &[ReportRow]) -> HashMap<&str, &ReportRow> {
    let mut map = HashMap::new();
    for row in rows {
        assert!(
            map.insert(row.key.as_str(), row).is_none(),
            "{:?} twice in the report",
            row.key
        );
    }
    map
}

/// A schema 1.0 event with one task (chaos answers `perm` keys without calling S3).
fn event(key: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv",
        "job": {"id": "job"},
        "tasks": [{"taskId": "t0", "s3BucketArn": format!("arn:aws:s3:::{BUCKET}"),
                   "s3Key": key, "s3VersionId": null}],
    }))
    .unwrap()
}

/// A host configuration with a generous init limit: a loaded machine can be slow to start
/// a process, and no test here is about that limit.
fn config(bootstrap: impl Into<PathBuf>) -> HostConfig {
    HostConfig::new(bootstrap).init_timeout(Duration::from_secs(120))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// Waits until `pid` has died (a zombie not reaped yet, or gone): `kill` returns before the
/// process has ended.
///
/// A multi-threaded process shows its main thread as a zombie (`Z`) while its other threads
/// are still exiting, and only then can its parent collect it: wait until no thread is left
/// but the zombie main thread.
async fn dead(pid: u32) {
    loop {
        let zombie = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(stat) => stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')),
        };
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
        if zombie && threads <= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The CLI test's function timeout. `chaos` gives up on a task `deadline_margin_ms` (3 s)
/// before its deadline, so "hang politely" is answered 7 s after the hand-over and that answer
/// has 3 s to reach the host before the host kills the process: room for a loaded 2-core
/// machine (half a second was not). The plain tasks (a HeadObject against moto each) have
/// the whole 10 s.
const TIMEOUT_SECS: u64 = 10;

/// Through the CLI, three at once: one task aborts its process, one blocks past the
/// function timeout, one hangs politely (the deadline margin answers, which needs a real
/// deadline). Each fails alone; every neighbour and every later task succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_and_a_timeout_fail_only_their_own_invocation() {
    let binary = chaos_binary();
    let moto = Moto::start();
    let plain: Vec<String> = (0..30).map(|i| format!("plain {i:02}.txt")).collect();
    let mut keys: Vec<&str> = plain.iter().map(String::as_str).collect();
    upload(&moto, &keys).await;
    keys.insert(4, "abort now");
    keys.insert(9, "block forever");
    keys.insert(14, "hang politely");
    keys.insert(17, "perm 1");
    let dir = scratch("cli");
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, manifest_csv(&keys)).unwrap();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
    cmd.args(["s3batch", "run", "--bootstrap"])
        .arg(&binary)
        .arg("--manifest")
        .arg(&manifest)
        .args(["--concurrency", "3", "--max-redrives", "0"])
        .args(["--function-timeout", &TIMEOUT_SECS.to_string()])
        .args(["--job-id", "host", "--report"])
        .arg(&dir)
        // The test's own state folder: a journal left by an interrupted run elsewhere would
        // refuse the fixed job id.
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("S3BATCH_STATE_DIR");
    for (k, v) in moto.env() {
        cmd.args(["--env", &format!("{k}={v}")]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    let log_path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("function output: "))
        .unwrap_or_else(|| panic!("no log path in\n{stderr}"));
    // The function's output is kept under the job's state dir, beside the job's folder (which
    // is gone once the report is written), not in a machine-wide temporary folder.
    assert_eq!(
        Path::new(log_path),
        dir.join("state").join("job-host.function.log"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(log_path).unwrap();

    let rows = read_report(&dir.join("job-host")).unwrap();
    assert_eq!(rows.len(), keys.len(), "one row per manifest row");
    let rows = by_key(&rows);
    for key in &keys {
        let row = rows
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing from the report"));
        let got = (
            row.task_status.as_str(),
            row.error_code.map_or("", |c| c.as_str()),
        );
        match *key {
            "abort now" => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{row:?}");
                let doc = row
                    .message
                    .strip_prefix("Lambda returned function error: ")
                    .unwrap_or_else(|| panic!("{row:?}"));
                let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
                assert_eq!(doc["errorType"], "Runtime.ExitError", "{row:?}");
                let message = doc["errorMessage"].as_str().unwrap();
                assert!(
                    message.starts_with("RequestId: ")
                        && message.contains(" Error: Runtime exited with error: signal: aborted"),
                    "{message}"
                );
            }
            "block forever" => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{row:?}");
                assert_eq!(
                    row.message,
                    format!(
                        r#"Lambda returned function error: {{"errorMessage":"Task timed out after {TIMEOUT_SECS}.00 seconds"}}"#
                    )
                );
            }
            "hang politely" => {
                assert_eq!(got, ("failed", "TemporaryFailure"), "{row:?}");
                assert_eq!(row.message, "did not finish before the Lambda deadline");
            }
            "perm 1" => {
                assert_eq!(got, ("failed", "PermanentFailure"), "{row:?}");
                assert_eq!(row.message, "perm 1 cannot be processed");
            }
            _ => {
                assert_eq!(got, ("succeeded", ""), "{key:?}: {row:?}");
                assert_eq!(row.message, format!("ok {} bytes", key.len()));
            }
        }
    }
    assert!(
        stdout.contains(&format!(
            "tasks: {} total, {} succeeded, 4 failed",
            keys.len(),
            keys.len() - 4
        )),
        "{stdout}"
    );
    // The aborted and the timed-out instance were replaced.
    assert!(log.contains("signal: aborted"), "{log}");
    assert!(
        log.contains(&format!("timed out after {TIMEOUT_SECS}.00 s; killed")),
        "{log}"
    );
    // Three invocations were in flight at once after the abort: a fourth process served one.
    let started = log.lines().filter(|l| l.contains("] started (pid")).count();
    assert!(started >= 4, "{started} instances started:\n{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One instance at a time: the task in flight when its process gets `kill -9` fails with
/// Lambda's exit error, and the next tasks run on a fresh process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_from_outside_is_replaced() {
    let binary = chaos_binary();
    let moto = Moto::start();
    let keys = ["a.txt", "b.txt", "block kill-me", "c.txt", "d.txt", "e.txt"];
    upload(
        &moto,
        &keys
            .iter()
            .copied()
            .filter(|k| k.ends_with(".txt"))
            .collect::<Vec<_>>(),
    )
    .await;
    let dir = scratch("kill");
    let config = moto.env().into_iter().fold(
        config(&binary)
            .instances(1)
            .timeout(Duration::from_secs(300))
            .log_file(dir.join("function.log")),
        |c, (k, v)| c.env(k, v),
    );
    let host = RuntimeHost::start(config).unwrap();
    let watcher = {
        let host = host.clone();
        tokio::spawn(async move {
            loop {
                if let Some(f) = host
                    .in_flight()
                    .into_iter()
                    .find(|f| String::from_utf8_lossy(&f.payload).contains("kill-me"))
                {
                    kill_9(f.pid);
                    return f;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let manifest = Manifest::from_csv(manifest_csv(&keys).as_bytes()).unwrap();
    let report = LocalJob::new(manifest)
        .concurrency(1)
        .run(host.clone())
        .await
        .unwrap();
    let killed = watcher.await.unwrap();
    assert!(!alive(killed.pid), "the killed instance was reaped");
    assert_eq!(report.records.len(), keys.len());
    for (record, key) in report.records.iter().zip(keys) {
        assert_eq!(record.entry.key, key);
        if key == "block kill-me" {
            assert_eq!(record.status, TaskStatus::Failed);
            assert_eq!(
                record.message,
                format!(
                    r#"Lambda returned function error: {{"errorMessage":"RequestId: {} Error: Runtime exited with error: signal: killed","errorType":"Runtime.ExitError"}}"#,
                    killed.request_id
                )
            );
        } else {
            assert_eq!(record.status, TaskStatus::Succeeded, "{record:?}");
            assert_eq!(record.message, format!("ok {} bytes", key.len()));
        }
    }
    // The first process served a, b and the killed task; a second one the rest.
    assert_eq!(host.instances_started(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An idle process that died is replaced before an event is handed to it: no invocation
/// fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_process_that_died_costs_no_invocation() {
    let host = RuntimeHost::start(config(chaos_binary()).instances(1)).unwrap();
    let perm = |got: Invoked| match got {
        Invoked::Response(body) => {
            let body = String::from_utf8(body).unwrap();
            assert!(body.contains("perm 1 cannot be processed"), "{body}");
        }
        other => panic!("{other:?}"),
    };
    perm(host.invoke(event("perm 1")).await);
    let idle = host.idle_pids();
    assert_eq!(idle.len(), 1);
    kill_9(idle[0]);
    dead(idle[0]).await;
    perm(host.invoke(event("perm 1")).await);
    assert_eq!(host.instances_started(), 2);
}

/// Every process is killed and reaped when the host goes away: dropped with instances idle
/// and one in an invocation, or dropped while a panic unwinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_the_host() {
    let binary = chaos_binary();
    let host = RuntimeHost::start(config(&binary).instances(3)).unwrap();
    let answers =
        futures_util::future::join_all((0..3).map(|i| host.invoke(event(&format!("perm {i}")))))
            .await;
    assert!(
        answers.iter().all(|a| matches!(a, Invoked::Response(_))),
        "{answers:?}"
    );
    let mut pids = host.idle_pids();
    assert_eq!(pids.len(), 3);
    let blocked = {
        let host = host.clone();
        tokio::spawn(async move { host.invoke(event("block")).await })
    };
    let busy = loop {
        if let Some(f) = host.in_flight().pop() {
            break f.pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(pids.contains(&busy));
    blocked.abort();
    assert!(blocked.await.unwrap_err().is_cancelled());
    drop(host);
    for pid in &pids {
        assert!(!alive(*pid), "instance {pid} outlived the host");
    }

    // A panic while the host is in use.
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let host = RuntimeHost::start(config(binary).instances(2)).unwrap();
        runtime.block_on(async {
            let (a, b) = tokio::join!(host.invoke(event("perm a")), host.invoke(event("perm b")));
            assert!(matches!(
                (a, b),
                (Invoked::Response(_), Invoked::Response(_))
            ));
        });
        tx.send(host.idle_pids()).unwrap();
        panic!("the job failed");
    })
    .join();
    assert!(panicked.is_err());
    pids = rx.recv().unwrap();
    assert_eq!(pids.len(), 2);
    for pid in &pids {
        assert!(!alive(*pid), "instance {pid} outlived a panic");
    }
}

/// The keys of `records`, sorted: which rows the report holds, each as often as it does.
fn keys_of(records: &[TaskRecord]) -> Vec<&str> {
    let mut keys: Vec<&str> = records.iter().map(|r| r.entry.key.as_str()).collect();
    keys.sort_unstable();
    keys
}

/// `records`, once each has been checked: one record for each of the rows a, b and c, every
/// one failed permanently.
fn failed_once_each(records: &[TaskRecord]) -> &[TaskRecord] {
    assert_eq!(keys_of(records), ["a", "b", "c"], "one record per row");
    for record in records {
        assert_eq!(
            (record.status, record.error_code),
            (TaskStatus::Failed, Some(ResultCode::PermanentFailure)),
            "{record:?}"
        );
    }
    records
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A process that cannot start fails the invocation waiting for it with its init error:
/// the document it posts to `/runtime/init/error`, or Lambda's exit error when it exits
/// before asking for work. One process per invocation, no respawn loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_errors_fail_the_waiting_invocation() {
    let dir = scratch("init");
    let exits = script(&dir, "exits", "echo 'no config' >&2; exit 3");
    let host = RuntimeHost::start(config(&exits).instances(2)).unwrap();
    let manifest = Manifest::from_csv(manifest_csv(&["a", "b", "c"]).as_bytes()).unwrap();
    let report = LocalJob::new(manifest.clone())
        .concurrency(2)
        .run(host.clone())
        .await
        .unwrap();
    for record in failed_once_each(&report.records) {
        assert!(
            record
                .message
                .starts_with(r#"Lambda returned function error: {"errorMessage":"RequestId: "#)
                && record.message.ends_with(
                    r#" Error: Runtime exited with error: exit status 3","errorType":"Runtime.ExitError"}"#
                ),
            "{}",
            record.message
        );
    }
    assert_eq!(report.summary.invocations, 3);
    assert_eq!(host.instances_started(), 3, "one process per invocation");

    // Posts its init error over bash's /dev/tcp, as a runtime would, then exits.
    let doc = r#"{"errorType":"Runtime.Custom","errorMessage":"no DEST_BUCKET"}"#;
    let posts = script(
        &dir,
        "posts",
        &format!(
            r#"body='{doc}'
addr=${{AWS_LAMBDA_RUNTIME_API%:*}}; port=${{AWS_LAMBDA_RUNTIME_API##*:}}
exec 3<>/dev/tcp/$addr/$port
printf 'POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: %s\r\nLambda-Runtime-Function-Error-Type: Runtime.Custom\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$AWS_LAMBDA_RUNTIME_API" "${{#body}}" "$body" >&3
head -n1 <&3
exit 1"#
        ),
    );
    let host =
        RuntimeHost::start(config(&posts).instances(1).log_file(dir.join("posts.log"))).unwrap();
    let report = LocalJob::new(manifest)
        .concurrency(1)
        .run(host)
        .await
        .unwrap();
    for record in failed_once_each(&report.records) {
        assert_eq!(
            record.message,
            format!("Lambda returned function error: {doc}")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A runtime's `/invocation/{id}/error` is the invocation's function error, and the process
/// stays: the next invocation goes to the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_error_keeps_the_process() {
    let host = RuntimeHost::start(config(chaos_binary()).instances(1)).unwrap();
    // Not an S3 Batch event: the framework has no task ids to answer with, so the runtime
    // posts the error.
    let Invoked::FunctionError(doc) = host.invoke(b"[1, 2]".to_vec()).await else {
        panic!("expected a function error");
    };
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    assert!(
        doc["errorType"].is_string() && doc["errorMessage"].is_string(),
        "{doc}"
    );
    assert!(matches!(
        host.invoke(event("perm 1")).await,
        Invoked::Response(_)
    ));
    assert_eq!(host.instances_started(), 1);
}

/// A response over Lambda's limit is refused with 413 and fails the invocation with
/// Lambda's `Function.ResponseSizeTooLarge`. The runtime is a bash script over /dev/tcp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_limit_is_a_function_error() {
    let dir = scratch("large");
    let big = script(
        &dir,
        "big",
        r#"addr=${AWS_LAMBDA_RUNTIME_API%:*}; port=${AWS_LAMBDA_RUNTIME_API##*:}
exec 3<>/dev/tcp/$addr/$port
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n' "$AWS_LAMBDA_RUNTIME_API" >&3
id=
while IFS= read -r line <&3; do
  line=${line%$'\r'}
  [ -z "$line" ] && break
  case "${line,,}" in lambda-runtime-aws-request-id:*) id=${line#*: } ;; esac
done
size=7000000
exec 4<>/dev/tcp/$addr/$port
{ printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' "$id" $size; head -c $size /dev/zero; } >&4
head -n1 <&4 >&2
exec sleep 3600"#,
    );
    let host = RuntimeHost::start(config(&big).instances(1).log_file(dir.join("big.log"))).unwrap();
    let got = host.invoke(event("anything")).await;
    assert_eq!(
        got,
        Invoked::FunctionError(
            br#"{"errorMessage":"Response payload size (7000000 bytes) exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#
                .to_vec()
        )
    );
    // The runtime was told too: it logs the status line it got.
    let log = dir.join("big.log");
    let told = async {
        while !std::fs::read_to_string(&log)
            .unwrap()
            .contains("HTTP/1.1 413 Payload Too Large")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), told)
        .await
        .unwrap_or_else(|_| panic!("{}", std::fs::read_to_string(&log).unwrap()));
    drop(host);
    std::fs::remove_dir_all(&dir).unwrap();
}
