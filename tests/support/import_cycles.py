#!/usr/bin/env python3
"""Import circles between the files of a crate: prints each strongly connected group of files that use each
other (directly or round about), with the line of each use that closes it, and exits 1 if there is one
that the allow-list does not name.

An edge is any path from one file's non-test code to an item of another file's module, in every form Rust
writes one: `crate::a::b`, `self::a`, `super::a` (repeated), `$crate::a` in a macro, a bare child path
(`a::b` where `a` is a child module of the file's module), a name brought in by a `use` (`use crate::a;`
then `a::b::f()`), inside grouped uses (`use a::{b, c::{d}}`), expressions, types, attributes and macro
bodies (`format!`, `json!`, a crate's own macros) and attributes' strings (`#[serde(with = "crate::a::b")]`):
paths are read from the tokens of the code, with comments and other string literals left out. A `#[macro_export]` macro (named at the crate root) is an edge
to the file that defines it. A name re-exported by a module (`pub use child::Item;`, or a glob
of a child) resolves to the file that defines it. A parent's `mod x;` and its re-exports of its own
descendants are not edges: they are how the parent presents its children. `#[cfg(test)]` items are left
out: test modules may use anything of their parent; only the code that ships counts.

Circles are looked for twice: between files, and between the modules of each folder with each of its
folders counted whole (every file in it, at any depth; named with a trailing `/`, `analysis/nic/`). The
second finds two folders that use each other while no file circle closes: `topology/mod.rs` ->
`nic/mod.rs` -> `nic/affinity.rs` -> `topology/pci_relation.rs`, which uses nothing. The folder's own
file (its mod.rs, the crate root) is in none of its folder's modules; the file circles judge it.
`#[path = "..."]` names a file, not a module path: its string is no edge, and since modules are read from
the file tree, a non-test `#[path]` module fails the run (it would be misnamed; under `#[cfg(test)]` it is
left out with the tests).

Known circles being removed are listed, with why, in tests/support/import_cycles.allow; they are printed
and do not fail the run, a circle not listed does, and so does a listed one that is gone (delete its line:
the list only shrinks).

Layers: tests/support/import_layers declares, per crate, the order of its top-level modules (folders and
files of its src/), top first, `>` between levels and `|` between peers on one level, and may do the same
for a folder inside (`*`: all its modules are peers). A file may use its own layer and the layers below it;
a use of a layer above it, or of a peer on its own level, fails the run with the file:line of the use, and
so does a module the line does not name (a new folder says where it stands). The crate root (main.rs,
lib.rs), or the folder's mod.rs, wires every layer and is in none.

Usage: python3 tests/support/import_cycles.py CRATE_SRC_DIR...   (tests/run-all.sh checks the three crates)
       (circles, then the layers of the crates import_layers names)
       python3 tests/support/import_cycles.py --self-test        (the fixtures in tests/support/import_cycles/)
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOW = os.path.join(HERE, "import_cycles.allow")
LAYERS = os.path.join(HERE, "import_layers")
FIXTURES = os.path.join(HERE, "import_cycles")
REPO = os.path.dirname(os.path.dirname(HERE))


def crate_key(root):
    """A crate directory as the allow-list names it: relative to the repository root."""
    return os.path.relpath(os.path.abspath(root), REPO)

# ------------------------------------------------------------------------------------------ tokens

IDENT = re.compile(r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*")
# A path written in an attribute's string: `#[serde(with = "crate::a::b")]`, `#[schemars(with = "...")]`.
PATH_IN_STRING = re.compile(r"(?:::)?[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+")


def tokens(text):
    """(kind, value, line) of the code: identifiers ('id'), `::`, single punctuation ('p') and plain string
    literals ('str', with their quotes). Comments, raw/byte/char literals, numbers and lifetimes are dropped."""
    out = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif re.match(r'(?:b|c)?r#*"', text[i:i + 40]):
            m = re.match(r'(?:b|c)?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            line += text.count("\n", i, end)
            i = end
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1)):
            j = i + (1 if c == '"' else 2)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if c == '"':  # kept, quoted, for the paths attributes name in strings (`with = "crate::a::f"`)
                out.append(("str", text[i:j + 1], line))
            line += text.count("\n", i, j)
            i = j + 1
        elif c == "'" or (c == "b" and text.startswith("'", i + 1)):
            j = i + (1 if c == "'" else 2)
            m = re.match(r"(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]*\}|.)|[^\\'])'", text[j:j + 12], re.S)
            if m:  # a char literal
                i = j + m.end()
            else:  # a lifetime or label: 'a
                m = IDENT.match(text, j)
                i = m.end() if m else j
        elif c == "$" and IDENT.match(text, i + 1):
            m = IDENT.match(text, i + 1)
            name = m.group(0)
            # `$crate` is the crate root; other `$x` are macro metavariables, no module.
            out.append(("id", "crate" if name == "crate" else "$" + name, line))
            i = m.end()
        elif c.isdigit():
            m = re.match(r"[0-9][0-9A-Za-z_]*(?:\.[0-9][0-9A-Za-z_]*)?", text[i:])
            i += m.end()
        elif IDENT.match(text, i):
            m = IDENT.match(text, i)
            out.append(("id", m.group(0).removeprefix("r#"), line))
            i = m.end()
        elif text.startswith("::", i):
            out.append(("::", "::", line))
            i += 2
        else:
            out.append(("p", c, line))
            i += 1
    return out


def skip_item(toks, i):
    """Index after the item starting at toks[i]: up to a `;` at depth 0 or the end of its first brace
    block at depth 0 (attributes before it included)."""
    depth = 0
    while i < len(toks):
        k, v, _ = toks[i]
        if v in "([":
            depth += 1
        elif v in ")]":
            depth -= 1
        elif v == "{":
            if depth == 0:
                j, d = i, 0
                while j < len(toks):
                    if toks[j][1] == "{":
                        d += 1
                    elif toks[j][1] == "}":
                        d -= 1
                        if d == 0:
                            return j + 1
                    j += 1
                return j
            depth += 1
        elif v == "}":
            depth -= 1
        elif v == ";" and depth == 0:
            return i + 1
        i += 1
    return i


def strip_cfg_test(toks):
    """The tokens without `#[cfg(test)]` items."""
    out, i = [], 0
    while i < len(toks):
        if [t[1] for t in toks[i:i + 7]] == ["#", "[", "cfg", "(", "test", ")", "]"]:
            i = skip_item(toks, i + 7)
            continue
        out.append(toks[i])
        i += 1
    return out


# ------------------------------------------------------------------------------------------ paths


def path_at(toks, i):
    """The path starting at toks[i] (a leading `::` allowed): (segments, index after). Turbofish and
    generics end it; `{` after `::` is a use group, returned as the index of the `{`."""
    segs = []
    if toks[i][0] == "::":
        i += 1
    while i < len(toks) and toks[i][0] == "id":
        segs.append(toks[i][1])
        if i + 1 < len(toks) and toks[i + 1][0] == "::" and i + 2 < len(toks) and toks[i + 2][0] == "id":
            i += 2
            continue
        i += 1
        break
    return segs, i


def use_tree(toks, i, prefix, out):
    """Parse a use tree at toks[i] under `prefix`; append (path, alias, line) per leaf. Returns the index
    after the tree."""
    line = toks[i][2] if i < len(toks) else 0
    if toks[i][0] == "::":
        i += 1
    segs = []
    while i < len(toks):
        k, v, line = toks[i]
        if k == "id":
            segs.append(v)
            i += 1
            if i < len(toks) and toks[i][0] == "::":
                i += 1
                continue
            break
        if v == "*":
            out.append((prefix + segs, "*", line))
            return i + 1
        if v == "{":
            i += 1
            while i < len(toks) and toks[i][1] != "}":
                if toks[i][1] == ",":
                    i += 1
                    continue
                i = use_tree(toks, i, prefix + segs, out)
            return i + 1
        break
    alias = segs[-1] if segs else None
    if i < len(toks) and toks[i][1] == "as" and i + 1 < len(toks):
        alias = toks[i + 1][1]
        i += 2
    if segs and segs[-1] == "self":  # `use a::{self}` names `a`
        segs = segs[:-1]
        alias = alias if alias != "self" else (segs[-1] if segs else None)
    if segs or prefix:
        out.append((prefix + segs, alias, line))
    return i


class File:
    def __init__(self, mod, path):
        self.mod, self.path = mod, path
        text = open(path, encoding="utf-8").read()
        self.toks = strip_cfg_test(tokens(text))
        self.uses = []  # (scope, path, alias, line, is_pub)
        self.paths = []  # (scope, path, line)
        self.defines = set()  # item names defined at the top of the file (for glob re-exports)
        self.inline = set()  # inline (non-test) modules: `mod x { ... }`
        self.exported_macros = set()  # `#[macro_export]`: named at the crate root, defined here
        self.path_attributes = []  # lines of `#[path = "..."]` (non-test): a module this check cannot place
        self.scan()

    def attribute_tokens(self):
        """Indices of the tokens inside attributes (`#[...]`, `#![...]`)."""
        toks, inside, i = self.toks, set(), 0
        while i < len(toks):
            j = i + 1 + (i + 1 < len(toks) and toks[i + 1][1] == "!")
            if toks[i][1] == "#" and j < len(toks) and toks[j][1] == "[":
                depth, k = 0, j
                while k < len(toks):
                    if toks[k][0] == "p" and toks[k][1] == "[":
                        depth += 1
                    elif toks[k][0] == "p" and toks[k][1] == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    inside.add(k)
                    k += 1
                i = k
            i += 1
        return inside

    def scan(self):
        toks, i = self.toks, 0
        in_attribute = self.attribute_tokens()
        scope = list(self.mod)
        stack = []  # braces: inline module name or None
        while i < len(toks):
            k, v, line = toks[i]
            if v == "{":
                stack.append(None)
                i += 1
                continue
            if v == "}":
                if stack and stack.pop() is not None:
                    scope.pop()
                i += 1
                continue
            if k == "id" and v == "use" and not (i > 0 and toks[i - 1][1] in ("$", ".")):
                before = [t[1] for t in toks[max(0, i - 5):i]]
                # `pub use`, `pub(crate) use`, `pub(in a::b) use`
                is_pub = bool(before) and (before[-1] == "pub" or (before[-1] == ")" and "pub" in before))
                leaves = []
                j = use_tree(toks, i + 1, [], leaves)
                for p, alias, ln in leaves:
                    self.uses.append((tuple(scope), p, alias, ln, is_pub))
                i = j
                continue
            if k == "id" and v == "mod" and i + 1 < len(toks) and toks[i + 1][0] == "id":
                name = toks[i + 1][1]
                if i + 2 < len(toks) and toks[i + 2][1] == "{":
                    self.inline.add(tuple(scope) + (name,))
                    scope.append(name)
                    stack.append(name)
                    i += 3
                    continue
                i += 2
                continue
            if k == "id" and v in ("fn", "struct", "enum", "trait", "type", "const", "static", "union") \
                    and i + 1 < len(toks) and toks[i + 1][0] == "id" and not stack:
                self.defines.add(toks[i + 1][1])
            if k == "id" and v == "macro_rules" and i + 2 < len(toks) and toks[i + 2][0] == "id":
                self.defines.add(toks[i + 2][1])
                if [t[1] for t in toks[max(0, i - 4):i]] == ["#", "[", "macro_export", "]"]:
                    self.exported_macros.add(toks[i + 2][1])
            if [t[1] for t in toks[i:i + 4]] == ["#", "[", "path", "="]:
                self.path_attributes.append(line)
            if k == "str" and i in in_attribute and PATH_IN_STRING.fullmatch(v[1:-1]):
                self.paths.append((tuple(scope), v[1:-1].lstrip(":").split("::"), line))
            starts_path = k == "id" and not v.startswith("$")
            # `::std::x` (a leading `::`), not the `::` inside a path
            starts_path |= k == "::" and i + 1 < len(toks) and toks[i + 1][0] == "id" and not (
                i > 0 and toks[i - 1][0] == "id")
            if starts_path:
                if i > 0 and toks[i - 1][0] == "::":  # the middle of a path already read
                    i += 1
                    continue
                if i > 0 and toks[i - 1][1] == ".":  # a method or field: x.y::<T>()
                    i += 1
                    continue
                if i > 1 and toks[i - 1][1] == "in" and toks[i - 2][1] == "(":  # pub(in crate::a)
                    i += 1
                    continue
                segs, j = path_at(toks, i)
                if len(segs) >= 2:
                    self.paths.append((tuple(scope), segs, line))
                i = max(j, i + 1)
                continue
            i += 1


class Crate:
    def __init__(self, root):
        self.root = root
        self.files = {}
        for d, _, names in os.walk(root):
            for f in sorted(names):
                if not f.endswith(".rs"):
                    continue
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)[:-3].split(os.sep)
                if rel[-1] in ("mod", "main", "lib"):
                    rel = rel[:-1]
                self.files[tuple(rel)] = File(tuple(rel), p)
        # Names bound by `use` per scope (module path, file or inline): alias -> absolute path.
        self.bound = {}
        for f in self.files.values():
            for scope, p, alias, _, _ in f.uses:
                if alias and alias != "*":
                    self.bound.setdefault(scope, {})[alias] = (scope, p)

    def file_of(self, path):
        """The deepest module of `path` that is a file."""
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in self.files:
                return tuple(path[:n])
        return None

    def absolute(self, scope, segs, depth=0):
        """The absolute module path of `segs` written in `scope`, or None (std, an external crate, a local
        name)."""
        if not segs or depth > 20:
            return None
        head, rest = segs[0], list(segs[1:])
        if head == "crate":
            return rest
        if head == "self":
            return list(scope) + rest
        if head == "super":
            base = list(scope)
            while True:
                if not base:
                    return None
                base = base[:-1]
                if rest and rest[0] == "super":
                    rest = rest[1:]
                    continue
                return base + rest
        if tuple(scope) + (head,) in self.files or self.is_inline(tuple(scope) + (head,)):
            return list(scope) + segs  # a child module
        b = self.bound.get(tuple(scope), {}).get(head)
        if b:
            bscope, bpath = b
            target = self.absolute(bscope, bpath, depth + 1)
            return None if target is None else target + rest
        return None

    def is_inline(self, path):
        return any(path in f.inline for f in self.files.values())

    def resolve(self, path, depth=0):
        """The file that defines what absolute `path` names, following re-exports."""
        f = self.file_of(path)
        if f is None or depth > 20:
            return f
        if f == () and len(path) == 1:
            for m, file in self.files.items():
                if path[0] in file.exported_macros:
                    return m
        if len(path) > len(f):
            name = path[len(f)]
            rest = list(path[len(f) + 1:])
            file = self.files[f]
            for scope, p, alias, _, _ in file.uses:
                if scope != f:
                    continue
                if alias == name:
                    target = self.absolute(scope, p)
                    if target is not None:
                        return self.resolve(target + rest, depth + 1)
                elif alias == "*":
                    target = self.absolute(scope, p)
                    if target is not None:
                        tf = self.file_of(target)
                        if tf is not None and tf != f and tuple(target) == tf and name in self.files[tf].defines:
                            return self.resolve(target + [name] + rest, depth + 1)
        return f

    def edges(self):
        """file -> {file: line of the first use}."""
        out = {m: {} for m in self.files}
        for m, f in self.files.items():
            refs = [(scope, p, line) for scope, p, _, line, is_pub in f.uses if not is_pub]
            for scope, p, _, line, is_pub in f.uses:
                if is_pub:
                    target = self.absolute(scope, p)
                    # A re-export of the file's own descendants is its facade, not a use.
                    if target is not None and tuple(target[:len(m)]) == m and len(target) > len(m):
                        continue
                    refs.append((scope, p, line))
            refs += f.paths
            for scope, p, line in refs:
                target = self.absolute(scope, p)
                if target is None:
                    continue
                t = self.resolve(target)
                if t is not None and t != m and t not in out[m]:
                    out[m][t] = line
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
                res.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return res


def name(mod):
    return "/".join(mod) or "<root>"


def folder_circles(crate, graph):
    """[(sorted names, [edge lines])]: circles between the modules of one folder when each of its folders
    counts whole (every file in it, at any depth), as `nic/` and `topology/` of one parent, neither of whose
    files makes a circle with the other's (`topology/mod.rs` -> `nic/mod.rs` -> `nic/affinity.rs` ->
    `topology/pci_relation.rs`, which uses nothing). The folder's own file (mod.rs, the crate root) is in
    none of them: the file circles judge it. A circle of plain files only is a file circle, named there."""
    out = []
    for p in sorted({m[:k] for m in crate.files for k in range(len(m))}):
        n = len(p)
        inside = [m for m in sorted(crate.files) if m[:n] == p and len(m) > n]
        folders = {m[n] for m in inside if len(m) > n + 1}
        g, uses = {}, {}
        for a in inside:
            for b, line in sorted(graph[a].items()):
                if b[:n] == p and len(b) > n and b[n] != a[n]:
                    g.setdefault(a[n], set()).add(b[n])
                    uses.setdefault((a[n], b[n]), []).append((a, b, line))
        for comp in cycles(g):
            if not folders & set(comp):
                continue
            label = lambda c: name(p + (c,)) + ("/" if c in folders else "")
            why = [f"{os.path.relpath(crate.files[a].path)}:{line} -> {name(b)}"
                   for a, line, b in sorted((a, line, b) for x in comp for y in comp
                                            for a, b, line in uses.get((x, y), []))]
            out.append((sorted(label(c) for c in comp), why))
    return out


def circles(root):
    """[(sorted names, [edge lines])] of one crate: the circles of files, then those of folders (a folder's
    name ends with `/`)."""
    crate = Crate(root)
    graph = crate.edges()
    out = []
    for comp in cycles(graph):
        members = set(comp)
        why = []
        for a in sorted(comp):
            for b, line in sorted(graph[a].items()):
                if b in members:
                    why.append(f"{os.path.relpath(crate.files[a].path)}:{line} -> {name(b)}")
        out.append((sorted(name(c) for c in comp), why))
    return out + folder_circles(crate, graph)


def read_allow(path):
    """{(crate dir, frozenset of members)} from the allow-list: `DIR: a <-> b <-> c` lines (DIR relative to the
    repository root), # comments."""
    out = set()
    if not os.path.exists(path):
        return out
    for raw in open(path, encoding="utf-8"):
        s = raw.split("#", 1)[0].strip()
        if not s:
            continue
        d, members = s.split(":", 1)
        out.add((d.strip().rstrip("/"), frozenset(m.strip() for m in members.split("<->"))))
    return out


