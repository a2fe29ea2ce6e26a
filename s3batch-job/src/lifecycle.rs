//! A job's life on this machine, one for every front end: `cargo s3batch run` (and its
//! `--resume`), `cargo s3batch report --job-id`, and `serve`.
//!
//! **Prepare** ([`claim`], then [`Claimed::prepare`], then [`PreparedJob::start`]): the job's
//! folder is taken for this process ([`JobLock`]: a second run, or a resume of a job still
//! running, is refused naming the other process) before anything is read; a new job may not
//! have a journal there, a resumed one must, and must be resumed with the definition it
//! started with ([`JobDefinition`]); the manifest (opened by the front end into
//! [`Claimed::dir`], since where it comes from is the front end's: a path, an `s3://` URL, an
//! S3 Control manifest spec with its ETag) must be the one a resumed job started with (its
//! [digest](crate::ManifestSource::digest)), and the report destination must be writable.
//! Only then is the journal created or resumed. A folder that [`claim`] created is removed
//! again when the job is dropped before it started, so a refused job leaves nothing behind.
//!
//! **Run**: [`crate::LocalJob::run_journaled`] with the [`Journal`].
//!
//! **Finish** ([`finish`]): the report is written from the journal, and only then the
//! journal removed. A journal is never removed when its report could not be written (the
//! results would be recorded nowhere), nor when the job can still be resumed (a cancelled
//! `run`).
//!
//! ```
//! use s3batch_job::lifecycle::{self, JobPlan, Start};
//! use s3batch_job::journal::{JobDefinition, JournalError};
//! use s3batch_job::lifecycle::PrepareError;
//! use s3batch_job::{Manifest, ManifestSource};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("s3batch-doc-prepare-{}", std::process::id()));
//! let plan = |start| JobPlan {
//!     dir: dir.join("job-doc1"),
//!     job_id: "doc1".into(),
//!     manifest_name: "m.csv".into(),
//!     definition: JobDefinition { function: "function f".into(), ..Default::default() },
//!     report: None,
//!     start,
//! };
//! let s3 = s3batch_job::storage::s3_client(Some("http://127.0.0.1:1")).await;
//! let claimed = lifecycle::claim(plan(Start::New)).unwrap();
//! // A second claim of the same job is refused while the first holds it.
//! assert!(matches!(
//!     lifecycle::claim(plan(Start::New)),
//!     Err(PrepareError::Journal(JournalError::Lock(_)))
//! ));
//! let manifest = ManifestSource::from(Manifest::from_csv(b"bkt,k1\n").unwrap());
//! let prepared = claimed.prepare(manifest, &s3).await.unwrap();
//! let (journal, manifest) = prepared.start().unwrap();
//! assert_eq!((journal.finished(), manifest.len()), (0, 1));
//! # drop(journal);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```

use crate::journal::{self, JobDefinition, JobLock, Journal, JournalError};
use crate::manifest::ManifestSource;
use crate::report::{JobStatus, ReportScope};
use crate::storage::Location;
use std::path::{Path, PathBuf};

/// Whether [`claim`] starts a job or resumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new job: its folder must not hold a journal.
    New,
    /// The job of the journal in its folder, continued: the tasks in the journal are not run
    /// again.
    Resume,
}

/// What defines a job to prepare: where its journal goes, and everything a resume compares.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The job's folder (the CLI's is `<state dir>/job-<id>`).
    pub dir: PathBuf,
    /// The job id (1 to 64 of `A-Z a-z 0-9 - _`).
    pub job_id: String,
    /// The manifest's name, for the journal and messages.
    pub manifest_name: String,
    /// What defines the job beyond its manifest, recorded in the journal and compared on a
    /// resume.
    pub definition: JobDefinition,
    /// Where the report goes and its scope (`None`: no report); checked writable before the
    /// job starts.
    pub report: Option<(Location, ReportScope)>,
    /// New or resumed.
    pub start: Start,
}

