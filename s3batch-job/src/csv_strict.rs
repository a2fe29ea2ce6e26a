//! The one CSV reader of the crate: manifests (in any `Spec.Fields` order), S3 Inventory
//! data files and completion-report results files are all read with [`CsvReader`].
//!
//! It reads what the `csv` crate reads (delimiter `,`, quote `"`, `""` inside quotes, any of
//! CR, LF, CRLF ends a record, empty lines are no record), streamed, and refuses the
//! unbalanced quotes a lenient reader turns into lost rows: a quote never closed swallows
//! every row after it into one field; a quoted field spanning lines and closed by a quote
//! followed by something else than `,` or the end of the line swallows the rows in between;
//! a `"` in the middle of an unquoted field is where such a quote usually comes from. (A
//! file with an odd number of `"` always has one of these.) Each is a [`CsvError`] naming
//! the file and the line. A leading UTF-8 BOM is skipped.

use md5::{Digest, Md5};
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;

/// A problem of a CSV file, at a line.
#[derive(Debug, thiserror::Error)]
#[error("{}line {line}: {problem}", FilePrefix(.file))]
pub(crate) struct CsvError {
    /// The file, as its reader named it (a path, an `s3://` URL, a key); empty for bytes
    /// with no name, whose error then starts with `line N:`.
    pub(crate) file: String,
    /// The line the problem is on (1-based; for a field over several lines, where it starts).
    pub(crate) line: u64,
    /// What is wrong.
    pub(crate) problem: Problem,
}

impl CsvError {
    /// A problem the caller found in the record of `file` at `line` (a row that does not
    /// have the columns it should, say), reported the same way.
    pub(crate) fn row(file: &str, line: u64, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            problem: Problem::Row(message.into()),
        }
    }
}

/// `file: `, or nothing for a file with no name.
struct FilePrefix<'a>(&'a str);

impl fmt::Display for FilePrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            "" => Ok(()),
            file => write!(f, "{file}: "),
        }
    }
}

/// What is wrong at a line of a CSV file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    /// A `"` in the middle of a field that does not start with one.
    #[error(
        "a `\"` inside a field that does not start with one: quote the whole field and double \
         the quote (`\"a\"\"b\"`), or, in a key, write it URL-encoded as %22"
    )]
    StrayQuote,
    /// A quoted field over several lines, closed by a quote followed by something else than
    /// `,` or the end of the line.
    #[error(
        "the quoted field opened on this line runs over {lines} line(s) and is closed on line \
         {closed} by a quote followed by {after:?}, not by `,` or the end of the line: an \
         unbalanced quote swallows the rows after it"
    )]
    ClosedMidField {
        /// How many lines it spans.
        lines: u64,
        /// The line of the closing quote.
        closed: u64,
        /// The byte after the closing quote.
        after: char,
    },
    /// A quote still open at the end of the file.
    #[error(
        "a quote opened on this line is never closed: it swallows {}the rest of the file into \
         one field (an unterminated `\"`)",
        LinesAfter(*.lines_after)
    )]
    NeverClosed {
        /// Lines after the one with the quote.
        lines_after: u64,
    },
    /// A field that is not UTF-8, where the reader needs text.
    #[error("column {column} is not valid UTF-8")]
    NotUtf8 {
        /// The column, from 1.
        column: usize,
    },
    /// Something the caller found wrong with the record.
    #[error("{0}")]
    Row(String),
    /// Reading the input failed.
    #[error(transparent)]
    Io(std::io::Error),
}

/// `the N line(s) after it and `, or nothing.
struct LinesAfter(u64);

impl fmt::Display for LinesAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, "the {n} line(s) after it and "),
        }
    }
}

/// A CSV record and where it is.
pub(crate) struct Record<'r> {
    /// The line it starts on.
    pub(crate) line: u64,
    /// Its fields, as bytes.
    pub(crate) fields: &'r csv::ByteRecord,
    file: &'r str,
}

