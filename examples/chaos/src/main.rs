//! A function that misbehaves on purpose, chosen by the key, for end-to-end tests of the
//! local job runner (`cargo s3batch run`) and of S3's rules:
//!
//! | key contains | what happens |
//! |---|---|
//! | `temp-once` | `TemporaryFailure` the first time, then success (a marker object `.chaos/<key>` in the same bucket remembers the first attempt, so it works across processes) |
//! | `temp-always` | `TemporaryFailure` every time |
//! | `perm` | `PermanentFailure` |
//! | `panic` | panics (reported as that task's `PermanentFailure`) |
//! | `hang` | sleeps for an hour: with a short Lambda timeout the deadline margin turns it into a `TemporaryFailure` |
//! | `abort` | aborts the whole process (`std::process::abort()`), as a crash or an OOM kill would end it |
//! | `block` | blocks its thread for an hour, so the deadline margin cannot answer either: Lambda's timeout ends the invocation |
//! | `sleep-<N>ms` | records the call (an empty object `.chaos/calls/<key>/<process id>-<time>` in the same bucket, so a test counts the invocations of a task across processes), then sleeps N milliseconds |
//!
//! Any other key is looked up with `HeadObject`, so a key that was decoded wrongly fails with
//! `NoSuchKey`/404; the result is `ok <size> bytes`.

use s3batch::aws_sdk_s3::Client;
use s3batch::{Object, TaskError};
use std::time::Duration;

// A wide margin: a `hang` task is answered 3 s before the deadline, which leaves a loaded
// machine room to deliver that answer before the timeout ends the invocation.
#[s3batch::task(deadline_margin_ms = 3000)]
async fn chaos(obj: Object, s3: Client) -> Result<String, TaskError> {
    let key = &obj.key;
    if key.contains("temp-once") {
        let marker = format!(".chaos/{key}");
        let seen = s3
            .head_object()
            .bucket(&obj.bucket)
            .key(&marker)
            .send()
            .await
            .is_ok();
        if !seen {
            s3.put_object()
                .bucket(&obj.bucket)
                .key(&marker)
                .body(Vec::new().into())
                .send()
                .await?;
            return Err(TaskError::temporary(format!(
                "first attempt at {key} fails"
            )));
        }
    }
    if key.contains("temp-always") {
        return Err(TaskError::temporary(format!("{key} is always busy")));
    }
    if key.contains("perm") {
        return Err(TaskError::permanent(format!("{key} cannot be processed")));
    }
    if key.contains("panic") {
        panic!("asked to panic on {key}");
    }
    if key.contains("abort") {
        eprintln!("chaos: aborting the process on {key}");
        std::process::abort();
    }
    if key.contains("block") {
        // A blocking call in async code: the runtime cannot run the deadline timer either.
        std::thread::sleep(Duration::from_secs(3600));
    }
    if key.contains("hang") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(ms) = sleep_ms(key) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        s3.put_object()
            .bucket(&obj.bucket)
            .key(format!(".chaos/calls/{key}/{}-{at}", std::process::id()))
            .body(Vec::new().into())
            .send()
            .await?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let head = s3.head_object().bucket(&obj.bucket).key(key).send().await?;
    Ok(format!("ok {} bytes", head.content_length().unwrap_or(0)))
}

/// `N` of the first `sleep-<N>ms` in `key`.
fn sleep_ms(key: &str) -> Option<u64> {
    key.match_indices("sleep-").find_map(|(at, _)| {
        let rest = &key[at + "sleep-".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest[digits..]
            .starts_with("ms")
            .then(|| rest[..digits].parse().ok())
            .flatten()
    })
}
