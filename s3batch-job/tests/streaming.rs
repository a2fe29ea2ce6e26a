//! Reading and writing at the size of real jobs without holding it in memory: a report read
//! from S3 as its body arrives, a large failed manifest uploaded to S3 in parts, an S3
//! Inventory streamed from files downloaded next to the job. (The memory these take at
//! scale is measured by `bench/streaming.sh`, see BENCHMARKS.md.)

use md5::{Digest, Md5};
use s3batch::{Object, TaskError};
use s3batch_job::analyze::{read_report_rows, AnalyzeError, FailedManifest, ManifestOut};
use s3batch_job::digest::hex;
use s3batch_job::storage::{StorageError, Upload, MIN_PART_SIZE};
use s3batch_job::{
    LocalJob, Location, Manifest, ManifestSource, ReportError, ReportRow, TaskStatus,
};
use s3batch_testkit::{get_object, Moto};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s3batch-streaming-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A results CSV: rows `0..n`, every third succeeded, the others failed; each key long
/// (about 200 bytes, with a space, written `+`) so a few MiB of manifest take few rows.
fn results_csv(n: usize) -> String {
    let pad = "x".repeat(170);
    let mut csv =
        String::from("Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage\n");
    for i in 0..n {
        let key = format!("photos/{i:08}+{pad}.jpg");
        if i % 3 == 0 {
            csv.push_str(&format!("src-bucket,{key},,succeeded,,200,done {i}\n"));
        } else {
            csv.push_str(&format!(
                "src-bucket,{key},,failed,PermanentFailure,200,NoSuchKey {i}\n"
            ));
        }
    }
    csv
}

fn decoded_key(i: usize) -> String {
    format!("photos/{i:08} {}.jpg", "x".repeat(170))
}

/// S3's ETag of an object uploaded in parts of `part` bytes: the MD5 of the parts' MD5s,
/// `-` the number of parts.
fn multipart_etag(bytes: &[u8], part: usize) -> String {
    let mut md5s = Vec::new();
    for chunk in bytes.chunks(part) {
        md5s.extend_from_slice(&Md5::digest(chunk));
    }
    format!(
        "\"{}-{}\"",
        hex(&Md5::digest(&md5s)),
        bytes.len().div_ceil(part)
    )
}

async fn object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (Vec<u8>, String) {
    let out = get_object(s3, bucket, key).await;
    let etag = out.e_tag().unwrap().to_owned();
    let bytes = out.body.collect().await.unwrap().into_bytes().to_vec();
    (bytes, etag)
}

/// The failed rows of the report at `source` written to each of `outs` (as
/// `cargo s3batch report --failed-manifest` does), with `upload` for the `s3://` ones.
async fn failed_manifests(
    source: &Location,
    outs: &[Location],
    upload: Upload,
    s3: &aws_sdk_s3::Client,
) -> usize {
    let mut staged = Vec::new();
    for out in outs {
        let (out, file) = ManifestOut::create(out).unwrap();
        staged.push((out.upload(upload), FailedManifest::to_writer(file)));
    }
    read_report_rows(source, s3, &mut |row| {
        if row.task_status == TaskStatus::Failed {
            for (_, manifest) in &mut staged {
                manifest.push(&row)?;
            }
        }
        Ok(())
    })
    .await
    .unwrap();
    let mut rows = 0;
    for (out, manifest) in staged {
        rows = manifest.len();
        drop(manifest.finish().unwrap().into_inner().unwrap());
        out.publish(s3).await.unwrap();
    }
    rows
}

