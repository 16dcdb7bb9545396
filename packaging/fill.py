#!/usr/bin/env python3
"""Fills the bundle manifest and the MCP registry entry for one build (packaging/build-mcpb.sh runs it).

  fill.py manifest VERSION LAUNCHER NODE_PROBE > manifest.json   version, platform and the tool list, which
      comes from the launcher's own tools/list (so the bundle never lists a tool the server lacks)
  fill.py server-json VERSION BUNDLE > server.json                 version, download URL, SHA-256 of BUNDLE
"""
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tools(launcher, node_probe):
    """tools/list of the launcher in local mode (no cluster needed), over MCP stdio."""
    proc = subprocess.Popen(
        [launcher, "--local", "--simulate", "dgx-h100-healthy", "--probe-bin", node_probe, "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    def send(msg):
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "k8s-gpu-mcp-packaging", "version": "0"}}})
    result = None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("id") == 1:
            send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        elif msg.get("id") == 2:
            result = msg["result"]["tools"]
            break
    proc.stdin.close()
    proc.wait(timeout=10)
    if not result:
        sys.exit("the launcher listed no tools")
    return [{"name": t["name"], "description": t.get("description", "").split("\n")[0]} for t in result]


def platform():
    return {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)


def main():
    what, version = sys.argv[1], sys.argv[2]
    if what == "manifest":
        with open(os.path.join(HERE, "mcpb", "manifest.json")) as f:
            m = json.load(f)
        m["version"] = version
        m["tools"] = tools(sys.argv[3], sys.argv[4])
        m["compatibility"]["platforms"] = [platform()]
    elif what == "server-json":
        bundle = sys.argv[3]
        with open(bundle, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(HERE, "server.json")) as f:
            m = json.load(f)
        m["version"] = version
        for p in m["packages"]:
            p["version"] = version
            p["identifier"] = p["identifier"].format(version=version, bundle=os.path.basename(bundle))
            p["fileSha256"] = sha
    else:
        sys.exit(f"unknown: {what}")
    json.dump(m, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
