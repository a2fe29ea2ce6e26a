//! The `cargo-s3batch` binary when things go wrong around a job: killed (`kill -9`) or
//! interrupted (SIGINT) in the middle and resumed, a report destination that cannot be
//! written, hostile job ids and manifests, a rerun of the same job id. The function is
//! `examples/hello` under `cargo lambda watch`, behind a recording proxy where a test counts
//! what the function was sent; where no function must be reached, the endpoint is a listener
//! that only counts connections.

use s3batch_job::read_report;
use s3batch_testkit::{fresh_dir, output_text as text, LambdaWatch};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUCKET: &str = "bucket-one";

/// A fresh folder for one test.
fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("cli-{name}"))
}

fn cli(endpoint: &str, manifest: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"));
    cmd.args(["s3batch", "run", "--function", "hello", "--manifest"])
        .arg(manifest)
        .args(["--endpoint-url", endpoint, "--state-dir"])
        .arg(state)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("S3BATCH_STATE_DIR");
    cmd
}

fn manifest(dir: &Path, rows: usize) -> (PathBuf, Vec<String>) {
    let keys: Vec<String> = (0..rows).map(|i| format!("k{i:05}")).collect();
    let path = dir.join("manifest.csv");
    let text: String = keys.iter().map(|k| format!("{BUCKET},{k}\n")).collect();
    std::fs::write(&path, text).unwrap();
    (path, keys)
}

/// The keys of the tasks the journal holds as finished (its complete lines), sorted.
fn journal_keys(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let complete = &bytes[..bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
    let mut keys: Vec<String> = complete
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            v["k"].as_str().unwrap().to_owned()
        })
        .collect();
    keys.sort();
    keys
}

fn journal_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Waits until the journal has at least `n` lines (no time limit but the child's life).
fn wait_for_lines(journal: &Path, n: usize, child: &mut Child) {
    let start = Instant::now();
    while journal_lines(journal) < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the runner exited ({status}) before its journal {} had {n} lines",
                journal.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no {n} journal lines"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every manifest row exactly once in the report, each as `hello` answers it.
fn assert_every_row_once(job_dir: &Path, keys: &[String]) {
    let rows = read_report(job_dir).unwrap();
    let mut got: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    got.sort_unstable();
    let expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(got.len(), expected.len(), "rows in the report");
    assert_eq!(got, expected, "each row exactly once");
    for r in &rows {
        assert_eq!(
            (r.task_status.as_str(), r.message.clone()),
            ("succeeded", format!("hello s3://{BUCKET}/{}", r.key))
        );
    }
    // Only the results files its manifest.json lists.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest["Results"].as_array().unwrap().len();
    let files = std::fs::read_dir(job_dir.join("results")).unwrap().count();
    assert_eq!(
        files,
        listed,
        "stale results files in {}",
        job_dir.display()
    );
}

fn watch() -> LambdaWatch {
    let watch = LambdaWatch::start_with("hello", &[], None, 2);
    // Start the instances before anything is measured by journal lines.
    let dir = temp(&format!("warm-{}", watch.port()));
    let (m, _) = manifest(&dir, 8);
    let out = cli(&endpoint(&watch), &m, &dir.join("state"))
        .args(["-j", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
    watch
}

fn endpoint(watch: &LambdaWatch) -> String {
    format!("http://127.0.0.1:{}", watch.port())
}

/// `keys` (sorted) without the sorted `finished`.
fn not_in(keys: &[String], finished: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| finished.binary_search(k).is_err())
        .cloned()
        .collect()
}

/// A proxy in front of `cargo lambda watch`'s Invoke API that keeps the key of every task
/// the function is sent: what reached the function, counted where it arrives rather than by
/// the runner. Each request is passed on over a connection of its own, closed after the
/// answer, and the answer tells the runner to close its connection too.
struct Recorder {
    addr: std::net::SocketAddr,
    keys: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(watch: &LambdaWatch) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: std::net::SocketAddr = ([127, 0, 0, 1], watch.port()).into();
        let keys = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&keys);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let seen = Arc::clone(&seen);
                // An error ends only that connection; the runner sees it as one.
                std::thread::spawn(move || pass_on(client, upstream, &seen));
            }
        });
        Recorder { addr, keys }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The keys of every task sent so far, sorted, each as often as it was sent.
    fn keys_sent(&self) -> Vec<String> {
        let mut keys = self.keys.lock().unwrap().clone();
        keys.sort();
        keys
    }
}

