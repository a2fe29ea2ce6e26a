//! The artifact users deploy: `cargo lambda build --release` (which defaults to
//! `panic = "abort"` unless the release profile says otherwise) must still turn a panicking
//! task into that task's `PermanentFailure` and keep serving. The workspace's release profile
//! sets `panic = "unwind"`, as the README tells users to.
//!
//! Two things show the build unwinds. The answers: built with `panic = "abort"`, the process
//! dies at the panic, before any response, and nothing here starts it again, so the first
//! invocation ends in watch's 408 at the timeout instead of four results, and no second round
//! is served. And the function's log: `s3batch::run` warns at start `built with panic =
//! "abort" …` when compiled so (`cfg!(panic = "abort")`); the log must lack that warning while
//! holding the function's other warnings, so the absence is not that of the whole log.
//! (Seen with `CARGO_PROFILE_RELEASE_PANIC=abort` in the test's environment: the first round
//! fails with the 408, and the log holds the warning.)
//!
//! The build is `cargo lambda build --release` as users run it, with one change to keep the
//! suite's cost down: `CARGO_PROFILE_RELEASE_OPT_LEVEL=0`. cargo lambda decides the panic
//! strategy (and strip, LTO, codegen units) from the workspace's `[profile.release]` and passes
//! it as `--config`, which this variable does not touch; the optimisation level does not change
//! whether a panic unwinds. Optimising the whole AWS SDK was most of this test's time.

use s3batch::{Response, ResultCode};
use s3batch_testkit::{path_with_venv, target_dir, tool, workspace_root, LambdaWatch};
use std::process::Command;

/// The function timeout the bootstrap is served with: a bound on a dead function's wait, far
/// above the milliseconds `hello` needs.
const TIMEOUT_SECS: u64 = 120;

#[test]
fn release_bootstrap_catches_panics_and_keeps_serving() {
    let status = Command::new(tool("cargo-lambda"))
        .args(["lambda", "build", "--release", "--quiet", "-p", "hello"])
        .current_dir(workspace_root())
        .env("PATH", path_with_venv())
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .status()
        .expect("running cargo lambda build");
    assert!(
        status.success(),
        "cargo lambda build --release -p hello failed"
    );
    // `cargo lambda build` writes under cargo's target directory, `CARGO_TARGET_DIR` included.
    let bootstrap = target_dir().join("lambda/hello/bootstrap");
    let watch = LambdaWatch::serve_binary_with_timeout(&bootstrap, TIMEOUT_SECS);
    // Two rounds back to back through the one function process the fixture started (none is
    // started again): the second is served only if the panic of the first left it running.
    for round in 0..2 {
        let out = watch.invoke_cli(&workspace_root().join("examples/events/hello-v2.json"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            watch.log()
        );
        let r: Response = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("round {round}: {e}: {stdout}"));
        let results: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
            .collect();
        assert_eq!(
            results,
            [
                (
                    "dGFzay0y",
                    ResultCode::Succeeded,
                    "hello s3://source-bucket/reports/2024 Q1+Q2.csv"
                ),
                (
                    "dGFzay0z",
                    ResultCode::PermanentFailure,
                    "task panicked: asked to panic on please panic.txt"
                ),
                (
                    "dGFzay00",
                    ResultCode::TemporaryFailure,
                    "fail-temporary.txt is busy, try again"
                ),
                (
                    "dGFzay01",
                    ResultCode::PermanentFailure,
                    "invalid task: s3Key \"%FF%FE.bin\" does not decode: not valid UTF-8 after \
                     percent-decoding (invalid byte at 0)"
                ),
            ],
            "round {round}"
        );
    }
    let log = watch.log();
    assert!(
        log.contains(r#"invalid task: s3Key "%FF%FE.bin" does not decode"#),
        "the function's warnings are not in the log:\n{log}"
    );
    assert!(!log.contains(r#"built with panic = "abort""#), "{log}");
}
