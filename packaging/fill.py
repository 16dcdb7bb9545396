#!/usr/bin/env python3
"""Fills the bundle manifest and the MCP registry entry for one build (packaging/build-mcpb.sh runs it).

  fill.py manifest VERSION LAUNCHER NODE_PROBE > manifest.json   version, platform and the tool list, which
      comes from the launcher's own tools/list (so the bundle never lists a tool the server lacks)
  fill.py server-json VERSION BUNDLE > server.json                 version, download URL, SHA-256 of BUNDLE

From a release (packaging/ecosystem.sh runs these):
  fill.py manifest VERSION LAUNCHER NODE_PROBE OS > manifest.json  the bundle of another platform's archive
  fill.py release-server-json VERSION BASE_URL BUNDLE... > server.json   one mcpb package per bundle
  fill.py krew VERSION BASE_URL ARCHIVE... > gpu-mcp.yaml            the krew plugin manifest
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


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def os_arch(path, version, ext):
    """(os, arch) of a release asset named k8s-gpu-mcp-VERSION-OS-ARCH.EXT (packaging/release.sh)."""
    name = os.path.basename(path)
    prefix = f"k8s-gpu-mcp-{version}-"
    if not (name.startswith(prefix) and name.endswith(ext)):
        sys.exit(f"{name}: not a k8s-gpu-mcp {version} asset (k8s-gpu-mcp-{version}-OS-ARCH{ext})")
    plat = name[len(prefix):-len(ext)].split("-")
    if len(plat) != 2 or plat[0] not in ("linux", "darwin") or plat[1] not in ("amd64", "arm64"):
        sys.exit(f"{name}: unknown platform")
    return plat[0], plat[1]


def release_server_json(version, base_url, bundles):
    """The registry entry with one mcpb package per platform bundle: the registry has no architecture field
    yet, so each OS/arch is its own package (modelcontextprotocol/registry#865)."""
    with open(os.path.join(HERE, "server.json")) as f:
        m = json.load(f)
    template = m["packages"][0]
    m["version"] = version
    m["packages"] = []
    for b in sorted(bundles):
        os_arch(b, version, ".mcpb")
        p = dict(template)
        p["version"] = version
        p["identifier"] = f"{base_url.rstrip('/')}/{os.path.basename(b)}"
        p["fileSha256"] = sha256(b)
        m["packages"].append(p)
    return m


KREW_DESCRIPTION = """\
    Answers GPU-node questions (XID errors, ECC and row remaps, NVLink and PCIe,
    throttling, which pod holds which GPU) by starting a short-lived privileged
    probe pod on the node and deleting it afterwards. Also an MCP server for AI
    assistants: `kubectl gpu-mcp serve`.

    Check the cluster first:  kubectl gpu-mcp check
    Ask one question:         kubectl gpu-mcp call get_gpu_health --arg node_name=NODE
    Watch a job's GPUs live:  kubectl gpu-mcp top job/NAME -n NAMESPACE
"""

KREW_CAVEATS = """\
    The probe pod is privileged: root on the GPU node. Create its namespace and
    RBAC first (as a cluster admin): kubectl gpu-mcp setup --apply
    Then: kubectl gpu-mcp check
"""


def krew(version, base_url, archives):
    """The krew plugin manifest (https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/): plugin
    `gpu-mcp`, so kubectl runs `kubectl-gpu_mcp`, a link krew makes to the launcher. Each archive's top
    directory is extracted whole, so probes/ stays beside the launcher."""
    out = [
        "apiVersion: krew.googlecontainertools.github.com/v1alpha2",
        "kind: Plugin",
        "metadata:",
        "  name: gpu-mcp",
        "spec:",
        f'  version: "v{version}"',
        "  homepage: https://github.com/k8s-gpu-mcp/k8s-gpu-mcp",
        '  shortDescription: "Diagnose GPU nodes: XID, ECC, NVLink, owners"',
        "  description: |",
        KREW_DESCRIPTION.rstrip("\n"),
        "  caveats: |",
        KREW_CAVEATS.rstrip("\n"),
        "  platforms:",
    ]
    for a in sorted(archives):
        os_name, arch = os_arch(a, version, ".tar.gz")
        top = os.path.basename(a)[: -len(".tar.gz")]
        out += [
            "  - selector:",
            "      matchLabels:",
            f"        os: {os_name}",
            f"        arch: {arch}",
            f"    uri: {base_url.rstrip('/')}/{os.path.basename(a)}",
            f"    sha256: {sha256(a)}",
            "    files:",
            f'    - from: "{top}/*"',
            '      to: "."',
            "    bin: k8s-gpu-mcp",
        ]
    return "\n".join(out) + "\n"


def main():
    what, version = sys.argv[1], sys.argv[2]
    if what == "manifest":
        with open(os.path.join(HERE, "mcpb", "manifest.json")) as f:
            m = json.load(f)
        m["version"] = version
        m["tools"] = tools(sys.argv[3], sys.argv[4])
        m["compatibility"]["platforms"] = [sys.argv[5] if len(sys.argv) > 5 else platform()]
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
    elif what == "release-server-json":
        m = release_server_json(version, sys.argv[3], sys.argv[4:])
    elif what == "krew":
        sys.stdout.write(krew(version, sys.argv[3], sys.argv[4:]))
        return
    else:
        sys.exit(f"unknown: {what}")
    json.dump(m, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
