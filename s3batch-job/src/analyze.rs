//! Reading a completion report back: counts by status and error code, the most frequent
//! failure messages, and the failed rows as a new manifest to run again
//! (`cargo s3batch report PATH|s3://…`).
//!
//! A report is read from any of:
//! - a results CSV (`results/<name>.csv`), local or `s3://`;
//! - a report's `manifest.json` (`Report_CSV_20180820`), local or `s3://`: every results
//!   file it lists is read (its `Key`s are bucket keys; its `Bucket` may be empty, a name or
//!   an ARN);
//! - a local folder: the `job-<id>` folder holding `manifest.json`, or a report root holding
//!   exactly one `job-*/manifest.json`;
//! - an `s3://` prefix: the one `manifest.json` below it, or, with none, every `.csv` below
//!   it.
//!
//! Rows are read with [`ReportRow::from_fields`], so either column order works (the declared
//! `…,ErrorCode,HTTPStatusCode,…` or AWS's example order with the HTTP status first), and a
//! header row (`Bucket,Key,…`) is skipped. Keys in reports are URL-encoded as in manifests
//! (see [`crate::report`]); they are decoded on reading and encoded again with
//! [`s3batch::key::encode_key`] when a manifest is written, so a failed manifest names
//! exactly the objects the report names.
//!
//! Messages are counted as they are written, only trimmed: no other normalisation (a message
//! naming its key counts once per key), and at most [`MAX_DISTINCT_MESSAGES`] distinct ones.
//! Rows are streamed (a local results file is read row by row, an `s3://` one as its body
//! arrives) and the failed manifest is written as rows come ([`ManifestOut`]) and uploaded
//! from that file (by multipart upload when large, [`Upload`]), so memory holds only the
//! counts.

use crate::file_error::{io, FileError};
use crate::storage::{get, read_object, Location, Upload};
use s3batch::wire::{ReportManifest, ReportRow, ResultCode, TaskStatus};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Which failed rows go into a failed manifest.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    codes: Vec<ResultCode>,
    message: Option<regex::Regex>,
}

impl Filter {
    /// Every failed row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only rows with one of these error codes (none given: any code).
    pub fn codes(mut self, codes: impl IntoIterator<Item = ResultCode>) -> Self {
        self.codes.extend(codes);
        self
    }

    /// Only rows whose message matches this regular expression (searched anywhere in the
    /// message; a plain word is a substring match). An invalid pattern is an error naming it.
    pub fn message(mut self, pattern: &str) -> Result<Self, AnalyzeError> {
        let re = regex::Regex::new(pattern).map_err(|source| AnalyzeError::Pattern {
            pattern: pattern.to_owned(),
            source,
        })?;
        self.message = Some(re);
        Ok(self)
    }

    /// Whether `row` is a failed row this filter keeps.
    pub fn keeps(&self, row: &ReportRow) -> bool {
        row.task_status == TaskStatus::Failed
            && (self.codes.is_empty() || row.error_code.is_some_and(|c| self.codes.contains(&c)))
            && self
                .message
                .as_ref()
                .is_none_or(|re| re.is_match(&row.message))
    }
}

