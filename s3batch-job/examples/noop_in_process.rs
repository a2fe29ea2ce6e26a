//! Runner overhead in-process: a no-op task over N objects (default 100,000), as
//! `cargo s3batch run` runs a job: a CSV manifest file checked and streamed, every result
//! journaled as it finishes, and the completion report written from the journal. Prints
//! tasks per second of the run, and the time of the other steps.
//!
//! `cargo run --release -p s3batch-job --example noop_in_process -- 100000 64`
//!
//! With `--in-memory` as third argument: the manifest built in memory and the records kept
//! in memory (`LocalJob::run_in_process`), no journal, no report; memory then grows with N.

use s3batch::{Handler, Object, Options, TaskError};
use s3batch_job::journal::{self, Journal};
use s3batch_job::{
    InProcess, LocalJob, Location, Manifest, ManifestEntry, ManifestSource, ReportScope,
};
use std::io::Write;
use std::time::Instant;

async fn noop(_: Object) -> Result<(), TaskError> {
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let concurrency: usize = args.next().map_or(64, |a| a.parse().expect("concurrency"));
    let in_memory = args.next().is_some_and(|a| a == "--in-memory");
    if in_memory {
        let entries = (0..n)
            .map(|i| ManifestEntry::new("bench-bucket", format!("dir {i}/key+{i}.txt")))
            .collect();
        let report = LocalJob::new(Manifest::new(entries))
            .concurrency(concurrency)
            .run_in_process(noop, Options::new())
            .await
            .expect("the job runs");
        let s = &report.summary;
        assert_eq!(s.succeeded, n);
        println!(
            "in-process no-op: {n} tasks, concurrency {concurrency}: {:.2} s, {:.0} tasks/s (in memory)",
            s.elapsed.as_secs_f64(),
            s.tasks_per_second()
        );
        return;
    }

    let dir = std::env::temp_dir().join(format!("s3batch-noop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("manifest.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(out, "bench-bucket,dir%20{i}/key%2B{i}.txt").unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();

    let all = Instant::now();
    let source = ManifestSource::open(&path).expect("a valid manifest");
    let checked = all.elapsed();
    let state = dir.join("state/job-noop");
    let mut journal = Journal::create(&state, "noop", "manifest.csv", &source).unwrap();
    let handler = Handler::new(noop, Options::new()).await.unwrap();
    let outcome = LocalJob::new(source)
        .job_id("noop")
        .concurrency(concurrency)
        .run_journaled(
            InProcess::new(handler),
            &mut journal,
            std::future::pending(),
        )
        .await
        .expect("the job runs");
    journal.finish(&outcome.status).unwrap();
    drop(journal);
    let s = &outcome.summary;
    assert_eq!(s.succeeded, n);
    let before_report = Instant::now();
    // Only a local folder is written: this client is never used.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .build(),
    );
    journal::write_report(
        &state,
        &Location::Local(dir.join("report")),
        ReportScope::AllTasks,
        &s3,
    )
    .await
    .expect("the report is written");
    let report = before_report.elapsed();
    println!(
        "in-process no-op: {n} tasks, concurrency {concurrency}: {:.2} s, {:.0} tasks/s \
         (manifest checked in {:.2} s, report written in {:.2} s; {:.2} s in all)",
        s.elapsed.as_secs_f64(),
        s.tasks_per_second(),
        checked.as_secs_f64(),
        report.as_secs_f64(),
        all.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
