//! The job's journal: every finished task, one line each, appended as it finishes, so that a
//! job interrupted by Ctrl-C, a crash or `kill -9` keeps its results and can be resumed, and
//! so that memory does not grow with the manifest (the report is written from the journal).
//!
//! A journal is a folder (the CLI uses `<state dir>/job-<job id>/`) holding:
//! - `job.json`: the job id, the manifest's name, [digest](crate::ManifestSource::digest) and
//!   row count, and the job's status (`Running` until the run ends; replaced atomically);
//! - `journal.jsonl`: one JSON object a line per finished task, keyed by the manifest record
//!   index `i` (0-based), with the row and its result, so the report can be written again
//!   without the manifest:
//!   `{"i":7,"b":"bucket","k":"decoded key","v":"version (when any)","s":"failed","c":"PermanentFailure","h":200,"a":2,"m":"message"}`.
//!
//! Lines are written through a buffer that is handed to the OS before the runner waits for
//! anything, so `kill -9` loses at most the results that arrived in the same instant (no
//! `fsync` until the run ends: a power cut may lose more). A line cut short by a kill (the
//! last, without its newline) is ignored and cut off when the journal is resumed; any other
//! line that cannot be read is an error naming its line. A task is in the journal at most
//! once: a resumed job skips the indexes already there.
//!
//! The line file, these rules and the header's atomic replacement are [`lines`], which
//! `s3batch-map`'s Map Run journal uses too; what is this journal's own is the record (a task
//! of a manifest row), the header (`job.json`) and the checks made on resume.

pub mod lines;

use self::lines::{Handoff, Lines, LinesError, Replay};
use crate::digest::hex;
use crate::file_error::{io, FileError};
use crate::manifest::{ManifestEntry, ManifestSource};
use crate::report::{
    manifest_json, path_safe_id, results_writer, valid_job_id, write_row, JobStatus, ReportScope,
    TaskRecord, TaskStatus,
};
use crate::storage::Location;
use md5::{Digest, Md5};
use s3batch::wire::ResultsFile;
use s3batch::ResultCode;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const JOB_FILE: &str = "job.json";
const JOURNAL_FILE: &str = "journal.jsonl";
const LOCK_FILE: &str = "lock";
/// How the journal's lines reach the OS: through a buffer the runner flushes
/// ([`Journal::flush`]) before it waits for anything.
const HANDOFF: Handoff = Handoff::Buffered(1 << 16);

/// A job's folder, held by this process: while a [`JobLock`] lives, another process (a second
/// `run`, a `--resume`, `report --job-id`, a second `serve` on the same state folder) cannot
/// take the same folder. The lock is the operating system's (`flock`), so a crash or
/// `kill -9` releases it; the file `lock` holds the holder's process id for the message.
#[derive(Debug)]
pub struct JobLock {
    dir: PathBuf,
    _file: File,
}

/// The job's folder is held by another process.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "job folder {} is in use by process {pid}: that process is running or reporting \
         this job; wait for it to end (or stop it) before running, resuming or reporting the job",
        dir.display()
    )]
    Held {
        /// The folder.
        dir: PathBuf,
        /// The holder's process id, as it wrote it (`unknown` when unreadable).
        pid: String,
    },
    /// The folder or its lock file could not be made or opened.
    #[error("locking {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl JobLock {
    /// Takes the job folder `dir` (created if missing) for this process, or says which process
    /// holds it. Nothing else is read or written in the folder.
    pub fn acquire(dir: &Path) -> Result<JobLock, LockError> {
        use std::io::Read;
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    pid: if pid.is_empty() { "unknown" } else { pid }.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
            .map_err(io)?;
        Ok(JobLock {
            dir: dir.to_owned(),
            _file: file,
        })
    }

    /// The folder held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Why a journal could not be created, resumed, read, written, or reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The job id cannot name a journal (nor a report).
    #[error("job id {id:?} is not valid: use 1 to 64 of A-Z a-z 0-9 - _ (S3's job ids are UUIDs)")]
    InvalidJobId {
        /// The id given.
        id: String,
    },
    /// The job's folder is held by another process.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A new journal was asked for where one already is.
    #[error("{} already holds the journal of job {job_id}", dir.display())]
    Exists {
        /// The folder.
        dir: PathBuf,
        /// The job id given.
        job_id: String,
    },
    /// A resume whose job definition differs from the one the job started with.
    #[error(
        "job {job_id} cannot be resumed with another definition ({}): resume it as it \
         started, or start a new job",
        differences.join("; ")
    )]
    Definition {
        /// The job id.
        job_id: String,
        /// Each field that differs, as `name: was X, now Y` ([`JobDefinition::differences`]).
        differences: Vec<String>,
    },
    /// A resume over another manifest than the one the job started with.
    #[error(
        "the manifest is not the one job {job_id} started with ({manifest}: {rows} rows, \
         {digest}; now {now_rows} rows, {now_digest})"
    )]
    ManifestChanged {
        /// The job id.
        job_id: String,
        /// The manifest's name when the job started.
        manifest: String,
        /// Its rows then.
        rows: usize,
        /// Its digest then.
        digest: String,
        /// The rows of the manifest given now.
        now_rows: usize,
        /// Its digest.
        now_digest: String,
    },
    /// `job.json` is not JSON of a journal.
    #[error("{}: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// `job.json` is of another version or names an invalid job id.
    #[error("{}: not a journal this runner wrote", path.display())]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// A line of `journal.jsonl` (not the torn last one) cannot be read.
    #[error("{} line {line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, 1-based.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A file or folder could not be read, written, created or removed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The report's local destination has a file where a folder should be.
    #[error(
        "the report cannot be written under {}: {} is a file, not a folder",
        dir.display(),
        file.display()
    )]
    DestinationIsFile {
        /// The destination.
        dir: PathBuf,
        /// The file in the way.
        file: PathBuf,
    },
    /// The report's local destination cannot be written in.
    #[error(
        "the report cannot be written under {}: writing in {} failed: {source}",
        dir.display(),
        folder.display()
    )]
    DestinationNotWritable {
        /// The destination.
        dir: PathBuf,
        /// The existing folder that was tried.
        folder: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The report's S3 destination cannot be written (or the probe object not deleted).
    #[error(
        "the report cannot be written to s3://{bucket}/{prefix}: writing s3://{bucket}/{probe} \
         failed: {message}"
    )]
    DestinationS3 {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
        /// The probe object's key.
        probe: String,
        /// S3's answer.
        message: String,
    },
    /// An S3 request made while writing the report failed.
    #[error("{what}: {message}")]
    S3 {
        /// What was done, with the object or prefix: `writing s3://bucket/key`.
        what: String,
        /// S3's answer (the SDK's error with its causes).
        message: String,
    },
}

