//! What the runtime calls of `metrics` when s3batch is built without its `metrics` feature:
//! hooks that do nothing, and a configuration that is never made. A namespace given anyway
//! (in the attribute or the environment) is reported once at start, as a warning: no metric
//! is written.

use crate::logging::TARGET;
use crate::response::{Response, ResultCode};
use std::convert::Infallible;

/// How a task run ended (as with the feature on; nothing reads it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunEnd<'a> {
    Succeeded,
    #[allow(dead_code)]
    Failed(ResultCode, &'a str),
    Panicked,
}

#[inline(always)]
pub(crate) fn task_started() -> Option<u64> {
    None
}

#[inline(always)]
pub(crate) fn task_finished(_started: Option<u64>, _end: RunEnd<'_>) {}

#[inline(always)]
pub(crate) fn answered(_job_id: &str, _response: &Response) {}

/// The metrics configuration, which cannot exist without the feature.
pub(crate) enum MetricsConfig {}

/// The variables that would turn metrics on.
const NAMESPACE_VARIABLES: [&str; 2] =
    ["S3BATCH_METRICS_NAMESPACE", "POWERTOOLS_METRICS_NAMESPACE"];

impl MetricsConfig {
    /// Always `None`; warns when a namespace was given.
    pub(crate) fn from_env(
        namespace: Option<&str>,
        _service: Option<&str>,
        _job_dimension: bool,
    ) -> Result<Option<Self>, Infallible> {
        let from_env = NAMESPACE_VARIABLES
            .iter()
            .find(|name| std::env::var_os(name).is_some());
        if let Some(given) = namespace
            .map(|_| "the attribute's `metrics_namespace`")
            .or(from_env.copied())
        {
            tracing::warn!(
                target: TARGET,
                "{given} asks for CloudWatch metrics, but this function was built without \
                 s3batch's `metrics` feature: no metrics are written (enable the feature, \
                 on by default)"
            );
        }
        Ok(None)
    }
}
