//! Object keys as S3 Batch Operations sends them: URL-encoded, form-style.
//!
//! In the event, `+` stands for a space, a literal `+` arrives as `%2B`, and `%XX` escapes
//! are the bytes of the UTF-8 key. AWS's own Python samples use `unquote`, which leaves `+`
//! alone and so mangles every key with a space; [`decode_key`] applies the form rule.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

/// A key from the event that could not be decoded; the task fails permanently with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    raw: String,
    reason: String,
}

impl KeyError {
    /// The key exactly as it arrived in the event.
    pub fn raw_key(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3Key {:?} does not decode: {}", self.raw, self.reason)
    }
}

impl std::error::Error for KeyError {}

/// Decodes an `s3Key` from the event: `+` becomes a space, `%XX` escapes become bytes, and
/// the bytes must be valid UTF-8.
///
/// A `%` that is not followed by two hex digits is an error rather than a literal `%`: S3
/// always sends a literal `%` as `%25`, so a stray one means the key is not what it seems.
///
/// ```
/// use s3batch_core::key::decode_key;
/// assert_eq!(decode_key("object+key+with+spaces.csv").unwrap(), "object key with spaces.csv");
/// assert_eq!(decode_key("a%2Bb.txt").unwrap(), "a+b.txt");
/// assert_eq!(decode_key("caf%C3%A9.txt").unwrap(), "café.txt");
/// assert!(decode_key("%FF%FE.bin").is_err());
/// ```
pub fn decode_key(raw: &str) -> Result<String, KeyError> {
    // One pass, one allocation: runs without `+` or `%` are copied whole. (percent-encoding's
    // decoder has no form rule for `+`, so using it took a scan for stray `%`, a copy with
    // `+` replaced and a decoded copy: three passes, two allocations; see bench/analysis.md.)
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'+' || b == b'%') {
        out.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            out.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        let hex = |i: usize| rest.get(at + i).and_then(|&b| (b as char).to_digit(16));
        let (Some(high), Some(low)) = (hex(1), hex(2)) else {
            let at = bytes.len() - rest.len() + at;
            return Err(KeyError {
                raw: raw.to_owned(),
                reason: format!("'%' at byte {at} is not followed by two hex digits"),
            });
        };
        out.push((high * 16 + low) as u8);
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).map_err(|e| KeyError {
        raw: raw.to_owned(),
        reason: format!(
            "not valid UTF-8 after percent-decoding (invalid byte at {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Characters S3 leaves unescaped when it form-encodes a key (as Java's `URLEncoder` does),
/// plus `/` so that paths stay readable. Everything else is `%XX`, and a space is `+`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*')
    .remove(b'/')
    .remove(b' ');

/// Encodes a key the way S3 Batch Operations puts it in an event: the inverse of
/// [`decode_key`]. Used by the testing helpers and by local job runs.
///
/// ```
/// use s3batch_core::key::{decode_key, encode_key};
/// assert_eq!(encode_key("reports/2024 Q1+Q2.csv"), "reports/2024+Q1%2BQ2.csv");
/// assert_eq!(decode_key(&encode_key("100% done ✓")).unwrap(), "100% done ✓");
/// ```
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, FORM).to_string().replace(' ', "+")
}

/// Characters left as they are in a `CopySource` path: RFC 3986 unreserved, and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The `CopySource` value for `CopyObject` / `UploadPartCopy`: `bucket/key` with the key
/// percent-encoded (a space as `%20`, never `+`), and `?versionId=` when a version is given.
/// Passing a decoded key unencoded breaks on `+`, `%`, `?` and non-ASCII keys.
///
/// ```
/// use s3batch_core::key::copy_source;
/// assert_eq!(copy_source("b", "a b+c?.txt", None), "b/a%20b%2Bc%3F.txt");
/// assert_eq!(copy_source("b", "k", Some("v 1")), "b/k?versionId=v%201");
/// ```
pub fn copy_source(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    let mut out = format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE));
    if let Some(v) = version_id {
        out.push_str("?versionId=");
        out.push_str(&utf8_percent_encode(v, NON_ALPHANUMERIC).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_vectors() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/vectors/keys.json"
        ))
        .expect("tests/fixtures/vectors/keys.json");
        let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(vectors.len() >= 6);
        for v in vectors {
            let raw = v["s3Key"].as_str().unwrap();
            match (v.get("key"), v.get("error")) {
                (Some(key), None) => assert_eq!(decode_key(raw).unwrap(), key.as_str().unwrap()),
                (None, Some(err)) => {
                    let got = decode_key(raw).unwrap_err().to_string();
                    assert!(got.contains(err.as_str().unwrap()), "{got}");
                }
                _ => panic!("bad vector {v}"),
            }
        }
    }

    /// The decoder as it was, on percent-encoding's decoder: the reference for the one-pass
    /// decoder above.
    fn reference(raw: &str) -> Result<String, String> {
        let bytes = raw.as_bytes();
        let mut i = 0;
        while let Some(offset) = bytes[i..].iter().position(|&b| b == b'%') {
            let at = i + offset;
            let ok = bytes.len() > at + 2
                && bytes[at + 1].is_ascii_hexdigit()
                && bytes[at + 2].is_ascii_hexdigit();
            if !ok {
                return Err(format!(
                    "'%' at byte {at} is not followed by two hex digits"
                ));
            }
            i = at + 3;
        }
        let spaced = raw.replace('+', " ");
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
        String::from_utf8(decoded).map_err(|e| {
            format!(
                "not valid UTF-8 after percent-decoding (invalid byte at {})",
                e.utf8_error().valid_up_to()
            )
        })
    }

    /// Every string of up to four characters from an alphabet of the awkward ones decodes as
    /// the reference decodes it, errors included.
    #[test]
    fn one_pass_decoder_matches_percent_encoding() {
        let alphabet = [
            "%", "+", "2", "B", "f", "F", "C3", "A9", "z", "é", "\u{0}", " ",
        ];
        let mut inputs = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
                .collect();
            inputs.extend(last.iter().cloned());
        }
        assert!(inputs.len() > 20_000);
        for raw in inputs {
            let got = decode_key(&raw).map_err(|e| {
                assert_eq!(e.raw_key(), raw);
                e.reason
            });
            assert_eq!(got, reference(&raw), "{raw:?}");
        }
    }

    #[test]
    fn plus_is_space_and_escaped_plus_is_plus() {
        assert_eq!(decode_key("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(decode_key("%2B%2B").unwrap(), "++");
    }

    #[test]
    fn stray_percent_is_an_error_naming_the_key() {
        for raw in ["100%", "a%2", "%zz", "%%41"] {
            let err = decode_key(raw).unwrap_err().to_string();
            assert!(err.contains(raw) && err.contains("'%'"), "{err}");
        }
    }

    #[test]
    fn encode_round_trips_awkward_keys() {
        for key in [
            "",
            "a b+c%d",
            "../../etc/passwd",
            "{\"json\": [1, 2]}",
            "emoji 😀/ünïcödé",
            "tab\tnew\nline",
        ] {
            let encoded = encode_key(key);
            assert!(!encoded.contains(' '));
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
    }

    #[test]
    fn long_keys_decode() {
        let key = "é".repeat(512);
        assert_eq!(key.len(), 1024);
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
    }
}
