//! The facade without its default features (`tests/no-s3`, `s3batch = { default-features =
//! false }`): a task that takes no `Client` builds and serves without the AWS SDK or its HTTP
//! stack in the build.

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{build_package, workspace_root, LambdaWatch};
use std::collections::BTreeSet;
use std::process::Command;

/// The crates `package` links (`cargo tree -e normal`: no dev or build dependencies).
fn linked_crates(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "-p",
            package,
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// What the `s3` feature brings: the SDK, its HTTP client and TLS.
const SDK_STACK: &[&str] = &[
    "aws-config",
    "aws-sdk-s3",
    "aws-runtime",
    "aws-smithy-runtime",
    "aws-smithy-runtime-api",
    "aws-smithy-types",
    "aws-smithy-http-client",
    "h2",
    "hyper-rustls",
    "rustls",
];

#[test]
fn without_the_s3_feature_no_sdk_is_linked() {
    let linked = linked_crates("no-s3");
    let sdk: Vec<_> = SDK_STACK.iter().filter(|c| linked.contains(**c)).collect();
    assert!(sdk.is_empty(), "linked without the s3 feature: {sdk:?}");
    for needed in [
        "s3batch",
        "s3batch-core",
        "s3batch-macros",
        "lambda_runtime",
    ] {
        assert!(linked.contains(needed), "{needed} missing from {linked:?}");
    }
    // The facade with its default features does bring them: the list names real crates.
    let with_s3 = linked_crates("s3batch");
    for c in ["aws-config", "aws-sdk-s3", "h2", "hyper-rustls"] {
        assert!(with_s3.contains(c), "{c} missing from {with_s3:?}");
    }
}

#[test]
fn a_task_without_the_s3_feature_builds_and_serves() {
    build_package("no-s3");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"));
    // A namespace in the environment asks for metrics the binary was built without (the
    // facade's default features are off): a warning at start says so, and no document is
    // written.
    let watch = LambdaWatch::serve_binary_with_env(
        &target.join("debug/no_client"),
        &[("POWERTOOLS_METRICS_NAMESPACE", "NoS3")],
    );
    let inv = watch.invoke(&EventBuilder::v2().object("bucket", "a b.txt").to_bytes());
    assert_eq!(
        (inv.status, &inv.function_error),
        (200, &None),
        "{inv:?}\n{}",
        watch.log()
    );
    let r: Response =
        serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body));
    assert_eq!(r.results.len(), 1, "{r:?}");
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    assert_eq!(r.results[0].result_string, "bucket has 7 bytes in its key");
    let log = watch.log();
    assert!(
        log.contains(
            "POWERTOOLS_METRICS_NAMESPACE asks for CloudWatch metrics, but this function was \
             built without s3batch's `metrics` feature"
        ),
        "{log}"
    );
    assert!(!log.contains("\"_aws\""), "{log}");
    // Without the `map` feature a Distributed Map batch is refused, naming the feature.
    let inv = watch.invoke(br#"{"Items":[{"Key":"a"}],"BatchInput":{"Bucket":"b"}}"#);
    // cargo lambda watch reports a function error as HTTP 500 with the error document.
    assert_eq!(inv.status, 500, "{inv:?}");
    let err: serde_json::Value =
        serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body));
    assert_eq!(err["errorType"], "S3Batch.UnrecognizedEvent", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("built without s3batch's `map` feature")),
        "{err}"
    );
}

/// `tests/no-s3/src/bin/client_param.rs`, an `aws_sdk_s3::Client` parameter without the `s3`
/// feature, does not compile, and the error says which feature the `Client` needs.
#[test]
fn a_client_parameter_without_the_s3_feature_names_the_feature() {
    let out = Command::new(env!("CARGO"))
        .args(["check", "--locked", "--offline", "-p", "no-s3"])
        .args(["--features", "client-param", "--bin", "client_param"])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`aws_sdk_s3::Client` cannot be a task parameter")
            || stderr.contains("`Client` cannot be a task parameter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`aws_sdk_s3::Client` needs s3batch's feature `s3`"),
        "{stderr}"
    );
}
