#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the tools the tests use
# (scripts/setup.sh: cargo-lambda and moto in .venv), checks formatting, lints and the public
# crates' docs (rustdoc warnings are errors), compiles each supported feature set of the
# public crates (scripts/check-features.sh) and the fuzz target, then runs every test in the
# workspace: unit, doc, trybuild UI, property and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p s3batch -p s3batch-core -p s3batch-macros -p s3batch-job -p s3batch-control -p s3batch-map -p cargo-s3batch
scripts/check-features.sh
# The fuzz crate is a workspace of its own (cargo fuzz builds it with nightly and sanitizer
# flags); on stable without them it still compiles, into the shared target directory, where
# it reuses the dependencies checked above. Its inputs are replayed by s3batch-core's
# tests/fuzz_regressions.rs.
cargo clippy --manifest-path fuzz/Cargo.toml --locked --target-dir "${CARGO_TARGET_DIR:-target}" -- -D warnings
cargo test --workspace --locked
