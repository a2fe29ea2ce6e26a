//! Running a Distributed Map state: items read, selected and batched, one child per batch
//! through an [`Invoke`]r, `Retry`/`Catch` applied per child, tolerated failures counted, and
//! the children's records written for `ResultWriter`.

use crate::asl::{
    Batcher, CatchTarget, ItemSource, MapDefinition, Retrier, TaskKind, PAYLOAD_LIMIT,
};
use crate::journal::{input_md5, JournalError, RunJournal, Seen};
use crate::path::{Scope, Template};
use crate::reader::{self, ReadError, Store};
use crate::writer::{self, Status, WriteError};
use futures_util::stream::{FuturesUnordered, StreamExt};
use s3batch_job::{Invoke, Invoked};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Step Functions' default (and ceiling) of children at once, for `MaxConcurrency` 0.
pub const DEFAULT_CONCURRENCY: usize = 10_000;

/// Why a run could not start, or its results could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// `InputPath`, `ItemsPath` or the reader's `Parameters` do not fit the input
    /// (`States.Runtime`).
    #[error("States.Runtime: {0}")]
    Runtime(String),
    /// The staging folder, or `ResultWriter` (`States.ResultWriterFailed`).
    #[error("States.ResultWriterFailed: {0}")]
    ResultWriter(#[from] WriteError),
    /// The run's journal: another process holds the run, a new run has the id of one that
    /// can be resumed, a resume has nothing to resume or does not match, or the journal
    /// could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// How the Map Run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "Status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MapStatus {
    /// Every child succeeded, or the failures stayed within the tolerated threshold.
    Succeeded,
    /// The run failed: `States.ExceedToleratedFailureThreshold`, `States.ItemReaderFailed`
    /// or `States.Runtime`.
    Failed {
        /// The error name.
        #[serde(rename = "Error")]
        error: String,
        /// What happened.
        #[serde(rename = "Cause")]
        cause: String,
    },
    /// Stopped from outside ([`MapRun::run_until`]; Ctrl-C on the command line): no child
    /// started after the stop, the children in flight finished and are recorded.
    Aborted,
}

/// Item and child counts of a run (as `DescribeMapRun`'s `itemCounts`/`executionCounts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Succeeded.
    pub succeeded: u64,
    /// Failed (with batching, every item of a failed child).
    pub failed: u64,
    /// Formed but never started, because the run stopped first.
    pub pending: u64,
    /// All of the above.
    pub total: u64,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunOutcome {
    /// The Map Run's id (the folder under the `ResultWriter` prefix).
    pub run_id: String,
    /// How it ended.
    pub status: MapStatus,
    /// Items.
    pub item_counts: Counts,
    /// Child executions.
    pub execution_counts: Counts,
    /// True when the run stopped before its reader had read every item (those items are in
    /// no count and no result file).
    pub unread_items: bool,
    /// Where `manifest.json` was written, with a `ResultWriter`.
    pub result_manifest: Option<String>,
}

const ACCOUNT: &str = "us-east-1:000000000000";

/// A Distributed Map state ready to run on this machine.
///
/// ```
/// use s3batch_job::{Invoke, Invoked};
/// use s3batch_map::{MapDefinition, MapRun, MapStatus, Store};
///
/// struct Echo;
/// impl Invoke for Echo {
///     async fn invoke(&self, payload: Vec<u8>) -> Invoked {
///         Invoked::Response(payload)
///     }
/// }
///
/// let asl = r#"{"StartAt": "Map", "States": {"Map": {
///   "Type": "Map", "End": true, "ItemsPath": "$.keys",
///   "ItemBatcher": {"MaxItemsPerBatch": 2},
///   "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Call",
///     "States": {"Call": {"Type": "Task", "End": true,
///       "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"}}}}}}"#;
/// let map = MapDefinition::parse(asl, None).unwrap();
/// let dir = std::env::temp_dir().join("s3batch-map-doc");
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let out = MapRun::new(map, Echo, Store::Local(dir.clone()), dir)
///     .run(serde_json::json!({"keys": ["a", "b", "c"]}))
///     .await
///     .unwrap();
/// assert_eq!(out.status, MapStatus::Succeeded);
/// assert_eq!((out.item_counts.succeeded, out.execution_counts.succeeded), (3, 2));
/// # });
/// ```
pub struct MapRun<I> {
    def: MapDefinition,
    invoker: I,
    store: Store,
    work_dir: PathBuf,
    run_id: String,
    machine: String,
    resume: bool,
}

