//! Reading an Amazon States Language definition: finding its Distributed Map state and
//! checking that every field it uses is one the local runner emulates.

use crate::path::{Path, PathError, Template};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a definition cannot be run locally. The message names the state and field.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// Not JSON, or not an ASL state machine.
    #[error("the definition is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `"QueryLanguage": "JSONata"` somewhere.
    #[error(
        "{at}: \"QueryLanguage\": \"JSONata\" is not supported; the local runner emulates \
         JSONPath mode only (remove QueryLanguage or set it to \"JSONPath\")"
    )]
    Jsonata {
        /// Where it was set.
        at: String,
    },
    /// No Distributed Map state, several, or not the one named.
    #[error("{0}")]
    NoMap(String),
    /// A field the runner does not emulate, or a value it does not accept.
    #[error("{at}: {problem}")]
    Unsupported {
        /// The state and field (`States.Map.ItemReader.ReaderConfig.InputType`).
        at: String,
        /// What is wrong and, where there is one, what to write instead.
        problem: String,
    },
    /// A path or template that cannot be evaluated.
    #[error(transparent)]
    Path(#[from] PathError),
}

fn unsupported(at: impl Into<String>, problem: impl Into<String>) -> DefinitionError {
    DefinitionError::Unsupported {
        at: at.into(),
        problem: problem.into(),
    }
}

