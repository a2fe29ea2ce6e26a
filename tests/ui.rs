//! Compile-time behaviour of `#[s3batch::task]`: every supported signature shape compiles
//! (`ui/pass`), every mistake gives one clear error at the offending token (`ui/fail`).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui` and read
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