def read_layers(path, base):
    """{folder (absolute): [[layer, ...] per level, top first]} from a layers file: `DIR: a | b > c > d`
    lines (DIR relative to `base`: a crate's src/ or a folder in it; `DIR: *` makes every module of the
    folder a peer of the others), # comments."""
    out = {}
    if not os.path.exists(path):
        return out
    for raw in open(path, encoding="utf-8"):
        s = raw.split("#", 1)[0].strip()
        if not s:
            continue
        d, spec = s.split(":", 1)
        levels = [[m.strip() for m in level.split("|")] for level in spec.split(">")]
        out[os.path.abspath(os.path.join(base, d.strip()))] = levels
    return out


def layer_breaches(root, layers, crate=None):
    """(modules in no layer, [(from, to, where, why)]) of one crate, for every folder of it that `layers`
    names: each use, between two modules of that folder, of a layer above the user's or of a peer on its
    level. The folder's own file (the crate root, a mod.rs) wires its layers and is in none."""
    crate = crate or Crate(root)
    graph = crate.edges()
    unplaced, breaches = [], []
    base = os.path.abspath(root)
    for folder, levels in sorted(layers.items()):
        if folder != base and not folder.startswith(base + os.sep):
            continue
        prefix = tuple(os.path.relpath(folder, base).split(os.sep)) if folder != base else ()
        n = len(prefix)
        everyone_a_peer = levels == [["*"]]
        level_of = {m: i for i, level in enumerate(levels) for m in level}
        inside = lambda m: m[:n] == prefix and len(m) > n
        place = lambda layer: 0 if everyone_a_peer else level_of.get(layer)
        where_named = "/".join(prefix) + "/" if prefix else ""
        unplaced += sorted({where_named + m[n] for m in crate.files if inside(m) and place(m[n]) is None})
        for a, targets in sorted(graph.items()):
            if not inside(a) or place(a[n]) is None:
                continue  # the folder's own file wires its layers; an unplaced module is reported as such
            for b, line in sorted(targets.items()):
                if b[:n] != prefix:
                    continue  # outside the folder: its parent's layers judge it
                la, lb = a[n], (b[n] if len(b) > n else None)
                if la == lb or (lb is not None and place(lb) is None):
                    continue
                if lb is None:
                    why = f"{la} uses {name(prefix)}, which wires the layers"
                elif place(lb) < place(la):
                    why = f"{la} uses {lb}, a layer above it"
                elif place(lb) == place(la):
                    why = f"{la} uses {lb}, its peer"
                else:
                    continue
                where = f"{os.path.relpath(crate.files[a].path)}:{line}"
                breaches.append((name(a), name(b), where, why))
    return unplaced, breaches


