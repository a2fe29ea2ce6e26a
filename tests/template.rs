//! `templates/task`, the cargo-lambda template of the README's quick start, as a user meets it:
//! rendered by the real `cargo lambda new --template templates/task --no-interactive` into a
//! directory outside this workspace, built, its own tests run, and served by
//! `cargo lambda watch` for both sample events.
//!
//! The rendered crate depends on this checkout by path (`--render-var s3batch_path=…`), gets
//! this workspace's `Cargo.lock` (so it resolves, offline, to the versions already built) and
//! builds into the same target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use s3batch::{Response, ResultCode};
use s3batch_testkit::{path_with_venv, tool, workspace_root, LambdaWatch};

/// A fresh directory for rendered crates, outside any Cargo workspace.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s3batch-template-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cargo lambda new NAME --template templates/task --no-interactive` in `dir`, with
/// s3batch taken from this checkout and the extra `--render-var`s given.
fn render(dir: &Path, name: &str, vars: &[&str]) -> PathBuf {
    let root = workspace_root();
    let mut cmd = Command::new(tool("cargo-lambda"));
    cmd.args(["lambda", "new", name, "--no-interactive", "--template"])
        .arg(root.join("templates/task"))
        .arg("--render-var")
        .arg(format!("s3batch_path={}", root.display()));
    for v in vars {
        cmd.args(["--render-var", v]);
    }
    let out = cmd
        .current_dir(dir)
        .env("PATH", path_with_venv())
        .output()
        .expect("running cargo lambda new");
    assert!(
        out.status.success(),
        "cargo lambda new failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let krate = dir.join(name);
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    krate
}

/// The target directory this test's cargo builds into (and the rendered crates with it).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Runs `cargo SUBCOMMAND --offline REST` in `krate` (`cargo fmt` takes no `--offline`), into
/// this workspace's target directory.
fn cargo(krate: &Path, args: &[&str]) -> String {
    let mut full = vec![args[0]];
    if args[0] != "fmt" {
        full.push("--offline");
    }
    full.extend(&args[1..]);
    let out = Command::new(env!("CARGO"))
        .args(&full)
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("running cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{text}",
        krate.display()
    );
    text
}

fn invoke(watch: &LambdaWatch, event: &Path) -> Response {
    let out = watch.invoke_cli(event);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda invoke {} failed: {stdout}{}\n{}",
        event.display(),
        String::from_utf8_lossy(&out.stderr),
        watch.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn default_template_builds_tests_and_serves_both_schemas() {
    let dir = scratch("default");
    let krate = render(&dir, "my-task", &[]);

    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("my-task"));
    assert_eq!(
        manifest["profile"]["release"]["panic"].as_str(),
        Some("unwind")
    );
    assert_eq!(
        manifest["dependencies"]["s3batch"]["path"].as_str(),
        Some(workspace_root().to_str().unwrap())
    );
    assert_eq!(
        manifest["dependencies"]["serde"]["features"][0].as_str(),
        Some("derive")
    );
    assert!(manifest["dev-dependencies"].get("tokio").is_some());
    assert!(
        !krate.join("CargoLambda.toml").exists(),
        "the template's own configuration is not part of the crate"
    );
    let ignored = std::fs::read_to_string(krate.join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "/target"), "{ignored}");
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    for command in [
        "cargo test",
        "cargo lambda watch --concurrency",
        "cargo lambda invoke --data-file events/v1.json my-task",
        "cargo s3batch run --manifest manifest.csv --function my-task",
        "cargo lambda build --release",
        "cargo lambda deploy my-task",
    ] {
        assert!(
            readme.contains(command),
            "README misses `{command}`:\n{readme}"
        );
    }

    let tested = cargo(&krate, &["test"]);
    assert!(
        tested.contains("test tests::answers_each_task ... ok"),
        "{tested}"
    );
    // What the user gets is already formatted and lint-free.
    cargo(&krate, &["fmt", "--check"]);
    cargo(&krate, &["clippy", "--all-targets", "--", "-D", "warnings"]);

    let watch = LambdaWatch::start_in(&krate, "my-task", &[], None, 2);
    let v1 = invoke(&watch, &krate.join("events/v1.json"));
    assert_eq!(v1.invocation_schema_version, "1.0");
    assert_eq!(v1.results.len(), 1);
    assert_eq!(v1.results[0].result_code, ResultCode::Succeeded);
    assert_eq!(
        v1.results[0].result_string,
        "hello s3://example-bucket/customer images/imageé1.jpg"
    );

    let v2 = invoke(&watch, &krate.join("events/v2.json"));
    assert_eq!(v2.invocation_schema_version, "2.0");
    let got: Vec<(ResultCode, &str)> = v2
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ResultCode::Succeeded,
                "hi s3://example-bucket/reports/2024 Q1+Q2.csv"
            ),
            (ResultCode::PermanentFailure, "reports/ is a folder marker"),
        ]
    );

    // The README's local job: `cargo s3batch run` over a manifest, against this watch.
    s3batch_testkit::build_package("s3batch-job");
    std::fs::write(
        krate.join("manifest.csv"),
        "example-bucket,photos/a+b.jpg\nexample-bucket,reports/\n",
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", watch.port());
    let out = Command::new(target_dir().join("debug/cargo-s3batch"))
        .args(["s3batch", "run", "--manifest", "manifest.csv"])
        .args(["--function", "my-task", "--endpoint-url", &endpoint])
        .args(["--schema", "2.0", "--user-arg", "greeting=hi"])
        .args(["--concurrency", "2", "--report", "./report"])
        .current_dir(&krate)
        .output()
        .expect("running cargo s3batch run");
    assert!(
        out.status.success(),
        "cargo s3batch run failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = walk(&krate.join("report"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "example-bucket,photos/a+b.jpg,,succeeded,,200,hi s3://example-bucket/photos/a b.jpg",
            "example-bucket,reports/,,failed,PermanentFailure,200,reports/ is a folder marker",
        ]
    );
    drop(watch);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The other answers to the template's prompts: a task that calls S3 and reads no user
/// arguments. Its unit test runs against an S3 that is not there, so it needs no AWS.
#[test]
fn s3_client_variant_builds_and_passes_its_tests() {
    let dir = scratch("s3");
    let krate = render(&dir, "s3-task", &["s3_client=true", "no_user_args=true"]);
    let main = std::fs::read_to_string(krate.join("src/main.rs")).unwrap();
    assert!(main.contains("s3: Client"), "{main}");
    assert!(!main.contains("UserArgs"), "{main}");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("serde"), "{manifest}");

    let tested = cargo(&krate, &["test"]);
    assert!(
        tested.contains("test tests::answers_each_task ... ok"),
        "{tested}"
    );
    cargo(&krate, &["fmt", "--check"]);
    cargo(&krate, &["clippy", "--all-targets", "--", "-D", "warnings"]);
    let _ = std::fs::remove_dir_all(&dir);
}