impl From<LinesError> for JournalError {
    /// A line file's error as this journal's: a bad line is [`JournalError::Line`], a header
    /// that does not parse [`JournalError::Header`].
    fn from(e: LinesError) -> Self {
        match e {
            LinesError::Line {
                path,
                line,
                message,
            } => JournalError::Line {
                path,
                line,
                message,
            },
            LinesError::Json { path, source } => JournalError::Header { path, source },
            LinesError::Io(e) => JournalError::Io(e),
        }
    }
}

/// What defines a job beyond its manifest: a job resumed with any of these changed would end
/// split between two jobs, so [`Journal::resume_locked`] refuses a difference, naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDefinition {
    /// What is invoked: a function name or ARN, or a bootstrap binary.
    pub function: String,
    /// The invocation schema, `1.0` or `2.0`.
    pub schema: String,
    /// The user arguments sent with schema 2.0.
    pub user_arguments: std::collections::BTreeMap<String, String>,
    /// Tasks per invocation.
    pub tasks_per_invocation: usize,
    /// Where the report goes and its scope, as written on the command line (`None`: no report).
    pub report: Option<String>,
}

impl JobDefinition {
    /// Each field that differs between the definition a job started with (`self`) and `now`,
    /// as `name: was X, now Y`.
    pub fn differences(&self, now: &JobDefinition) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, was: String, is: String| {
            if was != is {
                out.push(format!("{name}: was {was}, now {is}"));
            }
        };
        cmp("function", self.function.clone(), now.function.clone());
        cmp("schema", self.schema.clone(), now.schema.clone());
        cmp(
            "user arguments",
            format!("{:?}", self.user_arguments),
            format!("{:?}", now.user_arguments),
        );
        cmp(
            "tasks per invocation",
            self.tasks_per_invocation.to_string(),
            now.tasks_per_invocation.to_string(),
        );
        let report = |r: &Option<String>| r.clone().unwrap_or_else(|| "none".into());
        cmp("report", report(&self.report), report(&now.report));
        out
    }
}

/// What `job.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Header {
    version: u32,
    job_id: String,
    manifest: String,
    manifest_digest: String,
    rows: usize,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Absent in journals written before it was recorded, and for jobs started through
    /// [`Journal::create`] without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    definition: Option<JobDefinition>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    i: usize,
    b: &'a str,
    k: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
    s: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<u16>,
    a: u32,
    m: &'a str,
}

#[derive(Deserialize)]
struct LineIn {
    i: usize,
    b: String,
    k: String,
    #[serde(default)]
    v: Option<String>,
    s: String,
    #[serde(default)]
    c: Option<String>,
    #[serde(default)]
    h: Option<u16>,
    a: u32,
    m: String,
}

impl LineIn {
    fn into_record(self) -> Result<(usize, TaskRecord), String> {
        let status: TaskStatus = self
            .s
            .parse()
            .map_err(|e: s3batch::wire::ParseTaskStatusError| e.to_string())?;
        let error_code = self
            .c
            .map(|c| c.parse::<ResultCode>().map_err(|e| format!("c: {e}")))
            .transpose()?;
        let mut entry = ManifestEntry::new(self.b, self.k);
        entry.version_id = self.v;
        Ok((
            self.i,
            TaskRecord {
                entry,
                status,
                error_code,
                http_status: self.h,
                message: self.m,
                attempts: self.a,
            },
        ))
    }
}

