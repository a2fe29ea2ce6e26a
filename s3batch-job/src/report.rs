//! The completion report, in S3's `Report_CSV_20180820` layout:
//!
//! ```text
//! <report root>/job-<job id>/manifest.json
//! <report root>/job-<job id>/results/<md5 of the file>.csv   (one for succeeded tasks, one for failed)
//! ```
//!
//! Result rows are `Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage`,
//! the order `manifest.json`'s `ReportSchema` declares. (AWS's example rows put the HTTP
//! status before the error code; [`parse_report_csv`] reads either order.) Keys are written
//! URL-encoded the way manifests carry them ([`s3batch::key::encode_key`]: a space as `+`,
//! a `+` as `%2B`), so a row never breaks across lines. `TaskStatus` is `succeeded` or
//! `failed`; `ErrorCode` is empty on success and the last result code otherwise;
//! `HTTPStatusCode` is the Invoke API's status (200 even when the function failed, as on
//! Lambda), empty when the call got no response. A `ResultMessage` is at most
//! [`MAX_MESSAGE_BYTES`] bytes: a longer `resultString` is cut on a character boundary and
//! ends with a marker saying how long it was ([`cap_message`]).
//!
//! A job run with a [`Journal`](crate::journal::Journal) writes the report from the journal
//! ([`crate::journal::write_report`]): results rows are then in the order the tasks finished
//! (S3 promises no order either); [`JobReport::render`] writes them in manifest order.

use crate::csv_strict::CsvReader;
use crate::digest::hex;
use crate::manifest::ManifestEntry;
use md5::{Digest, Md5};
use s3batch::wire::{ReportManifest, ReportManifestError, ReportRowError, ResultsFile};
pub use s3batch::wire::{ReportRow, TaskStatus};
use s3batch::ResultCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The final result of one manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The row.
    pub entry: ManifestEntry,
    /// How it ended.
    pub status: TaskStatus,
    /// The result code of a failed task; `None` on success.
    pub error_code: Option<ResultCode>,
    /// The Invoke API's HTTP status, when there was a response.
    pub http_status: Option<u16>,
    /// The `resultString`, or what S3 would write instead.
    pub message: String,
    /// How many times the task was sent (1 + redrives).
    pub attempts: u32,
}

