//! Where manifests are read from and reports written to: a local path or an `s3://` URI.

use crate::digest::hex;
use crate::file_error::{io, FileError};
use crate::manifest::{
    check_md5, is_inventory, Inventory, Manifest, ManifestError, ManifestSource,
};
use crate::report::{JobReport, ReportScope};
use aws_sdk_s3::primitives::ByteStream;
use futures_util::{StreamExt, TryStreamExt};
use hyper::body::Bytes;
use md5::{Digest, Md5};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A local path, or `s3://bucket/key` (a key for a manifest, a prefix for a report).
///
/// ```
/// use s3batch_job::Location;
/// let l: Location = "s3://my-bucket/reports/".parse().unwrap();
/// assert_eq!(l, Location::S3 { bucket: "my-bucket".into(), key: "reports/".into() });
/// assert_eq!("out".parse::<Location>().unwrap(), Location::Local("out".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file or folder on this machine.
    Local(PathBuf),
    /// An object or prefix in S3.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix (may be empty).
        key: String,
    },
}

/// Why a file or object could not be read or written, or a location not understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An `s3://` location without a bucket.
    #[error("{given:?} names no bucket: expected s3://bucket/key")]
    NoBucket {
        /// The location given.
        given: String,
    },
    /// An empty location.
    #[error("an empty path")]
    EmptyPath,
    /// A local file or folder could not be read, written or created.
    #[error(transparent)]
    Io(#[from] FileError),
    /// An S3 request failed.
    #[error("{what}: {message}")]
    S3 {
        /// What was done, naming the object: `reading s3://bucket/key`.
        what: String,
        /// S3's answer (the SDK's error with its causes).
        message: String,
    },
    /// The manifest fetched is not one ([`ManifestSource::fetch`]).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn s3_error(what: String, e: impl std::error::Error + 'static) -> StorageError {
    StorageError::S3 {
        what,
        message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

impl FromStr for Location {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, StorageError> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(StorageError::NoBucket {
                        given: s.to_owned(),
                    });
                }
                Ok(Location::S3 {
                    bucket: bucket.into(),
                    key: key.into(),
                })
            }
            None if s.is_empty() => Err(StorageError::EmptyPath),
            None => Ok(Location::Local(s.into())),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// An S3 client from the usual AWS configuration, with an optional endpoint (path-style
/// addressing then, as local servers need; placeholder credentials on loopback).
pub async fn s3_client(endpoint: Option<&str>) -> aws_sdk_s3::Client {
    crate::aws::s3(endpoint).await
}

/// GetObject `s3://bucket/key`; the error names the object.
async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_error(format!("reading s3://{bucket}/{key}"), e))
}

/// The whole body of `s3://bucket/key`, for small objects (a `manifest.json`); the error
/// names the object. Larger data is read as it arrives instead ([`save_object`]).
pub async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, StorageError> {
    let body = get_object(s3, bucket, key)
        .await?
        .body
        .collect()
        .await
        .map_err(|e| StorageError::S3 {
            what: format!("reading s3://{bucket}/{key}"),
            message: e.to_string(),
        })?;
    Ok(body.into_bytes().to_vec())
}

/// Saves `body` (a GetObject body, of the object `name` names) to `path` as it arrives;
/// returns the MD5 of its bytes, in hex.
pub async fn save_body(
    mut body: ByteStream,
    path: &Path,
    name: &str,
) -> Result<String, StorageError> {
    let file = std::fs::File::create(path).map_err(io("creating", path))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut md5 = Md5::new();
    while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::S3 {
        what: format!("reading {name}"),
        message: e.to_string(),
    })? {
        md5.update(&chunk);
        file.write_all(&chunk).map_err(io("writing", path))?;
    }
    file.flush().map_err(io("writing", path))?;
    Ok(hex(&md5.finalize()))
}

/// Saves `s3://bucket/key` to `path` as it arrives; returns the MD5 of its bytes, in hex.
pub async fn save_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<String, StorageError> {
    let out = get_object(s3, bucket, key).await?;
    save_body(out.body, path, &format!("s3://{bucket}/{key}")).await
}

