#!/usr/bin/env python3
"""Write a single-layer container image archive without a container engine.

The archive is both a docker-archive (manifest.json, what `ctr images import` and `docker load` read) and
an OCI image layout (oci-layout, index.json, blobs/sha256/..., what `skopeo copy oci-archive:...` and
`crane push` read): the layer and config blobs are shared by the two indexes.

The layer is deterministic: entries sorted, owner 0:0, mtime 0, so the same inputs give the same digest.

  mkimage.py --tag REF --out FILE.tar [--rootfs DIR] [--file SRC:DEST[:MODE]]... [--symlink DEST:TARGET]...
             [--dir DEST]... [--exclude PREFIX]... [--entrypoint ARG]... [--cmd ARG]... [--label K=V]... [--arch amd64]

--rootfs copies a directory tree (device nodes, sockets and fifos are skipped: the runtime makes /dev);
--file adds one file (mode defaults to the source's); --dir an empty directory; --symlink a link;
--exclude drops rootfs paths starting with PREFIX (relative, e.g. var/cache/apt/).
"""
import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile


def die(msg):
    print(f"mkimage: error: {msg}", file=sys.stderr)
    sys.exit(1)


class Layer:
    """Entries by path; written sorted so parents precede children and the digest is stable."""

    def __init__(self):
        self.entries = {}

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p and p not in self.entries:
                self.entries[p] = ("dir", 0o755, None)

    def add_dir(self, path, mode=0o755):
        path = path.strip("/")
        if path:
            self._parents(path)
            self.entries[path] = ("dir", mode, None)

    def add_file(self, path, src, mode):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = ("file", mode, src)

    def add_symlink(self, path, target):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = ("symlink", 0o777, target)

    def add_rootfs(self, root, excludes):
        root = os.path.abspath(root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.join(rel_dir, name) if rel_dir else name
                if any(rel == e.rstrip("/") or rel.startswith(e) for e in excludes):
                    continue
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self.entries[rel] = ("symlink", 0o777, os.readlink(full))
                elif stat.S_ISDIR(st.st_mode):
                    self.entries[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
                elif stat.S_ISREG(st.st_mode):
                    self.entries[rel] = ("file", stat.S_IMODE(st.st_mode), full)
                # device nodes, sockets and fifos: skipped on purpose

    def write(self, fileobj):
        with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, mode, data = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mode, info.uid, info.gid, info.mtime = mode, 0, 0, 0
                info.uname = info.gname = "root"
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, data
                    tar.addfile(info)
                else:
                    info.size = os.path.getsize(data)
                    with open(data, "rb") as f:
                        tar.addfile(info, f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", required=True, help="image reference, e.g. ghcr.io/k8s-gpu-mcp/node-probe:v0.1.0")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rootfs")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--dir", action="append", default=[])
    ap.add_argument("--symlink", action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--env", action="append", default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--arch", default="amd64")
    a = ap.parse_args()

    layer = Layer()
    if a.rootfs:
        if not os.path.isdir(a.rootfs):
            die(f"--rootfs {a.rootfs} is not a directory")
        layer.add_rootfs(a.rootfs, a.exclude)
    for d in a.dir:
        layer.add_dir(d)
    for spec in a.file:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            die(f"--file {spec}: expected SRC:DEST[:MODE]")
        src, dest = parts[0], parts[1]
        if not os.path.isfile(src):
            die(f"--file {spec}: {src} is not a file")
        mode = int(parts[2], 8) if len(parts) == 3 else stat.S_IMODE(os.stat(src).st_mode)
        layer.add_file(dest, os.path.realpath(src), mode)
    for spec in a.symlink:
        dest, _, target = spec.partition(":")
        if not target:
            die(f"--symlink {spec}: expected DEST:TARGET")
        layer.add_symlink(dest, target)

    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    layer_path = a.out + ".layer.tmp"
    with open(layer_path, "wb") as f:
        layer.write(f)
    layer_digest = sha256_file(layer_path)
    layer_size = os.path.getsize(layer_path)

    labels = dict(kv.split("=", 1) for kv in a.label)
    config = {
        "architecture": a.arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": a.env, "Cmd": a.cmd or None, "Labels": labels or None},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "deploy/probe-image/mkimage.py"}],
    }
    if a.entrypoint:
        config["config"]["Entrypoint"] = a.entrypoint
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{config_digest}", "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{layer_digest}", "size": layer_size}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": f"sha256:{manifest_digest}", "size": len(manifest_bytes),
                       "annotations": {"io.containerd.image.name": a.tag,
                                       "org.opencontainers.image.ref.name": a.tag.rsplit(":", 1)[-1]}}],
    }
    docker_manifest = [{"Config": f"blobs/sha256/{config_digest}", "RepoTags": [a.tag],
                        "Layers": [f"blobs/sha256/{layer_digest}"]}]

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        def add_bytes(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))

        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", json.dumps(index, sort_keys=True).encode())
        add_bytes(f"blobs/sha256/{manifest_digest}", manifest_bytes)
        add_bytes(f"blobs/sha256/{config_digest}", config_bytes)
        tar.add(layer_path, arcname=f"blobs/sha256/{layer_digest}",
                filter=lambda i: (setattr(i, "mtime", 0), setattr(i, "uid", 0), setattr(i, "gid", 0),
                                  setattr(i, "mode", 0o644), i)[-1])
        add_bytes("manifest.json", json.dumps(docker_manifest).encode())
    os.remove(layer_path)
    os.replace(tmp, a.out)
    print(f"mkimage: {a.tag} -> {a.out} (layer {layer_size} bytes, sha256:{layer_digest[:12]})", file=sys.stderr)


if __name__ == "__main__":
    main()
