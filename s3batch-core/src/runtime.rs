//! Running tasks: options, the per-invocation [`Handler`], and the Lambda entry points.

use crate::envelope::{BadTask, Event, Invocation, InvocationError, Job, Object};
use crate::error::TaskError;
use crate::logging::{in_task, DeferredSpan, TaskSpans};
use crate::response::{
    check_minimum_size, fit_to_budget, truncate_result, Response, ResultCode, TaskResult,
    RESPONSE_BUDGET,
};
use crate::task::TaskFn;
use crate::BoxError;
use futures_util::future::{CatchUnwind, Either, OptionFuture};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::any::Any;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime};

/// How tasks are run; set from the attribute (`#[s3batch::task(concurrency = 8)]`) or built
/// by hand with [`Options::builder`] for [`run`] and [`Handler::new`].
///
/// The getters read what was set; the setters are on [`OptionsBuilder`], as `aws_sdk_s3`'s
/// `Config::builder()` / `Config` split them, so each reads as the plain name of what it is.
///
/// ```
/// use s3batch_core::{Options, ResultCode};
/// use std::time::Duration;
/// let options = Options::builder()
///     .concurrency(8)
///     .deadline_margin(Duration::from_millis(500))
///     .max_result_len(4096)
///     .treat_missing_keys_as(ResultCode::TemporaryFailure)
///     .build();
/// assert_eq!(options.concurrency(), 8);
/// assert_eq!(options.deadline_margin(), Duration::from_millis(500));
/// assert_eq!(Options::new().concurrency(), Options::DEFAULT_CONCURRENCY);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    treat_missing_keys_as: ResultCode,
    concurrency: usize,
    deadline_margin: Duration,
    max_result_len: usize,
    fallback_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            treat_missing_keys_as: ResultCode::PermanentFailure,
            concurrency: Self::DEFAULT_CONCURRENCY,
            deadline_margin: Self::DEFAULT_DEADLINE_MARGIN,
            max_result_len: Self::DEFAULT_MAX_RESULT_LEN,
            fallback_timeout: None,
        }
    }
}

impl Options {
    /// Tasks of one invocation run at once, at most (S3 sends one task per invocation today).
    pub const DEFAULT_CONCURRENCY: usize = 64;
    /// How long before the Lambda deadline unfinished tasks are given up.
    pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_millis(1000);
    /// The longest `resultString`, in bytes.
    pub const DEFAULT_MAX_RESULT_LEN: usize = 1024;

    /// The defaults: `PermanentFailure` for missing keys, 64 tasks at once, a one-second
    /// deadline margin, results of at most 1,024 bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder(Self::default())
    }

    /// The `treatMissingKeysAs` of every response; see
    /// [`OptionsBuilder::treat_missing_keys_as`].
    pub fn treat_missing_keys_as(&self) -> ResultCode {
        self.treat_missing_keys_as
    }

    /// How many tasks of one invocation run at once (at least 1); see
    /// [`OptionsBuilder::concurrency`].
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How long before the Lambda deadline unfinished tasks are given up; see
    /// [`OptionsBuilder::deadline_margin`].
    pub fn deadline_margin(&self) -> Duration {
        self.deadline_margin
    }

    /// The longest `resultString` in bytes; see [`OptionsBuilder::max_result_len`].
    pub fn max_result_len(&self) -> usize {
        self.max_result_len
    }

    /// The function timeout used when the runtime gives no usable deadline; see
    /// [`OptionsBuilder::fallback_timeout`].
    pub fn fallback_timeout(&self) -> Option<Duration> {
        self.fallback_timeout
    }
}

/// Sets [`Options`]: start from [`Options::builder`], end with [`OptionsBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an options builder does nothing until `build` is called"]
pub struct OptionsBuilder(Options);

impl Default for OptionsBuilder {
    fn default() -> Self {
        Options::builder()
    }
}

impl OptionsBuilder {
    /// The `treatMissingKeysAs` of every response.
    pub fn treat_missing_keys_as(mut self, code: ResultCode) -> Self {
        self.0.treat_missing_keys_as = code;
        self
    }

    /// How many tasks of one invocation run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.0.concurrency = n.max(1);
        self
    }

    /// How long before the Lambda deadline the response is sent, with every task still
    /// running reported as `TemporaryFailure`.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.0.deadline_margin = margin;
        self
    }

    /// The longest `resultString` in bytes; longer ones are cut on a character boundary and
    /// end with `…[truncated N bytes]`. Whatever this is, the whole response is kept under
    /// [`RESPONSE_BUDGET`] (see [`fit_to_budget`]).
    pub fn max_result_len(mut self, bytes: usize) -> Self {
        self.0.max_result_len = bytes;
        self
    }

    /// The function's timeout, for when the runtime gives no usable deadline: each
    /// invocation's deadline is then its start plus this. Emulators need it: `cargo lambda
    /// watch` sends the constant `Lambda-Runtime-Deadline-Ms: 600000` (1970), which is not a
    /// deadline. [`run`] sets it from `AWS_LAMBDA_FUNCTION_TIMEOUT` (seconds, the variable the
    /// AWS Lambda Runtime Interface Emulator reads) unless set here.
    pub fn fallback_timeout(mut self, timeout: Duration) -> Self {
        self.0.fallback_timeout = Some(timeout);
        self
    }

    /// The options.
    pub fn build(self) -> Options {
        self.0
    }
}

/// The message of a task still running at the deadline.
pub const DEADLINE_MESSAGE: &str = "did not finish before the Lambda deadline";

/// A task function with its extractor state, ready to handle events.
///
/// This is everything the generated `main` does per event, without Lambda around it: use it
/// from your own `main`, a test, or a benchmark.
///
/// ```
/// use s3batch_core::{Handler, Object, Options, TaskError};
///
/// async fn size(obj: Object) -> Result<usize, TaskError> {
///     Ok(obj.key.len())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let handler = Handler::new(size, Options::new()).await.unwrap();
/// let event = br#"{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},
///   "tasks":[{"taskId":"t","s3Key":"a+b","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}]}"#;
/// let response = handler.handle_bytes(event, &Default::default()).await.unwrap();
/// assert_eq!(response.results[0].result_string, "3");
/// # });
/// ```
pub struct Handler<T: TaskFn<Args>, Args> {
    task: T,
    state: T::State,
    options: Options,
    _args: PhantomData<fn() -> Args>,
}

impl<T: TaskFn<Args>, Args> Handler<T, Args> {
    /// Builds every extractor's state (the cold-start work).
    pub async fn new(task: T, options: Options) -> Result<Self, BoxError> {
        Ok(Self::with_state(task, T::init_state().await?, options))
    }

    /// A handler with state you built yourself (to share one S3 client across handlers,
    /// say).
    pub fn with_state(task: T, state: T::State, options: Options) -> Self {
        Self {
            task,
            state,
            options,
            _args: PhantomData,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Handles raw event bytes; fails only when they are not JSON or the ids cannot be
    /// recovered. The bytes are read before this returns; the future runs the tasks.
    pub fn handle_bytes<'a>(
        &'a self,
        event: &[u8],
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<Response, InvocationError>> + Send + 'a {
        match Event::from_slice(event) {
            Ok(event) => Either::Left(self.handle(event, context)),
            Err(err) => Either::Right(std::future::ready(Err(err))),
        }
    }

    /// Handles one event: exactly one result per task, in the order of `tasks`. The event is
    /// checked before this returns (an event that cannot be answered fails without running
    /// any task); the future runs the tasks.
    pub fn handle<'a>(
        &'a self,
        event: Event,
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<Response, InvocationError>> + Send + 'a {
        // Not an `async fn`, which would keep the event in its future while the tasks run.
        match answerable(event) {
            Ok(Invocation { job, tasks }) => Either::Left(self.run(job, tasks, context).map(Ok)),
            Err(err) => Either::Right(std::future::ready(Err(err))),
        }
    }

