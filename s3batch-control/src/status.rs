//! Following a job (`cargo s3batch status`, `list`): what `DescribeJob` says, in words.
//!
//! `status --watch` exits with [`exit_code`] of the job's final status: `0` Complete
//! ([`EXIT_COMPLETE`]), `2` Failed ([`EXIT_FAILED`]), `3` Cancelled ([`EXIT_CANCELLED`]);
//! `1` means the job could not be described (an error of the command itself).

use aws_sdk_s3control::types::{JobDescriptor, JobListDescriptor, JobProgressSummary, JobStatus};

/// `status --watch`: the job completed (even with failed tasks).
pub const EXIT_COMPLETE: u8 = 0;
/// `status --watch`: the job failed (the failure threshold, or a job-level problem).
pub const EXIT_FAILED: u8 = 2;
/// `status --watch`: the job was cancelled.
pub const EXIT_CANCELLED: u8 = 3;

/// Whether a job in `status` will never change again.
pub fn is_final(status: &JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Complete | JobStatus::Failed | JobStatus::Cancelled
    )
}

/// The exit status of `status --watch` for a job that ended in `status`.
pub fn exit_code(status: &JobStatus) -> u8 {
    match status {
        JobStatus::Failed => EXIT_FAILED,
        JobStatus::Cancelled => EXIT_CANCELLED,
        _ => EXIT_COMPLETE,
    }
}

/// Counts from a `ProgressSummary`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Tasks in the manifest.
    pub total: i64,
    /// Tasks that succeeded.
    pub succeeded: i64,
    /// Tasks that failed.
    pub failed: i64,
    /// Seconds the job has been `Active`.
    pub active_seconds: i64,
}

impl Counts {
    /// The counts of a summary (zeros when there is none yet).
    pub fn of(p: Option<&JobProgressSummary>) -> Self {
        let Some(p) = p else {
            return Self::default();
        };
        Counts {
            total: p.total_number_of_tasks.unwrap_or(0),
            succeeded: p.number_of_tasks_succeeded.unwrap_or(0),
            failed: p.number_of_tasks_failed.unwrap_or(0),
            active_seconds: p
                .timers
                .as_ref()
                .and_then(|t| t.elapsed_time_in_active_seconds)
                .unwrap_or(0),
        }
    }

    /// Tasks that finished.
    pub fn done(&self) -> i64 {
        self.succeeded + self.failed
    }

    /// Finished tasks per second of activity, once there is a second to count.
    pub fn per_second(&self) -> Option<f64> {
        (self.active_seconds > 0).then(|| self.done() as f64 / self.active_seconds as f64)
    }

    /// Seconds left at the rate so far.
    pub fn eta_seconds(&self) -> Option<f64> {
        let rate = self.per_second().filter(|r| *r > 0.0)?;
        Some((self.total - self.done()).max(0) as f64 / rate)
    }

    /// The failure rate and what S3's rule makes of it: a job fails once at least 1,000 tasks
    /// have finished and more than 50 % of them failed.
    pub fn failure_rule(&self) -> String {
        let done = self.done();
        if done == 0 {
            return "no task finished yet".into();
        }
        let rate = 100.0 * self.failed as f64 / done as f64;
        let verdict = if rate <= 50.0 {
            "below the 50 % that fails a job"
        } else if done < 1000 {
            "above 50 %, but S3 applies the rule only from 1,000 finished tasks"
        } else {
            "above 50 % of at least 1,000 tasks: S3 fails the job"
        };
        format!("{rate:.1} % of {done} finished tasks failed ({verdict})")
    }
}

/// The job as lines of text: status, counts, rate and ETA, the failure rule, the failure
/// reasons (with what to do about the ones this project knows) and where the report goes.
pub fn describe(job: &JobDescriptor) -> String {
    let mut out = Vec::new();
    let status = job.status.as_ref().map_or("unknown", |s| s.as_str());
    out.push(format!(
        "job {}: {status}{}",
        job.job_id.as_deref().unwrap_or("?"),
        job.description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    ));
    if let Some(reason) = &job.status_update_reason {
        out.push(format!("  reason: {reason}"));
    }
    let c = Counts::of(job.progress_summary.as_ref());
    out.push(format!(
        "  tasks: {} total, {} succeeded, {} failed, {} to go",
        c.total,
        c.succeeded,
        c.failed,
        (c.total - c.done()).max(0)
    ));
    if c.total > 0 {
        out.push(format!("  {}", bar(&c, 30)));
    }
    if let Some(rate) = c.per_second() {
        out.push(format!(
            "  rate: {rate:.1} tasks/s over {} s active{}",
            c.active_seconds,
            match c.eta_seconds() {
                Some(eta) if !job.status.as_ref().is_some_and(is_final) =>
                    format!(", about {eta:.0} s left"),
                _ => String::new(),
            }
        ));
    }
    out.push(format!("  failures: {}", c.failure_rule()));
    for f in job.failure_reasons.iter().flatten() {
        let code = f.failure_code.as_deref().unwrap_or("?");
        out.push(format!(
            "  failure reason: {code}: {}",
            f.failure_reason.as_deref().unwrap_or("")
        ));
        if let Some(hint) = hint(code) {
            out.push(format!("    fix: {hint}"));
        }
    }
    if let Some(r) = &job.report {
        if r.enabled {
            let bucket = r
                .bucket
                .as_deref()
                .map(|b| b.trim_start_matches("arn:aws:s3:::"))
                .unwrap_or("?");
            let prefix = r
                .prefix
                .as_deref()
                .map(|p| format!("{}/", p.trim_end_matches('/')))
                .unwrap_or_default();
            out.push(format!(
                "  report: s3://{bucket}/{prefix}job-{}/manifest.json ({})",
                job.job_id.as_deref().unwrap_or("?"),
                r.report_scope.as_ref().map_or("AllTasks", |s| s.as_str())
            ));
        } else {
            out.push("  report: none".into());
        }
    }
    out.join("\n")
}