/// Why a job could not be prepared. The folder is left as it was (one that [`claim`]
/// created is removed), and a journal in it is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// A new job whose folder already holds a journal.
    #[error(
        "job {job_id} already has a journal in {} (its last run: {}): continue it with \
         --resume, or delete that folder to start it over",
        dir.display(),
        last_run.as_ref().map_or("did not end (a crash or kill)".to_owned(), ToString::to_string)
    )]
    JournalExists {
        /// The job id.
        job_id: String,
        /// The folder.
        dir: PathBuf,
        /// How its last run ended (`None`: it did not).
        last_run: Option<JobStatus>,
    },
    /// A resume where there is no journal.
    #[error("nothing to resume: no journal of job {job_id} in {}", dir.display())]
    NothingToResume {
        /// The job id.
        job_id: String,
        /// The folder.
        dir: PathBuf,
    },
    /// The report destination cannot be written.
    #[error(transparent)]
    Destination(JournalError),
    /// The folder is held by another process ([`JournalError::Lock`]), the job id is not
    /// valid, the journal cannot be read or created, or a resume differs from the job's
    /// start: its definition ([`JournalError::Definition`]) or its manifest
    /// ([`JournalError::ManifestChanged`]).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The folder of a job, held by this process; removed when dropped if [`claim`] created it
