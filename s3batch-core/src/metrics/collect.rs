//! What one invocation collects: kept, while the invocation's future is polled, in a
//! thread-local slot that [`Collect`](super::Collect) fills at the start of each poll and
//! empties at its end ([`MetricsConfig::collect`](super::MetricsConfig::collect)); fed by each
//! task run as it finishes, by the handler's response and by the [`Metrics`](super::Metrics)
//! extractor. With metrics off the slot stays empty, and each hook is one load and a branch.

use super::{MetricsError, Unit};
use crate::response::{Response, ResultCode};
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

thread_local! {
    /// The collection of the invocation being polled on this thread, if any.
    ///
    /// Hot path. A tokio task-local would do the same (its value is set for each poll of the
    /// future it wraps), but it keeps its value in a `RefCell<Option<_>>` behind a checked
    /// borrow at every access and wraps the invocation's future in one more `Option`; a `Cell`
    /// holding the box is a pointer swap (the task-local's poll measured 109 instructions per
    /// 1-task invocation against ~40 for `Scope`). `ManuallyDrop`: a value without a destructor
    /// spares every access the check that the thread's destructors are registered (35
    /// instructions per 1-task invocation as deployed); the box is only ever here during a
    /// poll, and `Scope` takes it back, panic or not.
    pub(super) static CURRENT: Cell<Option<ManuallyDrop<Box<Collected>>>> =
        const { Cell::new(None) };
}

thread_local! {
    /// The last collection written on this thread, emptied, for the next invocation (its room
    /// is reused). Per thread rather than beside the output buffer under the configuration's
    /// lock: taking it is then a pointer swap, not a lock and an unlock (40 instructions
    /// against 14).
    pub(super) static SPARE: Cell<Option<Box<Collected>>> = const { Cell::new(None) };
}

/// The last number given to a job id (see `Collected::job_number`).
static JOB_NUMBERS: AtomicU64 = AtomicU64::new(0);

/// Whether any invocation of this process has been collected: until one is, the hooks are a
/// load and a branch, without the thread-local look-up.
pub(super) static ON: AtomicBool = AtomicBool::new(false);

/// Puts `collected` in this thread's slot for the length of a poll; what was there (an outer
/// collection: `collect` inside `collect`) is put back by [`Scope::leave`] or, on a panic, by
/// the drop.
pub(super) struct Scope<'a> {
    slot: &'a mut Option<Box<Collected>>,
    outer: Option<ManuallyDrop<Box<Collected>>>,
}

impl<'a> Scope<'a> {
    #[inline]
    pub(super) fn enter(slot: &'a mut Option<Box<Collected>>) -> Self {
        let outer = CURRENT.replace(slot.take().map(ManuallyDrop::new));
        Scope { slot, outer }
    }
}

impl Drop for Scope<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.slot = CURRENT
            .replace(self.outer.take())
            .map(ManuallyDrop::into_inner);
    }
}

/// Runs `f` on the collection of the invocation being polled on this thread; `None` when
/// there is none (metrics off, or a task spawned outside the invocation's future).
#[inline]
pub(super) fn with_current<R>(f: impl FnOnce(&mut Collected) -> R) -> Option<R> {
    CURRENT
        .try_with(|slot| {
            let mut collected = slot.take()?;
            let r = f(&mut collected);
            slot.set(Some(collected));
            Some(r)
        })
        .ok()
        .flatten()
}

/// Whether an invocation is being collected on this thread.
#[inline]
pub(super) fn collecting() -> bool {
    with_current(|_| ()).is_some()
}

/// The bounded set of error codes behind failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// `SlowDown`, `Throttling`, `ServiceUnavailable` (a bodiless 503), …: the job's
    /// concurrency is too high for the prefix.
    Throttling,
    /// `AccessDenied`, `Forbidden` (a bodiless 403), …
    AccessDenied,
    /// `NoSuchKey`, `NotFound` (a bodiless 404), `NoSuchVersion`.
    MissingKey,
    /// Anything else.
    Other,
}

const THROTTLING: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
    "ServiceUnavailable",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "Forbidden",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
];
const MISSING_KEY: &[&str] = &["NoSuchKey", "NotFound", "NoSuchVersion"];

impl ErrorClass {
    /// The class of a failure's message: the first known S3 error code in it, as a whole word
    /// (s3batch's messages for S3 errors are `Code: message (HTTP status)`, perhaps after
    /// context such as `copying a.txt: `).
    pub(crate) fn of_message(message: &str) -> ErrorClass {
        let words = message.split(|c: char| !c.is_ascii_alphanumeric());
        for word in words {
            if word.is_empty() || !word.as_bytes()[0].is_ascii_uppercase() {
                continue;
            }
            if THROTTLING.contains(&word) {
                return ErrorClass::Throttling;
            }
            if ACCESS_DENIED.contains(&word) {
                return ErrorClass::AccessDenied;
            }
            if MISSING_KEY.contains(&word) {
                return ErrorClass::MissingKey;
            }
        }
        ErrorClass::Other
    }
}

