//! What a task returns when it fails, and how errors become result codes.
//!
//! A [`TaskError`] is either *temporary* (S3 redrives the task before the job completes) or
//! *permanent* (the task is marked failed). The split matters: S3 fails the whole job once
//! more than half of at least 1,000 tasks have failed, so a throttled request reported as
//! permanent can kill a job that would have finished.
//!
//! `?` converts these errors into a `TaskError` and classifies them by what happened, not
//! by the wrapper: the same failure gets the same kind whichever of these a task returns.
//!
//! | error | kind |
//! |---|---|
//! | `SdkError` of any operation (feature `s3`, on by default) | by [`classify`]: throttling and transient codes, HTTP 500/502/503/504, timeouts and dispatch failures are temporary; the rest permanent |
//! | `aws_sdk_s3::Error` (feature `s3`) | by its error code; a timeout or dispatch failure (kept as its source) as above |
//! | `Box<dyn Error + Send + Sync>`, `anyhow::Error` (feature `anyhow`, on by default) | by the first error in the `source()` chain that s3batch knows ([`TaskError::from_chain`]), with the messages around it as context; permanent if none |
//! | `ByteStreamError` (reading a body failed mid-stream; feature `s3`) | temporary |
//! | `std::io::Error` | temporary for timeouts, interruptions and network failures; otherwise permanent |
//! | `serde_json::Error`, `KeyError` | permanent |
//!
//! What `aws_sdk_s3::Error` cannot carry is the HTTP status: a `HeadObject` throttled with a
//! bodiless 503 (or a proxy's HTML 502 page) has no error code, and `?` into
//! `aws_sdk_s3::Error` drops the status.
//! [`FillErrorCodes`], which the `Client` extractor installs, gives such responses the code
//! of their status (`ServiceUnavailable` for 503), so they stay temporary in every wrapper.
//!
//! Any other error: `result.permanent()?` or `result.temporary()?` ([`ResultExt`]), or
//! `impl From<YourError> for TaskError` calling [`TaskError::from_chain`].

#[cfg(feature = "s3")]
mod codes;
#[cfg(feature = "s3")]
mod operations;
#[cfg(feature = "s3")]
mod sdk;

#[cfg(feature = "s3")]
pub use codes::{code_for_status, FillErrorCodes};
#[cfg(feature = "s3")]
pub use sdk::classify;

use std::error::Error as StdError;
use std::fmt;

/// Whether S3 should try a failed task again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Worth another try: reported as `TemporaryFailure`, which S3 redrives.
    Temporary,
    /// Will fail the same way again: reported as `PermanentFailure`.
    Permanent,
}

/// The error a task returns: a kind and the message that goes into the completion report.
///
/// ```
/// use s3batch_core::{ErrorKind, TaskError};
/// let e = TaskError::temporary("upstream busy");
/// assert_eq!(e.kind(), ErrorKind::Temporary);
/// assert_eq!(e.message(), "upstream busy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    kind: ErrorKind,
    message: String,
}

impl TaskError {
    /// A failure worth retrying (`TemporaryFailure`).
    pub fn temporary(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Temporary, message)
    }

    /// A failure that will not go away (`PermanentFailure`).
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    /// Whether S3 should redrive the task.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The text for the completion report.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Puts `context` in front of the message, keeping the kind.
    ///
    /// ```
    /// # use s3batch_core::TaskError;
    /// let e = TaskError::permanent("NoSuchKey").context("copying a.txt");
    /// assert_eq!(e.message(), "copying a.txt: NoSuchKey");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Temporary => "temporary",
            ErrorKind::Permanent => "permanent",
        };
        write!(f, "{kind} failure: {}", self.message)
    }
}

