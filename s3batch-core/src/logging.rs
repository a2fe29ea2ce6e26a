//! The subscriber [`init_tracing`](crate::init_tracing) installs: lambda_runtime's default
//! subscriber (same variables, same output), except that a task span's fields are formatted
//! when the task first logs a line, not when the span is created.
//!
//! `tracing-subscriber`'s fmt layer writes a span's fields into a `String` as the span is
//! created, whether or not anything is logged inside it: for the `task` span (job id, task
//! id, bucket and key) that was most of the span's cost, paid for every task. Under this
//! subscriber the `task` span is created without fields and their values are kept, unformatted,
//! in the span's extensions; [`TaskFields`], a layer beneath the fmt layer, writes them into
//! the fmt layer's formatted fields just before the first event inside the span is formatted,
//! so every line reads as it would have. Under any other subscriber (a test's,
//! OpenTelemetry's…) the span is created with its four fields as usual.

use crate::runtime::Escaped;
use lambda_runtime::tracing::subscriber::{
    self,
    filter::LevelFilter,
    fmt::{
        format::{DefaultFields, JsonFields},
        FormatFields, FormattedFields, MakeWriter,
    },
    layer::{Context, Layered, SubscriberExt as _},
    registry::LookupSpan,
    EnvFilter, Layer, Registry,
};
use std::str::FromStr;
use tracing::callsite::{DefaultCallsite, Identifier};
use tracing::field::FieldSet;
use tracing::field::{display, Value};
use tracing::metadata::Kind;
use tracing::span::Record;
use tracing::{Dispatch, Event, Level, Metadata, Span, Subscriber};

/// lambda_runtime's default level.
const DEFAULT_LOG_LEVEL: &str = "INFO";

/// The subscriber `init_tracing` installs, writing to `writer`: lambda_runtime's
/// `init_default_subscriber_with_writer` with [`TaskFields`] added. `level` is
/// `AWS_LAMBDA_LOG_LEVEL` or else `RUST_LOG`, `rust_log` is `RUST_LOG` (its directives),
/// `json` whether `AWS_LAMBDA_LOG_FORMAT` is `JSON`.
pub(crate) fn subscriber<W>(json: bool, level: Option<&str>, rust_log: &str, writer: W) -> Dispatch
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let level =
        LevelFilter::from_str(level.unwrap_or(DEFAULT_LOG_LEVEL)).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(rust_log);
    // A directive on a span's field values (`[task{key=…}]=debug`) is matched when the span
    // is created: the fields are then written as usual.
    let lazy = !rust_log.contains('{');
    let fmt = subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let task_fields = TaskFields { json, lazy };
    if json {
        Registry::default()
            .with(task_fields)
            .with(fmt.json())
            .with(filter)
            .into()
    } else {
        Registry::default()
            .with(task_fields)
            .with(fmt)
            .with(filter)
            .into()
    }
}

/// How an invocation's task spans are made, asked once per invocation (its tasks are created
/// under the same subscriber).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskSpans {
    /// No subscriber records `INFO` spans: none is made. (What the span macro would make is a
    /// disabled span, which still builds and passes its fields to tracing's `log` fallback,
    /// only for `log` to drop them below its `TRACE` span lines.)
    Off,
    /// Under [`init_tracing`](crate::runtime::init_tracing)'s subscriber: fields left to
    /// [`TaskFields`] ([`lazy_task_span`]); `json` when its logs are JSON lines.
    Lazy { json: bool },
    /// Any other subscriber: the span with its four fields.
    Fields,
}

impl TaskSpans {
    /// Under the current subscriber.
    pub(crate) fn current() -> Self {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return TaskSpans::Off;
        }
        tracing::dispatcher::get_default(|d| match d.downcast_ref::<TaskFields>() {
            Some(t) if t.lazy => TaskSpans::Lazy { json: t.json },
            _ => TaskSpans::Fields,
        })
    }
}

