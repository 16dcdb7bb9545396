#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit/integration/snapshot tests of all crates, the
# end-to-end suite against a real etcd + kube-apiserver + kwok (built once and cached outside the repo) with the
# official MCP conformance suite against serve --http (npm installs it and its Node 22 into
# tests/mcp-conformance), the official MCP TypeScript SDK clients (v1, and v2 on protocol 2026-07-28) against
# the launcher (npm installs them into tests/mcp-sdk), and the packaging: crates publishable, the README's
# install commands, the Claude Desktop bundle, the release.
# Usage: bash tests/run-all.sh          (SKIP_E2E=1 skips building the control plane and the e2e suite)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# insta: never write snapshots here; a missing or changed snapshot fails.
# CI=true also turns a skipped test into a failed one (tests/support/gate.rs). SKIP_E2E=1 or SKIP_REALNODE=1 is a deliberate
# local skip, so that run is not a CI run unless the caller says so (then the skipped tests fail).
if [ "${SKIP_E2E:-0}" = "1" ] || [ "${SKIP_REALNODE:-0}" = "1" ]; then export CI=${CI:-false}; else export CI=${CI:-true}; fi
export INSTA_UPDATE=no

# Every step's start goes to a table printed at the end (or where the run stopped), so the next person sees
# where the time goes. .ci/run exports CI_RUN_STARTED before its installs; that span is its own row.
STEP_LOG=$(mktemp)
[ -z "${CI_RUN_STARTED:-}" ] || printf '%s\t%s\n' "$CI_RUN_STARTED" "installs (.ci/run)" >>"$STEP_LOG"
step() {
  printf '%s\t%s\n' "$(date +%s)" "$*" >>"$STEP_LOG"
  printf '\n==> %s\n' "$*" >&2
}
# A line of the table that is not a step: what was skipped on purpose, and why.
note() { printf 'note\t%s\n' "$*" >>"$STEP_LOG"; }
step_table() {
  local rc=$1 now
  now=$(date +%s)
  python3 - "$STEP_LOG" "$now" "$rc" <<'PY' >&2 || true
import sys
rows, notes = [], []
for line in open(sys.argv[1]):
    t, _, name = line.rstrip("\n").partition("\t")
    (notes.append(name) if t == "note" else rows.append((int(t), name)))
now, rc = int(sys.argv[2]), int(sys.argv[3])
print("\n==> step times (wall clock)" + ("" if rc == 0 else f"; the run stopped with status {rc} in the last step"))
for i, (t, name) in enumerate(rows):
    end = rows[i + 1][0] if i + 1 < len(rows) else now
    m, s = divmod(end - t, 60)
    print(f"  {m:3d}m{s:02d}s  {name[:100]}")
if rows:
    m, s = divmod(now - rows[0][0], 60)
    print(f"  {m:3d}m{s:02d}s  total")
for n in notes:
    print(f"  note: {n}")
PY
  rm -f "$STEP_LOG"
}

TB_PID= TB_LOG= TB_OUT= TB_DONE= PKG_PID= PKG2_PID= PKG_LOG= PKG_DIR=
# Its own session: a failed step before the wait ends the control plane's build with every Go process under
# it; the same for the packaging builds that run beside the tests.
trap 'rc=$?; rm -f ${TB_LOG:+"$TB_LOG"} ${TB_OUT:+"$TB_OUT"} ${TB_DONE:+"$TB_DONE"} ${PKG_LOG:+"$PKG_LOG" "$PKG_LOG.check" "$PKG_LOG.done"}; rm -rf ${PKG_DIR:+"$PKG_DIR"}
  [ -z "$TB_PID" ] || kill -- "-$TB_PID" 2>/dev/null || true
  [ -z "$PKG_PID" ] || kill -- "-$PKG_PID" 2>/dev/null || true
  [ -z "$PKG2_PID" ] || kill -- "-$PKG2_PID" 2>/dev/null || true
  step_table "$rc"' EXIT

