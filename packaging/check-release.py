#!/usr/bin/env python3
"""Checks what packaging/ecosystem.sh generated against the release it was generated from
(packaging/test-release.sh runs it):

  check-release.py RELEASE_DIR VERSION BASE_URL SERVER_SCHEMA

- SHA256SUMS: every archive and bundle, with its real digest.
- gpu-mcp.yaml (krew): one platform per archive, URL and sha256 of that archive, and what krew would install
  from it (the `files` globs applied to the unpacked archive) holds the `bin` and both probes beside it.
- server.json: valid against the MCP registry's schema (SERVER_SCHEMA, from the registry's own Go module), one
  mcpb package per bundle with its URL and digest.
- each .mcpb: its manifest names the version and the archive's OS, and it carries the archive's launcher and
  both node-probe builds byte for byte.
- [package.metadata.binstall] of launcher/ and node-probe/: each target's URL is an asset of this naming
  scheme and, for the archives here, the binary path exists in the archive and is executable.
"""
import fnmatch
import hashlib
import io
import json
import os
import sys
import tarfile
import tomllib
import zipfile

import jsonschema
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def members(archive):
    """{path: (mode, bytes)} of the regular files of a .tar.gz."""
    out = {}
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = (m.mode, t.extractfile(m).read())
    return out


