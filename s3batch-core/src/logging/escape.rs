//! Text from the event or a task made safe for text logs ([`Escaped`]), and whether logs are
//! JSON lines, which need no escaping.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`init_tracing`](crate::init_tracing) when logs are JSON lines
/// (`AWS_LAMBDA_LOG_FORMAT=JSON`): the JSON formatter escapes every value itself, so
/// [`Escaped`] writes text as it is.
pub(super) static JSON_LOGS: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// A test's JSON logs on its own thread, without changing [`JSON_LOGS`] for the others.
    pub(crate) static TEST_JSON_LOGS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn json_logs() -> bool {
    #[cfg(test)]
    if TEST_JSON_LOGS.get() {
        return true;
    }
    JSON_LOGS.load(Ordering::Relaxed)
}

/// Text from the event or a task (keys, ids, error and panic messages) made safe for text
/// logs, so that it cannot forge a log line or a field, or colour a terminal. A field is
/// quoted and escaped as Rust's `Debug` does (`key="a\nb"`); in a message, control characters
/// (newline, carriage return, ESC, C1 controls…), line and paragraph separators and
/// bidirectional overrides are written as Rust escapes (`\n`, `\u{1b}`). With JSON logs the
/// text is written as it is. Formatted only when a log line is written; text needing no
/// escape is written in one piece.
pub(crate) struct Escaped<'a> {
    text: &'a str,
    quoted: bool,
}

impl<'a> Escaped<'a> {
    /// A field value: quoted in text logs.
    pub(crate) fn field(text: &'a str) -> Self {
        Self { text, quoted: true }
    }

    /// Part of a message: not quoted.
    pub(crate) fn text(text: &'a str) -> Self {
        Self {
            text,
            quoted: false,
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if json_logs() {
            return f.write_str(self.text);
        }
        if self.quoted {
            // What `Debug` writes, without its per-character work when nothing needs an
            // escape (`char::escape_debug` escapes at least what `str`'s `Debug` does).
            let plain = self.text.chars().all(|c| match c {
                '"' | '\\' => false,
                ' '..='~' => true,
                c => !c.is_ascii() && c.escape_debug().len() == 1,
            });
            if !plain {
                return fmt::Debug::fmt(self.text, f);
            }
            f.write_char('"')?;
            f.write_str(self.text)?;
            return f.write_char('"');
        }
        let mut rest = self.text;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found above");
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}
