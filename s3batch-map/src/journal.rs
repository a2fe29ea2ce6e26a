//! The Map Run's journal: every finished child execution, one line each, appended as it
//! finishes, so that a run stopped by Ctrl-C, a crash or `kill -9` keeps its results and can
//! be resumed ([`crate::MapRun::resume`]) without running its finished children again.
//!
//! The journal is the run's staging folder (`<work dir>/<run id>/`), held by the engine's
//! [`JobLock`] (`flock`: a crash or `kill -9` releases it) for as long as the run goes, with:
//! - `run.json`: the run id, the Map state, and the MD5 of the Map state's input;
//! - `journal.jsonl`: one line per finished child,
//!   `{"c": <child number>, "d": "<MD5 of its input>", "s": "SUCCEEDED"|"FAILED", "n": <items>, "r": <its result record>}`.
//!
//! Children are numbered in the order they are formed, which is deterministic: the reader
//! reads the same items in the same order, and `ItemSelector` and `ItemBatcher` shape them the
//! same way. A resumed run reads its items again from the start, forms the same children,
//! and skips each one the journal holds, after checking that its input is the one recorded
//! (the MD5): a child whose input differs means the items changed since the run started, and
//! the resume stops there with an error. A finished child is not run again, whether it
//! succeeded or failed (as `cargo s3batch run --resume` does not rerun failed tasks); the
//! failed ones are run again with `cargo s3batch report --failed-manifest`.
//!
//! The journal is removed once a run that ended (succeeded or failed, not stopped) has
//! written its results; a stopped run keeps it.
//!
//! The mechanism is the engine's: the lock is its [`JobLock`], and `journal.jsonl` and
//! `run.json` are its line file and header ([`s3batch_job::journal::lines`]), the ones
//! `cargo s3batch run`'s journal is made of. Each line is handed to the operating system in
//! one write as its child finishes ([`Handoff::EachLine`]; no `fsync`): `kill -9` loses at
//! most the line being written, which a resume cuts off (a last line without its newline);
//! any other line that cannot be read is an error naming its line.
//!
//! What stays this journal's own is the record and the checks on resume. The job runner's
//! [`s3batch_job::Journal`] records one S3 Batch task per manifest row (bucket, key, version,
//! result code), keyed by the row's index in a [`s3batch_job::ManifestSource`]; a Map Run's
//! unit is a child execution (a batch of any JSON items, from readers that are not
//! manifests), keyed by its number and checked by the MD5 of its input, and what must
//! survive is its result record.

