//! `cargo s3batch run` prepares a job with the engine's one lifecycle
//! (`s3batch_job::lifecycle`), the one `serve` uses: everything that can refuse a job is
//! checked before anything of the function is started. No function is reached here.

use s3batch_job::journal::Journal;
use s3batch_job::ManifestSource;
use s3batch_testkit::{fresh_dir, output_text as text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder for one test.
fn temp(name: &str) -> PathBuf {
    fresh_dir(&format!("prepare-{name}"))
}

fn run(state: &Path, manifest: &Path, bootstrap: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-s3batch"))
        .args(["s3batch", "run", "--bootstrap"])
        .arg(bootstrap)
        .arg("--manifest")
        .arg(manifest)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("S3BATCH_STATE_DIR")
        .output()
        .unwrap()
}

/// A resume over another manifest than the job started with is refused before the
/// function's runtime is started: no "function output" is announced and no function log is
/// made for a job that never runs. (`run` used to compare the manifest only when it opened
/// the journal, after it had started the bootstrap's runtime host.)
#[test]
fn a_resume_over_another_manifest_is_refused_before_the_function_is_started() {
    let dir = temp("other-manifest");
    let state = dir.join("state");
    let started = dir.join("started.csv");
    std::fs::write(&started, "bkt,k1\nbkt,k2\n").unwrap();
    let other = dir.join("other.csv");
    std::fs::write(&other, "bkt,k3\n").unwrap();
    // Never run: the job is refused first.
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 1\n").unwrap();
    // The journal of job j1 over `started`, as a run killed before any task finished
    // leaves it.
    let source = ManifestSource::open(&started).unwrap();
    drop(Journal::create(&state.join("job-j1"), "j1", "started.csv", &source).unwrap());

    let out = run(&state, &other, &bootstrap, &["--job-id", "j1", "--resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the manifest is not the one job j1 started with (started.csv: 2 rows"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("function output"), "{}", text(&out));
    assert!(
        !state.join("job-j1.function.log").exists(),
        "a function log was made for a job that never ran"
    );
    // The journal is kept as it was, and the job resumes over its own manifest (a dry run
    // here: every check, nothing run).
    assert!(Journal::exists(&state.join("job-j1")));
    let out = run(
        &state,
        &started,
        &bootstrap,
        &["--job-id", "j1", "--resume", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("job j1: 2 tasks"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A new job refused for its report destination leaves no job folder behind (the folder it
/// took to hold the job is removed), so the same job id can be run again at once.
#[test]
fn a_job_refused_for_its_report_destination_leaves_no_folder() {
    let dir = temp("destination");
    let state = dir.join("state");
    let manifest = dir.join("m.csv");
    std::fs::write(&manifest, "bkt,k1\n").unwrap();
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 1\n").unwrap();
    let blocked = dir.join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let out = run(
        &state,
        &manifest,
        &bootstrap,
        &["--job-id", "d1", "--report", blocked.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the report cannot be written under {}: {} is a file, not a folder",
            blocked.display(),
            blocked.display()
        )),
        "{}",
        text(&out)
    );
    assert!(!state.join("job-d1").exists());
    assert!(!state.join("job-d1.function.log").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