    /// Runs the tasks of an answerable invocation: its response.
    async fn run(
        &self,
        job: Job,
        tasks: Vec<Result<Object, BadTask>>,
        context: &lambda_runtime::Context,
    ) -> Response {
        // Under `init_tracing`'s subscriber, task spans format their fields only if they log;
        // when nothing records INFO spans there are none.
        let spans = TaskSpans::current();
        let mut results = if let [_] = tasks.as_slice() {
            // S3 sends one task per invocation: run it directly.
            let task = tasks.into_iter().next().expect("one task");
            vec![match task {
                Err(bad) => unreadable_task(&job, bad),
                Ok(object) => {
                    let (task_id, run) = self.start_one(&job, context, object, spans);
                    match BeforeDeadline::new(run, context, &self.options).await {
                        Some((code, text)) => TaskResult::new(task_id, code, text),
                        None => {
                            warn_deadline(&job);
                            TaskResult::new(task_id, ResultCode::TemporaryFailure, DEADLINE_MESSAGE)
                        }
                    }
                }
            }]
        } else {
            // Boxed: the future of one task, the usual case, stays small (it is moved as a
            // whole on its way to the runtime).
            Box::pin(self.run_all(&job, context, tasks, spans)).await
        };
        let max = self.options.max_result_len;
        for r in &mut results {
            truncate_result(&mut r.result_string, max);
        }
        let mut response = Response {
            invocation_schema_version: job.schema_version,
            treat_missing_keys_as: self.options.treat_missing_keys_as,
            invocation_id: job.invocation_id,
            results,
        };
        fit_to_budget(&mut response, RESPONSE_BUDGET);
        response
    }

    /// The task's id and its run, for a task run alone. (The `Object` is not borrowed in
    /// [`Handler::run`]'s future, which would keep room for it there.)
    fn start_one<'a>(
        &'a self,
        job: &'a Job,
        context: &'a lambda_runtime::Context,
        object: Object,
        spans: TaskSpans,
    ) -> (
        String,
        DropCaught<impl Future<Output = (ResultCode, String)> + 'a>,
    ) {
        let task_id = object.task_id.clone();
        (
            task_id,
            DropCaught::new(self.run_one(job, context, object, spans)),
        )
    }

    /// The results of all the tasks, in order, at most `concurrency` at once.
    async fn run_all(
        &self,
        job: &Job,
        context: &lambda_runtime::Context,
        tasks: Vec<Result<Object, BadTask>>,
        spans: TaskSpans,
    ) -> Vec<TaskResult> {
        let mut slots = Slots::new(tasks.len());
        let mut tasks = tasks;
        for (i, task) in tasks.iter_mut().enumerate() {
            match task {
                Ok(_) => slots.results.push(TaskResult::new(
                    String::new(),
                    ResultCode::TemporaryFailure,
                    String::new(),
                )),
                Err(bad) => {
                    slots
                        .results
                        .push(unreadable_task(job, std::mem::take(bad)));
                    slots.finished[i] = true;
                }
            }
        }
        // The objects stay where they are until their task starts.
        let mut runnable = tasks
            .into_iter()
            .enumerate()
            .filter_map(|(i, task)| Some((i, task.ok()?)));
        let collect = async {
            // Each task is polled once as it starts; only one that is still pending (it
            // awaits I/O) joins the tasks in flight, at most `concurrency` of them. A task
            // that finishes at once costs no scheduling, and the box it started in is reused
            // by the next task (see bench/analysis.md).
            let mut in_flight = FuturesUnordered::new();
            let mut staged: Option<Pin<Box<OptionFuture<_>>>> = None;
            for (i, object) in runnable.by_ref() {
                // The result's copy of the id, made as the task starts.
                slots.results[i].task_id = object.task_id.clone();
                let task = DropCaught::new(self.run_one(job, context, object, spans));
                let slot = match &mut staged {
                    Some(slot) => {
                        slot.set(Some(task).into());
                        slot
                    }
                    None => staged.insert(Box::pin(Some(task).into())),
                };
                match std::future::poll_fn(|cx| Poll::Ready(slot.as_mut().poll(cx))).await {
                    Poll::Ready(r) => {
                        slot.set(None.into());
                        slots.finish(i, r.expect("a staged task is present"));
                    }
                    Poll::Pending => {
                        let task = staged.take().expect("the task just polled");
                        in_flight.push(task.map(move |r| (i, r.expect("a task in flight"))));
                        if in_flight.len() >= self.options.concurrency {
                            if let Some((i, r)) = in_flight.next().await {
                                slots.finish(i, r);
                            }
                        }
                    }
                }
            }
            while let Some((i, r)) = in_flight.next().await {
                slots.finish(i, r);
            }
        };
        if BeforeDeadline::new(collect, context, &self.options)
            .await
            .is_none()
        {
            warn_deadline(job);
        }
        // The tasks the deadline left unstarted: their ids, moved.
        for (i, object) in runnable {
            slots.results[i].task_id = object.task_id;
        }
        slots.into_results()
    }

    /// One task, to run in its span: the code and text of its result.
    fn run_one<'a>(
        &'a self,
        job: &'a Job,
        context: &'a lambda_runtime::Context,
        object: Object,
        spans: TaskSpans,
    ) -> impl Future<Output = (ResultCode, String)> + 'a {
        // Under `init_tracing`'s subscriber the span is made only if the task needs it.
        let (span, deferred) = match spans {
            TaskSpans::Off => (tracing::Span::none(), None),
            TaskSpans::Deferred => (
                tracing::Span::none(),
                Some(DeferredSpan::new([
                    &job.id,
                    &object.task_id,
                    &object.bucket,
                    &object.key,
                ])),
            ),
            TaskSpans::Fields => (
                crate::logging::task_span(&job.id, &object.task_id, &object.bucket, &object.key),
                None,
            ),
        };
        // Whether the key is only whitespace (or empty): looks at the first byte only, unless
        // the key starts with whitespace or a non-ASCII character.
        let blank = match object.key.as_bytes().first() {
            // Most keys start with a visible ASCII character.
            Some(b) if b.is_ascii_graphic() => false,
            _ => object.key.trim_start().is_empty(),
        };
        let blank_key = blank.then(|| object.key.clone());
        // Building the parameters runs in the first poll, inside the span: a panic there is
        // caught too and is the task's outcome.
        let start = move || self.task.call(&self.state, job, context, object);
        TaskRun {
            span,
            deferred,
            blank_key,
            stage: Stage::Start { start: Some(start) },
        }
    }
}

