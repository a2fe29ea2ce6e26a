//! Step Functions Distributed Map: the same task function serving a Map child.
//!
//! The handler the attribute generates ([`Handler::serve_bytes`](crate::Handler::serve_bytes))
//! tells the event's shape by rule, in this order, never by guessing:
//!
//! 1. **S3 Batch Operations**: an object with any of S3 Batch's top-level fields
//!    (`invocationSchemaVersion`, `invocationId`, `job`, `tasks`). Answered exactly as
//!    before, with S3 Batch's [`Response`].
//! 2. **A Distributed Map batch** (`ItemBatcher`): an object with `Items`, which must be an
//!    array (else a function error `S3Batch.InvalidEvent`), and an optional `BatchInput`
//!    (an object; `{}` and `null` read as empty).
//! 3. **One Distributed Map item** (after `ItemSelector`): an object with `Key`, `key` or
//!    `s3Key`.
//! 4. Anything else is a function error `S3Batch.UnrecognizedEvent` whose message lists the
//!    accepted shapes.
//!
//! Each item becomes an [`Object`]:
//!
//! | field | read from |
//! |---|---|
//! | `bucket` | the item's `Bucket`/`bucket`, else `BatchInput`'s `Bucket`/`bucket` (a prefix listing's items carry none) |
//! | `key` | `Key`/`key`/`s3Key`, raw unless the [`KeyEncoding`] is [`Url`](KeyEncoding::Url) |
//! | `version_id` | `VersionId`/`versionId`; `""` and `null` are none |
//! | `task_id` | `TaskId`/`taskId`, else `Index` (e.g. `"Index.$": "$$.Map.Item.Index"` in the `ItemSelector`), else the item's position in `Items` (`"0"` for a single item) |
//!
//! `Etag` (with its quotes), `LastModified` (a number or a string), `Size` and
//! `StorageClass` are accepted and ignored. An item with a missing bucket or a field of the
//! wrong type gets its own `PermanentFailure` naming the field; its neighbours still run.
//!
//! The key encoding is the one thing the shape cannot tell: `"KeyEncoding": "url"` in the
//! item or the batch's `BatchInput` (or `map_key_encoding = "url"` on the attribute, see
//! [`OptionsBuilder::map_key_encoding`](crate::OptionsBuilder::map_key_encoding)) decodes
//! keys as S3 Batch manifests encode them; the default is raw. A failed task whose text
//! says the key was not found gets a note naming the encoding applied.
//!
//! A child answers `{"results": [...]}` ([`MapResponse`]), one [`ItemResult`] per item in
//! input order; what a failed item does to the child is the [`MapFailure`] policy.
//!
//! ```
//! use s3batch_core::map::Answer;
//! use s3batch_core::{Handler, Object, Options, TaskError};
//!
//! async fn size(obj: Object) -> Result<String, TaskError> {
//!     Ok(format!("{}/{}", obj.bucket, obj.key))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let handler = Handler::new(size, Options::new()).await.unwrap();
//! let event = br#"{"Items":[{"Etag":"\"d41d\"","Key":"a b.txt","LastModified":1671425036,
//!   "Size":3,"StorageClass":"STANDARD"}],"BatchInput":{"Bucket":"photos"}}"#;
//! let Answer::Map(answer) = handler.serve_bytes(event, &Default::default()).await.unwrap()
//! else { unreachable!() };
//! assert_eq!(
//!     serde_json::to_string(&answer).unwrap(),
//!     r#"{"results":[{"bucket":"photos","key":"a b.txt","versionId":null,"resultCode":"Succeeded","resultString":"photos/a b.txt"}]}"#
//! );
//! # });
//! ```

// Without the `map` feature the handler calls none of the readers (`serve_bytes`), so the
// linker leaves them out; the types stay, as the options and answers name them.
#![cfg_attr(not(feature = "map"), allow(dead_code, unused_imports))]

use crate::envelope::{
    mark_unreadable, unreadable, BadTask, Event, EventField, InvocationError, Job, Object,
};
use crate::key::decode_key;
use crate::response::{
    escaped_len, serialized_len, truncate_measured, water_level, Response, ResultCode, TaskResult,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// `errorType` of an event of no accepted shape.
pub const UNRECOGNIZED_EVENT: &str = "S3Batch.UnrecognizedEvent";
/// `errorType` of a Distributed Map event whose shape is wrong (`Items` not an array,
/// `BatchInput` not an object, not JSON that can be read).
pub const INVALID_EVENT: &str = "S3Batch.InvalidEvent";
/// `errorType` of a batch whose answer cannot fit [`MAP_RESPONSE_BUDGET`] even with every
/// `resultString` empty; no item was run.
pub const BATCH_TOO_LARGE: &str = "S3Batch.BatchTooLarge";
/// `errorType` of a child failed under [`MapFailure::FailBatch`] when an item failed
/// temporarily (a state machine's `Retry` should match it).
pub const TEMPORARY_FAILURE: &str = "S3Batch.TemporaryFailure";
/// `errorType` of a child failed under [`MapFailure::FailBatch`] when items failed, none of
/// them temporarily.
pub const PERMANENT_FAILURE: &str = "S3Batch.PermanentFailure";

/// Step Functions' limit on a state's input or output: 256 KiB (262,144 bytes).
pub const STATE_LIMIT: usize = 256 * 1024;
/// The most a serialized [`MapResponse`] may take: [`STATE_LIMIT`] less 16 KiB for the
/// `lambda:invoke` wrapper (`ExecutedVersion`, `SdkHttpMetadata`, …) around it. Longer
/// `resultString`s are cut first, as for S3 Batch (see
/// [`fit_to_budget`](crate::response::fit_to_budget)).
pub const MAP_RESPONSE_BUDGET: usize = STATE_LIMIT - 16 * 1024;
/// Step Functions' limit on a failure's `cause` (32,768 characters), where a Lambda
/// function error's document lands.
pub const CAUSE_LIMIT: usize = 32_768;
/// The most the `errorMessage` of a failed batch may take, serialized as the JSON string
/// inside the error document: [`CAUSE_LIMIT`] less 1 KiB for the rest of that document.
pub const CAUSE_BUDGET: usize = CAUSE_LIMIT - 1024;

/// The keys of `BatchInput` that s3batch reads itself; the rest are the
/// [`UserArgs`](crate::UserArgs).
pub const RESERVED_KEYS: [&str; 3] = ["Bucket", "bucket", "KeyEncoding"];

/// The fields of an item that describe the object (read, or accepted and ignored); a single
/// item's other fields are its [`UserArgs`](crate::UserArgs).
const ITEM_FIELDS: [&str; 17] = [
    "Key",
    "key",
    "s3Key",
    "Bucket",
    "bucket",
    "VersionId",
    "versionId",
    "TaskId",
    "taskId",
    "Index",
    "KeyEncoding",
    "Etag",
    "ETag",
    "LastModified",
    "Size",
    "StorageClass",
    "LastModifiedDate",
];

/// How a Distributed Map item's key is read.
///
/// ```
/// use s3batch_core::map::KeyEncoding;
/// assert_eq!("url".parse::<KeyEncoding>().unwrap(), KeyEncoding::Url);
/// assert!("base64".parse::<KeyEncoding>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyEncoding {
    /// As stored: a prefix listing's keys, JSON and JSONL items (the default).
    #[default]
    Raw,
    /// URL-encoded as in an S3 Batch CSV manifest (`+` is a space, `%XX` a byte of UTF-8).
    Url,
}

impl KeyEncoding {
    /// `"raw"` or `"url"`: the name `KeyEncoding` takes in `BatchInput`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEncoding::Raw => "raw",
            KeyEncoding::Url => "url",
        }
    }
}

/// A `KeyEncoding` that is neither `raw` nor `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKeyEncoding(pub String);

impl fmt::Display for UnknownKeyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`KeyEncoding` {:?} is not one s3batch knows: expected \"raw\" or \"url\"",
            self.0
        )
    }
}

impl std::error::Error for UnknownKeyEncoding {}

impl std::str::FromStr for KeyEncoding {
    type Err = UnknownKeyEncoding;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("raw") {
            Ok(KeyEncoding::Raw)
        } else if s.eq_ignore_ascii_case("url") {
            Ok(KeyEncoding::Url)
        } else {
            Err(UnknownKeyEncoding(s.to_owned()))
        }
    }
}

/// What a failed item does to a Distributed Map child (a batch, or a single item).
///
/// Either way every item's result is kept: in the child's output, or in the function
/// error's `errorMessage` (see [`CAUSE_BUDGET`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MapFailure {
    /// The child always succeeds with every item's result. Step Functions counts no failed
    /// item: `ToleratedFailureCount`/`Percentage`, `Retry` and redrive see nothing, and the
    /// failures are only in the results (the `ResultWriter` output). Nothing is run twice.
    Report,
    /// The default: when any item failed, the child fails with `errorType`
    /// `S3Batch.TemporaryFailure` (an item failed temporarily, or did not finish before the
    /// deadline) or `S3Batch.PermanentFailure`, and its `errorMessage` is the JSON of every
    /// item's result. Step Functions then counts every item of the batch as failed, its
    /// `Retry` reruns the batch and redrive reruns it: the batch's **succeeded items run
    /// again**, so tasks must be idempotent (as S3 Batch's retries already require).
    #[default]
    FailBatch,
}

/// One item's result in a Distributed Map child's output: S3 Batch's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ItemResult {
    /// The bucket; `null` when the item named none.
    pub bucket: Option<String>,
    /// The key as it arrived in the item (before any URL decoding, so the result can be fed
    /// back as an item with the same `KeyEncoding`); `null` when the item had none.
    pub key: Option<String>,
    /// The version id; `null` when none.
    pub version_id: Option<String>,
    /// The outcome.
    pub result_code: ResultCode,
    /// The task's text, cut to fit as S3 Batch's `resultString` is.
    pub result_string: String,
}

/// What a Distributed Map child returns when it succeeds: `{"results": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MapResponse {
    /// One per item, in input order.
    pub results: Vec<ItemResult>,
}

/// The `errorMessage` of a batch failed under [`MapFailure::FailBatch`], as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FailedBatch {
    /// A sentence for people.
    pub message: String,
    /// How many items failed.
    pub failed: usize,
    /// How many of them failed temporarily.
    pub temporary: usize,
    /// Results left out to fit [`CAUSE_BUDGET`] (succeeded ones first, then failed ones from
    /// the end); every result is also in the function's log then.
    pub omitted: usize,
    /// The items' results, in input order (less `omitted`).
    pub results: Vec<ItemResult>,
}