impl<'r> Record<'r> {
    /// The fields as text; a field that is not UTF-8 is an error naming its column.
    pub(crate) fn text(&self) -> Result<Vec<&'r str>, CsvError> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                std::str::from_utf8(f).map_err(|_| CsvError {
                    file: self.file.to_owned(),
                    line: self.line,
                    problem: Problem::NotUtf8 { column: i + 1 },
                })
            })
            .collect()
    }

    /// An error about this record, as [`CsvError::row`].
    pub(crate) fn error(&self, message: impl Into<String>) -> CsvError {
        CsvError::row(self.file, self.line, message)
    }
}

/// A strict, streaming CSV reader; see the module documentation.
///
/// [`CsvReader::next_record`] yields the records in order, and each quote problem as an
/// error before the record it is in (so a reader stopping at the first error stops at the
/// cause, not at a row the quote mangled), then the record itself: a caller collecting every
/// problem (a manifest) sees them all, in line order.
pub(crate) struct CsvReader<R> {
    reader: csv::Reader<Scan<R>>,
    file: String,
    record: csv::ByteRecord,
    /// The line of the last record read, when it is yet to be returned (after the problems
    /// before its end).
    held: Option<u64>,
    done: bool,
}

impl<R: Read> CsvReader<R> {
    /// Reads `input`; errors name `file` (empty: no name).
    pub(crate) fn new(input: R, file: impl Into<String>) -> Self {
        Self::with_scan(Scan::new(input, false), file.into())
    }

    /// As [`CsvReader::new`], also hashing every byte read, for [`CsvReader::digest`].
    pub(crate) fn hashing(input: R, file: impl Into<String>) -> Self {
        Self::with_scan(Scan::new(input, true), file.into())
    }

    fn with_scan(scan: Scan<R>, file: String) -> Self {
        Self {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(64 * 1024)
                .from_reader(scan),
            file,
            record: csv::ByteRecord::new(),
            held: None,
            done: false,
        }
    }

    /// The next record, or the next problem; `None` at the end. After an I/O error there is
    /// nothing more.
    pub(crate) fn next_record(&mut self) -> Option<Result<Record<'_>, CsvError>> {
        if self.held.is_none() && !self.done {
            let line = self.reader.position().line();
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {
                    // The `csv` crate's position of a record is where the empty lines before
                    // it start; the scanner knows where its first byte is.
                    let start = self.reader.get_mut().starts.pop_front().unwrap_or(line);
                    self.held = Some(start);
                }
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.reader.get_mut().pending.clear();
                    let problem = match e.into_kind() {
                        csv::ErrorKind::Io(e) => Problem::Io(e),
                        // Only I/O errors: the reader is flexible and reads bytes.
                        other => Problem::Row(format!("{other:?}")),
                    };
                    return Some(Err(CsvError {
                        file: self.file.clone(),
                        line,
                        problem,
                    }));
                }
            }
        }
        // The problems in the record held are known now: the scanner has seen every byte of
        // it (a quote never closed runs to the end of the input, which it has then seen too).
        // Those before the next record's start are in it (or before it); with no next start
        // seen, the bytes after it are only line ends, where no problem is.
        let scan = self.reader.get_mut();
        if let Some(&(line, _)) = scan.pending.front() {
            let next = scan.starts.front().copied();
            if self.held.is_none() || next.is_none_or(|next| line < next) {
                let (line, problem) = scan.pending.pop_front().expect("a front");
                return Some(Err(CsvError {
                    file: self.file.clone(),
                    line,
                    problem,
                }));
            }
        }
        let line = self.held.take()?;
        Some(Ok(Record {
            line,
            fields: &self.record,
            file: &self.file,
        }))
    }

    /// The MD5 of the bytes read so far, as `md5:<hex>`, when made with
    /// [`CsvReader::hashing`].
    pub(crate) fn digest(self) -> Option<String> {
        let scan = self.reader.into_inner();
        scan.md5
            .map(|m| format!("md5:{}", crate::digest::hex(&m.finalize())))
    }
}