/// One request from `client`: its tasks' keys go to `seen`, the request to `upstream`, the
/// answer back.
fn pass_on(
    client: std::net::TcpStream,
    upstream: std::net::SocketAddr,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, Read, Write};
    let mut reader = std::io::BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "a request without Content-Length:\n{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    // An event's tasks; the check before the job (`DryRun`) sends none.
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(tasks) = event["tasks"].as_array() {
            seen.lock().unwrap().extend(
                tasks
                    .iter()
                    .map(|t| t["s3Key"].as_str().unwrap().to_owned()),
            );
        }
    }
    let mut up = std::net::TcpStream::connect(upstream)?;
    up.write_all(close_after(&head).as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if answer.is_empty() {
        // No answer: the runner gets none either.
        return Ok(());
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let mut client = client;
    client.write_all(close_after(&String::from_utf8_lossy(&answer[..split])).as_bytes())?;
    client.write_all(&answer[split..])?;
    client.flush()
}

/// An HTTP head with `Connection: close` instead of any `Connection` header it had.
fn close_after(head: &str) -> String {
    let mut out: String = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case("connection"))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("connection: close\r\n\r\n");
    out
}

fn invocations(out: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(" invocations"))
        .unwrap_or_else(|| panic!("no invocation count in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[words.len() - 2].parse().unwrap()
}

#[test]
fn kill_9_in_the_middle_then_resume_reports_every_row_once() {
    let watch = watch();
    let dir = temp("kill9");
    let rows = 5000;
    let (m, keys) = manifest(&dir, rows);
    let state = dir.join("state");
    let report = dir.join("report");
    let journal = state.join("job-k9/journal.jsonl");
    let mut child = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "k9", "-j", "1", "--report"])
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lines(&journal, 200, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        journal_lines(&journal) < rows,
        "the job finished before it was killed"
    );
    // Tear the last line as a kill in the middle of a write would.
    let bytes = std::fs::read(&journal).unwrap();
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(
        &journal,
        &bytes[..last_start + (bytes.len() - last_start) / 2],
    )
    .unwrap();
    let finished = journal_lines(&journal);
    assert!(!report.join("job-k9").exists());

    // Without --resume, the same job id is refused and the journal kept.
    let out = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "k9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--resume"), "{}", text(&out));

    // Resuming over another manifest is refused, by a dry run too. (The same report
    // destination: a resume must keep the job's definition.)
    let other = dir.join("other.csv");
    std::fs::write(&other, format!("{BUCKET},other\n")).unwrap();
    for extra in [&["--dry-run"][..], &[][..]] {
        let out = cli(&endpoint(&watch), &other, &state)
            .args(["--job-id", "k9", "--resume", "--report"])
            .arg(&report)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("is not the one job k9 started with"),
            "{}",
            text(&out)
        );
    }
    let out = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "k9", "--resume", "--dry-run", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        journal_lines(&journal),
        finished,
        "a dry run changes nothing"
    );

    let unfinished = not_in(&keys, &journal_keys(&journal));
    assert_eq!(unfinished.len(), rows - finished);
    let lambda = Recorder::new(&watch);
    let out = cli(&lambda.url(), &m, &state)
        .args(["--job-id", "k9", "--resume", "-j", "2", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("job k9: Complete"), "{}", text(&out));
    // Finished tasks were not sent again: the function got each task not in the journal
    // once (the one in flight at the kill and the torn line's among them), and no other.
    assert_eq!(lambda.keys_sent(), unfinished, "{}", text(&out));
    assert_eq!(invocations(&out), rows - finished, "{}", text(&out));
    assert_every_row_once(&report.join("job-k9"), &keys);
    assert!(
        !state.join("job-k9").exists(),
        "the journal is removed once reported"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigint_writes_the_partial_report_then_resume_completes_it() {
    let watch = watch();
    let dir = temp("sigint");
    let rows = 5000;
    let (m, keys) = manifest(&dir, rows);
    let state = dir.join("state");
    let report = dir.join("report");
    let journal = state.join("job-int/journal.jsonl");
    let mut child = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "int", "-j", "1", "--report"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&journal, 200, &mut child);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("job int: Cancelled"), "{}", text(&out));
    assert!(text(&out).contains("--resume"), "{}", text(&out));
    let finished = journal_keys(&journal);
    assert!(finished.len() < rows, "the job finished before the signal");
    // The partial report: exactly the finished tasks, each with its result.
    let partial = read_report(&report.join("job-int")).unwrap();
    let mut listed: Vec<(String, &str, String)> = partial
        .iter()
        .map(|r| (r.key.clone(), r.task_status.as_str(), r.message.clone()))
        .collect();
    listed.sort();
    let expected: Vec<(String, &str, String)> = finished
        .iter()
        .map(|k| (k.clone(), "succeeded", format!("hello s3://{BUCKET}/{k}")))
        .collect();
    assert_eq!(listed, expected);

    let unfinished = not_in(&keys, &finished);
    let lambda = Recorder::new(&watch);
    let out = cli(&lambda.url(), &m, &state)
        .args(["--job-id", "int", "--resume", "-j", "2", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The function got each unfinished task once, and no finished one.
    assert_eq!(lambda.keys_sent(), unfinished, "{}", text(&out));
    assert_eq!(invocations(&out), unfinished.len(), "{}", text(&out));
    assert_every_row_once(&report.join("job-int"), &keys);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_report_that_fails_at_the_end_is_kept_and_written_again() {
    let watch = watch();
    let dir = temp("late-report");
    let rows = 5000;
    let (m, keys) = manifest(&dir, rows);
    let state = dir.join("state");
    let report = dir.join("report");
    let journal = state.join("job-late/journal.jsonl");
    let mut child = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "late", "-j", "1", "--report"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&journal, 20, &mut child);
    // The destination was fine at the start; now a file is in the way.
    let _ = std::fs::remove_dir_all(&report);
    std::fs::write(&report, "not a folder").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("cargo s3batch report --job-id late"),
        "{}",
        text(&out)
    );
    assert_eq!(journal_lines(&journal), rows, "the results are kept");

    let elsewhere = dir.join("elsewhere");
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "report", "--job-id", "late", "--state-dir"])
        .arg(&state)
        .arg("--report")
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_every_row_once(&elsewhere.join("job-late"), &keys);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rerun_of_the_same_job_id_replaces_its_report() {
    let watch = watch();
    let dir = temp("rerun");
    let state = dir.join("state");
    let report = dir.join("report");
    std::fs::write(
        dir.join("first.csv"),
        format!("{BUCKET},k00000\n{BUCKET},fail-permanent\n"),
    )
    .unwrap();
    let out = cli(&endpoint(&watch), &dir.join("first.csv"), &state)
        .args(["--job-id", "again", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(report.join("job-again/results"))
            .unwrap()
            .count(),
        2
    );
    let (m, keys) = manifest(&dir, 3);
    let out = cli(&endpoint(&watch), &m, &state)
        .args(["--job-id", "again", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_every_row_once(&report.join("job-again"), &keys);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Lambda endpoint that answers nothing: it only tells whether anyone connected.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }
    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }
    fn connected(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn the_report_destination_is_checked_before_the_first_invocation() {
    let dir = temp("destination");
    let (m, _) = manifest(&dir, 5);
    let state = dir.join("state");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let lambda = Listener::new();
    for extra in [&[][..], &["--dry-run"][..]] {
        let out = cli(&lambda.url(), &m, &state)
            .args(["--max-redrives", "0", "--function-timeout", "2"])
            .args(extra)
            .arg("--report")
            .arg(file.join("report"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("the report cannot be written") && t.contains("a-file is a file"),
            "{t}"
        );
        assert!(!lambda.connected(), "{extra:?}: the function was invoked");
    }
    // An S3 destination nobody answers for.
    let s3 = Listener::new();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = cli(&lambda.url(), &m, &state)
        .args(["--max-redrives", "0", "--function-timeout", "2"])
        .args(["--s3-endpoint-url", &format!("http://127.0.0.1:{closed}")])
        .args(["--report", "s3://reports/here/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the report cannot be written to s3://reports/here/"),
        "{}",
        text(&out)
    );
    assert!(!lambda.connected(), "the function was invoked");
    drop(s3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_job_id_naming_a_path_is_refused() {
    let dir = temp("job-id");
    let (m, _) = manifest(&dir, 2);
    let state = dir.join("state");
    let report = dir.join("a/b/c/report");
    let escaped = format!("s3batch-escaped-{}", std::process::id());
    let id = format!("x/../../../{escaped}");
    // Where the id would lead: the journal folder `state/job-x/../../../…` out of the test
    // folder into its parent, the report folder `a/b/c/report/job-x/../../../…` into `a/b`.
    let journal_at = resolved(&state.join(format!("job-{id}")));
    assert_eq!(journal_at, dir.parent().unwrap().join(&escaped));
    let report_at = resolved(&report.join(format!("job-{id}")));
    assert_eq!(report_at, dir.join("a/b").join(&escaped));
    // Left by an earlier run of broken code, it would fail this one.
    let _ = std::fs::remove_dir_all(&journal_at);
    let lambda = Listener::new();
    // With a report destination, and without one (then the journal is the first thing the
    // runner would write).
    for with_report in [true, false] {
        let mut cmd = cli(&lambda.url(), &m, &state);
        cmd.args(["--max-redrives", "0", "--function-timeout", "2"])
            .arg("--job-id")
            .arg(&id);
        if with_report {
            cmd.arg("--report").arg(&report);
        }
        let out = cmd.output().unwrap();
        // Nothing where the id leads, and nothing below the test folder but the manifest:
        // no file and no folder (an escape creates `state/job-x` on its way out).
        for at in [&journal_at, &report_at] {
            assert!(
                !at.exists(),
                "with_report {with_report}: {} was created\n{}",
                at.display(),
                text(&out)
            );
        }
        let all = walk(&dir);
        assert_eq!(all, [dir.join("manifest.csv")], "with_report {with_report}");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("A-Z a-z 0-9 - _"), "{}", text(&out));
    }
    assert!(!lambda.connected());

    // Settings S3 rejects stop the job before its journal exists: a rerun is not refused.
    for _ in 0..2 {
        let out = cli(&lambda.url(), &m, &dir.join("state"))
            .args(["--job-id", "ok-id", "--user-arg", "k=v"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("need invocation schema 2.0"),
            "{}",
            text(&out)
        );
    }
    assert!(!lambda.connected());
    assert!(!dir.join("state/job-ok-id").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `--bootstrap` that cannot be served stops the run before its journal exists, so the
/// same job id runs again once the path is right (before, the second run was refused:
/// "already has a journal").
#[test]
fn a_bootstrap_that_cannot_start_leaves_no_journal() {
    let dir = temp("bootstrap");
    let (m, _) = manifest(&dir, 2);
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
            .args(["s3batch", "run", "--manifest"])
            .arg(&m)
            .arg("--bootstrap")
            .arg(dir.join("no-such-bootstrap"))
            .args(["--job-id", "boot-id", "--state-dir"])
            .arg(dir.join("state"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("S3BATCH_STATE_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("no-such-bootstrap"), "{}", text(&out));
        assert!(
            !text(&out).contains("already has a journal"),
            "{}",
            text(&out)
        );
    }
    assert!(!dir.join("state/job-boot-id").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file and every folder below `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out.sort();
    out
}

/// `path` with each `..` taking away the component before it: where the kernel resolves it
/// once the folders on the way exist (`create_dir_all` makes them), no symlink among them.
fn resolved(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn an_unterminated_quote_stops_the_job_before_it_starts() {
    let dir = temp("quote");
    let m = dir.join("manifest.csv");
    std::fs::write(
        &m,
        format!("{BUCKET},k1\n{BUCKET},\"k2\n{BUCKET},k3\n{BUCKET},k4\n{BUCKET},k5\n"),
    )
    .unwrap();
    let lambda = Listener::new();
    let out = cli(&lambda.url(), &m, &dir.join("state"))
        .args(["--max-redrives", "0", "--function-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("line 2: a quote opened on this line is never closed"),
        "{}",
        text(&out)
    );
    assert!(!lambda.connected());
    std::fs::remove_dir_all(&dir).unwrap();
}