/// What the handler answers: S3 Batch's response, or a Distributed Map child's output.
/// Serialized as the one it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// The answer to an S3 Batch Operations event.
    S3Batch(Response),
    /// The answer to a Distributed Map batch or item.
    Map(MapResponse),
}

/// An [`Answer`] as the runtime hands it to Lambda, whose client serializes it with
/// serde_json: S3 Batch's response as it is, a Distributed Map child's output as its JSON
/// text ([`MapResponse::to_json`]), which serde_json copies as it is. serde_json writes the
/// same bytes for it as for the [`Answer`].
///
/// ```
/// use s3batch_core::map::{Answer, AnswerJson, MapResponse};
/// let r: MapResponse = serde_json::from_str(
///     r#"{"results":[{"bucket":"b","key":"k","versionId":null,"resultCode":"Succeeded","resultString":"ok"}]}"#,
/// ).unwrap();
/// let answer = Answer::Map(r);
/// let want = serde_json::to_vec(&answer).unwrap();
/// assert_eq!(serde_json::to_vec(&AnswerJson::from(answer)).unwrap(), want);
/// ```
#[derive(Debug, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AnswerJson {
    /// The answer to an S3 Batch Operations event.
    S3Batch(Response),
    /// The answer to a Distributed Map batch or item, as JSON.
    Map(Box<serde_json::value::RawValue>),
}

impl From<Answer> for AnswerJson {
    /// Hot path: serde_json serialized a 1,000-item output in 2,517,601 instructions;
    /// `to_json` writes it in 766,503 (bench/analysis.md, "Distributed Map").
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::S3Batch(r) => AnswerJson::S3Batch(r),
            Answer::Map(m) => AnswerJson::written(m.rows(), plain_len(m.rows())),
        }
    }
}

impl AnswerJson {
    /// A Distributed Map output written from its results (see [`write_results`]), into a
    /// string of `capacity` bytes.
    fn written<'s>(rows: impl Iterator<Item = Row<'s>>, capacity: usize) -> Self {
        let json = write_results(rows, capacity);
        // SAFETY: `write_results` writes one JSON object with no whitespace around it: fixed
        // names and punctuation, `null`, result codes, and strings copied whole when they
        // hold nothing JSON escapes or else written by serde_json (tests compare it with
        // serde_json's output, with every character it escapes).
        AnswerJson::Map(unsafe { serde_json::value::RawValue::from_string_unchecked(json) })
    }

    /// A Distributed Map output as the generated `main` hands it over, written straight from
    /// the results: byte for byte what serde_json writes for [`MapAnswer::into_response`]'s
    /// [`MapResponse`]. An echo borrowed from the event is a string serde_json read without
    /// an escape, so it needs none written again and is copied as it is; one that had an
    /// escape was copied when read and is written as serde_json writes it (its bytes may
    /// then differ from the event's token, never its value).
    pub(crate) fn from_map(answer: &MapAnswer<'_>) -> Self {
        AnswerJson::written(answer.rows(), answer.len)
    }
}

/// A function error with a named `errorType`: what a state machine's `Retry` and `Catch`
/// match.
///
/// ```
/// use s3batch_core::map::{FunctionError, UNRECOGNIZED_EVENT};
/// let e = FunctionError::new(UNRECOGNIZED_EVENT, "no");
/// let d = s3batch_core::lambda_runtime::Diagnostic::from(e);
/// assert_eq!(d.error_type, "S3Batch.UnrecognizedEvent");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    error_type: Cow<'static, str>,
    message: String,
}

impl FunctionError {
    /// An error of type `error_type`.
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type: Cow::Borrowed(error_type),
            message: message.into(),
        }
    }

    /// The `errorType`.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The `errorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for FunctionError {}

impl From<InvocationError> for FunctionError {
    /// An S3 Batch event that cannot be answered keeps its `errorType`, `S3BatchInvalidEvent`.
    fn from(e: InvocationError) -> Self {
        let d = lambda_runtime::Diagnostic::from(e);
        Self {
            error_type: Cow::Owned(d.error_type),
            message: d.error_message,
        }
    }
}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type.into_owned(),
            error_message: e.message,
        }
    }
}

/// A Distributed Map event, read: the job (its arguments), one task per item, and what each
/// result echoes. The echoes may borrow the event's bytes (`'e`): strings read without an
/// escape are not copied (see [`StrToken`]); [`MapEvent::into_owned`] copies them.
pub(crate) struct MapEvent<'e> {
    pub(crate) job: Job,
    pub(crate) tasks: Vec<Result<Object, BadTask>>,
    pub(crate) items: Vec<ItemId<'e>>,
    /// The bytes the items' results take for what they echo (see [`echo_len`]).
    pub(crate) echoes: usize,
    /// `BatchInput`'s bucket, which the results of [`Echo::Batch`] echo (else empty).
    pub(crate) batch_bucket: String,
}

impl MapEvent<'_> {
    /// The event with every echo its own (for an answer that outlives the event's bytes).
    pub(crate) fn into_owned(self) -> MapEvent<'static> {
        let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        MapEvent {
            job: self.job,
            tasks: self.tasks,
            items: self
                .items
                .into_iter()
                .map(|id| ItemId {
                    bucket: match id.bucket {
                        Echo::Batch => Echo::Batch,
                        Echo::Text(b) => Echo::Text(own(b)),
                    },
                    key: own(id.key),
                    version_id: own(id.version_id),
                    encoding: id.encoding,
                })
                .collect(),
            echoes: self.echoes,
            batch_bucket: self.batch_bucket,
        }
    }
}

/// What an item's result echoes, and the key encoding applied to it.
pub(crate) struct ItemId<'e> {
    bucket: Echo<'e>,
    key: Option<Cow<'e, str>>,
    version_id: Option<Cow<'e, str>>,
    encoding: KeyEncoding,
}

/// The bucket an item's result echoes: the item's own (`None`: `null`), or `BatchInput`'s
/// ([`MapEvent::batch_bucket`], not copied per item).
pub(crate) enum Echo<'e> {
    Text(Option<Cow<'e, str>>),
    Batch,
}

impl<'e> ItemId<'e> {
    fn bucket<'s>(&'s self, batch: &'s str) -> Option<&'s str> {
        match &self.bucket {
            Echo::Text(b) => b.as_deref(),
            Echo::Batch => Some(batch),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(m) if stand_in(m).is_some() => "a string that is not valid Unicode",
        Value::Object(_) => "an object",
    }
}

/// The lossy text of a string that was not valid Unicode (see `Event::from_slice`).
fn stand_in(m: &Map<String, Value>) -> Option<&str> {
    match (m.len(), m.get(crate::envelope::UNREADABLE)) {
        (1, Some(Value::String(s))) => Some(s),
        _ => None,
    }
}

fn unrecognized(what: &str) -> FunctionError {
    FunctionError::new(
        UNRECOGNIZED_EVENT,
        format!(
            "event is {what}, which is no shape s3batch accepts: expected an S3 Batch \
             Operations event (`invocationSchemaVersion`, `invocationId`, `job`, `tasks`), a \
             Step Functions Distributed Map batch (`{{\"Items\": [...], \"BatchInput\": \
             {{...}}}}`), or one Distributed Map item (an object with a string `Key`, `key` \
             or `s3Key`, and `Bucket` unless the batch's `BatchInput` has it)"
        ),
    )
}

/// What one reading of an event tells, by the rule in the [module docs](self).
pub(crate) enum Shape<'e> {
    /// An S3 Batch Operations event, as [`Event::from_slice`] reads it.
    S3Batch(Event),
    /// A Distributed Map event, read, or the function error it gets.
    Map(Result<MapEvent<'e>, FunctionError>),
}

/// Reads an event of any shape the handler accepts, telling the shape by the rule in the
/// [module docs](self) (S3 Batch first). `Err` only for bytes [`Event::from_slice`] refuses.
///
/// The top level is read once ([`OnePass`]): S3 Batch's fields into an [`Event`] as
/// [`Event::from_slice`] reads them, `Items` and `BatchInput` as [`read_batch`] reads them,
/// and the rule is applied at the end, so an event with S3 Batch's fields and `Items` (in
/// either order) is S3 Batch's. What that reading refuses (it is stricter than both) is read
/// as before: [`Event::from_slice`], then [`read`]; an event it reads gets what those give.
/// Hot path: the S3 Batch reader first, then [`read`], cost a 1,000-item batch 1,701,680
/// instructions more; S3 Batch events cost the same either way (bench/analysis.md,
/// "Distributed Map").
pub(crate) fn read_event(bytes: &[u8], default: KeyEncoding) -> Result<Shape<'_>, InvocationError> {
    match serde_json::from_slice::<OnePass>(bytes) {
        Ok(one) if one.event.is_s3_batch() => Ok(Shape::S3Batch(one.event)),
        Ok(OnePass {
            items: Some(items),
            batch_input,
            ..
        }) => Ok(Shape::Map(batch(items, batch_input, default))),
        // No S3 Batch field and no `Items` array: `read_batch` would hand it over too.
        Ok(_) => Ok(Shape::Map(read_value(bytes, default))),
        Err(_) => {
            let event = Event::from_slice(bytes)?;
            Ok(if event.is_s3_batch() {
                Shape::S3Batch(event)
            } else {
                Shape::Map(read(bytes, default))
            })
        }
    }
}

/// An event's top level read once for every shape: S3 Batch's fields leniently, as
/// [`Event::from_slice`] reads them; `Items` and `BatchInput` strictly, as [`BatchShape`]
/// reads them; other fields skipped as [`BatchShape`] skips them ([`Skip`]). Only an object
/// is read; anything else is refused (and read as before).
struct OnePass<'de> {
    event: Event,
    items: Option<Vec<StrictItem<'de>>>,
    batch_input: Option<Value>,
}

/// A top-level key of [`OnePass`], told without allocating it.
enum TopKey<'a> {
    Event(EventField<'a>),
    Items,
    BatchInput,
    Other,
}

/// Reads a top-level key: one of S3 Batch's fields finds its place in the event.
struct TopKeySeed<'a>(&'a mut Event);

impl<'de, 'a> serde::de::DeserializeSeed<'de> for TopKeySeed<'a> {
    type Value = TopKey<'a>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<TopKey<'a>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> serde::de::Visitor<'de> for TopKeySeed<'a> {
    type Value = TopKey<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, key: &str) -> Result<TopKey<'a>, E> {
        Ok(match key {
            "Items" => TopKey::Items,
            "BatchInput" => TopKey::BatchInput,
            _ => match self.0.field(key) {
                Some(field) => TopKey::Event(field),
                None => TopKey::Other,
            },
        })
    }
}

