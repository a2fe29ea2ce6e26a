//! The end of a job's life on this machine, one for every front end: `cargo s3batch run`
//! (and its `--resume`), `cargo s3batch report --job-id`, and `serve`.
//!
//! A job's folder is held by one process at a time ([`JobLock`]); it runs with its
//! [`Journal`](crate::Journal); then [`finish`] writes the report from the journal and only
//! then removes the journal. A journal is never removed when its report could not be written
//! (the results would be recorded nowhere), nor when the job can still be resumed (a
//! cancelled `run`).

use crate::journal::{self, JobLock};
use crate::report::{JobStatus, ReportScope};
use crate::storage::Location;
use std::path::PathBuf;

/// What a cancelled job's journal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The job can be resumed (`cargo s3batch run --resume`): its journal is kept.
    Resumable,
    /// Cancelling ends the job (S3's `Cancelled` state, in `serve`): its journal is removed
    /// once the report is written, as for any job that ended.
    Final,
}

/// What [`finish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finished {
    /// Where the report's `manifest.json` was written, when a destination was given.
    pub report: Option<Location>,
    /// The journal's folder when it was kept: the job did not end (cancelled, or it never
    /// recorded an end), so it can be resumed or reported later.
    pub kept: Option<PathBuf>,
}

/// Why [`finish`] could not finish the job. The journal is kept in every case.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The journal could not be read.
    #[error("reading the journal in {}: {message}", dir.display())]
    Journal {
        /// The journal's folder.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// The report could not be written; the results are kept in the journal.
    #[error("the report could not be written: {message}; the results are kept in {}", dir.display())]
    Report {
        /// The journal's folder, kept.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// The report was written but the journal could not be removed.
    #[error("the report is written, but removing the journal failed: {message}")]
    Remove {
        /// What failed.
        message: String,
    },
}

/// Writes the report of the journal in the folder `lock` holds to `report` (a folder or an
/// `s3://` prefix, with its scope) when given, then removes the journal if the job ended
/// (`Complete` or `Failed`, or `Cancelled` when `cancelled` is [`Cancelled::Final`]). A
/// report that cannot be written keeps the journal and is an error naming its folder.
pub async fn finish(
    lock: JobLock,
    report: Option<(&Location, ReportScope)>,
    cancelled: Cancelled,
    s3: &aws_sdk_s3::Client,
) -> Result<Finished, FinishError> {
    let dir = lock.dir().to_owned();
    let info = journal::info(&dir).map_err(|message| FinishError::Journal {
        dir: dir.clone(),
        message,
    })?;
    let written = match report {
        Some((location, scope)) => Some(
            journal::write_report(&dir, location, scope, s3)
                .await
                .map_err(|message| FinishError::Report {
                    dir: dir.clone(),
                    message,
                })?,
        ),
        None => None,
    };
    let ended = match info.status {
        Some(JobStatus::Complete | JobStatus::Failed { .. }) => true,
        Some(JobStatus::Cancelled) => cancelled == Cancelled::Final,
        None => false,
    };
    if !ended {
        return Ok(Finished {
            report: written,
            kept: Some(dir),
        });
    }
    // The lock file is inside the folder: removing the folder while holding it is safe, and
    // the lock ends with it.
    std::fs::remove_dir_all(&dir).map_err(|e| FinishError::Remove {
        message: format!("removing {}: {e}", dir.display()),
    })?;
    drop(lock);
    Ok(Finished {
        report: written,
        kept: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JobDefinition, Journal, LockError};
    use crate::manifest::{ManifestEntry, ManifestSource};
    use crate::report::{read_report, TaskRecord, TaskStatus};
    use crate::Manifest;
    use std::path::Path;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "s3batch-lifecycle-unit-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn source() -> ManifestSource {
        ManifestSource::from(Manifest::from_csv(b"bkt,k1\nbkt,k2\n").unwrap())
    }

    /// A journal of job `id` in `dir` with both rows finished, ended as `status`.
    fn ended(dir: &Path, id: &str, status: JobStatus) -> JobLock {
        let mut journal = Journal::create(dir, id, "m.csv", &source()).unwrap();
        for (i, key) in ["k1", "k2"].into_iter().enumerate() {
            let record = TaskRecord {
                entry: ManifestEntry::new("bkt", key),
                status: TaskStatus::Succeeded,
                error_code: None,
                http_status: Some(200),
                message: format!("done {key}"),
                attempts: 1,
            };
            journal.record(i, &record).unwrap();
        }
        journal.finish(&status).unwrap();
        journal.into_lock().unwrap()
    }

    async fn s3() -> aws_sdk_s3::Client {
        // Never reached: every destination here is a folder.
        crate::storage::s3_client(Some("http://127.0.0.1:1")).await
    }

    #[tokio::test]
    async fn a_report_that_cannot_be_written_keeps_the_journal() {
        let root = temp("unwritable");
        let dir = root.join("job-j1");
        let lock = ended(&dir, "j1", JobStatus::Complete);
        // A file where the report's folder should be.
        let blocked = root.join("report");
        std::fs::write(&blocked, b"not a folder").unwrap();
        let err = finish(
            lock,
            Some((&Location::Local(blocked), ReportScope::AllTasks)),
            Cancelled::Final,
            &s3().await,
        )
        .await
        .unwrap_err();
        match &err {
            FinishError::Report { dir: kept, .. } => assert_eq!(kept, &dir),
            other => panic!("not a report error: {other:?}"),
        }
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        // Both finished tasks are still recorded, and the report can be written later.
        let lock = JobLock::acquire(&dir).unwrap();
        let out = root.join("later");
        let finished = finish(
            lock,
            Some((&Location::Local(out.clone()), ReportScope::AllTasks)),
            Cancelled::Final,
            &s3().await,
        )
        .await
        .unwrap();
        assert_eq!(finished.kept, None);
        assert!(
            !dir.exists(),
            "the journal is removed once the report is written"
        );
        let mut rows: Vec<(String, String)> = read_report(&out.join("job-j1"))
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.message))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("k1".to_owned(), "done k1".to_owned()),
                ("k2".to_owned(), "done k2".to_owned())
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn a_cancelled_journal_is_kept_only_where_the_job_can_be_resumed() {
        let root = temp("cancelled");
        let dir = root.join("job-c1");
        let lock = ended(&dir, "c1", JobStatus::Cancelled);
        let kept = finish(lock, None, Cancelled::Resumable, &s3().await)
            .await
            .unwrap();
        assert_eq!(kept.kept.as_deref(), Some(dir.as_path()));
        assert!(dir.join("journal.jsonl").is_file());
        let lock = JobLock::acquire(&dir).unwrap();
        let removed = finish(lock, None, Cancelled::Final, &s3().await)
            .await
            .unwrap();
        assert_eq!(removed.kept, None);
        assert!(!dir.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_held_folder_is_refused_naming_the_holder_and_released_with_it() {
        let dir = temp("held").join("job-h1");
        let lock = JobLock::acquire(&dir).unwrap();
        match JobLock::acquire(&dir) {
            Err(LockError::Held { dir: held, pid }) => {
                assert_eq!((held, pid), (dir.clone(), std::process::id().to_string()))
            }
            other => panic!("not refused: {other:?}"),
        }
        // An open journal holds it too.
        let refused = Journal::create(&dir, "h1", "m.csv", &source()).unwrap_err();
        assert!(refused.contains("is in use by process"), "{refused}");
        drop(lock);
        let journal = Journal::create(&dir, "h1", "m.csv", &source()).unwrap();
        assert!(JobLock::acquire(&dir).is_err());
        drop(journal);
        JobLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_resume_with_another_definition_is_refused_naming_each_difference() {
        let dir = temp("definition").join("job-d1");
        let started = JobDefinition {
            function: "function f".into(),
            schema: "2.0".into(),
            user_arguments: [("a".to_owned(), "1".to_owned())].into(),
            tasks_per_invocation: 1,
            report: None,
        };
        let lock = JobLock::acquire(&dir).unwrap();
        drop(
            Journal::create_locked(lock, "d1", "m.csv", &source(), Some(started.clone())).unwrap(),
        );
        let mut now = started.clone();
        now.function = "function g".into();
        now.tasks_per_invocation = 4;
        let err = Journal::resume_locked(JobLock::acquire(&dir).unwrap(), &source(), Some(&now))
            .unwrap_err();
        assert!(
            err.contains(
                "function: was function f, now function g; tasks per invocation: was 1, now 4"
            ),
            "{err}"
        );
        let resumed =
            Journal::resume_locked(JobLock::acquire(&dir).unwrap(), &source(), Some(&started))
                .unwrap();
        assert_eq!(resumed.finished(), 0);
        drop(resumed);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
