//! Writing an invocation's EMF documents: one JSON object per line, within EMF's limits (at
//! most 100 metrics per document and 100 values per metric, each document at most 1 MB);
//! what does not fit one document goes on in the next.

use super::collect::{Collected, Counts, Durations};
use super::MetricsError;

/// Metrics per document, at most (EMF).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// Values per metric in one document, at most (EMF).
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// Dimensions per dimension set, at most (EMF).
pub const MAX_DIMENSIONS: usize = 30;
/// Bytes per document (one CloudWatch Logs event), at most.
pub const MAX_DOCUMENT_BYTES: usize = 1_048_576;
/// The longest metric name, in bytes (CloudWatch's limit).
pub(super) const MAX_NAME_LEN: usize = 255;

// s3batch's own metrics.
pub(super) const TASKS: &str = "Tasks";
pub(super) const SUCCEEDED: &str = "TasksSucceeded";
pub(super) const TEMPORARY: &str = "TasksTemporaryFailure";
pub(super) const PERMANENT: &str = "TasksPermanentFailure";
pub(super) const DEADLINE: &str = "TasksAtDeadline";
pub(super) const PANICS: &str = "TaskPanics";
pub(super) const THROTTLING: &str = "ErrorsThrottling";
pub(super) const ACCESS_DENIED: &str = "ErrorsAccessDenied";
pub(super) const MISSING_KEY: &str = "ErrorsMissingKey";
pub(super) const OTHER: &str = "ErrorsOther";
pub(super) const DURATION: &str = "TaskDuration";
pub(super) const COLD_START: &str = "ColdStart";

// The document's other top-level members.
pub(super) const FUNCTION_NAME: &str = "FunctionName";
pub(super) const SERVICE: &str = "Service";
pub(super) const JOB_ID: &str = "JobId";
pub(super) const INVOCATION_ID: &str = "InvocationId";
pub(super) const REQUEST_ID: &str = "RequestId";

const RESERVED: [&str; 18] = [
    TASKS,
    SUCCEEDED,
    TEMPORARY,
    PERMANENT,
    DEADLINE,
    PANICS,
    THROTTLING,
    ACCESS_DENIED,
    MISSING_KEY,
    OTHER,
    DURATION,
    COLD_START,
    FUNCTION_NAME,
    SERVICE,
    JOB_ID,
    INVOCATION_ID,
    REQUEST_ID,
    "_aws",
];

/// Whether a name is one of the document's own (a metric of s3batch's, a dimension or a
/// property).
pub(super) fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// The parts of every document that stay the same for the process, as JSON.
#[derive(Debug)]
pub(super) struct Fixed {
    /// `"Namespace":"…","Dimensions":[["FunctionName",…]]`, without and with `JobId`.
    pub(super) directive: String,
    pub(super) directive_with_job: String,
    /// `,"FunctionName":"…","Service":"…"`.
    pub(super) dimension_values: String,
}

impl Fixed {
    pub(super) fn new(namespace: &str, dimensions: &[(&str, &str)]) -> Fixed {
        let mut names = String::new();
        let mut values = String::new();
        for (i, (name, value)) in dimensions.iter().enumerate() {
            if i > 0 {
                names.push(',');
            }
            push_str(&mut names, name);
            values.push(',');
            push_str(&mut values, name);
            values.push(':');
            push_str(&mut values, value);
        }
        let mut directive = String::from("\"Namespace\":");
        push_str(&mut directive, namespace);
        directive.push_str(",\"Dimensions\":[[");
        let mut with_job = directive.clone();
        directive.push_str(&names);
        directive.push_str("]]");
        with_job.push_str(&names);
        if !names.is_empty() {
            with_job.push(',');
        }
        push_str(&mut with_job, JOB_ID);
        with_job.push_str("]]");
        Fixed {
            directive,
            directive_with_job: with_job,
            dimension_values: values,
        }
    }
}

/// A string as JSON (quoted, escaped).
fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

/// A string as JSON into bytes: copied as it is when nothing needs escaping.
pub(super) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

