//! The error of a local file or folder that could not be read, written or created, shared by
//! the errors of the modules that touch local files.

use std::path::{Path, PathBuf};

/// A local file or folder could not be read, written, created or removed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct FileError {
    /// What was done: `reading`, `writing`, `creating`, …
    pub action: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// The error.
    #[source]
    pub source: std::io::Error,
}

/// For `map_err`: the I/O error of doing `action` on `path`, which `?` turns into any error
/// that holds a [`FileError`].
pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_owned();
    move |source| FileError {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_action_the_path_and_the_cause() {
        let err = io("reading", Path::new("/x/y"))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "gone",
        ));
        assert_eq!(err.to_string(), "reading /x/y: gone");
        assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "gone");
    }
}
