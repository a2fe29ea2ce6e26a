//! [`init_tracing`] and the subscriber it installs: lambda_runtime's default subscriber (same
//! variables, same output), except that a task's span is made when the task first needs it,
//! not for every task.
//!
//! Making a span in `tracing-subscriber`'s registry and fmt layer, entering it, leaving it and
//! closing it costs thousands of instructions, about what the rest of a trivial task costs,
//! and most tasks log nothing. Under this subscriber a task runs with its span *deferred*: its
//! four values (job id, task id, bucket, key) are kept, and the span is made, with those
//! fields, and entered, at the first thing inside the task that needs it: a line logged (by
//! the task, a library it calls, or s3batch for its outcome), a span created (which must be
//! the task span's child), or `Span::current()`. From there on the task span is entered for
//! every poll as usual, so every line reads as it would have. [`DeferredTasks`] wraps the
//! subscriber to see those three calls.
//!
//! Not deferred: under a directive that names spans (`RUST_LOG=[task]=debug` or
//! `[task{key=…}]`), which is matched against the spans in scope before a line is logged, and
//! under any other subscriber (a test's, OpenTelemetry's…). The task span is then made as the
//! task starts.
//!
//! Text from the event or a task is escaped in text logs ([`Escaped`], `escape.rs`), so that it
//! cannot forge a line.

mod escape;

pub(crate) use escape::Escaped;
use escape::JSON_LOGS;
use lambda_runtime::tracing::subscriber::{
    self, filter::LevelFilter, fmt::MakeWriter, layer::SubscriberExt as _, EnvFilter, Registry,
};
use std::any::TypeId;
use std::cell::RefCell;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use tracing::callsite::{DefaultCallsite, Identifier};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{display, FieldSet, Value};
use tracing::metadata::Kind;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Span, Subscriber};
use tracing_core::span::Current;

/// lambda_runtime's default level.
const DEFAULT_LOG_LEVEL: &str = "INFO";

/// The target of every span and line s3batch logs: the module that wrote them all before it
/// was split into files, kept so that filters and the targets shown stay the same.
pub(crate) const TARGET: &str = "s3batch_core::runtime";

/// Sets up logging the way `lambda_runtime` does: `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` for
/// the level, `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines.
///
/// The subscriber is lambda_runtime's default one (`init_default_subscriber`: the same
/// variables and output), except that a task's span formats its fields (job id, task id,
/// bucket, key) only when the task logs a line, not for every task.
pub fn init_tracing() {
    use lambda_runtime::tracing::subscriber::util::SubscriberInitExt as _;
    use std::env::var;
    // lambda_runtime's default subscriber writes JSON lines on the same condition.
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    JSON_LOGS.store(json, Ordering::Relaxed);
    let level = var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| var("RUST_LOG"))
        .ok();
    let rust_log = var("RUST_LOG").unwrap_or_default();
    subscriber(json, level.as_deref(), &rust_log, std::io::stdout).init();
}

/// The subscriber `init_tracing` installs, writing to `writer`: lambda_runtime's
/// `init_default_subscriber_with_writer`, in [`DeferredTasks`]. `level` is
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
    // A directive that names spans (`[task]=debug`, `[task{key=…}]`) is matched against the
    // spans in scope when a line is checked, before it is logged: task spans then exist from
    // the start.
    let deferred = Deferral(!rust_log.contains('['));
    let fmt = subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    if json {
        Dispatch::new(DeferredTasks::new(
            Registry::default().with(fmt.json()).with(filter),
            deferred,
        ))
    } else {
        Dispatch::new(DeferredTasks::new(
            Registry::default().with(fmt).with(filter),
            deferred,
        ))
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
    /// Under [`init_tracing`]'s subscriber: made when the task first needs it ([`DeferredSpan`]).
    Deferred,
    /// Any other subscriber: made as the task starts, with its four fields.
    Fields,
}

impl TaskSpans {
    /// Under the current subscriber.
    pub(crate) fn current() -> Self {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return TaskSpans::Off;
        }
        tracing::dispatcher::get_default(|d| match d.downcast_ref::<Deferral>() {
            Some(Deferral(true)) => TaskSpans::Deferred,
            _ => TaskSpans::Fields,
        })
    }
}

