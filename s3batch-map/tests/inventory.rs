//! `InputType: MANIFEST` end to end against moto: an S3 Inventory `manifest.json` whose data
//! files are gzipped CSV (keys URL-encoded, as S3 Inventory writes them), read with the
//! engine's streaming inventory reader. Items are `{"Bucket", "Key"[, "VersionId"]}` with the
//! key decoded; a data file whose MD5 does not match fails the reader before any child runs.

use aws_sdk_s3::primitives::ByteStream;
use md5::{Digest, Md5};
use s3batch_job::{Invoke, Invoked};
use s3batch_map::{MapDefinition, MapRun, MapStatus, Store};
use s3batch_testkit::Moto;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Records every event and answers it.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Invoke for Recorder {
    async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&payload).unwrap());
        Invoked::Response(b"{}".to_vec())
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    s3batch_job::digest::hex(&Md5::digest(bytes))
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

fn machine(key: &str, max_items: Option<u64>) -> MapDefinition {
    let mut config = json!({"InputType": "MANIFEST"});
    if let Some(m) = max_items {
        config["MaxItems"] = json!(m);
    }
    let asl = json!({"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": true, "MaxConcurrency": 1,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "inventory", "Key": key},
                       "ReaderConfig": config},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Call",
            "States": {"Call": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "fn", "Payload.$": "$"}}}}
    }}});
    MapDefinition::parse(&asl.to_string(), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_inventory_of_gzipped_csv_is_read_row_by_row() {
    let moto = Moto::start();
    let s3 = moto.client().await;
    s3.create_bucket().bucket("inventory").send().await.unwrap();
    let work = std::env::temp_dir().join(format!("s3batch-map-inventory-{}", std::process::id()));

    // Two data files, in the manifest's order; S3 Inventory quotes every field and
    // URL-encodes keys (`%20` a space, `%2B` a plus, `+` a space too, UTF-8 as `%XX`).
    let first = gzip(concat!(
        "\"photos\",\"in/a%20b%2Bc.txt\",\"v1\",\"12\"\n",
        "\"photos\",\"in/caf%C3%A9.txt\",\"\",\"3\"\n",
    ));
    let second = gzip("\"photos\",\"in/x+y.txt\",\"v3\",\"7\"\n");
    let prefix = "inv/photos/cfg/data";
    put(
        &s3,
        "inventory",
        &format!("{prefix}/one.csv.gz"),
        first.clone(),
    )
    .await;
    put(
        &s3,
        "inventory",
        &format!("{prefix}/two.csv.gz"),
        second.clone(),
    )
    .await;
    let manifest = |second_md5: &str| {
        json!({
            "sourceBucket": "photos",
            "destinationBucket": "arn:aws:s3:::inventory",
            "version": "2016-11-30",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, VersionId, Size",
            "files": [
                {"key": format!("{prefix}/one.csv.gz"), "size": first.len(), "MD5checksum": md5_hex(&first)},
                {"key": format!("{prefix}/two.csv.gz"), "size": second.len(), "MD5checksum": second_md5}
            ]
        })
        .to_string()
        .into_bytes()
    };
    let good = "inv/photos/cfg/2026-01-01T00-00Z/manifest.json";
    put(&s3, "inventory", good, manifest(&md5_hex(&second))).await;

    let fake = Recorder::default();
    let out = MapRun::new(
        machine(good, None),
        fake.clone(),
        Store::S3(s3.clone()),
        work.clone(),
    )
    .run_id("inv-1")
    .run(json!({}))
    .await
    .unwrap();
    assert_eq!(out.status, MapStatus::Succeeded, "{out:?}");
    assert_eq!(
        *fake.0.lock().unwrap(),
        [
            json!({"Bucket": "photos", "Key": "in/a b+c.txt", "VersionId": "v1"}),
            json!({"Bucket": "photos", "Key": "in/café.txt"}),
            json!({"Bucket": "photos", "Key": "in/x y.txt", "VersionId": "v3"}),
        ],
        "one item per row, in order across the data files, keys decoded, an empty VersionId left out"
    );
    assert!(!out.unread_items);

    // MaxItems stops the reader.
    let fake = Recorder::default();
    let out = MapRun::new(
        machine(good, Some(2)),
        fake.clone(),
        Store::S3(s3.clone()),
        work.clone(),
    )
    .run_id("inv-2")
    .run(json!({}))
    .await
    .unwrap();
    assert_eq!(out.status, MapStatus::Succeeded, "{out:?}");
    let keys: Vec<Value> = fake
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["Key"].clone())
        .collect();
    assert_eq!(keys, [json!("in/a b+c.txt"), json!("in/café.txt")]);

    // A data file whose MD5 does not match: the reader fails, naming the file, and no child
    // runs (every row is checked before the first item).
    let bad = "inv/photos/cfg/2026-01-02T00-00Z/manifest.json";
    put(
        &s3,
        "inventory",
        bad,
        manifest("00000000000000000000000000000000"),
    )
    .await;
    let fake = Recorder::default();
    let out = MapRun::new(
        machine(bad, None),
        fake.clone(),
        Store::S3(s3.clone()),
        work.clone(),
    )
    .run_id("inv-3")
    .run(json!({}))
    .await
    .unwrap();
    let MapStatus::Failed { error, cause } = &out.status else {
        panic!("{out:?}")
    };
    assert_eq!(error, "States.ItemReaderFailed");
    assert!(
        cause.starts_with(&format!(
            "s3://inventory/{bad}: not a readable S3 Inventory: "
        )) && cause.contains(&format!("{prefix}/two.csv.gz: MD5 "))
            && cause.contains("does not match"),
        "{cause}"
    );
    assert!(fake.0.lock().unwrap().is_empty());

    // The downloaded inventory files are removed once read (or refused).
    for run in ["inv-1", "inv-2", "inv-3"] {
        let staged = work.join(run).join("inventory");
        assert!(work.join(run).is_dir(), "{run}'s staging folder");
        assert!(!staged.exists(), "{} is left", staged.display());
    }
    let _ = std::fs::remove_dir_all(&work);
}