/// What [`read_object`]'s reader says when the receiving side has stopped.
const STOPPED: &str = "stopped reading";

/// Reads `s3://bucket/key` as it arrives with `parse`, a synchronous reader (the crate's CSV
/// readers are), which passes items to `each`: memory holds a few chunks of the body and a
/// few batches of items, whatever the object's size.
///
/// `parse` runs on a blocking thread over the body, fed by a task that downloads it; items
/// come back to `each`, on the caller's task, in batches. An error of `each` stops the
/// download and the parser and is returned; a parse error is returned after the items
/// before it have been passed to `each`.
pub(crate) async fn read_object<T: Send + 'static>(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    parse: impl FnOnce(&mut dyn Read, &mut dyn FnMut(T) -> Result<(), String>) -> Result<(), String>
        + Send
        + 'static,
    each: &mut dyn FnMut(T) -> Result<(), String>,
) -> Result<(), String> {
    const CHUNKS_IN_FLIGHT: usize = 16;
    const BATCH: usize = 1024;
    const BATCHES_IN_FLIGHT: usize = 4;
    let out = get_object(s3, bucket, key)
        .await
        .map_err(|e| e.to_string())?;
    let name = format!("s3://{bucket}/{key}");
    let (chunks, chunks_rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let (batches_tx, mut batches) = tokio::sync::mpsc::channel::<Vec<T>>(BATCHES_IN_FLIGHT);
    let mut body = out.body;
    let feeding = name.clone();
    let feeder = tokio::spawn(async move {
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(e) => Err(format!("reading {feeding}: {e}")),
            };
            let failed = chunk.is_err();
            if chunks.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let parser = tokio::task::spawn_blocking(move || {
        let mut input = ChunkReader {
            chunks: chunks_rx,
            chunk: Bytes::new(),
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut send = |item: T| {
            batch.push(item);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                batches_tx
                    .blocking_send(full)
                    .map_err(|_| STOPPED.to_owned())?;
            }
            Ok(())
        };
        let parsed = parse(&mut input, &mut send);
        if !batch.is_empty() {
            // The rows before a parse error are passed on too, as a local file's would be.
            batches_tx
                .blocking_send(batch)
                .map_err(|_| STOPPED.to_owned())?;
        }
        parsed
    });
    let mut passed = Ok(());
    'read: while let Some(batch) = batches.recv().await {
        for item in batch {
            if let Err(e) = each(item) {
                passed = Err(e);
                break 'read;
            }
        }
    }
    // Stops the download and, as the batches are no longer received, the parser.
    feeder.abort();
    drop(batches);
    passed?;
    parser
        .await
        .map_err(|e| format!("reading {name}: the reader stopped: {e}"))?
}

/// The body chunks [`read_object`]'s feeder sends, as a [`Read`] (on a blocking thread).
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// The smallest part of a multipart upload S3 takes (all but the last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The most parts a multipart upload may have.
const MAX_PARTS: u64 = 10_000;
/// The largest object one PutObject writes.
const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// How a local file is written to S3: in one PutObject up to a threshold, by multipart upload
/// above it (PutObject takes at most 5 GiB), its parts streamed from the file, so memory
/// does not grow with the file.
///
/// ```
/// use s3batch_job::storage::{Upload, MIN_PART_SIZE};
/// let upload = Upload::new().threshold(1 << 20).part_size(MIN_PART_SIZE);
/// assert_eq!(upload.parts(12 << 20), 3);
/// assert_eq!(upload.parts(1 << 20), 1);
/// assert_eq!(Upload::new().part_size(1).parts(12 << 20), 1, "under the default threshold");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload {
    threshold: u64,
    part_size: u64,
    concurrency: usize,
}