/// The `task` span with its four fields, quoted and escaped in text logs so that a key with a
/// newline or an ANSI escape cannot forge log lines or fields; as they are in JSON logs, which
/// escape them anyway.
pub(crate) fn task_span(job_id: &str, task_id: &str, bucket: &str, key: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "task",
        job_id = %Escaped::field(job_id),
        task_id = %Escaped::field(task_id),
        bucket = %Escaped::field(bucket),
        key = %Escaped::field(key),
    )
}

/// Whether [`DeferredTasks`] defers task spans; what [`TaskSpans::current`] finds by
/// downcasting the current dispatcher.
struct Deferral(bool);

/// A task's span, not made until the task needs it: the task's values, then the span.
pub(crate) struct DeferredSpan {
    /// The job id, task id, bucket and key, one after another.
    values: String,
    /// Where each of the four ends in `values`.
    ends: [usize; 4],
    span: Option<Span>,
}

impl DeferredSpan {
    /// Boxed: a task future holds a pointer, not the values, when there is no subscriber.
    pub(crate) fn new(parts: [&str; 4]) -> Box<Self> {
        let mut values = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; 4];
        for (part, end) in parts.iter().zip(&mut ends) {
            values.push_str(part);
            *end = values.len();
        }
        Box::new(Self {
            values,
            ends,
            span: None,
        })
    }

    fn parts(&self) -> [&str; 4] {
        let [a, b, c, d] = self.ends;
        let v = &self.values;
        [&v[..a], &v[a..b], &v[b..c], &v[c..d]]
    }
}

thread_local! {
    /// The deferred span of the task being polled on this thread, if any.
    static CURRENT_TASK: RefCell<Option<Box<DeferredSpan>>> = const { RefCell::new(None) };
}

/// Runs `f` (a poll of the task, or its drop) as the task whose span `slot` holds: its span,
/// if made, entered; otherwise made by the first call that needs it (see [`DeferredTasks`]).
/// `None` runs `f` as it is.
pub(crate) fn in_task<R>(slot: &mut Option<Box<DeferredSpan>>, f: impl FnOnce() -> R) -> R {
    let Some(task) = slot.take() else {
        return f();
    };
    if let Some(span) = &task.span {
        enter(span);
    }
    /// Puts the task back in `slot` and the thread's previous task back in place, also when
    /// `f` unwinds.
    struct Restore<'a> {
        slot: &'a mut Option<Box<DeferredSpan>>,
        previous: Option<Box<DeferredSpan>>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let task = CURRENT_TASK.with(|c| c.replace(self.previous.take()));
            if let Some(span) = task.as_ref().and_then(|t| t.span.as_ref()) {
                exit(span);
            }
            *self.slot = task;
        }
    }
    let previous = CURRENT_TASK.with(|c| c.replace(Some(task)));
    let _restore = Restore { slot, previous };
    f()
}

fn enter(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
}

fn exit(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
}

/// Whether the task being polled on this thread has its span deferred and not made yet.
fn current_task_needs_span() -> bool {
    CURRENT_TASK.with(|c| matches!(&*c.borrow(), Some(t) if t.span.is_none()))
}

/// Makes, under `dispatch`, and enters the span of the task being polled on this thread, if
/// it has none yet.
fn make_current_task_span(dispatch: &Dispatch) {
    // Taken out while the span is made: making it comes back through `DeferredTasks`.
    let Some(mut task) = CURRENT_TASK.with(|c| c.borrow_mut().take()) else {
        return;
    };
    if task.span.is_none() {
        let span = deferred_task_span(dispatch, task.parts());
        enter(&span);
        task.span = Some(span);
    }
    CURRENT_TASK.with(|c| *c.borrow_mut() = Some(task));
}

