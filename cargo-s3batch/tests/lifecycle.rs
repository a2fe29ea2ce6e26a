//! A job's folder belongs to one process, and a resume is the same job: the `cargo-s3batch`
//! binary refuses a second `run` or a `--resume` of a job that is still running (naming the
//! running process, before anything is invoked), lets a job a crash left behind be resumed
//! (the lock dies with its process), and refuses a resume whose definition (function,
//! schema, user arguments, tasks per invocation, report destination) differs, naming it.
//!
//! The running job's function is a listener that accepts connections and never answers, so
//! the job stays in flight as long as the test needs; the function of the refused commands is
//! a listener that counts the connections made to it, so "nothing invoked" is observed at the
//! function's side.

use s3batch_testkit::{fresh_dir, output_text as text};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("lifecycle-{name}"))
}

fn manifest(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("manifest.csv");
    let text: String = (0..rows).map(|i| format!("bucket,k{i:04}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(endpoint: &str, manifest: &Path, state: &Path, function: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
    cmd.args(["s3batch", "run", "--function", function, "--manifest"])
        .arg(manifest)
        .args(["--endpoint-url", endpoint, "--state-dir"])
        .arg(state)
        .args(["--job-id", "held", "--function-timeout", "600"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("S3BATCH_STATE_DIR");
    cmd
}

/// A function endpoint that accepts every connection, reads what is sent, and never answers;
/// it counts the connections.
struct Silent {
    addr: String,
    connections: Arc<AtomicUsize>,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (count, keep) = (Arc::clone(&connections), Arc::clone(&held));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let mut reader = stream.try_clone().unwrap();
                keep.lock().unwrap().push(stream);
                std::thread::spawn(move || {
                    let mut sink = [0u8; 4096];
                    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        Silent {
            addr,
            connections,
            _held: held,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a job whose function never answers, and waits until it has written its journal
/// and reached its function: from then on it holds the job's folder.
fn running_job(function: &Silent, manifest: &Path, state: &Path) -> Child {
    let mut child = cli(&function.addr, manifest, state, "slow")
        .args(["--user-arg", "mode=first", "--schema", "2.0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(state.join("job-held/journal.jsonl").exists() && function.connections() > 0) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the first run exited ({status}) before reaching its function");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the first run did not reach its function within 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_running_job_is_neither_run_again_nor_resumed_and_a_crashed_one_resumes() {
    let dir = temp("held");
    let m = manifest(&dir, 20);
    let state = dir.join("state");
    let slow = Silent::start();
    let mut first = running_job(&slow, &m, &state);
    let journal = std::fs::read(state.join("job-held/journal.jsonl")).unwrap();
    let counter = Silent::start();

    for extra in [&["--resume"][..], &[][..]] {
        let out = cli(&counter.addr, &m, &state, "slow")
            .args(["--user-arg", "mode=first", "--schema", "2.0"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", text(&out));
        let expected = format!("is in use by process {}", first.id());
        assert!(text(&out).contains(&expected), "{extra:?}: {}", text(&out));
    }
    // Nothing reached a function, and the running job's journal is as it was.
    assert_eq!(
        counter.connections(),
        0,
        "the refused runs invoked something"
    );
    assert_eq!(
        std::fs::read(state.join("job-held/journal.jsonl")).unwrap(),
        journal
    );

    // A crash releases the folder: the same resume is accepted (a dry run invokes nothing).
    first.kill().unwrap();
    first.wait().unwrap();
    let out = cli(&counter.addr, &m, &state, "slow")
        .args(["--user-arg", "mode=first", "--schema", "2.0"])
        .args(["--resume", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(counter.connections(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resume_with_another_definition_is_refused_naming_the_difference() {
    let dir = temp("definition");
    let m = manifest(&dir, 20);
    let state = dir.join("state");
    let slow = Silent::start();
    let mut first = running_job(&slow, &m, &state);
    first.kill().unwrap();
    first.wait().unwrap();
    let counter = Silent::start();
    let same: &[&str] = &["--user-arg", "mode=first", "--schema", "2.0"];
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "other",
            same.to_vec(),
            "function: was function slow, now function other",
        ),
        (
            "slow",
            vec!["--user-arg", "mode=second", "--schema", "2.0"],
            r#"user arguments: was {"mode": "first"}, now {"mode": "second"}"#,
        ),
        ("slow", vec!["--schema", "1.0"], "schema: was 2.0, now 1.0"),
        (
            "slow",
            [same, &["--tasks-per-invocation", "2"]].concat(),
            "tasks per invocation: was 1, now 2",
        ),
        (
            "slow",
            [same, &["--report", "elsewhere"]].concat(),
            "report: was none, now elsewhere",
        ),
    ];
    for (function, args, difference) in cases {
        let out = cli(&counter.addr, &m, &state, function)
            .args(&args)
            .arg("--resume")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("cannot be resumed with another definition")
                && text(&out).contains(difference),
            "{args:?}: expected {difference:?} in {}",
            text(&out)
        );
    }
    assert_eq!(
        counter.connections(),
        0,
        "a refused resume invoked something"
    );
    // The journal is still there to be resumed as it started.
    assert!(state.join("job-held/job.json").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}
