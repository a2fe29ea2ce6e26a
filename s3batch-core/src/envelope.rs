//! The request S3 Batch Operations sends, read leniently.
//!
//! [`Event`] accepts any JSON value without failing, so a field of the wrong type, a missing
//! field or an unknown schema never becomes an opaque Lambda function error. What is wrong
//! is found later, per task ([`Event::into_invocation`]): a task whose fields are bad gets a
//! `PermanentFailure` naming the field; only an event whose ids cannot be recovered is an
//! invocation error.

use crate::key::decode_key;
use crate::wire::{ParseSchemaError, Schema};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

// Defined beside the wire type whose ARN it reads (`TaskBucket::Arn`).
pub use crate::wire::request::bucket_from_arn;

/// One object to process: what a task function receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// The bucket name (schema 1.0: the text after the last `:` of `s3BucketArn`;
    /// schema 2.0: `s3Bucket`).
    pub bucket: String,
    /// The object key, decoded (`+` → space, `%XX` → UTF-8).
    pub key: String,
    /// The key exactly as it arrived in the event.
    pub raw_key: String,
    /// The object version, when the manifest names one.
    pub version_id: Option<String>,
    /// The task id S3 gave this object.
    pub task_id: String,
}

impl Object {
    /// An object with a decoded key, for calling a task function directly in tests.
    ///
    /// ```
    /// let obj = s3batch_core::Object::new("bucket", "a b.txt").with_version_id("v1");
    /// assert_eq!(obj.raw_key, "a+b.txt");
    /// ```
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        let key = key.into();
        Self {
            bucket: bucket.into(),
            raw_key: crate::key::encode_key(&key),
            key,
            version_id: None,
            task_id: String::new(),
        }
    }

    /// Sets the version id.
    pub fn with_version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// Sets the task id.
    pub fn with_task_id(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = task_id.into();
        self
    }
}

/// The job an invocation belongs to; an extractor, so a task can take it as a parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The job id (`job.id`; empty if the event had none).
    pub id: String,
    /// `invocationSchemaVersion`: `"1.0"` or `"2.0"`.
    pub schema_version: String,
    /// The invocation's id.
    pub invocation_id: String,
    /// `job.userArguments` (schema 2.0); empty when absent. Values that were not strings
    /// are kept as their JSON text (see docs/choices.md, "Odd JSON").
    pub user_arguments: BTreeMap<String, String>,
    pub(crate) user_arguments_error: Option<String>,
    /// Where [`user_arguments`](Self::user_arguments) came from, for messages: `None` for
    /// S3 Batch's `userArguments`; `Some("BatchInput")` (or the item) for a Distributed Map.
    pub(crate) arguments_from: Option<&'static str>,
}

impl Job {
    /// [`schema_version`](Self::schema_version) as a [`Schema`]; an error naming the
    /// version when it is not one this crate knows (the response still echoes it).
    pub fn schema(&self) -> Result<Schema, ParseSchemaError> {
        self.schema_version.parse()
    }
}

/// Why an event could not be handled at all; Lambda reports it as a function error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError(pub(crate) String);

impl InvocationError {
    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvocationError {}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "S3BatchInvalidEvent".into(),
            error_message: e.0,
        }
    }
}

/// A JSON value where a string is expected, read without failing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Field {
    #[default]
    Absent,
    Null,
    Str(String),
    /// A string that is not valid Unicode (invalid UTF-8, or an unpaired surrogate escape
    /// such as `\ud800`): its lossy text, with U+FFFD for each unreadable part.
    Unreadable(String),
    /// Something else: the JSON type, for the message.
    Wrong(&'static str),
}

impl Field {
    /// The string, or a message naming `name` and what was there instead.
    fn require(self, name: &str) -> Result<String, String> {
        match self {
            Field::Str(s) => Ok(s),
            Field::Absent => Err(format!("missing `{name}`")),
            Field::Null => Err(format!("`{name}` is null")),
            Field::Wrong(_) | Field::Unreadable(_) => {
                Err(self.wrong(name, "a string").unwrap_or_default())
            }
        }
    }

    /// What is wrong with a value that is there but is not a readable string, naming the
    /// field: the wrong JSON type (`expected` says what was), or not valid Unicode. `None`
    /// for a string, `null` or an absent field.
    fn wrong(&self, name: &str, expected: &str) -> Option<String> {
        match self {
            Field::Wrong(t) => Some(format!("`{name}` is {t}, expected {expected}")),
            Field::Unreadable(lossy) => Some(unreadable(name, lossy)),
            Field::Absent | Field::Null | Field::Str(_) => None,
        }
    }
}

/// The message for a field whose string is not valid Unicode.
pub(crate) fn unreadable(name: &str, lossy: &str) -> String {
    format!(
        "`{name}` is not valid Unicode (invalid UTF-8 or an unpaired surrogate escape; \
         read as {lossy:?}, U+FFFD marking what could not be read)"
    )
}

/// The keys of the one-entry objects that stand in for values serde_json cannot read, when
/// [`Event::from_slice`] salvages an event (see [`mark_unreadable`]): a string that is not
/// valid Unicode, and a number out of `f64`'s range (`1e999`). They start with NUL, which S3
/// never puts in a field name.
const STAND_INS: [&str; 2] = [
    "\u{0}s3batch:unreadable-string",
    "\u{0}s3batch:out-of-range-number",
];
/// The key of the stand-in for a string that is not valid Unicode.
pub(crate) const UNREADABLE: &str = STAND_INS[0];
/// What each of [`STAND_INS`] stands in for, for messages.
const STOOD_IN: [&str; 2] = ["a string that is not valid Unicode", "a number"];

/// Reads the rest of a map; what it stood in for when it was a stand-in.
fn drain_map_stood_in<'de, A: MapAccess<'de>>(
    mut map: A,
) -> Result<Option<&'static str>, A::Error> {
    let first = map.next_key_seed(StandInKey)?;
    if first.is_none() {
        return Ok(None);
    }
    map.next_value::<IgnoredAny>()?;
    drain_map(map)?;
    Ok(first.flatten().map(|i| STOOD_IN[i]))
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The key of the stand-in for a number out of `f64`'s range.
const OUT_OF_RANGE: &str = STAND_INS[1];

/// The index of `key` in [`STAND_INS`], if it is one.
fn stand_in_index(key: &str) -> Option<usize> {
    STAND_INS.iter().position(|s| *s == key)
}

/// Reads a map key as the index of a stand-in (see [`STAND_INS`]), without allocating.
struct StandInKey;

impl<'de> DeserializeSeed<'de> for StandInKey {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StandInKey {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(stand_in_index(v))
    }
}

/// Reads a map key of a lenient struct, without allocating: where its value goes
/// ([`Struct::slot`]).
struct FieldKey<'a, 's>(&'a mut Struct<'s>);

impl<'de, 'a> DeserializeSeed<'de> for FieldKey<'a, '_> {
    type Value = Option<Slot<'a>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for FieldKey<'a, '_> {
    type Value = Option<Slot<'a>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.slot(v))
    }
}

