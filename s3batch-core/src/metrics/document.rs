//! Writing an invocation's EMF documents: one JSON object per line, within EMF's limits (at
//! most 100 metrics per document and 100 values per metric, each document at most 1 MB);
//! what does not fit one document goes on in the next.

use super::collect::{Collected, Durations};
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
    /// `"Namespace":…,"Dimensions":…,"Metrics":[` and s3batch's count definitions, without
    /// and with `JobId` (the hot path's head).
    pub(super) builtin_head: String,
    pub(super) builtin_head_with_job: String,
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
        let head = |directive: &str| format!("{directive},\"Metrics\":[{COUNT_DEFINITIONS}");
        Fixed {
            builtin_head: head(&directive),
            builtin_head_with_job: head(&with_job),
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
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Without early exit, so that it is vectorized: ids are short and plain.
    let plain = !s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
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

/// Appends the invocation's documents to `out`, each a JSON object on a line of its own. On
/// an error `out` is as it was.
pub(super) fn write(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    if collected.user.is_empty() && collected.durations.len() <= MAX_VALUES_PER_METRIC {
        write_builtin(out, ctx, collected)
    } else {
        write_split(out, ctx, collected)
    }
}

/// The definitions of s3batch's counts, in the order [`write_builtin`] writes their values.
const COUNT_DEFINITIONS: &str = concat!(
    r#"{"Name":"Tasks","Unit":"Count"},"#,
    r#"{"Name":"TasksSucceeded","Unit":"Count"},"#,
    r#"{"Name":"TasksTemporaryFailure","Unit":"Count"},"#,
    r#"{"Name":"TasksPermanentFailure","Unit":"Count"},"#,
    r#"{"Name":"TasksAtDeadline","Unit":"Count"},"#,
    r#"{"Name":"TaskPanics","Unit":"Count"},"#,
    r#"{"Name":"ErrorsThrottling","Unit":"Count"},"#,
    r#"{"Name":"ErrorsAccessDenied","Unit":"Count"},"#,
    r#"{"Name":"ErrorsMissingKey","Unit":"Count"},"#,
    r#"{"Name":"ErrorsOther","Unit":"Count"}"#,
);

/// The usual invocation, in one document: s3batch's own metrics only, at most 100 durations.
/// Hot path: the definitions are constants (`write_split` builds the same document for
/// this case, more slowly; the tests compare them).
fn write_builtin(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    collected: &Collected,
) -> Result<(), MetricsError> {
    let start = out.len();
    let c = &collected.counts;
    let durations = &collected.durations;
    out.extend_from_slice(b"{\"_aws\":{\"Timestamp\":");
    push_u64(out, ctx.timestamp_ms);
    out.extend_from_slice(b",\"CloudWatchMetrics\":[{");
    out.extend_from_slice(if ctx.job_dimension && collected.answered {
        ctx.fixed.builtin_head_with_job.as_bytes()
    } else {
        ctx.fixed.builtin_head.as_bytes()
    });
    if durations.len() > 0 {
        out.extend_from_slice(br#",{"Name":"TaskDuration","Unit":"Milliseconds"}"#);
    }
    if ctx.cold_start {
        out.extend_from_slice(br#",{"Name":"ColdStart","Unit":"Count"}"#);
    }
    out.extend_from_slice(b"]}]}");
    properties(out, ctx, collected);
    for (key, n) in [
        (&b",\"Tasks\":"[..], c.succeeded + c.temporary + c.permanent),
        (b",\"TasksSucceeded\":", c.succeeded),
        (b",\"TasksTemporaryFailure\":", c.temporary),
        (b",\"TasksPermanentFailure\":", c.permanent),
        (b",\"TasksAtDeadline\":", c.deadline),
        (b",\"TaskPanics\":", c.panics),
        (b",\"ErrorsThrottling\":", c.throttling),
        (b",\"ErrorsAccessDenied\":", c.access_denied),
        (b",\"ErrorsMissingKey\":", c.missing_key),
        (b",\"ErrorsOther\":", c.other),
    ] {
        out.extend_from_slice(key);
        push_u64(out, n);
    }
    if durations.len() > 0 {
        out.extend_from_slice(b",\"TaskDuration\":");
        Values::Millis(durations).write(out, 0, durations.len());
    }
    if ctx.cold_start {
        out.extend_from_slice(b",\"ColdStart\":1");
    }
    out.extend_from_slice(b"}\n");
    if out.len() - start > MAX_DOCUMENT_BYTES {
        let bytes = out.len() - start;
        out.truncate(start);
        return Err(MetricsError::DocumentTooLarge { bytes });
    }
    Ok(())
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
    for (name, value) in [
        (&b",\"JobId\":"[..], collected.ids().map(|(job, _)| job)),
        (b",\"InvocationId\":", collected.ids().map(|(_, inv)| inv)),
        (b",\"RequestId\":", ctx.request_id),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(name);
            push_json_str(out, value);
        }
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
    // Metrics without values (no task ran; not a cold start) are left out.
    let metrics = builtin
        .into_iter()
        .map(|(name, unit, values)| Metric { name, unit, values })
        .filter(|m| m.values.len() > 0 && (m.name != COLD_START || ctx.cold_start))
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
            out.extend_from_slice(b"{\"_aws\":{\"Timestamp\":");
            push_u64(out, ctx.timestamp_ms);
            out.extend_from_slice(b",\"CloudWatchMetrics\":[{");
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
