//! Every input in the workspace's `fuzz/regressions/` (what the fuzzer once found), replayed
//! through `Handler::handle_bytes` the way the fuzz target feeds it (`fuzz/fuzz_targets/
//! envelope.rs`, a task that always succeeds) and checked with the fuzz target's own
//! assertions (`fuzz/oracle.rs`), in the default test run: the fuzzer itself needs nightly and
//! is not part of it.
//!
//! On top of the fuzz target's checks, each input's tasks are counted from the bytes alone
//! (`oracle::event_as_read`, not the handler's parser): an event whose ids read as text must
//! be answered with one result per task, and bytes that are not JSON must get the documented
//! invocation error.

#[path = "../../fuzz/oracle.rs"]
mod oracle;

use s3batch_core::{Handler, InvocationError, Object, Options, Response, ResultCode, TaskError};
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The fuzz target's task.
async fn trivial(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}

/// Every file in `fuzz/regressions/`, sorted by name.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The handler's answer to `data`, as the fuzz target gets it.
fn handle(data: &[u8]) -> Result<Response, InvocationError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let handler = Handler::new(trivial, Options::new()).await.unwrap();
        handler.handle_bytes(data, &Default::default()).await
    })
}

/// What the handler must answer for `data`, worked out from the bytes without it: the number
/// of tasks when the event's ids can be read (`None` when they cannot), or `Err` for bytes that
/// are not JSON.
fn expected_tasks(data: &[u8]) -> Result<Option<usize>, ()> {
    let event = oracle::event_as_read(data).ok_or(())?;
    // An id read lossily (U+FFFD) is not the id S3 sent: the handler may refuse the event.
    let id_readable = event["invocationId"]
        .as_str()
        .is_some_and(|id| !id.contains('\u{fffd}'));
    Ok(match event["tasks"].as_array() {
        Some(tasks) if id_readable => Some(tasks.len()),
        _ => None,
    })
}

/// The checks for one input; panics with what is wrong.
fn replay(data: &[u8]) {
    let outcome = handle(data);
    match (expected_tasks(data), &outcome) {
        (Ok(Some(n)), Ok(response)) => assert_eq!(
            response.results.len(),
            n,
            "not one result per task: {response:?}"
        ),
        (Ok(Some(n)), Err(err)) => panic!("an event with {n} task(s) was refused: {err}"),
        (Err(()), Err(err)) => assert!(
            err.message().starts_with("event is not valid JSON"),
            "bytes that are not JSON: {err}"
        ),
        (Err(()), Ok(response)) => panic!("bytes that are not JSON were answered: {response:?}"),
        // Ids that cannot be read: the fuzz target's rules below decide.
        (Ok(None), _) => {}
    }
    oracle::check(data, outcome);
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[test]
fn every_fuzz_regression_is_answered_as_the_fuzz_target_requires() {
    let corpus = corpus();
    assert!(
        !corpus.is_empty(),
        "fuzz/regressions/ is empty: nothing was replayed"
    );
    // Every input is replayed (and its panic caught) so one failure does not hide the others.
    let failures: Vec<String> = corpus
        .iter()
        .filter_map(|(path, data)| {
            catch_unwind(AssertUnwindSafe(|| replay(data)))
                .err()
                .map(|panic| format!("{}: {}", path.display(), panic_text(&*panic)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} regression inputs failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

/// The first regression: invalid UTF-8 inside a task field s3batch does not read (`s3Kezy`,
/// a mutated `s3Key`). serde_json skips an unknown field without checking its UTF-8, so the
/// event is answered; the task fails for what it lacks, its `s3Key`, and nothing else.
#[test]
fn invalid_utf8_in_an_unknown_task_field_fails_only_that_task_for_its_missing_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/invalid-utf8-in-unknown-field.json");
    let data = std::fs::read(&path).unwrap();
    assert!(
        std::str::from_utf8(&data).is_err(),
        "{} no longer holds invalid UTF-8",
        path.display()
    );
    let response = handle(&data).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(
        response.invocation_id,
        "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZze2RmaAo"
    );
    assert_eq!(response.invocation_schema_version, "1.0");
    let [result] = response.results.as_slice() else {
        panic!("not one result: {response:?}");
    };
    assert_eq!(result.task_id, "-GFza2lkZ29lc2hlcmUK");
    assert_eq!(
        result.result_code,
        ResultCode::PermanentFailure,
        "{result:?}"
    );
    assert!(
        result.result_string.contains("s3Key"),
        "the failure does not name the missing field: {result:?}"
    );
    let json: Value = serde_json::to_value(&response).unwrap();
    assert_eq!(json["results"][0]["taskId"], "-GFza2lkZ29lc2hlcmUK");
}