/// Where a lenient reader puts the JSON value it reads: every lenient type is read by this
/// one visitor ([`Lenient`]), so serde_json's `deserialize_any` is compiled once for the whole
/// event, not once per type (see bench/analysis.md, binary size). Each value read replaces
/// what the place held (the last of duplicate keys wins).
enum Slot<'a> {
    /// A value where a string is expected.
    Field(&'a mut Field),
    /// The whole event: an object, or what it was instead.
    Event(&'a mut Event),
    /// `job`: `null` leaves it `None`.
    Job(&'a mut Option<RawJob>),
    /// An element of `tasks`.
    Task(&'a mut RawTask),
    /// `tasks`: `null` leaves it `None`.
    Tasks(&'a mut Option<RawTasks>),
    /// `job.userArguments`: `null` leaves it `None`.
    UserArguments(&'a mut Option<RawUserArguments>),
}

impl<'a> Slot<'a> {
    /// Records a JSON value of the wrong type (`null` where the place cannot be absent);
    /// `what` describes it ("a string", "null", …).
    fn wrong(self, what: &'static str) {
        let not_object = Some(what);
        match self {
            Slot::Field(f) => *f = Field::Wrong(what),
            Slot::Event(e) => {
                *e = Event {
                    not_object,
                    ..Event::default()
                }
            }
            Slot::Job(j) => {
                *j = Some(RawJob {
                    not_object,
                    ..RawJob::default()
                })
            }
            Slot::Task(t) => {
                *t = RawTask {
                    not_object,
                    ..RawTask::default()
                }
            }
            Slot::Tasks(t) => *t = Some(RawTasks::Wrong(what)),
            Slot::UserArguments(u) => *u = Some(RawUserArguments::Wrong(what)),
        }
    }

    /// Records `null`.
    fn null(self) {
        match self {
            Slot::Field(f) => *f = Field::Null,
            Slot::Job(j) => *j = None,
            Slot::Tasks(t) => *t = None,
            Slot::UserArguments(u) => *u = None,
            other @ (Slot::Event(_) | Slot::Task(_)) => other.wrong("null"),
        }
    }

    /// For a lenient struct (`{…}` where an object is expected): its cleared value, the
    /// JSON names of its fields, and where each field goes; `None` for the other places.
    fn into_struct(self) -> Option<Struct<'a>> {
        match self {
            Slot::Event(e) => {
                *e = Event::default();
                Some(Struct::Event(e))
            }
            Slot::Job(j) => Some(Struct::Job(j.insert(RawJob::default()))),
            Slot::Task(t) => {
                *t = RawTask::default();
                Some(Struct::Task(t))
            }
            Slot::Field(_) | Slot::Tasks(_) | Slot::UserArguments(_) => None,
        }
    }
}

/// A lenient struct being filled from a JSON object: the named fields are set (the last of
/// duplicate keys wins), unknown keys are skipped.
enum Struct<'a> {
    Event(&'a mut Event),
    Job(&'a mut RawJob),
    Task(&'a mut RawTask),
}

impl Struct<'_> {
    /// Where the value of the key `key` goes (see the table, [`lenient_structs!`]).
    fn slot(&mut self, key: &str) -> Option<Slot<'_>> {
        match self {
            Struct::Event(e) => e.slot(key),
            Struct::Job(j) => j.slot(key),
            Struct::Task(t) => t.slot(key),
        }
    }
}

/// A field of a lenient struct, as the [`Slot`] its JSON value is read into (the table,
/// [`lenient_structs!`], finds a field's slot by its type).
trait Place {
    fn slot(&mut self) -> Slot<'_>;
}

impl Place for Field {
    fn slot(&mut self) -> Slot<'_> {
        Slot::Field(self)
    }
}

impl Place for Option<RawJob> {
    fn slot(&mut self) -> Slot<'_> {
        Slot::Job(self)
    }
}

impl Place for Option<RawTasks> {
    fn slot(&mut self) -> Slot<'_> {
        Slot::Tasks(self)
    }
}

impl Place for Option<RawUserArguments> {
    fn slot(&mut self) -> Slot<'_> {
        Slot::UserArguments(self)
    }
}

/// Reads any JSON value into its [`Slot`] without failing: what is of the wrong type is
/// recorded as such (arrays and objects are drained).
struct Lenient<'a>(Slot<'a>);

impl<'de> DeserializeSeed<'de> for Lenient<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Lenient<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        match self.0 {
            Slot::Field(f) => *f = Field::Str(v.to_owned()),
            other => other.wrong("a string"),
        }
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        match self.0 {
            Slot::Field(f) => *f = Field::Str(v),
            other => other.wrong("a string"),
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.wrong("a boolean");
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.wrong("a number");
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.0.wrong("a number");
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.wrong("a number");
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.null();
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.null();
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Slot::Tasks(tasks) = self.0 else {
            drain_seq(seq)?;
            self.0.wrong("an array");
            return Ok(());
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(1024));
        loop {
            let mut task = RawTask::default();
            if seq
                .next_element_seed(Lenient(Slot::Task(&mut task)))?
                .is_none()
            {
                break;
            }
            // Resolved as it is read: the list holds what `into_invocation` hands over.
            out.push(resolve_task(task));
        }
        *tasks = Some(RawTasks::List(out));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.0 {
            Slot::Field(f) => *f = field_from_map(map)?,
            Slot::UserArguments(u) => *u = Some(user_arguments(map)?),
            Slot::Tasks(t) => {
                *t = Some(RawTasks::Wrong(
                    drain_map_stood_in(map)?.unwrap_or("an object"),
                ))
            }
            slot => {
                let s = slot.into_struct().expect("every other place is a struct");
                fill_struct(s, map)?;
            }
        }
        Ok(())
    }
}

/// A JSON object where a string is expected: what it stands in for (a string that is not
/// valid Unicode, a number out of range), or "an object".
fn field_from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Field, A::Error> {
    match map.next_key_seed(StandInKey)? {
        None => Ok(Field::Wrong("an object")),
        Some(Some(1)) => {
            map.next_value::<IgnoredAny>()?;
            drain_map(map)?;
            Ok(Field::Wrong("a number"))
        }
        Some(Some(_)) => {
            let lossy: String = map.next_value()?;
            drain_map(map)?;
            Ok(Field::Unreadable(lossy))
        }
        Some(None) => {
            map.next_value::<IgnoredAny>()?;
            drain_map(map)?;
            Ok(Field::Wrong("an object"))
        }
    }
}

/// Fills a lenient struct from a JSON object.
fn fill_struct<'de, A: MapAccess<'de>>(mut s: Struct<'_>, mut map: A) -> Result<(), A::Error> {
    while let Some(slot) = map.next_key_seed(FieldKey(&mut s))? {
        match slot {
            Some(slot) => map.next_value_seed(Lenient(slot))?,
            None => drop(map.next_value::<IgnoredAny>()?),
        }
    }
    Ok(())
}