/// Creates the `task` span with its fields left to [`TaskFields`] (see
/// [`TaskSpans::Lazy`]): their values are kept in the span's extensions. Should the span
/// reach another subscriber after all, a span with the four fields is created instead.
pub(crate) fn lazy_task_span(
    json: bool,
    job_id: &str,
    task_id: &str,
    bucket: &str,
    key: &str,
) -> Span {
    // No fields of its own: `TaskFields` writes `FIELDS`' when the task logs.
    let span = tracing::info_span!(target: "s3batch_core::runtime", "task");
    // `TaskFields` right above the registry, as `subscriber` builds it.
    // The values go into the fmt layer's own formatted fields of the span, marked as not yet
    // formatted: no extension of our own to add and free.
    let kept = span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Layered<TaskFields, Registry>>()?;
        let span = registry.span(id)?;
        let mut extensions = span.extensions_mut();
        let fields = if json {
            &mut extensions.get_mut::<FormattedFields<JsonFields>>()?.fields
        } else {
            &mut extensions
                .get_mut::<FormattedFields<DefaultFields>>()?
                .fields
        };
        *fields = Pending::encode([job_id, task_id, bucket, key])?;
        Some(())
    });
    // `None` inside: another subscriber after all, or values that cannot wait.
    if matches!(kept, Some(None)) {
        // Another subscriber after all: a span with the fields, as `Handler` creates.
        return tracing::info_span!(
            target: "s3batch_core::runtime",
            "task",
            job_id = %Escaped::field(job_id),
            task_id = %Escaped::field(task_id),
            bucket = %Escaped::field(bucket),
            key = %Escaped::field(key),
        );
    }
    span
}

/// The task span's fields, as `TaskFields` records them on the field-less span that
/// [`lazy_task_span`] creates (a callsite never registered: only its field set is used).
static FIELDS: Metadata<'static> = Metadata::new(
    "task",
    "s3batch_core::runtime",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(
        &["job_id", "task_id", "bucket", "key"],
        Identifier(&FIELDS_CALLSITE),
    ),
    Kind::SPAN,
);
static FIELDS_CALLSITE: DefaultCallsite = DefaultCallsite::new(&FIELDS);

/// A task span's field values, not yet formatted, as they are kept in the fmt layer's
/// `FormattedFields` of the span until the task logs: each of the four texts after
/// [`Pending::MARK`]. Formatted fields never start with the mark (they start with a field
/// name, or `{`, or are empty).
struct Pending;

impl Pending {
    const MARK: char = '\u{0}';

    /// `None` when the job id, task id or bucket holds the mark (none does in S3's events): the
    /// span is then made with its fields. (The key is last: it may hold anything.)
    fn encode(parts: [&str; 4]) -> Option<String> {
        if parts[..3].iter().any(|p| p.contains(Self::MARK)) {
            return None;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = String::with_capacity(4 + len);
        for part in parts {
            out.push(Self::MARK);
            out.push_str(part);
        }
        Some(out)
    }

    /// The four texts of a marked string; `None` for formatted fields.
    fn decode(fields: &str) -> Option<[&str; 4]> {
        let mut parts = fields.strip_prefix(Self::MARK)?.splitn(4, Self::MARK);
        let mut next = || parts.next();
        Some([next()?, next()?, next()?, next()?])
    }
}

/// The layer that writes a task span's fields into the fmt layer's formatted fields before
/// the first event inside the span is formatted (it sits beneath the fmt layer, so it sees
/// each event first).
struct TaskFields {
    /// Whether the fmt layer writes JSON (its fields are then `FormattedFields<JsonFields>`).
    json: bool,
    /// Whether task spans leave their fields to this layer: not when a directive may match
    /// on a span's fields (see [`subscriber`]).
    lazy: bool,
}

impl<S> Layer<S> for TaskFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let mut extensions = span.extensions_mut();
            if self.json {
                if let Some(f) = extensions.get_mut::<FormattedFields<JsonFields>>() {
                    format_pending(f, |f, record| JsonFields::new().add_fields(f, record));
                }
            } else if let Some(f) = extensions.get_mut::<FormattedFields<DefaultFields>>() {
                format_pending(f, |f, record| DefaultFields::new().add_fields(f, record));
            }
        }
    }
}