/// Whether JSON needs no escape in `s` (no control character, `"` or `\`).
///
/// Hot path (the invocation's and the request's ids, 36 to 60 bytes, in every document):
/// 32 bytes at a time, each block without an early exit so that the compiler checks it in
/// one go, and the last 32 bytes once more rather than a byte at a time. A 58-byte id
/// measured 56 instructions as deployed (101 in the `release` profile), where one fold over
/// all the bytes took 192 (148) and eight bytes at a time in a `u64` 153 (212)
/// (bench/analysis.md, "Metrics on").
pub(super) fn is_plain(s: &[u8]) -> bool {
    fn bad(s: &[u8]) -> bool {
        s.iter().fold(false, |bad, &b| {
            bad | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    }
    if s.len() < 32 {
        return !bad(s);
    }
    let mut blocks = s.chunks_exact(32);
    let mut found = false;
    for block in &mut blocks {
        let block: &[u8; 32] = block.try_into().expect("32 bytes");
        found |= bad(block);
    }
    !(found || bad(&s[s.len() - 32..]))
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    // Most counts are one digit.
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Microseconds as milliseconds, with three decimals.
#[inline(always)]
fn push_millis(out: &mut Vec<u8>, micros: u64) {
    let (ms, frac) = (micros / 1000, micros % 1000);
    let digit = |n: u64| b'0' + (n % 10) as u8;
    let frac = [b'.', digit(frac / 100), digit(frac / 10), digit(frac)];
    // Most tasks take less than 10 ms: one copy of five bytes.
    if ms < 10 {
        let [a, b, c, d] = frac;
        out.extend_from_slice(&[b'0' + ms as u8, a, b, c, d]);
    } else {
        push_u64(out, ms);
        out.extend_from_slice(&frac);
    }
}

/// One metric's values.
#[derive(Clone, Copy)]
enum Values<'a> {
    Count(u64),
    Millis(&'a Durations),
    User(&'a [f64]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Count(_) => 1,
            Values::Millis(d) => d.len(),
            Values::User(v) => v.len(),
        }
    }

    /// Values `from..to` as an EMF value: a number, or an array of them.
    fn write(&self, out: &mut Vec<u8>, from: usize, to: usize) {
        if to - from > 1 {
            out.push(b'[');
        }
        match self {
            Values::Count(n) => push_u64(out, *n),
            Values::Millis(d) => {
                for (i, micros) in d.iter().skip(from).take(to - from).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_millis(out, micros);
                }
            }
            Values::User(v) => {
                for (i, value) in v[from..to].iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, value).expect("a finite number serializes");
                }
            }
        }
        if to - from > 1 {
            out.push(b']');
        }
    }
}

/// One metric of the invocation.
struct Metric<'a> {
    name: &'a str,
    unit: &'static str,
    values: Values<'a>,
}

/// What an invocation's documents say besides its metrics.
pub(super) struct Context<'a> {
    pub(super) fixed: &'a Fixed,
    pub(super) job_dimension: bool,
    pub(super) request_id: Option<&'a str>,
    pub(super) cold_start: bool,
    pub(super) timestamp_ms: u64,
}

/// Whether the one-document writer ([`write_head`], [`write_tail`]) serves the invocation:
/// s3batch's own metrics only, at most 100 durations (S3's one task, or a batch of up to 100).
fn fits_one(collected: &Collected) -> bool {
    collected.user.is_empty() && collected.durations.len() <= MAX_VALUES_PER_METRIC
}

/// Appends the invocation's documents to `out`, each a JSON object on a line of its own. On
/// an error `out` is as it was.
///
/// A document's members, in the order written: `_aws` (`Timestamp` first, then the
/// directive), the dimensions' values and `JobId`, the counts (and `ColdStart`), `InvocationId`
/// and `RequestId`, then `TaskDuration` and the task's own metrics. What comes before
/// `InvocationId` is the same for most invocations of a job but for the timestamp, whose
/// digits sit at a fixed place: [`write_reusing`] keeps it and writes those digits over.
pub(super) fn write(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    if !fits_one(collected) {
        return write_split(out, ctx, collected);
    }
    let start = out.len();
    let mut timestamp = itoa::Buffer::new();
    let timestamp = timestamp.format(ctx.timestamp_ms);
    write_head(out, ctx, collected, timestamp);
    write_tail(out, ctx, collected);
    check_size(out, start)
}

