//! The response S3 Batch Operations expects back, identical for schema 1.0 and 2.0.

use serde::Serialize;

pub use crate::wire::{Response, ResultCode, TaskResult};

/// Shortens `s` to at most `max` bytes on a char boundary, ending with a visible marker that
/// says how many bytes were cut. The marker counts towards `max` when `max` leaves room for it.
///
/// ```
/// use s3batch_core::response::truncate_result;
/// let mut s = "é".repeat(100);
/// truncate_result(&mut s, 40);
/// assert!(s.len() <= 40 && s.ends_with("bytes]"), "{s}");
/// ```
pub fn truncate_result(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let original = s.len();
    // The marker's digits depend on the cut; the original length is an upper bound on them.
    let marker_len = format!("…[truncated {original} bytes]").len();
    let mut keep = max.saturating_sub(marker_len);
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    s.truncate(keep);
    s.push_str(&format!("…[truncated {} bytes]", original - keep));
}

/// Lambda's limit on the payload of a synchronous invocation's response: 6 MB, that is
/// 6,291,456 bytes. A bigger response is rejected, and every task of the invocation fails.
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// The most a serialized [`Response`] may take: [`LAMBDA_RESPONSE_LIMIT`] less 16 KiB of
/// headroom, so that a serializer that escapes a little differently from serde_json (which
/// `lambda_runtime` uses) still stays under the limit. When the results would take more, the
/// longest `resultString`s are shortened first (see [`fit_to_budget`]).
pub const RESPONSE_BUDGET: usize = LAMBDA_RESPONSE_LIMIT - 16 * 1024;

/// Counts the bytes serde_json writes, without keeping them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `value` serialized by serde_json, as `lambda_runtime` sends it.
pub fn serialized_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("strings and responses always serialize");
    counter.0
}

/// The bytes serde_json writes for `c` inside a string: control characters become `\n`-style
/// or `\u00XX` escapes, `"` and `\` are escaped, everything else is its UTF-8.
pub(crate) fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// What one result adds to a response besides its id and text, at most:
/// `{"taskId":"","resultCode":"PermanentFailure","resultString":""},`.
const RESULT_OVERHEAD: usize = 64;
/// The response without results, besides its ids: `{"invocationSchemaVersion":"",…}`.
const RESPONSE_OVERHEAD: usize = 128;

/// An upper bound on the length of a serialized response whose strings are `strings` and
/// which has `results` results: each byte of a string takes at most 6 bytes (`\u00XX`).
fn size_bound(results: usize, string_bytes: usize) -> usize {
    RESPONSE_OVERHEAD
        .saturating_add(results.saturating_mul(RESULT_OVERHEAD))
        .saturating_add(string_bytes.saturating_mul(6))
}

/// Checks, before any task runs, that a response to these ids fits in `budget` bytes even
/// with every `resultString` empty. `Err` with the bytes it would take at least.
///
/// A real S3 event (one task, an id of a few dozen bytes) is far from the limit. An event of
/// up to 6 MB can still ask for more, though: `"tasks":[0,0,…]` spends 2 bytes per task,
/// each answered with a result of about 60 bytes. Such an event is refused as a whole
/// rather than answered with a response Lambda would reject after every task ran.
pub fn check_minimum_size<'a>(
    schema_version: &str,
    invocation_id: &str,
    task_ids: impl Iterator<Item = &'a str> + Clone,
    budget: usize,
) -> Result<(), usize> {
    let (count, bytes) = task_ids
        .clone()
        .fold((0usize, 0usize), |(n, b), id| (n + 1, b + id.len()));
    if size_bound(count, bytes + schema_version.len() + invocation_id.len()) <= budget {
        return Ok(());
    }
    let quoted = |s: &str| serialized_len(s) - 2;
    let least = task_ids.fold(
        RESPONSE_OVERHEAD + quoted(schema_version) + quoted(invocation_id),
        |total, id| total + RESULT_OVERHEAD + quoted(id),
    );
    if least <= budget {
        Ok(())
    } else {
        Err(least)
    }
}

