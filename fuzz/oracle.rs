//! What the handler must do with any bytes: the assertions of the fuzz target
//! (`fuzz_targets/envelope.rs`), kept here so that s3batch-core's replay of
//! `fuzz/regressions/` (`s3batch-core/tests/fuzz_regressions.rs`) checks each input exactly as
//! the fuzzer did. Both include this file as a module (`#[path]`): it depends on nothing but
//! s3batch-core and serde_json, which both have.

use s3batch_core::{InvocationError, Response};
use serde_json::Value;

/// Panics unless `outcome`, the handler's answer to `data`, is what the fuzz target accepts:
/// a response with exactly one result per element of `tasks` (ids echoed in order, no nulls
/// anywhere), or an invocation error that says what was wrong, only for an event whose ids
/// cannot be recovered.
pub fn check(data: &[u8], outcome: Result<Response, InvocationError>) {
    // The same bytes as a plain JSON value: what the response must agree with.
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    match outcome {
        Ok(response) => {
            let event = parsed
                .or_else(|| event_as_read(data))
                .expect("a response for bytes that are not JSON");
            let tasks = event["tasks"]
                .as_array()
                .expect("a response without a tasks array");
            assert!(event["invocationId"].is_string());
            assert_eq!(response.results.len(), tasks.len());
            assert_eq!(
                response.invocation_id,
                event["invocationId"].as_str().unwrap()
            );
            for (result, task) in response.results.iter().zip(tasks) {
                // A task's id is echoed when it is a string; otherwise the result has "".
                let id = task.get("taskId").and_then(Value::as_str).unwrap_or("");
                assert_eq!(result.task_id, id);
            }
            let json = serde_json::to_value(&response).unwrap();
            assert!(no_nulls(&json), "{json}");
            assert!(serde_json::to_vec(&response).is_ok());
        }
        Err(err) => {
            assert!(!err.message().is_empty());
            // Only an event whose ids cannot be recovered is refused.
            if let Some(event) = parsed {
                let recoverable = event["invocationId"].is_string() && event["tasks"].is_array();
                // An event whose results could not fit Lambda's 6 MB response is refused
                // before any task runs; fuzz inputs are far too small for that.
                assert!(!recoverable, "refused a recoverable event: {err}");
            }
        }
    }
}

/// `data` as a JSON value the way the handler reads it, or `None` for bytes that are not
/// JSON even so. The handler reads more than serde_json does: invalid UTF-8 (lossy), unpaired
/// surrogate escapes (U+FFFD), raw control characters in strings (as if escaped) and numbers
/// beyond f64 (a wrong type for the field that holds them).
pub fn event_as_read(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data)
        .ok()
        .or_else(|| serde_json::from_str(&readable(&String::from_utf8_lossy(data))).ok())
}

fn no_nulls(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().all(no_nulls),
        Value::Object(o) => o.values().all(no_nulls),
        _ => true,
    }
}

/// `text` with what serde_json refuses but the handler reads made readable to serde_json:
/// raw control characters inside strings escaped, unpaired surrogate escapes replaced by
/// `\ufffd` (what the handler echoes for such an id), and numbers beyond f64 replaced by
/// `0` (the handler fails the field holding one; no id is a number).
fn readable(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let s: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&s, 16).ok()
    };
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            match c {
                '"' => in_string = false,
                '\\' if chars.get(i + 1) == Some(&'u') => {
                    if let Some(u) = hex4(i + 2) {
                        if (0xD800..0xDC00).contains(&u) {
                            let low = (chars.get(i + 6) == Some(&'\\')
                                && chars.get(i + 7) == Some(&'u'))
                            .then(|| hex4(i + 8))
                            .flatten();
                            if matches!(low, Some(l) if (0xDC00..0xE000).contains(&l)) {
                                out.extend(&chars[i..i + 12]);
                                i += 12;
                            } else {
                                out.push_str("\\ufffd");
                                i += 6;
                            }
                            continue;
                        }
                        if (0xDC00..0xE000).contains(&u) {
                            out.push_str("\\ufffd");
                            i += 6;
                            continue;
                        }
                    }
                    out.push(c);
                    i += 1;
                    continue;
                }
                '\\' => {
                    out.push(c);
                    if let Some(&next) = chars.get(i + 1) {
                        out.push(next);
                    }
                    i += 2;
                    continue;
                }
                c if (c as u32) < 0x20 => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                    i += 1;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
        } else if c == '"' {
            in_string = true;
            out.push(c);
            i += 1;
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && matches!(chars[i], '0'..='9' | '-' | '+' | '.' | 'e' | 'E') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            match number.parse::<f64>() {
                Ok(n) if n.is_infinite() => out.push('0'),
                _ => out.push_str(&number),
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}
