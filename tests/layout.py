#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# layout.py: the README's layout table against the tree. Every tracked file of
# cli/, common/, nss/, pam/, tests/ and docs/ must be named in the first column
# (a name ending in "/" covers a folder; "x.[ch]" is x.c and x.h; a bare name
# after a path is in that path's folder), and every name there must exist.
#     python3 tests/layout.py [TOPDIR]
import os
import re
import subprocess
import sys

top = sys.argv[1] if len(sys.argv) > 1 else "."
readme = open(os.path.join(top, "README.md"), encoding="utf-8").read()
m = re.search(r"^## Layout\n(.*?)(?=^## )", readme, re.S | re.M)
if not m:
    sys.exit("layout: README.md has no '## Layout' section")
named, folders = set(), set()
for row in m.group(1).splitlines():
    if not row.startswith("| `"):
        continue
    first = row.split("|")[1]
    folder = ""
    for tok in re.findall(r"`([^`]+)`", first):
        if "/" not in tok and folder:
            tok = folder + tok
        folder = tok[: tok.rfind("/") + 1] if "/" in tok else ""
        if tok.endswith("/"):
            folders.add(tok)
        elif tok.endswith(".[ch]"):
            named.update({tok[:-5] + ".c", tok[:-5] + ".h"})
        else:
            named.add(tok)
files = subprocess.run(["git", "-C", top, "ls-files", "cli", "common", "nss", "pam", "tests", "docs"],
                       capture_output=True, text=True, check=True).stdout.split()
bad = 0
for f in files:
    if f not in named and not any(f.startswith(d) for d in folders):
        print(f"layout: {f} is not in the README's layout table")
        bad += 1
for n in sorted(named | folders):
    if n != "Makefile" and not os.path.exists(os.path.join(top, n)):
        print(f"layout: the README's layout table names {n}, which does not exist")
        bad += 1
print(f"layout: {len(files)} files, {bad} not in step with the table")
sys.exit(1 if bad else 0)