/// Shortens `resultString`s until `response` serializes to at most `budget` bytes. The
/// longest shrink first: every result longer (serialized) than a common cap is cut to that
/// cap, the others are kept whole, and the cap is the largest that fits, so the outcome
/// depends only on the results. A cut result ends with `…[truncated N bytes]` when the cap
/// leaves room for that marker and is empty otherwise. Ids and codes are never touched: if
/// they alone exceed the budget (see [`check_minimum_size`]), every `resultString` ends
/// empty.
///
/// Cheap when the response is far from the budget: the first check only adds up lengths.
pub fn fit_to_budget(response: &mut Response, budget: usize) {
    let string_bytes = response.results.iter().fold(
        response.invocation_id.len() + response.invocation_schema_version.len(),
        |b, r| b + r.task_id.len() + r.result_string.len(),
    );
    if size_bound(response.results.len(), string_bytes) <= budget {
        return;
    }
    let sizes: Vec<usize> = response
        .results
        .iter()
        .map(|r| serialized_len(r.result_string.as_str()) - 2)
        .collect();
    let texts: usize = sizes.iter().sum();
    let fixed = fixed_len(response);
    let allowed = budget.saturating_sub(fixed);
    if texts <= allowed {
        return;
    }
    let cap = water_level(&sizes, allowed);
    for (r, size) in response.results.iter_mut().zip(sizes) {
        if size > cap {
            truncate_serialized(&mut r.result_string, cap);
        }
    }
}

/// The bytes serde_json writes for `response` besides the contents of its `resultString`s,
/// counted field by field: `serialized_len(response)` put a second copy of `Response`'s
/// serializer in every binary (1.8 KB of the no-client bootstrap, `cargo lambda build
/// --release -p s3batch-bench-no-s3`).
fn fixed_len(response: &Response) -> usize {
    let quoted = |s: &str| serialized_len(s);
    let code = |c: ResultCode| c.as_str().len() + 2;
    let head = r#"{"invocationSchemaVersion":,"treatMissingKeysAs":,"invocationId":,"results":[]}"#
        .len()
        + quoted(&response.invocation_schema_version)
        + code(response.treat_missing_keys_as)
        + quoted(&response.invocation_id);
    let commas = response.results.len().saturating_sub(1);
    let result = r#"{"taskId":,"resultCode":,"resultString":""}"#.len();
    response.results.iter().fold(head + commas, |n, r| {
        n + result + quoted(&r.task_id) + code(r.result_code)
    })
}

