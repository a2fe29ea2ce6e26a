//! What the two binaries without an S3 client share with the rest of the benchmarks: the
//! per-task work and the hand-written handler, the same source files as `s3batch-bench`'s
//! (included, not depended on, so that this package's build has no AWS SDK in it).

#[path = "../../src/handwritten.rs"]
pub mod handwritten;

/// The work both Rust handlers do per task: nothing but echo the decoded object.
pub fn greeting(bucket: &str, key: &str) -> String {
    format!("hello s3://{bucket}/{key}")
}
