#!/usr/bin/env python3
"""No import circles between the modules of a crate.

Every `crate::a::b` (in `use` lines, grouped `use crate::{...}` and inline
paths) and every `super::` path of a module file is an edge to the longest
module it names. A parent and its own submodules may use each other (the
parent declares them); any other cycle fails, unless it is listed in ALLOWED
with the reason (a derive or attribute macro that needs a path both ways).
Code inside `#[cfg(test)]` modules counts too. Run from the workspace root.
"""
import os
import re
import sys

# (crate, frozenset of modules) -> why the cycle cannot be avoided.
ALLOWED = {}

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
GROUP = re.compile(r"\buse\s+crate::\{", re.S)


def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]) or (len(rel) >= 1 and rel[0] == "bin"):
                continue
            mods["::".join(rel)] = os.path.join(root, f)
    return mods


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def group_items(text, start):
    """The first path segment of each item of `use crate::{...}` starting at `start`."""
    depth, i, item, out = 1, start, "", []
    while i < len(text) and depth:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if depth == 1 and c == ",":
            out.append(item)
            item = ""
        elif depth >= 1 and not (depth == 1 and c == "}"):
            item += c
        i += 1
    out.append(item)
    return [re.sub(r"[{}\s]", "", x) for x in out if x.strip()]


def resolve(mods, segs):
    for n in range(len(segs), 0, -1):
        m = "::".join(segs[:n])
        if m in mods:
            return m
    return None


def edges(mods, name, path):
    text = strip_comments(open(path, encoding="utf-8").read())
    here = name.split("::")
    # A file `x.rs` is module x; its `super` is x's parent.
    out = set()
    for m in PATH.finditer(text):
        segs = [s for s in m.group(2).split("::") if s]
        if m.group(1) == "crate":
            target = segs
        else:
            base = here[:-1]
            while segs and segs[0] == "super":
                segs = segs[1:]
                base = base[:-1]
            target = base + segs
        r = resolve(mods, target)
        if r:
            out.add(r)
    for g in GROUP.finditer(text):
        for item in group_items(text, g.end()):
            r = resolve(mods, [s for s in item.split("::") if s])
            if r:
                out.add(r)
    return {t for t in out if t != name}


def related(a, b):
    return a.startswith(b + "::") or b.startswith(a + "::")


def cycles(graph):
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                comps.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return comps


def main():
    failed = False
    for crate in sorted(os.listdir("crates")):
        src = os.path.join("crates", crate, "src")
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        graph = {
            n: {t for t in edges(mods, n, p) if not related(n, t)} for n, p in mods.items()
        }
        for comp in cycles(graph):
            key = (crate, frozenset(comp))
            pairs = sorted(f"{a} -> {b}" for a in comp for b in graph[a] if b in comp)
            if key in ALLOWED:
                print(f"{crate}: allowed cycle {comp}: {ALLOWED[key]}")
                continue
            failed = True
            print(f"{crate}: import cycle between {', '.join(comp)}: {'; '.join(pairs)}")
    if failed:
        sys.exit(1)
    print("no import cycles between modules")


if __name__ == "__main__":
    main()