/// Where a byte is relative to the CSV quoting, as the `csv` crate reads it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    StartField,
    InField,
    /// Inside a quoted field opened on this line.
    Quoted(u64),
    /// A `"` inside a quoted field opened on this line: an escaped quote or the end.
    QuoteInQuoted(u64),
}

/// A reader that strips a leading UTF-8 BOM, follows the quoting to find quotes that
/// swallow rows, and optionally hashes what it reads. It sees each byte before the `csv`
/// reader parses it.
struct Scan<R> {
    inner: R,
    started: bool,
    state: QuoteState,
    line: u64,
    /// Whether the next byte other than CR or LF starts a record.
    between_records: bool,
    /// The line each record seen starts on, not yet returned.
    starts: VecDeque<u64>,
    /// Whether the last byte was LF (so the line after it is empty so far).
    after_lf: bool,
    /// Problems found, in line order, not yet returned.
    pending: VecDeque<(u64, Problem)>,
    md5: Option<Md5>,
}

impl<R: Read> Scan<R> {
    fn new(inner: R, digest: bool) -> Self {
        Self {
            inner,
            started: false,
            state: QuoteState::StartField,
            line: 1,
            between_records: true,
            starts: VecDeque::new(),
            after_lf: false,
            pending: VecDeque::new(),
            md5: digest.then(Md5::new),
        }
    }

    fn follow(&mut self, bytes: &[u8]) {
        use QuoteState::*;
        for &b in bytes {
            let newline = matches!(b, b'\r' | b'\n');
            if self.between_records && !newline {
                // As the `csv` crate reads: lines of only CR and LF are no record.
                self.between_records = false;
                self.starts.push_back(self.line);
            }
            self.state = match (self.state, b) {
                (StartField, b'"') => Quoted(self.line),
                (StartField | InField, b',') => StartField,
                (StartField | InField, b'\r' | b'\n') => {
                    self.between_records = true;
                    StartField
                }
                (InField, b'"') => {
                    self.pending.push_back((self.line, Problem::StrayQuote));
                    InField
                }
                (StartField | InField, _) => InField,
                (Quoted(open), b'"') => QuoteInQuoted(open),
                (Quoted(open), _) => Quoted(open),
                (QuoteInQuoted(open), b'"') => Quoted(open),
                (QuoteInQuoted(_), b',') => StartField,
                (QuoteInQuoted(_), b'\r' | b'\n') => {
                    self.between_records = true;
                    StartField
                }
                (QuoteInQuoted(open), other) => {
                    if open != self.line {
                        self.pending.push_back((
                            open,
                            Problem::ClosedMidField {
                                lines: self.line - open + 1,
                                closed: self.line,
                                after: char::from(other),
                            },
                        ));
                    }
                    InField
                }
            };
            self.after_lf = b == b'\n';
            if self.after_lf {
                self.line += 1;
            }
        }
    }

    /// At the end of the input: a quote still open is a problem.
    fn finish(&mut self) {
        if let QuoteState::Quoted(open) = std::mem::replace(&mut self.state, QuoteState::StartField)
        {
            self.pending.push_back((
                open,
                Problem::NeverClosed {
                    lines_after: self.line - open - u64::from(self.after_lf),
                },
            ));
        }
    }
}