/// Writes a task span's pending values (see [`Pending`]) as the span would have recorded
/// them, with `add_fields` (the fmt layer's field formatter); formatted fields are left as
/// they are.
fn format_pending<N>(
    f: &mut FormattedFields<N>,
    add_fields: impl FnOnce(&mut FormattedFields<N>, &Record<'_>) -> std::fmt::Result,
) {
    if !f.fields.starts_with(Pending::MARK) {
        return;
    }
    let raw = std::mem::take(&mut f.fields);
    let Some(parts) = Pending::decode(&raw) else {
        return;
    };
    let fields = FIELDS.fields();
    let mut names = fields.iter();
    let [Some(job_id), Some(task_id), Some(bucket), Some(key)] = [(); 4].map(|()| names.next())
    else {
        return;
    };
    // As the span would have recorded them: quoted and escaped in text logs.
    let [j, t, b, k] = parts.map(|p| display(Escaped::field(p)));
    let values = [
        (&job_id, Some(&j as &dyn Value)),
        (&task_id, Some(&t as &dyn Value)),
        (&bucket, Some(&b as &dyn Value)),
        (&key, Some(&k as &dyn Value)),
    ];
    let values = fields.value_set(&values);
    // A value that fails to format is left out, as the fmt layer's `on_record` does.
    let _ = add_fields(f, &Record::new(&values));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{invoke, EventBuilder};
    use crate::{Object, TaskError};
    use std::sync::{Arc, Mutex};

    /// A `MakeWriter` that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// lambda_runtime's `init_default_subscriber_with_writer`, as a value (its code, with the
    /// environment passed in).
    fn lambda_default(json: bool, level: &str, rust_log: &str, writer: Captured) -> Dispatch {
        let level = LevelFilter::from_str(level).unwrap_or(LevelFilter::INFO);
        let collector = subscriber::fmt()
            .with_target(false)
            .without_time()
            .with_env_filter(
                EnvFilter::builder()
                    .with_default_directive(level.into())
                    .parse_lossy(rust_log),
            )
            .with_writer(move || writer.clone());
        if json {
            collector.json().into()
        } else {
            collector.into()
        }
    }

    /// Logs as its key says: nothing, one line, two lines, a line in a span of its own, an
    /// error.
    async fn logs(obj: Object) -> Result<String, TaskError> {
        match obj
            .key
            .split_once('/')
            .map_or(obj.key.as_str(), |(kind, _)| kind)
        {
            "one" => tracing::info!(n = 1, "one line"),
            "two" => {
                tracing::info!("first");
                tracing::warn!("second");
            }
            "inner" => {
                let _inner = tracing::info_span!("inner", step = "copy").entered();
                tracing::info!("in a span of its own");
            }
            "fail" => return Err(TaskError::permanent("cannot")),
            _ => {}
        }
        Ok(obj.key)
    }

    fn event() -> EventBuilder {
        EventBuilder::v2()
            .job_id("job-1")
            .object("b", "quiet")
            .object("b", "one/\"quoted\" \\ é\nERROR forged\x1b[31m")
            .object("bucket-2", "two")
            .object("b", "quiet/again")
            .object("b", "inner")
            .object("b", "fail")
            .object("b", &format!("one/{}", "long/".repeat(60)))
    }

    /// What `invoke` logs under `dispatch`, with JSON-escaped values if `json`.
    async fn logged(dispatch: Dispatch, json: bool) -> Vec<(crate::ResultCode, String)> {
        crate::runtime::TEST_JSON_LOGS.set(json);
        let _default = tracing::dispatcher::set_default(&dispatch);
        let r = invoke(logs, event()).await.unwrap();
        crate::runtime::TEST_JSON_LOGS.set(false);
        r.results
            .into_iter()
            .map(|r| (r.result_code, r.result_string))
            .collect()
    }

    async fn same_lines_as_lambda_runtime(json: bool) -> String {
        let theirs = Captured::default();
        let ours = Captured::default();
        let w = ours.clone();
        let expected = logged(lambda_default(json, "INFO", "", theirs.clone()), json).await;
        let got = logged(subscriber(json, None, "", move || w.clone()), json).await;
        assert_eq!(got, expected);
        assert_eq!(got.len(), 7);
        assert_eq!(ours.text(), theirs.text());
        ours.text()
    }

    #[tokio::test]
    async fn text_lines_are_lambda_runtimes_with_the_task_fields() {
        let text = plain(&same_lines_as_lambda_runtime(false).await);
        // Quiet tasks write nothing; each line of the others carries its task's fields once.
        assert_eq!(text.lines().count(), 6, "{text}");
        for (line, task) in text.lines().zip([1, 2, 2, 4, 5, 6]) {
            assert_eq!(line.matches("job_id=").count(), 1, "{line}");
            assert!(line.contains(&format!("task_id=\"task-{task}\"")), "{line}");
        }
        let plain = plain(&text);
        assert!(
            plain.contains(
                r#"task{job_id="job-1" task_id="task-1" bucket="b" key="one/\"quoted\" \\ é\nERROR forged\u{1b}[31m"}: one line n=1"#
            ),
            "{text}"
        );
        assert!(
            plain.contains(
                r#"task{job_id="job-1" task_id="task-2" bucket="bucket-2" key="two"}: second"#
            ),
            "{text}"
        );
        assert!(
            plain.contains(r#"task{job_id="job-1" task_id="task-4" bucket="b" key="inner"}:inner{step="copy"}: in a span of its own"#),
            "{text}"
        );
        assert!(
            plain.contains(&format!("key=\"one/{}\"", "long/".repeat(60))),
            "{text}"
        );
    }

    #[tokio::test]
    async fn json_lines_are_lambda_runtimes_with_the_task_fields() {
        let text = same_lines_as_lambda_runtime(true).await;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6, "{text}");
        for (line, task) in lines.iter().zip([1, 2, 2, 4, 5, 6]) {
            let span = &line["spans"][0];
            assert_eq!(span["name"], "task", "{line}");
            assert_eq!(span["job_id"], "job-1", "{line}");
            assert_eq!(span["task_id"], format!("task-{task}"), "{line}");
        }
        assert_eq!(
            lines[0]["span"],
            serde_json::json!({
                "name": "task",
                "job_id": "job-1",
                "task_id": "task-1",
                "bucket": "b",
                "key": "one/\"quoted\" \\ é\nERROR forged\x1b[31m",
            })
        );
        assert_eq!(lines[3]["span"]["name"], "inner");
        assert_eq!(lines[3]["spans"][0]["key"], "inner");
    }

    /// The task span's formatted fields, as the fmt layer keeps them.
    /// `text` without the ANSI styles the fmt layer adds when tracing-subscriber's `ansi`
    /// feature is on (feature unification turns it on in a workspace-wide build).
    fn plain(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // Skip `ESC [ … m`.
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn formatted_task_fields() -> Option<String> {
        tracing::Span::current()
            .with_subscriber(|(id, dispatch)| {
                let registry = dispatch.downcast_ref::<Registry>()?;
                let span = registry.span(id)?;
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<DefaultFields>>()?;
                Some(fields.fields.clone())
            })
            .flatten()
    }

    #[tokio::test]
    async fn task_fields_are_formatted_only_when_the_task_logs() {
        async fn task(_: Object) -> Result<String, TaskError> {
            let before = formatted_task_fields().map(|f| plain(&f));
            tracing::info!("now");
            let after = formatted_task_fields().map(|f| plain(&f));
            Ok(format!("{before:?} {after:?}"))
        }
        let captured = Captured::default();
        let w = captured.clone();
        let _default =
            tracing::dispatcher::set_default(&subscriber(false, None, "", move || w.clone()));
        let r = invoke(task, EventBuilder::v2().job_id("j").object("b", "k"))
            .await
            .unwrap();
        // Before: the values as they were kept, not formatted (see `Pending`).
        assert_eq!(
            r.results[0].result_string,
            r#"Some("\0j\0task-0\0b\0k") Some("job_id=\"j\" task_id=\"task-0\" bucket=\"b\" key=\"k\"")"#
        );
        assert!(plain(&captured.text())
            .contains(r#"task{job_id="j" task_id="task-0" bucket="b" key="k"}: now"#));
    }

    #[tokio::test]
    async fn a_directive_on_span_fields_sees_the_task_fields() {
        // `RUST_LOG=[task{key}]=debug`: debug lines inside spans with a `key` field.
        let captured = Captured::default();
        let w = captured.clone();
        let dispatch = subscriber(false, None, "[task{key}]=debug", move || w.clone());
        let _default = tracing::dispatcher::set_default(&dispatch);
        let r = invoke(logs, EventBuilder::v2().object("b", "quiet"))
            .await
            .unwrap();
        assert_eq!(r.results[0].result_string, "quiet");
        let text = captured.text();
        assert!(
            text.contains("DEBUG") && text.contains("succeeded"),
            "{text}"
        );
    }

    #[test]
    fn values_that_cannot_wait_are_formatted_at_once() {
        // A NUL in the task id (S3 sends none) cannot be kept as pending values: the span is
        // made with its fields, and reads as it would.
        for json in [false, true] {
            let captured = Captured::default();
            let w = captured.clone();
            let ours = subscriber(json, None, "", move || w.clone());
            // What `init_tracing` sets for JSON lines, on this thread only.
            crate::runtime::TEST_JSON_LOGS.set(json);
            tracing::dispatcher::with_default(&ours, || {
                lazy_task_span(json, "j", "t\u{0}", "b", "k").in_scope(|| tracing::info!("hello"));
            });
            crate::runtime::TEST_JSON_LOGS.set(false);
            let text = plain(&captured.text());
            let want = if json {
                r#""span":{"bucket":"b","job_id":"j","key":"k","task_id":"t\u0000","name":"task"}"#
            } else {
                r#"task{job_id="j" task_id="t\0" bucket="b" key="k"}: hello"#
            };
            assert!(text.contains(want), "{text}");
        }
    }

    #[test]
    fn a_lazy_span_under_another_subscriber_has_its_fields() {
        let captured = Captured::default();
        let w = captured.clone();
        let plain = subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(plain, || {
            lazy_task_span(false, "j", "t", "b", "k").in_scope(|| tracing::info!("hello"));
        });
        let text = captured.text();
        assert!(
            text.contains(r#"task{job_id="j" task_id="t" bucket="b" key="k"}: s3batch_core::logging::tests: hello"#),

            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_dropped_at_the_deadline_logs_its_drop_with_its_fields() {
        struct LogOnDrop;
        impl Drop for LogOnDrop {
            fn drop(&mut self) {
                tracing::warn!("dropped");
            }
        }
        async fn hang(_: Object) -> Result<String, TaskError> {
            let _guard = LogOnDrop;
            std::future::pending::<()>().await;
            Ok(String::new())
        }
        let mut ctx = lambda_runtime::Context::default();
        let at = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        ctx.deadline = at
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for lazy in [false, true] {
            let captured = Captured::default();
            let w = captured.clone();
            let dispatch = if lazy {
                subscriber(false, None, "", move || w.clone())
            } else {
                lambda_default(false, "INFO", "", w)
            };
            let _default = tracing::dispatcher::set_default(&dispatch);
            // One task alone is awaited directly; two go through the tasks in flight.
            for event in [
                EventBuilder::v1().object("b", "k"),
                EventBuilder::v1().object("b", "k").object("b", "k2"),
            ] {
                let r =
                    crate::testing::invoke_with(hang, crate::Options::new(), event, ctx.clone())
                        .await
                        .unwrap();
                assert_eq!(
                    r.results[0].result_code,
                    crate::ResultCode::TemporaryFailure
                );
            }
            let text = captured.text();
            let plain = plain(&text);
            let dropped: Vec<_> = plain.lines().filter(|l| l.ends_with("dropped")).collect();
            assert_eq!(dropped.len(), 3, "{text}");
            for line in dropped {
                assert!(
                    line.contains(r#"task{job_id="#) && line.contains(r#" key="k"#),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn pending_values_read_back() {
        for key in ["k", "", "é\n\"", "\u{0}x", &"long/".repeat(600)] {
            let parts = ["job", "task", "bucket", key];
            let encoded = Pending::encode(parts).unwrap();
            assert_eq!(Pending::decode(&encoded), Some(parts));
        }
        // Formatted fields are not pending values.
        for formatted in ["", "{}", r#"job_id="j""#, r#"{"job_id":"j"}"#] {
            assert_eq!(Pending::decode(formatted), None);
        }
        // The mark in another part than the key: the span gets its fields instead.
        assert_eq!(Pending::encode(["j", "t\u{0}", "b", "k"]), None);
    }
}
