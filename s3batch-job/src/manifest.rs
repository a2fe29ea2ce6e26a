//! Manifests: the list of objects a job runs over.
//!
//! Two formats, as S3 Batch Operations reads them:
//! - `S3BatchOperations_CSV_20180820`: rows `bucket,key` or `bucket,key,versionId` (all rows
//!   or none with a version), keys URL-encoded;
//! - an S3 Inventory report's `manifest.json` (`S3InventoryReport_CSV_20161130`), whose CSV
//!   data files (gzipped or not) list `Bucket`, `Key` and maybe `VersionId`.
//!
//! Keys are decoded form-style with [`s3batch::key::decode_key`]: `%XX` are UTF-8 bytes and
//! `+` is a space, the way S3 Inventory writes keys. Write a literal `+` as `%2B`.
//!
//! Every problem is collected with its line number; a manifest with any problem is rejected
//! as a whole, so a job never starts on part of a list.

use md5::{Digest, Md5};
use serde::Deserialize;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One object of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestEntry {
    /// The bucket name.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// The version, when the manifest names one.
    pub version_id: Option<String>,
}

impl ManifestEntry {
    /// An entry for `key` (decoded) in `bucket`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
        }
    }

    /// Sets the version id.
    pub fn with_version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }
}

/// A list of objects to run a job over.
///
/// ```
/// use s3batch_job::Manifest;
/// let m = Manifest::from_csv(b"my-bucket,photos/a%20b%2Bc.jpg\nmy-bucket,caf%C3%A9.txt\n").unwrap();
/// assert_eq!(m.entries()[0].key, "photos/a b+c.jpg");
/// assert_eq!(m.entries()[1].key, "café.txt");
///
/// let err = Manifest::from_csv(b"b,ok\nb,bad%zz\nb,k,v1\n").unwrap_err();
/// assert!(err.to_string().contains("line 2:"), "{err}");
/// assert!(err.to_string().contains("line 3:"), "{err}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

/// Why a manifest was rejected: every problem found, each with its line when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    problems: Vec<String>,
}

impl ManifestError {
    pub(crate) fn from_message(message: impl Into<String>) -> Self {
        Self::whole(message)
    }

    fn whole(message: impl Into<String>) -> Self {
        Self {
            problems: vec![message.into()],
        }
    }

