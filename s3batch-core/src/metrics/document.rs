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

/// Whether JSON needs no escape in `s` (no control character, `"` or `\`): eight bytes at
/// a time, without an early exit (ids are 36 to 60 bytes; a byte at a time cost 3.6
/// instructions a byte).
pub(super) fn is_plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    // The high bit of a byte is set where it is below 0x20, a quote or a backslash (exact:
    // a wrong bit can only follow a right one).
    let mut bad = 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
        let (q, b) = (x ^ QUOTES, x ^ BACKSLASHES);
        bad |= (x.wrapping_sub(ONES * 0x20) & !x)
            | (q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b);
    }
    bad & HIGH == 0
        && chunks
            .remainder()
            .iter()
            .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
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
fn push_millis(out: &mut Vec<u8>, micros: u64) {
    push_u64(out, micros / 1000);
    let frac = micros % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
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

/// Whether the one-document writer ([`write_head`], [`write_body`]) serves the invocation:
/// s3batch's own metrics only, at most 100 durations (S3's one task, or a batch of up to 100).
fn fits_one(collected: &Collected) -> bool {
    collected.user.is_empty() && collected.durations.len() <= MAX_VALUES_PER_METRIC
}

/// Appends the invocation's documents to `out`, each a JSON object on a line of its own. On
/// an error `out` is as it was.
pub(super) fn write(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    if !fits_one(collected) {
        return write_split(out, ctx, collected);
    }
    let start = out.len();
    write_head(out, ctx, collected, shape(ctx, collected));
    write_body(out, ctx, collected);
    check_size(out, start)
}

/// [`write`] into a buffer kept between invocations, which starts with the head written for
/// the shape `head` names (and its length): when this invocation's shape is the same, as it
/// is for most, the head stays and only the body is written. On an error `out` is empty.
pub(super) fn write_reusing(
    out: &mut Vec<u8>,
    head: &mut Option<(u32, usize)>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    if !fits_one(collected) {
        out.clear();
        *head = None;
        return write_split(out, ctx, collected);
    }
    let shape = shape(ctx, collected);
    match *head {
        Some((kept, len)) if kept == shape && out.len() >= len => out.truncate(len),
        _ => {
            out.clear();
            write_head(out, ctx, collected, shape);
            *head = Some((shape, out.len()));
        }
    }
    write_body(out, ctx, collected);
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
const SHAPE_DURATION: u32 = 1 << 10;
const SHAPE_COLD: u32 = 1 << 11;
const SHAPE_JOB: u32 = 1 << 12;

/// What the head of a one-document invocation depends on: which counts are not zero, whether
/// there are durations, a cold start, `JobId` as a dimension.
fn shape(ctx: &Context<'_>, collected: &Collected) -> u32 {
    let c = &collected.counts;
    let bit = |n: u64, i: u32| u32::from(n != 0) << i;
    1 | bit(c.succeeded, 1)
        | bit(c.temporary, 2)
        | bit(c.permanent, 3)
        | bit(c.deadline, 4)
        | bit(c.panics, 5)
        | bit(c.throttling, 6)
        | bit(c.access_denied, 7)
        | bit(c.missing_key, 8)
        | bit(c.other, 9)
        | (u32::from(collected.durations.len() > 0) * SHAPE_DURATION)
        | (u32::from(ctx.cold_start) * SHAPE_COLD)
        | (u32::from(ctx.job_dimension && collected.answered) * SHAPE_JOB)
}

/// A one-document invocation's head, up to its timestamp: the metrics' definitions.
fn write_head(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected, shape: u32) {
    out.extend_from_slice(b"{\"_aws\":{\"CloudWatchMetrics\":[{");
    out.extend_from_slice(directive(ctx, collected).as_bytes());
    out.extend_from_slice(b",\"Metrics\":[");
    for (i, (definition, _)) in COUNT_JSON.iter().enumerate() {
        if shape & (1 << i) != 0 {
            // The first (`Tasks`) without its comma.
            out.extend_from_slice(&definition[usize::from(i == 0)..]);
        }
    }
    if shape & SHAPE_DURATION != 0 {
        out.extend_from_slice(br#",{"Name":"TaskDuration","Unit":"Milliseconds"}"#);
    }
    if shape & SHAPE_COLD != 0 {
        out.extend_from_slice(br#",{"Name":"ColdStart","Unit":"Count"}"#);
    }
    out.extend_from_slice(b"]}],\"Timestamp\":");
}

/// A one-document invocation's body, from its timestamp: the properties and the values.
fn write_body(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected) {
    push_u64(out, ctx.timestamp_ms);
    out.push(b'}');
    properties(out, ctx, collected);
    for (i, (n, (_, key))) in counts(&collected.counts)
        .into_iter()
        .zip(COUNT_JSON)
        .enumerate()
    {
        if n != 0 || i == 0 {
            out.extend_from_slice(key);
            push_u64(out, n);
        }
    }
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
    if ctx.cold_start {
        out.extend_from_slice(b",\"ColdStart\":1");
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

/// The dimensions' values and the ids.
fn properties(out: &mut Vec<u8>, ctx: &Context<'_>, collected: &Collected) {
    out.extend_from_slice(ctx.fixed.dimension_values.as_bytes());
    if let Some((_, invocation_id)) = collected.ids() {
        out.extend_from_slice(b",\"JobId\":");
        out.extend_from_slice(&collected.job_json);
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
            out.extend_from_slice(b"{\"_aws\":{\"CloudWatchMetrics\":[{");
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
            out.extend_from_slice(b"]}],\"Timestamp\":");
            push_u64(out, ctx.timestamp_ms);
            out.push(b'}');
            properties(out, ctx, collected);
            for m in present().skip(skip).take(MAX_METRICS_PER_DOCUMENT) {
                out.push(b',');
                push_json_str(out, m.name);
                out.push(b':');
                let to = m.values.len().min(from + MAX_VALUES_PER_METRIC);
                m.values.write(out, from, to);
            }
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
