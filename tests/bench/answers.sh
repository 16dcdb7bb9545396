#!/usr/bin/env bash
# Answer sizes: every node tool on every built-in scenario (local mode, the same MCP code path as a host),
# the text an AI reads and the structured content, in bytes and in tokens estimated as bytes / 4 (no tokenizer:
# a rough, stated estimate). Prints one table per measure and the largest answers.
# Usage: bash tests/bench/answers.sh   (env: BENCH_PROFILE=release|dev)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PROFILE=${BENCH_PROFILE:-dev}
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p k8s-gpu-mcp -p node-probe
  BINDIR=target/release
else
  cargo build -q -p k8s-gpu-mcp -p node-probe
  BINDIR=target/debug
fi
python3 - "$BINDIR" <<'EOF'
import json, subprocess, sys
bindir = sys.argv[1]
launcher = f"{bindir}/k8s-gpu-mcp"
listing = subprocess.run([f"{bindir}/node-probe", "scenarios"], capture_output=True, text=True, check=True)
scenarios = [s["name"] for s in json.loads(listing.stdout)["scenarios"]["scenarios"]]
# The node tools, from the registry (those whose only required argument is node_name).
listed = subprocess.run([launcher, "--local", "--simulate", scenarios[0], "call", "list", "--output", "json"],
                        capture_output=True, text=True, check=True)
tools = sorted(t["name"] for t in json.loads(listed.stdout)
               if t["inputSchema"].get("required") == ["node_name"])
text, structured = {}, {}
for sc in scenarios:
    for t in tools:
        base = [launcher, "--local", "--simulate", sc, "call", t, "--arg", "node_name=local"]
        out = subprocess.run(base, capture_output=True, text=True)
        text[(sc, t)] = len(out.stdout.encode())
        js = subprocess.run(base + ["--output", "json"], capture_output=True, text=True)
        structured[(sc, t)] = len(js.stdout.encode())

def table(title, d):
    print(f"\n{title} (KiB; tokens ~ bytes/4 in thousands in brackets)\n")
    print("| scenario | " + " | ".join(t.replace("get_", "").replace("gpu_", "") for t in tools) + " |")
    print("|---" * (len(tools) + 1) + "|")
    for sc in scenarios:
        cells = [f"{d[(sc, t)] / 1024:.1f} [{d[(sc, t)] / 4000:.1f}k]" for t in tools]
        print(f"| {sc} | " + " | ".join(cells) + " |")
    print(f"\nlargest: " + ", ".join(f"{t} on {sc} {v / 1024:.0f} KiB"
                                    for (sc, t), v in sorted(d.items(), key=lambda kv: -kv[1])[:5]))

table("text rendering", text)
table("structured content (JSON)", structured)
EOF