/// `job.userArguments` as an object: its values as strings, and what was wrong with one of
/// them.
fn user_arguments<'de, A: MapAccess<'de>>(mut map: A) -> Result<RawUserArguments, A::Error> {
    let mut out = BTreeMap::new();
    let mut problem = None;
    while let Some(k) = map.next_key::<String>()? {
        if let Some(i) = stand_in_index(&k) {
            map.next_value::<IgnoredAny>()?;
            drain_map(map)?;
            return Ok(RawUserArguments::Wrong(STOOD_IN[i]));
        }
        // Captured as text, not parsed: a value nested deeper than serde_json's recursion
        // limit must not fail the event.
        let raw: Box<serde_json::value::RawValue> = map.next_value()?;
        match argument_value(raw.get()) {
            Ok(v) => {
                out.insert(k, v);
            }
            Err(lossy) => {
                problem
                    .get_or_insert_with(|| unreadable(&format!("job.userArguments.{k}"), &lossy));
            }
        }
    }
    Ok(RawUserArguments::Map(out, problem))
}

/// Declares the lenient structs from one table: per struct, its fields with their JSON
/// names. Each struct gets its fields (and `not_object`: what the JSON value was, when it was
/// not an object), `NAMES` (the JSON names, for tests) and `slot`, the `match` that finds
/// where a key's value goes (the field's [`Place`]). A new field is one line of the table,
/// then its reading in [`resolve_task`] (a task's) or [`Event::into_invocation`].
///
/// Not a hot-path shape any more: the hand-written `match` over every struct's names that this
/// replaces saved ~430 instructions per 1-task invocation against a search of a list chosen at
/// run time; a search of each struct's own constant list (`NAMES.iter().position(..)`, then
/// the field by index) measured +4 per 1-task invocation and +202 per 100-task one against
/// this `match`, inside the noise (`SECTIONS=5 bench/run.sh`, as deployed; bench/analysis.md,
/// "Hand-written shapes"). The `match` stays as the plainer code to generate.
macro_rules! lenient_structs {
    ($(
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $($json:literal => $field:ident: $ty:ty,)*
        }
    )*) => {$(
        $(#[$attr])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $($field: $ty,)*
            not_object: Option<&'static str>,
        }

        impl $name {
            /// The JSON names of the fields, in the table's order.
            #[cfg(test)]
            const NAMES: &'static [&'static str] = &[$($json),*];

            /// Where the value of the key `key` goes: its field's slot; `None` for a key
            /// whose value is skipped (unknown, or a stand-in, which is recorded as what the
            /// struct is instead).
            fn slot(&mut self, key: &str) -> Option<Slot<'_>> {
                match key {
                    $($json => Some(Place::slot(&mut self.$field)),)*
                    _ => {
                        if let Some(i) = stand_in_index(key) {
                            self.not_object = Some(STOOD_IN[i]);
                        }
                        None
                    }
                }
            }
        }
    )*};
}

lenient_structs! {
    /// The request as it arrived: any JSON value deserializes into it.
    pub struct Event {
        "invocationSchemaVersion" => schema: Field,
        "invocationId" => invocation_id: Field,
        "job" => job: Option<RawJob>,
        "tasks" => tasks: Option<RawTasks>,
    }

    struct RawJob {
        "id" => id: Field,
        "userArguments" => user_arguments: Option<RawUserArguments>,
    }

    struct RawTask {
        "taskId" => task_id: Field,
        "s3Key" => s3_key: Field,
        "s3VersionId" => s3_version_id: Field,
        "s3BucketArn" => s3_bucket_arn: Field,
        "s3Bucket" => s3_bucket: Field,
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut event = Event::default();
        Lenient(Slot::Event(&mut event)).deserialize(d)?;
        Ok(event)
    }
}

/// One of S3 Batch's top-level fields, found by its key in an event being read: for a
/// reader that reads an event once whatever its shape (`map::read_event`).
pub(crate) struct EventField<'a>(Slot<'a>);

impl Event {
    /// Where the value of the top-level key `key` goes when it is one of S3 Batch's fields,
    /// as [`Event::from_slice`] reads it; `None` for another key (a stand-in key is recorded
    /// as `from_slice` records it).
    pub(crate) fn field(&mut self, key: &str) -> Option<EventField<'_>> {
        self.slot(key).map(EventField)
    }
}

impl EventField<'_> {
    /// Reads the field's value, leniently, as [`Event::from_slice`] does.
    pub(crate) fn read<'de, A: MapAccess<'de>>(self, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(Lenient(self.0))
    }
}

/// `tasks`: an array of anything (each element resolved as it is read), or what it was
/// instead.
#[derive(Debug)]
enum RawTasks {
    List(Vec<Result<Object, BadTask>>),
    Wrong(&'static str),
}

/// `userArguments`: a map whose values should be strings, or what it was instead (`null`
/// reads as absent).
#[derive(Debug)]
enum RawUserArguments {
    /// The arguments, and what was wrong with one of them.
    Map(BTreeMap<String, String>, Option<String>),
    Wrong(&'static str),
}

/// One user-argument value from its JSON text: a string as it is, anything else as its JSON
/// text as it arrived without the whitespace between tokens ([`minify`]). `Err` with the
/// lossy text for a string that is not valid Unicode.
///
/// Not read through `serde_json::Value`: that would sort an object's keys and rewrite its
/// numbers, and reading one was the only use of `Value`'s reader in a build without the `map`
/// feature: this cut 3,656 bytes of the no-client bootstrap, 2,398,304 → 2,394,648
/// (BENCHMARKS.md §3; `cargo lambda build --release -p s3batch-bench-no-s3`).
fn argument_value(text: &str) -> Result<String, String> {
    if text.starts_with('"') {
        // The only way a JSON string fails to read here is an unpaired surrogate escape.
        return serde_json::from_str::<String>(text).map_err(|_| {
            let fixed = fix_surrogate_escapes(text.as_bytes());
            serde_json::from_slice::<String>(fixed.as_deref().unwrap_or(text.as_bytes()))
                .unwrap_or_default()
        });
    }
    let json = minify(text);
    // What `Event::from_slice` wrote in place of a value serde_json cannot read.
    if let Some(lossy) = stand_in_text(&json, UNREADABLE) {
        return Err(lossy);
    }
    Ok(stand_in_text(&json, OUT_OF_RANGE).unwrap_or(json))
}

/// The text of the one-entry object `{"<key>":"<text>"}` that [`stand_in`] writes, when
/// `json` is one.
fn stand_in_text(json: &str, key: &str) -> Option<String> {
    let value = json
        .strip_prefix("{\"\\u0000")?
        .strip_prefix(&key[1..])?
        .strip_prefix("\":")?
        .strip_suffix('}')?;
    serde_json::from_str(value).ok()
}

/// Valid JSON text without the whitespace between its tokens; strings as they are.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    out
}

/// A task that could not be turned into an [`Object`]: its id (empty if it had none) and
/// what was wrong, naming the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadTask {
    /// The task's `taskId`, or empty.
    pub task_id: String,
    /// What was wrong.
    pub message: String,
}

