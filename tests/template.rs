//! `templates/task`, the cargo-lambda template of the README's quick start, as a user meets it:
//! rendered by the real `cargo lambda new --template templates/task --no-interactive` into a
//! directory outside this workspace, built, its own tests run, linted, and served by
//! `cargo lambda watch`. The template's two yes/no prompts (`s3_client`, `no_user_args`) make
//! four variants of `src/main.rs`; each is rendered and checked by a test of its own.
//!
//! The rendered crates depend on this checkout by path (`--render-var s3batch_path=…`), get
//! this workspace's `Cargo.lock` (so they resolve, offline, to the versions already built) and
//! build into this workspace's target directory, `cargo lambda watch`'s builds included: the
//! two variants with an S3 client resolve to the same dependencies with the same features, and
//! so do the two without (s3batch without its `s3` feature: no AWS SDK), so each set is built
//! once, by whichever variant builds first, and only each crate itself after that.

use std::path::{Path, PathBuf};
use std::process::Command;

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{
    fresh_dir, output_text, path_with_venv, target_dir, tool, workspace_root, LambdaWatch, Moto,
};

/// A fresh directory for rendered crates, outside any Cargo workspace. Cargo run in it, by
/// `cargo lambda watch` too, builds into this workspace's target directory
/// (`.cargo/config.toml`): without it, watch's `cargo run` would build every dependency,
/// the AWS SDK included, once more in the rendered crate's own `target/`.
fn scratch(name: &str) -> PathBuf {
    let dir = fresh_dir(&format!("template-{name}"));
    std::fs::create_dir(dir.join(".cargo")).unwrap();
    let target = toml::Value::String(target_dir().display().to_string());
    std::fs::write(
        dir.join(".cargo/config.toml"),
        format!("[build]\ntarget-dir = {target}\n"),
    )
    .unwrap();
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
        "cargo lambda new failed: {}",
        output_text(&out)
    );
    let krate = dir.join(name);
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    krate
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

/// The answers to the template's two yes/no prompts.
#[derive(Debug, Clone, Copy)]
struct Variant {
    /// `s3_client=true`: the task takes a `Client` and sends a `HeadObject`.
    s3_client: bool,
    /// `no_user_args` left false: the task reads the job's user arguments.
    user_args: bool,
}

/// What every variant must be, checked on the crate rendered for `variant`: its `main.rs`
/// and `Cargo.toml` hold exactly the parts its answers ask for (and no Liquid is left), its
/// own unit test passes, and it is formatted and lint-free. Returns the crate's directory.
fn render_and_check(dir: &Path, name: &str, variant: Variant) -> PathBuf {
    let mut vars = Vec::new();
    if variant.s3_client {
        vars.push("s3_client=true");
    }
    if !variant.user_args {
        vars.push("no_user_args=true");
    }
    let krate = render(dir, name, &vars);

    let main = std::fs::read_to_string(krate.join("src/main.rs")).unwrap();
    let Variant {
        s3_client,
        user_args,
    } = variant;
    for (part, wanted) in [
        ("use s3batch::aws_sdk_s3::Client;", s3_client),
        ("s3: Client", s3_client),
        (".head_object()", s3_client),
        ("({size} bytes)", s3_client),
        (
            "invoke_with_client(process, event, offline_client())",
            s3_client,
        ),
        ("invoke(process, event)", !s3_client),
        ("use serde::Deserialize;", user_args),
        ("struct Args {", user_args),
        ("UserArgs(args): UserArgs<Args>", user_args),
        ("args.greeting.as_deref().unwrap_or(\"hello\")", user_args),
        (".user_argument(\"greeting\", \"hi\")", user_args),
        ("let greeting = \"hello\";", !user_args),
        ("{%", false),
        ("{{", false),
    ] {
        assert_eq!(
            main.contains(part),
            wanted,
            "{variant:?}: src/main.rs {} `{part}`:\n{main}",
            if wanted { "misses" } else { "has" }
        );
    }
    let manifest: toml::Table = std::fs::read_to_string(krate.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some(name));
    assert_eq!(
        manifest["dependencies"].get("serde").is_some(),
        user_args,
        "{variant:?}: {manifest}"
    );
    // Each variant depends on exactly what it uses: without a `Client`, s3batch's default
    // `s3` feature (the AWS SDK, its HTTP and TLS stack) is left out; with one, it is on.
    let s3batch = &manifest["dependencies"]["s3batch"];
    assert_eq!(
        s3batch.get("default-features").and_then(|v| v.as_bool()),
        (!s3_client).then_some(false),
        "{variant:?}: s3batch's default-features: {manifest}"
    );
    assert!(
        s3batch.get("features").is_none(),
        "{variant:?}: no feature beyond the defaults is needed: {manifest}"
    );

    let tested = cargo(&krate, &["test"]);
    assert!(
        tested.contains("test tests::answers_each_task ... ok")
            && tested.contains("test result: ok. 1 passed"),
        "{variant:?}: {tested}"
    );
    // What the user gets is already formatted and lint-free.
    cargo(&krate, &["fmt", "--check"]);
    cargo(&krate, &["clippy", "--all-targets", "--", "-D", "warnings"]);
    krate
}

fn parse(what: &str, body: &str) -> Response {
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// `cargo lambda invoke --data-file EVENT`, as the rendered README says.
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
    parse(&event.display().to_string(), &stdout)
}