# The test control plane (Go: etcd, kube-apiserver, kubelet, kwok; most of a cold run) builds in the
# background while cargo formats, lints and builds the tests: module downloads and the Go compiler overlap
# with rustc instead of following it. Cached outside the repo: a no-op once built.
# The oldest Kubernetes minor supported (README's "Kubernetes versions"): the core flows run on it too.
TESTBED_K8S_OLDEST=${TESTBED_K8S_OLDEST:-1.30.14}
if [ "${SKIP_E2E:-0}" != "1" ]; then
  for tool in kubectl openssl curl python3; do
    command -v "$tool" >/dev/null ||
      { echo "the end-to-end suite needs $tool on PATH (or run with SKIP_E2E=1)" >&2; exit 1; }
  done
  TB_LOG=$(mktemp) TB_OUT=$(mktemp)
  step "building the test control plane in the background (cached)"
  TB_STARTED=$(date +%s)
  TB_DONE=$(mktemp)
  # Then the oldest supported minor's API server (tests/testbed/core-flows.txt runs on it beside the suite):
  # its bin directory is the output's second line.
  setsid bash -c 'bash tests/testbed/build.sh && TESTBED_K8S=$2 TESTBED_APISERVER_ONLY=1 bash tests/testbed/build.sh; rc=$?; date +%s >"$1"; exit $rc' \
    _ "$TB_DONE" "$TESTBED_K8S_OLDEST" >"$TB_OUT" 2>"$TB_LOG" &
  TB_PID=$!
else
  step "SKIP_E2E=1: end-to-end suite skipped"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# clippy's lints ride on the test build: cargo compiles the workspace's own crates through clippy-driver (as