/// Deserializes `value` strictly; an unknown field is an error naming it and where it is.
fn strict<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, DefinitionError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let at = if inner == "." || inner.is_empty() {
            at.to_owned()
        } else {
            format!("{at}.{inner}")
        };
        unsupported(
            at,
            format!(
                "{} (fields the local runner does not emulate are refused, never ignored; see \
                 docs/distributed-map-local.md)",
                e.inner()
            ),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct MachineDef {
    start_at: String,
    states: Map<String, Value>,
    comment: Option<String>,
    version: Option<String>,
    timeout_seconds: Option<u64>,
    query_language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct MapStateDef {
    #[serde(rename = "Type")]
    ty: String,
    comment: Option<String>,
    input_path: Option<String>,
    items_path: Option<String>,
    item_reader: Option<Value>,
    item_selector: Option<Value>,
    item_batcher: Option<Value>,
    item_processor: Value,
    max_concurrency: Option<u32>,
    tolerated_failure_count: Option<u64>,
    tolerated_failure_percentage: Option<f64>,
    result_writer: Option<Value>,
    label: Option<String>,
    next: Option<String>,
    end: Option<bool>,
    query_language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ItemReaderDef {
    resource: String,
    parameters: Option<Value>,
    reader_config: Option<ReaderConfigDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderConfigDef {
    #[serde(rename = "InputType")]
    input_type: Option<String>,
    #[serde(rename = "CSVHeaderLocation")]
    csv_header_location: Option<String>,
    #[serde(rename = "CSVHeaders")]
    csv_headers: Option<Vec<String>>,
    #[serde(rename = "CSVDelimiter")]
    csv_delimiter: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ItemBatcherDef {
    max_items_per_batch: Option<u64>,
    max_input_bytes_per_batch: Option<u64>,
    batch_input: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct ItemProcessorDef {
    processor_config: ProcessorConfigDef,
    start_at: String,
    states: Map<String, Value>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ProcessorConfigDef {
    mode: String,
    execution_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct TaskDef {
    #[serde(rename = "Type")]
    ty: String,
    resource: String,
    parameters: Option<Value>,
    #[serde(default)]
    retry: Vec<RetrierDef>,
    #[serde(default)]
    catch: Vec<CatcherDef>,
    end: Option<bool>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct RetrierDef {
    error_equals: Vec<String>,
    interval_seconds: Option<u64>,
    max_attempts: Option<u32>,
    backoff_rate: Option<f64>,
    max_delay_seconds: Option<u64>,
    jitter_strategy: Option<String>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct CatcherDef {
    error_equals: Vec<String>,
    next: String,
    result_path: Option<String>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct TerminalDef {
    #[serde(rename = "Type")]
    ty: String,
    end: Option<bool>,
    error: Option<String>,
    cause: Option<String>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResultWriterDef {
    resource: String,
    parameters: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResultWriterParams {
    bucket: String,
    prefix: Option<String>,
}

/// The CSV header of an `InputType: CSV` reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvHeader {
    /// `CSVHeaderLocation: FIRST_ROW`: the first row names the columns.
    FirstRow,
    /// `CSVHeaderLocation: GIVEN` with these `CSVHeaders`.
    Given(Vec<String>),
}

/// How an `s3:getObject` reader parses the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputType {
    /// One item per row, an object of header → string.
    Csv {
        /// Where the column names come from.
        header: CsvHeader,
        /// `CSVDelimiter`, as a byte.
        delimiter: u8,
    },
    /// One item per element of a top-level array.
    Json,
    /// One item per line.
    Jsonl,
    /// `MANIFEST`: the object is an S3 Inventory `manifest.json` (CSV inventories); one
    /// item `{"Bucket", "Key"[, "VersionId"]}` per row of its data files, the key decoded.
    Manifest,
}

/// Where the items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemSource {
    /// No `ItemReader`: the array at `ItemsPath` (default `$`) of the Map state's input.
    Input(Path),
    /// `arn:aws:states:::s3:listObjectsV2`; its `Parameters` (a template over the Map input)
    /// give `Bucket` and `Prefix`.
    ListObjects(Template),
    /// `arn:aws:states:::s3:getObject`; `Parameters` give `Bucket` and `Key`.
    GetObject(Template, InputType),
}

/// `ItemBatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batcher {
    /// `MaxItemsPerBatch`.
    pub max_items: Option<u64>,
    /// `MaxInputBytesPerBatch`, or the 256 KiB payload limit.
    pub max_bytes: u64,
    /// `BatchInput`, a template over the Map state's input.
    pub batch_input: Option<Template>,
}

/// One `Retry` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// `ErrorEquals`.
    pub errors: Vec<String>,
    /// `IntervalSeconds` (default 1).
    pub interval_seconds: u64,
    /// `MaxAttempts` (default 3).
    pub max_attempts: u32,
    /// `BackoffRate` (default 2.0).
    pub backoff_rate: f64,
    /// `MaxDelaySeconds`.
    pub max_delay_seconds: Option<u64>,
}

/// What a `Catch` leads to: the child's end, since only terminal states are emulated there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchTarget {
    /// A `Pass` (with `End`) or `Succeed` state: the child succeeds, its output the error
    /// object `{"Error": …, "Cause": …}`.
    Succeed,
    /// A `Fail` state: the child fails with its `Error`/`Cause` (the caught ones when unset).
    Fail {
        /// `Error`.
        error: Option<String>,
        /// `Cause`.
        cause: Option<String>,
    },
}

/// One `Catch` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catcher {
    /// `ErrorEquals`.
    pub errors: Vec<String>,
    /// `Next`, by name.
    pub next: String,
    /// What `Next` does.
    pub target: CatchTarget,
}

/// How the task state calls the function.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// `arn:aws:states:::lambda:invoke`: the event is `Payload`; the output is the Invoke
    /// API response (`{"ExecutedVersion", "Payload", "StatusCode"}`).
    LambdaInvoke {
        /// `Payload` (or `Payload.$`), a template over the child's input.
        payload: Template,
    },
    /// A function ARN as `Resource`: the event is the input (or `Parameters`), the output
    /// the function's return value.
    FunctionArn {
        /// `Parameters`, when set.
        parameters: Option<Template>,
    },
}

/// The Lambda task inside `ItemProcessor`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The state's name.
    pub name: String,
    /// How it calls the function.
    pub kind: TaskKind,
    /// The function: `FunctionName` or the ARN, as written.
    pub function: String,
    /// `Retry`.
    pub retry: Vec<Retrier>,
    /// `Catch`.
    pub catch: Vec<Catcher>,
}

/// `ResultWriter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultWriterSpec {
    /// `Parameters.Bucket`.
    pub bucket: String,
    /// `Parameters.Prefix` (may be empty).
    pub prefix: String,
}

/// A Distributed Map state, checked: every field in it is one the runner emulates.
#[derive(Debug, Clone, PartialEq)]
pub struct MapDefinition {
    /// The state machine's `Comment`-independent name for ARNs: the Map state's name.
    pub state_name: String,
    /// `Label`, or the state's name.
    pub label: String,
    /// `InputPath`.
    pub input_path: Option<Path>,
    /// Where the items come from.
    pub source: ItemSource,
    /// `ReaderConfig.MaxItems`.
    pub max_items: Option<u64>,
    /// `ItemSelector`.
    pub selector: Option<Template>,
    /// `ItemBatcher`.
    pub batcher: Option<Batcher>,
    /// `MaxConcurrency`; `0` (the default) means Step Functions' 10,000.
    pub max_concurrency: u32,
    /// `ToleratedFailureCount`.
    pub tolerated_count: Option<u64>,
    /// `ToleratedFailurePercentage`.
    pub tolerated_percentage: Option<f64>,
    /// `ResultWriter`.
    pub result_writer: Option<ResultWriterSpec>,
    /// The Lambda task.
    pub task: TaskSpec,
}

/// The payload limit of a state, and the bound of `MaxInputBytesPerBatch`: 256 KiB.
pub const PAYLOAD_LIMIT: u64 = 256 * 1024;

fn find_jsonata(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::Object(m) => {
            if m.get("QueryLanguage").and_then(Value::as_str) == Some("JSONata") {
                return Some(at.to_owned());
            }
            m.iter()
                .find_map(|(k, v)| find_jsonata(v, &format!("{at}.{k}")))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_jsonata(v, &format!("{at}[{i}]"))),
        _ => None,
    }
}

fn is_distributed_map(state: &Value) -> bool {
    state.get("Type").and_then(Value::as_str) == Some("Map")
        && state
            .pointer("/ItemProcessor/ProcessorConfig/Mode")
            .and_then(Value::as_str)
            == Some("DISTRIBUTED")
}

impl MapDefinition {
    /// Parses an ASL definition and checks its Distributed Map state: `state` names it, or
    /// else it must be the machine's `StartAt` state, or the machine's only Distributed Map
    /// state. The states around it are not run (the runner's input is the Map state's
    /// input), and not checked beyond JSONata.
    ///
    /// ```
    /// let asl = r#"{
    ///   "StartAt": "Map",
    ///   "States": {"Map": {
    ///     "Type": "Map", "End": true,
    ///     "ItemProcessor": {
    ///       "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
    ///       "StartAt": "Call",
    ///       "States": {"Call": {"Type": "Task", "End": true,
    ///         "Resource": "arn:aws:states:::lambda:invoke",
    ///         "Parameters": {"FunctionName": "f", "Payload.$": "$"}}}
    ///     }
    ///   }}
    /// }"#;
    /// let map = s3batch_map::MapDefinition::parse(asl, None).unwrap();
    /// assert_eq!(map.task.function, "f");
    ///
    /// let bad = asl.replace(r#""End": true,"#, r#""End": true, "ResultPath": "$.x","#);
    /// let e = s3batch_map::MapDefinition::parse(&bad, None).unwrap_err();
    /// assert!(e.to_string().contains("ResultPath"), "{e}");
    /// ```
    pub fn parse(definition: &str, state: Option<&str>) -> Result<Self, DefinitionError> {
        let value: Value = serde_json::from_str(definition)?;
        if let Some(at) = find_jsonata(&value, "$") {
            return Err(DefinitionError::Jsonata { at });
        }
        let machine: MachineDef = strict(&value, "the state machine")?;
        let name =
            match state {
                Some(name) => {
                    let s = machine.states.get(name).ok_or_else(|| {
                        DefinitionError::NoMap(format!("the definition has no state {name:?}"))
                    })?;
                    if !is_distributed_map(s) {
                        return Err(DefinitionError::NoMap(format!(
                            "state {name:?} is not a Distributed Map state (Type Map with \
                         ItemProcessor.ProcessorConfig.Mode DISTRIBUTED)"
                        )));
                    }
                    name.to_owned()
                }
                None => {
                    let maps: Vec<&String> = machine
                        .states
                        .iter()
                        .filter(|(_, s)| is_distributed_map(s))
                        .map(|(n, _)| n)
                        .collect();
                    match maps.as_slice() {
                        [] => return Err(DefinitionError::NoMap(
                            "the definition has no Distributed Map state at its top level (Type \
                             Map with ItemProcessor.ProcessorConfig.Mode DISTRIBUTED)"
                                .into(),
                        )),
                        [one] if **one == machine.start_at => (*one).clone(),
                        [one] => {
                            return Err(DefinitionError::NoMap(format!(
                                "the Distributed Map state {one:?} is not the StartAt state \
                             ({:?}); the states before it are not run locally, so name it \
                             with --state {one} and give its input as the input",
                                machine.start_at
                            )))
                        }
                        many => {
                            return Err(DefinitionError::NoMap(format!(
                                "the definition has several Distributed Map states ({}); name one \
                             with --state",
                                many.iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                }
            };
        Self::from_state(&name, &machine.states[&name])
    }

    fn from_state(name: &str, value: &Value) -> Result<Self, DefinitionError> {
        let at = format!("States.{name}");
        let def: MapStateDef = strict(value, &at)?;
        let input_path = def
            .input_path
            .as_deref()
            .map(|p| Path::parse(p, &format!("{at}.InputPath"), false))
            .transpose()?;
        let (source, max_items) = match &def.item_reader {
            None => {
                let items = def.items_path.as_deref().unwrap_or("$");
                (
                    ItemSource::Input(Path::parse(items, &format!("{at}.ItemsPath"), false)?),
                    None,
                )
            }
            Some(reader) => {
                if def.items_path.is_some() {
                    return Err(unsupported(
                        format!("{at}.ItemsPath"),
                        "ItemsPath with an ItemReader is not emulated (the reader gives the \
                         items)",
                    ));
                }
                item_reader(reader, &format!("{at}.ItemReader"))?
            }
        };
        let selector = def
            .item_selector
            .as_ref()
            .map(|s| Template::compile(s, &format!("{at}.ItemSelector"), true))
            .transpose()?;
        let batcher = def
            .item_batcher
            .as_ref()
            .map(|b| item_batcher(b, &format!("{at}.ItemBatcher")))
            .transpose()?;
        if let Some(p) = def.tolerated_failure_percentage {
            if !(0.0..=100.0).contains(&p) {
                return Err(unsupported(
                    format!("{at}.ToleratedFailurePercentage"),
                    format!("{p} is not between 0 and 100"),
                ));
            }
        }
        let result_writer = def
            .result_writer
            .as_ref()
            .map(|w| result_writer(w, &format!("{at}.ResultWriter")))
            .transpose()?;
        let task = item_processor(&def.item_processor, &format!("{at}.ItemProcessor"))?;
        Ok(MapDefinition {
            state_name: name.to_owned(),
            label: def.label.unwrap_or_else(|| name.to_owned()),
            input_path,
            source,
            max_items,
            selector,
            batcher,
            max_concurrency: def.max_concurrency.unwrap_or(0),
            tolerated_count: def.tolerated_failure_count,
            tolerated_percentage: def.tolerated_failure_percentage,
            result_writer,
            task,
        })
    }
}

fn item_reader(value: &Value, at: &str) -> Result<(ItemSource, Option<u64>), DefinitionError> {
    let def: ItemReaderDef = strict(value, at)?;
    let params = def
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported(at, "Parameters (Bucket, and Prefix or Key) is required"))?;
    let config = def.reader_config.unwrap_or(ReaderConfigDef {
        input_type: None,
        csv_header_location: None,
        csv_headers: None,
        csv_delimiter: None,
        max_items: None,
    });
    let params_at = format!("{at}.Parameters");
    let allowed: &[&str] = match def.resource.as_str() {
        "arn:aws:states:::s3:listObjectsV2" => &["Bucket", "Prefix"],
        "arn:aws:states:::s3:getObject" => &["Bucket", "Key"],
        other => {
            return Err(unsupported(
                format!("{at}.Resource"),
                format!(
                    "{other:?} is not emulated; use arn:aws:states:::s3:listObjectsV2 or \
                     arn:aws:states:::s3:getObject"
                ),
            ))
        }
    };
    let Value::Object(map) = params else {
        return Err(unsupported(params_at, "must be an object"));
    };
    for key in map.keys() {
        let bare = key.strip_suffix(".$").unwrap_or(key);
        if !allowed.contains(&bare) {
            return Err(unsupported(
                format!("{params_at}.{key}"),
                format!("not emulated; this reader takes {}", allowed.join(" and ")),
            ));
        }
    }
    let params = Template::compile(params, &params_at, false)?;
    let config_at = format!("{at}.ReaderConfig");
    let csv_only = |field: &str, set: bool| {
        if set {
            Err(unsupported(
                format!("{config_at}.{field}"),
                "is only for InputType CSV",
            ))
        } else {
            Ok(())
        }
    };
    let source = if def.resource.ends_with("listObjectsV2") {
        if let Some(t) = &config.input_type {
            return Err(unsupported(
                format!("{config_at}.InputType"),
                format!("{t:?} is not for listObjectsV2 (a listing has no input type)"),
            ));
        }
        csv_only("CSVHeaderLocation", config.csv_header_location.is_some())?;
        csv_only("CSVHeaders", config.csv_headers.is_some())?;
        csv_only("CSVDelimiter", config.csv_delimiter.is_some())?;
        ItemSource::ListObjects(params)
    } else {
        let input_type = match config.input_type.as_deref() {
            Some("CSV") => {
                let header = match (
                    config.csv_header_location.as_deref(),
                    config.csv_headers.clone(),
                ) {
                    (Some("FIRST_ROW") | None, None) => CsvHeader::FirstRow,
                    (Some("GIVEN"), Some(h)) if !h.is_empty() => CsvHeader::Given(h),
                    (Some("GIVEN"), _) => {
                        return Err(unsupported(
                            format!("{config_at}.CSVHeaders"),
                            "CSVHeaderLocation GIVEN needs a non-empty CSVHeaders",
                        ))
                    }
                    (Some("FIRST_ROW") | None, Some(_)) => {
                        return Err(unsupported(
                            format!("{config_at}.CSVHeaders"),
                            "is only for CSVHeaderLocation GIVEN",
                        ))
                    }
                    (Some(other), _) => {
                        return Err(unsupported(
                            format!("{config_at}.CSVHeaderLocation"),
                            format!("{other:?}: use FIRST_ROW or GIVEN"),
                        ))
                    }
                };
                let delimiter = match config.csv_delimiter.as_deref() {
                    None | Some("COMMA") => b',',
                    Some("PIPE") => b'|',
                    Some("SEMICOLON") => b';',
                    Some("SPACE") => b' ',
                    Some("TAB") => b'\t',
                    Some(other) => {
                        return Err(unsupported(
                            format!("{config_at}.CSVDelimiter"),
                            format!("{other:?}: use COMMA, PIPE, SEMICOLON, SPACE or TAB"),
                        ))
                    }
                };
                InputType::Csv { header, delimiter }
            }
            Some(t @ ("JSON" | "JSONL")) => {
                csv_only("CSVHeaderLocation", config.csv_header_location.is_some())?;
                csv_only("CSVHeaders", config.csv_headers.is_some())?;
                csv_only("CSVDelimiter", config.csv_delimiter.is_some())?;
                if t == "JSON" {
                    InputType::Json
                } else {
                    InputType::Jsonl
                }
            }
            Some("MANIFEST") => {
                csv_only("CSVHeaderLocation", config.csv_header_location.is_some())?;
                csv_only("CSVHeaders", config.csv_headers.is_some())?;
                csv_only("CSVDelimiter", config.csv_delimiter.is_some())?;
                InputType::Manifest
            }
            Some("PARQUET") => {
                return Err(unsupported(
                    format!("{config_at}.InputType"),
                    "PARQUET is not emulated yet; use CSV, JSON, JSONL or MANIFEST",
                ))
            }
            Some(other) => {
                return Err(unsupported(
                    format!("{config_at}.InputType"),
                    format!("{other:?}: use CSV, JSON, JSONL or MANIFEST"),
                ))
            }
            None => {
                return Err(unsupported(
                    format!("{config_at}.InputType"),
                    "s3:getObject needs ReaderConfig.InputType (CSV, JSON, JSONL or MANIFEST)",
                ))
            }
        };
        ItemSource::GetObject(params, input_type)
    };
    Ok((source, config.max_items))
}

fn item_batcher(value: &Value, at: &str) -> Result<Batcher, DefinitionError> {
    let def: ItemBatcherDef = strict(value, at)?;
    if def.max_items_per_batch.is_none() && def.max_input_bytes_per_batch.is_none() {
        return Err(unsupported(
            at,
            "needs MaxItemsPerBatch or MaxInputBytesPerBatch (or both)",
        ));
    }
    if def.max_items_per_batch == Some(0) {
        return Err(unsupported(
            format!("{at}.MaxItemsPerBatch"),
            "must be at least 1",
        ));
    }
    let max_bytes = match def.max_input_bytes_per_batch {
        None => PAYLOAD_LIMIT,
        Some(b @ 1..=PAYLOAD_LIMIT) => b,
        Some(b) => {
            return Err(unsupported(
                format!("{at}.MaxInputBytesPerBatch"),
                format!("{b} is not between 1 and {PAYLOAD_LIMIT} (256 KiB, the payload limit)"),
            ))
        }
    };
    let batch_input = match &def.batch_input {
        None => None,
        Some(v @ Value::Object(_)) => {
            Some(Template::compile(v, &format!("{at}.BatchInput"), false)?)
        }
        Some(_) => {
            return Err(unsupported(
                format!("{at}.BatchInput"),
                "must be a JSON object",
            ))
        }
    };
    Ok(Batcher {
        max_items: def.max_items_per_batch,
        max_bytes,
        batch_input,
    })
}

fn result_writer(value: &Value, at: &str) -> Result<ResultWriterSpec, DefinitionError> {
    let def: ResultWriterDef = strict(value, at)?;
    if def.resource != "arn:aws:states:::s3:putObject" {
        return Err(unsupported(
            format!("{at}.Resource"),
            format!("{:?}: use arn:aws:states:::s3:putObject", def.resource),
        ));
    }
    let params: ResultWriterParams = strict(&def.parameters, &format!("{at}.Parameters"))?;
    Ok(ResultWriterSpec {
        bucket: params.bucket,
        prefix: params.prefix.unwrap_or_default(),
    })
}

fn item_processor(value: &Value, at: &str) -> Result<TaskSpec, DefinitionError> {
    let def: ItemProcessorDef = strict(value, at)?;
    let pc = &def.processor_config;
    if pc.mode != "DISTRIBUTED" {
        return Err(unsupported(
            format!("{at}.ProcessorConfig.Mode"),
            "only DISTRIBUTED is run locally",
        ));
    }
    if let Some(t) = &pc.execution_type {
        if t != "STANDARD" && t != "EXPRESS" {
            return Err(unsupported(
                format!("{at}.ProcessorConfig.ExecutionType"),
                format!("{t:?}: use STANDARD or EXPRESS"),
            ));
        }
    }
    let start_at = format!("{at}.States.{}", def.start_at);
    let start = def.states.get(&def.start_at).ok_or_else(|| {
        unsupported(
            format!("{at}.StartAt"),
            format!("no state {:?}", def.start_at),
        )
    })?;
    let task: TaskDef = strict(start, &start_at)?;
    if task.ty != "Task" {
        return Err(unsupported(
            format!("{start_at}.Type"),
            format!(
                "{:?}: the local runner emulates an ItemProcessor whose StartAt state is one \
                 Lambda Task state with End: true",
                task.ty
            ),
        ));
    }
    if task.end != Some(true) {
        return Err(unsupported(
            format!("{start_at}.End"),
            "the Task state must end the child (End: true); Next is not emulated",
        ));
    }
    let (kind, function) = if task.resource == "arn:aws:states:::lambda:invoke" {
        let params = task.parameters.as_ref().ok_or_else(|| {
            unsupported(
                format!("{start_at}.Parameters"),
                "lambda:invoke needs Parameters with FunctionName and Payload (or Payload.$)",
            )
        })?;
        let Value::Object(map) = params else {
            return Err(unsupported(
                format!("{start_at}.Parameters"),
                "must be an object",
            ));
        };
        for key in map.keys() {
            if !["FunctionName", "Payload", "Payload.$"].contains(&key.as_str()) {
                return Err(unsupported(
                    format!("{start_at}.Parameters.{key}"),
                    "not emulated; lambda:invoke takes FunctionName and Payload (or Payload.$)",
                ));
            }
        }
        let function = map
            .get("FunctionName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                unsupported(
                    format!("{start_at}.Parameters.FunctionName"),
                    "a FunctionName string is required",
                )
            })?;
        let payload_at = format!("{start_at}.Parameters");
        let payload = match (map.get("Payload"), map.get("Payload.$")) {
            (Some(p), None) => Template::compile(p, &format!("{payload_at}.Payload"), false)?,
            (None, Some(Value::String(p))) => {
                Template::Path(Path::parse(p, &format!("{payload_at}.Payload.$"), false)?)
            }
            _ => {
                return Err(unsupported(
                    payload_at,
                    "give exactly one of Payload and Payload.$ (a path string)",
                ))
            }
        };
        (TaskKind::LambdaInvoke { payload }, function.to_owned())
    } else if task.resource.starts_with("arn:aws:lambda:") && task.resource.contains(":function:") {
        let parameters = task
            .parameters
            .as_ref()
            .map(|p| Template::compile(p, &format!("{start_at}.Parameters"), false))
            .transpose()?;
        (TaskKind::FunctionArn { parameters }, task.resource.clone())
    } else {
        return Err(unsupported(
            format!("{start_at}.Resource"),
            format!(
                "{:?} is not emulated; use arn:aws:states:::lambda:invoke or a Lambda \
                 function ARN",
                task.resource
            ),
        ));
    };
    let mut retry = Vec::new();
    for (i, r) in task.retry.iter().enumerate() {
        let rat = format!("{start_at}.Retry[{i}]");
        check_errors(&r.error_equals, &rat, i + 1 == task.retry.len())?;
        if let Some(j) = &r.jitter_strategy {
            if j != "NONE" {
                return Err(unsupported(
                    format!("{rat}.JitterStrategy"),
                    format!("{j:?} is not emulated; use NONE"),
                ));
            }
        }
        let backoff_rate = r.backoff_rate.unwrap_or(2.0);
        if backoff_rate < 1.0 {
            return Err(unsupported(
                format!("{rat}.BackoffRate"),
                "must be at least 1.0",
            ));
        }
        retry.push(Retrier {
            errors: r.error_equals.clone(),
            interval_seconds: r.interval_seconds.unwrap_or(1),
            max_attempts: r.max_attempts.unwrap_or(3),
            backoff_rate,
            max_delay_seconds: r.max_delay_seconds,
        });
    }
    let mut catch = Vec::new();
    let mut reachable = vec![def.start_at.clone()];
    for (i, c) in task.catch.iter().enumerate() {
        let cat = format!("{start_at}.Catch[{i}]");
        check_errors(&c.error_equals, &cat, i + 1 == task.catch.len())?;
        if c.result_path.as_deref().is_some_and(|p| p != "$") {
            return Err(unsupported(
                format!("{cat}.ResultPath"),
                "only \"$\" (the default) is emulated",
            ));
        }
        let next_at = format!("{at}.States.{}", c.next);
        let next = def
            .states
            .get(&c.next)
            .ok_or_else(|| unsupported(format!("{cat}.Next"), format!("no state {:?}", c.next)))?;
        let t: TerminalDef = strict(next, &next_at)?;
        let target = match t.ty.as_str() {
            "Pass" | "Succeed" if t.error.is_none() && t.cause.is_none() => {
                if t.ty == "Pass" && t.end != Some(true) {
                    return Err(unsupported(
                        format!("{next_at}.End"),
                        "a Pass state after a Catch must end the child (End: true)",
                    ));
                }
                CatchTarget::Succeed
            }
            "Fail" if t.end.is_none() => CatchTarget::Fail {
                error: t.error.clone(),
                cause: t.cause.clone(),
            },
            other => {
                return Err(unsupported(
                    next_at,
                    format!(
                        "a Catch may lead only to a Pass (End: true), Succeed or Fail state \
                         locally; this is {other:?} with fields that type does not take"
                    ),
                ))
            }
        };
        reachable.push(c.next.clone());
        catch.push(Catcher {
            errors: c.error_equals.clone(),
            next: c.next.clone(),
            target,
        });
    }
    if let Some(extra) = def.states.keys().find(|k| !reachable.contains(k)) {
        return Err(unsupported(
            format!("{at}.States.{extra}"),
            "not reachable from the Task state or its Catch; only the Task state and its Catch \
             targets are emulated",
        ));
    }
    Ok(TaskSpec {
        name: def.start_at.clone(),
        kind,
        function,
        retry,
        catch,
    })
}

fn check_errors(errors: &[String], at: &str, last: bool) -> Result<(), DefinitionError> {
    if errors.is_empty() {
        return Err(unsupported(
            format!("{at}.ErrorEquals"),
            "needs at least one error name",
        ));
    }
    if errors.iter().any(|e| e == "States.ALL") && (errors.len() > 1 || !last) {
        return Err(unsupported(
            format!("{at}.ErrorEquals"),
            "States.ALL must appear alone, in the last rule",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
