//! The `ItemReader`s: items streamed from an S3 prefix listing, or from a CSV, JSON or JSONL
//! object or an S3 Inventory (`MANIFEST`), on an S3 endpoint or in a local folder ([`Store`]). Items go through a bounded
//! channel, so a reader never holds more than a few hundred of them.

use crate::asl::{CsvHeader, InputType};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Where `s3://bucket/key` is read from and written to.
#[derive(Debug, Clone)]
pub enum Store {
    /// An S3 endpoint (AWS, or a local one such as moto).
    S3(aws_sdk_s3::Client),
    /// A folder standing in for S3: `s3://bucket/key` is the file `DIR/bucket/key`.
    Local(PathBuf),
}

/// Why the items could not be read (Step Functions' `States.ItemReaderFailed`). The message
/// names the object or file and, for a parse error, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// How many items the channel buffers between the reader and the runner.
const BUFFER: usize = 256;

impl Store {
    /// The local path of `s3://bucket/key` in a [`Store::Local`] folder; a key that would
    /// leave the folder (`..`, an absolute path) is an error.
    pub fn local_path(root: &Path, bucket: &str, key: &str) -> Result<PathBuf, ReadError> {
        let mut path = root.join(checked_part(bucket, bucket, key)?);
        for part in key.split('/') {
            path.push(checked_part(part, bucket, key)?);
        }
        Ok(path)
    }
}

fn checked_part<'a>(part: &'a str, bucket: &str, key: &str) -> Result<&'a str, ReadError> {
    if part == ".." || part == "." || part.contains('\\') || part.contains('\0') {
        return Err(ReadError(format!(
            "s3://{bucket}/{key}: a key with a {part:?} part has no place in a local folder"
        )));
    }
    Ok(part)
}

/// Starts reading the items of a listing of `s3://bucket/prefix`, at most `max` of them.
pub fn list_objects(
    store: Store,
    bucket: String,
    prefix: String,
    max: Option<u64>,
) -> mpsc::Receiver<Result<Value, ReadError>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let result = match &store {
            Store::S3(s3) => list_s3(s3, &bucket, &prefix, max, &tx).await,
            Store::Local(root) => list_local(root, &bucket, &prefix, max, &tx).await,
        };
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

/// One listing item, shaped as Step Functions sends it: `Etag` (so spelled, with its
/// quotes), `Key`, `LastModified` (epoch seconds, a number), `Size`, `StorageClass`.
fn listing_item(etag: &str, key: &str, modified: i64, size: i64, class: &str) -> Value {
    let mut m = Map::new();
    m.insert("Etag".into(), Value::from(etag));
    m.insert("Key".into(), Value::from(key));
    m.insert("LastModified".into(), Value::from(modified));
    m.insert("Size".into(), Value::from(size));
    m.insert("StorageClass".into(), Value::from(class));
    Value::Object(m)
}

async fn list_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    max: Option<u64>,
    tx: &mpsc::Sender<Result<Value, ReadError>>,
) -> Result<(), ReadError> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut sent = 0u64;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            ReadError(format!(
                "listing s3://{bucket}/{prefix}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ))
        })?;
        for object in page.contents() {
            if max.is_some_and(|m| sent >= m) {
                return Ok(());
            }
            let item = listing_item(
                object.e_tag().unwrap_or_default(),
                object.key().unwrap_or_default(),
                object.last_modified().map_or(0, |t| t.secs()),
                object.size().unwrap_or_default(),
                object.storage_class().map_or("STANDARD", |c| c.as_str()),
            );
            if tx.send(Ok(item)).await.is_err() {
                return Ok(());
            }
            sent += 1;
        }
    }
    Ok(())
}