/// Why a report could not be read, or its failed manifest written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The `--message` filter is not a regular expression.
    #[error("--message {pattern:?} is not a regular expression: {source}")]
    Pattern {
        /// The pattern given.
        pattern: String,
        /// Why it is not one.
        #[source]
        source: regex::Error,
    },
    /// The failed rows mix objects with and without a version id, which no manifest can.
    #[error(
        "the failed rows mix objects with a VersionId ({with}) and without one ({without}); a \
         manifest gives a versionId on every row or on none: narrow them with --code/--message"
    )]
    MixedVersions {
        /// An object with a version id.
        with: String,
        /// An object without.
        without: String,
    },
    /// Writing the failed manifest failed.
    #[error("writing the manifest: {0}")]
    WriteManifest(#[source] std::io::Error),
    /// A results file is not one: an unbalanced quote, a status or result code that is not
    /// S3's, a wrong number of columns, each with its file and line.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A results object in S3 could not be read (the message names it).
    #[error("{message}")]
    Results {
        /// What is wrong, with the file and line.
        message: String,
    },
    /// A `manifest.json` is not a completion report's.
    #[error("{name}: {source}")]
    Manifest {
        /// The file or object.
        name: String,
        /// What is wrong with it.
        #[source]
        source: s3batch::wire::ReportManifestError,
    },
    /// A report's `manifest.json` lists a results file that is not there.
    #[error(
        "{} lists {key}, found neither at {} nor in {}",
        manifest.display(),
        at.display(),
        folder.display()
    )]
    MissingResults {
        /// The `manifest.json`.
        manifest: PathBuf,
        /// The key it lists.
        key: String,
        /// Where the file was looked for first.
        at: PathBuf,
        /// The `results` folder beside the manifest, looked in next.
        folder: PathBuf,
    },
    /// The location holds no report.
    #[error(
        "{location} holds no manifest.json{}: give a report {}, its manifest.json or a results CSV",
        if location.starts_with("s3://") { " and no .csv" } else { " nor job-*/manifest.json" },
        if location.starts_with("s3://") { "prefix" } else { "folder" }
    )]
    NoReport {
        /// The folder or prefix.
        location: String,
    },
    /// The location holds the reports of several jobs.
    #[error(
        "{location} holds {}: give one of {}",
        if location.starts_with("s3://") { format!("{} reports", reports.len()) } else { format!("the reports of {} jobs", reports.len()) },
        reports.join(", ")
    )]
    ManyReports {
        /// The folder or prefix.
        location: String,
        /// Each report in it.
        reports: Vec<String>,
    },
    /// A failed manifest's destination names no file or object.
    #[error(
        "{location} names no {}",
        if matches!(location, Location::S3 { .. }) { "object: give s3://bucket/key.csv" } else { "file" }
    )]
    NotAFile {
        /// The destination given.
        location: Location,
    },
    /// A local file or folder could not be read or written.
    #[error(transparent)]
    Io(#[from] FileError),
    /// An S3 request failed.
    #[error("{what}: {message}")]
    S3 {
        /// What was done, naming the object or prefix.
        what: String,
        /// S3's answer.
        message: String,
    },
    /// Uploading the failed manifest failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The caller's `each` stopped the reading with its own error, passed on as it is.
    #[error(transparent)]
    Stopped(Box<dyn std::error::Error + Send + Sync>),
}

fn s3_read(e: crate::storage::StorageError) -> AnalyzeError {
    // `get` names the object in its message already.
    AnalyzeError::Results {
        message: e.to_string(),
    }
}

/// How many distinct messages [`Analysis`] counts by default: a message naming its key is new
/// on every row, and a report may have millions.
pub const MAX_DISTINCT_MESSAGES: usize = 10_000;

/// Counts over a report's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Analysis {
    /// Rows read.
    pub rows: usize,
    /// Rows `succeeded`.
    pub succeeded: usize,
    /// Rows `failed`.
    pub failed: usize,
    /// Failed rows by error code (`None`: a failed row with an empty `ErrorCode`).
    pub by_code: Vec<(Option<ResultCode>, usize)>,
    /// Rows the filter kept (the failed manifest's rows).
    pub selected: usize,
    /// Failed rows whose message came after the first `limit` distinct ones (not counted by
    /// message).
    pub other_messages: usize,
    messages: HashMap<(Option<ResultCode>, String), usize>,
    limit: usize,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            rows: 0,
            succeeded: 0,
            failed: 0,
            by_code: Vec::new(),
            selected: 0,
            other_messages: 0,
            messages: HashMap::new(),
            limit: MAX_DISTINCT_MESSAGES,
        }
    }
}

impl Analysis {
    /// Counts at most `limit` distinct messages (default [`MAX_DISTINCT_MESSAGES`]); the
    /// failed rows of any later new message are counted in [`Analysis::other_messages`].
    pub fn with_message_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Counts one row; `selected` says whether the filter kept it.
    pub fn add(&mut self, row: &ReportRow, selected: bool) {
        self.rows += 1;
        match row.task_status {
            TaskStatus::Succeeded => self.succeeded += 1,
            TaskStatus::Failed => {
                self.failed += 1;
                match self.by_code.iter_mut().find(|(c, _)| *c == row.error_code) {
                    Some((_, n)) => *n += 1,
                    None => self.by_code.push((row.error_code, 1)),
                }
                self.by_code
                    .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| code_str(a.0).cmp(code_str(b.0))));
                let key = (row.error_code, row.message.trim().to_owned());
                if let Some(n) = self.messages.get_mut(&key) {
                    *n += 1;
                } else if self.messages.len() < self.limit {
                    self.messages.insert(key, 1);
                } else {
                    self.other_messages += 1;
                }
            }
        }
        self.selected += usize::from(selected);
    }

    /// The `n` most frequent messages of failed rows with their error code and count, the
    /// most frequent first (ties in message order).
    pub fn top_messages(&self, n: usize) -> Vec<(Option<ResultCode>, &str, usize)> {
        let mut all: Vec<_> = self
            .messages
            .iter()
            .map(|((code, m), n)| (*code, m.as_str(), *n))
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(b.1)));
        all.truncate(n);
        all
    }

    /// Distinct (error code, message) pairs among failed rows.
    pub fn distinct_messages(&self) -> usize {
        self.messages.len()
    }

    /// The summary `cargo s3batch report PATH` prints, messages cut to `width` characters.
    pub fn render(&self, top: usize, width: usize) -> String {
        let mut out = format!(
            "rows: {} ({} succeeded, {} failed)\n",
            self.rows, self.succeeded, self.failed
        );
        if self.failed > 0 {
            out.push_str("failed by error code:\n");
            for (code, n) in &self.by_code {
                out.push_str(&format!("  {n:>8}  {}\n", code_str(*code)));
            }
            out.push_str(&format!(
                "most frequent messages ({} of {} distinct):\n",
                top.min(self.distinct_messages()),
                self.distinct_messages()
            ));
            for (code, message, n) in self.top_messages(top) {
                out.push_str(&format!(
                    "  {n:>8}  {}  {}\n",
                    code_str(code),
                    cut(message, width)
                ));
            }
            if self.other_messages > 0 {
                out.push_str(&format!(
                    "  {:>8}  failed rows with other messages (only the first {} distinct \
                     messages are counted)\n",
                    self.other_messages, self.limit
                ));
            }
        }
        out
    }
}

