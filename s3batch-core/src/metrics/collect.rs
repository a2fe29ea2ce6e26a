//! What one invocation collects: kept in a Tokio task-local for the length of the invocation's
//! future ([`MetricsConfig::collect`](super::MetricsConfig::collect)), fed by each task run as
//! it finishes and by the [`Metrics`](super::Metrics) extractor. With metrics off there is no
//! task-local, and each hook is one failed look-up.

use super::{MetricsError, Unit};
use crate::response::{Response, ResultCode};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

tokio::task_local! {
    /// The invocation being collected, while its future runs (boxed: the task-local is
    /// moved in and out at every poll).
    pub(super) static CURRENT: RefCell<Box<Collected>>;
}

/// Whether any invocation of this process has been collected: until one is, the hooks are a
/// load and a branch, without the task-local look-up.
pub(super) static ON: AtomicBool = AtomicBool::new(false);

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
    pub(super) invocation_id: String,
    pub(super) counts: Counts,
    /// Task runs that finished as `TemporaryFailure`: the rest of the invocation's
    /// `TemporaryFailure` results were given up at the deadline.
    pub(super) finished_temporary: u64,
    pub(super) durations: Durations,
    pub(super) user: Vec<UserMetric>,
}

impl Collected {
    /// The ids, once the handler answered.
    pub(super) fn ids(&self) -> Option<(&str, &str)> {
        self.answered
            .then_some((self.job_id.as_str(), self.invocation_id.as_str()))
    }

    /// Empty again, keeping the room its lists and strings took (for the next invocation).
    pub(super) fn reset(&mut self) {
        self.answered = false;
        self.counts = Counts::default();
        self.finished_temporary = 0;
        self.durations.first = None;
        self.durations.rest.clear();
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

/// Called as a task run starts: the time, when metrics are being collected.
#[inline]
pub(crate) fn task_started() -> Option<Instant> {
    if !ON.load(Ordering::Relaxed) {
        return None;
    }
    CURRENT.try_with(|_| Instant::now()).ok()
}

/// Called as a task run finishes, with what [`task_started`] gave.
#[inline]
pub(crate) fn task_finished(started: Option<Instant>, end: RunEnd<'_>) {
    if let Some(started) = started {
        record_run(started, end);
    }
}

#[cold]
fn record_run(started: Instant, end: RunEnd<'_>) {
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let _ = CURRENT.try_with(|c| {
        let mut c = c.borrow_mut();
        c.durations.push(micros);
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
        let _ = CURRENT.try_with(|c| c.borrow_mut().answered(job_id, response));
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