/// One child execution's input, before it runs.
struct Child {
    /// Its number, in the order the children are formed (from 0).
    number: u64,
    /// The MD5 of its input, which the journal records.
    md5: String,
    name: String,
    input: Value,
    items: u64,
}

/// A child's end.
struct Finished {
    child: Child,
    status: Status,
    output: Option<Value>,
    error: Option<(String, String)>,
    start: String,
    stop: String,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn json_len(v: &Value) -> u64 {
    serde_json::to_vec(v).map_or(0, |b| b.len() as u64)
}

/// `ErrorEquals` matches `name`: by name, or `States.ALL` / `States.TaskFailed`, which do not
/// match the terminal `States.Runtime` and `States.DataLimitExceeded` (nor, for TaskFailed,
/// `States.Timeout`).
pub fn error_matches(errors: &[String], name: &str) -> bool {
    let terminal = matches!(name, "States.Runtime" | "States.DataLimitExceeded");
    errors.iter().any(|e| {
        e == name
            || (e == "States.ALL" && !terminal)
            || (e == "States.TaskFailed" && !terminal && name != "States.Timeout")
    })
}

/// The delay before retry number `attempt` (0-based) of `r`.
pub fn retry_delay(r: &Retrier, attempt: u32) -> Duration {
    let secs = r.interval_seconds as f64 * r.backoff_rate.powi(attempt as i32);
    let secs = match r.max_delay_seconds {
        Some(max) => secs.min(max as f64),
        None => secs,
    };
    Duration::from_secs_f64(secs.min(31_622_400.0))
}

/// The error name of a failed Invoke API call, as Step Functions names it (`Lambda.` and
/// the Lambda error code); only the HTTP status is known here.
fn api_error_name(status: Option<u16>) -> &'static str {
    match status {
        None => "Lambda.SdkClientException",
        Some(404) => "Lambda.ResourceNotFoundException",
        Some(413) => "Lambda.RequestTooLargeException",
        Some(429) => "Lambda.TooManyRequestsException",
        Some(409) => "Lambda.ResourceConflictException",
        Some(403) => "Lambda.AccessDeniedException",
        Some(400..=499) => "Lambda.InvalidRequestContentException",
        Some(_) => "Lambda.ServiceException",
    }
}

impl<I: Invoke> MapRun<I> {
    /// A run of `def` through `invoker`, reading and writing S3 objects in `store`, with
    /// staging files under `work_dir/<run id>/`.
    pub fn new(def: MapDefinition, invoker: I, store: Store, work_dir: PathBuf) -> Self {
        Self {
            def,
            invoker,
            store,
            work_dir,
            run_id: uuid::Uuid::new_v4().to_string(),
            machine: "local".into(),
            resume: false,
        }
    }

    /// Continues the run [`MapRun::run_id`] names from its journal (see [`crate::journal`]):
    /// its items are read again and its children formed again, and those that finished
    /// before it stopped (Ctrl-C, a crash, `kill -9`) are not run again; their results are
    /// kept. The Map state and its input must be the ones the run started with. Without
    /// `resume`, a run id that has a journal is refused.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The Map Run id.
    pub fn id(&self) -> &str {
        &self.run_id
    }

    /// The run's staging folder, which holds its journal: `work_dir/<run id>/`.
    pub fn journal_dir(&self) -> PathBuf {
        self.work_dir.join(&self.run_id)
    }