/// Marks the error of any `Result` as temporary or permanent, for errors `?` does not
/// convert on its own.
///
/// ```
/// use s3batch_core::{ResultExt, TaskError};
/// fn parse(s: &str) -> Result<u32, TaskError> {
///     Ok(s.parse::<u32>().permanent()?)
/// }
/// assert!(parse("x").unwrap_err().message().contains("invalid digit"));
/// ```
pub trait ResultExt<T> {
    /// On error, a [`TaskError::temporary`] with the error's message (and its sources).
    fn temporary(self) -> Result<T, TaskError>;
    /// On error, a [`TaskError::permanent`] with the error's message (and its sources).
    fn permanent(self) -> Result<T, TaskError>;
}

impl<T, E: StdError + 'static> ResultExt<T> for Result<T, E> {
    fn temporary(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::temporary(chain(&e)))
    }
    fn permanent(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::permanent(chain(&e)))
    }
}

/// The error's message followed by those of its sources, skipping repeats.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

fn io_kind(err: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::TimedOut
        | K::Interrupted
        | K::WouldBlock
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::ConnectionRefused
        | K::NotConnected
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => ErrorKind::Temporary,
        _ => ErrorKind::Permanent,
    }
}

/// What one link of an error chain says.
enum Link {
    /// It decides the outcome.
    Classified(TaskError),
    /// An SDK wrapper that says nothing itself (`aws_sdk_s3::Error::Unhandled` without a
    /// code, a code-less operation error): its text is left out of the message.
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    Transparent,
    /// Not an error s3batch knows: part of the message, the chain goes on.
    Unknown,
}