async fn list_local(
    root: &Path,
    bucket: &str,
    prefix: &str,
    max: Option<u64>,
    tx: &mpsc::Sender<Result<Value, ReadError>>,
) -> Result<(), ReadError> {
    let base = Store::local_path(root, bucket, "")?;
    let base2 = base.clone();
    // S3 lists keys in UTF-8 byte order, which a directory walk does not give: the keys
    // (not the items) are collected and sorted.
    let keys = tokio::task::spawn_blocking(move || {
        let mut keys = Vec::new();
        walk(&base2, "", &mut keys)?;
        keys.sort();
        Ok::<_, ReadError>(keys)
    })
    .await
    .map_err(|e| ReadError(format!("listing {}: {e}", base.display())))??;
    let limit = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    for key in keys
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .take(limit)
    {
        let path = Store::local_path(root, bucket, &key)?;
        let (etag, meta) = tokio::task::spawn_blocking(move || {
            let meta = std::fs::metadata(&path)
                .map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
            let etag = md5_file(&path)?;
            Ok::<_, ReadError>((etag, meta))
        })
        .await
        .map_err(|e| ReadError(e.to_string()))??;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let item = listing_item(
            &format!("\"{etag}\""),
            &key,
            modified,
            meta.len() as i64,
            "STANDARD",
        );
        if tx.send(Ok(item)).await.is_err() {
            break;
        }
    }
    Ok(())
}