/// The `task` span of [`task_span`], made under `dispatch` directly: it is made from inside
/// the subscriber's own calls, where the span macros, which look the current dispatcher up,
/// would find none.
fn deferred_task_span(dispatch: &Dispatch, parts: [&str; 4]) -> Span {
    TASK_CALLSITE.register();
    if !dispatch.enabled(&TASK) {
        return Span::none();
    }
    let fields = TASK.fields();
    let mut names = fields.iter();
    let [Some(job_id), Some(task_id), Some(bucket), Some(key)] = [(); 4].map(|()| names.next())
    else {
        return Span::none();
    };
    let [j, t, b, k] = parts.map(|p| display(Escaped::field(p)));
    let values = [
        (&job_id, Some(&j as &dyn Value)),
        (&task_id, Some(&t as &dyn Value)),
        (&bucket, Some(&b as &dyn Value)),
        (&key, Some(&k as &dyn Value)),
    ];
    Span::new_with(&TASK, &fields.value_set(&values), dispatch)
}

/// The metadata of the `task` span [`deferred_task_span`] makes: that of [`task_span`]'s.
static TASK: Metadata<'static> = Metadata::new(
    "task",
    TARGET,
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(
        &["job_id", "task_id", "bucket", "key"],
        Identifier(&TASK_CALLSITE),
    ),
    Kind::SPAN,
);
static TASK_CALLSITE: DefaultCallsite = DefaultCallsite::new(&TASK);

/// lambda_runtime's default subscriber (`inner`), which makes the span of the task being
/// polled when something needs it: an event or a span created in the current span's context,
/// or a request for the current span. Everything else is passed on as it is.
///
/// Hot path: with Lambda's INFO subscriber, a task span made for every task cost ~2,900
/// instructions per task at 1 task and ~2,600 at 100 (round `bc899fe`, the span made up front
/// with its fields' formatting deferred); deferred, a task that logs nothing pays 584 / 556
/// (BENCHMARKS.md §1, "span cost per task": s3batch+subscriber minus s3batch, as deployed;
/// `SECTIONS=5 bench/run.sh`). The plain form is lambda_runtime's subscriber as it is.
struct DeferredTasks<S> {
    inner: S,
    deferral: Deferral,
    /// The dispatcher this subscriber is in, to make task spans under.
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> DeferredTasks<S> {
    fn new(inner: S, deferral: Deferral) -> Self {
        Self {
            inner,
            deferral,
            dispatch: OnceLock::new(),
        }
    }

    fn make_current_task_span(&self) {
        if current_task_needs_span() {
            if let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) {
                make_current_task_span(&dispatch);
            }
        }
    }
}

