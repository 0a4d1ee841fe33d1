#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# funclen.py: the length of every function of the product's C files (a
# function opens with "{" and closes with "}" in column 0, the house format).
#     python3 tests/funclen.py [--top N] [--max LINES] FILE...
# --top prints the N longest; --max exits 1 naming each function longer than
# LINES (issue 14: no product function over 120 lines).
import argparse
import re
import sys


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == "{":
            j = i - 1
            while j > 0 and "(" not in lines[j]:
                j -= 1
            m = re.search(r"(\w+)\s*\(", lines[j])
            k = i + 1
            while k < len(lines) and lines[k] != "}":
                k += 1
            yield k - j + 1, path, j + 1, m.group(1) if m else "?"
            i = k
        i += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--max", type=int, default=0)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    found = sorted((f for p in a.files for f in functions(p)), reverse=True)
    for n, path, line, name in found[: a.top]:
        print(f"{n:5} {path}:{line} {name}")
    over = [f for f in found if a.max and f[0] > a.max]
    for n, path, line, name in over:
        print(f"funclen: {path}:{line}: {name} is {n} lines (at most {a.max})", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
