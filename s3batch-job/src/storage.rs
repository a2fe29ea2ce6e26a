//! Where manifests are read from and reports written to: a local path or an `s3://` URI.

use crate::manifest::{is_inventory, Inventory, Manifest, ManifestError};
use crate::report::{JobReport, ReportScope};
use std::fmt;
use std::path::PathBuf;
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

impl FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!("{s:?} names no bucket: expected s3://bucket/key"));
                }
                Ok(Location::S3 {
                    bucket: bucket.into(),
                    key: key.into(),
                })
            }
            None if s.is_empty() => Err("an empty path".into()),
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

/// The whole body of `s3://bucket/key`; the error names the object.
pub(crate) async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, String> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

impl Manifest {
    /// Reads a manifest from a local path or S3 (`s3` is used only for `s3://`): an S3
    /// Inventory `manifest.json` (its data files from the inventory's destination bucket), or
    /// a CSV manifest.
    pub async fn load(
        location: &Location,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Manifest, ManifestError> {
        match location {
            Location::Local(path) => Manifest::from_path(path),
            Location::S3 { bucket, key } => {
                let bytes = get(s3, bucket, key).await.map_err(whole)?;
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
                        files.insert(f.key.clone(), get(s3, destination, &f.key).await);
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

fn whole(message: String) -> ManifestError {
    ManifestError::from_message(message)
}

impl JobReport {
    /// Writes the completion report under `location` (a folder, or an `s3://bucket/prefix`)
    /// and returns where its `manifest.json` is.
    pub async fn write(
        &self,
        location: &Location,
        scope: ReportScope,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Location, String> {
        match location {
            Location::Local(dir) => {
                let files = self.render(scope, "", "");
                let mut manifest = dir.clone();
                for (key, bytes) in files {
                    let path = dir.join(&key);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
                    }
                    std::fs::write(&path, bytes)
                        .map_err(|e| format!("writing {}: {e}", path.display()))?;
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
                        .map_err(|e| {
                            format!(
                                "writing s3://{bucket}/{key}: {}",
                                aws_sdk_s3::error::DisplayErrorContext(e)
                            )
                        })?;
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
