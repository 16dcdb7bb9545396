#!/usr/bin/env bash
# The shared server under many people at once (tests/e2e/http.rs::http_load_benchmark): kwok nodes on the real
# API server, so it measures the server and the control plane, not a GPU node.
# HTTP_BENCH_PEOPLE (default 50) and HTTP_BENCH_CALLS (default 10) size it.
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED_BIN=${TESTBED_BIN:-$(bash tests/testbed/build.sh)}
export TESTBED_BIN
cargo test -p k8s-gpu-mcp --test e2e -- --ignored --exact http::http_load_benchmark --nocapture 2>&1 |
  grep -E '^http load|test result|panicked'