fn recognize(e: &(dyn StdError + 'static)) -> Link {
    if let Some(t) = e.downcast_ref::<TaskError>() {
        return Link::Classified(t.clone());
    }
    #[cfg(feature = "s3")]
    if let Some(link) = sdk::recognize(e) {
        return link;
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        // An `io::Error` wrapping another error: that error may say more than the kind.
        if io_kind(io) == ErrorKind::Permanent {
            if let Some(Link::Classified(t)) = io.get_ref().map(|inner| recognize(inner)) {
                return Link::Classified(t);
            }
        }
        return Link::Classified(TaskError::new(io_kind(io), chain(io)));
    }
    if let Some(j) = e.downcast_ref::<serde_json::Error>() {
        return Link::Classified(TaskError::permanent(format!("JSON: {}", chain(j))));
    }
    if let Some(k) = e.downcast_ref::<crate::key::KeyError>() {
        return Link::Classified(TaskError::permanent(k));
    }
    Link::Unknown
}

impl TaskError {
    /// Classifies any error by what happened, wherever that is in its `source()` chain.
    ///
    /// Walks the chain from the outside in; the first error s3batch knows decides:
    /// with the feature `s3`, an `SdkError` of any aws-sdk-s3 operation (status, code,
    /// timeout, dispatch failure), `aws_sdk_s3::Error` or an operation's error with an error
    /// code, `ErrorMetadata`, a `ConnectorError`, a `ByteStreamError`; always an `std::io::Error`, a `serde_json::Error`,
    /// a `KeyError`, or a `TaskError`. The messages of the errors around it are put in
    /// front, as context. An error with nothing known in its chain is permanent, with the
    /// chain's messages.
    ///
    /// This is what `?` does for a boxed error, `aws_sdk_s3::Error` and `anyhow::Error`; use
    /// it in `impl From<YourError> for TaskError` to get the same for your own error type.
    ///
    /// ```
    /// use s3batch_core::{ErrorKind, TaskError};
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    /// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io);
    /// let e = TaskError::from_chain(boxed.as_ref());
    /// assert_eq!(e.kind(), ErrorKind::Temporary);
    /// assert_eq!(e.message(), "reset by peer");
    /// ```
    pub fn from_chain(err: &(dyn StdError + 'static)) -> TaskError {
        let mut context: Vec<String> = Vec::new();
        let mut codeless_service_error = false;
        let mut next = Some(err);
        while let Some(e) = next {
            match recognize(e) {
                Link::Classified(found) => {
                    return if context.is_empty() {
                        found
                    } else {
                        found.context(context.join(": "))
                    };
                }
                Link::Transparent => codeless_service_error = true,
                Link::Unknown => context.push(e.to_string()),
            }
            next = e.source();
        }
        if codeless_service_error {
            // A service error whose response had no error code, without its HTTP status
            // (`aws_sdk_s3::Error` does not keep it; `FillErrorCodes` prevents this).
            let e = TaskError::permanent("S3 error response without an error code");
            return if context.is_empty() {
                e
            } else {
                e.context(context.join(": "))
            };
        }
        TaskError::permanent(chain(err))
    }
}

impl StdError for TaskError {}

impl From<std::io::Error> for TaskError {
    /// Temporary for timeouts, interruptions and network failures (`TimedOut`,
    /// `Interrupted`, `WouldBlock`, `ConnectionReset`, `ConnectionAborted`,
    /// `ConnectionRefused`, `NotConnected`, `BrokenPipe`, `UnexpectedEof`, `HostUnreachable`,
    /// `NetworkUnreachable`, `NetworkDown`); otherwise by the error it wraps, if s3batch
    /// knows it, or permanent.
    fn from(err: std::io::Error) -> Self {
        TaskError::from_chain(&err)
    }
}

impl From<serde_json::Error> for TaskError {
    fn from(err: serde_json::Error) -> Self {
        TaskError::permanent(format!("JSON: {}", chain(&err)))
    }
}

impl From<crate::key::KeyError> for TaskError {
    fn from(err: crate::key::KeyError) -> Self {
        TaskError::permanent(err)
    }
}

impl From<Box<dyn StdError + Send + Sync>> for TaskError {
    /// As [`TaskError::from_chain`]: an SDK error anywhere in the chain is classified.
    fn from(err: Box<dyn StdError + Send + Sync>) -> Self {
        TaskError::from_chain(err.as_ref())
    }
}

#[cfg(feature = "anyhow")]
impl From<anyhow::Error> for TaskError {
    /// As [`TaskError::from_chain`] over [`anyhow::Error::chain`]: an SDK error wrapped with
    /// `.context(…)` is classified, with the context in front of its message.
    fn from(err: anyhow::Error) -> Self {
        TaskError::from_chain(err.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type BoxError = Box<dyn StdError + Send + Sync>;

    #[derive(Debug)]
    struct Mine(BoxError);
    impl fmt::Display for Mine {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("copying a.txt")
        }
    }
    impl StdError for Mine {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn io_errors_by_kind() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            TaskError::from(Error::new(K::TimedOut, "t")).kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            TaskError::from(Error::new(K::ConnectionReset, "r")).kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            TaskError::from(Error::new(K::NotFound, "n")).kind(),
            ErrorKind::Permanent
        );
    }

    #[test]
    fn question_mark_converts() {
        fn json() -> Result<(), TaskError> {
            let _: u32 = serde_json::from_str("nope")?;
            Ok(())
        }
        let e = json().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().starts_with("JSON: "));
    }

    #[test]
    fn result_ext_keeps_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let r: Result<(), _> = Err(Outer(std::io::Error::other("inner")));
        let e = r.temporary().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "outer: inner");
    }

    /// The chain walk without the SDK's errors (they are `sdk`'s tests): what it knows
    /// decides, whatever wraps it.
    #[test]
    fn chains_are_walked_to_what_is_known() {
        // A TaskError inside another error keeps its kind.
        let e = TaskError::from(Box::new(Mine(Box::new(TaskError::temporary("busy")))) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "copying a.txt: busy");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = TaskError::from(Box::new(Mine(Box::new(io))) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "copying a.txt: reset");
        // Nothing known: permanent, with the whole chain.
        let e = TaskError::from(Box::new(Mine("disk full".into())) as BoxError);
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "copying a.txt: disk full");
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_chains_are_walked() {
        let e = TaskError::from(anyhow::anyhow!("no such thing"));
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "no such thing");
        let inner: anyhow::Error = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow").into();
        let e = TaskError::from(inner.context("reading").context("task"));
        assert_eq!(e.kind(), ErrorKind::Temporary);
        assert_eq!(e.message(), "task: reading: slow");
    }
}