/// Counts of the tasks already in a journal ([`Journal::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks that succeeded.
    pub succeeded: usize,
    /// Tasks that failed.
    pub failed: usize,
    /// Redrives, over all tasks (a task invoked 3 times counts 2).
    pub redriven: usize,
    /// Tasks invoked more than once.
    pub tasks_redriven: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, r: &TaskRecord) {
        match r.status {
            TaskStatus::Succeeded => self.succeeded += 1,
            TaskStatus::Failed => self.failed += 1,
        }
        if r.attempts > 1 {
            self.redriven += (r.attempts - 1) as usize;
            self.tasks_redriven += 1;
        }
    }

    pub(crate) fn recorded(&self) -> usize {
        self.succeeded + self.failed
    }
}

/// An open journal, appended to by a running job ([`crate::LocalJob::run_journaled`]).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    header: Header,
    out: Lines,
    /// One bit per manifest row: finished.
    done: Vec<u64>,
    counts: Counts,
    /// Held as long as the journal is open.
    _lock: JobLock,
}

impl Journal {
    /// Whether `dir` holds a journal.
    pub fn exists(dir: &Path) -> bool {
        dir.join(JOB_FILE).is_file()
    }

    /// Starts a new journal in `dir` (created if needed) for job `job_id` over `manifest`
    /// (`manifest_name` is only for messages). A journal already there is an error: resume
    /// it ([`Journal::resume`]) or remove it ([`Journal::remove`]). The folder is locked
    /// ([`JobLock`]) for as long as the journal is open.
    pub fn create(
        dir: &Path,
        job_id: &str,
        manifest_name: &str,
        manifest: &ManifestSource,
    ) -> Result<Journal, JournalError> {
        if !valid_job_id(job_id) {
            return Err(invalid_id(job_id));
        }
        let lock = JobLock::acquire(dir)?;
        Self::create_locked(lock, job_id, manifest_name, manifest, None)
    }

