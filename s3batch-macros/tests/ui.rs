//! Compile-time behaviour of `#[s3batch::task]`: every supported signature shape compiles
//! (`ui/pass`), every mistake gives one clear error at the offending token (`ui/fail`).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p s3batch-macros --test
//! ui` and read the diff.
//!
//! The cases compile against the facade as this crate's dev-dependencies declare it: without
//! the `s3` feature, so trybuild's own build has no AWS SDK in it. The signatures that take
//! the SDK's `Client` are compiled and run by the root package's `tests/client_tasks.rs`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