/// The head [`write_reusing`]'s buffer starts with: what it was written for, and its length.
#[derive(Debug)]
pub(super) struct Head {
    counts: Counts,
    flags: u32,
    /// The timestamp, and how many digits it has, at `TIMESTAMP_AT`.
    timestamp: u64,
    digits: usize,
    /// The job's number (`Collected::job_number`), when answered.
    job: Option<u64>,
    len: usize,
}

/// Where a document's timestamp starts.
const TIMESTAMP_AT: usize = br#"{"_aws":{"Timestamp":"#.len();
/// What the last five digits of a timestamp count to.
const LOW: u64 = 100_000;

const HEAD_DURATION: u32 = 1;
const HEAD_COLD: u32 = 1 << 1;
const HEAD_ANSWERED: u32 = 1 << 2;
const HEAD_JOB_DIMENSION: u32 = 1 << 3;

/// What, besides the counts and the job, the head depends on.
fn head_flags(ctx: &Context<'_>, collected: &Collected) -> u32 {
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    flag(collected.durations.first.is_some(), HEAD_DURATION)
        | flag(ctx.cold_start, HEAD_COLD)
        | flag(collected.answered, HEAD_ANSWERED)
        | flag(ctx.job_dimension && collected.answered, HEAD_JOB_DIMENSION)
}

/// [`write`] into a buffer kept between invocations, which starts with the head `head`
/// describes: when this invocation's head would be the same but for the timestamp (the same
/// job, counts, cold start), as it is for most, the head stays, its timestamp is written over,
/// and only the ids and the durations are written after it. On an error `out` is empty.
///
/// Hot path: against keeping only the head up to the timestamp and writing the rest each time
/// (the previous form), writing the document went from ~900 to ~600 instructions per 1-task
/// invocation (callgrind, `envelope_once s3batch+metrics`, `release` profile;
/// bench/analysis.md, "Metrics on").
pub(super) fn write_reusing(
    out: &mut Vec<u8>,
    head: &mut Option<Head>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    if !fits_one(collected) {
        out.clear();
        *head = None;
        return write_split(out, ctx, collected);
    }
    let flags = head_flags(ctx, collected);
    let ts = ctx.timestamp_ms;
    let kept = match head {
        Some(h)
            if h.flags == flags
                && h.counts == collected.counts
                && out.len() >= h.len
                && h.job == collected.answered.then_some(collected.job_number) =>
        {
            Some(h)
        }
        _ => None,
    };
    let mut digits = itoa::Buffer::new();
    match kept {
        // The same head, and the timestamp's digits but the last five (100 seconds; a job's
        // invocations on one warm environment usually come closer): only those are written
        // (formatting the whole number measured 77 instructions).
        Some(h) if ts >= LOW && ts / LOW == h.timestamp / LOW => {
            out.truncate(h.len);
            let end = TIMESTAMP_AT + h.digits;
            let low = (ts % LOW) as u32;
            let (a, b, c) = (low / 10_000, low / 100 % 100, low % 100);
            let pair = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
            let ([b1, b2], [c1, c2]) = (pair(b), pair(c));
            out[end - 5..end].copy_from_slice(&[b'0' + a as u8, b1, b2, c1, c2]);
            h.timestamp = ts;
        }
        Some(h) if digits.format(ts).len() == h.digits => {
            out.truncate(h.len);
            out[TIMESTAMP_AT..TIMESTAMP_AT + h.digits]
                .copy_from_slice(digits.format(ts).as_bytes());
            h.timestamp = ts;
        }
        _ => {
            out.clear();
            let digits = digits.format(ts).as_bytes();
            write_head_bytes(out, ctx, collected, digits);
            *head = Some(Head {
                counts: collected.counts,
                flags,
                timestamp: ts,
                digits: digits.len(),
                job: collected.answered.then_some(collected.job_number),
                len: out.len(),
            });
        }
    }
    write_tail(out, ctx, collected);
    let written = check_size(out, 0);
    if written.is_err() {
        *head = None;
    }
    written
}

/// A document over the limit is taken out again (from `start`).
fn check_size(out: &mut Vec<u8>, start: usize) -> Result<(), MetricsError> {
    if out.len() - start > MAX_DOCUMENT_BYTES {
        let bytes = out.len() - start;
        out.truncate(start);
        return Err(MetricsError::DocumentTooLarge { bytes });
    }
    Ok(())
}