pin_project_lite::pin_project! {
    /// A task's future inside its span (entered for each poll, like `future.instrument(span)`),
    /// with its outcome turned into a result code and text and logged there. Its parameters
    /// are built in the first poll (a panic there is caught too). A task that has finished is
    /// dropped at once, inside the poll that finished it (`Instrumented` enters the span once
    /// more to drop it); a task dropped before it finishes (at the deadline) is dropped inside
    /// its span, so whatever its destructors log carries its fields. Written out rather than
    /// as an `async` block so that it holds the task's future once (see bench/analysis.md).
    struct TaskRun<C, F> {
        // The task's span, made as it starts; or none, and then, under `init_tracing`'s
        // subscriber, the span made when the task first needs it.
        span: tracing::Span,
        deferred: Option<Box<DeferredSpan>>,
        // The key, when it is only whitespace (to explain the SDK's "key was missing").
        blank_key: Option<String>,
        #[pin]
        stage: Stage<C, F>,
    }
    impl<C, F> PinnedDrop for TaskRun<C, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if !matches!(*this.stage, Stage::Done) {
                let _entered = this.span.enter();
                in_task(this.deferred, || this.stage.set(Stage::Done));
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// Where a [`TaskRun`] is.
    #[project = StageProj]
    enum Stage<C, F> {
        /// Not polled yet: builds the parameters and calls the task.
        Start { start: Option<C> },
        Running { #[pin] call: CatchUnwind<AssertUnwindSafe<F>> },
        /// Building the parameters panicked.
        Panicked { panic: Option<Box<dyn Any + Send>> },
        Done,
    }
}

impl<C, F> Future for TaskRun<C, F>
where
    C: FnOnce() -> F,
    F: Future<Output = Result<String, TaskError>>,
{
    type Output = (ResultCode, String);
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let (mut stage, blank_key) = (this.stage, this.blank_key);
        in_task(this.deferred, || {
            if let StageProj::Start { start } = stage.as_mut().project() {
                let start = start.take().expect("a task starts once");
                stage.set(match catch_unwind(AssertUnwindSafe(start)) {
                    Ok(call) => Stage::Running {
                        call: AssertUnwindSafe(call).catch_unwind(),
                    },
                    Err(panic) => Stage::Panicked { panic: Some(panic) },
                });
            }
            let outcome = match stage.as_mut().project() {
                StageProj::Running { call } => std::task::ready!(call.poll(cx)),
                StageProj::Panicked { panic } => {
                    Err(panic.take().expect("a panic is reported once"))
                }
                StageProj::Start { .. } | StageProj::Done => {
                    panic!("a TaskRun is not polled after it finished")
                }
            };
            stage.set(Stage::Done);
            Poll::Ready(outcome_of(outcome, blank_key.take()))
        })
    }
}

/// A task's outcome as a result code and text, logged (inside the task's span).
fn outcome_of(
    outcome: Result<Result<String, TaskError>, Box<dyn Any + Send>>,
    blank_key: Option<String>,
) -> (ResultCode, String) {
    match outcome {
        Ok(Ok(text)) => {
            tracing::debug!("succeeded");
            (ResultCode::Succeeded, text)
        }
        Ok(Err(mut err)) => {
            if let Some(key) = blank_key {
                err = explain_blank_key(err, &key);
            }
            tracing::warn!(kind = ?err.kind(), "{}", Escaped::text(err.message()));
            (err.kind().into(), err.message().to_owned())
        }
        Err(panic) => {
            let message = match panic_message(&*panic) {
                "" => PANIC_WITHOUT_MESSAGE.to_owned(),
                message => format!("task panicked: {message}"),
            };
            // The payload is the task's value: its destructor may panic too.
            drop_quietly(panic);
            tracing::error!("{}", Escaped::text(&message));
            (ResultCode::PermanentFailure, message)
        }
    }
}

/// The event's ids and tasks, when a response can answer it: its ids were recovered and its
/// results fit Lambda's response limit even with empty `resultString`s.
fn answerable(event: Event) -> Result<Invocation, InvocationError> {
    let invocation = event.into_invocation()?;
    let job = &invocation.job;
    let task_ids = invocation.tasks.iter().map(|t| match t {
        Ok(object) => object.task_id.as_str(),
        Err(bad) => bad.task_id.as_str(),
    });
    match check_minimum_size(
        &job.schema_version,
        &job.invocation_id,
        task_ids,
        RESPONSE_BUDGET,
    ) {
        Ok(()) => Ok(invocation),
        Err(least) => Err(InvocationError(format!(
            "event has too many tasks to answer: {} results with empty resultStrings take \
             {least} bytes, over Lambda's response limit of {} bytes less headroom ({} \
             bytes); no task was run",
            invocation.tasks.len(),
            crate::response::LAMBDA_RESPONSE_LIMIT,
            RESPONSE_BUDGET,
        ))),
    }
}

/// The results of an invocation's tasks as they finish. A slot starts as the result of a task
/// still running at the deadline (`TemporaryFailure`, and [`DEADLINE_MESSAGE`] once
/// [`Slots::into_results`] finds it unfinished); a task that finishes overwrites it.
struct Slots {
    results: Vec<TaskResult>,
    finished: Vec<bool>,
}

impl Slots {
    fn new(tasks: usize) -> Self {
        Self {
            results: Vec::with_capacity(tasks),
            finished: vec![false; tasks],
        }
    }

    /// The results, with the deadline's message for every task that did not finish.
    fn into_results(mut self) -> Vec<TaskResult> {
        for (result, finished) in self.results.iter_mut().zip(self.finished) {
            if !finished {
                result.result_string = DEADLINE_MESSAGE.to_owned();
            }
        }
        self.results
    }

    fn finish(&mut self, i: usize, (code, text): (ResultCode, String)) {
        self.results[i].result_code = code;
        self.results[i].result_string = text;
        self.finished[i] = true;
    }
}

/// The result of a task that could not be read, logged as a warning.
fn unreadable_task(job: &Job, bad: BadTask) -> TaskResult {
    tracing::warn!(
        job_id = %Escaped::field(&job.id),
        task_id = %Escaped::field(&bad.task_id),
        "{}",
        Escaped::text(&bad.message)
    );
    TaskResult::new(bad.task_id, ResultCode::PermanentFailure, bad.message)
}

fn warn_deadline(job: &Job) {
    tracing::warn!(
        job_id = %Escaped::field(&job.id),
        "deadline reached; reporting unfinished tasks as TemporaryFailure"
    );
}

pin_project_lite::pin_project! {
    /// `work` until it finishes (`Some` of its output) or the deadline passes (`None`; `work`
    /// is dropped with this future). Like `tokio::time::timeout_at`, except that the deadline
    /// is read, and a timer made, only if `work` waits: a task that finishes in its first
    /// poll costs no clock and no timer. The deadline is a point in time (the context's),
    /// so reading it late does not move it.
    struct BeforeDeadline<'a, F> {
        #[pin]
        work: F,
        // `None` until `work` first waits; then the timer, or `None` for no deadline. Boxed:
        // most tasks never wait, and a timer is larger than a task's future.
        timer: Option<Option<Pin<Box<tokio::time::Sleep>>>>,
        context: &'a lambda_runtime::Context,
        options: &'a Options,
    }
}

impl<'a, F> BeforeDeadline<'a, F> {
    fn new(work: F, context: &'a lambda_runtime::Context, options: &'a Options) -> Self {
        Self {
            work,
            timer: None,
            context,
            options,
        }
    }
}

impl<F: Future> Future for BeforeDeadline<'_, F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = this.timer.get_or_insert_with(|| {
            deadline(this.context, this.options).map(|at| Box::pin(tokio::time::sleep_until(at)))
        });
        match timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// What aws-sdk-s3 says, before sending anything, about a request whose key is empty or only
/// whitespace (its endpoint parameters refuse `key.trim().is_empty()`).
const SDK_MISSING_KEY: &str = "key was missing";

/// A task about a key that is only whitespace, failed with the SDK's "key was missing": says
/// what happened instead (the key was there; the SDK cannot send requests for it). Other
/// errors are kept as they are.
fn explain_blank_key(err: TaskError, key: &str) -> TaskError {
    if !err.message().contains(SDK_MISSING_KEY) {
        return err;
    }
    TaskError::new(
        err.kind(),
        format!(
            "the key is only whitespace ({:?}): aws-sdk-s3 cannot send requests for such keys \
             (it reported: {})",
            key,
            err.message()
        ),
    )
}

/// The message of a task whose panic message is empty: `panic!("")`, or a message whose
/// formatting failed (`panic!("{}", x)` where `x`'s `Display` returns an error leaves the
/// message empty or cut short). A `Display` that itself panics while the panic message is
/// formatted aborts the process: Rust gives no way to catch that.
pub const PANIC_WITHOUT_MESSAGE: &str =
    "task panicked (the panic message is empty or could not be formatted)";

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(panic payload is not a string)"
    }
}

