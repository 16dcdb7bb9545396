#!/usr/bin/env bash
# Soak test of the test suite itself: runs the end-to-end (kwok) and real-node suites SOAK_RUNS times in a
# row, optionally while the machine is kept busy (stress-ng: a CPU hog on every core plus disk I/O), and
# prints the pass count per test and per suite and the slowest cases. Exits non-zero if any test failed in
# any run. Long (each run is both suites); not part of tests/run-all.sh.
#
# Usage: bash tests/soak.sh
#   SOAK_RUNS=5          runs of each suite
#   SOAK_LOAD=1          0: no load (the script still counts passes)
#   SOAK_CPU=$(nproc)    CPU hogs (stress-ng --cpu)
#   SOAK_IO=1            disk I/O workers (stress-ng --hdd, in SOAK_IO_DIR, default target/soak)
#   SOAK_SUITES="e2e realnode"
#   SOAK_LOCK=/tmp/k8s-gpu-mcp-e2e.lock   each suite run holds this flock (shared with other runs of the
#                        suites on the machine); empty: no lock
# The real-node suite needs root (as in run-all); SKIP_REALNODE=1 or SOAK_SUITES=e2e leaves it out.
# Needs stress-ng for the load (Debian/Ubuntu: apt-get install -y stress-ng).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${SOAK_RUNS:-5}
LOAD=${SOAK_LOAD:-1}
CPU=${SOAK_CPU:-$(nproc)}
IO=${SOAK_IO:-1}
SUITES=${SOAK_SUITES:-e2e realnode}
LOCK=${SOAK_LOCK-/tmp/k8s-gpu-mcp-e2e.lock}
[ "${SKIP_REALNODE:-0}" = 1 ] && SUITES=${SUITES//realnode/}
export CARGO_TERM_COLOR=never CI=${CI:-true} INSTA_UPDATE=no
log() { printf 'soak: %s\n' "$*" >&2; }

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT=$TARGET_DIR/soak/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
log "logs in $OUT"

if [ -z "${TESTBED_BIN:-}" ]; then
  TESTBED_BIN=$(bash tests/testbed/build.sh)
fi
export TESTBED_BIN

# Build once, outside the load and the runs; then run the test binaries themselves. libtest's per-test times
# need its unstable --report-time, which RUSTC_BOOTSTRAP=1 enables for the test binary; the suites' own
# node-probe build drops it (tests/e2e/testbed.rs), since a compile under it rebuilds every dependency.
declare -A BIN
for s in $SUITES; do
  BIN[$s]=$(cargo test -p k8s-gpu-mcp --test "$s" --no-run --message-format=json 2>"$OUT/build-$s.log" |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]:
        print(m["executable"])' | tail -1)
  [ -x "${BIN[$s]}" ] || { cat "$OUT/build-$s.log" >&2; log "could not build the $s suite"; exit 1; }
done

STRESS_PID=
stop_load() {
  if [ -n "$STRESS_PID" ]; then
    kill -TERM "$STRESS_PID" 2>/dev/null || true
    wait "$STRESS_PID" 2>/dev/null || true
    STRESS_PID=
  fi
  rm -rf "${SOAK_IO_DIR:-$TARGET_DIR/soak/io}"
}
trap stop_load EXIT
if [ "$LOAD" = 1 ]; then
  command -v stress-ng >/dev/null ||
    { log "SOAK_LOAD=1 needs stress-ng (apt-get install -y stress-ng), or run with SOAK_LOAD=0"; exit 1; }
  IO_DIR=${SOAK_IO_DIR:-$TARGET_DIR/soak/io}
  mkdir -p "$IO_DIR"
  ARGS=(--cpu "$CPU" --timeout 0 --quiet)
  # Disk I/O: writes and reads in IO_DIR, bounded in size so a long soak cannot fill the disk.
  [ "$IO" -gt 0 ] && ARGS+=(--hdd "$IO" --hdd-bytes 256M --temp-path "$IO_DIR")
  stress-ng "${ARGS[@]}" &
  STRESS_PID=$!
  log "load: stress-ng ${ARGS[*]} (pid $STRESS_PID)"
else
  log "load: none (SOAK_LOAD=0)"
fi

# One suite run: its libtest lines (per test) and, for the real-node suite, its cases' own lines.
run_suite() { # suite run
  local s=$1 n=$2 f="$OUT/$1-$2.log" rc=0 t0=$SECONDS
  local lockcmd=()
  [ -n "$LOCK" ] && lockcmd=(flock "$LOCK")
  # The real-node suite is one test whose cases print their own result lines: not captured.
  local extra=()
  [ "$s" = realnode ] && extra=(--nocapture)
  (cd "$ROOT/launcher" && RUSTC_BOOTSTRAP=1 "${lockcmd[@]}" "${BIN[$s]}" -Z unstable-options --report-time "${extra[@]}") \
    >"$f" 2>&1 || rc=$?
  echo "$s $n rc=$rc wall=$((SECONDS - t0))s" >>"$OUT/runs.txt"
  log "run $n $s: rc=$rc in $((SECONDS - t0)) s ($f)"
}

T0=$SECONDS
for n in $(seq 1 "$RUNS"); do
  for s in $SUITES; do
    run_suite "$s" "$n"
  done
done
stop_load
WALL=$((SECONDS - T0))

# Pass counts per test (libtest: `test NAME ... ok <1.234s>`; real-node cases: `=== ok: NAME (1.2s)`).
python3 - "$OUT" "$RUNS" "$WALL" "$LOAD" "$CPU" "$IO" $SUITES <<'EOF'
import re, sys, glob, os, collections
out, runs, wall, load, cpu, io, suites = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:]
libtest = re.compile(r'^test (\S+) \.\.\. (ok|FAILED|ignored)(?: <([\d.]+)s>)?')
case = re.compile(r'^=== (ok|FAILED): (\S+) \(([^)]*)\)')
def secs(d):
    m = re.match(r'([\d.]+)(ms|s|µs|ns)$', d)
    if not m: return 0.0
    return float(m.group(1)) * {'s': 1, 'ms': 1e-3, 'µs': 1e-6, 'ns': 1e-9}[m.group(2)]