/// s3batch's counts, in the order the documents give them: `Tasks` (always written), then
/// the others (written when not zero).
fn counts(c: &Counts) -> [u64; 10] {
    [
        c.succeeded + c.temporary + c.permanent,
        c.succeeded,
        c.temporary,
        c.permanent,
        c.deadline,
        c.panics,
        c.throttling,
        c.access_denied,
        c.missing_key,
        c.other,
    ]
}

/// Each count's definition and member name, as JSON after a comma, in [`counts`]'s order.
macro_rules! count {
    ($name:literal) => {
        (
            concat!(r#",{"Name":""#, $name, r#"","Unit":"Count"}"#).as_bytes(),
            concat!(r#",""#, $name, r#"":"#).as_bytes(),
        )
    };
}
const COUNT_JSON: [(&[u8], &[u8]); 10] = [
    count!("Tasks"),
    count!("TasksSucceeded"),
    count!("TasksTemporaryFailure"),
    count!("TasksPermanentFailure"),
    count!("TasksAtDeadline"),
    count!("TaskPanics"),
    count!("ErrorsThrottling"),
    count!("ErrorsAccessDenied"),
    count!("ErrorsMissingKey"),
    count!("ErrorsOther"),
];

/// A one-document invocation's head, up to `InvocationId`: the timestamp, the metrics'
/// definitions, the dimensions' values, `JobId`, the counts and the cold start.
fn write_head(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected, timestamp: &str) {
    write_head_bytes(out, ctx, collected, timestamp.as_bytes());
}

/// [`write_head`], with the timestamp's digits.
fn write_head_bytes(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected, timestamp: &[u8]) {
    out.extend_from_slice(br#"{"_aws":{"Timestamp":"#);
    out.extend_from_slice(timestamp);
    out.extend_from_slice(br#","CloudWatchMetrics":[{"#);
    out.extend_from_slice(directive(ctx, collected).as_bytes());
    out.extend_from_slice(b",\"Metrics\":[");
    let counts = counts(&collected.counts);
    for (i, (definition, _)) in COUNT_JSON.iter().enumerate() {
        if counts[i] != 0 || i == 0 {
            // The first (`Tasks`) without its comma.
            out.extend_from_slice(&definition[usize::from(i == 0)..]);
        }
    }
    if collected.durations.first.is_some() {
        out.extend_from_slice(br#",{"Name":"TaskDuration","Unit":"Milliseconds"}"#);
    }
    if ctx.cold_start {
        out.extend_from_slice(br#",{"Name":"ColdStart","Unit":"Count"}"#);
    }
    out.extend_from_slice(b"]}]}");
    fixed_properties(out, ctx, collected);
    for (i, (n, (_, key))) in counts.iter().zip(&COUNT_JSON).enumerate() {
        if *n != 0 || i == 0 {
            out.extend_from_slice(key);
            push_u64(out, *n);
        }
    }
    if ctx.cold_start {
        out.extend_from_slice(b",\"ColdStart\":1");
    }
}

/// A one-document invocation's tail, from `InvocationId`: the ids and the durations.
fn write_tail(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected) {
    ids(out, ctx, collected);
    let durations = &collected.durations;
    match (durations.first, durations.rest.is_empty()) {
        (None, _) => {}
        // S3's one task: one number.
        (Some(micros), true) => {
            out.extend_from_slice(b",\"TaskDuration\":");
            push_millis(out, micros);
        }
        (Some(_), false) => {
            out.extend_from_slice(b",\"TaskDuration\":");
            Values::Millis(durations).write(out, 0, durations.len());
        }
    }
    out.extend_from_slice(b"}\n");
}

/// The directive's namespace and dimensions.
fn directive<'a>(ctx: &Context<'a>, collected: &Collected) -> &'a str {
    if ctx.job_dimension && collected.answered {
        &ctx.fixed.directive_with_job
    } else {
        &ctx.fixed.directive
    }
}

/// The dimensions' values and the job id.
fn fixed_properties(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected) {
    out.extend_from_slice(ctx.fixed.dimension_values.as_bytes());
    if collected.answered {
        out.extend_from_slice(b",\"JobId\":");
        out.extend_from_slice(&collected.job_json);
    }
}

/// The invocation's and the request's ids.
fn ids(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected) {
    if let Some((_, invocation_id)) = collected.ids() {
        out.extend_from_slice(b",\"InvocationId\":");
        push_json_str(out, invocation_id);
    }
    if let Some(request_id) = ctx.request_id {
        out.extend_from_slice(b",\"RequestId\":");
        push_json_str(out, request_id);
    }
}

/// Any invocation, in as many documents as EMF's limits need.
pub(super) fn write_split(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    let c = &collected.counts;
    let builtin = [
        (
            TASKS,
            "Count",
            Values::Count(c.succeeded + c.temporary + c.permanent),
        ),
        (SUCCEEDED, "Count", Values::Count(c.succeeded)),
        (TEMPORARY, "Count", Values::Count(c.temporary)),
        (PERMANENT, "Count", Values::Count(c.permanent)),
        (DEADLINE, "Count", Values::Count(c.deadline)),
        (PANICS, "Count", Values::Count(c.panics)),
        (THROTTLING, "Count", Values::Count(c.throttling)),
        (ACCESS_DENIED, "Count", Values::Count(c.access_denied)),
        (MISSING_KEY, "Count", Values::Count(c.missing_key)),
        (OTHER, "Count", Values::Count(c.other)),
        (
            DURATION,
            "Milliseconds",
            Values::Millis(&collected.durations),
        ),
        (COLD_START, "Count", Values::Count(1)),
    ];
    // Metrics without values (no task ran; not a cold start) and counts of zero (but
    // `Tasks`) are left out.
    let metrics = builtin
        .into_iter()
        .map(|(name, unit, values)| Metric { name, unit, values })
        .filter(|m| {
            m.values.len() > 0
                && (m.name != COLD_START || ctx.cold_start)
                && (m.name == TASKS || !matches!(m.values, Values::Count(0)))
        })
        .chain(collected.user.iter().map(|m| Metric {
            name: &m.name,
            unit: m.unit.as_str(),
            values: Values::User(&m.values),
        }));
    let rounds = metrics
        .clone()
        .map(|m| m.values.len().div_ceil(MAX_VALUES_PER_METRIC))
        .max()
        .unwrap_or(0)
        .max(1);
    let start = out.len();
    // Round r holds values r*100.. of every metric that has them.
    for round in 0..rounds {
        let from = round * MAX_VALUES_PER_METRIC;
        let present = || metrics.clone().filter(move |m| m.values.len() > from);
        let count = present().count();
        let mut skip = 0;
        loop {
            let doc_start = out.len();
            out.extend_from_slice(br#"{"_aws":{"Timestamp":"#);
            push_u64(out, ctx.timestamp_ms);
            out.extend_from_slice(br#","CloudWatchMetrics":[{"#);
            out.extend_from_slice(directive(ctx, collected).as_bytes());
            out.extend_from_slice(b",\"Metrics\":[");
            for (i, m) in present()
                .skip(skip)
                .take(MAX_METRICS_PER_DOCUMENT)
                .enumerate()
            {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"Name\":");
                push_json_str(out, m.name);
                out.extend_from_slice(b",\"Unit\":\"");
                out.extend_from_slice(m.unit.as_bytes());
                out.extend_from_slice(b"\"}");
            }
            out.extend_from_slice(b"]}]}");
            fixed_properties(out, ctx, collected);
            // The counts (and `ColdStart`), the ids, then the other metrics: the order of
            // the one-document writer.
            let values = |out: &mut Vec<u8>, counts: bool| {
                for m in present().skip(skip).take(MAX_METRICS_PER_DOCUMENT) {
                    if matches!(m.values, Values::Count(_)) == counts {
                        out.push(b',');
                        push_json_str(out, m.name);
                        out.push(b':');
                        let to = m.values.len().min(from + MAX_VALUES_PER_METRIC);
                        m.values.write(out, from, to);
                    }
                }
            };
            values(out, true);
            ids(out, ctx, collected);
            values(out, false);
            out.extend_from_slice(b"}\n");
            if out.len() - doc_start > MAX_DOCUMENT_BYTES {
                let bytes = out.len() - doc_start;
                out.truncate(start);
                return Err(MetricsError::DocumentTooLarge { bytes });
            }
            skip += MAX_METRICS_PER_DOCUMENT;
            if skip >= count {
                break;
            }
        }
    }
    Ok(())
}