/// Drops a panic payload, catching a panic of its destructor (whose own payload is leaked
/// rather than dropped: it could panic again).
fn drop_quietly(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// A task's future, dropped inside `catch_unwind`: at the deadline the unfinished tasks are
/// dropped, and a destructor that panics there (a guard in the task, a value it holds) would
/// otherwise end the whole invocation as "Lambda panicked", losing its neighbours' results.
/// Once a task has finished, everything of it was dropped inside its `poll`, which runs
/// under `catch_unwind` already.
struct DropCaught<F> {
    inner: ManuallyDrop<F>,
}

impl<F> DropCaught<F> {
    fn new(inner: F) -> Self {
        Self {
            inner: ManuallyDrop::new(inner),
        }
    }
}

impl<F: Future> Future for DropCaught<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is pinned structurally: it is never moved out of `self`, and it is
        // dropped in place, once, in `Drop`.
        unsafe { self.map_unchecked_mut(|s| &mut *s.inner) }.poll(cx)
    }
}

impl<F> Drop for DropCaught<F> {
    fn drop(&mut self) {
        let inner = &mut self.inner;
        // SAFETY: the only place `inner` is dropped; it is not used afterwards.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(inner) }));
        if let Err(panic) = dropped {
            tracing::error!(
                "a task panicked while it was being dropped at the deadline: {}",
                Escaped::text(match panic_message(&*panic) {
                    "" => "(the panic message is empty or could not be formatted)",
                    m => m,
                })
            );
            drop_quietly(panic);
        }
    }
}

/// Set by [`init_tracing`] when logs are JSON lines (`AWS_LAMBDA_LOG_FORMAT=JSON`): the JSON
/// formatter escapes every value itself, so [`Escaped`] writes text as it is.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// A test's JSON logs on its own thread, without changing [`JSON_LOGS`] for the others.
    pub(crate) static TEST_JSON_LOGS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn json_logs() -> bool {
    #[cfg(test)]
    if TEST_JSON_LOGS.get() {
        return true;
    }
    JSON_LOGS.load(Ordering::Relaxed)
}

/// Text from the event or a task (keys, ids, error and panic messages) made safe for text
/// logs, so that it cannot forge a log line or a field, or colour a terminal. A field is
/// quoted and escaped as Rust's `Debug` does (`key="a\nb"`); in a message, control characters
/// (newline, carriage return, ESC, C1 controls…), line and paragraph separators and
/// bidirectional overrides are written as Rust escapes (`\n`, `\u{1b}`). With JSON logs the
/// text is written as it is. Formatted only when a log line is written; text needing no
/// escape is written in one piece.
pub(crate) struct Escaped<'a> {
    text: &'a str,
    quoted: bool,
}

impl<'a> Escaped<'a> {
    /// A field value: quoted in text logs.
    pub(crate) fn field(text: &'a str) -> Self {
        Self { text, quoted: true }
    }

    /// Part of a message: not quoted.
    pub(crate) fn text(text: &'a str) -> Self {
        Self {
            text,
            quoted: false,
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if json_logs() {
            return f.write_str(self.text);
        }
        if self.quoted {
            // What `Debug` writes, without its per-character work when nothing needs an
            // escape (`char::escape_debug` escapes at least what `str`'s `Debug` does).
            let plain = self.text.chars().all(|c| match c {
                '"' | '\\' => false,
                ' '..='~' => true,
                c => !c.is_ascii() && c.escape_debug().len() == 1,
            });
            if !plain {
                return fmt::Debug::fmt(self.text, f);
            }
            f.write_char('"')?;
            f.write_str(self.text)?;
            return f.write_char('"');
        }
        let mut rest = self.text;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found above");
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// How far in the past a deadline may lie and still be one: Lambda ends an invocation at its
/// deadline, so anything much older is a placeholder (`Context::default()` has 0, `cargo
/// lambda watch` sends 600000), not a time. The hour leaves room for clock skew.
const IMPLAUSIBLY_OLD: Duration = Duration::from_secs(3600);

/// When to give up on unfinished tasks: the context's deadline less the margin. A deadline
/// that is not a time (see [`IMPLAUSIBLY_OLD`]) is replaced by now plus the options'
/// fallback timeout, or else means none.
fn deadline(context: &lambda_runtime::Context, options: &Options) -> Option<tokio::time::Instant> {
    let now = SystemTime::now();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(context.deadline);
    let left = match at.duration_since(now) {
        Ok(left) => left,
        Err(past) if past.duration() <= IMPLAUSIBLY_OLD => Duration::ZERO,
        Err(_) => options.fallback_timeout?,
    };
    Some(tokio::time::Instant::now() + left.saturating_sub(options.deadline_margin))
}

/// `AWS_LAMBDA_FUNCTION_TIMEOUT` in seconds, when set to a positive number.
fn timeout_from_env() -> Option<Duration> {
    parse_timeout(&std::env::var("AWS_LAMBDA_FUNCTION_TIMEOUT").ok()?)
}

/// A positive number of seconds that a `Duration` can hold; anything else is no timeout
/// (never a panic at start: `1e300` does not fit a `Duration`).
fn parse_timeout(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Serves the task on the Lambda Runtime API until the process is stopped: what the
/// generated `main` runs. Call it from your own `main` with `#[s3batch::task(main = false)]`.
///
/// ```no_run
/// use s3batch_core::{run, Object, Options, TaskError};
///
/// async fn noop(_: Object) -> Result<(), TaskError> {
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), s3batch_core::BoxError> {
///     s3batch_core::init_tracing();
///     run(noop, Options::builder().concurrency(4).build()).await
/// }
/// ```
pub async fn run<T: TaskFn<Args>, Args>(task: T, mut options: Options) -> Result<(), BoxError> {
    if options.fallback_timeout.is_none() {
        options.fallback_timeout = timeout_from_env();
    }
    if cfg!(panic = "abort") {
        tracing::warn!(
            "built with panic = \"abort\" (cargo lambda's default for --release): a panicking task ends \
             the process and its invocation becomes a function error; add `[profile.release] \
             panic = \"unwind\"` to Cargo.toml so a panic is that task's PermanentFailure"
        );
    }
    let handler = Arc::new(Handler::new(task, options).await?);
    let bodies = Bodies::default();
    let taken = Arc::clone(&bodies);
    // The event reaches the handler as bytes (see `RawBody`); what lambda_runtime
    // deserializes is a stand-in `{}`.
    let service = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde::de::IgnoredAny>| {
            let handler = Arc::clone(&handler);
            let body = taken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&event.context.request_id)
                .unwrap_or_default();
            async move { handler.handle_bytes(&body, &event.context).await }
        },
    );
    // As `lambda_runtime::run`, with `RawBody` inside the tracing layer.
    lambda_runtime::Runtime::new(service)
        .layer(RawBodyLayer(bodies))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

/// The raw body of each invocation in flight, by request id.
type Bodies = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Takes each invocation's body before lambda_runtime deserializes it and hands it to the
/// handler through [`Bodies`], replacing it with `{}`. lambda_runtime would read the body with
/// serde_json, which fails the whole event (a function error) for one string that is not
/// valid Unicode; [`Handler::handle_bytes`] fails only the task holding it (see
/// [`Event::from_slice`]). Raw bytes also spare lambda_runtime's TRACE log, which fails the
/// invocation when the body is not UTF-8.
struct RawBodyLayer(Bodies);

impl<S> lambda_runtime::tower::Layer<S> for RawBodyLayer {
    type Service = RawBody<S>;
    fn layer(&self, inner: S) -> RawBody<S> {
        RawBody {
            inner,
            bodies: Arc::clone(&self.0),
        }
    }
}

/// The service of [`RawBodyLayer`].
struct RawBody<S> {
    inner: S,
    bodies: Bodies,
}

impl<S> lambda_runtime::tower::Service<lambda_runtime::LambdaInvocation> for RawBody<S>
where
    S: lambda_runtime::tower::Service<
        lambda_runtime::LambdaInvocation,
        Response = (),
        Error = BoxError,
    >,
{
    type Response = ();
    type Error = BoxError;
    type Future = RemoveAfter<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: lambda_runtime::LambdaInvocation) -> Self::Future {
        let body = Vec::from(std::mem::replace(&mut req.body, (&b"{}"[..]).into()));
        tracing::trace!(body = ?String::from_utf8_lossy(&body), "raw event received from Lambda");
        let id = req.context.request_id.clone();
        self.bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), body);
        RemoveAfter {
            call: Box::pin(self.inner.call(req)),
            bodies: Arc::clone(&self.bodies),
            id,
        }
    }
}