fn walk(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> Result<(), ReadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && prefix.is_empty() => {
            return Err(ReadError(format!(
                "listing: the bucket folder {} does not exist",
                dir.display()
            )))
        }
        Err(e) => return Err(ReadError(format!("listing {}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| ReadError(format!("listing {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = format!("{prefix}{name}");
        let kind = entry
            .file_type()
            .map_err(|e| ReadError(format!("{}: {e}", entry.path().display())))?;
        if kind.is_dir() {
            walk(&entry.path(), &format!("{key}/"), keys)?;
        } else {
            keys.push(key);
        }
    }
    Ok(())
}

fn md5_file(path: &Path) -> Result<String, ReadError> {
    use md5::{Digest, Md5};
    let mut file =
        std::fs::File::open(path).map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
    let mut md5 = Md5::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(s3batch_job::digest::hex(&md5.finalize()))
}

/// Starts reading the items of the object `s3://bucket/key` as `input_type`, at most `max`
/// of them. From S3 the object is first saved under `work_dir` (and read from disk as it
/// is parsed, never held in memory).
pub fn get_object(
    store: Store,
    bucket: String,
    key: String,
    input_type: InputType,
    max: Option<u64>,
    work_dir: PathBuf,
) -> mpsc::Receiver<Result<Value, ReadError>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    if input_type == InputType::Manifest {
        tokio::spawn(async move {
            if let Err(e) = read_inventory(store, bucket, key, max, work_dir, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        return rx;
    }
    tokio::spawn(async move {
        let name = format!("s3://{bucket}/{key}");
        let path = match &store {
            Store::Local(root) => Store::local_path(root, &bucket, &key),
            Store::S3(s3) => download(s3, &bucket, &key, &work_dir).await,
        };
        let path = match path {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let downloaded = matches!(store, Store::S3(_)).then(|| path.clone());
        let tx2 = tx.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)
                .map_err(|e| ReadError(format!("{name} ({}): {e}", path.display())))?;
            let mut sink = Sink {
                tx: &tx2,
                max,
                sent: 0,
            };
            match &input_type {
                InputType::Csv { header, delimiter } => {
                    check_quotes(BufReader::new(&file), *delimiter, &name)?;
                    let file = std::fs::File::open(&path)
                        .map_err(|e| ReadError(format!("{name}: {e}")))?;
                    read_csv(file, header, *delimiter, &name, &mut sink)
                }
                InputType::Json => read_json(file, &name, &mut sink),
                InputType::Jsonl => read_jsonl(file, &name, &mut sink),
                InputType::Manifest => unreachable!("read by read_inventory"),
            }
        })
        .await
        .unwrap_or_else(|e| Err(ReadError(format!("the reader stopped: {e}"))));
        if let Some(p) = downloaded {
            let _ = std::fs::remove_file(p);
        }
        if let Err(e) = parsed {
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

/// `InputType: MANIFEST`: the S3 Inventory whose `manifest.json` is `s3://bucket/key`, read
/// with the engine's inventory reader (the one `cargo s3batch run` uses, see
/// [`s3batch_job::ManifestSource::entries`]): every row of every data file is checked first
/// (a bad row, a missing data file or an MD5 mismatch fails the reader, naming it), then
/// the rows are streamed, one item `{"Bucket", "Key"[, "VersionId"]}` each.
///
/// From S3, the data files are downloaded from the inventory's `destinationBucket` into
/// `work_dir` (removed afterwards). From a local folder, the data files are read where `cargo
/// s3batch run` reads a local inventory copy: `data/<name>` in the folder two levels above
/// `manifest.json` (`<config-id>/<date>/manifest.json` beside `<config-id>/data/`).
///
/// Keys are **decoded** (S3 Inventory CSVs URL-encode them; the engine decodes `%XX` and `+`),
/// so an item's `Key` is the object's key as stored, as in a prefix listing's items, and a
/// function with the default raw key encoding reads the right object.
async fn read_inventory(
    store: Store,
    bucket: String,
    key: String,
    max: Option<u64>,
    work_dir: PathBuf,
    tx: &mpsc::Sender<Result<Value, ReadError>>,
) -> Result<(), ReadError> {
    let name = format!("s3://{bucket}/{key}");
    let failed = {
        let name = name.clone();
        move |e: s3batch_job::ManifestError| {
            let problems = e.problems().join("; ");
            ReadError(format!("{name}: not a readable S3 Inventory: {problems}"))
        }
    };
    // Its own folder under `inventory/`: a `Staged` removes its parent when that is empty.
    let staged = work_dir
        .join("inventory")
        .join(uuid::Uuid::new_v4().to_string());
    let source = match &store {
        Store::Local(root) => {
            let path = Store::local_path(root, &bucket, &key)?;
            let head = std::fs::read(&path)
                .map_err(|e| ReadError(format!("{name} ({}): {e}", path.display())))?;
            if !s3batch_job::manifest::is_inventory(&key, &head) {
                return Err(ReadError(format!(
                    "{name}: InputType MANIFEST needs an S3 Inventory manifest.json (a JSON \
                     object), not this file"
                )));
            }
            s3batch_job::ManifestSource::open(&path).map_err(failed.clone())?
        }
        Store::S3(s3) => {
            let staged_dir = s3batch_job::manifest::Staged::create(staged.clone())
                .map_err(|e| ReadError(e.to_string()))?;
            let json_path = download(s3, &bucket, &key, &staged).await?;
            let json = std::fs::read(&json_path)
                .map_err(|e| ReadError(format!("{name} ({}): {e}", json_path.display())))?;
            s3batch_job::storage::fetch_inventory(&json, s3, &staged)
                .await
                .map_err(failed.clone())?
                .staged(staged_dir)
        }
    };
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx: &tx,
            max,
            sent: 0,
        };
        let entries = source.entries().map_err(failed.clone())?;
        for entry in entries {
            let entry = entry.map_err(failed.clone())?;
            let mut item = Map::new();
            item.insert("Bucket".into(), Value::from(entry.bucket));
            item.insert("Key".into(), Value::from(entry.key));
            if let Some(v) = entry.version_id {
                item.insert("VersionId".into(), Value::from(v));
            }
            if !sink.push(Value::Object(item)) {
                break;
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(ReadError(format!("the reader stopped: {e}"))))
}

async fn download(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    work_dir: &Path,
) -> Result<PathBuf, ReadError> {
    std::fs::create_dir_all(work_dir)
        .map_err(|e| ReadError(format!("creating {}: {e}", work_dir.display())))?;
    let path = work_dir.join(format!("item-reader-{}", uuid::Uuid::new_v4()));
    s3batch_job::storage::save_object(s3, bucket, key, &path)
        .await
        .map_err(|e| ReadError(e.to_string()))?;
    Ok(path)
}

/// Hands items to the channel, up to `max`; `false` once no more are wanted.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Result<Value, ReadError>>,
    max: Option<u64>,
    sent: u64,
}

impl Sink<'_> {
    fn wants_more(&self) -> bool {
        self.max.is_none_or(|m| self.sent < m)
    }

    fn push(&mut self, item: Value) -> bool {
        if !self.wants_more() || self.tx.blocking_send(Ok(item)).is_err() {
            return false;
        }
        self.sent += 1;
        self.wants_more()
    }
}

/// Refuses the unbalanced quotes a lenient CSV parser turns into lost rows: a quote never
/// closed, and a `"` in the middle of an unquoted field. (The engine's strict CSV reader is
/// private to `s3batch-job` and reads commas only.)
fn check_quotes(input: impl BufRead, delimiter: u8, name: &str) -> Result<(), ReadError> {
    let mut line = 1u64;
    let mut opened = 0u64;
    let (mut in_quotes, mut field_start, mut after_close) = (false, true, false);
    for byte in input.bytes() {
        let b = byte.map_err(|e| ReadError(format!("{name}: {e}")))?;
        if in_quotes {
            if b == b'"' {
                in_quotes = false;
                after_close = true;
            } else if b == b'\n' {
                line += 1;
            }
            continue;
        }
        if after_close && b == b'"' {
            // `""` inside a quoted field.
            in_quotes = true;
            after_close = false;
            continue;
        }
        if b == delimiter || b == b'\n' || b == b'\r' {
            if b == b'\n' {
                line += 1;
            }
            field_start = true;
            after_close = false;
            continue;
        }
        if after_close {
            return Err(ReadError(format!(
                "{name}: line {line}: a quoted field is closed by a quote followed by {:?}, \
                 not by the delimiter or the end of the line",
                b as char
            )));
        }
        if b == b'"' {
            if !field_start {
                return Err(ReadError(format!(
                    "{name}: line {line}: a `\"` inside a field that does not start with one \
                     (quote the whole field and double the quote)"
                )));
            }
            in_quotes = true;
            opened = line;
        }
        field_start = false;
    }
    if in_quotes {
        return Err(ReadError(format!(
            "{name}: line {opened}: a quote opened here is never closed"
        )));
    }
    Ok(())
}

fn read_csv(
    input: impl Read,
    header: &CsvHeader,
    delimiter: u8,
    name: &str,
    sink: &mut Sink<'_>,
) -> Result<(), ReadError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    let mut columns: Option<Vec<String>> = match header {
        CsvHeader::Given(h) => Some(h.clone()),
        CsvHeader::FirstRow => None,
    };
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ReadError(format!("{name}: line {line}: {e}"))
        })?;
        if !more {
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        let Some(cols) = &columns else {
            columns = Some(record.iter().map(str::to_owned).collect());
            continue;
        };
        if record.len() != cols.len() {
            return Err(ReadError(format!(
                "{name}: line {line}: {} field(s) where the header has {} ({})",
                record.len(),
                cols.len(),
                cols.join(",")
            )));
        }
        let item: Map<String, Value> = cols
            .iter()
            .zip(record.iter())
            .map(|(c, v)| (c.clone(), Value::from(v)))
            .collect();
        if !sink.push(Value::Object(item)) {
            return Ok(());
        }
    }
}

fn read_jsonl(input: impl Read, name: &str, sink: &mut Sink<'_>) -> Result<(), ReadError> {
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| ReadError(format!("{name}: line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Value = serde_json::from_str(&line)
            .map_err(|e| ReadError(format!("{name}: line {}: {e}", i + 1)))?;
        if !sink.push(item) {
            return Ok(());
        }
    }
    Ok(())
}

/// Streams the elements of a top-level JSON array.
fn read_json(input: impl Read, name: &str, sink: &mut Sink<'_>) -> Result<(), ReadError> {
    struct Elements<'s, 'a>(&'s mut Sink<'a>);
    impl<'de> Visitor<'de> for Elements<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a top-level JSON array of items")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<Value>()? {
                if !self.0.push(item) {
                    // Stop reading; serde_json reports the rest as trailing, ignored below.
                    return Err(serde::de::Error::custom(STOPPED));
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    const STOPPED: &str = "s3batch-map: enough items read";
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(input));
    match Elements(sink).deserialize(&mut de) {
        Ok(()) => de
            .end()
            .map_err(|e| ReadError(format!("{name}: after the array: {e}"))),
        Err(e) if e.to_string().starts_with(STOPPED) => Ok(()),
        Err(e) => Err(ReadError(format!("{name}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect(
        f: impl FnOnce(&mut Sink<'_>) -> Result<(), ReadError> + Send + 'static,
        max: Option<u64>,
    ) -> (Vec<Value>, Result<(), ReadError>) {
        let (tx, mut rx) = mpsc::channel(100_000);
        let result = std::thread::spawn(move || {
            let mut sink = Sink {
                tx: &tx,
                max,
                sent: 0,
            };
            f(&mut sink)
        })
        .join()
        .unwrap();
        let mut items = Vec::new();
        while let Ok(item) = rx.try_recv() {
            items.push(item.unwrap());
        }
        (items, result)
    }

    #[test]
    fn csv_items_are_objects_of_strings_by_header() {
        let data = "H1,H2,H3\ntrue,1,'HelloWorld'\n\"a,b\",,\"say \"\"hi\"\"\"\n";
        let (items, r) = collect(
            move |s| read_csv(data.as_bytes(), &CsvHeader::FirstRow, b',', "f.csv", s),
            None,
        );
        r.unwrap();
        assert_eq!(
            items,
            vec![
                json!({"H1": "true", "H2": "1", "H3": "'HelloWorld'"}),
                json!({"H1": "a,b", "H2": "", "H3": "say \"hi\""}),
            ]
        );
    }

    #[test]
    fn csv_given_headers_and_other_delimiters() {
        for (delimiter, data) in [
            (b'|', "b|k 1\nb|k2\n"),
            (b';', "b;k 1\nb;k2\n"),
            (b'\t', "b\tk 1\nb\tk2\n"),
            (b' ', "b \"k 1\"\nb k2\n"),
        ] {
            let header = CsvHeader::Given(vec!["Bucket".into(), "Key".into()]);
            check_quotes(data.as_bytes(), delimiter, "m.csv").unwrap();
            let (items, r) = collect(
                move |s| read_csv(data.as_bytes(), &header, delimiter, "m.csv", s),
                None,
            );
            r.unwrap();
            assert_eq!(
                items,
                vec![
                    json!({"Bucket": "b", "Key": "k 1"}),
                    json!({"Bucket": "b", "Key": "k2"})
                ],
                "{:?}",
                delimiter as char
            );
        }
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_the_file_and_line() {
        let e = check_quotes("a,b\nc,\"d\ne,f\n".as_bytes(), b',', "s3://b/m.csv").unwrap_err();
        assert_eq!(
            e.0,
            "s3://b/m.csv: line 2: a quote opened here is never closed"
        );
        let e = check_quotes("a,b\nc,d\"x\n".as_bytes(), b',', "m.csv").unwrap_err();
        assert!(
            e.0.starts_with("m.csv: line 2: a `\"` inside a field"),
            "{e}"
        );
        let e = check_quotes("\"a\"x,b\n".as_bytes(), b',', "m.csv").unwrap_err();
        assert!(
            e.0.starts_with("m.csv: line 1: a quoted field is closed"),
            "{e}"
        );
        // Quotes that balance, over lines and doubled, are fine.
        check_quotes("\"a\nb\",\"c\"\"d\"\r\ne,f".as_bytes(), b',', "m.csv").unwrap();
    }

    #[test]
    fn a_short_csv_row_is_an_error_naming_its_line() {
        let (_, r) = collect(
            |s| {
                read_csv(
                    "A,B\n1,2\n3\n".as_bytes(),
                    &CsvHeader::FirstRow,
                    b',',
                    "f.csv",
                    s,
                )
            },
            None,
        );
        assert_eq!(
            r.unwrap_err().0,
            "f.csv: line 3: 1 field(s) where the header has 2 (A,B)"
        );
    }

    #[test]
    fn json_arrays_stream_and_stop_at_max_items() {
        let data = r#"[{"a":1}, 2, "three", [4]]"#;
        let (items, r) = collect(move |s| read_json(data.as_bytes(), "f.json", s), None);
        r.unwrap();
        assert_eq!(
            items,
            vec![json!({"a":1}), json!(2), json!("three"), json!([4])]
        );
        let (items, r) = collect(move |s| read_json(data.as_bytes(), "f.json", s), Some(2));
        r.unwrap();
        assert_eq!(items, vec![json!({"a":1}), json!(2)]);
        let (_, r) = collect(|s| read_json(r#"{"a":1}"#.as_bytes(), "f.json", s), None);
        assert!(r.unwrap_err().0.contains("a top-level JSON array"));
        let (_, r) = collect(|s| read_json("[1,\n2,".as_bytes(), "f.json", s), None);
        assert!(r.unwrap_err().0.starts_with("f.json: "));
    }

    #[test]
    fn jsonl_reads_a_line_per_item_and_names_a_bad_line() {
        let data = "{\"Key\":\"a\"}\n\n{\"Key\":\"b\"}\n";
        let (items, r) = collect(move |s| read_jsonl(data.as_bytes(), "f.jsonl", s), None);
        r.unwrap();
        assert_eq!(items, vec![json!({"Key":"a"}), json!({"Key":"b"})]);
        let (_, r) = collect(|s| read_jsonl("1\n{oops\n".as_bytes(), "f.jsonl", s), None);
        assert!(r.unwrap_err().0.starts_with("f.jsonl: line 2: "));
    }

    #[tokio::test]
    async fn a_local_listing_is_shaped_as_step_functions_sends_it() {
        let root = std::env::temp_dir().join(format!("s3batch-map-list-{}", std::process::id()));
        for (key, body) in [
            ("in/b.txt", "bb"),
            ("in/a-c", "x"),
            ("in/a/z", ""),
            ("out/x", "o"),
        ] {
            let path = Store::local_path(&root, "data", key).unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        async fn read(root: &Path, max: Option<u64>) -> Vec<Value> {
            let mut rx = list_objects(
                Store::Local(root.to_owned()),
                "data".into(),
                "in/".into(),
                max,
            );
            let mut items = Vec::new();
            while let Some(item) = rx.recv().await {
                items.push(item.unwrap());
            }
            items
        }
        let items = read(&root, None).await;
        let keys: Vec<&str> = items.iter().map(|i| i["Key"].as_str().unwrap()).collect();
        // Byte order of the whole key ('-' < '/'), not a directory walk's.
        assert_eq!(keys, ["in/a-c", "in/a/z", "in/b.txt"]);
        let b = &items[2];
        assert_eq!(
            b["Etag"], "\"21ad0bd836b90d08f4cf640b4c298e7c\"",
            "md5 of \"bb\", quoted"
        );
        assert_eq!(b["Size"], 2);
        assert_eq!(b["StorageClass"], "STANDARD");
        assert!(b["LastModified"].as_i64().unwrap() > 1_600_000_000);
        let mut fields: Vec<&String> = b.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            ["Etag", "Key", "LastModified", "Size", "StorageClass"]
        );
        assert_eq!(read(&root, Some(2)).await.len(), 2);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn local_paths_stay_in_the_folder() {
        let root = Path::new("/tmp/root");
        assert_eq!(
            Store::local_path(root, "b", "a/c d.txt").unwrap(),
            Path::new("/tmp/root/b/a/c d.txt")
        );
        assert!(Store::local_path(root, "b", "../x").is_err());
        assert!(Store::local_path(root, "..", "x").is_err());
    }

    /// `MANIFEST` from a local folder: the data files are read from `data/` beside the
    /// manifest's date folder (as `cargo s3batch run` reads a local inventory copy), gzipped
    /// or not, keys decoded; a file that is not an inventory manifest is refused, naming it.
    #[tokio::test]
    async fn a_local_inventory_is_read_from_its_data_folder() {
        use std::io::Write;
        let root =
            std::env::temp_dir().join(format!("s3batch-map-local-inv-{}", uuid::Uuid::new_v4()));
        let cfg = root.join("inv/src/cfg");
        std::fs::create_dir_all(cfg.join("2026-01-01T00-00Z")).unwrap();
        std::fs::create_dir_all(cfg.join("data")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"\"src\",\"a%20b+c%2B.txt\"\n\"src\",\"%C3%BC.txt\"\n")
            .unwrap();
        std::fs::write(cfg.join("data/one.csv.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(
            cfg.join("2026-01-01T00-00Z/manifest.json"),
            r#"{"destinationBucket": "arn:aws:s3:::inv", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key", "files": [{"key": "src/cfg/data/one.csv.gz"}]}"#,
        )
        .unwrap();
        std::fs::write(root.join("inv/list.csv"), "src,a\n").unwrap();
        let read = |key: &str| {
            let mut rx = get_object(
                Store::Local(root.clone()),
                "inv".into(),
                key.into(),
                InputType::Manifest,
                None,
                root.join("work"),
            );
            async move {
                let mut got = Vec::new();
                while let Some(item) = rx.recv().await {
                    got.push(item);
                }
                got
            }
        };
        assert_eq!(
            read("src/cfg/2026-01-01T00-00Z/manifest.json").await,
            [
                Ok(json!({"Bucket": "src", "Key": "a b c+.txt"})),
                Ok(json!({"Bucket": "src", "Key": "ü.txt"})),
            ]
        );
        assert_eq!(
            read("list.csv").await,
            [Err(ReadError(
                "s3://inv/list.csv: InputType MANIFEST needs an S3 Inventory manifest.json (a \
                 JSON object), not this file"
                    .into()
            ))]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