/// A task's durations: the first inline (the one task S3 sends), the rest in a list.
#[derive(Debug, Default)]
pub(super) struct Durations {
    pub(super) first: Option<u64>,
    pub(super) rest: Vec<u64>,
}

impl Durations {
    fn push(&mut self, micros: u64) {
        match self.first {
            None => self.first = Some(micros),
            Some(_) => self.rest.push(micros),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

/// A metric a task added.
#[derive(Debug)]
pub(super) struct UserMetric {
    pub(super) name: String,
    pub(super) unit: Unit,
    pub(super) values: Vec<f64>,
}

/// Counts over an invocation's tasks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) succeeded: u64,
    pub(super) temporary: u64,
    pub(super) permanent: u64,
    pub(super) deadline: u64,
    pub(super) panics: u64,
    pub(super) throttling: u64,
    pub(super) access_denied: u64,
    pub(super) missing_key: u64,
    pub(super) other: u64,
}

/// Everything one invocation collected.
#[derive(Debug, Default)]
pub(super) struct Collected {
    /// The job's and invocation's ids, once the handler answered (`answered`); the strings
    /// keep their room when a `Collected` is reused.
    pub(super) answered: bool,
    pub(super) job_id: String,
    /// `job_id` as JSON, made again only when the job changes (a job's invocations share it).
    pub(super) job_json: Vec<u8>,
    /// A number that no other job id of the process's collections has had: the kept
    /// document head names the job it was written for by it, not by its bytes (comparing
    /// them, and the timestamp's digits a pair at a time, measured 36 instructions more as
    /// deployed).
    pub(super) job_number: u64,
    pub(super) invocation_id: String,
    pub(super) counts: Counts,
    /// Task runs that finished as `TemporaryFailure`: the rest of the invocation's
    /// `TemporaryFailure` results were given up at the deadline.
    pub(super) finished_temporary: u64,
    pub(super) durations: Durations,
    /// When the last task run finished, in nanoseconds since the Unix epoch.
    pub(super) last_end: Option<u64>,
    pub(super) user: Vec<UserMetric>,
}

impl Collected {
    /// The ids, once the handler answered.
    pub(super) fn ids(&self) -> Option<(&str, &str)> {
        self.answered
            .then_some((self.job_id.as_str(), self.invocation_id.as_str()))
    }

    /// The document's timestamp, in milliseconds since the Unix epoch: when the last task run
    /// finished (just before the response was built), or, when none did or some were given
    /// up at the deadline, now.
    pub(super) fn timestamp_ms(&self) -> u64 {
        let at = match self.last_end {
            Some(at) if self.counts.deadline == 0 => at,
            _ => now_nanos(),
        };
        at / 1_000_000
    }

    /// Empty again, keeping the room its lists and strings took (for the next invocation).
    pub(super) fn reset(&mut self) {
        self.answered = false;
        self.counts = Counts::default();
        self.finished_temporary = 0;
        self.durations.first = None;
        self.durations.rest.clear();
        self.last_end = None;
        self.user.clear();
    }

    pub(super) fn add_user(
        &mut self,
        name: &str,
        unit: Unit,
        value: f64,
    ) -> Result<(), MetricsError> {
        match self.user.iter_mut().find(|m| m.name == name) {
            Some(m) if m.unit != unit => Err(MetricsError::UnitMismatch {
                name: name.to_owned(),
                first: m.unit,
                now: unit,
            }),
            Some(m) => {
                m.values.push(value);
                Ok(())
            }
            None => {
                self.user.push(UserMetric {
                    name: name.to_owned(),
                    unit,
                    values: vec![value],
                });
                Ok(())
            }
        }
    }
}

/// How a task run ended, for [`task_finished`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunEnd<'a> {
    Succeeded,
    /// Failed with this code and message.
    Failed(ResultCode, &'a str),
    Panicked,
}

/// The system clock, in nanoseconds since the Unix epoch (0 before it or on an error).
///
/// Hot path: `clock_gettime` itself rather than `SystemTime`, whose `now` checks the
/// `timespec` and whose `duration_since` (37 instructions a call, twice per 1-task
/// invocation) is the only way to its fields; here a duration is one subtraction and the
/// timestamp one division. Metrics on went from 17,645 to 17,491 instructions per 1-task
/// invocation, as deployed (`SECTIONS=5 VARIANTS="s3batch s3batch+metrics" BUILDS=lambda
/// bench/run.sh`; bench/analysis.md, "Metrics on").
#[inline]
pub(super) fn now_nanos() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid `timespec` to write to; on an error it stays zero.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        // The casts: `tv_nsec` is below 10^9; a `tv_sec` before 1970 gives 0.
        u64::try_from(ts.tv_sec).map_or(0, |s| s.wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| {
                d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos())
            })
    }
}