def path_attributes(crate):
    """[(module, file:line)] of each non-test `#[path = "..."]`: modules are read from the file tree, so a
    module moved elsewhere by `#[path]` would be misnamed and its uses missed; it fails the run instead."""
    return [(name(m), f"{os.path.relpath(f.path)}:{line}")
            for m, f in sorted(crate.files.items()) for line in f.path_attributes]


def check_layers(roots, layers_path):
    layers = read_layers(layers_path, REPO)
    ok = True
    for root in roots:
        key = crate_key(root)
        crate = Crate(root)
        for _, where in path_attributes(crate):
            ok = False
            print(f"{key}: {where}: #[path] outside #[cfg(test)]: the check reads modules from the file tree "
                  f"and cannot place this one")
        unplaced, breaches = layer_breaches(root, layers, crate)
        for m in unplaced:
            ok = False
            print(f"{key}: {m} is in no layer: name it in {os.path.relpath(layers_path)}")
        for a, b, where, why in breaches:
            ok = False
            print(f"{key}: layer breach: {where} -> {b} ({why})")
    return ok


def check(roots, allow_path):
    allow = read_allow(allow_path)
    seen, bad = set(), False
    for root in roots:
        key = crate_key(root)
        for members, why in circles(root):
            entry = (key, frozenset(members))
            listed = entry in allow
            seen.add(entry)
            bad |= not listed
            head = "known import circle (allow-listed, to remove)" if listed else "import circle"
            print(f"{key}: {head}: {' <-> '.join(members)}")
            for w in why:
                print(f"    {w}")
    for d, members in sorted(allow - seen, key=lambda e: (e[0], sorted(e[1]))):
        if d in [crate_key(r) for r in roots]:
            bad = True
            print(f"{d}: allow-listed circle is gone, delete its line from {os.path.relpath(allow_path)}: "
                  f"{' <-> '.join(sorted(members))}")
    return not bad


