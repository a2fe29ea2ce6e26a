//! Property tests: key decoding against S3's encoding rule, and the response shape for any
//! event and any mix of task outcomes.

use proptest::prelude::*;
use s3batch::key::{decode_key, encode_key};
use s3batch::testing::EventBuilder;
use s3batch::{Handler, Object, Options, ResultCode, TaskError};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// S3's form-style encoding, written from the rule rather than taken from s3batch: ASCII
/// letters, digits and `-_.*` stay, a space is `+`, every other byte of the UTF-8 key is
/// `%XX`. Hex digits may come in either case, and `/` may be left alone.
fn s3_encode(key: &str, lower_hex: bool, keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in key.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            b' ' => out.push('+'),
            _ if lower_hex => out.push_str(&format!("%{b:02x}")),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Keys as S3 allows them: any characters, up to 1,024 bytes of UTF-8, with the awkward
/// ones made likely.
fn key() -> impl Strategy<Value = String> {
    let awkward = prop::sample::select(vec![
        " ", "+", "%", "%2B", "/", "..", "?", "&", "=", "#", "\"", "{", "}", "é", "😀", "\u{0}",
        "\n", "\\", "~", "*",
    ]);
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        awkward.prop_map(String::from)
    ];
    prop::collection::vec(piece, 0..64).prop_map(|pieces| {
        let mut key = String::new();
        for p in pieces {
            if key.len() + p.len() > 1024 {
                break;
            }
            key.push_str(&p);
        }
        key
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_inverts_s3s_encoding(key in key(), lower in any::<bool>(), slash in any::<bool>()) {
        let encoded = s3_encode(&key, lower, slash);
        prop_assert_eq!(decode_key(&encoded).unwrap(), key.clone());
        prop_assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
    }

    #[test]
    fn decoding_fails_exactly_on_malformed_keys(raw in raw_key()) {
        match (decode_key(&raw), form_decode(&raw)) {
            (Ok(got), Some(want)) => prop_assert_eq!(got, want),
            (Err(e), None) => {
                let message = e.to_string();
                prop_assert!(message.contains("does not decode"), "{}", message);
                prop_assert!(message.contains(&format!("{raw:?}")), "{}", message);
            }
            (got, want) => prop_assert!(false, "{:?}: decode_key gave {:?}, the rule {:?}", raw, got, want),
        }
    }
}

/// Form-style decoding written from S3's rule rather than taken from s3batch: `+` is a space,
/// `%XX` is a byte, and the bytes must be UTF-8; `None` when a `%` is not followed by two hex
/// digits or the bytes are not UTF-8.
fn form_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Raw `s3Key` values, well-formed and malformed both common: stray and truncated `%`,
/// escapes of lone UTF-8 bytes and of whole characters, `+`, and any character.
fn raw_key() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "%",
            "%2",
            "%g0",
            "%FF",
            "%fe",
            "%2B",
            "%2b",
            "%C3%A9",
            "%E2%9C",
            "%F0%9F%98%80",
            "+",
            "a",
            "Z",
            "0",
            "f",
            " ",
            "é",
            "😀",
            "/",
        ])
        .prop_map(String::from),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// What a task in the generated event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Temporary,
    Permanent,
    Panic,
    /// Runs past the deadline.
    Slow,
    /// A key that does not decode: the task never runs.
    BadKey,
    /// Not a task object at all.
    NotObject,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(vec![
        Outcome::Ok,
        Outcome::Temporary,
        Outcome::Permanent,
        Outcome::Panic,
        Outcome::Slow,
        Outcome::BadKey,
        Outcome::NotObject,
    ])
}

async fn by_key(obj: Object) -> Result<String, TaskError> {
    let (what, rest) = obj.key.split_once('/').unwrap();
    match what {
        "ok" => Ok(format!("done {rest}")),
        "temporary" => Err(TaskError::temporary(format!("busy {rest}"))),
        "permanent" => Err(TaskError::permanent(format!("gone {rest}"))),
        "panic" => panic!("planned panic {rest}"),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok("too late".into())
        }
        _ => unreachable!("{what}"),
    }
}

fn no_nulls(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().all(no_nulls),
        Value::Object(o) => o.values().all(no_nulls),
        _ => true,
    }
}

