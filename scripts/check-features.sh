#!/usr/bin/env bash
# Compiles each supported feature set of each published crate on its own (scripts/test.sh
# runs this before the tests). The workspace build unifies features across every member, so
# it only ever compiles the default sets: a `#[cfg(feature = …)]` that breaks without the
# other feature, or a dependency that only a default feature happened to pull in, would go
# unnoticed there.
#
#   s3batch-core, s3batch: no features, `s3` alone, `anyhow` alone, `metrics` alone, `map`
#                          alone, all four (the default)
#   s3batch-macros:        it has no features
#   s3batch-job, s3batch-control, s3batch-map, cargo-s3batch: they have no features; each is checked on its
#                          own, so the engine and s3batch-control compile without the
#                          command line's crates, which only cargo-s3batch depends on
#
# Each set is checked (`cargo clippy`: type-checked, with the workspace's lints, warnings
# denied, so an import that one set leaves unused fails too) in the shared target directory,
# the library and binaries only: the tests need the default features.
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  local crate=$1 features=$2
  echo "check-features: $crate [${features:-no features}]" >&2
  cargo clippy --locked --quiet -p "$crate" --no-default-features ${features:+--features "$features"} \
    -- -D warnings
}

for crate in s3batch-core s3batch; do
  for features in "" s3 anyhow metrics map anyhow,s3,metrics,map; do
    check "$crate" "$features"
  done
done
check s3batch-macros ""
for crate in s3batch-job s3batch-control s3batch-map cargo-s3batch; do
  check "$crate" ""
done