impl TaskRecord {
    /// The record's row in the completion report.
    pub fn report_row(&self) -> ReportRow {
        ReportRow::new(
            self.entry.bucket.clone(),
            self.entry.key.clone(),
            self.entry.version_id.clone(),
            self.status,
            self.error_code,
            self.http_status,
            self.message.clone(),
        )
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Every task ran.
    Complete,
    /// The failure threshold stopped the job; tasks not yet started were not run.
    Failed {
        /// Why, in words.
        reason: String,
    },
    /// The job was stopped from outside (Ctrl-C, SIGTERM) before every task had run: the
    /// report lists the tasks that finished; a resumed job runs the others.
    Cancelled,
}

impl JobStatus {
    /// S3's name for the status: `Complete`, `Failed` or `Cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Complete => "Complete",
            JobStatus::Failed { .. } => "Failed",
            JobStatus::Cancelled => "Cancelled",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobStatus::Failed { reason } => write!(f, "Failed: {reason}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The longest `ResultMessage` written to a report, in bytes of UTF-8, marker included.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Caps a message at [`MAX_MESSAGE_BYTES`]: a longer one is cut on a character boundary and
/// ends with `…[truncated N bytes]`, N the bytes cut (the marker the s3batch handler uses).
///
/// ```
/// let long = "é".repeat(5000);
/// let capped = s3batch_job::report::cap_message(long);
/// assert_eq!(capped.len(), 4095);
/// assert!(capped.ends_with("éé…[truncated 5930 bytes]"));
/// assert_eq!(s3batch_job::report::cap_message("short".into()), "short");
/// ```
pub fn cap_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let total = message.len();
    // The marker for the longest possible cut: the real one is no longer.
    let room = MAX_MESSAGE_BYTES - format!("…[truncated {total} bytes]").len();
    let mut cut = room;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = message;
    out.truncate(cut);
    out.push_str(&format!("…[truncated {} bytes]", total - cut));
    out
}

/// Whether `id` is a job id this runner accepts: 1 to 64 of `A-Z a-z 0-9 - _` (S3's job ids
/// are UUIDs). Anything else could name a path outside the report folder.
///
/// ```
/// use s3batch_job::report::valid_job_id;
/// assert!(valid_job_id("ade3a8c2-3f38-4cbe-a2ae-b66a7c62fbbf"));
/// assert!(!valid_job_id("x/../../../escaped"));
/// assert!(!valid_job_id(""));
/// assert!(!valid_job_id(&"a".repeat(65)));
/// ```
pub fn valid_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The job id as it is used in a path: a valid id as it is, anything else with every byte
/// outside the allowed set as `%XX` (so no `/` or `..` ever reaches a path).
pub(crate) fn path_safe_id(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Counts and timing of a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Summary {
    /// Rows in the manifest.
    pub total: usize,
    /// Tasks that succeeded.
    pub succeeded: usize,
    /// Tasks that failed.
    pub failed: usize,
    /// Redrives sent (a task redriven twice counts twice).
    pub redriven: usize,
    /// Distinct tasks redriven at least once.
    pub tasks_redriven: usize,
    /// Rows never started because the job stopped.
    pub not_run: usize,
    /// Invocations made.
    pub invocations: usize,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Summary {
    /// Finished tasks per second of wall-clock time.
    pub fn tasks_per_second(&self) -> f64 {
        (self.succeeded + self.failed) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How a job run through a journal ended: the status and the counts (the records are in
/// the journal).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobOutcome {
    /// The job id.
    pub job_id: String,
    /// How the job ended.
    pub status: JobStatus,
    /// Counts (over the whole job, earlier runs of a resumed job included) and timing (of
    /// this run).
    pub summary: Summary,
}

/// Everything a job produced: the status, one record per task that ran (in manifest
/// order), and the summary.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobReport {
    /// The job id (used in the report's folder name).
    pub job_id: String,
    /// How the job ended.
    pub status: JobStatus,
    /// One record per task that ran, in manifest order.
    pub records: Vec<TaskRecord>,
    /// Counts and timing.
    pub summary: Summary,
}

/// Which tasks go into the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportScope {
    /// Every task.
    #[default]
    AllTasks,
    /// Failed tasks only.
    FailedTasksOnly,
}

impl JobReport {
    /// The report's files as `(key relative to the report root, bytes)`, `manifest.json`
    /// last. `bucket` fills `manifest.json`'s `Bucket` fields (empty for a local folder) and
    /// `prefix` is put before every key (`""` or ending with `/`).
    pub fn render(&self, scope: ReportScope, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let base = format!("{prefix}job-{}", path_safe_id(&self.job_id));
        let mut files = Vec::new();
        let mut results = Vec::new();
        for status in [TaskStatus::Succeeded, TaskStatus::Failed] {
            if status == TaskStatus::Succeeded && scope == ReportScope::FailedTasksOnly {
                continue;
            }
            let rows: Vec<&TaskRecord> =
                self.records.iter().filter(|r| r.status == status).collect();
            if rows.is_empty() {
                continue;
            }
            let csv = report_csv(&rows);
            let md5 = hex(&Md5::digest(&csv));
            let key = format!("{base}/results/{md5}.csv");
            results.push(ResultsFile {
                task_execution_status: status,
                bucket: bucket.to_owned(),
                md5_checksum: md5,
                key: key.clone(),
            });
            files.push((key, csv));
        }
        files.push((format!("{base}/manifest.json"), manifest_json(results)));
        files
    }
}

/// A report's `manifest.json` listing `results`.
pub(crate) fn manifest_json(results: Vec<ResultsFile>) -> Vec<u8> {
    ReportManifest::new(rfc3339_millis(SystemTime::now()), results).to_json()
}

/// A CSV writer for results rows.
pub(crate) fn results_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out)
}

/// Writes one results row.
pub(crate) fn write_row<W: Write>(w: &mut csv::Writer<W>, r: &TaskRecord) -> csv::Result<()> {
    w.write_record(r.report_row().to_fields().iter().map(|f| f.as_bytes()))
}

fn report_csv(rows: &[&TaskRecord]) -> Vec<u8> {
    let mut w = results_writer(Vec::new());
    for r in rows {
        write_row(&mut w, r).expect("writing to a Vec");
    }
    w.into_inner().expect("writing to a Vec")
}

/// Reads a results CSV of a completion report, in the declared column order or in the order
/// of AWS's examples (HTTP status before error code), row by row ([`ReportRow::from_fields`]:
/// a `TaskStatus` or `ErrorCode` that is not S3's is an error naming it and its line). A
/// header row (`Bucket,Key,…`) is skipped. The CSV is read as strictly as a manifest: an
/// unbalanced quote, which would swallow the rows after it into one message, is an error
/// naming its line.
///
/// ```
/// use s3batch::ResultCode;
/// let rows = s3batch_job::parse_report_csv(
///     b"b,a+b%2Bc,,failed,PermanentFailure,200,gone\nb,k,,failed,200,TemporaryFailure,busy\n",
/// ).unwrap();
/// assert_eq!(rows[0].key, "a b+c");
/// assert_eq!((rows[0].error_code, rows[0].http_status), (Some(ResultCode::PermanentFailure), Some(200)));
/// assert_eq!((rows[1].error_code, rows[1].http_status), (Some(ResultCode::TemporaryFailure), Some(200)));
/// ```
pub fn parse_report_csv(bytes: &[u8]) -> Result<Vec<ReportRow>, ReportError> {
    let mut rows = Vec::new();
    read_results(bytes, "", &mut |row| {
        rows.push(row);
        Ok::<_, ReportError>(())
    })?;
    Ok(rows)
}

/// Why a completion report, or one of its results files, cannot be read. Each names the
/// file (empty for bytes with no name, whose message starts with `line N:`) and, for a
/// problem in a results file, the line.
///
/// ```
/// use s3batch_job::report::ReportError;
/// let err = s3batch_job::parse_report_csv(b"b,k,,succeeded,,,\nb,k,,done,,,\n").unwrap_err();
/// assert!(matches!(err, ReportError::Row { line: 2, .. }), "{err:?}");
/// assert!(err.to_string().starts_with(r#"line 2: TaskStatus: status "done""#), "{err}");
/// let err = s3batch_job::parse_report_csv(b"b,k,,failed,,200,\"oops\n").unwrap_err();
/// assert!(matches!(err, ReportError::Csv { line: 1, .. }), "{err:?}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A results file is not CSV as strict as a manifest: an unbalanced quote (which would
    /// swallow the rows after it), a field that is not UTF-8, or reading it failed.
    #[error("{}line {line}: {source}", FilePrefix(file))]
    Csv {
        /// The file, as its reader named it (a path, an `s3://` URL; empty for bytes).
        file: String,
        /// The line (for a field over several lines, where it starts).
        line: u64,
        /// What is wrong.
        #[source]
        source: CsvProblem,
    },
    /// A row is not a results row: not 7 columns, or a `TaskStatus` or `ErrorCode` that is
    /// not S3's.
    #[error("{}line {line}: {source}", FilePrefix(file))]
    Row {
        /// The file, as its reader named it (empty for bytes).
        file: String,
        /// The line the row starts on.
        line: u64,
        /// What is wrong with it.
        #[source]
        source: ReportRowError,
    },
    /// A file of the report could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The report's `manifest.json` is not a completion report's.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The `manifest.json`.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ReportManifestError,
    },
}