/// A failed manifest larger than the multipart threshold is uploaded in parts of the part
/// size (the ETag S3 gives an object uploaded in parts says how many, and of what size) and
/// reads back byte for byte as the same manifest written locally; a small one is one
/// PutObject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_failed_manifest_is_uploaded_in_parts_and_reads_back_identical() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket().bucket("out").send().await.unwrap();
    let dir = scratch("multipart");
    let results = dir.join("results.csv");
    // 90,000 rows, 60,000 failed: a manifest of about 12 MiB, so 3 parts of 5 MiB.
    std::fs::write(&results, results_csv(90_000)).unwrap();
    let source = Location::Local(results);
    let local = dir.join("failed.csv");
    let small_parts = Upload::new().threshold(1 << 20).part_size(MIN_PART_SIZE);
    let rows = failed_manifests(
        &source,
        &[
            Location::Local(local.clone()),
            "s3://out/retry/failed.csv".parse().unwrap(),
        ],
        small_parts,
        &s3,
    )
    .await;
    assert_eq!(rows, 60_000);

    let written = std::fs::read(&local).unwrap();
    let text = std::str::from_utf8(&written).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 60_000);
    let pad = "x".repeat(170);
    assert_eq!(lines[0], format!("src-bucket,photos/00000001+{pad}.jpg"));
    assert_eq!(
        lines[59_999],
        format!("src-bucket,photos/00089999+{pad}.jpg")
    );
    let size = written.len() as u64;
    assert!(
        (2 * MIN_PART_SIZE + 1..=3 * MIN_PART_SIZE).contains(&size),
        "the manifest is {size} bytes, not between 2 and 3 parts"
    );
    assert_eq!(small_parts.parts(size), 3);

    let (uploaded, etag) = object(&s3, "out", "retry/failed.csv").await;
    assert!(uploaded == written, "the uploaded manifest differs");
    assert_eq!(etag, multipart_etag(&written, MIN_PART_SIZE as usize));
    assert!(etag.ends_with("-3\""), "{etag}");
    let pending = s3
        .list_multipart_uploads()
        .bucket("out")
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty(), "{:?}", pending.uploads());

    // Under the threshold (the default, 64 MiB): one PutObject, whose ETag is the MD5.
    let rows = failed_manifests(
        &source,
        &["s3://out/retry/one.csv".parse().unwrap()],
        Upload::new(),
        &s3,
    )
    .await;
    assert_eq!(rows, 60_000);
    let (uploaded, etag) = object(&s3, "out", "retry/one.csv").await;
    assert!(uploaded == written, "the uploaded manifest differs");
    assert_eq!(etag, format!("\"{}\"", hex(&Md5::digest(&written))));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A results file read from S3 gives exactly the rows, in order, that the same file gives
/// read locally, over many body chunks; a quote never closed near its end is the error it
/// is locally (its line named) after the rows before it; an error of the caller stops the
/// reading and is what is returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_read_from_s3_gives_the_rows_a_local_read_gives() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket().bucket("reports").send().await.unwrap();
    let dir = scratch("s3-rows");
    let good = results_csv(30_000);
    let mut bad = results_csv(3_000);
    bad.push_str("src-bucket,\"unclosed,,failed,PermanentFailure,200,m\n");
    bad.push_str(
        &results_csv(2)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    for (name, csv) in [("good.csv", &good), ("bad.csv", &bad)] {
        std::fs::write(dir.join(name), csv).unwrap();
        s3.put_object()
            .bucket("reports")
            .key(format!("r/{name}"))
            .body(csv.clone().into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let read = |location: String| {
        let s3 = s3.clone();
        async move {
            let mut rows: Vec<ReportRow> = Vec::new();
            let result = read_report_rows(&location.parse().unwrap(), &s3, &mut |row| {
                rows.push(row);
                Ok(())
            })
            .await;
            (rows, result)
        }
    };

    let (from_s3, result) = read("s3://reports/r/good.csv".into()).await;
    assert_eq!(result.unwrap(), ["s3://reports/r/good.csv"]);
    let (local, result) = read(dir.join("good.csv").display().to_string()).await;
    result.unwrap();
    assert_eq!(from_s3.len(), 30_000);
    assert!(
        from_s3 == local,
        "the rows read from S3 differ from the local ones"
    );
    assert_eq!(from_s3[29_999].key, decoded_key(29_999));
    assert_eq!(from_s3[29_999].message, "NoSuchKey 29999");

    let (from_s3, result) = read("s3://reports/r/bad.csv".into()).await;
    // The same typed error from S3 as from a local file: the file, the line.
    let err = result.unwrap_err();
    assert!(
        matches!(&err, AnalyzeError::Report(ReportError::Csv { file, line: 3002, .. })
            if file == "s3://reports/r/bad.csv"),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.starts_with(
            "s3://reports/r/bad.csv: line 3002: a quote opened on this line is never closed"
        ),
        "{err}"
    );
    let (local, local_err) = read(dir.join("bad.csv").display().to_string()).await;
    let local_err = local_err.unwrap_err();
    let bad = dir.join("bad.csv").display().to_string();
    assert!(
        matches!(&local_err, AnalyzeError::Report(ReportError::Csv { file, line: 3002, .. })
            if *file == bad),
        "{local_err:?}"
    );
    assert!(local_err.to_string().contains("line 3002: a quote opened"));
    assert_eq!(from_s3.len(), 3_000);
    assert!(from_s3 == local);

    let mut seen = 0;
    let err = read_report_rows(
        &"s3://reports/r/good.csv".parse().unwrap(),
        &s3,
        &mut |_| {
            seen += 1;
            if seen == 2_500 {
                Err(AnalyzeError::Stopped("enough".into()))
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AnalyzeError::Stopped(_)), "{err:?}");
    assert_eq!((err.to_string().as_str(), seen), ("enough", 2_500));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An S3 endpoint whose GetObject sends the header and `rows` rows of a results file, then
/// nothing more, without ending the body: only a reader that reads as the body arrives
/// gets to any row.
async fn stalling_s3(rows: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let csv = results_csv(rows);
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nETag: \"0\"\r\n\
                            Transfer-Encoding: chunked\r\n\r\n";
                let chunk = format!("{:x}\r\n{csv}\r\n", csv.len());
                if socket.write_all(head.as_bytes()).await.is_err()
                    || socket.write_all(chunk.as_bytes()).await.is_err()
                {
                    return;
                }
                // The rest of the body never comes; the connection stays open.
                let _ = socket.read(&mut buf).await;
            });
        }
    });
    endpoint
}

