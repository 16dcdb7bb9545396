#!/usr/bin/env python3
"""Import circles between the files of a crate: prints each strongly connected group of files that use each
other (directly or round about) and exits 1 if there is one. An edge is a `use` or a `crate::`/`super::`
path from one file's non-test code to an item of another file's module. A parent's `mod x;` and its
`pub use x::Item;` re-exports are not edges: they are how the parent presents its children.

Usage: python3 tests/support/import_cycles.py CRATE_SRC_DIR...   (tests/run-all.sh checks the three crates)
"""
import os
import re
import sys


def modules(root):
    """module path (tuple) -> file, for every .rs file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] in ("mod", "main", "lib"):
                rel = rel[:-1]
            out[tuple(rel)] = p
    return out


def code_of(path):
    text = open(path).read()
    # Test modules may use anything of their parent; only the code that ships counts.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("//"):
            continue
        lines.append(line)
    return "\n".join(lines)


def resolve(mods, path):
    """The deepest module of `path` that is a file."""
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def edges(root):
    mods = modules(root)
    out = {m: set() for m in mods}
    for m, f in mods.items():
        code = code_of(f)
        # Paths written from this file: crate::a::b, super::a, self::a, and `use` groups.
        for kind, rest in re.findall(r"\b(crate|super|self)((?:::\w+)+)", code):
            parts = rest.strip(":").split("::")
            if kind == "crate":
                base = []
            elif kind == "super":
                base = list(m[:-1]) if not f.endswith(("mod.rs", "main.rs", "lib.rs")) else list(m[:-1])
            else:
                base = list(m)
            target = resolve(mods, base + parts)
            if target is not None and target != m:
                out[m].add(target)
        for child in re.findall(r"^\s*pub(?:\(crate\))? use (\w+)::", code, re.M):
            # A re-export of a child is the parent's facade, not a use.
            out[m].discard(tuple(list(m) + [child]))
    # A child naming its ancestors' items through `super::` is an edge to the ancestor's file; the
    # ancestor's `mod child;` is not an edge back, so only real uses make a circle.
    return out


def cycles(graph):
    index, low, stack, on, res, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                res.append(sorted("/".join(c) or "<root>" for c in comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return res


def main():
    bad = False
    for root in sys.argv[1:]:
        for c in cycles(edges(root)):
            bad = True
            print(f"{root}: import circle: {' <-> '.join(c)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