def main():
    rel, version, base_url, schema_path = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/"), sys.argv[4]
    archives = sorted(f for f in os.listdir(rel) if f.endswith(".tar.gz"))
    bundles = sorted(f for f in os.listdir(rel) if f.endswith(".mcpb"))
    check(archives, "no archives")
    check(len(bundles) == len(archives), f"one bundle per archive: {bundles} vs {archives}")
    digests = {f: sha256(os.path.join(rel, f)) for f in archives + bundles}
    plat = {a: a[len(f"k8s-gpu-mcp-{version}-"):-len(".tar.gz")].split("-") for a in archives}

    # SHA256SUMS
    listed = {}
    for line in open(os.path.join(rel, "SHA256SUMS")):
        digest, name = line.split()
        listed[name.lstrip("*")] = digest
    check(listed == digests, f"SHA256SUMS {listed} != real digests {digests}")

    # krew
    krew = yaml.safe_load(open(os.path.join(rel, "gpu-mcp.yaml")))
    check(krew["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2", "krew apiVersion")
    check(krew["kind"] == "Plugin", "krew kind")
    # The manifest's file name is the plugin's name, which kubectl runs as kubectl-gpu_mcp.
    check(krew["metadata"]["name"] == "gpu-mcp", "krew plugin name")
    spec = krew["spec"]
    check(spec["version"] == f"v{version}", f"krew version {spec['version']}")
    for key in ("homepage", "shortDescription", "description"):
        check(spec.get(key), f"krew spec.{key} missing")
    check(len(spec["platforms"]) == len(archives), "krew: one platform per archive")
    for p in spec["platforms"]:
        name = p["uri"].rsplit("/", 1)[-1]
        check(p["uri"] == f"{base_url}/{name}", f"krew uri {p['uri']}")
        check(name in archives, f"krew names {name}, not in the release")
        if name not in archives:
            continue
        check(p["sha256"] == digests[name], f"krew sha256 of {name}")
        check(p["selector"]["matchLabels"] == {"os": plat[name][0], "arch": plat[name][1]},
              f"krew selector of {name}: {p['selector']}")
        # krew: each `from` glob matches entries of the unpacked archive, each moved with its contents into
        # `to` of the install directory.
        files = members(os.path.join(rel, name))
        installed = {}
        for rule in p["files"]:
            parent = os.path.dirname(rule["from"])
            for path, v in files.items():
                if not path.startswith(parent + "/"):
                    continue
                inner = path[len(parent) + 1:]
                if fnmatch.fnmatch(f"{parent}/{inner.split('/', 1)[0]}", rule["from"]):
                    installed[os.path.normpath(os.path.join(rule["to"], inner))] = v
        for want in (p["bin"], "probes/node-probe-linux-amd64", "probes/node-probe-linux-arm64", "LICENSE"):
            check(want in installed, f"krew install of {name} lacks {want}: {sorted(installed)}")
        check(installed.get(p["bin"], (0,))[0] & 0o111, f"krew bin of {name} not executable")

    # server.json
    server = json.load(open(os.path.join(rel, "server.json")))
    schema = json.load(open(schema_path))
    try:
        jsonschema.validate(server, schema)
    except jsonschema.ValidationError as e:
        check(False, f"server.json against {schema_path}: {e.message} at {list(e.absolute_path)}")
    check(server["$schema"] == schema.get("$id"), f"server.json $schema {server['$schema']} != {schema.get('$id')}")
    check(server["version"] == version, "server.json version")
    pk = {p["identifier"]: p for p in server["packages"]}
    check(sorted(pk) == sorted(f"{base_url}/{b}" for b in bundles), f"server.json packages {sorted(pk)}")
    for b in bundles:
        p = pk.get(f"{base_url}/{b}")
        if p:
            check(p["registryType"] == "mcpb" and p["version"] == version, f"server.json package {b}")
            check(p["fileSha256"] == digests[b], f"server.json fileSha256 of {b}")

    # bundles
    for b in bundles:
        a = b[: -len(".mcpb")] + ".tar.gz"
        check(a in archives, f"bundle {b} has no archive")
        if a not in archives:
            continue
        top = a[: -len(".tar.gz")]
        files = members(os.path.join(rel, a))
        z = zipfile.ZipFile(os.path.join(rel, b))
        m = json.loads(z.read("manifest.json"))
        check(m["version"] == version, f"{b}: manifest version {m['version']}")
        check(m["compatibility"]["platforms"] == [plat[a][0]], f"{b}: platforms {m['compatibility']}")
        check(m["tools"], f"{b}: no tools listed")
        check(m["server"]["entry_point"] == "server/k8s-gpu-mcp", f"{b}: entry point")
        for inner in ("k8s-gpu-mcp", "probes/node-probe-linux-amd64", "probes/node-probe-linux-arm64"):
            check(z.read(f"server/{inner}") == files[f"{top}/{inner}"][1], f"{b}: server/{inner} differs from {a}")
            check((z.getinfo(f"server/{inner}").external_attr >> 16) & 0o111, f"{b}: server/{inner} not executable")

    # cargo binstall
    ws = tomllib.load(open(os.path.join(REPO, "Cargo.toml"), "rb"))
    repo = ws["workspace"]["package"]["repository"]
    targets = {"x86_64-unknown-linux-gnu": "linux-amd64", "aarch64-unknown-linux-gnu": "linux-arm64",
               "x86_64-apple-darwin": "darwin-amd64", "aarch64-apple-darwin": "darwin-arm64"}
    for crate, bin_name, want_targets in (("launcher", "k8s-gpu-mcp", targets),
                                          ("node-probe", "node-probe", {t: p for t, p in targets.items() if "linux" in t})):
        meta = tomllib.load(open(os.path.join(REPO, crate, "Cargo.toml"), "rb"))["package"]["metadata"]["binstall"]
        check(meta.get("pkg-fmt") == "tgz", f"{crate}: binstall pkg-fmt")
        check(sorted(meta["overrides"]) == sorted(want_targets), f"{crate}: binstall targets {sorted(meta['overrides'])}")
        for target, ov in meta["overrides"].items():
            subst = {"repo": repo, "version": version, "name": crate_name(crate), "bin": bin_name}
            url, bin_dir = expand(ov["pkg-url"], subst), expand(ov["bin-dir"], subst)
            asset = f"k8s-gpu-mcp-{version}-{want_targets.get(target)}.tar.gz"
            check(url == f"{repo}/releases/download/v{version}/{asset}", f"{crate} {target}: binstall url {url}")
            if asset in archives:
                files = members(os.path.join(rel, asset))
                check(bin_dir in files and files[bin_dir][0] & 0o111,
                      f"{crate} {target}: binstall bin-dir {bin_dir} not an executable in {asset}")

    if failures:
        print("check-release: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"check-release: {len(archives)} archives, {len(bundles)} bundles, krew, server.json, binstall: ok",
          file=sys.stderr)


def crate_name(crate):
    return {"launcher": "k8s-gpu-mcp", "node-probe": "node-probe"}[crate]


def expand(template, subst):
    """binstall's `{ var }` templates (https://github.com/cargo-bins/cargo-binstall/blob/main/SUPPORT.md)."""
    out = template
    for k, v in subst.items():
        out = out.replace("{ " + k + " }", v)
    if "{" in out:
        failures.append(f"binstall template with an unknown variable: {template}")
    return out


if __name__ == "__main__":
    main()
