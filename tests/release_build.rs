//! The artifact users deploy: `cargo lambda build --release` (which defaults to
//! `panic = "abort"` unless the release profile says otherwise) must still turn a panicking
//! task into that task's `PermanentFailure` and keep serving. The workspace's release profile
//! sets `panic = "unwind"`, as the README tells users to.
//!
//! The build is `cargo lambda build --release` as users run it, with one change to keep the
//! suite's cost down: `CARGO_PROFILE_RELEASE_OPT_LEVEL=0`. cargo lambda decides the panic
//! strategy (and strip, LTO, codegen units) from the workspace's `[profile.release]` and passes
//! it as `--config`, which this variable does not touch; the optimisation level does not change
//! whether a panic unwinds. Optimising the whole AWS SDK was most of this test's time.

use s3batch::{Response, ResultCode};
use s3batch_testkit::{path_with_venv, tool, workspace_root, LambdaWatch};
use std::process::Command;

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
    let bootstrap = workspace_root().join("target/lambda/hello/bootstrap");
    let watch = LambdaWatch::serve_binary(&bootstrap);
    for round in 0..2 {
        let out = watch.invoke_cli(&workspace_root().join("examples/events/hello-v2.json"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            watch.log()
        );
        let r: Response = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(r.results.len(), 4);
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
        assert_eq!(r.results[1].result_code, ResultCode::PermanentFailure);
        assert_eq!(
            r.results[1].result_string,
            "task panicked: asked to panic on please panic.txt"
        );
    }
    assert!(
        !watch.log().contains("panic = \"abort\""),
        "{}",
        watch.log()
    );
}
