//! The binaries of `tests/renamed-crate`, which depends on s3batch only as `batch`, served as
//! Lambdas through the Runtime API: their generated `main`s run, reached through
//! `crate = "batch"` and `crate = "crate::deps::s3"`, and apply the attribute's options. That
//! they compile at all is the proof that `crate = "…"` is honoured: `s3batch` names nothing in
//! that crate. Every other option is observed in a served answer that differs when the
//! generated code drops it: `treat_missing_keys_as` (the response's field), `max_result_len`
//! (a cut result), `concurrency` (tasks in flight) and `deadline_margin_ms` (a task given up
//! earlier than the default margin would). (`main = false` is `s3batch-macros/tests/ui/pass/own_main.rs`: a
//! generated `main` beside the user's would not compile.)

use s3batch::testing::EventBuilder;
use s3batch::{Response, ResultCode};
use s3batch_testkit::{build_package, target_dir, LambdaWatch};

/// Serves `tests/renamed-crate`'s binary `bin` (with a function timeout, if given) and
/// invokes it once with `event`.
fn serve_with(bin: &str, event: EventBuilder, timeout_secs: Option<u64>) -> Response {
    let binary = target_dir().join("debug").join(bin);
    let watch = match timeout_secs {
        Some(t) => LambdaWatch::serve_binary_with_timeout(&binary, t),
        None => LambdaWatch::serve_binary(&binary),
    };
    let inv = watch.invoke(&event.to_bytes());
    assert_eq!(
        (inv.status, &inv.function_error),
        (200, &None),
        "{inv:?}\n{}",
        watch.log()
    );
    serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body))
}

fn serve(bin: &str, event: EventBuilder) -> Response {
    serve_with(bin, event, None)
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

/// `#[batch::task(crate = "batch", concurrency = 1)]`: each task answers how many tasks were in
/// flight when it started. The runner starts every task of an event before awaiting any when
/// the concurrency allows it, so with the default (64) these four would answer 1, 2, 3, 4.
#[test]
fn concurrency_one_runs_one_task_at_a_time() {
    build_package("renamed-crate");
    let mut event = EventBuilder::v2().job_id("job-3");
    for key in ["a", "b", "c", "d"] {
        event = event.object("bucket", key);
    }
    let r = serve("concurrency_one", event);
    assert_eq!(
        results(&r),
        [
            ("task-0", ResultCode::Succeeded, "a: 1 in flight"),
            ("task-1", ResultCode::Succeeded, "b: 1 in flight"),
            ("task-2", ResultCode::Succeeded, "c: 1 in flight"),
            ("task-3", ResultCode::Succeeded, "d: 1 in flight"),
        ]
    );
}

/// The function's timeout in `deadline_margin_given_up_before_the_default_would`.
const MARGIN_TIMEOUT_SECS: u64 = 20;

/// `#[batch::task(crate = "batch", deadline_margin_ms = 12_000)]` under a 20 s function
/// timeout: unfinished tasks are given up 8 s into the invocation. A task that sleeps 14 s is
/// then a `TemporaryFailure`; with the margin ignored (the default 1 s: given up at 19 s) it
/// would succeed. Both sides have 5 s or more to spare, for a loaded machine; the answer
/// comes 12 s before watch's `--timeout`.
#[test]
fn deadline_margin_given_up_before_the_default_would() {
    build_package("renamed-crate");
    let r = serve_with(
        "deadline_margin",
        EventBuilder::v1()
            .job_id("job-4")
            .object("bucket", "sleep/14000")
            .object("bucket", "quick"),
        Some(MARGIN_TIMEOUT_SECS),
    );
    assert_eq!(
        results(&r),
        [
            (
                "task-0",
                ResultCode::TemporaryFailure,
                "did not finish before the Lambda deadline"
            ),
            ("task-1", ResultCode::Succeeded, "quick at once"),
        ]
    );
}

/// `tests/renamed-crate/src/bin/not_an_extractor.rs`, a `String` parameter under the
/// facade's default features, does not compile, and the error lists the extractors those
/// features give, `aws_sdk_s3::Client` first (the trybuild UI tests build the facade without
/// `s3`, so their copy of this error has the other note). The workspace's features, as
/// `cargo clippy --workspace` resolves them, so its check of the dependencies is reused.
#[test]
fn a_parameter_that_is_no_extractor_lists_the_default_extractors() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["check", "--locked", "--offline", "--workspace"])
        .args(["--features", "renamed-crate/not-an-extractor"])
        .args(["--bin", "not_an_extractor"])
        .current_dir(s3batch_testkit::workspace_root())
        .output()
        .expect("running cargo check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // At the offending token: the parameter's type, line 9, column 42.
    assert!(
        stderr.contains("String` cannot be a task parameter")
            && stderr.contains("tests/renamed-crate/src/bin/not_an_extractor.rs:9:42"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "task parameters after the `Object` must be extractors: `aws_sdk_s3::Client`, \
             `Job`, `UserArgs<T>`, `lambda_runtime::Context`, or your own type implementing \
             `FromTask`"
        ),
        "{stderr}"
    );
}