    /// Sets the Map Run id (default: a random UUID).
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = id.into();
        self
    }

    /// Sets the state machine name written in ARNs (default `local`).
    pub fn machine_name(mut self, name: impl Into<String>) -> Self {
        self.machine = name.into();
        self
    }

    fn map_run_arn(&self) -> String {
        format!(
            "arn:aws:states:{ACCOUNT}:mapRun:{}/{}:{}",
            self.machine, self.def.label, self.run_id
        )
    }

    fn items(&self, input: &Value) -> Result<mpsc::Receiver<Result<Value, ReadError>>, MapError> {
        let scope = Scope { input, item: None };
        let params = |t: &Template| -> Result<Map<String, Value>, MapError> {
            match t
                .eval(scope)
                .map_err(|e| MapError::Runtime(e.to_string()))?
            {
                Value::Object(m) => Ok(m),
                _ => Err(MapError::Runtime(
                    "ItemReader.Parameters is not an object".into(),
                )),
            }
        };
        let string = |m: &Map<String, Value>, k: &str, required: bool| match m.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            None if !required => Ok(String::new()),
            other => Err(MapError::Runtime(format!(
                "ItemReader.Parameters.{k} must be a string, not {other:?}"
            ))),
        };
        let max = self.def.max_items;
        Ok(match &self.def.source {
            ItemSource::Input(path) => {
                let items = match path.get(scope) {
                    Some(Value::Array(a)) => a,
                    Some(other) => {
                        return Err(MapError::Runtime(format!(
                            "ItemsPath {path} is {}, not an array",
                            kind(&other)
                        )))
                    }
                    None => {
                        return Err(MapError::Runtime(format!(
                            "ItemsPath {path} could not be found in the input"
                        )))
                    }
                };
                let (tx, rx) = mpsc::channel(256);
                tokio::spawn(async move {
                    for item in items {
                        if tx.send(Ok(item)).await.is_err() {
                            break;
                        }
                    }
                });
                rx
            }
            ItemSource::ListObjects(t) => {
                let m = params(t)?;
                reader::list_objects(
                    self.store.clone(),
                    string(&m, "Bucket", true)?,
                    string(&m, "Prefix", false)?,
                    max,
                )
            }
            ItemSource::GetObject(t, input_type) => {
                let m = params(t)?;
                reader::get_object(
                    self.store.clone(),
                    string(&m, "Bucket", true)?,
                    string(&m, "Key", true)?,
                    input_type.clone(),
                    max,
                    self.work_dir.join(&self.run_id),
                )
            }
        })
    }

    /// Runs the Map state on `input` (the execution input, or the Map state's input when it
    /// is not the `StartAt` state), then writes its results when it has a `ResultWriter`.
    pub async fn run(&self, input: Value) -> Result<MapRunOutcome, MapError> {
        self.run_until(input, std::future::pending()).await
    }

    /// As [`MapRun::run`], stopping when `stop` completes: no child starts after it, the
    /// children in flight finish and are recorded, the batches formed are `PENDING`, and the
    /// run is [`MapStatus::Aborted`] (its results are still written).
    pub async fn run_until(
        &self,
        input: Value,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<MapRunOutcome, MapError> {
        tokio::pin!(stop);
        let mut aborted = false;
        let def = &self.def;
        let input = match &def.input_path {
            Some(p) => p
                .get(Scope {
                    input: &input,
                    item: None,
                })
                .ok_or_else(|| {
                    MapError::Runtime(format!("InputPath {p} could not be found in the input"))
                })?,
            None => input,
        };
        let batch_input = match def.batcher.as_ref().and_then(|b| b.batch_input.as_ref()) {
            Some(t) => Some(
                t.eval(Scope {
                    input: &input,
                    item: None,
                })
                .map_err(|e| MapError::Runtime(format!("ItemBatcher.BatchInput: {e}")))?,
            ),
            None => None,
        };
        let (mut journal, mut staging, replayed) = RunJournal::open(
            &self.journal_dir(),
            &self.run_id,
            &def.state_name,
            &input,
            self.resume,
        )?;
        let mut rx = self.items(&input)?;
        let max = match def.max_concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => n as usize,
        };
        let mut batching = Batching::new(def.batcher.as_ref(), batch_input);
        let mut ready: VecDeque<Child> = VecDeque::new();
        let mut inflight = FuturesUnordered::new();
        let (mut items, mut children) = (Counts::default(), Counts::default());
        items.succeeded = replayed.items_succeeded;
        items.failed = replayed.items_failed;
        children.succeeded = replayed.children_succeeded;
        children.failed = replayed.children_failed;
        let mut index = 0u64;
        let mut reading = true;
        let mut failure: Option<(String, String)> = None;
        if items.failed > 0 {
            failure = self.exceeded(items.failed, None);
        }
        // A child the journal holds as finished is not run again.
        let admit = |ready: &mut VecDeque<Child>,
                     formed: &mut dyn Iterator<Item = Child>,
                     journal: &RunJournal|
         -> Result<(), JournalError> {
            for child in formed {
                if let Seen::New = journal.seen(child.number, &child.md5)? {
                    ready.push_back(child);
                }
            }
            Ok(())
        };
        loop {
            while failure.is_none() && inflight.len() < max {
                match ready.pop_front() {
                    Some(child) => inflight.push(self.run_child(child)),
                    None => break,
                }
            }
            let want_item = reading && failure.is_none() && ready.is_empty();
            if !want_item && inflight.is_empty() {
                break;
            }
            tokio::select! {
                () = &mut stop, if !aborted && failure.is_none() => {
                    aborted = true;
                    failure = Some(("Aborted".into(), "stopped".into()));
                }
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    let done: Finished = done;
                    let n = done.child.items;
                    match done.status {
                        Status::Succeeded => {
                            items.succeeded += n;
                            children.succeeded += 1;
                        }
                        _ => {
                            items.failed += n;
                            children.failed += 1;
                        }
                    }
                    let record = self.record(&done);
                    journal.append(done.child.number, &done.child.md5, done.status, n, &record)?;
                    staging.append(done.status, &record)?;
                    if failure.is_none() && done.status == Status::Failed {
                        failure = self.exceeded(items.failed, (!reading).then_some(index));
                    }
                }
                item = rx.recv(), if want_item => match item {
                    Some(Ok(item)) => {
                        let selected = match &def.selector {
                            Some(t) => t.eval(Scope { input: &input, item: Some((&item, index)) }),
                            None => Ok(item),
                        };
                        index += 1;
                        match selected {
                            Ok(v) => admit(&mut ready, &mut batching.push(v).into_iter(), &journal)?,
                            Err(e) => failure = Some((
                                "States.Runtime".into(),
                                format!("ItemSelector, item {}: {e}", index - 1),
                            )),
                        }
                    }
                    Some(Err(e)) => {
                        failure = Some(("States.ItemReaderFailed".into(), e.0));
                    }
                    None => {
                        reading = false;
                        admit(&mut ready, &mut batching.flush().into_iter(), &journal)?;
                        if failure.is_none() {
                            failure = self.exceeded(items.failed, Some(index));
                        }
                    }
                },
            }
        }
        // What never started: the batches formed, and the items of the one being formed.
        admit(&mut ready, &mut batching.flush().into_iter(), &journal)?;
        for child in ready {
            items.pending += child.items;
            children.pending += 1;
            let now = now();
            let done = Finished {
                child,
                status: Status::Pending,
                output: None,
                error: None,
                start: now.clone(),
                stop: now,
            };
            staging.append(Status::Pending, &self.record(&done))?;
        }
        for c in [&mut items, &mut children] {
            c.total = c.succeeded + c.failed + c.pending;
        }
        let parts = staging.finish()?;
        let result_manifest = match &def.result_writer {
            Some(w) => Some(
                writer::publish(
                    &self.store,
                    &w.bucket,
                    &w.prefix,
                    &self.run_id,
                    &self.map_run_arn(),
                    &parts,
                )
                .await?,
            ),
            None => None,
        };
        // A run that ended has its results written: its journal goes. A stopped one keeps it,
        // to be resumed.
        if !aborted {
            journal.remove()?;
        }
        Ok(MapRunOutcome {
            run_id: self.run_id.clone(),
            status: match failure {
                _ if aborted => MapStatus::Aborted,
                None => MapStatus::Succeeded,
                Some((error, cause)) => MapStatus::Failed { error, cause },
            },
            item_counts: items,
            execution_counts: children,
            unread_items: reading,
            result_manifest,
        })
    }

    /// `Some(error)` once the failed items exceed the tolerated threshold. The percentage
    /// is of every item, so it is checked once `total` is known (the reader is done).
    fn exceeded(&self, failed: u64, total: Option<u64>) -> Option<(String, String)> {
        let def = &self.def;
        let over_count = match (def.tolerated_count, def.tolerated_percentage) {
            (Some(c), _) => failed > c,
            (None, None) => failed > 0,
            (None, Some(_)) => false,
        };
        let over_percent = match (def.tolerated_percentage, total) {
            (Some(p), Some(t)) if t > 0 => failed as f64 * 100.0 / t as f64 > p,
            _ => false,
        };
        (over_count || over_percent).then(|| {
            (
                "States.ExceedToleratedFailureThreshold".into(),
                format!(
                    "The specified tolerated failure threshold was exceeded: {failed} item(s) \
                     failed{} (ToleratedFailureCount {}, ToleratedFailurePercentage {})",
                    total.map_or(String::new(), |t| format!(" of {t}")),
                    def.tolerated_count
                        .map_or("unset".into(), |c| c.to_string()),
                    def.tolerated_percentage
                        .map_or("unset".into(), |p| p.to_string()),
                ),
            )
        })
    }

    fn record(&self, done: &Finished) -> Value {
        let arn = format!(
            "arn:aws:states:{ACCOUNT}:execution:{}/{}:{}",
            self.machine, self.def.label, done.child.name
        );
        let mut r = Map::new();
        let status = match done.status {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Pending => "PENDING",
        };
        if let Some((error, cause)) = &done.error {
            r.insert("Cause".into(), Value::from(cause.as_str()));
            r.insert("Error".into(), Value::from(error.as_str()));
        }
        r.insert("ExecutionArn".into(), Value::from(arn));
        r.insert(
            "Input".into(),
            Value::from(serde_json::to_string(&done.child.input).expect("JSON serializes")),
        );
        r.insert("InputDetails".into(), json!({"Included": true}));
        r.insert("Name".into(), Value::from(done.child.name.as_str()));
        if let Some(output) = &done.output {
            r.insert(
                "Output".into(),
                Value::from(serde_json::to_string(output).expect("JSON serializes")),
            );
            r.insert("OutputDetails".into(), json!({"Included": true}));
        }
        r.insert("RedriveCount".into(), Value::from(0));
        let (redrive, reason) = match done.status {
            Status::Failed => ("REDRIVABLE", None),
            Status::Succeeded => (
                "NOT_REDRIVABLE",
                Some("Execution is SUCCEEDED and cannot be redriven"),
            ),
            Status::Pending => ("NOT_REDRIVABLE", Some("Execution was not started")),
        };
        r.insert("RedriveStatus".into(), Value::from(redrive));
        if let Some(reason) = reason {
            r.insert("RedriveStatusReason".into(), Value::from(reason));
        }
        if done.status != Status::Pending {
            r.insert("StartDate".into(), Value::from(done.start.as_str()));
        }
        r.insert(
            "StateMachineArn".into(),
            Value::from(format!(
                "arn:aws:states:{ACCOUNT}:stateMachine:{}/{}",
                self.machine, self.def.label
            )),
        );
        r.insert("Status".into(), Value::from(status));
        if done.status != Status::Pending {
            r.insert("StopDate".into(), Value::from(done.stop.as_str()));
        }
        Value::Object(r)
    }

    async fn run_child(&self, child: Child) -> Finished {
        let start = now();
        let result = self.run_task(&child.input).await;
        let (status, output, error) = match result {
            Ok(v) => (Status::Succeeded, Some(v), None),
            Err(e) => (Status::Failed, None, Some(e)),
        };
        Finished {
            child,
            status,
            output,
            error,
            start,
            stop: now(),
        }
    }

    /// The task state on the child's input: the child's output, or its error and cause.
    async fn run_task(&self, input: &Value) -> Result<Value, (String, String)> {
        let task = &self.def.task;
        let size = json_len(input);
        if size > PAYLOAD_LIMIT {
            return Err((
                "States.DataLimitExceeded".into(),
                format!(
                    "the child's input is {size} bytes, over the {PAYLOAD_LIMIT}-byte (256 KiB) \
                     payload limit"
                ),
            ));
        }
        let scope = Scope { input, item: None };
        let event = match &task.kind {
            TaskKind::LambdaInvoke { payload } => payload.eval(scope),
            TaskKind::FunctionArn {
                parameters: Some(t),
            } => t.eval(scope),
            TaskKind::FunctionArn { parameters: None } => Ok(input.clone()),
        }
        .map_err(|e| ("States.Runtime".to_owned(), format!("{}: {e}", task.name)))?;
        let payload = serde_json::to_vec(&event).expect("JSON serializes");
        let mut attempts = vec![0u32; task.retry.len()];
        loop {
            let (name, cause) = match self.invoke_once(payload.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if let Some(i) = task
                .retry
                .iter()
                .position(|r| error_matches(&r.errors, &name))
            {
                let r = &task.retry[i];
                if attempts[i] < r.max_attempts {
                    let delay = retry_delay(r, attempts[i]);
                    attempts[i] += 1;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return match task.catch.iter().find(|c| error_matches(&c.errors, &name)) {
                Some(c) => match &c.target {
                    CatchTarget::Succeed => Ok(json!({"Error": name, "Cause": cause})),
                    CatchTarget::Fail { error, cause: c2 } => {
                        Err((error.clone().unwrap_or(name), c2.clone().unwrap_or(cause)))
                    }
                },
                None => Err((name, cause)),
            };
        }
    }

    async fn invoke_once(&self, payload: Vec<u8>) -> Result<Value, (String, String)> {
        match self.invoker.invoke(payload).await {
            Invoked::Response(body) => {
                if body.len() as u64 > PAYLOAD_LIMIT {
                    return Err((
                        "States.DataLimitExceeded".into(),
                        format!(
                            "the function returned {} bytes, over the {PAYLOAD_LIMIT}-byte \
                             (256 KiB) state output limit",
                            body.len()
                        ),
                    ));
                }
                let value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&body).into_owned()));
                Ok(match self.def.task.kind {
                    TaskKind::LambdaInvoke { .. } => json!({
                        "ExecutedVersion": "$LATEST",
                        "Payload": value,
                        "StatusCode": 200,
                    }),
                    TaskKind::FunctionArn { .. } => value,
                })
            }
            Invoked::FunctionError(doc) => {
                let name = serde_json::from_slice::<Value>(&doc)
                    .ok()
                    .and_then(|v| {
                        v.get("errorType")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "Lambda.Unknown".into());
                Err((name, String::from_utf8_lossy(&doc).into_owned()))
            }
            Invoked::ApiError { message, status } => {
                Err((api_error_name(status).to_owned(), message))
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Groups selected items into children's inputs.
struct Batching {
    batcher: Option<Batcher>,
    batch_input: Option<Value>,
    /// The bytes of `{"Items":[],"BatchInput":…}` with no item.
    base: u64,
    items: Vec<Value>,
    bytes: u64,
    /// Children formed so far.
    formed: u64,
}

impl Batching {
    fn new(batcher: Option<&Batcher>, batch_input: Option<Value>) -> Self {
        let base = br#"{"Items":[]}"#.len() as u64
            + batch_input
                .as_ref()
                .map_or(0, |b| br#","BatchInput":"#.len() as u64 + json_len(b));
        Batching {
            batcher: batcher.cloned(),
            batch_input,
            base,
            items: Vec::new(),
            bytes: 0,
            formed: 0,
        }
    }

    fn child(&mut self, input: Value, items: u64) -> Child {
        let number = self.formed;
        self.formed += 1;
        Child {
            number,
            md5: input_md5(&input),
            name: uuid::Uuid::new_v4().to_string(),
            input,
            items,
        }
    }

    fn size(&self) -> u64 {
        self.base + self.bytes + (self.items.len() as u64).saturating_sub(1)
    }

    /// Adds an item; returns the children it completes.
    fn push(&mut self, item: Value) -> Vec<Child> {
        let Some(b) = &self.batcher else {
            return vec![self.child(item, 1)];
        };
        let (max_items, max_bytes) = (b.max_items, b.max_bytes);
        let len = json_len(&item);
        let mut out = Vec::new();
        let with_it = self.size() + len + u64::from(!self.items.is_empty());
        if !self.items.is_empty() && with_it > max_bytes {
            out.extend(self.flush());
        }
        self.items.push(item);
        self.bytes += len;
        if max_items.is_some_and(|m| self.items.len() as u64 >= m) {
            out.extend(self.flush());
        }
        out
    }

    /// The batch being formed, if any.
    fn flush(&mut self) -> Option<Child> {
        if self.items.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.items);
        self.bytes = 0;
        let n = items.len() as u64;
        let mut m = Map::new();
        m.insert("Items".into(), Value::Array(items));
        if let Some(bi) = &self.batch_input {
            m.insert("BatchInput".into(), bi.clone());
        }
        Some(self.child(Value::Object(m), n))
    }
}

#[cfg(test)]
mod tests;
