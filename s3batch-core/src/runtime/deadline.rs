//! The invocation's deadline: when to give up on unfinished tasks ([`deadline`]), and
//! [`BeforeDeadline`], the future that does.

use super::options::Options;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

pin_project_lite::pin_project! {
    /// `work` until it finishes (`Some` of its output) or the deadline passes (`None`; `work`
    /// is dropped with this future). Like `tokio::time::timeout_at`, except that the deadline
    /// is read, and a timer made, only if `work` waits: a task that finishes in its first
    /// poll costs no clock and no timer. The deadline is a point in time (the context's),
    /// so reading it late does not move it.
    ///
    /// Hot path: the plain form, `tokio::time::timeout_at` after reading the deadline, reads
    /// the clock and makes a timer for every task; it measured +167 instructions per 1-task
    /// invocation, +13,107 per 100-task one (`SECTIONS=5 bench/run.sh`, as deployed;
    /// bench/analysis.md, "Hand-written shapes").
    pub(super) struct BeforeDeadline<'a, F> {
        #[pin]
        work: F,
        // `None` until `work` first waits; then the timer, or `None` for no deadline. Boxed:
        // most tasks never wait, and a timer is larger than a task's future.
        timer: Option<Option<Pin<Box<tokio::time::Sleep>>>>,
        context: &'a lambda_runtime::Context,
        options: &'a Options,
    }
}

impl<'a, F> BeforeDeadline<'a, F> {
    pub(super) fn new(work: F, context: &'a lambda_runtime::Context, options: &'a Options) -> Self {
        Self {
            work,
            timer: None,
            context,
            options,
        }
    }
}

impl<F: Future> Future for BeforeDeadline<'_, F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = this.timer.get_or_insert_with(|| {
            deadline(this.context, this.options).map(|at| Box::pin(tokio::time::sleep_until(at)))
        });
        match timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// How far in the past a deadline may lie and still be one: Lambda ends an invocation at its
/// deadline, so anything much older is a placeholder (`Context::default()` has 0, `cargo
/// lambda watch` sends 600000), not a time. The hour leaves room for clock skew.
const IMPLAUSIBLY_OLD: Duration = Duration::from_secs(3600);

/// When to give up on unfinished tasks: the context's deadline less the margin. A deadline
/// that is not a time (see [`IMPLAUSIBLY_OLD`]) is replaced by now plus the options'
/// fallback timeout, or else means none.
fn deadline(context: &lambda_runtime::Context, options: &Options) -> Option<tokio::time::Instant> {
    let now = SystemTime::now();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(context.deadline);
    let left = match at.duration_since(now) {
        Ok(left) => left,
        Err(past) if past.duration() <= IMPLAUSIBLY_OLD => Duration::ZERO,
        Err(_) => options.fallback_timeout?,
    };
    Some(tokio::time::Instant::now() + left.saturating_sub(options.deadline_margin))
}