fn code_str(code: Option<ResultCode>) -> &'static str {
    code.map_or("(no code)", ResultCode::as_str)
}

/// `message` on one line, at most `width` characters (`…` marks a cut).
fn cut(message: &str, width: usize) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut s: String = one_line.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Writes failed rows as an `S3BatchOperations_CSV_20180820` manifest: `bucket,key` or
/// `bucket,key,versionId`, keys encoded with [`s3batch::key::encode_key`], version ids as
/// they are. A manifest gives a version on every row or on none, so rows with and without
/// one together are an error naming the first that differs.
#[derive(Debug)]
pub struct FailedManifest<W: Write = Vec<u8>> {
    out: csv::Writer<W>,
    versioned: Option<(bool, String)>,
    rows: usize,
}

impl Default for FailedManifest {
    fn default() -> Self {
        Self::new()
    }
}

impl FailedManifest {
    /// An empty manifest in memory.
    pub fn new() -> Self {
        Self::to_writer(Vec::new())
    }

    /// The manifest's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.finish().expect("writing to a Vec")
    }
}

impl<W: Write> FailedManifest<W> {
    /// An empty manifest written to `out` as rows are added.
    pub fn to_writer(out: W) -> Self {
        Self {
            out: csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .flexible(true)
                .from_writer(out),
            versioned: None,
            rows: 0,
        }
    }

    /// Adds the row's object.
    pub fn push(&mut self, row: &ReportRow) -> Result<(), AnalyzeError> {
        let has = row.version_id.is_some();
        let name = || format!("s3://{}/{}", row.bucket, row.key);
        match &self.versioned {
            None => self.versioned = Some((has, name())),
            Some((first, first_name)) if *first != has => {
                let (with, without) = if *first {
                    (first_name.clone(), name())
                } else {
                    (name(), first_name.clone())
                };
                return Err(AnalyzeError::MixedVersions { with, without });
            }
            Some(_) => {}
        }
        let key = s3batch::key::encode_key(&row.key);
        let result = match &row.version_id {
            Some(v) => self.out.write_record([row.bucket.as_str(), &key, v]),
            None => self.out.write_record([row.bucket.as_str(), &key]),
        };
        result.map_err(|e| AnalyzeError::WriteManifest(e.into()))?;
        self.rows += 1;
        Ok(())
    }

    /// Rows added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Flushes the rows written and returns the writer.
    pub fn finish(self) -> Result<W, AnalyzeError> {
        self.out
            .into_inner()
            .map_err(|e| AnalyzeError::WriteManifest(e.into_error()))
    }
}

/// Reads the rows of one results CSV, streamed, either column order, skipping a header row;
/// calls `each` per row. Problems name `name` and the line. The CSV is read as strictly as
/// a manifest: an unbalanced quote (never closed, a `"` inside an unquoted field, a quoted
/// field over lines closed mid-field), which would swallow the rows after it into one
/// message, is an error, so a failed manifest never silently misses a row. Rows before the
/// problem may have been passed to `each` already: discard what was made of them.
pub fn read_results_csv(
    bytes: impl Read,
    name: &str,
    each: &mut dyn FnMut(ReportRow) -> Result<(), AnalyzeError>,
) -> Result<(), AnalyzeError> {
    crate::report::read_results(bytes, name, each)
}