impl Default for Upload {
    fn default() -> Self {
        Self {
            threshold: 64 * 1024 * 1024,
            part_size: 64 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

impl Upload {
    /// PutObject up to 64 MiB, parts of 64 MiB above, 4 parts at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files larger than `bytes` are uploaded in parts (never more than 5 GiB in one
    /// PutObject, whatever is given).
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes.min(MAX_PUT_SIZE);
        self
    }

    /// The size of each part but the last: at least [`MIN_PART_SIZE`], and raised as needed
    /// for a file to fit in S3's 10,000 parts.
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// How many parts are uploaded at once (at least 1).
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.concurrency = parts.max(1);
        self
    }

    /// How many requests write a file of `size` bytes: 1 (PutObject) up to the threshold,
    /// else the number of parts.
    pub fn parts(&self, size: u64) -> u64 {
        if size <= self.threshold {
            1
        } else {
            size.div_ceil(self.part_size_for(size))
        }
    }

    fn part_size_for(&self, size: u64) -> u64 {
        self.part_size.max(size.div_ceil(MAX_PARTS))
    }

    /// Writes the file at `path` to `s3://bucket/key`. A multipart upload that fails is
    /// aborted (AbortMultipartUpload), so no parts are left behind to pay for.
    pub async fn file(
        &self,
        s3: &aws_sdk_s3::Client,
        path: &Path,
        bucket: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        let fail = |message: String| StorageError::S3 {
            what: format!("writing s3://{bucket}/{key}"),
            message,
        };
        let size = std::fs::metadata(path).map_err(io("reading", path))?.len();
        if size <= self.threshold {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
            return s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| fail(aws_sdk_s3::error::DisplayErrorContext(e).to_string()));
        }
        use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
        let created = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| fail(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let id = created
            .upload_id()
            .ok_or_else(|| fail("CreateMultipartUpload returned no UploadId".into()))?
            .to_owned();
        let part_size = self.part_size_for(size);
        let uploaded = async {
            let parts: Vec<CompletedPart> = futures_util::stream::iter(0..size.div_ceil(part_size))
                .map(|i| {
                    let (offset, number) = (i * part_size, i as i32 + 1);
                    let length = part_size.min(size - offset);
                    let id = &id;
                    async move {
                        let body = ByteStream::read_from()
                            .path(path)
                            .offset(offset)
                            .length(aws_sdk_s3::primitives::Length::Exact(length))
                            .build()
                            .await
                            .map_err(|e| format!("reading {}: {e}", path.display()))?;
                        let out = s3
                            .upload_part()
                            .bucket(bucket)
                            .key(key)
                            .upload_id(id)
                            .part_number(number)
                            .content_length(length as i64)
                            .checksum_algorithm(ChecksumAlgorithm::Crc32)
                            .body(body)
                            .send()
                            .await
                            .map_err(|e| {
                                format!(
                                    "part {number}: {}",
                                    aws_sdk_s3::error::DisplayErrorContext(e)
                                )
                            })?;
                        Ok::<_, String>(
                            CompletedPart::builder()
                                .part_number(number)
                                .set_e_tag(out.e_tag)
                                .set_checksum_crc32(out.checksum_crc32)
                                .build(),
                        )
                    }
                })
                .buffered(self.concurrency)
                .try_collect()
                .await?;
            s3.complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
        }
        .await;
        if let Err(e) = uploaded {
            let aborted = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .send()
                .await;
            return Err(fail(match aborted {
                Ok(_) => format!("{e} (the multipart upload was aborted)"),
                Err(a) => format!(
                    "{e}; aborting the multipart upload {id} failed too: {}",
                    aws_sdk_s3::error::DisplayErrorContext(a)
                ),
            }));
        }
        Ok(())
    }
}

impl ManifestSource {
    /// A manifest from a local path or S3, streamed: a local one is checked where it is
    /// ([`ManifestSource::open`]); an `s3://` one is downloaded into `dir` (created if need
    /// be) as it arrives, then checked and read from there: a CSV manifest as
    /// `dir/manifest.csv`; an S3 Inventory `manifest.json` (a key ending in `.json`, or an
    /// object starting with `{`) with its data files, from the inventory's destination
    /// bucket, in `dir/inventory/`. The files must stay until the job is done.
    pub async fn fetch(
        location: &Location,
        s3: &aws_sdk_s3::Client,
        dir: &Path,
    ) -> Result<ManifestSource, StorageError> {
        let (bucket, key) = match location {
            Location::Local(path) => return Ok(ManifestSource::open(path)?),
            Location::S3 { bucket, key } => (bucket, key),
        };
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let path = dir.join("manifest.csv");
        save_object(s3, bucket, key, &path).await?;
        let mut head = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .map_err(io("reading", &path))?;
        let source = if is_inventory(key, &head) {
            let json = std::fs::read(&path).map_err(io("reading", &path))?;
            let _ = std::fs::remove_file(&path);
            fetch_inventory(&json, s3, dir).await
        } else {
            ManifestSource::open_csv(&path)
        };
        Ok(source.map_err(|e| e.of(location.to_string()))?)
    }
}

/// The S3 Inventory whose `manifest.json` is `json`, its data files downloaded (each once)
/// from the inventory's destination bucket into `dir/inventory/` and checked against their
/// MD5, as a source streamed from there. A data file that cannot be read is a problem
/// naming its key, as a bad row is.
pub async fn fetch_inventory(
    json: &[u8],
    s3: &aws_sdk_s3::Client,
    dir: &Path,
) -> Result<ManifestSource, ManifestError> {
    let inventory = Inventory::parse(json)?;
    let data = dir.join("inventory");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)
        .map_err(|e| ManifestError::from_message(format!("creating {}: {e}", data.display())))?;
    let mut saved: std::collections::HashMap<&str, Result<PathBuf, String>> =
        std::collections::HashMap::new();
    let mut files = Vec::with_capacity(inventory.files.len());
    for (i, f) in inventory.files.iter().enumerate() {
        if !saved.contains_key(f.key.as_str()) {
            let path = data.join(format!(
                "{i}.csv{}",
                if f.key.ends_with(".gz") { ".gz" } else { "" }
            ));
            let got = save_object(s3, &inventory.destination, &f.key, &path)
                .await
                .map_err(|e| e.to_string())
                .and_then(|md5| match &f.md5 {
                    Some(expected) => check_md5(&md5, expected).map_err(|e| e.to_string()),
                    None => Ok(()),
                })
                .map(|()| path);
            saved.insert(&f.key, got);
        }
        files.push(saved[f.key.as_str()].clone());
    }
    ManifestSource::from_inventory_files(&inventory, files)
}