/// An event whose ids were recovered: the job and, per task, an object or what was wrong.
#[derive(Debug)]
pub struct Invocation {
    /// The job, with the schema version and invocation id.
    pub job: Job,
    /// One entry per element of `tasks`, in order.
    pub tasks: Vec<Result<Object, BadTask>>,
}

impl Event {
    /// Whether the event is S3 Batch Operations' own: it has at least one of S3 Batch's
    /// top-level fields (`invocationSchemaVersion`, `invocationId`, `job`, `tasks`). Checked
    /// before any other shape: a cheap look at fields already read.
    pub(crate) fn is_s3_batch(&self) -> bool {
        !matches!(self.schema, Field::Absent)
            || !matches!(self.invocation_id, Field::Absent)
            || self.job.is_some()
            || self.tasks.is_some()
    }

    /// Parses JSON bytes. Only bytes that are not JSON at all fail here.
    ///
    /// A string that is not valid Unicode (invalid UTF-8, or an unpaired surrogate escape
    /// such as `\ud800`) makes serde_json reject the whole document; the event is then read
    /// again with each such string marked, so that only the task (or job field) holding it
    /// fails, naming the field. The marked string is kept as its lossy text (U+FFFD for each
    /// unreadable part): an unreadable `taskId` is echoed that way.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, InvocationError> {
        serde_json::from_slice(bytes).or_else(|e| {
            mark_unreadable(bytes)
                .and_then(|marked| serde_json::from_slice(&marked).ok())
                .ok_or_else(|| InvocationError(format!("event is not valid JSON: {e}")))
        })
    }

    /// Checks the ids and resolves every task. Fails only when the response could not echo
    /// the invocation: the event is not an object, or `invocationId` or the `tasks` array
    /// is missing or of the wrong type.
    pub fn into_invocation(self) -> Result<Invocation, InvocationError> {
        if let Some(t) = self.not_object {
            return Err(InvocationError(format!(
                "event is {t}, expected a JSON object"
            )));
        }
        let invocation_id = self
            .invocation_id
            .require("invocationId")
            .map_err(|m| InvocationError(format!("event has no usable id: {m}")))?;
        let tasks = match self.tasks {
            Some(RawTasks::List(tasks)) => tasks,
            None => return Err(InvocationError("event has no `tasks` array".into())),
            Some(RawTasks::Wrong(t)) => {
                return Err(InvocationError(format!(
                    "event `tasks` is {t}, expected an array"
                )))
            }
        };
        let schema_version = match self.schema {
            Field::Str(s) => s,
            // The field is documented as always present; 1.0 is the default at job creation.
            _ => Schema::default().as_str().to_owned(),
        };
        let mut job = Job {
            schema_version,
            invocation_id,
            ..Job::default()
        };
        // A job-level field that cannot be read fails every task.
        let mut job_problem = None;
        if let Some(raw) = self.job {
            match raw.id {
                Field::Str(id) => job.id = id,
                Field::Unreadable(lossy) => {
                    job_problem = Some(unreadable("job.id", &lossy));
                    job.id = lossy;
                }
                _ => {}
            }
            match (raw.not_object, raw.user_arguments) {
                (Some(t), _) => {
                    job.user_arguments_error = Some(format!("`job` is {t}, expected an object"))
                }
                (None, Some(RawUserArguments::Map(m, problem))) => {
                    job.user_arguments = m;
                    job.user_arguments_error = problem;
                }
                (None, Some(RawUserArguments::Wrong(t))) => {
                    job.user_arguments_error =
                        Some(format!("`job.userArguments` is {t}, expected an object"))
                }
                (None, None) => {}
            }
        }
        let tasks = match job_problem {
            None => tasks,
            Some(problem) => tasks
                .into_iter()
                .map(|t| {
                    let (task_id, message) = match t {
                        Ok(o) => (o.task_id, format!("invalid job: {problem}")),
                        Err(b) => (b.task_id, format!("{}; invalid job: {problem}", b.message)),
                    };
                    Err(BadTask { task_id, message })
                })
                .collect(),
        };
        Ok(Invocation { job, tasks })
    }
}

fn resolve_task(raw: RawTask) -> Result<Object, BadTask> {
    if let Some(t) = raw.not_object {
        return Err(BadTask {
            task_id: String::new(),
            message: format!("task is {t}, expected an object"),
        });
    }
    let mut problems = Vec::new();
    let task_id = match raw.task_id {
        // Echoed as its lossy text: the closest string to what S3 sent (see docs/choices.md).
        Field::Unreadable(lossy) => {
            problems.push(unreadable("taskId", &lossy));
            lossy
        }
        other => other.require("taskId").unwrap_or_else(|m| {
            problems.push(m);
            String::new()
        }),
    };
    let mut key = None;
    let raw_key = match raw.s3_key.require("s3Key") {
        // The job runner rejects empty keys in manifests; no object has one.
        Ok(k) if k.is_empty() => {
            problems.push("`s3Key` is empty".into());
            k
        }
        Ok(k) => {
            match decode_key(&k) {
                Ok(d) => key = Some(d),
                Err(e) => problems.push(e.to_string()),
            }
            k
        }
        Err(m) => {
            problems.push(m);
            String::new()
        }
    };
    let bucket = match (raw.s3_bucket, raw.s3_bucket_arn) {
        (Field::Str(b), _) if !b.is_empty() => Some(b),
        (Field::Str(_), _) => {
            problems.push("`s3Bucket` is empty".into());
            None
        }
        (b @ (Field::Wrong(_) | Field::Unreadable(_)), _) => {
            problems.extend(b.wrong("s3Bucket", "a string"));
            None
        }
        (_, Field::Str(mut arn)) => match bucket_from_arn(&arn).map(str::len) {
            // The ARN cut down to its tail, the bucket name: no copy.
            Some(len) => {
                arn.drain(..arn.len() - len);
                Some(arn)
            }
            None => {
                problems.push(format!(
                    "`s3BucketArn` {arn:?} does not end in a bucket name"
                ));
                None
            }
        },
        (_, arn @ (Field::Wrong(_) | Field::Unreadable(_))) => {
            problems.extend(arn.wrong("s3BucketArn", "a string"));
            None
        }
        _ => {
            problems.push("missing `s3Bucket` (schema 2.0) or `s3BucketArn` (schema 1.0)".into());
            None
        }
    };
    let version_id = match raw.s3_version_id {
        Field::Str(v) if !v.is_empty() => Some(v),
        // Absent, null or empty: no version.
        other => {
            problems.extend(other.wrong("s3VersionId", "a string or null"));
            None
        }
    };
    match (key, bucket) {
        (Some(key), Some(bucket)) if problems.is_empty() => Ok(Object {
            bucket,
            key,
            raw_key,
            version_id,
            task_id,
        }),
        _ => Err(BadTask {
            task_id,
            message: format!("invalid task: {}", problems.join("; ")),
        }),
    }
}