/// Called as a task run starts: the time ([`now_nanos`]), when metrics are being collected.
///
/// Hot path: the system clock, not `Instant`, so that the clock read as a task ends also
/// gives the document's timestamp, one read fewer per invocation (with the conversions, 34
/// instructions as deployed; bench/analysis.md, "Metrics on"). A step of the system clock
/// during a run shows in its duration (a step back gives 0).
#[inline]
pub(crate) fn task_started() -> Option<u64> {
    if !ON.load(Ordering::Relaxed) {
        return None;
    }
    collecting().then(now_nanos)
}

/// Called as a task run finishes, with what [`task_started`] gave.
#[inline]
pub(crate) fn task_finished(started: Option<u64>, end: RunEnd<'_>) {
    if let Some(started) = started {
        record_run(started, end);
    }
}

#[cold]
fn record_run(started: u64, end: RunEnd<'_>) {
    let now = now_nanos();
    let micros = now.saturating_sub(started) / 1000;
    with_current(|c| {
        c.durations.push(micros);
        c.last_end = Some(now);
        match end {
            RunEnd::Succeeded => {}
            RunEnd::Panicked => c.counts.panics += 1,
            RunEnd::Failed(code, message) => {
                if code == ResultCode::TemporaryFailure {
                    c.finished_temporary += 1;
                }
                match ErrorClass::of_message(message) {
                    ErrorClass::Throttling => c.counts.throttling += 1,
                    ErrorClass::AccessDenied => c.counts.access_denied += 1,
                    ErrorClass::MissingKey => c.counts.missing_key += 1,
                    ErrorClass::Other => c.counts.other += 1,
                }
            }
        }
    });
}

/// Called with each response the handler builds: the job's and invocation's ids, and each
/// task's result code (a Distributed Map batch's items are its tasks). A `TemporaryFailure`
/// that no finished task run accounts for is a task given up at the deadline.
#[inline]
pub(crate) fn answered(job_id: &str, response: &Response) {
    if ON.load(Ordering::Relaxed) {
        with_current(|c| c.answered(job_id, response));
    }
}

impl Collected {
    #[cold]
    pub(super) fn answered(&mut self, job_id: &str, response: &Response) {
        self.answered = true;
        if self.job_id != job_id || self.job_json.is_empty() {
            self.job_id.clear();
            self.job_id.push_str(job_id);
            self.job_json.clear();
            super::document::push_json_str(&mut self.job_json, job_id);
            self.job_number = JOB_NUMBERS.fetch_add(1, Ordering::Relaxed) + 1;
        }
        self.invocation_id.clear();
        self.invocation_id.push_str(&response.invocation_id);
        self.results(response.results.iter().map(|r| r.result_code));
    }

    pub(super) fn results(&mut self, codes: impl IntoIterator<Item = ResultCode>) {
        let counts = &mut self.counts;
        for code in codes {
            match code {
                ResultCode::Succeeded => counts.succeeded += 1,
                ResultCode::TemporaryFailure => counts.temporary += 1,
                ResultCode::PermanentFailure => counts.permanent += 1,
            }
        }
        counts.deadline = counts.temporary.saturating_sub(self.finished_temporary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_come_from_whole_codes() {
        for (message, class) in [
            (
                "SlowDown: Please reduce your request rate. (HTTP 503)",
                ErrorClass::Throttling,
            ),
            (
                "copying a.txt: SlowDown: x (HTTP 503)",
                ErrorClass::Throttling,
            ),
            (
                "ServiceUnavailable: HTTP 503 with no error document",
                ErrorClass::Throttling,
            ),
            (
                "AccessDenied: Access Denied (HTTP 403)",
                ErrorClass::AccessDenied,
            ),
            (
                "Forbidden: HTTP 403 with no error document",
                ErrorClass::AccessDenied,
            ),
            (
                "NoSuchKey: The specified key does not exist. (HTTP 404)",
                ErrorClass::MissingKey,
            ),
            ("NotFound: (HTTP 404)", ErrorClass::MissingKey),
            ("InternalError: oops (HTTP 500)", ErrorClass::Other),
            ("task said no", ErrorClass::Other),
            // Part of a longer word is not the code.
            ("MySlowDownHelper failed", ErrorClass::Other),
            ("", ErrorClass::Other),
        ] {
            assert_eq!(ErrorClass::of_message(message), class, "{message:?}");
        }
    }
}
