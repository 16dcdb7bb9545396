#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit/integration/snapshot tests of all crates, and the
# end-to-end suite against a real etcd + kube-apiserver + kwok (built once and cached outside the repo).
# Usage: bash tests/run-all.sh          (SKIP_E2E=1 skips building the control plane and the e2e suite)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# insta: never write snapshots here; a missing or changed snapshot fails.
export CI=${CI:-true}
export INSTA_UPDATE=no

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

if [ "${SKIP_E2E:-0}" != "1" ]; then
  step "building the test control plane (cached)"
  for tool in kubectl openssl curl python3; do
    command -v "$tool" >/dev/null ||
      { echo "the end-to-end suite needs $tool on PATH (or run with SKIP_E2E=1)" >&2; exit 1; }
  done
  TESTBED_BIN=$(bash tests/testbed/build.sh)
  export TESTBED_BIN
else
  step "SKIP_E2E=1: end-to-end suite skipped"
fi

step "cargo test (workspace)"
cargo test --workspace --all-targets --no-fail-fast
step "all tests passed"
