#!/usr/bin/env python3
"""A conversation about one node, for the benchmarks (tests/bench/k8s.sh on kwok, tests/bench/realnode.sh on a
real node): five different read-only node tools in a row, as an AI host asks them, over several rounds.

  conversation.py plan MODE ROUNDS NODE SERVER_JSON STDERR
      an mcp_call.py plan: ROUNDS + 1 rounds (the first warms the server up and is not counted); MODE `cold`
      adds --reading-max-age 0 (every question probes), `kept` asks the round's first question with
      max_age_s 0 (it reads the node) and the next four answer from that reading.
  conversation.py kubectl PER ROUNDS NODE NAMESPACE POD_YAML KUBECTL...
      kubectl's flow for the same questions, as mcp_call.py's results: PER `question` makes a pod for each
      question (create, wait Ready, exec node-probe COMMAND, delete), PER `round` one pod for a round's five
      (create and wait before the first, delete after the last). POD_YAML names the pod NAME and runs
      node-probe from its image.
  conversation.py table LABEL=RESULTS.json=AUDIT.log ...
      one row per flow: pods and API requests per question (the audit log of the user, from the first counted
      question on), p50/p95 per question, p50 of a round's first and of its later questions, of a round, and
      the reused answers' ages.
"""
import json
import subprocess
import sys
import time
from datetime import datetime

TOOLS = [
    ("get_gpu_health", "health"),
    ("get_gpu_processes", "processes"),
    ("inspect_topology", "topology"),
    ("snapshot_ecc", "ecc"),
    ("get_gpu_inventory", "inventory"),
]
N = len(TOOLS)


def plan(mode, rounds, node, server, stderr):
    server = json.loads(server)
    if mode == "cold":
        server += ["--reading-max-age", "0"]
    calls = []
    for _ in range(int(rounds) + 1):
        for i, (tool, _) in enumerate(TOOLS):
            a = {"node_name": node}
            if mode == "kept" and i == 0:
                a["max_age_s"] = 0
            calls.append({"tool": tool, "arguments": a})
    print(json.dumps({"server": server, "stderr": stderr, "timeout": 120, "calls": calls}))


def kubectl(per, rounds, node, ns, pod_yaml, kc):
    template = open(pod_yaml).read()
    results = []

    def run(*args, stdin=None):
        p = subprocess.run(list(kc) + list(args), input=stdin, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            sys.exit(f"kubectl {' '.join(args)}: {p.stderr.strip()[:500]}")
        return p.stdout

    def start(name):
        run("create", "-f", "-", stdin=template.replace("NAME", name))
        run("-n", ns, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")

    def stop(name):
        run("-n", ns, "delete", "pod", name, "--grace-period=0", "--force", "--wait=true")

    for r in range(int(rounds) + 1):
        pod = f"bench-conv-{per}-{r}"
        for i, (_, command) in enumerate(TOOLS):
            t0, w0 = time.time(), time.monotonic()
            name = pod if per == "round" else f"{pod}-{i}"
            if per == "question" or i == 0:
                start(name)
            out = run("-n", ns, "exec", name, "-c", "probe", "--", "node-probe", command, "--node-name", node)
            if "probe" not in json.loads(out):
                sys.exit(f"node-probe {command}: no probe section in {out[:300]}")
            if per == "question" or i == N - 1:
                stop(name)
            results.append({"tool": command, "ms": (time.monotonic() - w0) * 1000, "start_unix": t0,
                            "is_error": False, "structured": None})
    print(json.dumps({"results": results}))


def table(rows):
    at = lambda ts: datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    pct = lambda v, p: sorted(v)[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
    print("| flow | questions | pods a question | API requests a question | p50 ms a question | p95 ms a question "
          "| p50 ms, a round's first | p50 ms, its later four | p50 ms a round (5) | reused answers, their age |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        label, results, audit = row.split("=", 2)
        res = json.load(open(results))["results"][N:]
        ev = [json.loads(line) for line in open(audit) if line.strip()]
        ev = [e for e in ev if e.get("stage") in (None, "ResponseComplete")
              and at(e["requestReceivedTimestamp"]) >= res[0]["start_unix"]]
        pods = sum(1 for e in ev if e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "pods"
                   and not e.get("objectRef", {}).get("subresource"))
        ms = [r["ms"] for r in res]
        first = ms[0::N]
        later = [m for k, m in enumerate(ms) if k % N]
        rounds = [sum(ms[i:i + N]) for i in range(0, len(ms), N)]
        reused = [r["structured"]["run"].get("reading_age_s") for r in res
                  if r.get("structured") and r["structured"].get("run", {}).get("reading_reused")]
        errors = sum(1 for r in res if r["is_error"])
        age = f"{len(reused)}, {min(reused)}-{max(reused)} s" if reused else "0"
        print(f"| {label} | {len(res)}{f' ({errors} errors)' if errors else ''} | {pods / len(res):.2f} "
              f"| {len(ev) / len(res):.2f} | {pct(ms, 50):.0f} | {pct(ms, 95):.0f} | {pct(first, 50):.0f} "
              f"| {pct(later, 50):.0f} | {pct(rounds, 50):.0f} | {age} |")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plan":
        plan(*args)
    elif cmd == "kubectl":
        kubectl(args[0], args[1], args[2], args[3], args[4], args[5:])
    elif cmd == "table":
        table(args)
    else:
        sys.exit(__doc__)