    /// Each problem, as `line N: …` or a message about the whole manifest.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        write!(f, "the manifest is not valid; the job was not started")?;
        for p in self.problems.iter().take(SHOWN) {
            write!(f, "\n  {p}")?;
        }
        if self.problems.len() > SHOWN {
            write!(f, "\n  … and {} more", self.problems.len() - SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// A manifest of the given entries.
    pub fn new(entries: Vec<ManifestEntry>) -> Self {
        Self { entries }
    }

    /// The objects, in manifest order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads an `S3BatchOperations_CSV_20180820` manifest.
    pub fn from_csv(bytes: &[u8]) -> Result<Self, ManifestError> {
        let mut problems = Vec::new();
        let entries = read_csv(bytes, &CsvColumns::batch(), "", &mut problems);
        if problems.is_empty() {
            Ok(Self { entries })
        } else {
            Err(ManifestError { problems })
        }
    }

    /// Reads an S3 Inventory `manifest.json`; `fetch` returns the bytes of each data file
    /// named in it (by its `key` in the inventory's destination bucket).
    pub fn from_inventory(
        manifest_json: &[u8],
        mut fetch: impl FnMut(&str, &str) -> Result<Vec<u8>, String>,
    ) -> Result<Self, ManifestError> {
        let inventory: Inventory = serde_json::from_slice(manifest_json).map_err(|e| {
            ManifestError::whole(format!(
                "manifest.json is not an S3 Inventory manifest: {e}"
            ))
        })?;
        if !inventory.file_format.eq_ignore_ascii_case("CSV") {
            return Err(ManifestError::whole(format!(
                "S3 Inventory fileFormat {:?} is not supported; only CSV is",
                inventory.file_format
            )));
        }
        let columns = CsvColumns::inventory(&inventory.file_schema)?;
        let destination =
            destination_bucket(&inventory.destination_bucket).map_err(ManifestError::whole)?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for file in &inventory.files {
            let data = match fetch(&destination, &file.key) {
                Ok(d) => d,
                Err(e) => {
                    problems.push(format!("{}: {e}", file.key));
                    continue;
                }
            };
            if let Some(expected) = &file.md5 {
                let got = hex(&Md5::digest(&data));
                if !got.eq_ignore_ascii_case(expected) {
                    problems.push(format!(
                        "{}: MD5 {got} does not match the manifest's {expected}",
                        file.key
                    ));
                    continue;
                }
            }
            let data = if file.key.ends_with(".gz") {
                let mut out = Vec::new();
                if let Err(e) = flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut out) {
                    problems.push(format!("{}: not gzip: {e}", file.key));
                    continue;
                }
                out
            } else {
                data
            };
            entries.extend(read_csv(
                &data,
                &columns,
                &format!("{}: ", file.key),
                &mut problems,
            ));
        }
        if problems.is_empty() {
            Ok(Self { entries })
        } else {
            Err(ManifestError { problems })
        }
    }

    /// Reads a local manifest: `manifest.json` (or any file starting with `{`) as an S3
    /// Inventory manifest, anything else as CSV.
    ///
    /// An inventory's data files are read only from the local copy of the inventory's
    /// configuration folder, see [`inventory_data_path`]: S3 writes `manifest.json` to
    /// `<prefix>/<source-bucket>/<config-id>/<date>/manifest.json` and the data files to
    /// `<prefix>/<source-bucket>/<config-id>/data/<name>`, so a data file is
    /// `data/<name>` in the folder two levels above `manifest.json`. A data file that is not
    /// there is an error naming its key.
    pub fn from_path(path: &Path) -> Result<Self, ManifestError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ManifestError::whole(format!("reading {}: {e}", path.display())))?;
        if is_inventory(&path.to_string_lossy(), &bytes) {
            let root = inventory_root(path).map_err(ManifestError::whole)?;
            Self::from_inventory(&bytes, |_, key| {
                let found = inventory_data_path(&root, key)?;
                std::fs::read(&found).map_err(|e| format!("reading {}: {e}", found.display()))
            })
        } else {
            Self::from_csv(&bytes)
        }
    }
}

/// Whether a manifest named `name` with content `bytes` is an S3 Inventory `manifest.json`.
pub(crate) fn is_inventory(name: &str, bytes: &[u8]) -> bool {
    name.ends_with(".json")
        || bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{')
}

/// The local copy of an inventory configuration's folder (`<prefix>/<source-bucket>/<config-id>/`
/// in the destination bucket) for the `manifest.json` at `manifest`: the folder two levels
/// above it, symlinks resolved.
fn inventory_root(manifest: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(manifest)
        .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
    real.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "{} is not in a <config-id>/<date>/ folder of an S3 Inventory copy, so its data \
                 files cannot be located",
                real.display()
            )
        })
}