/// A text progress bar `width` wide: `#` succeeded, `x` failed, `.` to go, then the percent
/// done.
pub fn bar(c: &Counts, width: usize) -> String {
    let total = c.total.max(1) as f64;
    let cells = |n: i64| ((n.max(0) as f64 / total) * width as f64).round() as usize;
    let ok = cells(c.succeeded).min(width);
    let failed = cells(c.failed).min(width - ok);
    format!(
        "[{}{}{}] {:.0} %",
        "#".repeat(ok),
        "x".repeat(failed),
        ".".repeat(width - ok - failed),
        100.0 * c.done() as f64 / total
    )
}

/// What to do about a failure code (the local endpoint's codes and S3's documented ones).
pub fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "ManifestETagMismatch" => {
            "the manifest changed after the job was created (its ETag differs): submit again, \
             which reads the new ETag"
        }
        "ManifestNotReadable" => {
            "the job's role cannot read the manifest: grant it s3:GetObject on the manifest \
             (cargo s3batch submit --print-policy), and check the bucket's region"
        }
        "InvalidManifestContent" => {
            "a row of the manifest is not bucket,key[,versionId] with URL-encoded keys: check \
             it with cargo s3batch run --dry-run"
        }
        "ReportNotWritable" => {
            "the report bucket does not exist or the role cannot write it: create it, or grant \
             s3:PutObject on the report prefix"
        }
        "TaskFailureThresholdExceeded" => {
            "more than half of the tasks failed: read the report's error codes (cargo s3batch \
             report), fix the function, and retry the failed rows"
        }
        _ => return None,
    })
}

/// One line of `list`.
pub fn list_line(j: &JobListDescriptor) -> String {
    let c = Counts::of(j.progress_summary.as_ref());
    format!(
        "{}  {:<10} priority {:<5} {:>8}/{:<8} ok {:>8} failed {:>8}  {}{}",
        j.job_id.as_deref().unwrap_or("?"),
        j.status.as_ref().map_or("?", |s| s.as_str()),
        j.priority,
        c.done(),
        c.total,
        c.succeeded,
        c.failed,
        j.creation_time
            .map(|t| t
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default())
            .unwrap_or_default(),
        j.description
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3control::types::{JobFailure, JobReport, JobReportScope, JobTimers};

    fn job(status: JobStatus, succeeded: i64, failed: i64) -> JobDescriptor {
        JobDescriptor::builder()
            .job_id("j1")
            .status(status)
            .progress_summary(
                JobProgressSummary::builder()
                    .total_number_of_tasks(2000)
                    .number_of_tasks_succeeded(succeeded)
                    .number_of_tasks_failed(failed)
                    .timers(
                        JobTimers::builder()
                            .elapsed_time_in_active_seconds(10)
                            .build(),
                    )
                    .build(),
            )
            .report(
                JobReport::builder()
                    .enabled(true)
                    .bucket("arn:aws:s3:::rep")
                    .prefix("batch/")
                    .report_scope(JobReportScope::FailedTasksOnly)
                    .build(),
            )
            .build()
    }

    #[test]
    fn exit_codes_per_final_status() {
        assert_eq!(exit_code(&JobStatus::Complete), 0);
        assert_eq!(exit_code(&JobStatus::Failed), 2);
        assert_eq!(exit_code(&JobStatus::Cancelled), 3);
        assert!(is_final(&JobStatus::Cancelled) && !is_final(&JobStatus::Cancelling));
        assert!(!is_final(&JobStatus::Suspended));
    }

    #[test]
    fn rate_eta_and_the_failure_rule() {
        let c = Counts::of(job(JobStatus::Active, 400, 600).progress_summary.as_ref());
        assert_eq!(c.per_second(), Some(100.0));
        assert_eq!(c.eta_seconds(), Some(10.0));
        assert_eq!(bar(&c, 10), "[##xxx.....] 50 %");
        assert!(describe(&job(JobStatus::Active, 400, 600)).contains("[######"));
        assert!(
            c.failure_rule()
                .starts_with("60.0 % of 1000 finished tasks failed (above 50 % of at least 1,000"),
            "{}",
            c.failure_rule()
        );
        let c = Counts::of(job(JobStatus::Active, 100, 300).progress_summary.as_ref());
        assert!(
            c.failure_rule().contains("only from 1,000"),
            "{}",
            c.failure_rule()
        );
        let c = Counts::of(job(JobStatus::Active, 300, 100).progress_summary.as_ref());
        assert!(
            c.failure_rule().contains("below the 50 %"),
            "{}",
            c.failure_rule()
        );
        assert_eq!(Counts::of(None).failure_rule(), "no task finished yet");
    }

    #[test]
    fn the_description_names_reasons_fixes_and_the_report() {
        let mut j = job(JobStatus::Failed, 0, 0);
        j.failure_reasons = Some(vec![JobFailure::builder()
            .failure_code("ManifestETagMismatch")
            .failure_reason("the ETag differs")
            .build()]);
        let text = describe(&j);
        assert!(text.starts_with("job j1: Failed"), "{text}");
        assert!(
            text.contains("failure reason: ManifestETagMismatch: the ETag differs"),
            "{text}"
        );
        assert!(text.contains("fix: the manifest changed"), "{text}");
        assert!(
            text.contains("report: s3://rep/batch/job-j1/manifest.json (FailedTasksOnly)"),
            "{text}"
        );
        assert!(!text.contains("left"), "no ETA for a finished job: {text}");
    }
}