passes, seen, times = collections.defaultdict(int), collections.defaultdict(int), collections.defaultdict(list)
suite_ok = collections.defaultdict(int)
for s in suites:
    for n in range(1, runs + 1):
        f = os.path.join(out, f'{s}-{n}.log')
        ok_run = True
        names = set()
        for line in open(f, errors='replace'):
            m = libtest.match(line)
            if m and m.group(2) != 'ignored':
                key = f'{s}::{m.group(1)}'
                names.add(key)
                seen[key] += 1
                passes[key] += m.group(2) == 'ok'
                ok_run &= m.group(2) == 'ok'
                if m.group(3): times[key].append(float(m.group(3)))
            m = case.match(line)
            if m:
                key = f'{s}::case::{m.group(2)}'
                seen[key] += 1
                passes[key] += m.group(1) == 'ok'
                times[key].append(secs(m.group(3)))
        tail = open(f, errors='replace').read()
        ok_run &= bool(names) and 'test result: ok' in tail
        suite_ok[s] += ok_run
print(f'\nsoak: {runs} run(s) of {" ".join(suites)}; load: ' +
      (f'stress-ng --cpu {cpu}' + (f' --hdd {io}' if io != '0' else '') if load == '1' else 'none') +
      f'; wall {wall // 60} min {wall % 60} s; logs {out}')
for s in suites:
    print(f'suite {s}: {suite_ok[s]}/{runs} runs passed')
bad = [k for k in seen if passes[k] < runs]
for k in sorted(seen):
    if passes[k] < runs or seen[k] != runs:
        print(f'  {passes[k]}/{runs} {k}' + ('' if seen[k] == runs else f' (reported {seen[k]}×)'))
print(f'tests: {len(seen)}, every one passed every run: {"yes" if not bad and all(v == runs for v in seen.values()) else "NO"}')
print('slowest (max over runs):')
for k, t in sorted(times.items(), key=lambda kv: -max(kv[1]))[:10]:
    print(f'  {max(t):8.1f} s  {k}')
sys.exit(0 if all(suite_ok[s] == runs for s in suites) and not bad else 1)
EOF
