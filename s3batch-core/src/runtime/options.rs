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
    // Distributed Map children only (see `crate::map`).
    pub(crate) map_key_encoding: crate::map::KeyEncoding,
    pub(crate) map_failure: crate::map::MapFailure,
    // Metrics (see `crate::metrics`); read once by `run`.
    pub(super) metrics_namespace: Option<String>,
    pub(super) metrics_service: Option<String>,
    pub(super) metrics_job_dimension: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            treat_missing_keys_as: ResultCode::PermanentFailure,
            concurrency: Self::DEFAULT_CONCURRENCY,
            deadline_margin: Self::DEFAULT_DEADLINE_MARGIN,
            max_result_len: Self::DEFAULT_MAX_RESULT_LEN,
            fallback_timeout: None,
            map_key_encoding: crate::map::KeyEncoding::Raw,
            map_failure: crate::map::MapFailure::FailBatch,
            metrics_namespace: None,
            metrics_service: None,
            metrics_job_dimension: false,
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

    /// How a Distributed Map item's key is read unless its batch says; see
    /// [`OptionsBuilder::map_key_encoding`].
    pub fn map_key_encoding(&self) -> crate::map::KeyEncoding {
        self.map_key_encoding
    }

    /// What a failed item does to a Distributed Map child; see
    /// [`OptionsBuilder::map_failure`].
    pub fn map_failure(&self) -> crate::map::MapFailure {
        self.map_failure
    }

    /// The CloudWatch metrics namespace given here (metrics may still be on through the
    /// environment); see [`OptionsBuilder::metrics_namespace`].
    pub fn metrics_namespace(&self) -> Option<&str> {
        self.metrics_namespace.as_deref()
    }

    /// The metrics' `Service` dimension given here; see [`OptionsBuilder::metrics_service`].
    pub fn metrics_service(&self) -> Option<&str> {
        self.metrics_service.as_deref()
    }

    /// Whether `JobId` is a metrics dimension; see [`OptionsBuilder::metrics_job_dimension`].
    pub fn metrics_job_dimension(&self) -> bool {
        self.metrics_job_dimension
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

    /// How the key of a Step Functions Distributed Map item is read when neither the item
    /// nor its batch's `BatchInput` says (`"KeyEncoding": "raw"` or `"url"`): raw (as
    /// stored, the default: a prefix listing's or a JSON item's keys) or URL-encoded (an S3
    /// Batch CSV manifest read as CSV). See [`crate::map`].
    pub fn map_key_encoding(mut self, encoding: crate::map::KeyEncoding) -> Self {
        self.0.map_key_encoding = encoding;
        self
    }

    /// What a failed item does to a Step Functions Distributed Map child (default
    /// [`MapFailure::FailBatch`](crate::map::MapFailure::FailBatch)). See [`crate::map`].
    pub fn map_failure(mut self, policy: crate::map::MapFailure) -> Self {
        self.0.map_failure = policy;
        self
    }

    /// Turns on CloudWatch metrics (one EMF document per invocation in the log) in this
    /// namespace; without it they are on only when `S3BATCH_METRICS_NAMESPACE` or
    /// `POWERTOOLS_METRICS_NAMESPACE` is set. See [`crate::metrics`].
    pub fn metrics_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.0.metrics_namespace = Some(namespace.into());
        self
    }

    /// The metrics' `Service` dimension (otherwise `POWERTOOLS_SERVICE_NAME`, or none).
    pub fn metrics_service(mut self, service: impl Into<String>) -> Self {
        self.0.metrics_service = Some(service.into());
        self
    }

    /// Makes `JobId` a metrics dimension, not only a property: each job then has metrics of
    /// its own (and CloudWatch bills each as a new metric).
    pub fn metrics_job_dimension(mut self, on: bool) -> Self {
        self.0.metrics_job_dimension = on;
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
