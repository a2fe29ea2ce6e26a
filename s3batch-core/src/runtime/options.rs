//! [`Options`]: how tasks are run, and their builder.

use crate::response::ResultCode;
use std::time::Duration;

/// How tasks are run; set from the attribute (`#[s3batch::task(concurrency = 8)]`) or built
/// by hand with [`Options::builder`] for [`run`](crate::run) and
/// [`Handler::new`](crate::Handler::new).
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
    // Read in place by the rest of `runtime`: the handler, the deadline and `run`.
    pub(super) treat_missing_keys_as: ResultCode,
    pub(super) concurrency: usize,
    pub(super) deadline_margin: Duration,
    pub(super) max_result_len: usize,
    pub(super) fallback_timeout: Option<Duration>,
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
    /// [`RESPONSE_BUDGET`](crate::response::RESPONSE_BUDGET) (see
    /// [`fit_to_budget`](crate::response::fit_to_budget)).
    pub fn max_result_len(mut self, bytes: usize) -> Self {
        self.0.max_result_len = bytes;
        self
    }

    /// The function's timeout, for when the runtime gives no usable deadline: each
    /// invocation's deadline is then its start plus this. Emulators need it: `cargo lambda
    /// watch` sends the constant `Lambda-Runtime-Deadline-Ms: 600000` (1970), which is not a
    /// deadline. [`run`](crate::run) sets it from `AWS_LAMBDA_FUNCTION_TIMEOUT` (seconds, the
    /// variable the AWS Lambda Runtime Interface Emulator reads) unless set here.
    pub fn fallback_timeout(mut self, timeout: Duration) -> Self {
        self.0.fallback_timeout = Some(timeout);
        self
    }

    /// The options.
    pub fn build(self) -> Options {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder alone: its defaults, and each setter read back by its getter. Nothing here
    /// runs `#[s3batch::task]` or a task; that the attribute's options reach the running
    /// handler is observed by `tests/renamed_crate.rs` (its binaries served as Lambdas), what
    /// each option does by `runtime::tests` (`options_apply`,
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
}