fn quiet_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|s| s.starts_with("planned panic"));
            if !planned {
                default(info);
            }
        }));
    });
}

/// The response's results for `tasks`, worked out from the generated inputs alone: each
/// task's id, code and text, in the event's order.
///
/// The tasks that run start in the event's order, at most `concurrency` at once. Every one
/// but a slow task is done in its first poll; a slow one runs past the deadline, so it keeps
/// its place among the `concurrency` until then. So a task that runs but has `concurrency`
/// slow tasks before it never starts: at the deadline it is answered like a slow one. A bad
/// key or a non-object never runs and is answered at once, wherever it stands.
fn expected_results(
    tasks: &[(Outcome, String)],
    concurrency: usize,
) -> Vec<(String, ResultCode, String)> {
    const DEADLINE: &str = "did not finish before the Lambda deadline";
    let mut slow_before = 0;
    tasks
        .iter()
        .enumerate()
        .map(|(i, (outcome, id))| {
            let (code, text) = match outcome {
                Outcome::NotObject => {
                    return (
                        String::new(),
                        ResultCode::PermanentFailure,
                        "task is an array, expected an object".to_owned(),
                    )
                }
                Outcome::BadKey => (
                    ResultCode::PermanentFailure,
                    "invalid task: s3Key \"bad%FF\" does not decode: not valid UTF-8 after \
                     percent-decoding (invalid byte at 3)"
                        .to_owned(),
                ),
                _ if slow_before >= concurrency => {
                    (ResultCode::TemporaryFailure, DEADLINE.to_owned())
                }
                Outcome::Slow => {
                    slow_before += 1;
                    (ResultCode::TemporaryFailure, DEADLINE.to_owned())
                }
                Outcome::Ok => (ResultCode::Succeeded, format!("done {i}")),
                Outcome::Temporary => (ResultCode::TemporaryFailure, format!("busy {i}")),
                Outcome::Permanent => (ResultCode::PermanentFailure, format!("gone {i}")),
                Outcome::Panic => (
                    ResultCode::PermanentFailure,
                    format!("task panicked: planned panic {i}"),
                ),
            };
            (id.clone(), code, text)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn one_result_per_task_in_order_without_nulls(
        tasks in prop::collection::vec((outcome(), "[a-zA-Z0-9+/=é\"\\\\ ]{0,12}"), 0..40),
        v2 in any::<bool>(),
        concurrency in 1usize..8,
    ) {
        quiet_planned_panics();
        let mut event = if v2 { EventBuilder::v2() } else { EventBuilder::v1() }
            .invocation_id("inv-\"id\"");
        for (i, (outcome, id)) in tasks.iter().enumerate() {
            let task = match outcome {
                Outcome::NotObject => json!(["not", "a", "task"]),
                Outcome::BadKey => json!({"taskId": id, "s3Key": "bad%FF", "s3Bucket": "b"}),
                other => {
                    let what = format!("{other:?}").to_lowercase();
                    json!({"taskId": id, "s3Key": encode_key(&format!("{what}/{i}")),
                           "s3BucketArn": "arn:aws:s3:::b", "s3VersionId": null})
                }
            };
            event = event.raw_task(task);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let response = runtime.block_on(async {
            let handler = Handler::new(by_key, Options::builder().concurrency(concurrency).build())
                .await
                .unwrap();
            let mut ctx = s3batch::Context::default();
            ctx.deadline = (SystemTime::now() + Duration::from_secs(30))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            handler.handle_bytes(&event.to_bytes(), &ctx).await
        }).unwrap();

        prop_assert_eq!(response.invocation_id.as_str(), "inv-\"id\"");
        prop_assert_eq!(response.invocation_schema_version.as_str(), if v2 { "2.0" } else { "1.0" });
        let got: Vec<(&str, ResultCode, &str)> = response
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
            .collect();
        let want = expected_results(&tasks, concurrency);
        let want: Vec<(&str, ResultCode, &str)> =
            want.iter().map(|(id, code, text)| (id.as_str(), *code, text.as_str())).collect();
        prop_assert_eq!(got, want, "tasks {:?}, concurrency {}", tasks, concurrency);
        let json = serde_json::to_value(&response).unwrap();
        prop_assert!(no_nulls(&json), "{}", json);
        prop_assert_eq!(json["results"].as_array().unwrap().len(), tasks.len());
    }
}