/// What stopped [`crate::report::read_results`] on [`read_object`]'s parser thread: the
/// results file, or the receiving side.
enum Relay {
    Report(crate::report::ReportError),
    Stopped(String),
}

impl From<crate::report::ReportError> for Relay {
    fn from(e: crate::report::ReportError) -> Self {
        Relay::Report(e)
    }
}

/// The result files a report's `manifest.json` lists, as `(bucket, key)` (`bucket` empty
/// when the manifest gives none).
pub fn listed_results(
    manifest_json: &[u8],
    name: &str,
) -> Result<Vec<(String, String)>, AnalyzeError> {
    let manifest =
        ReportManifest::from_slice(manifest_json).map_err(|source| AnalyzeError::Manifest {
            name: name.to_owned(),
            source,
        })?;
    Ok(manifest
        .results
        .iter()
        .map(|r| (r.bucket_name().to_owned(), r.key.clone()))
        .collect())
}

/// Where a report's rows come from, resolved to files.
enum Files {
    Local(Vec<PathBuf>),
    S3(Vec<(String, String)>),
}

/// Reads every row of the report at `source` (see the module documentation for the forms),
/// calling `each` per row; returns the files read, for the summary.
pub async fn read_report_rows(
    source: &Location,
    s3: &aws_sdk_s3::Client,
    each: &mut dyn FnMut(ReportRow) -> Result<(), AnalyzeError>,
) -> Result<Vec<String>, AnalyzeError> {
    let files = match source {
        Location::Local(path) => Files::Local(local_files(path)?),
        Location::S3 { bucket, key } => Files::S3(s3_files(s3, bucket, key).await?),
    };
    let mut read = Vec::new();
    match files {
        Files::Local(paths) => {
            for path in paths {
                let file = std::fs::File::open(&path).map_err(io("reading", &path))?;
                let name = path.display().to_string();
                read_results_csv(std::io::BufReader::new(file), &name, each)?;
                read.push(name);
            }
        }
        Files::S3(objects) => {
            for (bucket, key) in objects {
                let name = format!("s3://{bucket}/{key}");
                let file = name.clone();
                let mut stopped = None;
                // The results file's own error, typed, from the parser thread.
                let bad_file = std::sync::Arc::new(std::sync::Mutex::new(None));
                let found = std::sync::Arc::clone(&bad_file);
                let got = read_object(
                    s3,
                    &bucket,
                    &key,
                    move |input, send| {
                        crate::report::read_results(input, &file, &mut |row| {
                            send(row).map_err(Relay::Stopped)
                        })
                        .map_err(|e| match e {
                            Relay::Report(e) => {
                                let message = e.to_string();
                                *found.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                message
                            }
                            Relay::Stopped(message) => message,
                        })
                    },
                    &mut |row| {
                        each(row).map_err(|e| {
                            let message = e.to_string();
                            stopped = Some(e);
                            message
                        })
                    },
                )
                .await;
                let bad_file = bad_file.lock().unwrap_or_else(|p| p.into_inner()).take();
                match (got, stopped, bad_file) {
                    (Ok(()), _, _) => {}
                    (Err(_), Some(e), _) => return Err(e),
                    (Err(_), None, Some(e)) => return Err(e.into()),
                    (Err(message), None, None) => return Err(AnalyzeError::Results { message }),
                }
                read.push(name);
            }
        }
    }
    Ok(read)
}

fn local_files(path: &Path) -> Result<Vec<PathBuf>, AnalyzeError> {
    let manifest = if path.is_dir() {
        let direct = path.join("manifest.json");
        if direct.is_file() {
            direct
        } else {
            let mut jobs: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io("reading", path))?
                .filter_map(Result::ok)
                .map(|e| e.path().join("manifest.json"))
                .filter(|m| m.is_file())
                .collect();
            jobs.sort();
            match jobs.len() {
                1 => jobs.remove(0),
                0 => {
                    return Err(AnalyzeError::NoReport {
                        location: path.display().to_string(),
                    })
                }
                _ => {
                    return Err(AnalyzeError::ManyReports {
                        location: path.display().to_string(),
                        reports: jobs
                            .iter()
                            .map(|j| j.parent().unwrap_or(j).display().to_string())
                            .collect(),
                    })
                }
            }
        }
    } else if path.extension().is_some_and(|e| e == "json") {
        path.to_owned()
    } else {
        return Ok(vec![path.to_owned()]);
    };
    let bytes = std::fs::read(&manifest).map_err(io("reading", &manifest))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let root = dir.parent().unwrap_or(Path::new("."));
    listed_results(&bytes, &manifest.display().to_string())?
        .into_iter()
        .map(|(_, key)| {
            // Keys are bucket keys (the report root's prefix included); a report synced or
            // copied elsewhere still has its files in `results/` next to manifest.json.
            let file = key.rsplit('/').next().unwrap_or(&key);
            [root.join(&key), dir.join("results").join(file)]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| AnalyzeError::MissingResults {
                    manifest: manifest.clone(),
                    key: key.clone(),
                    at: root.join(&key),
                    folder: dir.join("results"),
                })
        })
        .collect()
}

