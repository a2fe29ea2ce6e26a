//! The binaries of `tests/renamed-crate`, which depends on s3batch only as `batch`, served as
//! Lambdas: their generated `main`s run, reached through `crate = "batch"` and
//! `crate = "crate::deps::s3"`, and apply the attribute's options (`treatMissingKeysAs`, the
//! result length). That they compile at all is the proof that `crate = "…"` is honoured:
//! `s3batch` names nothing in that crate.

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{build_package, workspace_root, LambdaWatch};

fn serve(bin: &str, event: EventBuilder) -> Response {
    let binary = workspace_root().join("target/debug").join(bin);
    let watch = LambdaWatch::serve_binary(&binary);
    let inv = watch.invoke(&event.to_bytes());
    assert_eq!(
        (inv.status, &inv.function_error),
        (200, &None),
        "{inv:?}\n{}",
        watch.log()
    );
    serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body))
}

fn results(r: &Response) -> Vec<(&str, ResultCode, &str)> {
    r.results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect()
}

#[test]
fn renamed_and_reexported_facades_serve_with_their_options() {
    build_package("renamed-crate");

    // `#[batch::task(crate = "batch", treat_missing_keys_as = "TemporaryFailure", …)]`
    let r = serve(
        "renamed",
        EventBuilder::v2()
            .job_id("job-1")
            .object("bucket", "a b.txt"),
    );
    assert_eq!(r.treat_missing_keys_as, ResultCode::TemporaryFailure);
    assert_eq!(
        results(&r),
        [("task-0", ResultCode::Succeeded, "a b.txt in job-1")]
    );

    // `#[deps::s3::task(crate = "crate::deps::s3", treat_missing_keys_as = "Succeeded",
    // max_result_len = 64)]`: a long key's result is cut to 64 bytes.
    let long = "k".repeat(100);
    let r = serve(
        "reexported",
        EventBuilder::v1()
            .job_id("job-2")
            .object("bucket", "c+d.txt")
            .object("bucket", &long),
    );
    assert_eq!(r.treat_missing_keys_as, ResultCode::Succeeded);
    assert_eq!(r.results.len(), 2, "{r:?}");
    assert_eq!(
        results(&r)[0],
        ("task-0", ResultCode::Succeeded, "c+d.txt in job-2")
    );
    let cut = &r.results[1].result_string;
    assert!(
        cut.len() <= 64 && cut.starts_with("kkkk") && cut.ends_with("bytes]"),
        "{cut:?}"
    );
}
