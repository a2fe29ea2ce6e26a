#!/usr/bin/env bash
# Installs what the tests and the demo need into a project-local venv (.venv):
# cargo-lambda (the Lambda emulator and invoker), moto (a local S3 server) and the AWS CLI
# (a client of `cargo s3batch serve` in its tests), pinned in
# scripts/requirements.txt. Safe to run again; it only installs what is missing or changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.requirements"
if [ -x "$venv/bin/cargo-lambda" ] && [ -x "$venv/bin/moto_server" ] && [ -x "$venv/bin/aws" ] && cmp -s "$root/scripts/requirements.txt" "$stamp"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
cp "$root/scripts/requirements.txt" "$stamp"
echo "setup: installed $("$venv/bin/cargo-lambda" lambda --version | head -1) and moto into $venv"
