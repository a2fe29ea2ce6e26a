//! The line file both journals are made of: the job runner's [`Journal`](super::Journal) and
//! `s3batch-map`'s Map Run journal. Each keeps its own record type and header; this module
//! holds what they share.
//!
//! - A record is one JSON object on one line, appended at the end of the file ([`Lines`]).
//!   How lines reach the operating system is the caller's choice ([`Handoff`]); nothing is
//!   synced unless [`Lines::sync`] is called, so a power cut may lose lines a `kill -9` keeps.
//! - Reading a file back ([`Replay`]) yields every complete line in order. A last line
//!   without its newline is a write cut short by a kill: it is ignored, and cut off when the
//!   file is opened again for appending ([`Replay::into_lines`]). Any other line that cannot
//!   be read is an error naming the file and the line.
//! - A header is one JSON document, replaced whole: written beside the file, then renamed
//!   over it ([`write_json`], [`read_json`]).

use crate::file_error::{io, FileError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Why a line file or a header could not be read or written. Not `non_exhaustive`: each
/// journal maps every variant into its own error type, and a new one should break that.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    /// A line that cannot be read (not a torn last one).
    #[error("{} line {line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, 1-based.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A header that is not JSON of the expected shape.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A file could not be created, opened, read or written.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// How appended lines reach the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Each line in one write, as it is appended: `kill -9` loses at most the line being
    /// written.
    EachLine,
    /// Lines gathered in a buffer of this many bytes, handed over when it fills and on
    /// [`Lines::flush`]: fewer writes, and `kill -9` loses what was not flushed.
    Buffered(usize),
}

impl Handoff {
    fn capacity(self) -> usize {
        match self {
            // A `BufWriter` with no room hands every write straight to the file.
            Handoff::EachLine => 0,
            Handoff::Buffered(n) => n,
        }
    }
}

/// A line file open for appending: one JSON record a line.
#[derive(Debug)]
pub struct Lines {
    path: PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
}

impl Lines {
    /// Creates the file at `path`, emptying one already there, for appending.
    pub fn create(path: &Path, handoff: Handoff) -> Result<Lines, LinesError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|file| file.set_len(0).map(|()| file))
            .map_err(io("creating", path))?;
        Ok(Lines::new(path, file, handoff))
    }

    fn new(path: &Path, file: File, handoff: Handoff) -> Lines {
        Lines {
            path: path.to_owned(),
            out: BufWriter::with_capacity(handoff.capacity(), file),
            line: Vec::with_capacity(256),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line (its JSON, then a newline), handed to the operating
    /// system as the [`Handoff`] says.
    pub fn append<R: Serialize + ?Sized>(&mut self, record: &R) -> Result<(), LinesError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).expect("a journal line serializes");
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(io("writing", &self.path))?;
        Ok(())
    }

    /// Hands the buffered lines to the operating system.
    pub fn flush(&mut self) -> Result<(), LinesError> {
        self.out.flush().map_err(io("writing", &self.path))?;
        Ok(())
    }

    /// Flushes, then waits until the file is on disk (`fsync`).
    pub fn sync(&mut self) -> Result<(), LinesError> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(io("writing", &self.path))?;
        Ok(())
    }
}

/// A line file read back: an iterator over its records, each parsed as `T`, in the order
/// they were written. A torn last line (no newline) ends the iteration without an error.
#[derive(Debug)]
pub struct Replay<T> {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    /// Lines read so far: the number of the last one.
    line: u64,
    /// Bytes of the complete lines read so far.
    complete: u64,
    /// The end was reached; `torn` when the file ends with a line without its newline.
    ended: bool,
    torn: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T> Replay<T> {
    /// Opens the file at `path` to read its records.
    pub fn open(path: &Path) -> Result<Replay<T>, LinesError> {
        let file = File::open(path).map_err(io("reading", path))?;
        Ok(Replay {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 16, file),
            buf: Vec::new(),
            line: 0,
            complete: 0,
            ended: false,
            torn: false,
            _record: PhantomData,
        })
    }

    /// The number (1-based) of the line last read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// An error naming the file and the line last read: for a record that parses but that
    /// the caller cannot accept.
    pub fn bad_line(&self, message: impl Into<String>) -> LinesError {
        LinesError::Line {
            path: self.path.clone(),
            line: self.line,
            message: message.into(),
        }
    }

    /// Reads the next complete line into `buf`; `false` at the end or at a torn last line.
    fn next_line(&mut self) -> Result<bool, LinesError> {
        if self.ended {
            return Ok(false);
        }
        self.buf.clear();
        let n = match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.ended = true;
                return Err(io("reading", &self.path)(e).into());
            }
        };
        if n == 0 || self.buf.last() != Some(&b'\n') {
            self.ended = true;
            self.torn = n > 0;
            return Ok(false);
        }
        self.line += 1;
        self.complete += n as u64;
        Ok(true)
    }

    /// Opens the file for appending after its last complete line, cutting off a torn last
    /// line. Lines not yet read are skipped (not parsed).
    pub fn into_lines(mut self, handoff: Handoff) -> Result<Lines, LinesError> {
        while self.next_line()? {}
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io("opening", &self.path))?;
        if self.torn {
            file.set_len(self.complete)
                .map_err(io("cutting the torn end of", &self.path))?;
        }
        Ok(Lines::new(&self.path, file, handoff))
    }
}

