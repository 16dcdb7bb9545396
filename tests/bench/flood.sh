#!/usr/bin/env bash
# The shared server's limits under floods (tests/e2e/http.rs::http_flood_benchmark, issue 62): one person's
# calls and tasks at once, tokens of unknown key ids while the issuer hangs beside valid calls, and floods of
# sessions; kwok nodes on the real API server. FLOOD_CALLS (200), FLOOD_TASKS (20), FLOOD_KIDS (256
# connections), FLOOD_SESSIONS (2000) and FLOOD_PEOPLE (100) size it. Prints one `flood:` line per measure.
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED_BIN=${TESTBED_BIN:-$(bash tests/testbed/build.sh)}
export TESTBED_BIN
cargo test -p k8s-gpu-mcp --test e2e -- --ignored --exact http::http_flood_benchmark --nocapture 2>&1 |
  grep -E '^flood:|test result|panicked'
