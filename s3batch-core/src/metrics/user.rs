//! The [`Metrics`] extractor: a task's own metrics, flushed in the invocation's document.

use super::collect::{collecting, with_current};
use super::document::{is_reserved, MAX_NAME_LEN};
use super::MetricsError;
use crate::error::TaskError;
use crate::extract::{FromTask, TaskParts};
use crate::BoxError;

/// A CloudWatch metric unit (the units the embedded metric format accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Unit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    /// No unit.
    None,
}

impl Unit {
    /// The unit's name in an EMF document (`"Bytes/Second"`, `"Count"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Microseconds => "Microseconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::Kilobytes => "Kilobytes",
            Unit::Megabytes => "Megabytes",
            Unit::Gigabytes => "Gigabytes",
            Unit::Terabytes => "Terabytes",
            Unit::Bits => "Bits",
            Unit::Kilobits => "Kilobits",
            Unit::Megabits => "Megabits",
            Unit::Gigabits => "Gigabits",
            Unit::Terabits => "Terabits",
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::KilobytesPerSecond => "Kilobytes/Second",
            Unit::MegabytesPerSecond => "Megabytes/Second",
            Unit::GigabytesPerSecond => "Gigabytes/Second",
            Unit::TerabytesPerSecond => "Terabytes/Second",
            Unit::BitsPerSecond => "Bits/Second",
            Unit::KilobitsPerSecond => "Kilobits/Second",
            Unit::MegabitsPerSecond => "Megabits/Second",
            Unit::GigabitsPerSecond => "Gigabits/Second",
            Unit::TerabitsPerSecond => "Terabits/Second",
            Unit::CountPerSecond => "Count/Second",
            Unit::None => "None",
        }
    }
}

/// A task parameter that adds the task's own metrics to its invocation's EMF document (what
/// Powertools' `add_metric` does).
///
/// Every value added by the tasks of one invocation goes into that invocation's document,
/// with the same namespace and dimensions as s3batch's own metrics. With metrics off (no
/// namespace; see the [module documentation](crate::metrics)), [`add`](Metrics::add) checks
/// its arguments and records nothing.
///
/// ```
/// use s3batch_core::metrics::{Metrics, Unit};
/// use s3batch_core::{Object, TaskError};
///
/// async fn measure(obj: Object, metrics: Metrics) -> Result<(), TaskError> {
///     metrics
///         .add("KeyBytes", Unit::Bytes, obj.key.len() as f64)
///         .map_err(TaskError::permanent)?;
///     Ok(())
/// }
/// # let event = s3batch_core::testing::EventBuilder::v1().object("b", "k");
/// # let response = tokio::runtime::Runtime::new().unwrap()
/// #     .block_on(s3batch_core::testing::invoke(measure, event)).unwrap();
/// # assert_eq!(response.results[0].result_code, s3batch_core::ResultCode::Succeeded);
/// ```
///
/// Values are collected in the task's own Tokio task: a value added from a task it spawned
/// (`tokio::spawn`) is refused with [`MetricsError::OutsideInvocation`], never lost quietly.
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    pub(super) enabled: bool,
}

impl Metrics {
    /// Whether metrics are on for this invocation (a namespace was given).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Adds one value of the metric `name`. A metric may get any number of values; past 100
    /// (EMF's limit per metric and document) they go on in further documents, as do metrics
    /// past 100 per document.
    ///
    /// Refused, with nothing recorded: an empty name or one longer than 255 bytes, a name of
    /// s3batch's own (its metrics and the document's dimension and property names), a value
    /// that is not finite, a unit other than the one the metric got first in this invocation,
    /// and a call from outside the invocation's task.
    pub fn add(&self, name: &str, unit: Unit, value: f64) -> Result<(), MetricsError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(MetricsError::InvalidName {
                name: name.to_owned(),
            });
        }
        if is_reserved(name) {
            return Err(MetricsError::ReservedName {
                name: name.to_owned(),
            });
        }
        if !value.is_finite() {
            return Err(MetricsError::NotFinite {
                name: name.to_owned(),
                value,
            });
        }
        if !self.enabled {
            return Ok(());
        }
        with_current(|c| c.add_user(name, unit, value)).unwrap_or_else(|| {
            Err(MetricsError::OutsideInvocation {
                name: name.to_owned(),
            })
        })
    }
}

impl FromTask for Metrics {
    type State = ();

    async fn init() -> Result<(), BoxError> {
        Ok(())
    }

    fn from_task(_: &(), _: &TaskParts<'_>) -> Result<Self, TaskError> {
        Ok(Metrics {
            enabled: collecting(),
        })
    }
}