def self_test():
    """Each fixture crate under tests/support/import_cycles/ holds one circle written in one path form, or
    (with a `layers` file, the format of import_layers for its `src`) layer breaches. Its `expect` file:
    `a <-> b` per circle (a folder counted whole ends with `/`: `a <-> m/`), `a -> b` per breach (the using
    file and the used one), `no layer: m` per module in no layer, `path attribute: m` per file with a
    non-test `#[path]`, nothing for none; the checker must find exactly those."""
    ok = True
    for case in sorted(os.listdir(FIXTURES)):
        root = os.path.join(FIXTURES, case)
        src = os.path.join(root, "src")
        want = set()
        for raw in open(os.path.join(root, "expect"), encoding="utf-8"):
            s = raw.split("#", 1)[0].strip()
            if s.startswith("no layer:"):
                want.add(("no layer", s.split(":", 1)[1].strip()))
            elif s.startswith("path attribute:"):
                want.add(("path attribute", s.split(":", 1)[1].strip()))
            elif "<->" in s:
                want.add(frozenset(m.strip() for m in s.split("<->")))
            elif "->" in s:
                a, b = s.split("->")
                want.add((a.strip(), b.strip()))
        got = {frozenset(m) for m, _ in circles(src)}
        crate = Crate(src)
        unplaced, breaches = layer_breaches(src, read_layers(os.path.join(root, "layers"), root), crate)
        got |= {("path attribute", m) for m, _ in path_attributes(crate)}
        got |= {("no layer", m) for m in unplaced}
        got |= {(a, b) for a, b, _, _ in breaches}
        show = lambda found: sorted(" <-> ".join(sorted(f)) if isinstance(f, frozenset) else " -> ".join(f)
                                    for f in found)
        if got != want:
            ok = False
            print(f"self-test {case}: want {show(want)}, found {show(got)}")
        else:
            print(f"self-test {case}: ok ({len(want)} finding{'s' if len(want) != 1 else ''})")
    return ok


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        sys.exit(0 if self_test() else 1)
    if not args or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    circles_ok = check(args, ALLOW)
    layers_ok = check_layers(args, LAYERS)
    sys.exit(0 if circles_ok and layers_ok else 1)


if __name__ == "__main__":
    main()