/// and the job never started.
#[derive(Debug)]
struct Held {
    lock: Option<JobLock>,
    dir: PathBuf,
    created: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            drop(lock);
            if self.created {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// A job whose folder is held and whose journal agrees with its plan: the front end opens
/// the manifest (into [`Claimed::dir`] when it needs room), then [`Claimed::prepare`].
#[derive(Debug)]
pub struct Claimed {
    held: Held,
    plan: JobPlan,
}

/// A job ready to start: every check passed ([`Claimed::prepare`]); [`PreparedJob::start`]
/// creates or resumes its journal.
#[derive(Debug)]
pub struct PreparedJob {
    held: Held,
    plan: JobPlan,
    manifest: ManifestSource,
}

/// Takes the job's folder for this process and checks it against the plan: the job id is
/// valid; the folder is not held by another process (refused naming it, before anything is
/// read); a new job has no journal there and a resumed one has, started with the same
/// definition (each difference named).
pub fn claim(plan: JobPlan) -> Result<Claimed, PrepareError> {
    if !crate::report::valid_job_id(&plan.job_id) {
        return Err(JournalError::InvalidJobId { id: plan.job_id }.into());
    }
    let created = !plan.dir.exists();
    let lock = JobLock::acquire(&plan.dir).map_err(JournalError::from)?;
    let held = Held {
        lock: Some(lock),
        dir: plan.dir.clone(),
        created,
    };
    let existing = Journal::exists(&plan.dir);
    match plan.start {
        Start::Resume if !existing => {
            return Err(PrepareError::NothingToResume {
                job_id: plan.job_id,
                dir: plan.dir,
            })
        }
        Start::New if existing => {
            let info = journal::info(&plan.dir)?;
            return Err(PrepareError::JournalExists {
                job_id: plan.job_id,
                dir: plan.dir,
                last_run: info.status,
            });
        }
        Start::Resume => {
            let info = journal::info(&plan.dir)?;
            if let Some(was) = &info.definition {
                let differences = was.differences(&plan.definition);
                if !differences.is_empty() {
                    return Err(JournalError::Definition {
                        job_id: plan.job_id,
                        differences,
                    }
                    .into());
                }
            }
        }
        Start::New => {}
    }
    Ok(Claimed { held, plan })
}

impl Claimed {
    /// The job's folder, where the front end may keep what it fetched of the manifest.
    pub fn dir(&self) -> &Path {
        &self.plan.dir
    }

    /// The plan.
    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    /// Checks the job's `manifest`: a resumed job's must be the one it started with (digest
    /// and rows); and that its report destination can be written.
    pub async fn prepare(
        self,
        manifest: ManifestSource,
        s3: &aws_sdk_s3::Client,
    ) -> Result<PreparedJob, PrepareError> {
        if self.plan.start == Start::Resume {
            let info = journal::info(&self.plan.dir)?;
            if info.manifest_digest != manifest.digest() || info.rows != manifest.len() {
                return Err(JournalError::ManifestChanged {
                    job_id: self.plan.job_id.clone(),
                    manifest: info.manifest,
                    rows: info.rows,
                    digest: info.manifest_digest,
                    now_rows: manifest.len(),
                    now_digest: manifest.digest().to_owned(),
                }
                .into());
            }
        }
        if let Some((location, _)) = &self.plan.report {
            journal::check_destination(location, &self.plan.job_id, s3)
                .await
                .map_err(PrepareError::Destination)?;
        }
        Ok(PreparedJob {
            held: self.held,
            plan: self.plan,
            manifest,
        })
    }
}

impl PreparedJob {
    /// The plan.
    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    /// The manifest.
    pub fn manifest(&self) -> &ManifestSource {
        &self.manifest
    }

    /// Creates the journal (a new job, recording its definition) or resumes it, and hands
    /// it over with the manifest: the folder stays held by the journal.
    pub fn start(self) -> Result<(Journal, ManifestSource), PrepareError> {
        let PreparedJob {
            mut held,
            plan,
            manifest,
        } = self;
        let lock = held.lock.take().expect("held until started");
        let journal = match plan.start {
            Start::New => Journal::create_locked(
                lock,
                &plan.job_id,
                &plan.manifest_name,
                &manifest,
                Some(plan.definition),
            ),
            Start::Resume => Journal::resume_locked(lock, &manifest, Some(&plan.definition)),
        };
        let journal = match journal {
            Ok(journal) => journal,
            Err(e) => {
                // The lock went with the failed call; a folder this job created goes too.
                if held.created && !Journal::exists(&held.dir) {
                    let _ = std::fs::remove_dir_all(&held.dir);
                }
                return Err(e.into());
            }
        };
        Ok((journal, manifest))
    }
}

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
    #[error("reading the journal in {}: {source}", dir.display())]
    Journal {
        /// The journal's folder.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: JournalError,
    },
    /// The report could not be written; the results are kept in the journal.
    #[error("the report could not be written: {source}; the results are kept in {}", dir.display())]
    Report {
        /// The journal's folder, kept.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: JournalError,
    },
    /// The report was written but the journal could not be removed.
    #[error("the report is written, but removing the journal failed: removing {}: {source}", dir.display())]
    Remove {
        /// The journal's folder.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
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
    let info = journal::info(&dir).map_err(|source| FinishError::Journal {
        dir: dir.clone(),
        source,
    })?;
    let written = match report {
        Some((location, scope)) => Some(
            journal::write_report(&dir, location, scope, s3)
                .await
                .map_err(|source| FinishError::Report {
                    dir: dir.clone(),
                    source,
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
    std::fs::remove_dir_all(&dir).map_err(|source| FinishError::Remove {
        dir: dir.clone(),
        source,
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
        assert!(
            matches!(refused, JournalError::Lock(LockError::Held { .. })),
            "{refused:?}"
        );
        assert!(
            refused.to_string().contains("is in use by process"),
            "{refused}"
        );
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
        match &err {
            JournalError::Definition {
                job_id,
                differences,
            } => assert_eq!(
                (job_id.as_str(), differences.as_slice()),
                (
                    "d1",
                    [
                        "function: was function f, now function g".to_owned(),
                        "tasks per invocation: was 1, now 4".to_owned()
                    ]
                    .as_slice()
                )
            ),
            other => panic!("not a definition error: {other:?}"),
        }
        assert!(
            err.to_string().contains(
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

    fn plan(dir: &Path, id: &str, start: Start) -> JobPlan {
        JobPlan {
            dir: dir.to_owned(),
            job_id: id.to_owned(),
            manifest_name: "m.csv".into(),
            definition: JobDefinition {
                function: "function f".into(),
                schema: "2.0".into(),
                user_arguments: [("a".to_owned(), "1".to_owned())].into(),
                tasks_per_invocation: 1,
                report: None,
            },
            report: None,
            start,
        }
    }

    /// The one prepare records what defines the job in the journal it starts (`serve`'s
    /// journals recorded none, so a resume there compared nothing but the manifest), and a
    /// resume with another definition is refused at the claim, before the manifest is read,
    /// naming each difference.
    #[tokio::test]
    async fn a_prepared_job_records_its_definition_and_a_resume_must_match_it() {
        let root = temp("prepare-definition");
        let dir = root.join("job-p1");
        let s3 = s3().await;
        let claimed = claim(plan(&dir, "p1", Start::New)).unwrap();
        let (journal, manifest) = claimed
            .prepare(source(), &s3)
            .await
            .unwrap()
            .start()
            .unwrap();
        assert_eq!(manifest.len(), 2);
        drop(journal);
        let recorded = journal::info(&dir).unwrap().definition;
        assert_eq!(recorded, Some(plan(&dir, "p1", Start::New).definition));

        let mut other = plan(&dir, "p1", Start::Resume);
        other.definition.user_arguments = [("a".to_owned(), "2".to_owned())].into();
        other.definition.schema = "1.0".into();
        match claim(other) {
            Err(PrepareError::Journal(JournalError::Definition {
                job_id,
                differences,
            })) => assert_eq!(
                (job_id.as_str(), differences),
                (
                    "p1",
                    vec![
                        "schema: was 2.0, now 1.0".to_owned(),
                        "user arguments: was {\"a\": \"1\"}, now {\"a\": \"2\"}".to_owned()
                    ]
                )
            ),
            other => panic!("not refused for its definition: {other:?}"),
        }
        // The same definition resumes.
        let (journal, _) = claim(plan(&dir, "p1", Start::Resume))
            .unwrap()
            .prepare(source(), &s3)
            .await
            .unwrap()
            .start()
            .unwrap();
        drop(journal);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The folder is held from the claim on: a second claim (a second `run`, a resume of a
    /// job still running, `serve` taking a job up) is refused naming this process while the
    /// first is prepared, waits, or runs.
    #[tokio::test]
    async fn a_claimed_job_is_held_until_it_ends() {
        let root = temp("prepare-held");
        let dir = root.join("job-p2");
        let s3 = s3().await;
        let held_by_us = |result: Result<Claimed, PrepareError>| match result {
            Err(PrepareError::Journal(JournalError::Lock(LockError::Held { pid, .. }))) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("not refused: {other:?}"),
        };
        let claimed = claim(plan(&dir, "p2", Start::New)).unwrap();
        held_by_us(claim(plan(&dir, "p2", Start::New)));
        let prepared = claimed.prepare(source(), &s3).await.unwrap();
        held_by_us(claim(plan(&dir, "p2", Start::Resume)));
        let (journal, _) = prepared.start().unwrap();
        held_by_us(claim(plan(&dir, "p2", Start::Resume)));
        drop(journal);
        drop(claim(plan(&dir, "p2", Start::Resume)).unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A new job where a journal is, and a resume where none is, are refused by variant; a
    /// resume over another manifest is refused before its journal is opened; a report
    /// destination that cannot be written is refused before the job starts. A refused job
    /// leaves no folder it created behind, and a journal that was there is kept as it was.
    #[tokio::test]
    async fn what_cannot_start_is_refused_before_it_starts_and_leaves_nothing_behind() {
        let root = temp("prepare-refused");
        let s3 = s3().await;

        let fresh = root.join("job-none");
        match claim(plan(&fresh, "none", Start::Resume)) {
            Err(PrepareError::NothingToResume { job_id, dir }) => {
                assert_eq!((job_id.as_str(), dir), ("none", fresh.clone()))
            }
            other => panic!("a resume without a journal: {other:?}"),
        }
        assert!(!fresh.exists(), "the folder the claim made is removed");

        let dir = root.join("job-p3");
        let lock = ended(&dir, "p3", JobStatus::Cancelled);
        drop(lock);
        let before = std::fs::read(dir.join("journal.jsonl")).unwrap();
        match claim(plan(&dir, "p3", Start::New)) {
            Err(e @ PrepareError::JournalExists { .. }) => {
                let PrepareError::JournalExists { last_run, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(last_run, &Some(JobStatus::Cancelled));
                assert!(e.to_string().contains("already has a journal"), "{e}");
            }
            other => panic!("a new job over a journal: {other:?}"),
        }
        let other = ManifestSource::from(Manifest::from_csv(b"bkt,k1\nbkt,k3\n").unwrap());
        match claim(plan(&dir, "p3", Start::Resume))
            .unwrap()
            .prepare(other, &s3)
            .await
        {
            Err(PrepareError::Journal(JournalError::ManifestChanged {
                rows, now_rows, ..
            })) => assert_eq!((rows, now_rows), (2, 2)),
            other => panic!("a resume over another manifest: {other:?}"),
        }
        assert_eq!(std::fs::read(dir.join("journal.jsonl")).unwrap(), before);

        let blocked = root.join("a-file");
        std::fs::write(&blocked, b"").unwrap();
        let fresh = root.join("job-p4");
        let mut with_report = plan(&fresh, "p4", Start::New);
        with_report.report = Some((Location::Local(blocked.clone()), ReportScope::AllTasks));
        match claim(with_report).unwrap().prepare(source(), &s3).await {
            Err(PrepareError::Destination(JournalError::DestinationIsFile { file, .. })) => {
                assert_eq!(file, blocked)
            }
            other => panic!("an unwritable destination: {other:?}"),
        }
        assert!(!fresh.exists(), "the folder the claim made is removed");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