impl<R: Read> Read for Scan<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        if !self.started && n > 0 {
            // Read enough to see a whole BOM.
            while n < 3 && n < buf.len() {
                let more = self.inner.read(&mut buf[n..])?;
                if more == 0 {
                    break;
                }
                n += more;
            }
            self.started = true;
            if let Some(m) = &mut self.md5 {
                m.update(&buf[..n]);
            }
            if buf[..n].starts_with(b"\xEF\xBB\xBF") {
                buf.copy_within(3..n, 0);
                n -= 3;
                if n == 0 {
                    return self.read(buf);
                }
            }
            self.follow(&buf[..n]);
            return Ok(n);
        }
        if n == 0 && !buf.is_empty() {
            self.finish();
        }
        if let Some(m) = &mut self.md5 {
            m.update(&buf[..n]);
        }
        self.follow(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `chunk` bytes a call, to cross every boundary.
    struct Chunked<'a>(&'a [u8], usize);
    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Each record as `line: field|field`, each problem as its message.
    fn read(bytes: &[u8], chunk: usize) -> Vec<String> {
        let mut reader = CsvReader::new(Chunked(bytes, chunk), "f.csv");
        let mut out = Vec::new();
        while let Some(item) = reader.next_record() {
            out.push(match item {
                Ok(r) => format!("{}: {}", r.line, r.text().unwrap().join("|")),
                Err(e) => e.to_string(),
            });
        }
        out
    }

    /// A record's line is the line its first byte is on: after empty lines (which are no
    /// record), a field over lines, CRLF, a BOM; however the bytes arrive.
    #[test]
    fn records_name_the_line_they_start_on() {
        let bytes = b"\xEF\xBB\xBFa,b\n\n\r\n\"c\nd\",e\r\n,\n\n\"\"\"x\"\"\",y";
        for chunk in [1, 2, 3, 5, 64 * 1024] {
            assert_eq!(
                read(bytes, chunk),
                ["1: a|b", "4: c\nd|e", "6: |", "8: \"x\"|y"],
                "chunk {chunk}"
            );
        }
    }

    /// Each quote problem comes before the record it is in, in line order, with the file and
    /// line; the records are still read.
    #[test]
    fn problems_come_before_their_record() {
        let bytes = b"a,b\"c\nd,e\n\"f\ng\"h,i\nj,\"k\nl,m\n";
        for chunk in [1, 4, 64 * 1024] {
            let got = read(bytes, chunk);
            assert_eq!(got.len(), 7, "{got:#?}");
            assert!(
                got[0].starts_with("f.csv: line 1: a `\"` inside a field"),
                "{got:#?}"
            );
            assert_eq!(got[1..3], ["1: a|b\"c", "2: d|e"], "{got:#?}");
            assert_eq!(
                got[3],
                "f.csv: line 3: the quoted field opened on this line runs over 2 line(s) and \
                 is closed on line 4 by a quote followed by 'h', not by `,` or the end of the \
                 line: an unbalanced quote swallows the rows after it"
            );
            assert_eq!(got[4], "3: f\ngh|i");
            assert_eq!(
                got[5],
                "f.csv: line 5: a quote opened on this line is never closed: it swallows the \
                 1 line(s) after it and the rest of the file into one field (an unterminated \
                 `\"`)"
            );
            assert_eq!(got[6], "5: j|k\nl,m\n");
        }
        assert_eq!(
            read(b"a,\"b", 3),
            [
                "f.csv: line 1: a quote opened on this line is never closed: it swallows the \
                 rest of the file into one field (an unterminated `\"`)",
                "1: a|b"
            ]
        );
    }

    /// A file with no name: problems start with the line. The digest covers every byte,
    /// the BOM too.
    #[test]
    fn unnamed_and_hashed() {
        let mut reader = CsvReader::hashing(&b"\xEF\xBB\xBFa,\"b"[..], "");
        let err = reader.next_record().unwrap().err().unwrap();
        assert!(
            err.to_string().starts_with("line 1: a quote opened"),
            "{err}"
        );
        assert_eq!(err.line, 1);
        assert!(matches!(
            err.problem,
            Problem::NeverClosed { lines_after: 0 }
        ));
        assert!(reader.next_record().unwrap().is_ok());
        assert!(reader.next_record().is_none());
        assert_eq!(
            reader.digest().unwrap(),
            format!(
                "md5:{}",
                crate::digest::hex(&Md5::digest(b"\xEF\xBB\xBFa,\"b"))
            )
        );
        assert_eq!(CsvReader::new(&b""[..], "").digest(), None);
    }
}