/// What is wrong at a line of a results file read as CSV ([`ReportError::Csv`]): an
/// unbalanced quote, a field that is not UTF-8, an input that failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CsvProblem(crate::csv_strict::Problem);

impl From<crate::csv_strict::CsvError> for ReportError {
    fn from(e: crate::csv_strict::CsvError) -> Self {
        ReportError::Csv {
            file: e.file,
            line: e.line,
            source: CsvProblem(e.problem),
        }
    }
}

/// `file: `, or nothing for a file with no name.
struct FilePrefix<'a>(&'a str);

impl std::fmt::Display for FilePrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            "" => Ok(()),
            file => write!(f, "{file}: "),
        }
    }
}

/// Reads the rows of one results CSV, streamed, strictly ([`crate::csv_strict`]), either
/// column order, skipping a header row; calls `each` per row and passes its error on.
/// Problems name `file` (empty: no name, `line N: …`) and the line.
pub(crate) fn read_results<E: From<ReportError>>(
    input: impl std::io::Read,
    file: &str,
    each: &mut dyn FnMut(ReportRow) -> Result<(), E>,
) -> Result<(), E> {
    let mut reader = CsvReader::new(input, file);
    let mut first = true;
    while let Some(record) = reader.next_record() {
        let record = record.map_err(ReportError::from)?;
        let fields = record.text().map_err(ReportError::from)?;
        if std::mem::take(&mut first) && fields.starts_with(&["Bucket", "Key"]) {
            continue;
        }
        let row = ReportRow::from_fields(&fields).map_err(|source| ReportError::Row {
            file: file.to_owned(),
            line: record.line,
            source,
        })?;
        each(row)?;
    }
    Ok(())
}