/// Where the data file with `key` of a local S3 Inventory copy is, given `root`, the copy
/// of the configuration's folder (see [`Manifest::from_path`]).
///
/// S3 writes an inventory's data files at `<prefix>/<source-bucket>/<config-id>/data/<name>`
/// and its `manifest.json` at `<prefix>/<source-bucket>/<config-id>/<date>/manifest.json`.
/// So a key must end in `data/<name>` and maps to exactly one path, `<root>/data/<name>`;
/// the part of the key before `data/` is not used to find the file (it may be a prefix the
/// copy left out). Rejected, as an error naming the key:
/// - a key not of that form, or with a `.` or `..` part anywhere;
/// - a file that is not there (no other folder is searched);
/// - a path that leaves `root` once symlinks are resolved (canonicalized and checked).
///
/// `root` must be canonical (as [`std::fs::canonicalize`] returns it).
pub fn inventory_data_path(root: &Path, key: &str) -> Result<PathBuf, String> {
    let parts: Vec<&str> = key.split('/').collect();
    if parts.iter().any(|p| matches!(*p, "." | "..")) {
        return Err("a data file key with a `.` or `..` part is not read".into());
    }
    let name = match parts.as_slice() {
        [.., "data", name] if !name.is_empty() => *name,
        _ => {
            return Err(
                "not an S3 Inventory data file key (expected <prefix>/<source-bucket>/<config-id>/data/<name>)"
                    .into(),
            )
        }
    };
    let path = root.join("data").join(name);
    let real = std::fs::canonicalize(&path).map_err(|e| {
        format!(
            "data file not found at {} ({e}); a local inventory's data files must be in the \
             data/ folder next to manifest.json's folder",
            path.display()
        )
    })?;
    if !real.starts_with(root) {
        return Err(format!(
            "{} leads outside {} (to {}); not read",
            path.display(),
            root.display(),
            real.display()
        ));
    }
    if !real.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok(real)
}

/// The bucket of an inventory's `destinationBucket`, an S3 bucket ARN
/// (`arn:<partition>:s3:::<bucket>`): where its data files are.
pub(crate) fn destination_bucket(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "s3", "", "", bucket]
            if !partition.is_empty() && valid_bucket(bucket) =>
        {
            Ok((*bucket).to_owned())
        }
        _ if arn.is_empty() => Err(
            "the S3 Inventory manifest has no destinationBucket (the bucket of its data files)"
                .into(),
        ),
        _ => Err(format!(
            "destinationBucket {arn:?} is not an S3 bucket ARN (arn:aws:s3:::bucket-name)"
        )),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inventory {
    #[serde(default)]
    destination_bucket: String,
    file_format: String,
    file_schema: String,
    files: Vec<InventoryFile>,
}

#[derive(Deserialize)]
struct InventoryFile {
    key: String,
    #[serde(rename = "MD5checksum")]
    md5: Option<String>,
}

/// Where bucket, key and version are in a CSV row.
struct CsvColumns {
    bucket: usize,
    key: usize,
    version: Option<usize>,
    /// Batch manifests: 2 or 3 columns, the same on every row. Inventory: exactly this many.
    fixed: Option<usize>,
}

impl CsvColumns {
    fn batch() -> Self {
        Self {
            bucket: 0,
            key: 1,
            version: Some(2),
            fixed: None,
        }
    }

    fn inventory(schema: &str) -> Result<Self, ManifestError> {
        let names: Vec<&str> = schema.split(',').map(str::trim).collect();
        let find = |n: &str| names.iter().position(|c| c.eq_ignore_ascii_case(n));
        let (Some(bucket), Some(key)) = (find("Bucket"), find("Key")) else {
            return Err(ManifestError::whole(format!(
                "S3 Inventory fileSchema {schema:?} has no Bucket or no Key column"
            )));
        };
        Ok(Self {
            bucket,
            key,
            version: find("VersionId"),
            fixed: Some(names.len()),
        })
    }
}

fn read_csv(
    bytes: &[u8],
    columns: &CsvColumns,
    file: &str,
    problems: &mut Vec<String>,
) -> Vec<ManifestEntry> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut entries = Vec::new();
    let mut first_width: Option<(usize, u64)> = None;
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                problems.push(format!("{file}line {line}: {e}"));
                break;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        match read_row(&record, columns, &mut first_width, line) {
            Ok(entry) => entries.push(entry),
            Err(message) => problems.push(format!("{file}line {line}: {message}")),
        }
    }
    entries
}