# `cargo clippy` does, but with codegen), so every target is linted once and the dependencies are compiled
# once, not first checked for clippy and then built for the tests. Every later cargo command of the run
# (the test lanes, the release test's e2e case) keeps the same wrapper, or its binaries would be rebuilt.
# A lint fails the build step below with clippy's own message, exactly as `cargo clippy -- -D warnings`.
RUSTC_WORKSPACE_WRAPPER=$(rustc --print sysroot)/bin/clippy-driver
[ -x "$RUSTC_WORKSPACE_WRAPPER" ] || { echo "clippy is required (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "no import circles between the files of a crate (the checker's own fixtures first); scenarios as generated"
python3 tests/support/import_cycles.py --self-test
python3 tests/support/import_cycles.py src launcher/src node-probe/src
# The built-in scenarios are what their generator (a development tool, outside the library) writes.
python3 tests/support/generate_scenarios.py --check

if [ -n "$TB_PID" ]; then
  # The test binaries build before the control plane is needed; the suites start once both are there.
  step "building the test binaries, linted by clippy (all targets, -D warnings), while the control plane builds"
  cargo test --workspace --all-targets --no-run
  step "waiting for the test control plane"
  wait "$TB_PID" || { cat "$TB_LOG" >&2; echo "building the test control plane failed" >&2; exit 1; }
  TB_PID=
  note "the test control plane's build (beside the steps above) took $(($(cat "$TB_DONE") - TB_STARTED)) s"
  rm -f "$TB_DONE"
  cat "$TB_LOG" >&2
  TESTBED_BIN=$(sed -n 1p "$TB_OUT")
  TESTBED_BIN_OLDEST=$(sed -n 2p "$TB_OUT")
  export TESTBED_BIN
fi

# The packaging (CPU only) runs beside the test suite, whose end-to-end and real-node tests wait on their
# control planes and leave CPU idle. At nice 19 it takes only what the tests leave; once the tests are done
# it gets its normal priority back (else, on a machine with other load, it would crawl). In order:
#   - the release archive (packaging/test-release.sh --build-only: quick release-profile builds linked for
#     glibc 2.28 in target/release-test: node-probe for amd64 and arm64, the launcher for amd64; the
#     linux-amd64 archive carries all three), checked and used after the tests (below);
#   - the README's install commands (packaging/test-install.sh --reuse-release), in the same target
#     directory: the dependencies the release build compiled are not compiled again;
#   - the three crates as crates.io gets them: packaged, then each type-checked alone from its .crate for
#     arm64, the others taken from their packages too (packaging/check-package.sh says what it proves and
#     what not). That is the arm64 launcher's compile check too: its link is left to the release workflow.
PKG_LOG=$(mktemp) PKG_DIR=$(mktemp -d)
PKG_STARTED=$(date +%s)
export RELEASE_ARCHIVES=amd64
# Without clippy's wrapper: these builds are the release as users get it, in their own target directories.
# Two jobs, each in its own target directory (cargo builds one at a time in one): the release builds then
# the install test; the package check. Once the tests are done, both cores work on what is left of them.
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS setsid nice -n 19 bash -c 'bash packaging/test-release.sh --build-only "$1" &&
  bash packaging/test-install.sh --reuse-release' \
  _ "$PKG_DIR/release" >"$PKG_LOG" 2>&1 &
PKG_PID=$!
# It records when it ends: the wait below comes only after the tests.
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS setsid nice -n 19 \
  bash -c 'bash packaging/check-package.sh; rc=$?; date +%s >"$1"; exit $rc' _ "$PKG_LOG.done" >"$PKG_LOG.check" 2>&1 &
PKG2_PID=$!
note "the release builds, the install test and the package check started beside the tests; the linux-arm64 archive is not built (its launcher is type-checked for aarch64 by the package check, node-probe for arm64 is linked and run under qemu)"

if [ "${SKIP_E2E:-0}" != "1" ]; then
  # The e2e suite runs the official MCP conformance suite against serve --http (tests/e2e/conformance.rs) on
  # the Node 22 this pins from the npm registry (the suite's CLI crashes on Node 20). Without a Node 22 the
  # test is skipped, which fails it under CI=true (tests/support/gate.rs).
  step "the official MCP conformance suite and its Node 22 (npm ci in tests/mcp-conformance)"
  command -v npm >/dev/null || { echo "the conformance test needs npm on PATH (or run with SKIP_E2E=1)" >&2; exit 1; }
  npm ci --prefix tests/mcp-conformance --no-audit --no-fund --loglevel=error
fi

bash tests/testbed/amd-device-plugin.sh --has-source ||
  note "NOT RUN: the real-node suite's AMD device-plugin cases (ROCm/k8s-device-plugin is in no registry; AMD_DEVICE_PLUGIN_GIT names a clone)"
# cargo runs test binaries one after another; the end-to-end suite (a control plane, mostly waiting on it) and
# the real-node suite (kubelet, containerd: mostly waiting on them) each run in their own lane beside the rest,
# which is CPU bound. The same --workspace selection as the build above: the same features, nothing rebuilt.
# Each lane's output is printed whole, after the lanes, so the logs do not interleave.
step "cargo test (workspace): the e2e and real-node suites, each in a lane beside the other test binaries"
LANE_DIR=$(mktemp -d)
others=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"] and t["name"] not in ("e2e", "realnode"):
            print("--test", t["name"])')
lane() {
  local name=$1 started rc=0
  shift
  started=$(date +%s)
  "$@" >"$LANE_DIR/$name.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - started))" >"$LANE_DIR/$name.rc"
}
lanes=(others) lane_pids=()
if [ "${SKIP_E2E:-0}" != "1" ]; then
  # Four at a time: its tests wait on the control plane (0.7 of a core in all, measured over the suite with
  # four threads beside three builds), so two threads left it idle most of its 14 minutes.
  lane e2e cargo test --workspace --test e2e --no-fail-fast -- --test-threads=4 &
  lane_pids+=($!) lanes+=(e2e)
  # The core flows on the oldest supported minor (its own testbed: an API server without DRA, whose
  # defaults differ), beside the suite on the newest.
  mapfile -t core < <(grep -v '^#' tests/testbed/core-flows.txt | grep .)
  lane "e2e-$TESTBED_K8S_OLDEST" env TESTBED_BIN="$TESTBED_BIN_OLDEST" \
    cargo test --workspace --test e2e --no-fail-fast -- "${core[@]}" --test-threads=4 &
  lane_pids+=($!) lanes+=("e2e-$TESTBED_K8S_OLDEST")
fi
lane realnode cargo test --workspace --test realnode --no-fail-fast &
lane_pids+=($!) lanes+=(realnode)
# shellcheck disable=SC2086 # one --test NAME pair per word
lane others cargo test --workspace --lib --bins --benches --examples $others --no-fail-fast
# Only the lanes: a bare `wait` would also wait for the packaging job started above.
wait "${lane_pids[@]}"
lanes_failed=0
for name in "${lanes[@]}"; do
  IFS=$'\t' read -r _ rc secs <"$LANE_DIR/$name.rc"
  printf '\n==> lane %s (%s s, status %s)\n' "$name" "$secs" "$rc" >&2
  cat "$LANE_DIR/$name.log" >&2
  note "test lane $name: $secs s, status $rc"
  [ "$rc" = 0 ] || lanes_failed=1
done
rm -rf "$LANE_DIR"
[ "$lanes_failed" = 0 ] || { echo "a test lane failed (its log is above)" >&2; exit 1; }

# A host's view of the server: the official MCP TypeScript SDK client (what Claude Desktop, Cursor and VS Code
# embed) lists and calls every tool and validates the results against their outputSchemas.
step "MCP TypeScript SDK client against the launcher"
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "the SDK client test needs node and npm on PATH" >&2; exit 1; }
npm ci --prefix tests/mcp-sdk --no-audit --no-fund --loglevel=error
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
node tests/mcp-sdk/client.mjs "$TARGET_DIR/debug/k8s-gpu-mcp"
# The SDK v2 client on protocol 2026-07-28: operator confirmation through the multi-round-trip input request.
node tests/mcp-sdk/client-v2.mjs "$TARGET_DIR/debug/k8s-gpu-mcp"
# Packaging: what a user installs from.
step "waiting for the release builds, the README's install commands and the package check (beside the tests)"
# Every process of the group (cargo, bash) and so each rustc they start from now on: normal priority.
# (A job already done has no group left to renice.)
renice -n 0 -g "$PKG2_PID" >/dev/null 2>&1 || true
renice -n 0 -g "$PKG_PID" >/dev/null 2>&1 || note "the release builds kept nice 19 (renice refused)"
wait "$PKG2_PID" || { cat "$PKG_LOG.check" >&2; echo "the package check failed" >&2; exit 1; }
PKG2_PID=
note "the package check, beside the tests, took $(($(cat "$PKG_LOG.done") - PKG_STARTED)) s"
cat "$PKG_LOG.check" >&2
wait "$PKG_PID" || { cat "$PKG_LOG" >&2; echo "the release builds or the install test failed" >&2; exit 1; }
PKG_PID=
note "the release builds and the install test, beside the tests, took $(($(date +%s) - PKG_STARTED)) s"
cat "$PKG_LOG" >&2
step "Claude Desktop bundle, validated by the official bundle CLI (debug build)"
bash packaging/build-mcpb.sh --debug --no-build >/dev/null
# The release: Linux archives cross-built for glibc 2.28 (amd64, arm64), their glibc ceiling, the arm64
# node-probe under qemu-user against the amd64 one, the amd64 archive used from an empty directory (quick start,
# copy delivery against the testbed), the krew manifest, server.json and bundles checked against the digests.
step "the release archives checked and used (packaging/test-release.sh --built; built beside the tests)"
bash packaging/test-release.sh --built "$PKG_DIR/release"
step "all tests passed"
