//! The [`Handler`]: one event in, its response out. It reads the event, runs the tasks (one
//! alone directly, several at most `concurrency` at once), gives up on those still running at
//! the deadline, and assembles the response.

use super::deadline::BeforeDeadline;
use super::options::Options;
use super::task_run::{Stage, TaskRun};
use crate::envelope::{BadTask, Event, Invocation, InvocationError, Job, Object};
use crate::logging::{DeferredSpan, Escaped, TaskSpans, TARGET};
use crate::map::{Answer, FunctionError};
#[cfg(feature = "map")]
use crate::map::{AnswerJson, MapAnswer, MapEvent, Shape};
use crate::response::{
    check_minimum_size, fit_to_budget, truncate_result, Response, ResultCode, TaskResult,
    RESPONSE_BUDGET,
};
use crate::task::TaskFn;
use crate::BoxError;
use futures_util::future::{Either, OptionFuture};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::Poll;

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
        // Not an `async` block: the bytes are read before this returns, so the future does not
        // borrow them (the signature says so).
        match Event::from_slice(event) {
            Ok(event) => Either::Left(self.handle(event, context)),
            Err(err) => Either::Right(std::future::ready(Err(err))),
        }
    }

    /// Handles raw event bytes of any shape the handler accepts (what the generated `main`
    /// serves): an S3 Batch Operations event, answered as [`Handler::handle_bytes`] does,
    /// or a Step Functions Distributed Map batch or item (see [`crate::map`] for the rule and
    /// the answer); anything else is a [`FunctionError`] `S3Batch.UnrecognizedEvent`. The
    /// bytes are read before this returns.
    ///
    /// ```
    /// use s3batch_core::map::Answer;
    /// use s3batch_core::{Handler, Object, Options, TaskError};
    ///
    /// async fn name(obj: Object) -> Result<String, TaskError> {
    ///     Ok(obj.key)
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let handler = Handler::new(name, Options::new()).await.unwrap();
    /// let item = br#"{"Bucket":"b","Key":"a+b.txt"}"#;
    /// match handler.serve_bytes(item, &Default::default()).await.unwrap() {
    ///     Answer::Map(m) => assert_eq!(m.results[0].result_string, "a+b.txt"),
    ///     Answer::S3Batch(_) => unreachable!(),
    /// }
    /// let err = handler.serve_bytes(br#"{"hello":1}"#, &Default::default()).await.unwrap_err();
    /// assert_eq!(err.error_type(), "S3Batch.UnrecognizedEvent");
    /// # });
    /// ```
    #[cfg(feature = "map")]
    pub fn serve_bytes<'a>(
        &'a self,
        event: &[u8],
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<Answer, FunctionError>> + Send + 'a {
        // The echoes copied (`into_owned`): the future does not borrow the bytes.
        self.serve_as(event, context, Answer::S3Batch, MapEvent::into_owned, |a| {
            Answer::Map(a.into_response())
        })
    }

    /// What the generated `main` serves (`run`): [`Handler::serve_bytes`], its answer as
    /// lambda_runtime gets it ([`AnswerJson`]), for the same output. A Distributed Map
    /// output is written as JSON straight from the results, what they echo (bucket, key,
    /// version id) copied from `event`, which the future borrows, instead of a
    /// [`MapResponse`](crate::map::MapResponse) built, written and dropped. Not a public API:
    /// public for the benchmarks, which measure what `run` runs.
    ///
    /// Hot path: `serve_bytes` then `AnswerJson::from` (the echoes copied into the items'
    /// ids, then into a `MapResponse` of owned strings, written, then dropped) measured
    /// +898,404 instructions per 1,000-item batch (`map_once`, `release` profile;
    /// bench/analysis.md, "Distributed Map").
    #[cfg(feature = "map")]
    #[doc(hidden)]
    pub fn serve_lambda<'a>(
        &'a self,
        event: &'a [u8],
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<AnswerJson, FunctionError>> + Send + 'a {
        self.serve_as(
            event,
            context,
            AnswerJson::S3Batch,
            |map| map,
            |a| AnswerJson::from_map(&a),
        )
    }

    /// [`Handler::serve_bytes`] and [`Handler::serve_lambda`]: the event read and told, its
    /// tasks run, answered by `s3batch` (S3 Batch's response) or, for a Distributed Map event
    /// whose echoes `own` makes to live as long as the future needs, by `map` (its
    /// [`MapAnswer`]). The bytes are read before this returns.
    #[cfg(feature = "map")]
    fn serve_as<'a, 'e, 'm: 'a, R: Send + 'a>(
        &'a self,
        event: &'e [u8],
        context: &'a lambda_runtime::Context,
        s3batch: fn(Response) -> R,
        own: fn(MapEvent<'e>) -> MapEvent<'m>,
        map: fn(MapAnswer<'m>) -> R,
    ) -> impl Future<Output = Result<R, FunctionError>> + Send + use<'a, 'm, T, Args, R> {
        // One reading tells the shape (S3 Batch first) and reads it: see `map::read_event`.
        // The Distributed Map path is boxed so that it does not grow the S3 Batch future.
        match crate::map::read_event(event, self.options.map_key_encoding) {
            Ok(Shape::S3Batch(e)) => Either::Left(Either::Left(
                self.handle(e, context)
                    .map(move |r| r.map(s3batch).map_err(FunctionError::from)),
            )),
            Err(err) => Either::Left(Either::Right(std::future::ready(Err(err.into())))),
            Ok(Shape::Map(Ok(m))) => Either::Right(Box::pin(
                self.handle_map(own(m), context).map(move |r| r.map(map)),
            )
                as Pin<Box<dyn Future<Output = _> + Send + 'a>>),
            Ok(Shape::Map(Err(err))) => Either::Left(Either::Right(std::future::ready(Err(err)))),
        }
    }

    /// Handles raw event bytes (what the generated `main` serves), built without the `map`
    /// feature: an S3 Batch Operations event, answered as [`Handler::handle_bytes`] does;
    /// anything else, a Distributed Map event included, is a [`FunctionError`]
    /// `S3Batch.UnrecognizedEvent`, whose message names the feature.
    #[cfg(not(feature = "map"))]
    pub fn serve_bytes<'a>(
        &'a self,
        event: &[u8],
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<Answer, FunctionError>> + Send + 'a {
        self.serve_lambda(event, context)
            .map(|r| r.map(Answer::S3Batch))
    }

    /// What the generated `main` serves (`run`) without the `map` feature:
    /// [`Handler::serve_bytes`] before the response becomes an [`Answer`], so that no
    /// Distributed Map code (`MapResponse::to_json`, the `Answer` and `AnswerJson`
    /// serializers) is in the binary. With the feature, `serve_lambda` is the other one.
    #[cfg(not(feature = "map"))]
    pub(crate) fn serve_lambda<'a>(
        &'a self,
        event: &[u8],
        context: &'a lambda_runtime::Context,
    ) -> impl Future<Output = Result<Response, FunctionError>> + Send + 'a {
        match Event::from_slice(event) {
            Ok(e) if e.is_s3_batch() => Either::Left(
                self.handle(e, context)
                    .map(|r| r.map_err(FunctionError::from)),
            ),
            Ok(_) => Either::Right(std::future::ready(Err(FunctionError::new(
                crate::map::UNRECOGNIZED_EVENT,
                "event is not an S3 Batch Operations event (`invocationSchemaVersion`, \
                 `invocationId`, `job`, `tasks`), the one shape this function serves: it was \
                 built without s3batch's `map` feature (on by default), which serves Step \
                 Functions Distributed Map batches and items too",
            )))),
            Err(err) => Either::Right(std::future::ready(Err(err.into()))),
        }
    }

    /// Runs a Distributed Map child's items as the tasks of one invocation (concurrency,
    /// deadline, panics and spans as for S3 Batch) and answers per [`crate::map::MapFailure`].
    #[cfg(feature = "map")]
    async fn handle_map<'e>(
        &self,
        map: MapEvent<'e>,
        context: &lambda_runtime::Context,
    ) -> Result<MapAnswer<'e>, FunctionError> {
        let MapEvent {
            mut job,
            tasks,
            items,
            echoes,
            batch_bucket,
        } = map;
        job.invocation_id = context.request_id.clone();
        // The results without their task ids: a Distributed Map answer echoes the item
        // (`ItemId`), not the id. Hot path: copying each id for the result, as S3 Batch's
        // answer needs, measured +279,682 instructions per 1,000-item batch (an allocation
        // and a free per item; `map_once`, `release` profile; bench/analysis.md,
        // "Distributed Map").
        let response = self.run::<false>(job, tasks, context).await;
        crate::map::answer(
            items,
            echoes,
            batch_bucket,
            response.results,
            self.options.map_failure,
        )
    }

    /// Handles one event: exactly one result per task, in the order of `tasks`. An event that
    /// cannot be answered fails without running any task.
    pub async fn handle(
        &self,
        event: Event,
        context: &lambda_runtime::Context,
    ) -> Result<Response, InvocationError> {
        // The plain form: checking the event before returning the future (an `Either` of the
        // run and a ready error) saved 26 instructions per 1-task invocation and cost 61 per
        // 100-task one, inside the noise (bench/analysis.md, "Hand-written shapes").
        let Invocation { job, tasks } = answerable(event)?;
        Ok(self.run::<true>(job, tasks, context).await)
    }

    /// Runs the tasks of an answerable invocation: its response. Its results carry their
    /// task ids if `IDS` (S3 Batch's answer), else empty ones (a Distributed Map answer).
    async fn run<const IDS: bool>(
        &self,
        job: Job,
        tasks: Vec<Result<Object, BadTask>>,
        context: &lambda_runtime::Context,
    ) -> Response {
        // Under `init_tracing`'s subscriber, task spans format their fields only if they log;
        // when nothing records INFO spans there are none.
        let spans = TaskSpans::current();
        let mut results = if let [_] = tasks.as_slice() {
            // S3 sends one task per invocation: run it directly. Hot path: through `run_all`
            // (the plain form) a 1-task invocation measured +1,411 instructions (+8.5 %;
            // `SECTIONS=5 bench/run.sh`, as deployed; bench/analysis.md, "Hand-written shapes").
            let task = tasks.into_iter().next().expect("one task");
            vec![match task {
                Err(bad) => unreadable_task(&job, bad),
                Ok(object) => {
                    let (task_id, run) = self.start_one::<IDS>(&job, context, object, spans);
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
            // Not boxed (the plain form): boxing it, to keep the 1-task future small, measured
            // +2 instructions per 1-task invocation and +1,430 per 100-task one: no gain
            // (bench/analysis.md, "Hand-written shapes").
            self.run_all::<IDS>(&job, context, tasks, spans).await
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
        // Metrics (when on): the job and every task's result code, whatever the event's shape.
        crate::metrics::answered(&job.id, &response);
        response
    }

    /// The task's id (if `IDS`, else empty) and its run, for a task run alone. (The `Object`
    /// is not borrowed in [`Handler::run`]'s future, which would keep room for it there.)
    fn start_one<'a, const IDS: bool>(
        &'a self,
        job: &'a Job,
        context: &'a lambda_runtime::Context,
        object: Object,
        spans: TaskSpans,
    ) -> (String, impl Future<Output = (ResultCode, String)> + 'a) {
        let task_id = if IDS {
            object.task_id.clone()
        } else {
            String::new()
        };
        (task_id, self.run_one(job, context, object, spans))
    }

    /// The results of all the tasks, in order, at most `concurrency` at once; with their task
    /// ids if `IDS`.
    async fn run_all<const IDS: bool>(
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
        // The objects stay where they are until their task starts (moving them into a second
        // list first cost ~275 instructions per task; bench/analysis.md, "Objects moved").
        let mut runnable = tasks
            .into_iter()
            .enumerate()
            .filter_map(|(i, task)| Some((i, task.ok()?)));
        let collect = async {
            // Each task is polled once as it starts; only one that is still pending (it
            // awaits I/O) joins the tasks in flight, at most `concurrency` of them. A task
            // that finishes at once costs no scheduling, and the box it started in is reused
            // by the next task. Hot path, against the plain forms (`SECTIONS=5 bench/run.sh`,
            // as deployed, per 100-task invocation; bench/analysis.md, "Hand-written shapes"):
            // every task pushed to `FuturesUnordered` unpolled measured +96,444 instructions
            // (+9.8 %), a new box per task +10,648 (+1.1 %).
            let mut in_flight = FuturesUnordered::new();
            let mut staged: Option<Pin<Box<OptionFuture<_>>>> = None;
            for (i, object) in runnable.by_ref() {
                // The result's copy of the id, made as the task starts: copying every id up
                // front (the plain form) measured +27,638 instructions per 100-task invocation
                // (in malloc: bench/analysis.md, "A task id copied").
                if IDS {
                    slots.results[i].task_id = object.task_id.clone();
                }
                let task = self.run_one(job, context, object, spans);
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
        if IDS {
            for (i, object) in runnable {
                slots.results[i].task_id = object.task_id;
            }
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
        // Under `init_tracing`'s subscriber the span is made only if the task needs it. With
        // INFO off there is none: `info_span!` would still build a disabled span and hand its
        // fields to tracing's `log` fallback, ~190 instructions per task (bench/analysis.md,
        // "A span per task").
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
        target: TARGET,
        job_id = %Escaped::field(&job.id),
        task_id = %Escaped::field(&bad.task_id),
        "{}",
        Escaped::text(&bad.message)
    );
    TaskResult::new(bad.task_id, ResultCode::PermanentFailure, bad.message)
}

fn warn_deadline(job: &Job) {
    tracing::warn!(
        target: TARGET,
        job_id = %Escaped::field(&job.id),
        "deadline reached; reporting unfinished tasks as TemporaryFailure"
    );
}