use crate::writer::{Staging, Status};
use md5::{Digest, Md5};
use s3batch_job::digest::hex;
use s3batch_job::journal::lines::{read_json, write_json, Handoff, Lines, LinesError, Replay};
use s3batch_job::journal::{JobLock, LockError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const RUN_FILE: &str = "run.json";
const JOURNAL_FILE: &str = "journal.jsonl";

/// Why a run's journal could not be created, resumed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Another process runs or resumes this Map Run.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A new run with the id of a run that has a journal.
    #[error(
        "Map Run {run_id} has a journal in {} (it was stopped or killed before it ended): \
         continue it with --resume (`MapRun::resume`), or use another run id",
        dir.display()
    )]
    Exists {
        /// The run id.
        run_id: String,
        /// The journal's folder.
        dir: PathBuf,
    },
    /// A resume with no journal to resume.
    #[error(
        "no journal of Map Run {run_id} in {}: the run ended (its journal is removed once \
         its results are written) or never started",
        dir.display()
    )]
    NotFound {
        /// The run id.
        run_id: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The resumed run is not the one the journal recorded.
    #[error("Map Run {run_id} cannot be resumed: {reason}")]
    Mismatch {
        /// The run id.
        run_id: String,
        /// What differs.
        reason: String,
    },
    /// A journal line that cannot be read (not the last, cut-off one).
    #[error("{}: line {line}: {message}", path.display())]
    BadLine {
        /// The journal file.
        path: PathBuf,
        /// The line number (1-based).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the journal failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl From<LinesError> for JournalError {
    /// The engine's line file error as this journal's: a bad line or a `run.json` that does
    /// not parse is [`JournalError::BadLine`].
    fn from(e: LinesError) -> Self {
        match e {
            LinesError::Line {
                path,
                line,
                message,
            } => JournalError::BadLine {
                path,
                line,
                message,
            },
            LinesError::Json { path, source } => JournalError::BadLine {
                path,
                line: source.line() as u64,
                message: source.to_string(),
            },
            LinesError::Io(e) => JournalError::Io {
                path: e.path,
                source: e.source,
            },
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    version: u32,
    run_id: String,
    state: String,
    input_md5: String,
}

/// A journal line, written.
#[derive(Serialize)]
struct LineOut<'a> {
    c: u64,
    d: &'a str,
    s: &'a str,
    n: u64,
    r: &'a Value,
}

/// A journal line, read.
#[derive(Deserialize)]
struct Line {
    c: u64,
    d: String,
    s: String,
    n: u64,
    r: Value,
}

/// What a resumed run had finished: item and child counts by status.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Replayed {
    pub(crate) items_succeeded: u64,
    pub(crate) items_failed: u64,
    pub(crate) children_succeeded: u64,
    pub(crate) children_failed: u64,
}

/// An open journal, held (locked) by this run.
pub(crate) struct RunJournal {
    dir: PathBuf,
    lines: Lines,
    run_id: String,
    /// The finished children: number → MD5 of the input.
    done: HashMap<u64, String>,
    _lock: JobLock,
}

/// The MD5 of a child's input, in hex.
pub(crate) fn input_md5(input: &Value) -> String {
    let bytes = serde_json::to_vec(input).expect("JSON serializes");
    hex(&Md5::digest(&bytes))
}

/// What to do with a child formed by a resumed run.
pub(crate) enum Seen {
    /// Not finished: run it.
    New,
    /// Finished, with this input: skip it.
    Done,
}

impl RunJournal {
    /// Takes `dir` (the run's staging folder) and starts a journal there, or with `resume`
    /// reopens the one there, replaying its records into `staging`. `state` names the Map
    /// state and `input` is its input: a resume of a different state or input is refused.
    pub(crate) fn open(
        dir: &Path,
        run_id: &str,
        state: &str,
        input: &Value,
        resume: bool,
    ) -> Result<(RunJournal, Staging, Replayed), crate::MapError> {
        let lock = JobLock::acquire(dir).map_err(JournalError::from)?;
        let header_path = dir.join(RUN_FILE);
        let path = dir.join(JOURNAL_FILE);
        let header = Header {
            version: 1,
            run_id: run_id.to_owned(),
            state: state.to_owned(),
            input_md5: input_md5(input),
        };
        let exists = header_path.is_file();
        let mut replayed = Replayed::default();
        let mut done = HashMap::new();
        match (exists, resume) {
            (true, false) => {
                return Err(JournalError::Exists {
                    run_id: run_id.to_owned(),
                    dir: dir.to_owned(),
                }
                .into())
            }
            (false, true) => {
                return Err(JournalError::NotFound {
                    run_id: run_id.to_owned(),
                    dir: dir.to_owned(),
                }
                .into())
            }
            _ => {}
        }
        // The staging files are created (emptied) only once the folder is held and the run
        // may go: a resume writes the journal's records into them again.
        let mut staging = Staging::create(dir)?;
        let lines = match (exists, resume) {
            (false, _) => {
                let lines = Lines::create(&path, Handoff::EachLine).map_err(JournalError::from)?;
                write_json(&header_path, &header).map_err(JournalError::from)?;
                lines
            }
            (true, _) => {
                let was: Header = read_json(&header_path).map_err(JournalError::from)?;
                let mut differences = Vec::new();
                if was.state != header.state {
                    differences.push(format!(
                        "it ran the Map state {:?}, not {:?}",
                        was.state, header.state
                    ));
                }
                if was.input_md5 != header.input_md5 {
                    differences.push(
                        "its input is not the one it started with (the MD5 of the Map state's \
                         input differs)"
                            .to_owned(),
                    );
                }
                if !differences.is_empty() {
                    return Err(JournalError::Mismatch {
                        run_id: run_id.to_owned(),
                        reason: differences.join("; "),
                    }
                    .into());
                }
                replay(&path, &mut staging, &mut done, &mut replayed)?
            }
        };
        Ok((
            RunJournal {
                dir: dir.to_owned(),
                lines,
                run_id: run_id.to_owned(),
                done,
                _lock: lock,
            },
            staging,
            replayed,
        ))
    }

    /// Whether child number `child` with `md5` (of its input) finished in an earlier run; an
    /// error when it finished with another input.
    pub(crate) fn seen(&self, child: u64, md5: &str) -> Result<Seen, JournalError> {
        match self.done.get(&child) {
            None => Ok(Seen::New),
            Some(was) if was == md5 => Ok(Seen::Done),
            Some(_) => Err(JournalError::Mismatch {
                run_id: self.run_id.clone(),
                reason: format!(
                    "child execution {child} (numbered from 0 in the order the children are \
                     formed) has another input than when it ran: the items, ItemSelector or \
                     ItemBatcher changed since the run started"
                ),
            }),
        }
    }

    /// Appends a finished child: one write of one line.
    pub(crate) fn append(
        &mut self,
        child: u64,
        md5: &str,
        status: Status,
        items: u64,
        record: &Value,
    ) -> Result<(), JournalError> {
        Ok(self.lines.append(&LineOut {
            c: child,
            d: md5,
            s: status_name(status),
            n: items,
            r: record,
        })?)
    }

    /// Removes the journal of a run that ended (its results are written).
    pub(crate) fn remove(self) -> Result<(), JournalError> {
        for name in [RUN_FILE, JOURNAL_FILE] {
            let path = self.dir.join(name);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(())
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::Pending => "PENDING",
    }
}

/// Reads `path`'s complete lines into `staging` and `done`, and opens it for appending
/// after them, cutting off a last line without its newline (a write cut short by a kill).
fn replay(
    path: &Path,
    staging: &mut Staging,
    done: &mut HashMap<u64, String>,
    replayed: &mut Replayed,
) -> Result<Lines, crate::MapError> {
    let mut lines = Replay::<Line>::open(path).map_err(JournalError::from)?;
    while let Some(line) = lines.next() {
        let line = line.map_err(JournalError::from)?;
        let bad = |message: String| JournalError::from(lines.bad_line(message));
        let status = match line.s.as_str() {
            "SUCCEEDED" => Status::Succeeded,
            "FAILED" => Status::Failed,
            other => return Err(bad(format!("status {other:?} is not SUCCEEDED or FAILED")).into()),
        };
        if done.insert(line.c, line.d).is_some() {
            return Err(bad(format!(
                "child execution {} is in the journal twice",
                line.c
            ))
            .into());
        }
        staging.append(status, &line.r)?;
        match status {
            Status::Succeeded => {
                replayed.items_succeeded += line.n;
                replayed.children_succeeded += 1;
            }
            _ => {
                replayed.items_failed += line.n;
                replayed.children_failed += 1;
            }
        }
    }
    Ok(lines
        .into_lines(Handoff::EachLine)
        .map_err(JournalError::from)?)
}