/// The future of [`RawBody`]: the invocation, then its body removed from [`Bodies`] (normally
/// the handler took it already; not when the invocation failed before reaching it).
struct RemoveAfter<F> {
    call: Pin<Box<F>>,
    bodies: Bodies,
    id: String,
}

impl<F: Future> Future for RemoveAfter<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        self.call.as_mut().poll(cx)
    }
}

impl<F> Drop for RemoveAfter<F> {
    fn drop(&mut self) {
        self.bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

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
    crate::logging::subscriber(json, level.as_deref(), &rust_log, std::io::stdout).init();
}

/// The generated `main`: tracing, a Tokio runtime, and [`run`].
pub fn main<T: TaskFn<Args>, Args>(task: T, options: Options) -> Result<(), BoxError> {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(task, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{invoke, invoke_with, EventBuilder};
    use crate::ErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn function_timeouts_that_no_duration_holds_are_no_timeout() {
        assert_eq!(parse_timeout(" 900 "), Some(Duration::from_secs(900)));
        assert_eq!(parse_timeout("0.5"), Some(Duration::from_millis(500)));
        for bad in ["1e300", "inf", "NaN", "0", "-3", "", "x"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    /// The builder alone: its defaults, and each setter read back by its getter. Nothing here
    /// runs `#[s3batch::task]` or a task; that the attribute's options reach the running
    /// handler is observed by `tests/renamed_crate.rs` (its binaries served as Lambdas), what
    /// each option does by the tests below (`options_apply`,
    /// `deadline_margin_sets_when_unfinished_tasks_are_given_up`,
    /// `concurrency_is_bounded_and_order_kept`).
    #[test]
    fn options_read_back_what_the_builder_set() {
        let defaults = Options::new();
        assert_eq!(defaults, Options::builder().build());
        assert_eq!(defaults.concurrency(), Options::DEFAULT_CONCURRENCY);
        assert_eq!(defaults.deadline_margin(), Options::DEFAULT_DEADLINE_MARGIN);
        assert_eq!(defaults.max_result_len(), Options::DEFAULT_MAX_RESULT_LEN);
        assert_eq!(
            defaults.treat_missing_keys_as(),
            ResultCode::PermanentFailure
        );
        assert_eq!(defaults.fallback_timeout(), None);

        let set = Options::builder()
            .concurrency(3)
            .deadline_margin(Duration::from_millis(250))
            .max_result_len(77)
            .treat_missing_keys_as(ResultCode::TemporaryFailure)
            .fallback_timeout(Duration::from_secs(9))
            .build();
        assert_eq!(set.concurrency(), 3);
        assert_eq!(set.deadline_margin(), Duration::from_millis(250));
        assert_eq!(set.max_result_len(), 77);
        assert_eq!(set.treat_missing_keys_as(), ResultCode::TemporaryFailure);
        assert_eq!(set.fallback_timeout(), Some(Duration::from_secs(9)));
        // The invariant the builder keeps: at least one task at a time.
        assert_eq!(Options::builder().concurrency(0).build().concurrency(), 1);
    }

    async fn echo(obj: Object) -> Result<String, TaskError> {
        Ok(format!(
            "{}|{}|{}",
            obj.bucket,
            obj.key,
            obj.version_id.unwrap_or_default()
        ))
    }

    /// aws-sdk-s3 refuses a key that is only whitespace before sending ("key was missing"):
    /// the task's message says the key is only whitespace. Offline: the SDK fails while
    /// building the request, so the mock HTTP client is never reached.
    #[cfg(feature = "s3")]
    #[tokio::test]
    async fn a_whitespace_only_key_says_so() {
        async fn s3_calls(obj: Object, s3: aws_sdk_s3::Client) -> Result<String, TaskError> {
            let (b, k) = (&obj.bucket, &obj.key);
            match obj.version_id.as_deref() {
                Some("get") => drop(s3.get_object().bucket(b).key(k).send().await?),
                Some("put") => drop(s3.put_object().bucket(b).key(k).send().await?),
                Some("copy") => drop(
                    s3.copy_object()
                        .copy_source("src/x")
                        .bucket(b)
                        .key(k)
                        .send()
                        .await?,
                ),
                Some("other") => return Err(TaskError::permanent("unrelated")),
                _ => drop(s3.head_object().bucket(b).key(k).send().await?),
            }
            Ok("sent".into())
        }
        let keys = [" ", "\t\u{3000}\n"];
        let mut event = EventBuilder::v2();
        for key in keys {
            for op in ["head", "get", "put", "copy"] {
                event = event.object_version("b", key, op);
            }
        }
        let event = event.object_version("b", " ", "other");
        let client = aws_sdk_s3::Client::from_conf(
            crate::testing::client_config()
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .build(),
        );
        let r = crate::testing::invoke_with_client(s3_calls, event, client)
            .await
            .unwrap();
        assert_eq!(r.results.len(), 9);
        for (i, key) in keys.iter().enumerate() {
            for res in &r.results[i * 4..i * 4 + 4] {
                assert_eq!(res.result_code, ResultCode::PermanentFailure);
                let expect = format!(
                    "the key is only whitespace ({key:?}): aws-sdk-s3 cannot send requests for such keys (it reported: "
                );
                assert!(
                    res.result_string.starts_with(&expect)
                        && res.result_string.contains("key was missing"),
                    "{}",
                    res.result_string
                );
            }
        }
        assert_eq!(r.results[8].result_string, "unrelated");
    }

    /// Only a whitespace key's "key was missing" is rewritten.
    #[test]
    fn explain_blank_key_keeps_other_errors() {
        let other = explain_blank_key(TaskError::temporary("busy"), " ");
        assert_eq!(
            (other.kind(), other.message()),
            (ErrorKind::Temporary, "busy")
        );
        let e = explain_blank_key(TaskError::temporary("x: key was missing: y"), " ");
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert!(e
            .message()
            .starts_with("the key is only whitespace (\" \")"));
    }

    #[tokio::test]
    async fn outcomes_map_to_result_codes() {
        async fn by_key(obj: Object) -> Result<String, TaskError> {
            match obj.key.as_str() {
                "ok" => Ok("fine".into()),
                "temp" => Err(TaskError::temporary("busy")),
                "perm" => Err(TaskError::permanent("gone")),
                _ => panic!("boom {}", obj.key),
            }
        }
        let event = EventBuilder::v1()
            .object("b", "ok")
            .object("b", "temp")
            .object("b", "perm")
            .object("b", "x");
        let r = invoke(by_key, event).await.unwrap();
        let got: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("task-0", ResultCode::Succeeded, "fine"),
                ("task-1", ResultCode::TemporaryFailure, "busy"),
                ("task-2", ResultCode::PermanentFailure, "gone"),
                (
                    "task-3",
                    ResultCode::PermanentFailure,
                    "task panicked: boom x"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn echoes_ids_and_schema() {
        let event = EventBuilder::v2()
            .invocation_id("inv-9")
            .object_version("b", "a b", "v")
            .user_argument("k", "v");
        let r = invoke(echo, event).await.unwrap();
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.invocation_schema_version, "2.0");
        assert_eq!(r.invocation_id, "inv-9");
        assert_eq!(r.treat_missing_keys_as, ResultCode::PermanentFailure);
        assert_eq!(r.results[0].result_string, "b|a b|v");
    }

    #[tokio::test]
    async fn panics_do_not_stop_the_handler() {
        async fn maybe_panic(obj: Object) -> Result<String, TaskError> {
            if obj.key == "bad" {
                panic!("no {}", obj.key)
            }
            Ok("ok".into())
        }
        let handler = Handler::new(maybe_panic, Options::new()).await.unwrap();
        for _ in 0..3 {
            let r = handler
                .handle_bytes(
                    &EventBuilder::v1()
                        .object("b", "bad")
                        .object("b", "good")
                        .to_bytes(),
                    &Default::default(),
                )
                .await
                .unwrap();
            assert_eq!(r.results.len(), 2);
            assert_eq!(r.results[0].result_code, ResultCode::PermanentFailure);
            assert!(r.results[0].result_string.contains("no bad"));
            assert_eq!(r.results[1].result_code, ResultCode::Succeeded);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_turns_slow_tasks_into_temporary_failures() {
        async fn slow(obj: Object) -> Result<String, TaskError> {
            if obj.key == "slow" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok("quick".into())
        }
        let deadline = SystemTime::now() + Duration::from_secs(5);
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let event = EventBuilder::v1().object("b", "slow").object("b", "fast");
        let r = invoke_with(slow, Options::new(), event, ctx).await.unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
        assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
        assert_eq!(r.results[0].task_id, "task-0");
        assert_eq!(r.results[1].result_code, ResultCode::Succeeded);
    }

    fn context_with_deadline(at: SystemTime) -> lambda_runtime::Context {
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        ctx
    }

    /// `deadline_margin` moves the moment tasks are given up: with a deadline 10 s away,
    /// tasks that sleep 1, 6, 8 and 9 s, and a margin of 3 s (given up at 7 s) or 1.5 s
    /// (8.5 s), exactly those still running then are `TemporaryFailure`; the others finish.
    #[tokio::test(start_paused = true)]
    async fn deadline_margin_sets_when_unfinished_tasks_are_given_up() {
        async fn nap(obj: Object) -> Result<String, TaskError> {
            let secs: u64 = obj.key.parse().unwrap();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok(format!("slept {secs}"))
        }
        let codes = |r: &Response| -> Vec<(String, ResultCode)> {
            r.results
                .iter()
                .map(|r| (r.result_string.clone(), r.result_code))
                .collect()
        };
        use ResultCode::{Succeeded as Ok_, TemporaryFailure as Temp};
        let late = || DEADLINE_MESSAGE.to_owned();
        for (margin_ms, expect) in [
            (
                3000,
                vec![
                    ("slept 1".to_owned(), Ok_),
                    ("slept 6".to_owned(), Ok_),
                    (late(), Temp),
                    (late(), Temp),
                ],
            ),
            (
                1500,
                vec![
                    ("slept 1".to_owned(), Ok_),
                    ("slept 6".to_owned(), Ok_),
                    ("slept 8".to_owned(), Ok_),
                    (late(), Temp),
                ],
            ),
        ] {
            let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(10));
            let event = ["1", "6", "8", "9"]
                .into_iter()
                .fold(EventBuilder::v1(), |e, k| e.object("b", k));
            let options = Options::builder()
                .deadline_margin(Duration::from_millis(margin_ms))
                .build();
            let r = invoke_with(nap, options.clone(), event, ctx.clone())
                .await
                .unwrap();
            assert_eq!(codes(&r), expect, "margin {margin_ms} ms");
            // One task alone takes another path (awaited directly): 8 s is late at a
            // 3 s margin, in time at 1.5 s.
            let r = invoke_with(nap, options, EventBuilder::v1().object("b", "8"), ctx)
                .await
                .unwrap();
            assert_eq!(codes(&r), expect[2..3], "margin {margin_ms} ms, one task");
        }
    }

    #[tokio::test]
    async fn past_deadline_fails_everything_temporarily() {
        let ctx = context_with_deadline(SystemTime::now() - Duration::from_secs(2));
        async fn never(_: Object) -> Result<String, TaskError> {
            std::future::pending().await
        }
        let r = invoke_with(
            never,
            Options::new(),
            EventBuilder::v1().object("b", "k"),
            ctx,
        )
        .await
        .unwrap();
        assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
    }

    /// At the deadline, a task still running and the tasks never started (concurrency 1)
    /// are each answered with their own id; one task alone keeps its id too.
    #[tokio::test]
    async fn tasks_never_started_keep_their_ids_at_the_deadline() {
        async fn never(_: Object) -> Result<String, TaskError> {
            std::future::pending().await
        }
        let soon = || context_with_deadline(SystemTime::now() + Duration::from_millis(1500));
        let one = Options::builder().concurrency(1).build();
        let event = EventBuilder::v2()
            .object("b", "a")
            .object("b", "b")
            .object("b", "c");
        let r = invoke_with(never, one.clone(), event, soon())
            .await
            .unwrap();
        let ids: Vec<_> = r.results.iter().map(|r| r.task_id.as_str()).collect();
        assert_eq!(ids, ["task-0", "task-1", "task-2"]);
        for r in &r.results {
            assert_eq!(r.result_code, ResultCode::TemporaryFailure);
            assert_eq!(r.result_string, DEADLINE_MESSAGE);
        }
        let r = invoke_with(never, one, EventBuilder::v2().object("b", "a"), soon())
            .await
            .unwrap();
        assert_eq!(r.results[0].task_id, "task-0");
        assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_order_kept() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        async fn track(obj: Object) -> Result<String, TaskError> {
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            // Later tasks finish first, so completion order differs from input order.
            let n: u64 = obj.key.parse().unwrap();
            tokio::time::sleep(Duration::from_millis(100 - n)).await;
            RUNNING.fetch_sub(1, Ordering::SeqCst);
            Ok(obj.key)
        }
        let mut event = EventBuilder::v1();
        for i in 0..40 {
            event = event.object("b", &i.to_string());
        }
        let r = invoke_with(
            track,
            Options::builder().concurrency(7).build(),
            event,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(PEAK.load(Ordering::SeqCst), 7);
        let keys: Vec<String> = r.results.iter().map(|r| r.result_string.clone()).collect();
        let expect: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(keys, expect);
    }

    #[tokio::test]
    async fn bad_tasks_fail_alone() {
        let event = EventBuilder::v1().object("b", "good").raw_task(
            serde_json::json!({"taskId": "t-bad", "s3Key": "%FF", "s3BucketArn": "arn:aws:s3:::b"}),
        );
        let r = invoke(echo, event).await.unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
        assert_eq!(r.results[1].task_id, "t-bad");
        assert_eq!(r.results[1].result_code, ResultCode::PermanentFailure);
        assert!(r.results[1].result_string.contains("s3Key \"%FF\""));
    }

    #[tokio::test]
    async fn options_apply() {
        async fn long(_: Object) -> Result<String, TaskError> {
            Ok("x".repeat(5000))
        }
        let options = Options::builder()
            .max_result_len(100)
            .treat_missing_keys_as(ResultCode::TemporaryFailure)
            .build();
        let r = invoke_with(
            long,
            options,
            EventBuilder::v1().object("b", "k"),
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(r.treat_missing_keys_as, ResultCode::TemporaryFailure);
        assert!(r.results[0].result_string.len() <= 100);
        assert!(r.results[0].result_string.ends_with("bytes]"));
        let default = invoke(long, EventBuilder::v1().object("b", "k"))
            .await
            .unwrap();
        assert!(default.results[0].result_string.len() <= Options::DEFAULT_MAX_RESULT_LEN);
    }

    #[tokio::test]
    async fn extractor_errors_fail_the_task() {
        #[derive(serde::Deserialize)]
        struct Args {
            #[allow(dead_code)]
            dest: String,
        }
        async fn needs_args(_: Object, _: crate::UserArgs<Args>) -> Result<(), TaskError> {
            Ok(())
        }
        let r = invoke(
            needs_args,
            EventBuilder::v2().object("b", "k").object("b", "l"),
        )
        .await
        .unwrap();
        // The loop below must not pass by running zero times.
        assert_eq!(r.results.len(), 2);
        for res in &r.results {
            assert_eq!(res.result_code, ResultCode::PermanentFailure);
            assert_eq!(res.result_string, "userArguments: missing field `dest`");
        }
        let ok = invoke(
            needs_args,
            EventBuilder::v2()
                .object("b", "k")
                .user_argument("dest", "d"),
        )
        .await
        .unwrap();
        assert_eq!(ok.results[0].result_code, ResultCode::Succeeded);
    }

    #[cfg(feature = "s3")]
    #[tokio::test]
    async fn every_extractor_in_any_order() {
        async fn all(
            obj: Object,
            ctx: lambda_runtime::Context,
            job: Job,
            s3: aws_sdk_s3::Client,
        ) -> Result<String, TaskError> {
            let _ = s3.config();
            Ok(format!(
                "{}:{}:{}:{}",
                job.id, job.schema_version, ctx.request_id, obj.key
            ))
        }
        let mut ctx = lambda_runtime::Context::default();
        ctx.request_id = "req".into();
        let r = invoke_with(
            all,
            Options::new(),
            EventBuilder::v1().job_id("J").object("b", "k"),
            ctx,
        )
        .await
        .unwrap();
        assert_eq!(r.results[0].result_string, "J:1.0:req:k");
    }

    #[tokio::test]
    async fn invocation_errors_surface() {
        let handler = Handler::new(echo, Options::new()).await.unwrap();
        let err = handler
            .handle_bytes(br#"{"tasks":[]}"#, &Default::default())
            .await
            .unwrap_err();
        assert!(err.message().contains("invocationId"));
        let empty = handler
            .handle_bytes(br#"{"invocationId":"i","tasks":[]}"#, &Default::default())
            .await
            .unwrap();
        assert!(empty.results.is_empty());
    }

    #[test]
    fn task_error_kinds_map() {
        assert_eq!(
            ResultCode::from(ErrorKind::Temporary),
            ResultCode::TemporaryFailure
        );
        assert_eq!(
            ResultCode::from(ErrorKind::Permanent),
            ResultCode::PermanentFailure
        );
    }

    #[tokio::test(start_paused = true)]
    async fn placeholder_deadlines_are_not_deadlines() {
        async fn nap(_: Object) -> Result<String, TaskError> {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok("woke".into())
        }
        // What `cargo lambda watch` sends: 600000 ms after the epoch.
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = 600_000;
        let event = EventBuilder::v1().object("b", "k");
        let r = invoke_with(nap, Options::new(), event.clone(), ctx.clone())
            .await
            .unwrap();
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
        // With a fallback timeout, that placeholder becomes now + timeout.
        let options = Options::builder()
            .fallback_timeout(Duration::from_secs(5))
            .build();
        let r = invoke_with(nap, options, event, ctx).await.unwrap();
        assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
    }

    /// Panics when dropped: stands for a guard or value whose destructor panics.
    struct PanicOnDrop(&'static str);

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("{} panicked in its destructor", self.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn destructor_panics_at_the_deadline_fail_only_that_task() {
        async fn guarded(obj: Object) -> Result<String, TaskError> {
            if obj.key.starts_with("hang") {
                let _guard = PanicOnDrop("guard");
                std::future::pending::<()>().await;
            }
            Ok(format!("done {}", obj.key))
        }
        let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
        let event = EventBuilder::v1()
            .object("b", "quick")
            .object("b", "hang-1")
            .object("b", "later")
            .object("b", "hang-2");
        let r = invoke_with(guarded, Options::new(), event, ctx.clone())
            .await
            .unwrap();
        let got: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("task-0", ResultCode::Succeeded, "done quick"),
                ("task-1", ResultCode::TemporaryFailure, DEADLINE_MESSAGE),
                ("task-2", ResultCode::Succeeded, "done later"),
                ("task-3", ResultCode::TemporaryFailure, DEADLINE_MESSAGE),
            ]
        );
        // One task alone takes another path (awaited directly).
        let r = invoke_with(
            guarded,
            Options::new(),
            EventBuilder::v1().object("b", "hang"),
            ctx,
        )
        .await
        .unwrap();
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
        assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
    }

    #[tokio::test]
    async fn panicking_destructors_of_values_and_payloads_stay_in_their_task() {
        #[derive(serde::Serialize)]
        struct Output {
            #[serde(skip)]
            _guard: Option<PanicOnDrop>,
        }
        struct Failure(#[allow(dead_code)] PanicOnDrop);
        impl From<Failure> for TaskError {
            fn from(_: Failure) -> TaskError {
                TaskError::temporary("failed")
            }
        }
        /// A hand-written future, with a guard that panics when the future is dropped.
        struct Ready(
            Option<Result<Output, Failure>>,
            #[allow(dead_code)] Option<PanicOnDrop>,
        );
        impl Future for Ready {
            type Output = Result<Output, Failure>;
            fn poll(
                mut self: Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> Poll<Self::Output> {
                Poll::Ready(self.0.take().expect("polled once"))
            }
        }
        fn task(obj: Object) -> Ready {
            let guard = |name| Some(PanicOnDrop(name));
            match obj.key.as_str() {
                "output" => Ready(
                    Some(Ok(Output {
                        _guard: guard("output"),
                    })),
                    None,
                ),
                "error" => Ready(Some(Err(Failure(PanicOnDrop("error")))), None),
                "payload" => std::panic::panic_any(PanicOnDrop("payload")),
                _ => Ready(Some(Ok(Output { _guard: None })), guard("future")),
            }
        }
        let event = EventBuilder::v1()
            .object("b", "output")
            .object("b", "error")
            .object("b", "payload")
            .object("b", "future");
        let r = invoke(task, event).await.unwrap();
        let got: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.result_code, r.result_string.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ResultCode::PermanentFailure,
                    "task panicked: output panicked in its destructor"
                ),
                (
                    ResultCode::PermanentFailure,
                    "task panicked: error panicked in its destructor"
                ),
                (
                    ResultCode::PermanentFailure,
                    "task panicked: (panic payload is not a string)"
                ),
                (
                    ResultCode::PermanentFailure,
                    "task panicked: future panicked in its destructor"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn unformattable_panic_messages_say_so() {
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        async fn task(obj: Object) -> Result<String, TaskError> {
            if obj.key == "broken" {
                panic!("{}", Broken);
            }
            Ok("fine".into())
        }
        let r = invoke(
            task,
            EventBuilder::v1().object("b", "broken").object("b", "ok"),
        )
        .await
        .unwrap();
        let got: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.result_code, r.result_string.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (ResultCode::PermanentFailure, PANIC_WITHOUT_MESSAGE),
                (ResultCode::Succeeded, "fine"),
            ]
        );
    }

    #[tokio::test]
    async fn user_text_cannot_forge_text_log_lines() {
        use lambda_runtime::tracing::subscriber;
        async fn task(obj: Object) -> Result<String, TaskError> {
            match obj.key.split_once('/').map(|(kind, _)| kind) {
                Some("fail") => Err(TaskError::permanent(format!("cannot copy {}", obj.key))),
                Some("panic") => panic!("no {}", obj.key),
                _ => Ok(obj.key),
            }
        }
        let forged =
            "\nERROR forged: all tasks failed\r\x1b[31mred\x1b[0m\u{2028}sep\u{202e}rtl\u{85}nel";
        let captured = crate::logging::tests::Captured::default();
        let writer = captured.clone();
        // As lambda_runtime's default text subscriber, without colours (as in CloudWatch).
        let logs = subscriber::fmt()
            .with_target(false)
            .without_time()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(logs);
        let event = EventBuilder::v2()
            .job_id(&format!("job{forged}"))
            .object(&format!("bucket{forged}"), &format!("fail/{forged}"))
            .object("b", &format!("panic/{forged}"))
            .object("b", &format!("ok/{forged}"))
            .raw_task(serde_json::json!({"taskId": format!("t{forged}"), "s3Key": "%FF", "s3Bucket": "b"}));
        let r = invoke(task, event).await.unwrap();
        assert_eq!(r.results.len(), 4);
        let text = captured.text();
        // Every user-controlled value was logged…
        for needle in [
            "job\\nERROR forged",
            "bucket\\nERROR",
            "fail/\\nERROR",
            "panic/\\nERROR",
            "t\\nERROR",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        // …escaped: no line of its own, no raw control character, separator or override.
        // One line per event logged (the bad task, the failure, the panic, the success).
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("ERROR forged")),
            "{text}"
        );
        assert_eq!(
            text.matches("ERROR forged").count(),
            text.matches("\\nERROR forged").count()
        );
        for c in ['\r', '\x1b', '\u{2028}', '\u{202e}', '\u{85}'] {
            assert!(!text.contains(c), "raw {c:?} in:\n{text}");
        }
        assert!(text.contains("\\u{1b}[31mred"), "{text}");
    }

    #[tokio::test]
    async fn responses_fit_lambdas_limit_whatever_the_results_hold() {
        // 1,100 tasks whose results are control characters, 6 bytes each in JSON: what a
        // 3.4 MB event turned into a 6.7 MB response. Every tenth result is short.
        async fn control(obj: Object) -> Result<String, TaskError> {
            let n: usize = obj.key.parse().unwrap();
            Ok(match n % 10 {
                0 => format!("short {n}"),
                5 => "\u{1}".repeat(300),
                _ => "\u{1}".repeat(2000),
            })
        }
        let mut event = EventBuilder::v1();
        for i in 0..1100 {
            event = event.object("b", &i.to_string());
        }
        let options = Options::builder().max_result_len(10_000).build();
        let r = invoke_with(control, options, event, Default::default())
            .await
            .unwrap();
        let json = serde_json::to_vec(&r).unwrap();
        assert!(
            json.len() <= crate::response::RESPONSE_BUDGET,
            "{}",
            json.len()
        );
        assert!(
            json.len() > crate::response::RESPONSE_BUDGET - 20_000,
            "{}",
            json.len()
        );
        assert_eq!(r.results.len(), 1100);
        let mut cut = None;
        for (i, res) in r.results.iter().enumerate() {
            assert_eq!(res.task_id, format!("task-{i}"));
            assert_eq!(res.result_code, ResultCode::Succeeded);
            match i % 10 {
                0 => assert_eq!(res.result_string, format!("short {i}")),
                5 => assert_eq!(res.result_string, "\u{1}".repeat(300)),
                _ => {
                    // The longest are cut, all to the same length, marked.
                    assert!(res.result_string.ends_with(" bytes]"), "{i}");
                    let len = res.result_string.len();
                    assert!(len < 2000);
                    assert_eq!(*cut.get_or_insert(len), len);
                }
            }
        }
        // The same results again: the same cut.
        let mut event = EventBuilder::v1();
        for i in 0..1100 {
            event = event.object("b", &i.to_string());
        }
        let again = invoke_with(
            control,
            Options::builder().max_result_len(10_000).build(),
            event,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(again, r);
    }

    #[tokio::test]
    async fn too_many_tasks_to_answer_is_refused_before_any_runs() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        async fn count(_: Object) -> Result<String, TaskError> {
            RAN.fetch_add(1, Ordering::SeqCst);
            Ok(String::new())
        }
        let handler = Handler::new(count, Options::new()).await.unwrap();
        // Each well-formed task of this event takes about 60 bytes, its result about 70:
        // 100,000 of them would need a 7 MB response.
        let mut event = br#"{"invocationId":"i","tasks":["#.to_vec();
        for i in 0..100_000 {
            if i > 0 {
                event.push(b',');
            }
            event.extend_from_slice(
                format!(r#"{{"taskId":"{i}","s3Key":"k","s3Bucket":"b"}}"#).as_bytes(),
            );
        }
        event.extend_from_slice(b"]}");
        assert!(event.len() < crate::response::LAMBDA_RESPONSE_LIMIT);
        let err = match handler.handle_bytes(&event, &Default::default()).await {
            Ok(r) => panic!("{} results instead of an invocation error", r.results.len()),
            Err(err) => err,
        };
        assert!(
            err.message()
                .starts_with("event has too many tasks to answer: 100000 results"),
            "{err}"
        );
        assert_eq!(RAN.load(Ordering::SeqCst), 0);
        // 10,000 fit.
        let end = event
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'}')
            .nth(9_999)
            .unwrap()
            .0;
        let mut smaller = event[..=end].to_vec();
        smaller.extend_from_slice(b"]}");
        let r = handler
            .handle_bytes(&smaller, &Default::default())
            .await
            .unwrap();
        assert_eq!(r.results.len(), 10_000);
        assert_eq!(RAN.load(Ordering::SeqCst), 10_000);
    }

    #[tokio::test]
    async fn unreadable_fields_fail_only_their_task_through_handle_bytes() {
        let handler = Handler::new(echo, Options::new()).await.unwrap();
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let mut event = format!(
            r#"{{"invocationSchemaVersion":"2.0","invocationId":"inv","job":{{"id":"j","userArguments":{{"deep":{deep}}}}},"tasks":[
              {{"taskId":"good","s3Key":"a+b","s3Bucket":"b"}},
              {{"taskId":"bad-key","s3Key":"BAD","s3Bucket":"b"}},
              {{"taskId":"id\ud800","s3Key":"k","s3Bucket":"b"}}]}}"#
        )
        .into_bytes();
        let at = event.windows(3).position(|w| w == b"BAD").unwrap();
        event.splice(at..at + 3, [0xFF, 0xFE]);
        let r = handler
            .handle_bytes(&event, &Default::default())
            .await
            .unwrap();
        assert_eq!(r.invocation_id, "inv");
        let got: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code))
            .collect();
        assert_eq!(
            got,
            [
                ("good", ResultCode::Succeeded),
                ("bad-key", ResultCode::PermanentFailure),
                ("id\u{fffd}", ResultCode::PermanentFailure),
            ]
        );
        assert_eq!(r.results[0].result_string, "b|a b|");
        assert!(r.results[1]
            .result_string
            .contains("`s3Key` is not valid Unicode"));
        assert!(r.results[2]
            .result_string
            .contains("`taskId` is not valid Unicode"));
    }

    #[tokio::test(start_paused = true)]
    async fn real_deadlines_win_over_the_fallback() {
        async fn nap(_: Object) -> Result<String, TaskError> {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok("woke".into())
        }
        let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(60));
        let options = Options::builder()
            .fallback_timeout(Duration::from_secs(1))
            .build();
        let r = invoke_with(nap, options, EventBuilder::v1().object("b", "k"), ctx)
            .await
            .unwrap();
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    }
}