/// Invokes with an event built here, through the Lambda Invoke API.
fn invoke_event(watch: &LambdaWatch, event: &EventBuilder) -> Response {
    let inv = watch.invoke(&event.to_bytes());
    assert!(
        inv.status == 200 && inv.function_error.is_none(),
        "{inv:?}\n{}",
        watch.log()
    );
    parse("the invocation", &inv.body)
}

/// Each result's code and text.
fn outcomes(response: &Response) -> Vec<(ResultCode, &str)> {
    response
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect()
}

/// The object `events/v2.json`'s first task names, in a moto S3 (the second, `reports/`, is
/// a folder marker that the task turns down before any S3 call).
const REPORT: (&str, &str) = ("example-bucket", "reports/2024 Q1+Q2.csv");
const REPORT_BODY: &str = "quarter,total\nQ1,1\nQ2,2\n";

/// A moto S3 holding [`REPORT`].
fn moto_with_report() -> Moto {
    let moto = Moto::start();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let s3 = moto.client().await;
        s3.create_bucket().bucket(REPORT.0).send().await.unwrap();
        s3.put_object()
            .bucket(REPORT.0)
            .key(REPORT.1)
            .body(REPORT_BODY.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    });
    moto
}

/// The answer both client variants give for [`REPORT`]: the greeting, the object and the
/// size that S3's `HeadObject` reported.
fn report_answer(greeting: &str) -> String {
    format!(
        "{greeting} s3://{}/{} ({} bytes)",
        REPORT.0,
        REPORT.1,
        REPORT_BODY.len()
    )
}

/// The defaults: user arguments, no S3 call. Besides the checks of every variant, its
/// manifest and README, both sample events under `cargo lambda watch`, and the README's
/// local job run by `cargo s3batch run`.
#[test]
fn default_template_builds_tests_and_serves_both_schemas() {
    let dir = scratch("default");
    let krate = render_and_check(
        &dir,
        "my-task",
        Variant {
            s3_client: false,
            user_args: true,
        },
    );

    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
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
    assert_eq!(
        outcomes(&v2),
        [
            (
                ResultCode::Succeeded,
                "hi s3://example-bucket/reports/2024 Q1+Q2.csv"
            ),
            (ResultCode::PermanentFailure, "reports/ is a folder marker"),
        ]
    );

    // The README's local job: `cargo s3batch run` over a manifest, against this watch.
    s3batch_testkit::build_package("cargo-s3batch");
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
        "cargo s3batch run failed: {}",
        output_text(&out)
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

/// No user arguments, no S3 call: the job's `greeting` in `events/v2.json` is not read.
#[test]
fn variant_without_user_arguments_or_client_ignores_the_jobs_arguments() {
    let dir = scratch("plain");
    let krate = render_and_check(
        &dir,
        "plain-task",
        Variant {
            s3_client: false,
            user_args: false,
        },
    );
    let watch = LambdaWatch::start_in(&krate, "plain-task", &[], None, 1);
    let v2 = invoke(&watch, &krate.join("events/v2.json"));
    assert_eq!(
        outcomes(&v2),
        [
            (
                ResultCode::Succeeded,
                "hello s3://example-bucket/reports/2024 Q1+Q2.csv"
            ),
            (ResultCode::PermanentFailure, "reports/ is a folder marker"),
        ]
    );
    drop(watch);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `s3_client` with the user arguments (the template's multi-line signature): served against
/// a moto S3, the task answers with the size `HeadObject` found and the job's greeting, or
/// the default greeting for a schema 1.0 job, which has no user arguments.
#[test]
fn s3_client_variant_with_user_arguments_heads_the_object_and_reads_the_greeting() {
    let dir = scratch("s3-args");
    let krate = render_and_check(
        &dir,
        "s3-args-task",
        Variant {
            s3_client: true,
            user_args: true,
        },
    );
    let moto = moto_with_report();
    let watch = LambdaWatch::start_in(&krate, "s3-args-task", &moto.env(), None, 1);
    let v2 = invoke(&watch, &krate.join("events/v2.json"));
    assert_eq!(
        outcomes(&v2),
        [
            (ResultCode::Succeeded, report_answer("hi").as_str()),
            (ResultCode::PermanentFailure, "reports/ is a folder marker"),
        ]
    );
    let v1 = invoke_event(
        &watch,
        &EventBuilder::v1().encoded_object(REPORT.0, "reports/2024+Q1%2BQ2.csv"),
    );
    assert_eq!(v1.invocation_schema_version, "1.0");
    assert_eq!(
        outcomes(&v1),
        [(ResultCode::Succeeded, report_answer("hello").as_str())]
    );
    drop(watch);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `s3_client` without user arguments: served against a moto S3, the task answers with the
/// size `HeadObject` found and the default greeting, whatever the job's arguments say.
#[test]
fn s3_client_variant_without_user_arguments_heads_the_object() {
    let dir = scratch("s3");
    let krate = render_and_check(
        &dir,
        "s3-task",
        Variant {
            s3_client: true,
            user_args: false,
        },
    );
    let moto = moto_with_report();
    let watch = LambdaWatch::start_in(&krate, "s3-task", &moto.env(), None, 1);
    let v2 = invoke(&watch, &krate.join("events/v2.json"));
    assert_eq!(
        outcomes(&v2),
        [
            (ResultCode::Succeeded, report_answer("hello").as_str()),
            (ResultCode::PermanentFailure, "reports/ is a folder marker"),
        ]
    );
    drop(watch);
    let _ = std::fs::remove_dir_all(&dir);
}
