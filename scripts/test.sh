#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the tools the tests use
# (scripts/setup.sh: cargo-lambda and moto in .venv), checks formatting and lints, then runs
# every test in the workspace: unit, doc, trybuild UI, property and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
