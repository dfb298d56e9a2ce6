#!/usr/bin/env python3
"""Reads the `crate::` imports of the core (`src/`) and of `ingest/src/`, and checks the
layering that ARCHITECTURE.md states:

1. no import cycle between the core's layers (top-level modules), nor between the
   modules of one folder (a module and its own parent or children do not count: Rust
   re-exports run that way), nor between the modules of the ingest crate;
2. every layer imports only the layers the rule allows it;
3. tantivy is named in `src/index/bm25.rs` only, Qdrant in `src/index/store/` only,
   rusqlite in `src/accounts/` only, postgres in `src/shared/` and `src/accounts/` only,
   and ureq (the model server's client) in `src/models/remote.rs` only.

Prints the layer graph; exits 1 with the reasons when a rule is broken.
    python3 scripts/layers.py          # check
    python3 scripts/layers.py --dot    # the module graph in Graphviz form
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Which layers each layer may import. Everything may import `error`; `config` is read by
# every layer that has settings. The binary's `cli` is its own crate root: it may use
# the library's `engine`, `eval`, `config` and `error` only.
ALLOWED = {
    "error": set(),
    "config": {"error"},
    "shared": {"config", "error"},
    "text": {"error"},
    "accounts": {"shared", "config", "error"},
    "models": {"config", "error"},
    "index": {"text", "shared", "config", "error"},
    "ingest": {"index", "text", "models", "config", "error"},
    "query": {"index", "text", "models", "config", "error"},
    "answer": {"query", "index", "text", "models", "config", "error"},
    "engine": {"answer", "query", "ingest", "index", "text", "models", "shared", "config", "error"},
    "eval": {"engine", "answer", "query", "ingest", "index", "text", "models", "config", "error"},
    "server": {"engine", "accounts", "shared", "config", "error"},
    "cli": {"engine", "eval", "server", "accounts", "shared", "config", "error"},
}

# Only these files may name these crates.
OWNERS = {
    "rusqlite": ("src/accounts/",),
    "postgres": ("src/shared/", "src/accounts/"),
    "tantivy": ("src/index/bm25.rs",),
    "qdrant_edge": ("src/index/store/",),
    "qdrant_client": ("src/index/store/",),
    "tonic": ("src/index/store/",),
    "ureq": ("src/models/remote.rs",),
}


def strip(src):
    """Source without comments and without `#[cfg(test)]` modules."""
    src = re.sub(r"//[^\n]*", "", src)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{", src):
        if m.start() < i:
            continue
        out.append(src[i : m.start()])
        depth, j = 1, m.end()
        while j < len(src) and depth:
            depth += {"{": 1, "}": -1}.get(src[j], 0)
            j += 1
        i = j
    out.append(src[i:])
    return "".join(out)


def module_of(rel):
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def read_crate(src_dir, root_name):
    """{module path: set of module paths it names} for one crate."""
    files = {}
    for dp, _, fns in os.walk(src_dir):
        for f in fns:
            if f.endswith(".rs"):
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, src_dir)
                if rel == "main.rs":
                    files[("cli",)] = (p, strip(open(p, encoding="utf-8").read()))
                    continue
                files[module_of(rel)] = (p, strip(open(p, encoding="utf-8").read()))
    mods = set(files)
    edges = {m: set() for m in mods}

    # Items the crate root re-exports.
    root_items = {"Engine": ("engine",), "Error": ("error",), "Result": ("error",)}

    def resolve(path):
        if len(path) == 1 and path[0] in root_items and root_name == "core":
            return root_items[path[0]]
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in mods:
                return tuple(path[:n])
        return None

    for mod, (_, src) in files.items():
        prefixes = ("crate", "tanya") if mod[:1] == ("cli",) else ("crate",)
        paths = []
        for pre in prefixes:
            paths += [p.split("::") for p in re.findall(pre + r"::((?:\w+::)*\w+)", src)]
            for group in re.findall(r"\buse\s+" + pre + r"::\{([^;]*)\};", src, re.S):
                for item in re.findall(r"(\w+(?:::\w+)*)", group):
                    paths.append(item.split("::"))
        for path in paths:
            target = resolve(path)
            if target and target != mod:
                edges[mod].add(target)
    return edges


def cycles(graph):
    """Every strongly connected component with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def main():
    problems = []
    core = read_crate(os.path.join(ROOT, "src"), "core")
    ingest = read_crate(os.path.join(ROOT, "ingest", "src"), "ingest")

    layers = {}
    for m, targets in core.items():
        if not m:
            continue
        layers.setdefault(m[0], set())
        for t in targets:
            if t and t[0] != m[0]:
                layers[m[0]].add(t[0])
                allowed = ALLOWED.get(m[0])
                if allowed is None:
                    problems.append(f"layer `{m[0]}` is not in the rule (scripts/layers.py)")
                elif t[0] not in allowed:
                    problems.append(
                        f"{'::'.join(m)} imports {'::'.join(t)}: `{m[0]}` may not use `{t[0]}`"
                    )
    for c in cycles(layers):
        problems.append("cycle between layers: " + " ↔ ".join(c))
    for name, graph in (("src", core), ("ingest/src", ingest)):
        # Inside each folder: sibling modules (not a module and its parent or child).
        inner = {m: {t for t in ts if not related(m, t)} for m, ts in graph.items()}
        for c in cycles(inner):
            problems.append(f"cycle in {name}: " + " ↔ ".join("::".join(x) or "lib" for x in c))

    for krate, owners in OWNERS.items():
        for dp, _, fns in os.walk(os.path.join(ROOT, "src")):
            for f in fns:
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, ROOT)
                if f.endswith(".rs") and krate + "::" in open(p, encoding="utf-8").read():
                    if not any(rel.startswith(o) for o in owners):
                        problems.append(f"{rel} names {krate}: only {', '.join(owners)} may")

    # The server and the CLI ask the engine; they never reach into its collection or
    # models (Engine::collection and Engine::embedder are for eval and tests).
    for folder in ("src/server", "src/cli"):
        for dp, _, fns in os.walk(os.path.join(ROOT, folder)):
            for f in fns:
                p = os.path.join(dp, f)
                src = strip(open(p, encoding="utf-8").read()) if f.endswith(".rs") else ""
                if re.search(r"\.(collection|embedder)\(\)", src):
                    rel = os.path.relpath(p, ROOT)
                    problems.append(f"{rel} reaches into the engine's collection or embedder")

    if "--dot" in sys.argv:
        print("digraph tanya {")
        for m, ts in sorted(core.items()):
            for t in sorted(ts):
                print(f'  "{"::".join(m)}" -> "{"::".join(t)}";')
        print("}")
        return 0
    for layer in sorted(layers):
        print(f"{layer:>7} → {', '.join(sorted(layers[layer])) or '(nothing)'}")
    if problems:
        print("\nlayering problems:")
        for p in sorted(set(problems)):
            print("  " + p)
        return 1
    print("\nlayers: no cycles, every import allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