/// The event with every string that is not valid Unicode (invalid UTF-8, or an unpaired
/// surrogate escape) replaced by readable JSON: in key position by its lossy text, as a value
/// by the one-entry object `{"\u0000s3batch:unreadable-string": "<lossy text>"}`, which the
/// lenient types read as "not valid Unicode". `None` when there is no such string (the bytes
/// are broken in some other way). Only run after serde_json rejected the event.
///
/// Outside strings, valid JSON has no `"` and no `\\`, so a string is found by its quotes
/// alone; invalid JSON stays invalid and is reported as such.
pub(crate) fn mark_unreadable(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b'"' => {
                let mut j = start + 1;
                let end = loop {
                    match bytes.get(j) {
                        None => break None,
                        Some(b'\\') => j += 2,
                        Some(b'"') => break Some(j),
                        Some(_) => j += 1,
                    }
                };
                let Some(end) = end else { break };
                i = end + 1;
                let body = &bytes[start + 1..end];
                // A raw control character is not allowed in a JSON string, but the string is
                // still clear: it reads as if the character were escaped.
                let escaped = body.iter().any(|&b| b < 0x20).then(|| {
                    let mut e = Vec::with_capacity(body.len() + 16);
                    for &b in body {
                        if b < 0x20 {
                            e.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                        } else {
                            e.push(b);
                        }
                    }
                    e
                });
                let body = escaped.as_deref().unwrap_or(body);
                let fixed = fix_surrogate_escapes(body);
                if fixed.is_none() && std::str::from_utf8(body).is_ok() {
                    if escaped.is_some() {
                        out.extend_from_slice(&bytes[copied..start]);
                        out.push(b'"');
                        out.extend_from_slice(body);
                        out.push(b'"');
                        copied = i;
                    }
                    continue;
                }
                let lossy = String::from_utf8_lossy(fixed.as_deref().unwrap_or(body));
                out.extend_from_slice(&bytes[copied..start]);
                let next = bytes[i..].iter().find(|b| !b" \t\r\n".contains(b));
                if next == Some(&b':') {
                    out.push(b'"');
                    out.extend_from_slice(lossy.as_bytes());
                    out.push(b'"');
                } else {
                    stand_in(&mut out, STAND_INS[0], lossy.as_bytes());
                }
                copied = i;
            }
            b'-' | b'0'..=b'9' => {
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let number = &bytes[start..i];
                let out_of_range = std::str::from_utf8(number)
                    .ok()
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(f64::is_infinite);
                if out_of_range {
                    out.extend_from_slice(&bytes[copied..start]);
                    stand_in(&mut out, STAND_INS[1], number);
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

/// Writes the one-entry object `{"<key>":"<text>"}` that stands in for a value serde_json
/// cannot read; `text` is valid inside a JSON string.
fn stand_in(out: &mut Vec<u8>, key: &str, text: &[u8]) {
    out.extend_from_slice(b"{\"\\u0000");
    out.extend_from_slice(&key.as_bytes()[1..]);
    out.extend_from_slice(b"\":\"");
    out.extend_from_slice(text);
    out.extend_from_slice(b"\"}");
}

/// The body of a JSON string with each unpaired surrogate escape (`\ud800` alone, or a low
/// surrogate without its high one) replaced by `\ufffd`; `None` when it has none.
fn fix_surrogate_escapes(body: &[u8]) -> Option<Vec<u8>> {
    fn hex4(b: &[u8], at: usize) -> Option<u16> {
        let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    }
    let escape_at = |k: usize| body.get(k) == Some(&b'\\') && body.get(k + 1) == Some(&b'u');
    let mut out: Option<Vec<u8>> = None;
    let (mut k, mut copied) = (0, 0);
    while k < body.len() {
        if body[k] != b'\\' {
            k += 1;
            continue;
        }
        let unit = if escape_at(k) {
            hex4(body, k + 2)
        } else {
            None
        };
        let lone = match unit {
            None => {
                k += 2;
                continue;
            }
            Some(0xD800..=0xDBFF) => {
                if escape_at(k + 6) && matches!(hex4(body, k + 8), Some(0xDC00..=0xDFFF)) {
                    k += 12;
                    continue;
                }
                true
            }
            Some(0xDC00..=0xDFFF) => true,
            Some(_) => false,
        };
        if lone {
            let o = out.get_or_insert_with(Vec::new);
            o.extend_from_slice(&body[copied..k]);
            o.extend_from_slice(b"\\ufffd");
            copied = k + 6;
        }
        k += 6;
    }
    out.map(|mut o| {
        o.extend_from_slice(&body[copied..]);
        o
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each lenient struct finds its own names and no other struct's, nor near misses; a
    /// stand-in key is recorded as what the struct is instead.
    #[test]
    fn each_struct_finds_its_names_only() {
        fn check<T: Default>(names: &[&str], slot: fn(&mut T, &str) -> bool) {
            let all = [Event::NAMES, RawJob::NAMES, RawTask::NAMES].concat();
            for name in all {
                let found = slot(&mut T::default(), name);
                assert_eq!(found, names.contains(&name), "{name:?} in {names:?}");
            }
            for miss in ["", "taskid", "s3key ", "TaskId", "s3BucketArnX", "\u{0}"] {
                assert!(!slot(&mut T::default(), miss), "{miss:?} in {names:?}");
            }
        }
        check::<Event>(Event::NAMES, |e, k| e.slot(k).is_some());
        check::<RawJob>(RawJob::NAMES, |j, k| j.slot(k).is_some());
        check::<RawTask>(RawTask::NAMES, |t, k| t.slot(k).is_some());
        for (key, stood_in) in STAND_INS.iter().zip(STOOD_IN) {
            let mut task = RawTask::default();
            assert!(task.slot(key).is_none());
            assert_eq!(task.not_object, Some(stood_in));
        }
    }

    /// Every key the wire types write (the test harness's and the job runner's events) is a
    /// field of the lenient table: a field added to `wire::Request` and not to the table
    /// would be skipped here as unknown.
    #[test]
    fn the_lenient_table_reads_every_key_the_wire_types_write() {
        use crate::wire::{Request, RequestJob, RequestTask};
        let args = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        for schema in [Schema::V1, Schema::V2] {
            let request = Request {
                schema,
                invocation_id: "i".into(),
                job: RequestJob::new("j").with_user_arguments(args.clone()),
                tasks: vec![RequestTask::new(schema, "t", "b", "k", Some("v"))],
            };
            let value = serde_json::to_value(&request).unwrap();
            let keys = |v: &serde_json::Value| -> Vec<String> {
                v.as_object().unwrap().keys().cloned().collect()
            };
            for (written, table) in [
                (keys(&value), Event::NAMES),
                (keys(&value["job"]), RawJob::NAMES),
                (keys(&value["tasks"][0]), RawTask::NAMES),
            ] {
                for key in written {
                    assert!(table.contains(&key.as_str()), "{key:?} not in {table:?}");
                }
            }
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../tests/fixtures/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn parse(json: &str) -> Result<Invocation, InvocationError> {
        Event::from_slice(json.as_bytes())?.into_invocation()
    }

    #[test]
    fn schema_1_vector() {
        let inv = Event::from_slice(&fixture("event-v1.json"))
            .unwrap()
            .into_invocation()
            .unwrap();
        assert_eq!(inv.job.schema_version, "1.0");
        assert_eq!(inv.tasks.len(), 1);
        assert_eq!(inv.job.id, "f3cc4f60-61f6-4a2b-8a21-d07600c373ce");
        let obj = inv.tasks[0].as_ref().unwrap();
        assert_eq!(obj.bucket, "example-bucket");
        assert_eq!(obj.key, "customer images/imageé1.jpg");
        assert_eq!(obj.raw_key, "customer+images/image%C3%A91.jpg");
        assert_eq!(obj.version_id.as_deref(), Some("1"));
        assert_eq!(obj.task_id, "dGFza2lkZ29lc2hlcmUK");
    }

    #[test]
    fn schema_2_vector() {
        let inv = Event::from_slice(&fixture("event-v2.json"))
            .unwrap()
            .into_invocation()
            .unwrap();
        assert_eq!(inv.job.schema_version, "2.0");
        assert_eq!(inv.tasks.len(), 1);
        assert_eq!(inv.job.user_arguments["destBucket"], "archive-bucket");
        assert_eq!(inv.job.user_arguments["prefix"], "moved/");
        let obj = inv.tasks[0].as_ref().unwrap();
        assert_eq!(obj.bucket, "source-bucket");
        assert_eq!(obj.key, "reports/2024 Q1+Q2.csv");
        assert_eq!(obj.version_id, None);
    }

    #[test]
    fn regional_and_partition_arns() {
        let inv = Event::from_slice(&fixture("event-v1-regional-arn.json"))
            .unwrap()
            .into_invocation()
            .unwrap();
        let buckets: Vec<_> = inv
            .tasks
            .iter()
            .map(|t| t.as_ref().unwrap().bucket.clone())
            .collect();
        assert_eq!(buckets, ["awsexamplebucket", "china-bucket"]);
        assert_eq!(inv.tasks[1].as_ref().unwrap().key, "b/c.txt");
    }

    #[test]
    fn unknown_fields_and_duplicates_are_tolerated() {
        let inv = parse(
            r#"{"invocationId":"a","invocationId":"b","extra":[1,{"x":null}],"tasks":[
              {"taskId":"t","s3Key":"k","s3Bucket":"b","future":{"a":1}}]}"#,
        )
        .unwrap();
        assert_eq!(inv.job.invocation_id, "b");
        assert_eq!(inv.job.schema_version, "1.0");
        assert_eq!(inv.tasks.len(), 1);
        assert!(inv.tasks[0].is_ok());
    }

    #[test]
    fn invocation_errors_say_what_is_missing() {
        for (json, expect) in [
            ("[]", "event is an array"),
            ("3", "event is a number"),
            (r#"{"tasks":[]}"#, "missing `invocationId`"),
            (
                r#"{"invocationId":null,"tasks":[]}"#,
                "`invocationId` is null",
            ),
            (
                r#"{"invocationId":5,"tasks":[]}"#,
                "`invocationId` is a number",
            ),
            (r#"{"invocationId":"i"}"#, "no `tasks` array"),
            (r#"{"invocationId":"i","tasks":{}}"#, "`tasks` is an object"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.message().contains(expect), "{json}: {err}");
        }
        let err = Event::from_slice(b"not json").unwrap_err();
        assert!(
            err.message().starts_with("event is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn bad_tasks_name_their_fields() {
        let inv = parse(
            r#"{"invocationId":"i","tasks":[
              {"s3Key":"k","s3Bucket":"b"},
              {"taskId":"t2","s3Bucket":"b"},
              {"taskId":"t3","s3Key":"k"},
              {"taskId":"t4","s3Key":"%FF","s3Bucket":"b"},
              {"taskId":"t5","s3Key":"k","s3BucketArn":"arn:aws:s3:::"},
              {"taskId":"t6","s3Key":"k","s3Bucket":"b","s3VersionId":7},
              "junk",
              {"taskId":7,"s3Key":["k"],"s3BucketArn":false},
              {"taskId":"t9","s3Key":"","s3Bucket":"b"},
              {"taskId":"t10","s3Key":"k","s3Bucket":""},
              {"taskId":"t11","s3Key":"k","s3BucketArn":"arn:aws:s3:us-east-1:0123456788:"},
              {"taskId":"t12","s3Key":"k","s3BucketArn":""}
            ]}"#,
        )
        .unwrap();
        let errs: Vec<BadTask> = inv.tasks.into_iter().map(|t| t.unwrap_err()).collect();
        let expect = [
            ("", "missing `taskId`"),
            ("t2", "missing `s3Key`"),
            ("t3", "missing `s3Bucket` (schema 2.0) or `s3BucketArn`"),
            ("t4", "s3Key \"%FF\" does not decode"),
            ("t5", "`s3BucketArn` \"arn:aws:s3:::\""),
            ("t6", "`s3VersionId` is a number"),
            ("", "task is a string"),
            ("", "`taskId` is a number, expected a string; `s3Key` is an array, expected a string; `s3BucketArn` is a boolean"),
            ("t9", "invalid task: `s3Key` is empty"),
            ("t10", "`s3Bucket` is empty"),
            ("t11", r#"`s3BucketArn` "arn:aws:s3:us-east-1:0123456788:" does not end in a bucket name"#),
            ("t12", r#"`s3BucketArn` "" does not end in a bucket name"#),
        ];
        // One result per task: `zip` alone would pass with a result missing or extra.
        assert_eq!(errs.len(), expect.len(), "{errs:?}");
        for (got, (id, msg)) in errs.iter().zip(expect) {
            assert_eq!(got.task_id, id);
            assert!(got.message.contains(msg), "{}", got.message);
        }
    }

    /// What the one lenient visitor must keep from the per-type visitors it replaced: a
    /// repeated key replaces the whole value (struct, list or field), and `null` reads as
    /// absent for `job`, `tasks` and `userArguments` but as the wrong type for a task.
    #[test]
    fn repeated_keys_replace_whole_values_and_null_is_absent_where_optional() {
        let inv = parse(
            r#"{"invocationId":"i","job":{"id":"a","userArguments":{"x":"1"}},"job":{"id":"b"},
                "tasks":[{"taskId":"a","taskId":"t","s3Key":"k","s3Bucket":"b"},null]}"#,
        )
        .unwrap();
        assert_eq!(inv.job.id, "b");
        assert!(inv.job.user_arguments.is_empty());
        assert_eq!(inv.tasks[0].as_ref().unwrap().task_id, "t");
        assert!(inv.tasks[1]
            .as_ref()
            .unwrap_err()
            .message
            .contains("task is null"));
        let inv = parse(r#"{"invocationId":"i","job":null,"tasks":[]}"#).unwrap();
        assert_eq!(inv.job.id, "");
        assert!(inv.job.user_arguments_error.is_none());
        let inv = parse(
            r#"{"invocationId":"i","job":{"id":"j","userArguments":{"x":"1"},"userArguments":null},"tasks":[]}"#,
        )
        .unwrap();
        assert!(inv.job.user_arguments.is_empty() && inv.job.user_arguments_error.is_none());
        let inv = parse(r#"{"invocationId":"i","job":5,"tasks":[]}"#).unwrap();
        let problem = inv.job.user_arguments_error.unwrap();
        assert!(
            problem.contains("`job` is a number, expected an object"),
            "{problem}"
        );
        let err =
            parse(r#"{"invocationId":"i","tasks":[{"taskId":"t"}],"tasks":null}"#).unwrap_err();
        assert!(err.message().contains("no `tasks` array"), "{err}");
        let err = parse(r#"{"invocationId":"i","tasks":[],"tasks":"x"}"#).unwrap_err();
        assert!(err.message().contains("`tasks` is a string"), "{err}");
        let err = parse("null").unwrap_err();
        assert!(err.message().contains("event is null"), "{err}");
    }

    #[test]
    fn user_arguments_shapes() {
        let inv = parse(
            r#"{"invocationId":"i","job":{"id":"j","userArguments":{"n":3,"s":"x"}},"tasks":[]}"#,
        )
        .unwrap();
        assert_eq!(inv.job.user_arguments["n"], "3");
        assert_eq!(inv.job.user_arguments["s"], "x");
        let inv = parse(r#"{"invocationId":"i","job":{"userArguments":null},"tasks":[]}"#).unwrap();
        assert!(inv.job.user_arguments.is_empty() && inv.job.user_arguments_error.is_none());
        let inv = parse(r#"{"invocationId":"i","job":{"userArguments":[1]},"tasks":[]}"#).unwrap();
        assert!(inv
            .job
            .user_arguments_error
            .unwrap()
            .contains("`job.userArguments` is an array"));
    }

    #[test]
    fn user_arguments_that_are_not_strings_are_their_json_text_minified_as_it_arrived() {
        let inv = parse(
            r#"{"invocationId":"i","job":{"userArguments":{
                "o": { "b" : [ 1 , 2.50 ] , "a" : "x y \" \\ z\t" },
                "n": 1E2, "t": true, "z": null,
                "look-alike": {"\u0000s3batch:unreadable-string": "a", "b": 1}
            }},"tasks":[]}"#,
        )
        .unwrap();
        let args = &inv.job.user_arguments;
        assert_eq!(args["o"], r#"{"b":[1,2.50],"a":"x y \" \\ z\t"}"#);
        assert_eq!(args["n"], "1E2");
        assert_eq!(args["t"], "true");
        assert_eq!(args["z"], "null");
        assert_eq!(
            args["look-alike"],
            r#"{"\u0000s3batch:unreadable-string":"a","b":1}"#
        );
        assert_eq!(inv.job.user_arguments_error, None);
        assert_eq!(minify(" [ \"a\\\" b\" ,\n{ } ] "), r#"["a\" b",{}]"#);
    }

    /// `(taskId, Ok(key) | Err(message))` per task, for comparing whole invocations.
    fn outcomes(inv: &Invocation) -> Vec<(String, Result<String, String>)> {
        inv.tasks
            .iter()
            .map(|t| match t {
                Ok(o) => (o.task_id.clone(), Ok(o.key.clone())),
                Err(b) => (b.task_id.clone(), Err(b.message.clone())),
            })
            .collect()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Invocation, InvocationError> {
        Event::from_slice(bytes)?.into_invocation()
    }

    #[test]
    fn unreadable_task_fields_fail_only_their_task() {
        let mut event =
            br#"{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},"tasks":[
          {"taskId":"ok","s3Key":"a+b","s3BucketArn":"arn:aws:s3:::b"},
          {"taskId":"surrogate-key","s3Key":"x\ud800y","s3BucketArn":"arn:aws:s3:::b"},
          {"taskId":"t\udc00","s3Key":"k","s3BucketArn":"arn:aws:s3:::b"},
          {"taskId":"utf8-key","s3Key":"BAD","s3BucketArn":"arn:aws:s3:::b"},
          {"taskId":"utf8-bucket","s3Key":"k","s3Bucket":"BAD"},
          {"taskId":"version","s3Key":"k","s3Bucket":"b","s3VersionId":"\ud83d"},
          {"taskId":"pair","s3Key":"%F0%9F%98%80\ud83d\ude00","s3Bucket":"b"},
          {"taskId":"escaped-backslash","s3Key":"\\ud800","s3Bucket":"b"}
        ]}"#
            .to_vec();
        // Invalid UTF-8 (a lone continuation byte, an overlong NUL) in place of each BAD.
        for bad in [&b"\x80"[..], b"\xC0\x80"] {
            let at = event.windows(3).position(|w| w == b"BAD").unwrap();
            event.splice(at..at + 3, bad.iter().copied());
        }
        assert!(serde_json::from_slice::<serde_json::Value>(&event).is_err());
        let inv = from_bytes(&event).unwrap();
        let got = outcomes(&inv);
        let bad =
            |field: &str, lossy: &str| Err(format!("invalid task: {}", unreadable(field, lossy)));
        let expect: Vec<(String, Result<String, String>)> = vec![
            ("ok".into(), Ok("a b".into())),
            ("surrogate-key".into(), bad("s3Key", "x\u{fffd}y")),
            ("t\u{fffd}".into(), bad("taskId", "t\u{fffd}")),
            ("utf8-key".into(), bad("s3Key", "\u{fffd}")),
            ("utf8-bucket".into(), bad("s3Bucket", "\u{fffd}\u{fffd}")),
            ("version".into(), bad("s3VersionId", "\u{fffd}")),
            ("pair".into(), Ok("😀😀".into())),
            ("escaped-backslash".into(), Ok("\\ud800".into())),
        ];
        assert_eq!(got, expect);
        assert!(got[1]
            .1
            .as_ref()
            .unwrap_err()
            .contains("`s3Key` is not valid Unicode"));
    }

    #[test]
    fn unreadable_job_fields_fail_every_task_and_unreadable_ids_fail_the_event() {
        let inv = from_bytes(
            br#"{"invocationId":"i","job":{"id":"j\ud800"},"tasks":[
              {"taskId":"a","s3Key":"k","s3Bucket":"b"},{"taskId":"b","s3Bucket":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(inv.job.id, "j\u{fffd}");
        let job = unreadable("job.id", "j\u{fffd}");
        assert_eq!(
            outcomes(&inv),
            vec![
                ("a".to_owned(), Err(format!("invalid job: {job}"))),
                (
                    "b".to_owned(),
                    Err(format!("invalid task: missing `s3Key`; invalid job: {job}"))
                ),
            ]
        );
        for (event, field) in [
            (
                &br#"{"invocationId":"i\ud800","tasks":[]}"#[..],
                "`invocationId` is not valid Unicode",
            ),
            (
                b"{\"invocationId\":\"i\xFF\",\"tasks\":[]}",
                "`invocationId` is not valid Unicode",
            ),
            (
                br#"{"invocationId":"i","tasks":"\ud800"}"#,
                "`tasks` is a string that is not valid Unicode",
            ),
            (
                br#""\ud800""#,
                "event is a string that is not valid Unicode",
            ),
        ] {
            let err = from_bytes(event).unwrap_err();
            assert!(err.message().contains(field), "{err}");
        }
        // Bytes that are not JSON stay an error about JSON, even with a bad string inside.
        let err = from_bytes(b"{\"invocationId\":\"\xFF\",").unwrap_err();
        assert!(
            err.message().starts_with("event is not valid JSON"),
            "{err}"
        );
        // A task that is itself an unreadable string.
        let inv = from_bytes(br#"{"invocationId":"i","tasks":["\ud800"]}"#).unwrap();
        assert_eq!(
            outcomes(&inv),
            vec![(
                String::new(),
                Err("task is a string that is not valid Unicode, expected an object".to_owned())
            )]
        );
    }

    #[test]
    fn deep_or_unreadable_user_arguments_do_not_fail_the_event() {
        let deep = format!("{}1{}", "[".repeat(400), "]".repeat(400));
        let event = format!(
            r#"{{"invocationSchemaVersion":"2.0","invocationId":"i","job":{{"id":"j",
               "userArguments":{{"deep":{deep},"obj":{{"a": [1, 2]}},"s":"x"}}}},
               "tasks":[{{"taskId":"t","s3Key":"k","s3Bucket":"b"}}]}}"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(&event).is_err());
        let inv = from_bytes(event.as_bytes()).unwrap();
        assert_eq!(inv.job.user_arguments["deep"], deep);
        assert_eq!(inv.job.user_arguments["obj"], r#"{"a":[1,2]}"#);
        assert_eq!(inv.job.user_arguments["s"], "x");
        assert_eq!(inv.job.user_arguments_error, None);
        assert_eq!(outcomes(&inv), vec![("t".to_owned(), Ok("k".to_owned()))]);
        // A deep unknown field, a deep task field: ignored / named as usual.
        let event = format!(
            r#"{{"invocationId":"i","extra":{deep},"tasks":[{{"taskId":"t","s3Key":{deep},"s3Bucket":"b","x":{deep}}}]}}"#
        );
        let inv = from_bytes(event.as_bytes()).unwrap();
        assert_eq!(
            outcomes(&inv),
            vec![(
                "t".to_owned(),
                Err("invalid task: `s3Key` is an array, expected a string".to_owned())
            )]
        );
        // An argument that is not valid Unicode: the tasks that read the arguments fail.
        for bytes in [
            &br#"{"invocationId":"i","job":{"userArguments":{"a":"1","bad":"\udfff"}},"tasks":[]}"#[..],
            b"{\"invocationId\":\"i\",\"job\":{\"userArguments\":{\"a\":\"1\",\"bad\":\"\xFF\"}},\"tasks\":[]}",
        ] {
            let inv = from_bytes(bytes).unwrap();
            assert_eq!(
                inv.job.user_arguments_error.as_deref(),
                Some(unreadable("job.userArguments.bad", "\u{fffd}").as_str())
            );
            assert_eq!(inv.job.user_arguments["a"], "1");
        }
    }

    #[test]
    fn out_of_range_numbers_and_raw_control_characters_fail_only_their_field() {
        let event = b"{\"invocationId\":\"i\",\"job\":{\"id\":\"j\",\"userArguments\":{\"n\":1e999,\"s\":\"x\"}},\"tasks\":[
          {\"taskId\":1e999,\"s3Key\":\"k\",\"s3Bucket\":\"b\"},
          {\"taskId\":\"ok\",\"s3Key\":\"k\",\"s3Bucket\":\"b\",\"s3VersionId\":-1e400},
          {\"taskId\":\"raw\nid\",\"s3Key\":\"a\tb\",\"s3Bucket\":\"b\"},
          1e999,
          {\"taskId\":\"fine\",\"s3Key\":\"k\",\"s3Bucket\":\"b\",\"n\":[1e999]}
        ]}";
        assert!(serde_json::from_slice::<serde_json::Value>(event).is_err());
        let inv = from_bytes(event).unwrap();
        let err = |s: &str| Err(s.to_owned());
        assert_eq!(
            outcomes(&inv),
            vec![
                (
                    String::new(),
                    err("invalid task: `taskId` is a number, expected a string")
                ),
                (
                    "ok".into(),
                    err("invalid task: `s3VersionId` is a number, expected a string or null")
                ),
                ("raw\nid".into(), Ok("a\tb".into())),
                (String::new(), err("task is a number, expected an object")),
                ("fine".into(), Ok("k".into())),
            ]
        );
        assert_eq!(inv.job.user_arguments["n"], "1e999");
        assert_eq!(inv.job.user_arguments["s"], "x");
        // Read without salvaging: the number is kept as it arrived.
        let inv = parse(r#"{"invocationId":"i","job":{"userArguments":{"n":1e999}},"tasks":[]}"#)
            .unwrap();
        assert_eq!(inv.job.user_arguments["n"], "1e999");
        for (event, expect) in [
            (
                &br#"{"invocationId":1e999,"tasks":[]}"#[..],
                "`invocationId` is a number",
            ),
            (
                br#"{"invocationId":"i","tasks":1e999}"#,
                "`tasks` is a number",
            ),
            (br#"1e999"#, "event is a number"),
        ] {
            let e = from_bytes(event).unwrap_err();
            assert!(e.message().contains(expect), "{e}");
        }
    }

    #[test]
    fn surrogate_escapes_are_fixed_only_when_unpaired() {
        let fix =
            |s: &str| fix_surrogate_escapes(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(fix(r"plain"), None);
        assert_eq!(fix(r"\ud83d\ude00 \u0041 \n \\ud800"), None);
        assert_eq!(fix(r"a\ud800b").as_deref(), Some(r"a\ufffdb"));
        assert_eq!(fix(r"\ude00\ud83d").as_deref(), Some(r"\ufffd\ufffd"));
        assert_eq!(fix(r"\ud83d\u0041").as_deref(), Some(r"\ufffd\u0041"));
        assert_eq!(fix(r"\ud83d").as_deref(), Some(r"\ufffd"));
        assert_eq!(fix(r"\ud8"), None);
    }

    #[test]
    fn empty_version_id_means_none() {
        let inv = parse(r#"{"invocationId":"i","tasks":[{"taskId":"t","s3Key":"k","s3Bucket":"b","s3VersionId":""}]}"#).unwrap();
        assert_eq!(inv.tasks[0].as_ref().unwrap().version_id, None);
    }
}