/// The largest `cap` with `Σ min(size, cap) ≤ allowed`, given `Σ size > allowed`: found by
/// bisection, as `Σ min(size, cap)` grows with `cap` (no sort, no copy of `sizes`: a sort's
/// code is ~3 KB of every binary, see bench/analysis.md).
pub(crate) fn water_level(sizes: &[usize], allowed: usize) -> usize {
    let filled = |cap: usize| sizes.iter().map(|&size| size.min(cap)).sum::<usize>();
    let (mut lo, mut hi) = (0, sizes.iter().copied().max().unwrap_or(0));
    // `filled(lo) <= allowed` throughout (`filled(0)` is 0); the answer is in `lo..=hi`.
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if filled(mid) <= allowed {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Cuts `s` on a char boundary so that it serializes (without its quotes) to at most `max`
/// bytes, ending with `…[truncated N bytes]` (N: the bytes cut); empty when `max` has no
/// room for the marker.
pub(crate) fn truncate_serialized(s: &mut String, max: usize) {
    truncate_measured(s, max, escaped_len)
}

/// As [`truncate_serialized`], with each character taking `len(c)` bytes (escaped twice, say,
/// for a string inside JSON inside a JSON string).
pub(crate) fn truncate_measured(s: &mut String, max: usize, len: fn(char) -> usize) {
    let original = s.len();
    let marker_len = format!("…[truncated {original} bytes]").len();
    let Some(room) = max.checked_sub(marker_len) else {
        s.clear();
        return;
    };
    let mut used = 0;
    let mut keep = 0;
    for (i, c) in s.char_indices() {
        used += len(c);
        if used > room {
            break;
        }
        keep = i + c.len_utf8();
    }
    s.truncate(keep);
    s.push_str(&format!("…[truncated {} bytes]", original - keep));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fixed_len` is what serde_json writes besides the result strings' contents.
    #[test]
    fn fixed_len_counts_what_serde_json_writes() {
        let result = |id: &str, code, text: &str| TaskResult::new(id, code, text);
        for results in [
            vec![],
            vec![result("t", ResultCode::Succeeded, "ok")],
            vec![
                result("a\"\n\u{1}é", ResultCode::TemporaryFailure, "x\ty"),
                result("", ResultCode::PermanentFailure, ""),
                result("t3", ResultCode::Succeeded, "\u{7f}\u{2028}"),
            ],
        ] {
            let response = Response {
                invocation_schema_version: "2.0".into(),
                treat_missing_keys_as: ResultCode::PermanentFailure,
                invocation_id: "id\\\u{0}".into(),
                results,
            };
            let texts: usize = response
                .results
                .iter()
                .map(|r| serialized_len(r.result_string.as_str()) - 2)
                .sum();
            assert_eq!(fixed_len(&response), serialized_len(&response) - texts);
        }
    }

    #[test]
    fn serializes_the_wire_names_and_no_nulls() {
        let r = Response {
            invocation_schema_version: "2.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "inv".into(),
            results: vec![TaskResult::new("t", ResultCode::TemporaryFailure, "")],
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"invocationSchemaVersion":"2.0","treatMissingKeysAs":"PermanentFailure","invocationId":"inv","results":[{"taskId":"t","resultCode":"TemporaryFailure","resultString":""}]}"#
        );
        assert!(!json.contains("null"));
    }

    #[test]
    fn result_codes_parse_and_print() {
        for code in [
            ResultCode::Succeeded,
            ResultCode::TemporaryFailure,
            ResultCode::PermanentFailure,
        ] {
            assert_eq!(code.as_str().parse::<ResultCode>().unwrap(), code);
        }
        assert!("Failed"
            .parse::<ResultCode>()
            .unwrap_err()
            .to_string()
            .contains("\"Failed\""));
    }

    #[test]
    fn truncation_respects_char_boundaries_and_limit() {
        // 20 emoji of 4 bytes: 80 bytes, and the marker for them takes 23.
        let marker = "…[truncated 80 bytes]".len();
        assert_eq!(marker, 23);
        for max in [0, 1, 5, 22, 23, 24, 25, 26, 27, 30, 31, 32, 33, 79] {
            let mut s = "😀".repeat(20);
            truncate_result(&mut s, max);
            assert!(s.contains("…[truncated"), "{max}: {s}");
            let (kept, _) = s.split_once('…').unwrap();
            assert!(kept.chars().all(|c| c == '😀'), "{max}: {s}");
            if max >= marker {
                // Whenever the marker fits, the whole result fits, cut on a char boundary.
                assert!(s.len() <= max, "{max}: {} {s}", s.len());
                assert_eq!(kept.len(), (max - marker) / 4 * 4, "{max}: {s}");
            }
        }
        let mut short = "fits".to_string();
        truncate_result(&mut short, 4);
        assert_eq!(short, "fits");
    }
    fn response(results: Vec<TaskResult>) -> Response {
        Response {
            invocation_schema_version: "1.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "inv".into(),
            results,
        }
    }

    #[test]
    fn longest_results_shrink_first_to_fit_the_budget() {
        let texts = [
            "\u{1}".repeat(500),
            "short".to_string(),
            "\"\\\n".repeat(300),
            "é\u{1f}".repeat(200),
            String::new(),
        ];
        let results: Vec<TaskResult> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| TaskResult::new(format!("t{i}"), ResultCode::Succeeded, t.clone()))
            .collect();
        let full = serialized_len(&response(results.clone()));
        for budget in [full, full - 1, 4000, 2500, 1000, 450] {
            let mut r = response(results.clone());
            fit_to_budget(&mut r, budget);
            let len = serde_json::to_vec(&r).unwrap().len();
            assert!(len <= budget, "{budget}: {len}");
            // Ids and codes untouched, one result per task.
            let ids: Vec<_> = r.results.iter().map(|r| r.task_id.as_str()).collect();
            assert_eq!(ids, ["t0", "t1", "t2", "t3", "t4"]);
            assert!(r
                .results
                .iter()
                .all(|r| r.result_code == ResultCode::Succeeded));
            // Short results are kept while anything longer can shrink.
            assert_eq!(r.results[1].result_string, "short", "{budget}");
            assert_eq!(r.results[4].result_string, "");
            // Each result is whole, or its start cut on a char boundary and marked, or empty
            // when the cap leaves no room for the marker.
            for (got, text) in r.results.iter().zip(&texts) {
                if got.result_string != *text && !got.result_string.is_empty() {
                    let (kept, marker) = got.result_string.split_once('…').unwrap();
                    assert!(text.starts_with(kept), "{budget}");
                    assert_eq!(
                        marker,
                        format!("[truncated {} bytes]", text.len() - kept.len())
                    );
                }
            }
            let mut again = response(results.clone());
            fit_to_budget(&mut again, budget);
            assert_eq!(again, r, "deterministic");
        }
        // Ids alone over the budget: every resultString ends empty, nothing else changes.
        let mut r = response(results.clone());
        fit_to_budget(&mut r, 100);
        assert!(r.results.iter().all(|r| r.result_string.is_empty()));
        assert_eq!(r.results.len(), 5);
    }

    #[test]
    fn the_cap_is_the_largest_that_fits_by_brute_force() {
        // Every `allowed` below the total, for sizes with repeats, zeros and one element:
        // the cap fits, and one more byte would not.
        let filled =
            |sizes: &[usize], cap: usize| -> usize { sizes.iter().map(|&s| s.min(cap)).sum() };
        for sizes in [
            &[7][..],
            &[0, 3, 3, 9],
            &[1000, 1, 1, 1],
            &[5, 5, 5, 5, 5],
            &[2, 40, 17, 0, 33, 17],
        ] {
            let total: usize = sizes.iter().sum();
            for allowed in 0..total {
                let cap = water_level(sizes, allowed);
                assert!(
                    filled(sizes, cap) <= allowed,
                    "{sizes:?} {allowed}: {cap} fits"
                );
                assert!(
                    filled(sizes, cap + 1) > allowed,
                    "{sizes:?} {allowed}: {cap} is the largest"
                );
            }
        }
    }

    #[test]
    fn the_cap_is_the_largest_that_fits() {
        assert_eq!(water_level(&[10, 100, 1000], 310), 200);
        assert_eq!(water_level(&[10, 100, 1000], 1109), 999);
        assert_eq!(water_level(&[5, 5], 3), 1);
        let mut s = "\u{1}".repeat(100);
        truncate_serialized(&mut s, 60);
        // Room for 6 escapes of 6 bytes beside a marker of at most 24 bytes.
        assert_eq!(s, format!("{}…[truncated 94 bytes]", "\u{1}".repeat(6)));
        assert_eq!(serialized_len(s.as_str()) - 2, 59);
        let mut s = "abc".repeat(10);
        truncate_serialized(&mut s, 5);
        assert_eq!(s, "");
    }

    #[test]
    fn the_minimum_response_is_checked_against_the_budget() {
        let ids = ["a"; 10];
        assert_eq!(
            check_minimum_size("1.0", "inv", ids.iter().copied(), 10_000),
            Ok(())
        );
        let least = check_minimum_size("1.0", "inv", ids.iter().copied(), 500).unwrap_err();
        assert!(least > 500);
        // Control characters in ids count as their escapes.
        let ids = ["\u{1}".repeat(100)];
        let least =
            check_minimum_size("1.0", "i", ids.iter().map(String::as_str), 500).unwrap_err();
        assert!(least >= 600, "{least}");
        let r = response(vec![TaskResult::new(
            ids[0].clone(),
            ResultCode::PermanentFailure,
            "",
        )]);
        assert!(serialized_len(&r) <= least);
    }
}