/// Rows of a results file in S3 reach the caller while its body is still arriving (here: a
/// body that never ends), as they do from a local file: the file is not fetched whole
/// first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_an_s3_results_file_are_read_as_its_body_arrives() {
    let endpoint = stalling_s3(5_000).await;
    let s3 = s3batch_testkit::client_for(&endpoint).await;
    let mut keys = Vec::new();
    let mut each = |row: ReportRow| {
        keys.push(row.key);
        if keys.len() == 1_000 {
            Err(AnalyzeError::Stopped("the first 1,000 rows are in".into()))
        } else {
            Ok(())
        }
    };
    let location: Location = "s3://stalling/results.csv".parse().unwrap();
    let read = read_report_rows(&location, &s3, &mut each);
    // Only a guard against hanging: the rows come at once when they are streamed.
    let read = tokio::time::timeout(Duration::from_secs(300), read)
        .await
        .expect("no row arrived: the body is read whole before any row is passed on");
    assert_eq!(read.unwrap_err().to_string(), "the first 1,000 rows are in");
    let expected: Vec<String> = (0..1_000).map(decoded_key).collect();
    assert!(keys == expected, "{:?}", &keys[..3]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// An inventory `manifest.json` listing `files` (key, MD5) in bucket `inv-bucket`.
fn inventory_json(files: &[(&str, &str)]) -> String {
    let files: Vec<String> = files
        .iter()
        .map(|(k, md5)| format!(r#"{{"key":"{k}","size":1,"MD5checksum":"{md5}"}}"#))
        .collect();
    format!(
        r#"{{"sourceBucket":"src-bucket","destinationBucket":"arn:aws:s3:::inv-bucket","version":"2016-11-30",
            "fileFormat":"CSV","fileSchema":"Bucket, Key, Size","files":[{}]}}"#,
        files.join(",")
    )
}

async fn echo(obj: Object) -> Result<String, TaskError> {
    Ok(format!("did {}", obj.key))
}

/// The keys a job over `source` runs, in manifest order.
async fn run_keys(source: ManifestSource) -> Vec<String> {
    let report = LocalJob::new(source)
        .run_in_process(echo, s3batch::Options::new())
        .await
        .unwrap();
    report.records.iter().map(|r| r.entry.key.clone()).collect()
}

/// An S3 Inventory in S3 (gzipped data files, one listed twice) is downloaded next to the
/// job and streamed from there, not read into memory: the same rows, in the same order,
/// as the inventory read into memory, and a job over it runs each of them; a data file
/// whose MD5 is not the manifest's is a problem naming it. A local inventory copy is
/// streamed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_inventory_is_streamed_from_downloaded_data_files() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket()
        .bucket("inv-bucket")
        .send()
        .await
        .unwrap();
    let csv = |range: std::ops::Range<usize>| {
        range
            .map(|i| format!("src-bucket,data/{i:06}+%C3%A9,{i}\n"))
            .collect::<String>()
    };
    let (a, b) = (
        gzip(csv(0..20_000).as_bytes()),
        gzip(csv(20_000..20_500).as_bytes()),
    );
    let (ka, kb) = (
        "inv/src-bucket/cfg/data/a.csv.gz",
        "inv/src-bucket/cfg/data/b.csv.gz",
    );
    let (ma, mb) = (hex(&Md5::digest(&a)), hex(&Md5::digest(&b)));
    let put = |key: &str, body: Vec<u8>| {
        s3.put_object()
            .bucket("inv-bucket")
            .key(key)
            .body(body.into())
            .send()
    };
    put(ka, a.clone()).await.unwrap();
    put(kb, b.clone()).await.unwrap();
    let manifest_key = "inv/src-bucket/cfg/2026-11-24T01-00Z/manifest.json";
    let json = inventory_json(&[(ka, &ma), (kb, &mb), (ka, &ma)]);
    put(manifest_key, json.clone().into_bytes()).await.unwrap();

    let at: Location = format!("s3://inv-bucket/{manifest_key}").parse().unwrap();
    let dir = scratch("inventory");
    let streamed = ManifestSource::fetch(&at, &s3, &dir.join("job"))
        .await
        .unwrap();
    assert!(
        streamed.in_memory().is_none(),
        "the inventory was read into memory"
    );
    let in_memory = ManifestSource::from(Manifest::load(&at, &s3).await.unwrap());
    assert_eq!(streamed.len(), 40_500);
    assert_eq!(streamed.digest(), in_memory.digest(), "not the same rows");
    let mut data: Vec<String> = std::fs::read_dir(dir.join("job/inventory"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(
        data,
        ["0.csv.gz", "1.csv.gz"],
        "each data file downloaded once"
    );
    let expected: Vec<String> = (0..20_000)
        .chain(20_000..20_500)
        .chain(0..20_000)
        .map(|i| format!("data/{i:06} é"))
        .collect();
    assert!(
        run_keys(streamed).await == expected,
        "the job ran other keys"
    );

    // A data file whose MD5 is not the manifest's: a problem naming its key.
    let wrong = inventory_json(&[(ka, &ma), (kb, &ma)]);
    put(manifest_key, wrong.into_bytes()).await.unwrap();
    let err = ManifestSource::fetch(&at, &s3, &dir.join("job-md5"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Manifest(_)), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains(&format!(
            "{kb}: MD5 {mb} does not match the manifest's {ma}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("the manifest {at} is not valid")),
        "{err}"
    );

    // A local copy, as `aws s3 sync` leaves it: streamed from its data/ folder.
    let copy = dir.join("copy");
    let local_manifest = copy.join(manifest_key);
    std::fs::create_dir_all(local_manifest.parent().unwrap()).unwrap();
    std::fs::create_dir_all(copy.join("inv/src-bucket/cfg/data")).unwrap();
    std::fs::write(&local_manifest, &json).unwrap();
    std::fs::write(copy.join(ka), &a).unwrap();
    std::fs::write(copy.join(kb), &b).unwrap();
    let local = ManifestSource::open(&local_manifest).unwrap();
    assert!(
        local.in_memory().is_none(),
        "the local inventory was read into memory"
    );
    assert_eq!(local.digest(), in_memory.digest());
    assert!(run_keys(local).await == expected, "the job ran other keys");
    local_data_changed(&copy.join(kb), &local_manifest).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A data file of a streamed inventory that changes after the check stops the job before
/// its first task, naming the file.
async fn local_data_changed(data: &Path, manifest: &Path) {
    let source = ManifestSource::open(manifest).unwrap();
    std::fs::write(data, gzip(b"src-bucket,other,1\n")).unwrap();
    let err = LocalJob::new(source)
        .run_in_process(echo, s3batch::Options::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed since it was checked"),
        "{err}"
    );
}
