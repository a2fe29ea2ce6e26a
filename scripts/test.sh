#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the tools the tests use
# (scripts/setup.sh: cargo-lambda and moto in .venv), checks formatting, lints and the public
# crates' docs (rustdoc warnings are errors), then runs
# every test in the workspace: unit, doc, trybuild UI, property and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p s3batch -p s3batch-core -p s3batch-macros -p s3batch-job
cargo test --workspace --locked