impl<'de> Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OnePass<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OnePass<'de>, A::Error> {
                let mut event = Event::default();
                let (mut items, mut batch_input) = (None, None);
                // Every field is read whatever came before: an S3 Batch field may be `null`,
                // which leaves the event without any (`Event::is_s3_batch`).
                while let Some(key) = map.next_key_seed(TopKeySeed(&mut event))? {
                    match key {
                        TopKey::Event(field) => field.read(&mut map)?,
                        TopKey::Items => once(&mut map, &mut items)?,
                        TopKey::BatchInput => once(&mut map, &mut batch_input)?,
                        TopKey::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(OnePass {
                    event,
                    items: items.flatten(),
                    batch_input: batch_input.flatten(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a Distributed Map event (the bytes of an event that is not S3 Batch's).
///
/// A batch is read by [`read_batch`] in one pass into typed structs; whatever that reader
/// refuses (one item, a wrong shape, an item with a field of the wrong type, a string that is
/// not valid Unicode, …) is read again by [`read_value`], which answers each bad item with
/// its own failure. Both give the same answer for every event [`read_batch`] accepts.
pub(crate) fn read(bytes: &[u8], default: KeyEncoding) -> Result<MapEvent<'_>, FunctionError> {
    match read_batch(bytes, default) {
        Some(read) => read,
        None => read_value(bytes, default),
    }
}

/// A batch's top level as [`read_batch`] reads it: an object with an `Items` array; its other
/// fields are skipped (as [`read_value`] ignores them), a field named twice is refused.
struct BatchShape<'de> {
    items: Option<Vec<StrictItem<'de>>>,
    batch_input: Option<Value>,
}

/// One item as [`read_batch`] reads it: an object whose fields s3batch reads are of their
/// types (or `null`), each read under one name only (`Key` or `key` or `s3Key`, …); other
/// fields skipped unread, as S3 Batch's reader skips the fields it does not know
/// (`IgnoredAny`: their JSON syntax checked, not their strings' Unicode, their numbers' range
/// or their depth). Anything else is refused, and the event is read by [`read_value`].
///
/// What [`read_value`] gives such an item is the same: a string that is not valid Unicode
/// or a number out of range in a field it does not read is read there as a stand-in and
/// ignored. Only nesting deeper than serde_json's limit differs: [`read_value`] cannot read
/// the event (a function error), this reader skips it as S3 Batch's does (tests:
/// `map_typed_reader_reads_as_the_value_reader`, `unread_item_fields_are_skipped_unread`).
/// Skipping them as a `Value` is read ([`Skip`]) cost a 1,000-item listing batch 367,653
/// instructions more (`map_once`, `release` profile; bench/analysis.md, "Distributed Map").
struct StrictItem<'de> {
    key: Option<Cow<'de, str>>,
    bucket: Option<Cow<'de, str>>,
    version_id: Option<Cow<'de, str>>,
    task_id: Option<String>,
    key_encoding: Option<String>,
}

/// A string read as `String` reads it, borrowed from the event's bytes when serde_json
/// hands it over so (a string with no escape: its text is the JSON token less its quotes,
/// and nothing in it needs an escape when written again), else its own.
struct StrToken<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for StrToken<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrToken<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<StrToken<'de>, E> {
                Ok(StrToken(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<StrToken<'de>, E> {
                Ok(StrToken(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<StrToken<'de>, E> {
                Ok(StrToken(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value skipped the way serde_json reads it into a `Value` (`deserialize_any`, not
/// `IgnoredAny`): numbers out of range, strings that are not valid Unicode and nesting deeper
/// than serde_json's limit are refused as [`read_value`]'s first reading refuses them. For
/// the top level's other fields (an item's are skipped unread: [`StrictItem`]).
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> serde::de::Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// A task id: a string as it is, a number as `serde_json::Number` writes it (as
/// [`resolve_item`] reads a `Value`'s); any other type is refused.
struct TaskIdText(String);

impl<'de> Deserialize<'de> for TaskIdText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TaskIdText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, s: &str) -> Result<TaskIdText, E> {
                Ok(TaskIdText(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<TaskIdText, E> {
                Ok(TaskIdText(s))
            }
            fn visit_i64<E>(self, n: i64) -> Result<TaskIdText, E> {
                Ok(TaskIdText(serde_json::Number::from(n).to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<TaskIdText, E> {
                Ok(TaskIdText(serde_json::Number::from(n).to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<TaskIdText, E> {
                serde_json::Number::from_f64(n)
                    .map(|n| TaskIdText(n.to_string()))
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The name of a field [`read_batch`] reads, told without allocating it.
enum Name {
    Items,
    BatchInput,
    Key,
    Bucket,
    VersionId,
    TaskId,
    KeyEncoding,
    Other,
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, s: &str) -> Result<Name, E> {
                Ok(match s {
                    "Items" => Name::Items,
                    "BatchInput" => Name::BatchInput,
                    "Key" | "key" | "s3Key" => Name::Key,
                    "Bucket" | "bucket" => Name::Bucket,
                    "VersionId" | "versionId" => Name::VersionId,
                    "TaskId" | "taskId" | "Index" => Name::TaskId,
                    "KeyEncoding" => Name::KeyEncoding,
                    _ => Name::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Sets `slot` once: a field already read (under this name or another) is an error.
fn once<'de, A: serde::de::MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<Option<T>>,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(serde::de::Error::custom("a field read twice"));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> Deserialize<'de> for BatchShape<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BatchShape<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Distributed Map batch")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BatchShape<'de>, A::Error> {
                let (mut items, mut batch_input) = (None, None);
                while let Some(name) = map.next_key::<Name>()? {
                    match name {
                        Name::Items => once(&mut map, &mut items)?,
                        Name::BatchInput => once(&mut map, &mut batch_input)?,
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(BatchShape {
                    items: items.flatten(),
                    batch_input: batch_input.flatten(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for StrictItem<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrictItem<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Distributed Map item")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictItem<'de>, A::Error> {
                let (mut key, mut bucket, mut version_id) = (
                    None::<Option<StrToken>>,
                    None::<Option<StrToken>>,
                    None::<Option<StrToken>>,
                );
                let (mut task_id, mut key_encoding) = (None::<Option<TaskIdText>>, None);
                while let Some(name) = map.next_key::<Name>()? {
                    match name {
                        Name::Key => once(&mut map, &mut key)?,
                        Name::Bucket => once(&mut map, &mut bucket)?,
                        Name::VersionId => once(&mut map, &mut version_id)?,
                        Name::TaskId => once(&mut map, &mut task_id)?,
                        Name::KeyEncoding => once(&mut map, &mut key_encoding)?,
                        // Checked as JSON, not read (see `StrictItem`).
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(StrictItem {
                    key: key.flatten().map(|t| t.0),
                    bucket: bucket.flatten().map(|t| t.0),
                    version_id: version_id.flatten().map(|t| t.0),
                    task_id: task_id.flatten().map(|t| t.0),
                    key_encoding: key_encoding.flatten(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a batch (`{"Items": [...], ...}`) in one pass, without building a `Value` of it
/// (only of `BatchInput`, whose other keys are the user arguments). `None` (read it with
/// [`read_value`]) for an event [`BatchShape`] or an item [`StrictItem`] refuses.
fn read_batch(bytes: &[u8], default: KeyEncoding) -> Option<Result<MapEvent<'_>, FunctionError>> {
    let shape: BatchShape = serde_json::from_slice(bytes).ok()?;
    Some(batch(shape.items?, shape.batch_input, default))
}

/// A batch from its items and `BatchInput` as [`read_batch`] reads them.
fn batch(
    items: Vec<StrictItem<'_>>,
    batch_input: Option<Value>,
    default: KeyEncoding,
) -> Result<MapEvent<'_>, FunctionError> {
    let batch_input = batch_input_map(batch_input)?;
    let mut job = Job {
        arguments_from: Some("BatchInput"),
        ..Job::default()
    };
    match arguments(&batch_input, &RESERVED_KEYS) {
        Ok(a) => job.user_arguments = a,
        Err(e) => job.user_arguments_error = Some(e),
    }
    let defaults = Defaults::of(&batch_input);
    // What `resolve` gives an item with a key and nothing else (a prefix listing's), when
    // `BatchInput` names a bucket and the keys are raw: that bucket, the key as it is.
    let plain_bucket = match (&defaults.bucket, &defaults.encoding) {
        (Ok(Some(b)), Ok(None)) if !b.is_empty() && default == KeyEncoding::Raw => Some(b),
        (Ok(Some(b)), Ok(Some(e))) if !b.is_empty() && e.parse() == Ok(KeyEncoding::Raw) => Some(b),
        _ => None,
    };
    // What such an item's result echoes, less the key: the bucket, and `null` for the
    // version id (see `echo_len`).
    let plain_echo = plain_bucket.map_or(0, |b| json_str_len(b) + "null".len());
    let mut echoes = 0;
    let mut tasks = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        // Hot path: such an item is built here, without `resolve`'s checks, which it passes:
        // the same `Object`, `ItemId` and echo length (a test,
        // `map_typed_reader_reads_as_the_value_reader`, compares them). Through `resolve`,
        // with the echoes summed by `check_size` and the task id by `to_string`, a 1,000-item
        // batch measured +365,379 instructions (`map_once`, `release` profile;
        // bench/analysis.md, "Distributed Map").
        let item = match (plain_bucket, item) {
            (
                Some(bucket),
                StrictItem {
                    key: Some(key),
                    bucket: None,
                    version_id: None,
                    task_id: None,
                    key_encoding: None,
                },
            ) if !key.is_empty() => {
                echoes += plain_echo + json_str_len(&key);
                // The echoes borrow the event (a key with an escape is copied), the
                // bucket is `BatchInput`'s: the answer written from the results
                // (`AnswerJson::from_map`) copies no string per item.
                let echo = key.clone();
                let key = key.into_owned();
                ids.push(ItemId {
                    bucket: Echo::Batch,
                    key: Some(echo),
                    version_id: None,
                    encoding: KeyEncoding::Raw,
                });
                tasks.push(Ok(Object {
                    bucket: bucket.clone(),
                    raw_key: key.clone(),
                    key,
                    version_id: None,
                    task_id: index_text(i),
                }));
                continue;
            }
            (_, item) => item,
        };
        let fields = ItemFields {
            task_id: Ok(item.task_id),
            encoding: Ok(item.key_encoding),
            key: Ok(item.key.map(Cow::into_owned)),
            bucket: Ok(item.bucket.map(Cow::into_owned)),
            version_id: Ok(item.version_id.map(Cow::into_owned)),
        };
        let (id, task) = resolve(fields, i, &defaults, default);
        echoes += echo_len(&id, "");
        ids.push(id);
        tasks.push(task);
    }
    let batch_bucket = plain_bucket.cloned().unwrap_or_default();
    check_size(ids.len(), echoes).map(|echoes| MapEvent {
        job,
        tasks,
        items: ids,
        echoes,
        batch_bucket,
    })
}

/// An item's position as its task id: `index.to_string()` without the formatting machinery
/// (which goes through `Formatter::pad_integral`).
fn index_text(index: usize) -> String {
    itoa::Buffer::new().format(index).to_owned()
}

/// `BatchInput` as a map: absent and `null` read as empty.
fn batch_input_map(value: Option<Value>) -> Result<Map<String, Value>, FunctionError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) if stand_in(&m).is_none() => Ok(m),
        Some(other) => Err(FunctionError::new(
            INVALID_EVENT,
            format!("`BatchInput` is {}, expected an object", type_name(&other)),
        )),
    }
}

/// Reads a Distributed Map event into a `Value` first.
fn read_value(bytes: &[u8], default: KeyEncoding) -> Result<MapEvent<'static>, FunctionError> {
    let value: Value = serde_json::from_slice(bytes).or_else(|e| {
        mark_unreadable(bytes)
            .and_then(|marked| serde_json::from_slice(&marked).ok())
            .ok_or_else(|| {
                FunctionError::new(INVALID_EVENT, format!("event could not be read: {e}"))
            })
    })?;
    let mut top = match value {
        Value::Object(m) if stand_in(&m).is_none() => m,
        other => return Err(unrecognized(type_name(&other))),
    };
    let (items, batch_input, batch) = if let Some(items) = top.remove("Items") {
        let Value::Array(items) = items else {
            return Err(FunctionError::new(
                INVALID_EVENT,
                format!(
                    "`Items` is {}, expected an array of items (a Distributed Map batch is \
                     `{{\"Items\": [...], \"BatchInput\": {{...}}}}`)",
                    type_name(&items)
                ),
            ));
        };
        let batch_input = batch_input_map(top.remove("BatchInput"))?;
        (items, batch_input, true)
    } else if ["Key", "key", "s3Key"].iter().any(|k| top.contains_key(*k)) {
        (vec![Value::Object(top)], Map::new(), false)
    } else {
        // Sorted, whether or not serde_json keeps the order of the keys.
        let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys.len() > 5 {
            keys.truncate(5);
            keys.push("…");
        }
        let what = if keys.is_empty() {
            "an empty object".to_owned()
        } else {
            format!("an object with {}", keys.join(", "))
        };
        return Err(unrecognized(&what));
    };
    let mut job = Job::default();
    let arguments = if batch {
        job.arguments_from = Some("BatchInput");
        arguments(&batch_input, &RESERVED_KEYS)
    } else {
        job.arguments_from = Some("item");
        match &items[0] {
            Value::Object(item) => arguments(item, &ITEM_FIELDS),
            _ => Ok(Default::default()),
        }
    };
    match arguments {
        Ok(a) => job.user_arguments = a,
        Err(e) => job.user_arguments_error = Some(e),
    }
    let defaults = Defaults::of(&batch_input);
    let mut tasks = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (id, task) = resolve_item(item, i, &defaults, default);
        ids.push(id);
        tasks.push(task);
    }
    let echoes = check_size(ids.len(), ids.iter().map(|id| echo_len(id, "")).sum())?;
    Ok(MapEvent {
        job,
        tasks,
        items: ids,
        echoes,
        batch_bucket: String::new(),
    })
}

/// The user arguments in `map` (every key but `skip`): strings as they are, other values as
/// their JSON text; `Err` naming a string that is not valid Unicode.
fn arguments(
    map: &Map<String, Value>,
    skip: &[&str],
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in map {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Object(m) if stand_in(m).is_some() => {
                return Err(unreadable(k, stand_in(m).unwrap_or_default()))
            }
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

/// The first of `names` that `map` has, with its value.
fn field<'a>(
    map: &'a Map<String, Value>,
    names: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    names.iter().find_map(|&n| map.get(n).map(|v| (n, v)))
}

/// A string field: `Ok(None)` when absent or `null`, `Err` naming it when of another type.
fn text(field: Option<(&'static str, &Value)>) -> Result<Option<String>, String> {
    match field {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((name, Value::Object(m))) if stand_in(m).is_some() => {
            Err(unreadable(name, stand_in(m).unwrap_or_default()))
        }
        Some((name, other)) => Err(format!(
            "`{name}` is {}, expected a string",
            type_name(other)
        )),
    }
}

/// What `BatchInput` gives every item: its bucket and key encoding, as read (`Err` naming
/// a field of the wrong type).
struct Defaults {
    bucket: Result<Option<String>, String>,
    encoding: Result<Option<String>, String>,
}

impl Defaults {
    fn of(batch_input: &Map<String, Value>) -> Self {
        Self {
            bucket: text(field(batch_input, &["Bucket", "bucket"])),
            encoding: text(field(batch_input, &["KeyEncoding"]))
                .map_err(|m| format!("BatchInput {m}")),
        }
    }
}

/// An item's fields as read, before they are checked: `Ok(None)` when absent (or `null`),
/// `Err` naming a field of the wrong type. The task id is its text.
struct ItemFields {
    task_id: Result<Option<String>, String>,
    encoding: Result<Option<String>, String>,
    key: Result<Option<String>, String>,
    bucket: Result<Option<String>, String>,
    version_id: Result<Option<String>, String>,
}

/// Resolves an item read into a `Value`.
fn resolve_item(
    item: Value,
    index: usize,
    defaults: &Defaults,
    default: KeyEncoding,
) -> (ItemId<'static>, Result<Object, BadTask>) {
    let Value::Object(item) = item else {
        let id = ItemId {
            bucket: Echo::Text(None),
            key: None,
            version_id: None,
            encoding: default,
        };
        let message = format!(
            "invalid item: item {index} is {}, expected an object",
            type_name(&item)
        );
        return (
            id,
            Err(BadTask {
                task_id: index_text(index),
                message,
            }),
        );
    };
    let task_id = match field(&item, &["TaskId", "taskId", "Index"]) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
        Some((name, other)) => Err(format!(
            "`{name}` is {}, expected a string or a number",
            type_name(other)
        )),
    };
    let fields = ItemFields {
        task_id,
        encoding: text(field(&item, &["KeyEncoding"])),
        key: text(field(&item, &["Key", "key", "s3Key"])),
        bucket: text(field(&item, &["Bucket", "bucket"])),
        version_id: text(field(&item, &["VersionId", "versionId"])),
    };
    resolve(fields, index, defaults, default)
}

/// Checks an item's fields: the object its task runs on, or what is wrong with it (every
/// problem, naming the field), and what its result echoes.
fn resolve(
    fields: ItemFields,
    index: usize,
    defaults: &Defaults,
    default: KeyEncoding,
) -> (ItemId<'static>, Result<Object, BadTask>) {
    let mut problems = Vec::new();
    let task_id = match fields.task_id {
        Ok(Some(t)) => t,
        Ok(None) => index_text(index),
        Err(m) => {
            problems.push(m);
            index_text(index)
        }
    };
    let encoding = match &fields.encoding {
        Ok(Some(e)) => Ok(Some(e.as_str())),
        Ok(None) => match &defaults.encoding {
            Ok(e) => Ok(e.as_deref()),
            Err(m) => Err(m),
        },
        Err(m) => Err(m),
    };
    let encoding = match encoding {
        Ok(None) => default,
        Ok(Some(e)) => e.parse().unwrap_or_else(|e: UnknownKeyEncoding| {
            problems.push(e.to_string());
            default
        }),
        Err(m) => {
            problems.push(m.clone());
            default
        }
    };
    let raw_key = match fields.key {
        Ok(Some(k)) if k.is_empty() => {
            problems.push("`Key` is empty".into());
            Some(k)
        }
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            problems.push("missing `Key` (or `key`, `s3Key`)".into());
            None
        }
        Err(m) => {
            problems.push(m);
            None
        }
    };
    let key = match (&raw_key, encoding) {
        (Some(k), KeyEncoding::Url) if !k.is_empty() => match decode_key(k) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("{e} (KeyEncoding url)"));
                None
            }
        },
        (k, _) => k.clone(),
    };
    let bucket = match fields.bucket {
        Ok(Some(b)) if !b.is_empty() => Some(b),
        Ok(Some(_)) => {
            problems.push("`Bucket` is empty".into());
            None
        }
        Err(m) => {
            problems.push(m);
            None
        }
        Ok(None) => match &defaults.bucket {
            Ok(Some(b)) if !b.is_empty() => Some(b.clone()),
            Ok(Some(_)) => {
                problems.push("`BatchInput.Bucket` is empty".into());
                None
            }
            Ok(None) => {
                problems.push(
                    "missing `Bucket`: the item has none and neither has `BatchInput` (a \
                     prefix listing's items carry no bucket: set `BatchInput.Bucket` in the \
                     ItemBatcher, or `Bucket` in the ItemSelector)"
                        .into(),
                );
                None
            }
            Err(m) => {
                problems.push(format!("BatchInput {m}"));
                None
            }
        },
    };
    let version_id = match fields.version_id {
        Ok(v) => v.filter(|v| !v.is_empty()),
        Err(m) => {
            problems.push(m);
            None
        }
    };
    let id = ItemId {
        bucket: Echo::Text(bucket.clone().map(Cow::Owned)),
        key: raw_key.clone().map(Cow::Owned),
        version_id: version_id.clone().map(Cow::Owned),
        encoding,
    };
    let task = match (bucket, key, raw_key) {
        (Some(bucket), Some(key), Some(raw_key)) if problems.is_empty() => Ok(Object {
            bucket,
            key,
            raw_key,
            version_id,
            task_id,
        }),
        _ => Err(BadTask {
            task_id,
            message: format!("invalid item: {}", problems.join("; ")),
        }),
    };
    (id, task)
}

/// Refuses, before any item runs, a batch of `count` items whose results' echoes take
/// `echoes` bytes (see [`echo_len`]) if its answer cannot fit [`MAP_RESPONSE_BUDGET`] even
/// with every `resultString` empty. `Ok(echoes)` otherwise.
fn check_size(count: usize, echoes: usize) -> Result<usize, FunctionError> {
    // Each result with an empty `resultString`, and a comma; `{"results":[` … `]}`.
    let least =
        count * (RESULT_FIXED + ResultCode::PermanentFailure.as_str().len() + 2 + 1) + echoes + 14;
    if least <= MAP_RESPONSE_BUDGET {
        return Ok(echoes);
    }
    let fit = count * MAP_RESPONSE_BUDGET / least;
    Err(FunctionError::new(
        BATCH_TOO_LARGE,
        format!(
            "a batch of {} items needs at least {least} bytes to answer (one result per item, \
             every resultString empty), over Step Functions' limit of {STATE_LIMIT} bytes per \
             state less 16 KiB for the lambda:invoke wrapper ({MAP_RESPONSE_BUDGET} bytes); \
             no item was run: lower the ItemBatcher's MaxItemsPerBatch (about {fit} items \
             like these fit)",
            count
        ),
    ))
}

/// The note added to a failed item's text that says its key was not found.
fn encoding_note(text: &str, encoding: KeyEncoding) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let missing = ["nosuchkey", "no such key", "notfound", "not found", "404"]
        .iter()
        .any(|m| lower.contains(m));
    missing.then(|| match encoding {
        KeyEncoding::Raw => " [key read with KeyEncoding raw (as is); if the keys are \
                             URL-encoded, as in an S3 Batch CSV manifest, set \"KeyEncoding\": \
                             \"url\" in BatchInput]"
            .to_owned(),
        KeyEncoding::Url => " [key read with KeyEncoding url (URL-decoded); if the keys are \
                             stored as written, set \"KeyEncoding\": \"raw\" in BatchInput]"
            .to_owned(),
    })
}

/// A Distributed Map child's output before it is written: what each item's result echoes
/// (borrowed from the event where it was read without an escape, see [`ItemId`]) and its
/// result, in input order, fitted to [`MAP_RESPONSE_BUDGET`]. The generated `main` writes
/// it as JSON straight from here ([`AnswerJson::from_map`]);
/// [`Handler::serve_bytes`](crate::Handler::serve_bytes) answers it as a [`MapResponse`]
/// ([`MapAnswer::into_response`]), which [`MapResponse::to_json`] writes with the same
/// writer ([`write_results`]).
pub(crate) struct MapAnswer<'e> {
    items: Vec<ItemId<'e>>,
    results: Vec<TaskResult>,
    batch_bucket: String,
    /// Its length written (counted by [`answer`]; at most the budget if it was fitted).
    len: usize,
}

impl MapAnswer<'_> {
    /// Each result as the writer sees it.
    fn rows(&self) -> impl Iterator<Item = Row<'_>> + Clone {
        self.items.iter().zip(&self.results).map(|(id, r)| Row {
            bucket: id.bucket(&self.batch_bucket),
            key: id.key.as_deref(),
            version_id: id.version_id.as_deref(),
            code: r.result_code,
            text: &r.result_string,
        })
    }

    /// The output as a [`MapResponse`], every echo its own.
    pub(crate) fn into_response(self) -> MapResponse {
        let MapAnswer {
            items,
            results,
            batch_bucket,
            ..
        } = self;
        let results = items
            .into_iter()
            .zip(results)
            .map(|(id, r)| ItemResult {
                bucket: match id.bucket {
                    Echo::Text(b) => b.map(Cow::into_owned),
                    Echo::Batch => Some(batch_bucket.clone()),
                },
                key: id.key.map(Cow::into_owned),
                version_id: id.version_id.map(Cow::into_owned),
                result_code: r.result_code,
                result_string: r.result_string,
            })
            .collect();
        MapResponse { results }
    }
}

/// The child's answer from the items' results (in input order): its output, or the function
/// error the policy asks for.
///
/// `echoes` is [`MapEvent::echoes`]: the answer is sized from it and the texts, without
/// writing it.
pub(crate) fn answer<'e>(
    items: Vec<ItemId<'e>>,
    echoes: usize,
    batch_bucket: String,
    mut results: Vec<TaskResult>,
    policy: MapFailure,
) -> Result<MapAnswer<'e>, FunctionError> {
    let count = items.len();
    let mut texts = 0;
    let mut failed = 0;
    let mut temporary = 0;
    for (id, r) in items.iter().zip(&mut results) {
        if r.result_code != ResultCode::Succeeded {
            failed += 1;
            if r.result_code == ResultCode::TemporaryFailure {
                temporary += 1;
            }
            if let Some(note) = encoding_note(&r.result_string, id.encoding) {
                r.result_string.push_str(&note);
            }
        }
        texts += r.result_code.as_str().len() + json_str_len(&r.result_string);
    }
    let total =
        r#"{"results":[]}"#.len() + count * RESULT_FIXED + echoes + texts + count.saturating_sub(1);
    let mut answer = MapAnswer {
        items,
        results,
        batch_bucket,
        len: total.min(MAP_RESPONSE_BUDGET),
    };
    if failed > 0 && policy == MapFailure::FailBatch {
        return Err(fail_batch(
            answer.into_response().results,
            failed,
            temporary,
        ));
    }
    debug_assert_eq!(total, rows_len(answer.rows()));
    fit(
        &mut answer.results,
        total,
        MAP_RESPONSE_BUDGET,
        escaped_len,
        |r| &mut r.result_string,
    );
    Ok(answer)
}

/// Shortens `resultString`s until `response` serializes to at most `budget` bytes, longest
/// first (as [`fit_to_budget`](crate::response::fit_to_budget) does for S3 Batch).
///
/// ```
/// use s3batch_core::map::{fit_map_response, ItemResult, MapResponse};
/// let mut r: MapResponse = serde_json::from_str(&format!(
///     r#"{{"results":[{{"bucket":"b","key":"k","versionId":null,"resultCode":"Succeeded","resultString":"{}"}}]}}"#,
///     "x".repeat(1000)
/// )).unwrap();
/// fit_map_response(&mut r, 300);
/// assert!(serde_json::to_string(&r).unwrap().len() <= 300);
/// assert!(r.results[0].result_string.ends_with("bytes]"));
/// ```
pub fn fit_map_response(response: &mut MapResponse, budget: usize) {
    let total = rows_len(response.rows());
    fit(&mut response.results, total, budget, escaped_len, |r| {
        &mut r.result_string
    });
}

/// The length of `s` serialized as a JSON string by serde_json, quotes included: a quote and
/// a backslash take two bytes, as do the control characters with a short escape (`\b`, `\f`,
/// `\n`, `\r`, `\t`); the other control characters six (`\u00XX`); every other byte one
/// (what [`escaped_len`] counts per character).
fn json_str_len(s: &str) -> usize {
    if is_plain(s.as_bytes()) {
        return 2 + s.len();
    }
    let escapes: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    2 + s.len() + escapes
}

/// Whether JSON needs no escape in `s` (no control character, `"` or `\`): eight bytes at a
/// time, the last eight (or a short string padded with spaces) as one more word, so no byte
/// is looked at alone. Hot path: a count of such bytes (`filter(..).count()`) took ~360
/// instructions for a 50-byte string (bench/analysis.md, "Distributed Map").
fn is_plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    // The high bit of a byte is set where it is below 0x20, a quote or a backslash (exact: a
    // wrong bit can only follow a right one, and then the answer is `false` anyway).
    let bad = |x: u64| {
        let (q, b) = (x ^ QUOTES, x ^ BACKSLASHES);
        (x.wrapping_sub(ONES * 0x20) & !x)
            | (q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
    };
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("eight bytes"));
    let Some(last) = s.len().checked_sub(8) else {
        let mut padded = [b' '; 8];
        padded[..s.len()].copy_from_slice(s);
        return bad(u64::from_ne_bytes(padded)) & HIGH == 0;
    };
    let mut found = bad(word(&s[last..]));
    for chunk in s.chunks_exact(8) {
        found |= bad(word(chunk));
    }
    found & HIGH == 0
}

/// Appends `s` as a JSON string, as serde_json writes it: copied whole when nothing in it
/// needs an escape ([`is_plain`]), else written by serde_json.
fn push_json_str(out: &mut String, s: &str) {
    if is_plain(s.as_bytes()) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

fn push_json_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.push_str("null"),
    }
}

impl MapResponse {
    /// The response as JSON: byte for byte what serde_json writes for it, written directly
    /// (the fields' names and punctuation copied whole, each string copied whole when nothing
    /// in it needs an escape) into a string sized for it.
    ///
    /// ```
    /// use s3batch_core::map::MapResponse;
    /// let r: MapResponse = serde_json::from_str(
    ///     r#"{"results":[{"bucket":"b","key":"a \"q\".txt","versionId":null,"resultCode":"Succeeded","resultString":"ok"}]}"#,
    /// ).unwrap();
    /// assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
    /// ```
    pub fn to_json(&self) -> String {
        write_results(self.rows(), plain_len(self.rows()))
    }

    /// Each result as the writer sees it.
    fn rows(&self) -> impl Iterator<Item = Row<'_>> + Clone {
        self.results.iter().map(|r| Row {
            bucket: r.bucket.as_deref(),
            key: r.key.as_deref(),
            version_id: r.version_id.as_deref(),
            code: r.result_code,
            text: &r.result_string,
        })
    }
}

/// One result as [`write_results`] writes it, wherever its strings are: in a
/// [`MapResponse`], or echoed from the event ([`MapAnswer`]).
#[derive(Clone, Copy)]
struct Row<'s> {
    bucket: Option<&'s str>,
    key: Option<&'s str>,
    version_id: Option<&'s str>,
    code: ResultCode,
    text: &'s str,
}

/// The length of `{"results": [...]}` of `rows` when nothing in them needs an escape (most
/// answers), from the strings' lengths: a string's capacity for [`write_results`].
fn plain_len<'s>(rows: impl Iterator<Item = Row<'s>>) -> usize {
    let plain = |s: Option<&str>| s.map_or(4, |s| s.len() + 2);
    let len: usize = rows
        .map(|r| {
            RESULT_FIXED
                + 1
                + plain(r.bucket)
                + plain(r.key)
                + plain(r.version_id)
                + r.code.as_str().len()
                + r.text.len()
                + 2
        })
        .sum();
    r#"{"results":[]}"#.len() + len
}

/// `{"results": [...]}` of `rows` as JSON, byte for byte what serde_json writes for a
/// [`MapResponse`] of them: the fields' names and punctuation copied whole, each string
/// copied whole when nothing in it needs an escape, into a string of `capacity` bytes (it
/// grows if they are too few).
fn write_results<'s>(rows: impl Iterator<Item = Row<'s>>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    // The last bucket told plain: `BatchInput`'s, shared by the results, is told once.
    let mut plain_bucket: Option<&str> = None;
    out.push_str(r#"{"results":["#);
    for (i, r) in rows.enumerate() {
        out.push_str(if i == 0 {
            r#"{"bucket":"#
        } else {
            r#",{"bucket":"#
        });
        match r.bucket {
            // The same string (address and length) as the last one told plain.
            Some(b) if plain_bucket.is_some_and(|p| std::ptr::eq(p, b)) => {
                out.push('"');
                out.push_str(b);
                out.push('"');
            }
            Some(b) if is_plain(b.as_bytes()) => {
                plain_bucket = Some(b);
                out.push('"');
                out.push_str(b);
                out.push('"');
            }
            bucket => push_json_opt(&mut out, bucket),
        }
        out.push_str(r#","key":"#);
        push_json_opt(&mut out, r.key);
        out.push_str(r#","versionId":"#);
        push_json_opt(&mut out, r.version_id);
        out.push_str(r#","resultCode":""#);
        out.push_str(r.code.as_str());
        out.push_str(r#"","resultString":"#);
        push_json_str(&mut out, r.text);
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn json_opt_len(s: Option<&str>) -> usize {
    s.map_or("null".len(), json_str_len)
}

/// The length of a result, serialized, counted without serializing it.
fn result_len(r: Row<'_>) -> usize {
    RESULT_FIXED
        + json_opt_len(r.bucket)
        + json_opt_len(r.key)
        + json_opt_len(r.version_id)
        + r.code.as_str().len()
        + json_str_len(r.text)
}

/// What every serialized [`ItemResult`] takes besides its strings.
const RESULT_FIXED: usize =
    r#"{"bucket":,"key":,"versionId":,"resultCode":"","resultString":}"#.len();

/// What an item's result takes, serialized, for what it echoes: `bucket`, `key` and
/// `versionId` (`batch`: `BatchInput`'s bucket, for [`Echo::Batch`]).
fn echo_len(id: &ItemId<'_>, batch: &str) -> usize {
    json_opt_len(id.bucket(batch))
        + json_opt_len(id.key.as_deref())
        + json_opt_len(id.version_id.as_deref())
}

/// The length of `{"results": [...]}` of `rows`, serialized, counted without serializing
/// it.
fn rows_len<'s>(rows: impl Iterator<Item = Row<'s>>) -> usize {
    let (count, len) = rows.fold((0usize, 0), |(n, len), r| (n + 1, len + result_len(r)));
    r#"{"results":[]}"#.len() + len + count.saturating_sub(1)
}

/// Cuts the longest `resultString`s (`text` of each result) of `results` so that a document
/// of `total` bytes, in which each character of a `resultString` takes `len(c)` bytes, takes
/// at most `budget`.
fn fit<T>(
    results: &mut [T],
    total: usize,
    budget: usize,
    len: fn(char) -> usize,
    text: fn(&mut T) -> &mut String,
) {
    if total <= budget {
        return;
    }
    let sizes: Vec<usize> = results
        .iter_mut()
        .map(|r| text(r).chars().map(len).sum())
        .collect();
    let texts: usize = sizes.iter().sum();
    let allowed = budget.saturating_sub(total - texts);
    let cap = water_level(&sizes, allowed);
    for (r, size) in results.iter_mut().zip(sizes) {
        if size > cap {
            truncate_measured(text(r), cap, len);
        }
    }
}

/// Bytes a character takes once escaped twice: in the JSON of the `errorMessage`, which is
/// itself a JSON string in the error document.
fn twice_escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' => 4,
        '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 3,
        c if (c as u32) < 0x20 => 7,
        c => c.len_utf8(),
    }
}

/// The function error of a batch under [`MapFailure::FailBatch`]: every item's result in the
/// `errorMessage`, fitted to [`CAUSE_BUDGET`].
fn fail_batch(results: Vec<ItemResult>, failed: usize, temporary: usize) -> FunctionError {
    let error_type = if temporary > 0 {
        TEMPORARY_FAILURE
    } else {
        PERMANENT_FAILURE
    };
    let count = results.len();
    let mut doc = FailedBatch {
        message: format!(
            "{failed} of {count} items failed ({temporary} temporarily); every item's result \
             is in `results`"
        ),
        failed,
        temporary,
        omitted: 0,
        results,
    };
    let message_len =
        |doc: &FailedBatch| serialized_len(&*serde_json::to_string(doc).unwrap_or_default());
    let total = message_len(&doc);
    fit(
        &mut doc.results,
        total,
        CAUSE_BUDGET,
        twice_escaped_len,
        |r| &mut r.result_string,
    );
    let mut total = message_len(&doc);
    if total > CAUSE_BUDGET {
        // Even empty texts are too many: every result goes to the log, and the error keeps
        // the failed items first, dropping results from the end.
        tracing::error!(
            target: crate::logging::TARGET,
            results = %serde_json::to_string(&doc.results).unwrap_or_default(),
            "the failed batch's results do not fit Step Functions' error cause; all of them here"
        );
        let order: Vec<usize> = (0..count)
            .filter(|&i| doc.results[i].result_code != ResultCode::Succeeded)
            .chain((0..count).filter(|&i| doc.results[i].result_code == ResultCode::Succeeded))
            .collect();
        let sizes: Vec<usize> = doc
            .results
            .iter()
            .map(|r| serialized_len(&*serde_json::to_string(r).unwrap_or_default()) - 2 + 1)
            .collect();
        let mut keep = vec![true; count];
        let mut omitted = 0;
        // The digits of `omitted` grow a little; leave room for them.
        for &i in order.iter().rev() {
            if total + 24 <= CAUSE_BUDGET {
                break;
            }
            keep[i] = false;
            total -= sizes[i];
            omitted += 1;
        }
        let mut i = 0;
        doc.results.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        doc.omitted = omitted;
        doc.message = format!(
            "{failed} of {count} items failed ({temporary} temporarily); {omitted} results \
             (succeeded ones first) are left out to fit Step Functions' {CAUSE_LIMIT}-character \
             cause and are in the function's log"
        );
    }
    FunctionError::new(error_type, serde_json::to_string(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a read gives, to compare two reads.
    fn render(read: Result<MapEvent, FunctionError>) -> String {
        match read {
            Err(e) => format!("Err({e:?})"),
            Ok(m) => {
                let ids: Vec<String> = m
                    .items
                    .iter()
                    .map(|i| {
                        format!(
                            "{:?} {:?} {:?} {:?}",
                            i.bucket(&m.batch_bucket),
                            i.key,
                            i.version_id,
                            i.encoding
                        )
                    })
                    .collect();
                format!("{:?}\n{:?}\n{ids:?}\n{}", m.job, m.tasks, m.echoes)
            }
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// The sample events of the readers' tests: items of every kind (good, each field of the
    /// wrong type, not an object, two names for one field, escapes), `BatchInput`s of every
    /// kind, the batches of them the typed reader reads (`typed`), and events it hands over
    /// (not UTF-8, unpaired surrogates, numbers out of range, raw control characters, deep
    /// nesting, arrays, duplicate fields, trailing bytes; last, 10,000 items).
    fn samples() -> Samples {
        let items = vec![
            r#"{"Etag":"\"d41d\"","Key":"photos/a b é.jpg","LastModified":1671425036,"Size":3,"StorageClass":"STANDARD"}"#,
            r#"{"Key":"a+b%C3%A9","Bucket":"own","VersionId":"v1","TaskId":"t-1","KeyEncoding":"url"}"#,
            r#"{"key":"k","bucket":"b2","versionId":"","taskId":7}"#,
            r#"{"s3Key":"k","Index":1.5e2,"LastModified":"2024-01-01T00:00:00Z"}"#,
            r#"{"Key":5}"#,
            r#"{"Key":"k","Bucket":true}"#,
            r#"{"Key":"k","VersionId":[]}"#,
            r#"{"Key":"k","TaskId":{}}"#,
            r#"{"Key":"k","TaskId":null,"Index":3}"#,
            r#"{"Key":"k","KeyEncoding":3}"#,
            r#"{"Key":"k","KeyEncoding":"base64"}"#,
            r#"{"Key":"%zz","KeyEncoding":"url"}"#,
            r#"{"Key":"a","key":"b"}"#,
            r#"{"Key":"a","Key":"b"}"#,
            r#"{"Key":null,"Bucket":null,"VersionId":null}"#,
            r#"{"Key":"","Bucket":""}"#,
            r#"{"K\u0065y":"a\"b\\\u00e9\ud83d\ude00"}"#,
            r#"{"Size":1}"#,
            r#"{}"#,
            r#""x""#,
            "5",
            "null",
            r#"["a","b"]"#,
            r#"{"Key":"k","Extra":{"a":[1,{"b":null}]}}"#,
        ];
        let all = items.join(",");
        let inputs = [
            "".to_owned(),
            r#","BatchInput":{"Bucket":"source","KeyEncoding":"url","n":1,"o":{"a":1},"s":"x"}"#
                .to_owned(),
            r#","BatchInput":{"bucket":""}"#.to_owned(),
            r#","BatchInput":{"Bucket":5,"KeyEncoding":5}"#.to_owned(),
            r#","BatchInput":{"Bucket":"b","KeyEncoding":"nope"}"#.to_owned(),
            r#","BatchInput":null"#.to_owned(),
            r#","BatchInput":"x""#.to_owned(),
            r#","BatchInput":[]"#.to_owned(),
            r#","BatchInput":{"Bucket":"b","s":"\ud800"}"#.to_owned(),
            format!(r#","BatchInput":{{"Bucket":"b","deep":{}}}"#, nested(130)),
            r#","Other":{"x":[1,2]},"Comment":"hi""#.to_owned(),
            // A bucket for every item and raw keys: `batch`'s hot path (under the default
            // encoding raw; not under url, or when an item names more than its key).
            r#","BatchInput":{"Bucket":"source"}"#.to_owned(),
            r#","BatchInput":{"bucket":"source","KeyEncoding":"raw","n":1}"#.to_owned(),
        ];
        let mut typed = Vec::new();
        for input in &inputs {
            typed.push(format!(r#"{{"Items":[{all}]{input}}}"#));
            typed.push(format!(r#"{{"Items":[{}]{input}}}"#, items[0]));
        }
        let mut handed_over: Vec<Vec<u8>> = vec![
            br#"{"Items":5}"#.to_vec(),
            br#"{"Items":null}"#.to_vec(),
            br#"{"Items":{"Key":"a"}}"#.to_vec(),
            br#"{"Key":"a","Bucket":"b"}"#.to_vec(),
            br#"[[{"Key":"a","Bucket":"b"}],{}]"#.to_vec(),
            br#"{"Items":[{"Key":"a"}],"Items":[{"Key":"b"}],"BatchInput":{"Bucket":"b"}}"#
                .to_vec(),
            br#"{"Items":[{"Key":"a"}],"BatchInput":{"Bucket":"b"}} x"#.to_vec(),
            br#"{"Items":[{"Key":"a\ud800","Bucket":"b"},{"Key":"c","Bucket":"b"}]}"#.to_vec(),
            br#"{"Items":[{"Key":"a","TaskId":-1e999,"Bucket":"b"}]}"#.to_vec(),
            b"{\"Items\":[{\"Key\":\"a\tb\",\"Bucket\":\"b\"}]}".to_vec(),
            b"{\"Items\":[{\"Key\":\"a\xff\",\"Bucket\":\"b\"},{\"Key\":\"c\",\"Bucket\":\"b\"}]}"
                .to_vec(),
            format!(
                r#"{{"Deep":{},"Items":[{{"Key":"a","Bucket":"b"}}]}}"#,
                nested(130)
            )
            .into_bytes(),
        ];
        let many = vec![items[0]; 10_000].join(",");
        handed_over
            .push(format!(r#"{{"Items":[{many}],"BatchInput":{{"Bucket":"b"}}}}"#).into_bytes());
        // What the `Value` reader salvages or cannot read, in a field of an item that s3batch
        // does not read: skipped unread (`IgnoredAny`), the batch read in one pass. The last
        // one, nested deeper than serde_json's limit, the `Value` reader cannot read at all.
        let unread = [
            br#"{"Items":[{"Key":"a","Etag":"\udc00","Bucket":"b"}]}"#.to_vec(),
            b"{\"Items\":[{\"Key\":\"a\",\"Etag\":\"\xff\",\"Bucket\":\"b\"}],\"BatchInput\":{\"Bucket\":\"s\"}}"
                .to_vec(),
            b"{\"Items\":[{\"Key\":\"a\",\"x\":{\"\xff\":[\"\\ud800\"]}},{\"Key\":\"c\"}],\"BatchInput\":{\"Bucket\":\"s\"}}"
                .to_vec(),
            br#"{"Items":[{"Key":"a","Size":1e999,"Bucket":"b"}]}"#.to_vec(),
            br#"{"Items":[{"Key":"a","Size":-1e999,"LastModified":1e400}],"BatchInput":{"Bucket":"s"}}"#
                .to_vec(),
            format!(
                r#"{{"Items":[{{"Key":"a","Bucket":"b","Etag":{}}}]}}"#,
                nested(130)
            )
            .into_bytes(),
        ]
        .to_vec();
        Samples {
            items,
            inputs: inputs.to_vec(),
            typed,
            handed_over,
            unread,
        }
    }

    /// The sample events (see [`samples`]).
    struct Samples {
        items: Vec<&'static str>,
        inputs: Vec<String>,
        typed: Vec<String>,
        handed_over: Vec<Vec<u8>>,
        unread: Vec<Vec<u8>>,
    }

    /// The typed reader gives what the `Value` reader gives, for batches of every kind of
    /// item (good, each field of the wrong type, not an object, two names for one field,
    /// escapes), every kind of `BatchInput`, and events it hands over (not UTF-8, unpaired
    /// surrogates, numbers out of range, raw control characters, deep nesting, arrays,
    /// duplicate fields, trailing bytes, too many items); and it reads the batches it should.
    /// What the `Value` reader salvages in an item's field s3batch does not read (not valid
    /// Unicode, out of range) the typed reader skips, for the same answer; nesting deeper than
    /// serde_json's limit there, which the `Value` reader cannot read, it skips too.
    #[test]
    fn map_typed_reader_reads_as_the_value_reader() {
        let Samples {
            items,
            inputs,
            typed,
            handed_over,
            unread,
        } = samples();
        let (deep, salvaged) = unread.split_last().unwrap();
        for event in typed
            .iter()
            .map(|e| e.as_bytes())
            .chain(handed_over.iter().map(Vec::as_slice))
            .chain(salvaged.iter().map(Vec::as_slice))
        {
            for encoding in [KeyEncoding::Raw, KeyEncoding::Url] {
                assert_eq!(
                    render(read(event, encoding)),
                    render(read_value(event, encoding)),
                    "{}",
                    String::from_utf8_lossy(event)
                );
            }
        }
        // Batches of good items are read in one pass (items of every accepted form, any
        // `BatchInput`); a batch with a bad item, and the other events, are handed over.
        let good = format!(r#"{{"Items":[{}]{}}}"#, items[..4].join(","), inputs[1]);
        for event in [&good, &typed[1], &typed[3], &typed[21]] {
            assert!(
                read_batch(event.as_bytes(), KeyEncoding::Raw).is_some(),
                "{event}"
            );
        }
        assert!(read_batch(typed[0].as_bytes(), KeyEncoding::Raw).is_none());
        // The 10,000 items are read, and refused as too many.
        let (many, handed_over) = handed_over.split_last().unwrap();
        assert!(
            matches!(read_batch(many, KeyEncoding::Raw), Some(Err(e)) if e.error_type() == BATCH_TOO_LARGE)
        );
        for event in handed_over {
            assert!(
                read_batch(event, KeyEncoding::Raw).is_none(),
                "{:?}",
                String::from_utf8_lossy(event)
            );
        }
        for event in &unread {
            assert!(
                matches!(read_batch(event, KeyEncoding::Raw), Some(Ok(_))),
                "{:?}",
                String::from_utf8_lossy(event)
            );
        }
        // The one answer that differs: the `Value` reader cannot read an event nested deeper
        // than serde_json's limit (the batch fails); the typed reader skips the deep field,
        // which s3batch does not read, as S3 Batch's reader skips a deep field it does not
        // know (envelope.rs, `deep_or_unreadable_user_arguments_do_not_fail_the_event`): the
        // batch reads as it does without that field.
        for encoding in [KeyEncoding::Raw, KeyEncoding::Url] {
            let old = read_value(deep, encoding).map(|_| ()).unwrap_err();
            assert_eq!(old.error_type(), INVALID_EVENT);
            assert!(old.message().contains("recursion limit"), "{old}");
            let without = br#"{"Items":[{"Key":"a","Bucket":"b"}]}"#;
            assert_eq!(
                render(read(deep, encoding)),
                render(read_value(without, encoding))
            );
        }
    }

    /// `AnswerJson` serializes to the bytes the `Answer` does, for S3 Batch's response and for
    /// a Distributed Map output with strings to escape.
    #[test]
    fn map_answer_json_is_the_answer_serialized() {
        let output = r#"{"results":[{"bucket":"b","key":"a \"q\"\n\u0001é","versionId":"v","resultCode":"TemporaryFailure","resultString":"\\x"},{"bucket":null,"key":null,"versionId":null,"resultCode":"Succeeded","resultString":""}]}"#;
        let s3 = r#"{"invocationSchemaVersion":"1.0","treatMissingKeysAs":"PermanentFailure","invocationId":"i","results":[{"taskId":"t","resultCode":"Succeeded","resultString":"ok"}]}"#;
        let answers = [
            Answer::Map(serde_json::from_str(output).unwrap()),
            Answer::Map(MapResponse { results: vec![] }),
            Answer::S3Batch(serde_json::from_str(s3).unwrap()),
        ];
        for answer in answers {
            let want = serde_json::to_vec(&answer).unwrap();
            assert_eq!(
                String::from_utf8(serde_json::to_vec(&AnswerJson::from(answer)).unwrap()),
                String::from_utf8(want)
            );
        }
        assert_eq!(
            serde_json::to_string(&serde_json::from_str::<MapResponse>(output).unwrap()).unwrap(),
            output
        );
    }

    /// `is_plain` finds every byte JSON escapes, wherever it is (in a word of eight or in the
    /// rest), and nothing else, before or after non-ASCII text.
    #[test]
    fn map_plain_strings_are_told_at_every_position() {
        let specials: Vec<u8> = (0u8..0x20).chain([b'"', b'\\']).collect();
        for len in 0..20 {
            for at in 0..len {
                for &b in &specials {
                    let mut s = "aé".repeat(len).into_bytes();
                    s.truncate(len);
                    s[at] = b;
                    assert!(!is_plain(&s), "{s:?}");
                }
            }
            let plain: String = (0x20u8..0x80)
                .filter(|b| !specials.contains(b))
                .map(char::from)
                .chain("é漢😀".chars())
                .cycle()
                .take(len)
                .collect();
            assert!(is_plain(plain.as_bytes()), "{plain:?}");
        }
    }

    /// What the old two readings give: S3 Batch's reader, then (not S3 Batch's) [`read`].
    fn two_readings(bytes: &[u8], encoding: KeyEncoding) -> String {
        match Event::from_slice(bytes) {
            Err(e) => format!("Err({e:?})"),
            Ok(e) if e.is_s3_batch() => format!("S3Batch({e:?})"),
            Ok(_) => format!("Map({})", render(read(bytes, encoding))),
        }
    }

    fn one_reading(bytes: &[u8], encoding: KeyEncoding) -> String {
        match read_event(bytes, encoding) {
            Err(e) => format!("Err({e:?})"),
            Ok(Shape::S3Batch(e)) => format!("S3Batch({e:?})"),
            Ok(Shape::Map(m)) => format!("Map({})", render(m)),
        }
    }

    /// One reading of the event tells the shape and reads it as the two readings did (S3
    /// Batch's reader, then the Distributed Map reader), for S3 Batch events, batches and
    /// items of every kind, events with S3 Batch's fields and `Items` in either order (S3
    /// Batch's), and events that are not JSON, not objects or not valid Unicode; and the
    /// events of the hot paths are read in one pass.
    #[test]
    fn map_one_reading_tells_and_reads_as_two() {
        let Samples {
            typed,
            handed_over,
            unread,
            ..
        } = samples();
        let v1 = r#"{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},"tasks":[{"taskId":"t","s3Key":"a+b","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::b"}]}"#;
        let v2 = r#"{"invocationSchemaVersion":"2.0","invocationId":"i","job":{"id":"j","userArguments":{"a":"1","n":2}},"tasks":[{"taskId":"t","s3Key":"k","s3VersionId":"v","s3Bucket":"b"}]}"#;
        let item = r#"{"Key":"a","Bucket":"b"}"#;
        let one_pass = [
            v1.to_owned(),
            v2.to_owned(),
            format!(
                r#"{{"Items":[{item}],"BatchInput":{{"Bucket":"b"}},{}"#,
                &v1[1..]
            ),
            format!(
                r#"{},"Items":[{item}],"BatchInput":{{"Bucket":"b"}}}}"#,
                &v1[..v1.len() - 1]
            ),
            format!(r#"{{"Items":[{item}],"tasks":5}}"#),
            format!(r#"{{"invocationId":null,"Items":[{item}]}}"#),
            format!(r#"{{"job":null,"Items":[{item}]}}"#),
            format!(r#"{{"Items":[{item}],"job":null,"BatchInput":5}}"#),
            r#"{"Items":null,"Key":"a","Bucket":"b"}"#.to_owned(),
            item.to_owned(),
            r#"{"Key":"a","Bucket":"b","x":[1,{"y":null}]}"#.to_owned(),
            r#"{"hello":1}"#.to_owned(),
            "{}".to_owned(),
            "{\"\\u0000s3batch:unreadable-string\":\"x\",\"Items\":[]}".to_owned(),
        ];
        let mut events: Vec<Vec<u8>> = one_pass.iter().map(|e| e.clone().into_bytes()).collect();
        events.extend(typed.iter().map(|e| e.clone().into_bytes()));
        events.extend(handed_over);
        events.extend(unread);
        events.extend(
            [
                format!(r#"{{"Items":5,{}"#, &v1[1..]),
                format!(r#"{{"Items":[{item}],"Items":[],{}"#, &v1[1..]),
                format!(r#"{{"Deep":{},{}"#, nested(130), &v1[1..]),
                format!(r#"{},"Size":1e999}}"#, &v1[..v1.len() - 1]),
                "[1]".to_owned(),
                r#""x""#.to_owned(),
                "5".to_owned(),
                "{".to_owned(),
                String::new(),
            ]
            .map(String::into_bytes),
        );
        events.push(b"{\"invocationId\":\"i\",\"tasks\":[{\"taskId\":\"t\xff\"}]}".to_vec());
        events.push(b"{\"Items\":[{\"Key\":\"a\xff\",\"Bucket\":\"b\"}]}".to_vec());
        for event in &events {
            for encoding in [KeyEncoding::Raw, KeyEncoding::Url] {
                assert_eq!(
                    one_reading(event, encoding),
                    two_readings(event, encoding),
                    "{}",
                    String::from_utf8_lossy(event)
                );
            }
        }
        for event in one_pass.iter().chain([&typed[1], &typed[3], &typed[21]]) {
            assert!(
                serde_json::from_slice::<OnePass>(event.as_bytes()).is_ok(),
                "{event}"
            );
        }
        // The batches' items are read in that pass.
        for event in [&typed[1], &typed[3], &typed[21], &one_pass[6]] {
            let one: OnePass = serde_json::from_slice(event.as_bytes()).unwrap();
            assert!(one.items.is_some() && !one.event.is_s3_batch(), "{event}");
        }
        assert!(matches!(
            read_event(one_pass[2].as_bytes(), KeyEncoding::Raw),
            Ok(Shape::S3Batch(_))
        ));
        assert!(matches!(
            read_event(one_pass[3].as_bytes(), KeyEncoding::Raw),
            Ok(Shape::S3Batch(_))
        ));
    }

    /// The sizes counted without serializing are those serde_json writes, for every kind of
    /// character it escapes (or not) and for absent fields; and `to_json` writes what
    /// serde_json writes.
    #[test]
    fn map_sizes_counted_are_the_serialized_sizes() {
        let texts = [
            "",
            "plain",
            "quote \" and \\ backslash",
            "\u{8}\u{c}\n\r\t",
            "\u{0}\u{1}\u{1f} \u{7f}",
            "é ü 漢字 😀",
            "photos/summer 2024/imgé-1.jpg",
        ];
        let mut results = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let some = |s: &str| Some(s.to_owned());
            let r = ItemResult {
                bucket: (i % 2 == 0).then(|| t.to_string()),
                key: some(texts[(i + 1) % texts.len()]),
                version_id: (i % 3 == 0).then(|| texts[(i + 2) % texts.len()].to_owned()),
                result_code: [
                    ResultCode::Succeeded,
                    ResultCode::TemporaryFailure,
                    ResultCode::PermanentFailure,
                ][i % 3],
                result_string: t.to_string(),
            };
            let row = MapResponse {
                results: vec![r.clone()],
            };
            assert_eq!(
                result_len(row.rows().next().unwrap()),
                serialized_len(&r),
                "{r:?}"
            );
            assert_eq!(json_str_len(t), serialized_len(*t), "{t:?}");
            results.push(r);
        }
        for n in 0..=results.len() {
            let response = MapResponse {
                results: results[..n].to_vec(),
            };
            assert_eq!(rows_len(response.rows()), serialized_len(&response));
            assert_eq!(
                response.to_json(),
                serde_json::to_string(&response).unwrap()
            );
        }
        // Every character serde_json escapes, and its neighbours, written as it writes them.
        let every: String = (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        let response = MapResponse {
            results: vec![ItemResult {
                bucket: Some(every.clone()),
                key: Some(every.chars().rev().collect()),
                version_id: Some(every.clone()),
                result_code: ResultCode::PermanentFailure,
                result_string: every,
            }],
        };
        assert_eq!(
            response.to_json(),
            serde_json::to_string(&response).unwrap()
        );
    }

    /// The output the generated `main` writes straight from the results (`MapAnswer`, the
    /// echoes borrowed from the event) is, byte for byte, serde_json's of the `MapResponse`
    /// `serve_bytes` answers, for echoes with every kind of escape in the event (quotes,
    /// backslashes, control characters, `\u` escapes of ASCII, non-ASCII and surrogate
    /// pairs, raw UTF-8), a `BatchInput` bucket with escapes, items with their own bucket and
    /// version id, under both policies and past the budget; and the echoes are the event's
    /// values, borrowed exactly when the event's token has no escape.
    #[test]
    fn map_answer_written_from_the_results_is_the_response_serialized() {
        let keys = [
            r#""plain/key é.txt""#,
            r#""q\"uote\\back""#,
            r#""ctl\n\t\u0001\u001f""#,
            r#""\u00e9\u0041 \ud83d\ude00 \u2028""#,
            r#""/slash\/ok""#,
            r#""é 漢字 😀""#,
        ];
        let mut items: Vec<String> = keys
            .iter()
            .map(|k| format!(r#"{{"Etag":"\"e\"","Key":{k},"Size":1}}"#))
            .collect();
        items.push(r#"{"Key":"own","Bucket":"b\"x","VersionId":"v\u0001"}"#.into());
        items.push(r#"{"Key":"own2","Bucket":"b2","VersionId":"v2"}"#.into());
        items.push(r#"{"Key":"","Bucket":"b"}"#.into());
        items.push(r#"{"Size":3}"#.into());
        let batch_inputs = [r#""b\n\"in""#, r#""plain-bucket""#];
        for batch_input in batch_inputs {
            let event = format!(
                r#"{{"Items":[{}],"BatchInput":{{"Bucket":{batch_input}}}}}"#,
                items.join(",")
            );
            let bytes = event.as_bytes();
            let value: Value = serde_json::from_str(&event).unwrap();
            for (policy, long) in [
                (MapFailure::Report, 0),
                (MapFailure::Report, MAP_RESPONSE_BUDGET / 4),
                (MapFailure::FailBatch, 0),
            ] {
                let read = || match read_event(bytes, KeyEncoding::Raw) {
                    Ok(Shape::Map(Ok(m))) => m,
                    _ => panic!("{event}"),
                };
                // Each item's result: its key as text (a long one past the budget), or the
                // reader's failure.
                let results = |m: &MapEvent<'_>| -> Vec<TaskResult> {
                    m.tasks
                        .iter()
                        .map(|t| match t {
                            Ok(o) => TaskResult::new(
                                String::new(),
                                ResultCode::Succeeded,
                                format!("{}{}", o.key, "x".repeat(long)),
                            ),
                            Err(bad) => TaskResult::new(
                                String::new(),
                                ResultCode::PermanentFailure,
                                bad.message.clone(),
                            ),
                        })
                        .collect()
                };
                let borrowed = read();
                // Borrowed exactly where the event's key has no escape.
                for (i, id) in borrowed.items.iter().take(keys.len()).enumerate() {
                    assert_eq!(
                        matches!(id.key, Some(Cow::Borrowed(_))),
                        !keys[i].contains('\\'),
                        "{}",
                        keys[i]
                    );
                }
                let r = results(&borrowed);
                let written = answer(
                    borrowed.items,
                    borrowed.echoes,
                    borrowed.batch_bucket,
                    r,
                    policy,
                )
                .map(|a| serde_json::to_string(&AnswerJson::from_map(&a)).unwrap());
                let owned = read().into_owned();
                let r = results(&owned);
                let response = answer(owned.items, owned.echoes, owned.batch_bucket, r, policy)
                    .map(|a| serde_json::to_string(&a.into_response()).unwrap());
                assert_eq!(written, response, "{event} {policy:?} {long}");
                if policy == MapFailure::FailBatch {
                    assert!(written.is_err());
                    continue;
                }
                let written = written.unwrap();
                assert!(written.len() <= MAP_RESPONSE_BUDGET, "{}", written.len());
                let out: Value = serde_json::from_str(&written).unwrap();
                let results = out["results"].as_array().unwrap();
                assert_eq!(results.len(), items.len());
                for (item, r) in value["Items"].as_array().unwrap().iter().zip(results) {
                    assert_eq!(r["key"], item["Key"], "{r}");
                    let bucket = item.get("Bucket").unwrap_or(&value["BatchInput"]["Bucket"]);
                    assert_eq!(&r["bucket"], bucket, "{r}");
                    assert_eq!(
                        &r["versionId"],
                        item.get("VersionId").unwrap_or(&Value::Null),
                        "{r}"
                    );
                    let text = r["resultString"].as_str().unwrap();
                    if long > 0 && r["resultCode"] == "Succeeded" {
                        assert!(text.ends_with("bytes]"), "{text}");
                    }
                }
            }
        }
    }
}