    /// As [`Journal::create`], in the folder `lock` holds, recording what defines the job so
    /// that a resume can compare it ([`Journal::resume_locked`]).
    pub fn create_locked(
        lock: JobLock,
        job_id: &str,
        manifest_name: &str,
        manifest: &ManifestSource,
        definition: Option<JobDefinition>,
    ) -> Result<Journal, JournalError> {
        let dir = lock.dir().to_owned();
        let dir = dir.as_path();
        if !valid_job_id(job_id) {
            return Err(invalid_id(job_id));
        }
        if Self::exists(dir) {
            return Err(JournalError::Exists {
                dir: dir.to_owned(),
                job_id: job_id.to_owned(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let header = Header {
            version: 1,
            job_id: job_id.to_owned(),
            manifest: manifest_name.to_owned(),
            manifest_digest: manifest.digest().to_owned(),
            rows: manifest.len(),
            status: "Running".into(),
            reason: None,
            definition,
        };
        let out = Lines::create(&dir.join(JOURNAL_FILE), HANDOFF)?;
        write_header(dir, &header)?;
        Ok(Journal {
            dir: dir.to_owned(),
            header,
            out,
            done: vec![0; manifest.len().div_ceil(64)],
            counts: Counts::default(),
            _lock: lock,
        })
    }

    /// Opens the journal in `dir` to continue its job over `manifest`, which must be the
    /// manifest the job started with (same digest and row count). A line cut short at the
    /// end is cut off. The folder is locked ([`JobLock`]) for as long as the journal is open.
    pub fn resume(dir: &Path, manifest: &ManifestSource) -> Result<Journal, JournalError> {
        let lock = JobLock::acquire(dir)?;
        Self::resume_locked(lock, manifest, None)
    }

    /// As [`Journal::resume`], in the folder `lock` holds; with `definition`, a job whose
    /// recorded definition differs from it is refused, naming each difference.
    pub fn resume_locked(
        lock: JobLock,
        manifest: &ManifestSource,
        definition: Option<&JobDefinition>,
    ) -> Result<Journal, JournalError> {
        let dir = lock.dir().to_owned();
        let dir = dir.as_path();
        let header = read_header(dir)?;
        if let (Some(was), Some(now)) = (&header.definition, definition) {
            let differences = was.differences(now);
            if !differences.is_empty() {
                return Err(JournalError::Definition {
                    job_id: header.job_id,
                    differences,
                });
            }
        }
        if header.manifest_digest != manifest.digest() || header.rows != manifest.len() {
            return Err(JournalError::ManifestChanged {
                job_id: header.job_id,
                manifest: header.manifest,
                rows: header.rows,
                digest: header.manifest_digest,
                now_rows: manifest.len(),
                now_digest: manifest.digest().to_owned(),
            });
        }
        let rows = header.rows;
        let mut done = vec![0u64; rows.div_ceil(64)];
        let mut counts = Counts::default();
        let replay = scan(dir, |i, record| {
            if i >= rows {
                return Err(Scanned::Line(format!(
                    "row {i} is beyond the manifest's {rows} rows"
                )));
            }
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if done[word] & bit == 0 {
                done[word] |= bit;
                counts.add(&record);
            }
            Ok(())
        })?;
        let mut journal = Journal {
            dir: dir.to_owned(),
            header,
            out: replay.into_lines(HANDOFF)?,
            done,
            counts,
            _lock: lock,
        };
        journal.set_status(&None)?;
        Ok(journal)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The job id.
    pub fn job_id(&self) -> &str {
        &self.header.job_id
    }

    /// The manifest's digest the journal was started with.
    pub fn manifest_digest(&self) -> &str {
        &self.header.manifest_digest
    }

    /// Rows of the manifest.
    pub fn rows(&self) -> usize {
        self.header.rows
    }

    /// Tasks in the journal.
    pub fn finished(&self) -> usize {
        self.counts.recorded()
    }

    /// Counts of the tasks in the journal, by result.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether manifest row `i` has finished.
    pub fn is_done(&self, i: usize) -> bool {
        self.done
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Appends a finished task (buffered: see [`Journal::flush`]).
    pub(crate) fn record(&mut self, i: usize, r: &TaskRecord) -> Result<(), JournalError> {
        if self.is_done(i) {
            return Ok(());
        }
        self.out.append(&LineOut {
            i,
            b: &r.entry.bucket,
            k: &r.entry.key,
            v: r.entry.version_id.as_deref(),
            s: r.status.as_str(),
            c: r.error_code.map(|c| c.as_str()),
            h: r.http_status,
            a: r.attempts,
            m: &r.message,
        })?;
        if let Some(w) = self.done.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
        self.counts.add(r);
        Ok(())
    }

    /// Hands the buffered lines to the OS.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        Ok(self.out.flush()?)
    }

    /// Flushes, syncs the journal to disk, and records how the run ended in `job.json`.
    pub fn finish(&mut self, status: &JobStatus) -> Result<(), JournalError> {
        self.out.sync()?;
        self.set_status(&Some(status.clone()))
    }

    fn set_status(&mut self, status: &Option<JobStatus>) -> Result<(), JournalError> {
        self.header.status = status
            .as_ref()
            .map_or("Running", JobStatus::as_str)
            .to_owned();
        self.header.reason = match status {
            Some(JobStatus::Failed { reason }) => Some(reason.clone()),
            _ => None,
        };
        write_header(&self.dir, &self.header)
    }

    /// Closes the journal (flushing it) and keeps its folder locked, for what comes after the
    /// run: the report, then the journal's removal ([`crate::lifecycle::finish`]).
    pub fn into_lock(mut self) -> Result<JobLock, JournalError> {
        self.flush()?;
        Ok(self._lock)
    }

    /// Deletes the journal's folder (once its report is written).
    pub fn remove(self) -> Result<(), JournalError> {
        drop(self.out);
        std::fs::remove_dir_all(&self.dir).map_err(io("removing", &self.dir))?;
        Ok(())
    }
}

fn invalid_id(id: &str) -> JournalError {
    JournalError::InvalidJobId { id: id.to_owned() }
}

fn write_header(dir: &Path, header: &Header) -> Result<(), JournalError> {
    Ok(lines::write_json(&dir.join(JOB_FILE), header)?)
}

fn read_header(dir: &Path) -> Result<Header, JournalError> {
    let path = dir.join(JOB_FILE);
    let header: Header = lines::read_json(&path)?;
    if header.version != 1 || !valid_job_id(&header.job_id) {
        return Err(JournalError::NotAJournal { path });
    }
    Ok(header)
}

/// What a journal on disk says about its job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalInfo {
    /// The job id.
    pub job_id: String,
    /// The manifest it ran over, as named when it started.
    pub manifest: String,
    /// Rows of the manifest.
    pub rows: usize,
    /// The manifest's [digest](ManifestSource::digest).
    pub manifest_digest: String,
    /// How the last run ended; `None` while running or when it never ended (a crash).
    pub status: Option<JobStatus>,
    /// What defined the job when it started, when that was recorded.
    pub definition: Option<JobDefinition>,
}

/// Reads `job.json` of the journal in `dir`.
pub fn info(dir: &Path) -> Result<JournalInfo, JournalError> {
    let h = read_header(dir)?;
    let status = match h.status.as_str() {
        "Complete" => Some(JobStatus::Complete),
        "Cancelled" => Some(JobStatus::Cancelled),
        "Failed" => Some(JobStatus::Failed {
            reason: h.reason.clone().unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(JournalInfo {
        job_id: h.job_id,
        manifest: h.manifest,
        rows: h.rows,
        manifest_digest: h.manifest_digest,
        status,
        definition: h.definition,
    })
}

/// Why [`scan`]'s `each` stopped: something wrong with the line read (reported as
/// [`JournalError::Line`], with the file and line), or an error of its own.
enum Scanned {
    Line(String),
    Failed(JournalError),
}

impl From<JournalError> for Scanned {
    fn from(e: JournalError) -> Self {
        Scanned::Failed(e)
    }
}

/// Reads every complete line of the journal in `dir`, in order (a torn last line is left
/// out), and returns the replay, read to its end: a resume appends from there.
fn scan(
    dir: &Path,
    mut each: impl FnMut(usize, TaskRecord) -> Result<(), Scanned>,
) -> Result<Replay<LineIn>, JournalError> {
    let mut replay = Replay::<LineIn>::open(&dir.join(JOURNAL_FILE))?;
    while let Some(line) = replay.next() {
        let (i, record) = line?
            .into_record()
            .map_err(|message| replay.bad_line(message))?;
        each(i, record).map_err(|e| match e {
            Scanned::Line(message) => replay.bad_line(message).into(),
            Scanned::Failed(e) => e,
        })?;
    }
    Ok(replay)
}

/// Writes the completion report of the journal in `dir` under `location` (a folder or an
/// `s3://bucket/prefix`), replacing any earlier report of the same job there: a folder
/// `job-<id>` is replaced whole (written beside it, then renamed); in S3, results files of
/// the job that the new `manifest.json` does not list are deleted. Rows are in the order the
/// tasks finished. Returns where `manifest.json` is.
///
/// The results files are written to `dir` first (streamed: memory does not grow with the
/// journal), then copied to S3.
pub async fn write_report(
    dir: &Path,
    location: &Location,
    scope: ReportScope,
    s3: &aws_sdk_s3::Client,
) -> Result<Location, JournalError> {
    let header = read_header(dir)?;
    let id = path_safe_id(&header.job_id);
    let work = dir.join("report");
    let _ = std::fs::remove_dir_all(&work);
    let results_dir = work.join(format!("job-{id}")).join("results");
    std::fs::create_dir_all(&results_dir).map_err(io("creating", &results_dir))?;
    let files = write_results(dir, &results_dir, scope)?;
    let bucket = match location {
        Location::Local(_) => "",
        Location::S3 { bucket, .. } => bucket.as_str(),
    };
    let prefix = match location {
        Location::S3 { key, .. } if !key.is_empty() && !key.ends_with('/') => format!("{key}/"),
        Location::S3 { key, .. } => key.clone(),
        Location::Local(_) => String::new(),
    };
    let base = format!("{prefix}job-{id}");
    let results: Vec<ResultsFile> = files
        .iter()
        .map(|(status, name, md5)| ResultsFile {
            task_execution_status: *status,
            bucket: bucket.to_owned(),
            md5_checksum: md5.clone(),
            key: format!("{base}/results/{name}"),
        })
        .collect();
    let manifest = manifest_json(results);
    match location {
        Location::Local(root) => {
            let job_dir = work.join(format!("job-{id}"));
            let manifest_path = job_dir.join("manifest.json");
            std::fs::write(&manifest_path, manifest).map_err(io("writing", &manifest_path))?;
            std::fs::create_dir_all(root).map_err(io("creating", root))?;
            let target = root.join(format!("job-{id}"));
            let old = root.join(format!(".job-{id}.old-{}", std::process::id()));
            let had_old = target.exists();
            if had_old {
                std::fs::rename(&target, &old).map_err(io("moving aside the earlier", &target))?;
            }
            if let Err(e) = move_dir(&job_dir, &target) {
                if had_old {
                    let _ = std::fs::rename(&old, &target);
                }
                return Err(io("writing", &target)(e).into());
            }
            if had_old {
                let _ = std::fs::remove_dir_all(&old);
            }
            let _ = std::fs::remove_dir_all(&work);
            Ok(Location::Local(target.join("manifest.json")))
        }
        Location::S3 { bucket, .. } => {
            let put_err = |key: &str, message: String| JournalError::S3 {
                what: format!("writing s3://{bucket}/{key}"),
                message,
            };
            let mut keep = std::collections::HashSet::new();
            for (_, name, _) in &files {
                let key = format!("{base}/results/{name}");
                let body = aws_sdk_s3::primitives::ByteStream::from_path(results_dir.join(name))
                    .await
                    .map_err(|e| put_err(&key, e.to_string()))?;
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| put_err(&key, sdk_error(e)))?;
                keep.insert(key);
            }
            let key = format!("{base}/manifest.json");
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(manifest.into())
                .send()
                .await
                .map_err(|e| put_err(&key, sdk_error(e)))?;
            // Results files of an earlier run of the same job.
            let mut pages = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(format!("{base}/results/"))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| JournalError::S3 {
                    what: format!("listing s3://{bucket}/{base}/results/ for stale files"),
                    message: sdk_error(e),
                })?;
                for object in page.contents() {
                    let Some(stale) = object.key().filter(|k| !keep.contains(*k)) else {
                        continue;
                    };
                    s3.delete_object()
                        .bucket(bucket)
                        .key(stale)
                        .send()
                        .await
                        .map_err(|e| JournalError::S3 {
                            what: format!("deleting s3://{bucket}/{stale}"),
                            message: sdk_error(e),
                        })?;
                }
            }
            let _ = std::fs::remove_dir_all(&work);
            Ok(Location::S3 {
                bucket: bucket.clone(),
                key,
            })
        }
    }
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> String {
    aws_sdk_s3::error::DisplayErrorContext(e).to_string()
}

/// Renames `from` to `to`, or copies it when they are on different file systems.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            move_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    std::fs::remove_dir_all(from)
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    inner: W,
    md5: Md5,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the journal into one results file per status (named by their MD5, as S3 names
/// them), returning `(status, file name, md5)` of the non-empty ones, succeeded first.
fn write_results(
    dir: &Path,
    out: &Path,
    scope: ReportScope,
) -> Result<Vec<(TaskStatus, String, String)>, JournalError> {
    let open = |name: &str| -> Result<csv::Writer<Hashing<BufWriter<File>>>, JournalError> {
        let path = out.join(name);
        let file = File::create(&path).map_err(io("creating", &path))?;
        Ok(results_writer(Hashing {
            inner: BufWriter::with_capacity(1 << 16, file),
            md5: Md5::new(),
        }))
    };
    let mut writers = [
        (TaskStatus::Succeeded, open("succeeded.partial")?, 0usize),
        (TaskStatus::Failed, open("failed.partial")?, 0usize),
    ];
    let mut seen = Vec::<u64>::new();
    scan(dir, |i, record| {
        // A journal holds each row once; an older one written by hand might not.
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if seen.len() <= word {
            seen.resize(word + 1, 0);
        }
        if seen[word] & bit != 0 {
            return Ok(());
        }
        seen[word] |= bit;
        if scope == ReportScope::FailedTasksOnly && record.status == TaskStatus::Succeeded {
            return Ok(());
        }
        let failed = record.status == TaskStatus::Failed;
        let w = &mut writers[usize::from(failed)];
        w.2 += 1;
        write_row(&mut w.1, &record).map_err(|e| {
            let name = if failed { "failed" } else { "succeeded" };
            Scanned::Failed(io("writing", &out.join(format!("{name}.partial")))(e.into()).into())
        })
    })?;
    let mut files = Vec::new();
    for (status, writer, rows) in writers {
        let partial = out.join(format!("{}.partial", status.as_str()));
        let hashing = writer
            .into_inner()
            .map_err(|e| io("writing", &partial)(e.into_error()))?;
        let md5 = hex(&hashing.md5.finalize());
        hashing
            .inner
            .into_inner()
            .map_err(|e| io("writing", &partial)(e.into_error()))?
            .sync_all()
            .map_err(io("writing", &partial))?;
        if rows == 0 {
            std::fs::remove_file(&partial).map_err(io("removing", &partial))?;
            continue;
        }
        let name = format!("{md5}.csv");
        std::fs::rename(&partial, out.join(&name)).map_err(io("writing", &out.join(&name)))?;
        files.push((status, name, md5));
    }
    Ok(files)
}

/// Checks, before a job starts, that its report can be written under `location`: a local
/// destination must be (or be below) a folder this process can write in, a file in the
/// way is an error; an S3 destination gets a small object written and deleted
/// (`<prefix>.s3batch-write-check-<job id>`). Nothing is left behind.
pub async fn check_destination(
    location: &Location,
    job_id: &str,
    s3: &aws_sdk_s3::Client,
) -> Result<(), JournalError> {
    if !valid_job_id(job_id) {
        return Err(invalid_id(job_id));
    }
    match location {
        Location::Local(dir) => {
            let mut existing = dir.as_path();
            loop {
                match std::fs::metadata(existing) {
                    Ok(m) if m.is_dir() => break,
                    Ok(_) => {
                        return Err(JournalError::DestinationIsFile {
                            dir: dir.clone(),
                            file: existing.to_owned(),
                        })
                    }
                    Err(_) => match existing.parent() {
                        Some(p) if !p.as_os_str().is_empty() => existing = p,
                        _ => {
                            existing = Path::new(".");
                            break;
                        }
                    },
                }
            }
            let probe = existing.join(format!(".s3batch-write-check-{job_id}"));
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|source| JournalError::DestinationNotWritable {
                    dir: dir.clone(),
                    folder: existing.to_owned(),
                    source,
                })
        }
        Location::S3 { bucket, key } => {
            let prefix = if key.is_empty() || key.ends_with('/') {
                key.clone()
            } else {
                format!("{key}/")
            };
            let probe = format!("{prefix}.s3batch-write-check-{job_id}");
            let fail = |message: String| JournalError::DestinationS3 {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                probe: probe.clone(),
                message,
            };
            s3.put_object()
                .bucket(bucket)
                .key(&probe)
                .body(Vec::new().into())
                .send()
                .await
                .map_err(|e| fail(sdk_error(e)))?;
            s3.delete_object()
                .bucket(bucket)
                .key(&probe)
                .send()
                .await
                .map_err(|e| fail(format!("deleting it: {}", sdk_error(e))))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::{Invoke, Invoked};
    use crate::LocalJob;
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::sync::Notify;

    /// A function that succeeds on every task and counts the keys it was sent; after
    /// `stop_after` invocations it rings `stop`.
    #[derive(Clone)]
    struct Counting {
        seen: Arc<Mutex<HashMap<String, usize>>>,
        stop_after: usize,
        stop: Arc<Notify>,
    }

    impl Invoke for Counting {
        async fn invoke(&self, payload: Vec<u8>) -> Invoked {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let tasks = event["tasks"].as_array().unwrap();
            let calls = {
                let mut seen = self.seen.lock().unwrap();
                for t in tasks {
                    *seen
                        .entry(t["s3Key"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
                seen.values().sum::<usize>()
            };
            if calls == self.stop_after {
                self.stop.notify_one();
            }
            tokio::task::yield_now().await;
            let results: Vec<Value> = tasks
                .iter()
                .map(|t| json!({"taskId": t["taskId"], "resultCode": "Succeeded", "resultString": format!("did {}", t["s3Key"])}))
                .collect();
            Invoked::Response(
                serde_json::to_vec(
                    &json!({"invocationId": event["invocationId"], "results": results}),
                )
                .unwrap(),
            )
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("s3batch-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_job_resumes_from_its_journal_and_reports_every_row_once() {
        let dir = temp("resume");
        let rows = 300;
        let manifest: String = (0..rows).map(|i| format!("bucket-one,k{i:03}\n")).collect();
        std::fs::write(dir.join("m.csv"), manifest).unwrap();
        let source = ManifestSource::open(&dir.join("m.csv")).unwrap();
        let state = dir.join("state/job-j1");
        let s3 = crate::storage::s3_client(Some("http://127.0.0.1:1")).await;

        let first = Counting {
            seen: Default::default(),
            stop_after: 100,
            stop: Arc::new(Notify::new()),
        };
        let job = LocalJob::new(source.clone()).job_id("j1").concurrency(4);
        let mut journal = Journal::create(&state, "j1", "m.csv", &source).unwrap();
        let stop = Arc::clone(&first.stop);
        let outcome = job
            .run_journaled(
                first.clone(),
                &mut journal,
                async move { stop.notified().await },
            )
            .await
            .unwrap();
        journal.finish(&outcome.status).unwrap();
        assert_eq!(outcome.status, JobStatus::Cancelled);
        let mut ran_first: Vec<String> = first.seen.lock().unwrap().keys().cloned().collect();
        ran_first.sort();
        assert!(first.seen.lock().unwrap().values().all(|&n| n == 1));
        // Everything in flight when the stop came finished within the grace period.
        assert_eq!(journal.finished(), ran_first.len());
        assert!(
            ran_first.len() >= 100 && ran_first.len() < rows,
            "{}",
            ran_first.len()
        );
        assert_eq!(outcome.summary.not_run, rows - ran_first.len());
        drop(journal);
        assert_eq!(info(&state).unwrap().status, Some(JobStatus::Cancelled));
        // The journal holds exactly the tasks that ran, each once.
        let mut journaled = Vec::new();
        scan(&state, |_, r| {
            journaled.push(r.entry.key);
            Ok(())
        })
        .unwrap();
        journaled.sort();
        assert_eq!(journaled, ran_first);

        // The partial report lists exactly what finished, each with its result.
        let report_root = dir.join("report");
        write_report(
            &state,
            &Location::Local(report_root.clone()),
            ReportScope::AllTasks,
            &s3,
        )
        .await
        .unwrap();
        let partial = crate::read_report(&report_root.join("job-j1")).unwrap();
        let mut listed: Vec<(String, String)> = partial
            .iter()
            .map(|r| (r.key.clone(), r.message.clone()))
            .collect();
        listed.sort();
        let finished: Vec<(String, String)> = ran_first
            .iter()
            .map(|k| (k.clone(), format!("did \"{k}\"")))
            .collect();
        assert_eq!(listed, finished);
        assert!(partial
            .iter()
            .all(|r| r.task_status == TaskStatus::Succeeded));

        // A kill in the middle of a line leaves it torn: it is ignored and cut off.
        let mut f = OpenOptions::new()
            .append(true)
            .open(state.join(JOURNAL_FILE))
            .unwrap();
        f.write_all(br#"{"i":299,"b":"bucket-one","k":"k2"#)
            .unwrap();
        drop(f);

        // Another manifest is refused.
        std::fs::write(dir.join("other.csv"), "bucket-one,x\n").unwrap();
        let other = ManifestSource::open(&dir.join("other.csv")).unwrap();
        let err = Journal::resume(&state, &other).unwrap_err();
        assert!(
            matches!(&err, JournalError::ManifestChanged { job_id, now_rows: 1, .. } if job_id == "j1"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("is not the one job j1 started with"),
            "{err}"
        );

        let second = Counting {
            seen: Default::default(),
            stop_after: usize::MAX,
            stop: Arc::new(Notify::new()),
        };
        let mut journal = Journal::resume(&state, &source).unwrap();
        assert_eq!(journal.finished(), ran_first.len());
        let outcome = job
            .run_journaled(second.clone(), &mut journal, std::future::pending())
            .await
            .unwrap();
        journal.finish(&outcome.status).unwrap();
        assert_eq!(outcome.status, JobStatus::Complete);
        assert_eq!(outcome.summary.succeeded, rows);
        assert_eq!(outcome.summary.invocations, rows - ran_first.len());
        // No task that finished before is sent again; every other one once.
        let seen = second.seen.lock().unwrap().clone();
        for k in &ran_first {
            assert!(!seen.contains_key(k), "{k} ran again");
        }
        assert!(seen.values().all(|&n| n == 1), "{seen:?}");
        let mut sent_second: Vec<String> = seen.into_keys().collect();
        sent_second.sort();
        let not_finished: Vec<String> = (0..rows)
            .map(|i| format!("k{i:03}"))
            .filter(|k| ran_first.binary_search(k).is_err())
            .collect();
        assert_eq!(sent_second, not_finished);

        // The final report replaces the partial one: every row exactly once.
        write_report(
            &state,
            &Location::Local(report_root.clone()),
            ReportScope::AllTasks,
            &s3,
        )
        .await
        .unwrap();
        let job_dir = report_root.join("job-j1");
        let report = crate::read_report(&job_dir).unwrap();
        let mut keys: Vec<String> = report.iter().map(|r| r.key.clone()).collect();
        keys.sort();
        let expected: Vec<String> = (0..rows).map(|i| format!("k{i:03}")).collect();
        assert_eq!(keys, expected);
        assert!(report
            .iter()
            .all(|r| r.message == format!("did \"{}\"", r.key)));
        // Only the files manifest.json lists: no results file of the partial report left.
        let listed = std::fs::read_dir(job_dir.join("results")).unwrap().count();
        assert_eq!(listed, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Answers at once, except for keys starting with `hang`, which never come back.
    struct Hangs;
    impl Invoke for Hangs {
        async fn invoke(&self, payload: Vec<u8>) -> Invoked {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let t = &event["tasks"][0];
            if t["s3Key"].as_str().unwrap().starts_with("hang") {
                std::future::pending::<()>().await;
            }
            Invoked::Response(
                serde_json::to_vec(&json!({"invocationId": event["invocationId"],
                    "results": [{"taskId": t["taskId"], "resultCode": "Succeeded", "resultString": "ok"}]}))
                .unwrap(),
            )
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_waits_for_invocations_in_flight_no_longer_than_the_grace_period() {
        let dir = temp("grace");
        let state = dir.join("job-g");
        let source = ManifestSource::from(
            crate::Manifest::from_csv(b"bucket-one,a\nbucket-one,hang1\nbucket-one,b\nbucket-one,hang2\nbucket-one,c\nbucket-one,d\n")
                .unwrap(),
        );
        let mut journal = Journal::create(&state, "g", "m", &source).unwrap();
        let started = tokio::time::Instant::now();
        let outcome = LocalJob::new(source.clone())
            .job_id("g")
            .concurrency(4)
            .grace_period(std::time::Duration::from_secs(30))
            // The stop comes once both hanging tasks are in flight.
            .run_journaled(
                Hangs,
                &mut journal,
                tokio::time::sleep(std::time::Duration::from_secs(1)),
            )
            .await
            .unwrap();
        journal.finish(&outcome.status).unwrap();
        assert_eq!(outcome.status, JobStatus::Cancelled);
        // Paused time: exactly the stop plus the grace period, not forever.
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(31));
        let mut finished = Vec::new();
        scan(&state, |_, r| {
            finished.push(r.entry.key);
            Ok(())
        })
        .unwrap();
        finished.sort();
        assert_eq!(finished, ["a", "b", "c", "d"]);
        assert_eq!(outcome.summary.not_run, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_it() {
        let dir = temp("corrupt");
        let state = dir.join("job-j2");
        let source = ManifestSource::from(
            crate::Manifest::from_csv(b"bucket-one,a\nbucket-one,b\n").unwrap(),
        );
        let mut journal = Journal::create(&state, "j2", "m", &source).unwrap();
        let record = TaskRecord {
            entry: ManifestEntry::new("bucket-one", "a"),
            status: TaskStatus::Succeeded,
            error_code: None,
            http_status: Some(200),
            message: "ok".into(),
            attempts: 1,
        };
        journal.record(0, &record).unwrap();
        journal.flush().unwrap();
        drop(journal);
        // Creating it again is refused, naming the folder, and the journal there is kept
        // as it was: both files byte for byte.
        let files =
            || [JOB_FILE, JOURNAL_FILE].map(|f| std::fs::read_to_string(state.join(f)).unwrap());
        let before = files();
        assert!(before[1].contains("\"k\":\"a\""), "{}", before[1]);
        let Err(err) = Journal::create(&state, "j2", "m", &source) else {
            panic!("a second journal was created over the first");
        };
        assert!(
            matches!(&err, JournalError::Exists { dir, job_id } if dir == &state && job_id == "j2"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{} already holds the journal of job j2", state.display())
        );
        assert_eq!(files(), before, "an existing journal is kept");
        let path = state.join(JOURNAL_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "garbage\n");
        std::fs::write(&path, text).unwrap();
        let err = Journal::resume(&state, &source).unwrap_err();
        assert!(
            matches!(&err, JournalError::Line { path: p, line: 1, .. } if p == &path),
            "{err:?}"
        );
        assert!(err.to_string().contains("journal.jsonl line 1:"), "{err}");
        // A row the manifest does not have (2 rows: 0 and 1) names its line too.
        assert!(before[1].contains("\"i\":0,"), "{}", before[1]);
        let beyond = before[1].replace("\"i\":0,", "\"i\":7,");
        std::fs::write(&path, format!("{}{beyond}", before[1])).unwrap();
        let err = Journal::resume(&state, &source).unwrap_err();
        assert!(
            matches!(&err, JournalError::Line { path: p, line: 2, message }
                if p == &path && message == "row 7 is beyond the manifest's 2 rows"),
            "{err:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