impl<T: DeserializeOwned> Iterator for Replay<T> {
    type Item = Result<T, LinesError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_line() {
            Err(e) => Some(Err(e)),
            Ok(false) => None,
            Ok(true) => {
                Some(serde_json::from_slice(&self.buf).map_err(|e| self.bad_line(e.to_string())))
            }
        }
    }
}

/// Replaces the JSON document at `path` with `value` (pretty-printed): written to
/// `<path>.tmp`, then renamed over `path`, so a reader sees the old document or the new one.
pub fn write_json<H: Serialize + ?Sized>(path: &Path, value: &H) -> Result<(), LinesError> {
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let bytes = serde_json::to_vec_pretty(value).expect("JSON serializes");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io("writing", path))?;
    Ok(())
}

/// Reads the JSON document at `path` as `H`.
pub fn read_json<H: DeserializeOwned>(path: &Path) -> Result<H, LinesError> {
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|source| LinesError::Json {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        n: u64,
        text: String,
    }

    fn rec(n: u64) -> Rec {
        Rec {
            n,
            text: format!("line \"{n}\"\nwith a newline inside"),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("s3batch-lines-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_all(path: &Path) -> Vec<Rec> {
        Replay::<Rec>::open(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn records_round_trip_one_line_each() {
        let dir = temp("round-trip");
        let path = dir.join("j.jsonl");
        std::fs::write(&path, "left over from an earlier run\n").unwrap();
        let mut lines = Lines::create(&path, Handoff::Buffered(1 << 16)).unwrap();
        let written: Vec<Rec> = (0..5).map(rec).collect();
        for r in &written {
            lines.append(r).unwrap();
        }
        lines.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.starts_with("{\"n\":0,"), "{text}");
        assert_eq!(read_all(&path), written);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_line_is_handed_over_at_once_and_a_buffer_only_on_flush() {
        let dir = temp("handoff");
        let path = dir.join("j.jsonl");
        let mut lines = Lines::create(&path, Handoff::EachLine).unwrap();
        lines.append(&rec(1)).unwrap();
        assert_eq!(read_all(&path), [rec(1)]);
        drop(lines);
        let mut lines = Lines::create(&path, Handoff::Buffered(1 << 16)).unwrap();
        lines.append(&rec(2)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        lines.flush().unwrap();
        assert_eq!(read_all(&path), [rec(2)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ignored_then_cut_off_when_appending_again() {
        let dir = temp("torn");
        let path = dir.join("j.jsonl");
        let mut lines = Lines::create(&path, Handoff::EachLine).unwrap();
        lines.append(&rec(0)).unwrap();
        lines.append(&rec(1)).unwrap();
        drop(lines);
        let whole = std::fs::read(&path).unwrap();
        // A kill in the middle of the third line's write.
        std::fs::write(&path, [whole.as_slice(), br#"{"n":2,"te"#].concat()).unwrap();

        let mut replay = Replay::<Rec>::open(&path).unwrap();
        assert_eq!(replay.next().unwrap().unwrap(), rec(0));
        assert_eq!(replay.next().unwrap().unwrap(), rec(1));
        assert!(replay.next().is_none());
        assert_eq!(replay.line(), 2);
        let mut lines = replay.into_lines(Handoff::EachLine).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "the torn line is cut off"
        );
        lines.append(&rec(2)).unwrap();
        assert_eq!(read_all(&path), [rec(0), rec(1), rec(2)]);

        // Opened again without reading: the torn end is still found and cut.
        drop(lines);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, [whole.as_slice(), b"{"].concat()).unwrap();
        let replay = Replay::<Rec>::open(&path).unwrap();
        drop(replay.into_lines(Handoff::EachLine).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_line_before_the_last_is_an_error_naming_the_file_and_line() {
        let dir = temp("bad");
        let path = dir.join("j.jsonl");
        let good = serde_json::to_string(&rec(0)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"n\":1\n{good}\n")).unwrap();
        let mut replay = Replay::<Rec>::open(&path).unwrap();
        assert_eq!(replay.next().unwrap().unwrap(), rec(0));
        let err = replay.next().unwrap().unwrap_err();
        assert!(
            matches!(&err, LinesError::Line { path: p, line: 2, .. } if p == &path),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{} line 2: ", path.display())),
            "{err}"
        );
        // A record the caller refuses names its line the same way.
        assert_eq!(replay.next().unwrap().unwrap(), rec(0));
        let err = replay.bad_line("seen twice");
        assert_eq!(
            err.to_string(),
            format!("{} line 3: seen twice", path.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_header_is_replaced_whole_and_read_back() {
        let dir = temp("header");
        let path = dir.join("h.json");
        write_json(&path, &rec(1)).unwrap();
        write_json(&path, &rec(2)).unwrap();
        assert_eq!(read_json::<Rec>(&path).unwrap(), rec(2));
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("\n  \"n\": 2,"));
        assert!(!dir.join("h.json.tmp").exists());
        std::fs::write(&path, "{").unwrap();
        let err = read_json::<Rec>(&path).unwrap_err();
        assert!(
            matches!(&err, LinesError::Json { path: p, .. } if p == &path),
            "{err:?}"
        );
        let err = read_json::<Rec>(&dir.join("none.json")).unwrap_err();
        assert!(
            matches!(
                &err,
                LinesError::Io(FileError {
                    action: "reading",
                    ..
                })
            ),
            "{err:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