impl Manifest {
    /// Reads a manifest from a local path or S3 (`s3` is used only for `s3://`) into memory:
    /// an S3 Inventory `manifest.json` (its data files from the inventory's destination
    /// bucket), or a CSV manifest. A job over a large manifest streams it instead:
    /// [`ManifestSource::fetch`].
    pub async fn load(
        location: &Location,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Manifest, ManifestError> {
        match location {
            Location::Local(path) => Manifest::from_path(path),
            Location::S3 { bucket, key } => {
                let bytes = get(s3, bucket, key)
                    .await
                    .map_err(|e| ManifestError::from_message(e.to_string()))?;
                if !is_inventory(key, &bytes) {
                    return Manifest::from_csv(&bytes);
                }
                // Fetch the data files first: reading the inventory takes a synchronous
                // callback. They are in the bucket `destinationBucket` names, at their keys as
                // given: S3 keys are names, not paths.
                let inventory = Inventory::parse(&bytes)?;
                let destination = &inventory.destination;
                let mut files = std::collections::HashMap::new();
                for f in &inventory.files {
                    if !files.contains_key(&f.key) {
                        let got = get(s3, destination, &f.key).await;
                        files.insert(f.key.clone(), got.map_err(|e| e.to_string()));
                    }
                }
                Manifest::read_inventory(&inventory, |b, k| match files.get(k) {
                    Some(got) if b == destination => got.clone(),
                    _ => Err(format!("s3://{b}/{k} was not fetched")),
                })
            }
        }
    }
}

impl JobReport {
    /// Writes the completion report under `location` (a folder, or an `s3://bucket/prefix`)
    /// and returns where its `manifest.json` is.
    pub async fn write(
        &self,
        location: &Location,
        scope: ReportScope,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Location, StorageError> {
        match location {
            Location::Local(dir) => {
                let files = self.render(scope, "", "");
                let mut manifest = dir.clone();
                for (key, bytes) in files {
                    let path = dir.join(&key);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
                    }
                    std::fs::write(&path, bytes).map_err(io("writing", &path))?;
                    manifest = path;
                }
                Ok(Location::Local(manifest))
            }
            Location::S3 { bucket, key } => {
                let prefix = if key.is_empty() || key.ends_with('/') {
                    key.clone()
                } else {
                    format!("{key}/")
                };
                let mut last = String::new();
                for (key, bytes) in self.render(scope, bucket, &prefix) {
                    s3.put_object()
                        .bucket(bucket)
                        .key(&key)
                        .body(bytes.into())
                        .send()
                        .await
                        .map_err(|e| s3_error(format!("writing s3://{bucket}/{key}"), e))?;
                    last = key;
                }
                Ok(Location::S3 {
                    bucket: bucket.clone(),
                    key: last,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
    use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
    use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
    use aws_sdk_s3::operation::upload_part::UploadPartError;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

    fn client(rules: &[&Rule]) -> aws_sdk_s3::Client {
        let interceptor = rules.iter().fold(
            MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
            |i, rule| i.with_rule(rule),
        );
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "a", "b", None, None, "test",
                ))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    /// A part that cannot be uploaded aborts the multipart upload (no parts left behind to
    /// pay for), and the upload is not completed; the error says both.
    #[tokio::test]
    async fn a_failed_part_aborts_the_multipart_upload() {
        let create = mock!(aws_sdk_s3::Client::create_multipart_upload)
            .match_requests(|r| r.bucket() == Some("out") && r.key() == Some("big.csv"))
            .then_output(|| {
                CreateMultipartUploadOutput::builder()
                    .upload_id("upload-1")
                    .build()
            });
        let part = mock!(aws_sdk_s3::Client::upload_part).then_error(|| {
            UploadPartError::generic(
                aws_sdk_s3::error::ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build(),
            )
        });
        let complete = mock!(aws_sdk_s3::Client::complete_multipart_upload)
            .then_output(|| CompleteMultipartUploadOutput::builder().build());
        let abort = mock!(aws_sdk_s3::Client::abort_multipart_upload)
            .match_requests(|r| r.upload_id() == Some("upload-1") && r.key() == Some("big.csv"))
            .then_output(|| AbortMultipartUploadOutput::builder().build());
        let s3 = client(&[&create, &part, &complete, &abort]);
        let path =
            std::env::temp_dir().join(format!("s3batch-storage-abort-{}.csv", std::process::id()));
        std::fs::write(&path, vec![b'x'; 2 * MIN_PART_SIZE as usize + 10]).unwrap();
        let upload = Upload::new().threshold(1).part_size(MIN_PART_SIZE);
        let err = upload.file(&s3, &path, "out", "big.csv").await.unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(&err, StorageError::S3 { what, .. } if what == "writing s3://out/big.csv"),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.starts_with("writing s3://out/big.csv: part 1: ")
                && err.contains("AccessDenied")
                && err.ends_with("(the multipart upload was aborted)"),
            "{err}"
        );
        assert_eq!(create.num_calls(), 1);
        assert!(part.num_calls() >= 1);
        assert_eq!(abort.num_calls(), 1);
        assert_eq!(complete.num_calls(), 0);
    }

    #[test]
    fn parts_are_at_least_the_minimum_and_at_most_ten_thousand() {
        let upload = Upload::new().part_size(1).threshold(0);
        assert_eq!(upload.parts(MIN_PART_SIZE), 1);
        assert_eq!(upload.parts(MIN_PART_SIZE + 1), 2);
        // 100 GiB in 5 MiB parts would be 20,480 parts: the parts grow instead.
        assert_eq!(upload.parts(100 << 30), 10_000);
        assert_eq!(
            upload.part_size_for(100 << 30),
            (100u64 << 30).div_ceil(10_000)
        );
        // Never more than 5 GiB in one PutObject.
        assert_eq!(Upload::new().threshold(u64::MAX).parts(6 << 30), 96);
    }
}