async fn s3_files(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<(String, String)>, AnalyzeError> {
    let from_manifest =
        |bytes: Vec<u8>, key: &str| -> Result<Vec<(String, String)>, AnalyzeError> {
            Ok(listed_results(&bytes, &format!("s3://{bucket}/{key}"))?
                .into_iter()
                .map(|(b, k)| (if b.is_empty() { bucket.to_owned() } else { b }, k))
                .collect())
        };
    if key.ends_with(".json") {
        return from_manifest(get(s3, bucket, key).await.map_err(s3_read)?, key);
    }
    if key.ends_with(".csv") {
        return Ok(vec![(bucket.to_owned(), key.to_owned())]);
    }
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AnalyzeError::S3 {
            what: format!("listing s3://{bucket}/{key}"),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    let manifests: Vec<&String> = keys
        .iter()
        .filter(|k| k.rsplit('/').next() == Some("manifest.json"))
        .collect();
    match manifests.as_slice() {
        [one] => from_manifest(get(s3, bucket, one).await.map_err(s3_read)?, one),
        [] => {
            let csvs: Vec<(String, String)> = keys
                .iter()
                .filter(|k| k.ends_with(".csv"))
                .map(|k| (bucket.to_owned(), k.clone()))
                .collect();
            if csvs.is_empty() {
                Err(AnalyzeError::NoReport {
                    location: format!("s3://{bucket}/{key}"),
                })
            } else {
                Ok(csvs)
            }
        }
        many => Err(AnalyzeError::ManyReports {
            location: format!("s3://{bucket}/{key}"),
            reports: many.iter().map(|k| format!("s3://{bucket}/{k}")).collect(),
        }),
    }
}

/// Where a failed manifest is written: rows go to a staging file as they are found (so memory
/// does not grow with the report), which [`ManifestOut::publish`] then moves into place: a
/// local `OUT` is replaced only once the whole report has been read; an `s3://` one is
/// uploaded from a temporary file, by multipart upload when it is large (see [`Upload`]).
#[derive(Debug)]
pub struct ManifestOut {
    location: Location,
    staged: PathBuf,
    upload: Upload,
}

impl ManifestOut {
    /// Checks `location` names a file or object and opens the staging file.
    pub fn create(
        location: &Location,
    ) -> Result<(Self, std::io::BufWriter<std::fs::File>), AnalyzeError> {
        let staged = match location {
            Location::Local(path) => {
                let name = path.file_name().ok_or_else(|| AnalyzeError::NotAFile {
                    location: location.clone(),
                })?;
                let mut staged = name.to_owned();
                staged.push(".partial");
                path.with_file_name(staged)
            }
            Location::S3 { key, .. } if key.is_empty() || key.ends_with('/') => {
                return Err(AnalyzeError::NotAFile {
                    location: location.clone(),
                });
            }
            Location::S3 { .. } => std::env::temp_dir().join(format!(
                "s3batch-failed-manifest-{}-{}.csv",
                std::process::id(),
                crate::job::random_job_id()
            )),
        };
        let file = std::fs::File::create(&staged).map_err(io("creating", &staged))?;
        Ok((
            Self {
                location: location.clone(),
                staged,
                upload: Upload::default(),
            },
            std::io::BufWriter::new(file),
        ))
    }

    /// How an `s3://` manifest is uploaded (default: [`Upload::default`]).
    pub fn upload(mut self, upload: Upload) -> Self {
        self.upload = upload;
        self
    }

    /// Moves the staged manifest (its writer flushed and dropped) to its place.
    pub async fn publish(self, s3: &aws_sdk_s3::Client) -> Result<(), AnalyzeError> {
        let result = match &self.location {
            Location::Local(path) => {
                std::fs::rename(&self.staged, path).map_err(|e| io("writing", path)(e).into())
            }
            Location::S3 { bucket, key } => self
                .upload
                .file(s3, &self.staged, bucket, key)
                .await
                .map_err(AnalyzeError::from),
        };
        let _ = std::fs::remove_file(&self.staged);
        result
    }

    /// Removes the staging file (after an error).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.staged);
    }
}

#[cfg(test)]
mod tests;