fn read_row(
    record: &csv::ByteRecord,
    columns: &CsvColumns,
    first_width: &mut Option<(usize, u64)>,
    line: u64,
) -> Result<ManifestEntry, String> {
    let width = record.len();
    match columns.fixed {
        Some(n) if width != n => {
            return Err(format!("{width} columns, but the fileSchema names {n}"));
        }
        Some(_) => {}
        None => {
            if !(2..=3).contains(&width) {
                return Err(format!(
                    "{width} column(s); expected bucket,key or bucket,key,versionId"
                ));
            }
            match first_width {
                None => *first_width = Some((width, line)),
                Some((w, first)) if *w != width => {
                    return Err(format!(
                        "{width} columns but line {first} has {w}: give a versionId on all rows or on none"
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let field = |i: usize, name: &str| {
        std::str::from_utf8(&record[i])
            .map(str::to_owned)
            .map_err(|_| format!("the {name} is not valid UTF-8"))
    };
    let bucket = field(columns.bucket, "bucket")?;
    if !valid_bucket(&bucket) {
        return Err(format!("{bucket:?} is not a bucket name"));
    }
    let raw_key = field(columns.key, "key")?;
    let key = s3batch::key::decode_key(&raw_key)
        .map_err(|e| e.to_string().replacen("s3Key", "key", 1))?;
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > 1024 {
        return Err(format!(
            "the key is {} bytes; S3 keys are at most 1,024",
            key.len()
        ));
    }
    let version_id = match columns.version {
        Some(i) if i < width => {
            let v = field(i, "versionId")?;
            match (v.is_empty(), columns.fixed) {
                (false, _) => Some(v),
                (true, Some(_)) => None,
                (true, None) => return Err("the versionId column is empty".into()),
            }
        }
        _ => None,
    };
    Ok(ManifestEntry {
        bucket,
        key,
        version_id,
    })
}

/// A loose check that rejects what can never be a bucket name: 3–255 characters of ASCII
/// letters (either case), digits, `.`, `-` and `_`. Today's names are 3–63 characters of
/// lowercase letters, digits, `.` and `-`; buckets created in us-east-1 before March 2018 may
/// have names of up to 255 characters with uppercase letters and underscores, and S3 still
/// serves them. No `/`, `:`, whitespace or other characters, ever.
pub(crate) fn valid_bucket(b: &str) -> bool {
    (3..=255).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_versions() {
        let m =
            Manifest::from_csv(b"bucket-one,a+b%2Bc\nbucket-one,d/..%2F%F0%9F%98%80\n").unwrap();
        assert_eq!(m.entries()[0], ManifestEntry::new("bucket-one", "a b+c"));
        assert_eq!(m.entries()[1].key, "d/../😀");
        let v = Manifest::from_csv(b"bucket-one,k,v1\r\nbucket-one,\"x,y\",v2\r\n").unwrap();
        assert_eq!(
            v.entries()[1],
            ManifestEntry::new("bucket-one", "x,y").with_version_id("v2")
        );
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = b"bucket-one,ok\nbucket-one\nBAD BUCKET,k\nbucket-one,100%\nbucket-one,%FF\nbucket-one,k,v\nbucket-one,\n";
        let err = Manifest::from_csv(text).unwrap_err();
        let p = err.problems();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].starts_with("line 2: 1 column"), "{}", p[0]);
        assert!(p[1].starts_with("line 3: \"BAD BUCKET\""), "{}", p[1]);
        assert!(p[2].starts_with("line 4: key \"100%\""), "{}", p[2]);
        assert!(
            p[3].contains("line 5") && p[3].contains("UTF-8"),
            "{}",
            p[3]
        );
        assert!(
            p[4].starts_with("line 6: 3 columns but line 1 has 2"),
            "{}",
            p[4]
        );
        assert!(p[5].starts_with("line 7: the key is empty"), "{}", p[5]);
        assert!(err.to_string().starts_with("the manifest is not valid"));
    }

    #[test]
    fn legacy_bucket_names_are_accepted_and_impossible_ones_rejected() {
        let long = "B".repeat(255);
        for ok in [
            "bucket-one",
            "My_Old.Bucket",
            "UPPER",
            "a_b",
            "abc",
            long.as_str(),
        ] {
            assert!(valid_bucket(ok), "{ok:?}");
            let m = Manifest::from_csv(format!("{ok},k\n").as_bytes()).unwrap();
            assert_eq!(m.entries()[0].bucket, ok);
        }
        let too_long = "b".repeat(256);
        for bad in [
            "",
            "ab",
            "a/b",
            "arn:aws:s3:::b",
            "has space",
            "tab\there",
            "new\nline",
            "caf\u{e9}",
            "a+b",
            too_long.as_str(),
        ] {
            assert!(!valid_bucket(bad), "{bad:?}");
        }
    }

    #[test]
    fn destination_bucket_arns() {
        assert_eq!(
            destination_bucket("arn:aws:s3:::inv-bucket").unwrap(),
            "inv-bucket"
        );
        assert_eq!(
            destination_bucket("arn:aws-cn:s3:::Legacy_Bucket").unwrap(),
            "Legacy_Bucket"
        );
        for bad in [
            "",
            "arn:aws:s3:::",
            "inv-bucket",
            "arn:aws:s3:us-east-1:123456789012:accesspoint/ap",
            "arn:aws:s3:::inv-bucket/prefix",
            "arn::s3:::inv-bucket",
        ] {
            assert!(destination_bucket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bom_and_empty_lines_are_fine() {
        let m = Manifest::from_csv(b"\xEF\xBB\xBFbucket-one,k\n\nbucket-one,l\n").unwrap();
        assert_eq!(m.len(), 2);
        assert!(Manifest::from_csv(b"").unwrap().is_empty());
    }

    #[test]
    fn inventory_manifest_reads_gzipped_files_and_checks_md5() {
        use std::io::Write;
        let csv =
            b"\"src-bucket\",\"a+b%2Bc.txt\",\"v1\",\"true\"\n\"src-bucket\",\"d\",\"\",\"true\"\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(csv).unwrap();
        let gz = gz.finish().unwrap();
        let md5 = hex(&Md5::digest(&gz));
        let json = format!(
            r#"{{"sourceBucket":"src-bucket","destinationBucket":"arn:aws:s3:::inv-bucket","version":"2016-11-30",
            "fileFormat":"CSV","fileSchema":"Bucket, Key, VersionId, IsLatest",
            "files":[{{"key":"inv/src-bucket/cfg/data/1.csv.gz","size":1,"MD5checksum":"{md5}"}}]}}"#
        );
        let m = Manifest::from_inventory(json.as_bytes(), |bucket, key| {
            assert_eq!(
                (bucket, key),
                ("inv-bucket", "inv/src-bucket/cfg/data/1.csv.gz")
            );
            Ok(gz.clone())
        })
        .unwrap();
        assert_eq!(
            m.entries(),
            [
                ManifestEntry::new("src-bucket", "a b+c.txt").with_version_id("v1"),
                ManifestEntry::new("src-bucket", "d"),
            ]
        );
        let bad = json.replace(&md5, "00");
        let err = Manifest::from_inventory(bad.as_bytes(), |_, _| Ok(gz.clone())).unwrap_err();
        assert!(err.problems()[0].contains("MD5"), "{err}");
        let orc = json.replace("\"CSV\"", "\"ORC\"");
        assert!(Manifest::from_inventory(orc.as_bytes(), |_, _| Ok(vec![])).is_err());
    }

    #[test]
    fn local_inventory_files_are_found_in_the_config_folder() {
        let dir = std::env::temp_dir().join(format!("s3batch-inv-{}", std::process::id()));
        let data = dir.join("cfg/data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(dir.join("cfg/2024-01-01T00-00Z")).unwrap();
        std::fs::write(data.join("1.csv"), "bucket-one,k\n").unwrap();
        let manifest = dir.join("cfg/2024-01-01T00-00Z/manifest.json");
        std::fs::write(
            &manifest,
            r#"{"destinationBucket":"arn:aws:s3:::inv","fileFormat":"CSV","fileSchema":"Bucket, Key",
               "files":[{"key":"prefix/src/cfg/data/1.csv"}]}"#,
        )
        .unwrap();
        let m = Manifest::from_path(&manifest).unwrap();
        assert_eq!(m.entries(), [ManifestEntry::new("bucket-one", "k")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
