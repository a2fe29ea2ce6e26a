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
//! Each line is handed to the operating system in one write as its child finishes (no
//! buffer, no `fsync`): `kill -9` loses at most the line being written, which a resume cuts
//! off (a last line without its newline); any other line that cannot be read is an error
//! naming its line. The journal is removed once a run that ended (succeeded or failed, not
//! stopped) has written its results; a stopped run keeps it.
//!
//! Why not `s3batch-job`'s [`s3batch_job::Journal`]: it records one S3 Batch task per
//! manifest row (bucket, key, version, result code), keyed by the row's index in a
//! [`s3batch_job::ManifestSource`]; a Map Run's unit is a child execution (a batch of any JSON
//! items, from readers that are not manifests), and what must survive is its result record.
//! The lock is the engine's.

use crate::writer::{Staging, Status};
use md5::{Digest, Md5};
use s3batch_job::journal::{JobLock, LockError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
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
    file: File,
    run_id: String,
    /// The finished children: number → MD5 of the input.
    done: HashMap<u64, String>,
    line: Vec<u8>,
    _lock: JobLock,
}

/// The MD5 of a child's input, in hex.
pub(crate) fn input_md5(input: &Value) -> String {
    let bytes = serde_json::to_vec(input).expect("JSON serializes");
    Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
        let file = match (exists, resume) {
            (false, _) => {
                let file = File::create(&path).map_err(io(&path))?;
                let json = serde_json::to_vec_pretty(&header).expect("JSON serializes");
                let tmp = dir.join(format!("{RUN_FILE}.tmp"));
                std::fs::write(&tmp, json).map_err(io(&tmp))?;
                std::fs::rename(&tmp, &header_path).map_err(io(&header_path))?;
                file
            }
            (true, _) => {
                let bytes = std::fs::read(&header_path).map_err(io(&header_path))?;
                let was: Header =
                    serde_json::from_slice(&bytes).map_err(|e| JournalError::BadLine {
                        path: header_path.clone(),
                        line: e.line() as u64,
                        message: e.to_string(),
                    })?;
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
                replay(&path, &mut staging, &mut done, &mut replayed)?;
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?
            }
        };
        Ok((
            RunJournal {
                dir: dir.to_owned(),
                file,
                run_id: run_id.to_owned(),
                done,
                line: Vec::with_capacity(1024),
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
        let line = LineOut {
            c: child,
            d: md5,
            s: status_name(status),
            n: items,
            r: record,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line).expect("JSON serializes");
        self.line.push(b'\n');
        let path = self.dir.join(JOURNAL_FILE);
        self.file.write_all(&self.line).map_err(io(&path))
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

/// Reads `path`'s complete lines into `staging` and `done`; cuts off a last line without
/// its newline (a write cut short by a kill).
fn replay(
    path: &Path,
    staging: &mut Staging,
    done: &mut HashMap<u64, String>,
    replayed: &mut Replayed,
) -> Result<(), crate::MapError> {
    let file = File::open(path).map_err(io(path))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut complete: u64 = 0;
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') {
            // The last line, cut short: what the kill interrupted. Cut it off.
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io(path))?;
            file.set_len(complete).map_err(io(path))?;
            break;
        }
        complete += n as u64;
        let bad = |message: String| JournalError::BadLine {
            path: path.to_owned(),
            line: number,
            message,
        };
        let line: Line = serde_json::from_slice(&buf).map_err(|e| bad(e.to_string()))?;
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
    Ok(())
}