impl<S: Subscriber> Subscriber for DeferredTasks<S> {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
        self.inner.on_register_dispatch(subscriber)
    }
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if span.is_contextual() {
            self.make_current_task_span();
        }
        self.inner.new_span(span)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values)
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows)
    }
    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner.event_enabled(event)
    }
    fn event(&self, event: &Event<'_>) {
        if event.is_contextual() {
            self.make_current_task_span();
        }
        self.inner.event(event)
    }
    fn enter(&self, span: &Id) {
        self.inner.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.inner.exit(span)
    }
    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }
    #[allow(deprecated)]
    fn drop_span(&self, id: Id) {
        self.inner.drop_span(id)
    }
    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
    fn current_span(&self) -> Current {
        self.make_current_task_span();
        self.inner.current_span()
    }
    // `unsafe` stays: `downcast_raw` is tracing's own `unsafe fn` (its caller,
    // `Dispatch::downcast_ref`, trusts the pointer to be a value of the type `id` names), and
    // overriding it is the only way a wrapping subscriber answers `downcast_ref` for what it
    // holds: `TaskSpans::current` finds the `Deferral` here, and what the wrapped subscriber
    // answers (its `Registry`, which the tests here look up, as tracing-error looks up its
    // layer's context) stays reachable. The default answers for `Self` only.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<Deferral>() {
            Some(&self.deferral as *const Deferral as *const ())
        } else {
            // SAFETY: passed on to the subscriber this wraps, as `Layered` does; what it
            // returns is its own answer for `id`, under the same contract.
            unsafe { self.inner.downcast_raw(id) }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{invoke, EventBuilder};
    use crate::{Object, TaskError};
    use std::sync::{Arc, Mutex};

    /// A `MakeWriter` that keeps what the subscriber writes (the runtime's tests use it too).
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

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
        pub(crate) fn text(&self) -> String {
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
        super::escape::TEST_JSON_LOGS.set(json);
        let _default = tracing::dispatcher::set_default(&dispatch);
        let r = invoke(logs, event()).await.unwrap();
        super::escape::TEST_JSON_LOGS.set(false);
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
    pub(crate) fn plain(text: &str) -> String {
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

    /// The fields of the span the registry has as current, as the fmt layer formatted them;
    /// read from the registry itself (`Span::current()` would make a deferred task span).
    fn current_span_fields() -> Option<String> {
        use lambda_runtime::tracing::subscriber::{
            fmt::{format::DefaultFields, FormattedFields},
            registry::LookupSpan,
        };
        tracing::dispatcher::get_default(|dispatch| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let id = registry.current_span().id()?.clone();
            let span = registry.span(&id)?;
            let extensions = span.extensions();
            let fields = extensions.get::<FormattedFields<DefaultFields>>()?;
            Some(format!("{}{{{}}}", span.name(), plain(&fields.fields)))
        })
    }

    #[tokio::test]
    async fn a_task_span_is_made_only_when_the_task_needs_it() {
        async fn task(obj: Object) -> Result<String, TaskError> {
            let before = current_span_fields();
            match obj.key.as_str() {
                "logs" => tracing::info!("now"),
                "span" => drop(tracing::info_span!("inner")),
                "current" => drop(tracing::Span::current()),
                _ => {}
            }
            let after = current_span_fields();
            Ok(format!("{before:?} {after:?}"))
        }
        let captured = Captured::default();
        let w = captured.clone();
        let _default =
            tracing::dispatcher::set_default(&subscriber(false, None, "", move || w.clone()));
        let event = EventBuilder::v2()
            .job_id("j")
            .object("b", "quiet")
            .object("b", "logs")
            .object("b", "span")
            .object("b", "current");
        let r = invoke(task, event).await.unwrap();
        let made = |i: usize, key: &str| {
            format!(
                r#"None Some("task{{job_id=\"j\" task_id=\"task-{i}\" bucket=\"b\" key=\"{key}\"}}")"#
            )
        };
        assert_eq!(r.results[0].result_string, "None None");
        for (i, key) in [(1, "logs"), (2, "span"), (3, "current")] {
            assert_eq!(r.results[i].result_string, made(i, key));
        }
        assert!(plain(&captured.text())
            .contains(r#"task{job_id="j" task_id="task-1" bucket="b" key="logs"}: now"#));
    }

    /// `Span::current()` in a task is its span, made then.
    #[tokio::test]
    async fn the_current_span_of_a_task_is_its_span() {
        async fn task(_: Object) -> Result<String, TaskError> {
            let current = tracing::Span::current();
            Ok(current.metadata().map_or("none", |m| m.name()).to_owned())
        }
        let _default =
            tracing::dispatcher::set_default(&subscriber(false, None, "", std::io::sink));
        let r = invoke(task, EventBuilder::v2().object("b", "k"))
            .await
            .unwrap();
        assert_eq!(r.results[0].result_string, "task");
    }

    #[tokio::test]
    async fn a_directive_on_span_fields_sees_the_task_fields() {
        // `RUST_LOG=[task{key}]=debug`: debug lines inside spans with a `key` field.
        // `RUST_LOG=[task]=debug`: debug lines inside spans named `task`. Either is matched
        // against the spans in scope before the line is logged: the task span exists then.
        for directive in ["[task{key}]=debug", "[task]=debug"] {
            let captured = Captured::default();
            let w = captured.clone();
            let dispatch = subscriber(false, None, directive, move || w.clone());
            let _default = tracing::dispatcher::set_default(&dispatch);
            // Callsites first registered by another test's thread while this dispatcher
            // registers can keep that thread's cached interest (tracing-core's global
            // callsite cache): register them with a first run, then rebuild the cache.
            invoke(logs, EventBuilder::v2().object("b", "quiet"))
                .await
                .unwrap();
            tracing::callsite::rebuild_interest_cache();
            captured.0.lock().unwrap().clear();
            let r = invoke(logs, EventBuilder::v2().object("b", "quiet"))
                .await
                .unwrap();
            assert_eq!(r.results[0].result_string, "quiet");
            let text = captured.text();
            assert!(
                text.contains("DEBUG") && text.contains("succeeded"),
                "{directive}: {text}"
            );
        }
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
}