/// Reads a report written to a local folder: `dir` is the `job-<id>` folder (the one
/// holding `manifest.json`). Rows of every results file, succeeded first.
pub fn read_report(dir: &Path) -> Result<Vec<ReportRow>, ReportError> {
    let path = dir.join("manifest.json");
    let manifest = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(source) => return Err(ReportError::Read { path, source }),
    };
    let manifest = match ReportManifest::from_slice(&manifest) {
        Ok(manifest) => manifest,
        Err(source) => return Err(ReportError::Manifest { path, source }),
    };
    let root = dir.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    for result in &manifest.results {
        let key = result.key.as_str();
        // Keys are relative to the report root; a job folder copied elsewhere still has
        // its files under `results/`.
        let file = key.rsplit('/').next().unwrap_or(key);
        let path = Some(root.join(key))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| dir.join("results").join(file));
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(source) => return Err(ReportError::Read { path, source }),
        };
        read_results(
            std::io::BufReader::new(file),
            &path.display().to_string(),
            &mut |row| {
                rows.push(row);
                Ok::<_, ReportError>(())
            },
        )?;
    }
    Ok(rows)
}

/// `2019-04-05T17:48:39.725Z`: RFC 3339 in UTC with milliseconds, as S3 writes
/// `ReportCreationDate`.
fn rfc3339_millis(t: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(t)
        .format(FORMAT)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        key: &str,
        status: TaskStatus,
        code: Option<ResultCode>,
        message: &str,
    ) -> TaskRecord {
        TaskRecord {
            entry: ManifestEntry::new("bucket-one", key),
            status,
            error_code: code,
            http_status: Some(200),
            message: message.into(),
            attempts: 1,
        }
    }

    /// Rows carry core's enums: a status or result code that is not S3's is an error naming
    /// the value and the line, not a string passed on.
    #[test]
    fn report_rows_read_into_the_enums() {
        let rows =
            parse_report_csv(b"b,k,,succeeded,,,fine\nb,k,v,failed,TemporaryFailure,,busy\n")
                .unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.task_status, r.error_code, r.http_status))
                .collect::<Vec<_>>(),
            [
                (TaskStatus::Succeeded, None, None),
                (TaskStatus::Failed, Some(ResultCode::TemporaryFailure), None)
            ]
        );
        for (csv, at, expect) in [
            (
                &b"b,k,,succeeded,,,\nb,k,,done,,,\n"[..],
                2,
                r#"line 2: TaskStatus: status "done" is not succeeded or failed"#,
            ),
            (
                b"b,k,,failed,Failed,200,x\n",
                1,
                r#"line 1: ErrorCode "Failed" is not a result code"#,
            ),
            (b"b,k,,failed\n", 1, "line 1: 4 columns, expected 7"),
        ] {
            let err = parse_report_csv(csv).unwrap_err();
            assert!(
                matches!(&err, ReportError::Row { file, line, .. } if file.is_empty() && *line == at),
                "{err:?}"
            );
            assert!(err.to_string().starts_with(expect), "{err}");
        }
    }

    /// Every results file is read strictly, as manifests are: a quote never closed (which
    /// swallowed the next row into the message), a `"` inside an unquoted field, each is an
    /// error naming the line, and [`read_report`] names the file too.
    #[test]
    fn unbalanced_quotes_are_refused_with_file_and_line() {
        let err = parse_report_csv(
            b"b,k1,,failed,PermanentFailure,200,\"oops\nb,k2,,failed,PermanentFailure,200,x\n",
        )
        .unwrap_err();
        assert!(matches!(err, ReportError::Csv { line: 1, .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("line 1: a quote opened on this line is never closed"),
            "{err}"
        );
        let err =
            parse_report_csv(b"b,k1,,succeeded,,200,\nb,k2,,succeeded,,200,o\"k\n").unwrap_err();
        assert!(matches!(err, ReportError::Csv { line: 2, .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("line 2: a `\"` inside a field that does not start with one"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("s3batch-report-quote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("job-j1/results")).unwrap();
        std::fs::write(
            dir.join("job-j1/manifest.json"),
            r#"{"Format":"Report_CSV_20180820","Results":[{"TaskExecutionStatus":"failed","Key":"job-j1/results/a.csv"}]}"#,
        )
        .unwrap();
        let file = dir.join("job-j1/results/a.csv");
        std::fs::write(
            &file,
            "b,k1,,succeeded,,200,\nb,k2,,failed,\"PermanentFailure,200,x\n",
        )
        .unwrap();
        let err = read_report(&dir.join("job-j1")).unwrap_err();
        let name = file.display().to_string();
        assert!(
            matches!(&err, ReportError::Csv { file, line: 2, .. } if *file == name),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "{}: line 2: a quote opened on this line is never closed",
                file.display()
            )),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A report that cannot be read says which file and why, as a variant a caller can
    /// tell apart: no `manifest.json`, a `manifest.json` that is not a report's, a results
    /// file it lists that is not there.
    #[test]
    fn unreadable_reports_name_the_file() {
        let dir = std::env::temp_dir().join(format!("s3batch-report-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let job = dir.join("job-j1");
        std::fs::create_dir_all(&job).unwrap();
        let manifest = job.join("manifest.json");
        let err = read_report(&job).unwrap_err();
        assert!(
            matches!(&err, ReportError::Read { path, source }
                if *path == manifest && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("reading {}: ", manifest.display())),
            "{err}"
        );
        std::fs::write(&manifest, "{not json").unwrap();
        let err = read_report(&job).unwrap_err();
        assert!(
            matches!(&err, ReportError::Manifest { path, .. } if *path == manifest),
            "{err:?}"
        );
        std::fs::write(
            &manifest,
            r#"{"Format":"Report_CSV_20180820","Results":[{"TaskExecutionStatus":"failed","Key":"job-j1/results/gone.csv"}]}"#,
        )
        .unwrap();
        let err = read_report(&job).unwrap_err();
        let missing = job.join("results/gone.csv");
        assert!(
            matches!(&err, ReportError::Read { path, .. } if *path == missing),
            "{err:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates() {
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_554_486_519_725);
        assert_eq!(rfc3339_millis(t), "2019-04-05T17:48:39.725Z");
        // A leap day; sub-millisecond parts are cut, not rounded up into the next day.
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_709_251_199, 999_999_999);
        assert_eq!(rfc3339_millis(t), "2024-02-29T23:59:59.999Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339_millis(t), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn renders_the_layout_and_reads_back() {
        let report = JobReport {
            job_id: "j1".into(),
            status: JobStatus::Complete,
            records: vec![
                record(
                    "a b,\"c\"\nd",
                    TaskStatus::Succeeded,
                    None,
                    "ok, \"quoted\"",
                ),
                record(
                    "x+y",
                    TaskStatus::Failed,
                    Some(ResultCode::PermanentFailure),
                    "gone",
                ),
            ],
            summary: Summary {
                total: 2,
                succeeded: 1,
                failed: 1,
                redriven: 0,
                tasks_redriven: 0,
                not_run: 0,
                invocations: 2,
                elapsed: Duration::from_secs(1),
            },
        };
        let files = report.render(ReportScope::AllTasks, "reports", "pre/");
        assert_eq!(files.len(), 3);
        assert!(files[0].0.starts_with("pre/job-j1/results/"));
        assert_eq!(files[2].0, "pre/job-j1/manifest.json");
        let manifest: serde_json::Value = serde_json::from_slice(&files[2].1).unwrap();
        assert_eq!(manifest["Results"][0]["TaskExecutionStatus"], "succeeded");
        assert_eq!(manifest["Results"][1]["Key"], files[1].0.as_str());
        assert_eq!(manifest["Results"][1]["Bucket"], "reports");
        assert_eq!(
            String::from_utf8(files[1].1.clone()).unwrap(),
            "bucket-one,x%2By,,failed,PermanentFailure,200,gone\n"
        );
        let dir = std::env::temp_dir().join(format!("s3batch-report-{}", std::process::id()));
        for (key, bytes) in &files {
            let p = dir.join(key);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let rows = read_report(&dir.join("pre/job-j1")).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].key, "a b,\"c\"\nd");
        assert_eq!(rows[0].message, "ok, \"quoted\"");
        assert_eq!(rows[0].error_code, None);
        assert_eq!(rows[1].key, "x+y");
        assert_eq!(rows[1].error_code, Some(ResultCode::PermanentFailure));
        std::fs::remove_dir_all(&dir).unwrap();

        let failed_only = report.render(ReportScope::FailedTasksOnly, "", "");
        assert_eq!(failed_only.len(), 2);
        // One results file holding only the failed row, and the manifest listing only it.
        let (_, csv) = &failed_only[0];
        let csv = String::from_utf8_lossy(csv);
        assert_eq!(csv.lines().count(), 1, "{csv}");
        assert!(
            csv.starts_with("bucket-one,x%2By,,failed,PermanentFailure,"),
            "{csv}"
        );
        let listed: serde_json::Value = serde_json::from_slice(&failed_only[1].1).unwrap();
        assert_eq!(listed["Results"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["Results"][0]["TaskExecutionStatus"], "failed");
    }
}
