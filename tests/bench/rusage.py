#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rusage.py CMD...: run CMD, then print its CPU time and peak RSS as JSON on stderr's last line."""
import json, resource, subprocess, sys, time

# Children counted before ours (a pyenv shim, say) are subtracted: only CMD is measured.
before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:])
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
user = ru.ru_utime - before.ru_utime
system = ru.ru_stime - before.ru_stime
print(json.dumps({"rc": p.returncode, "user_s": round(user, 4), "sys_s": round(system, 4),
                  "cpu_s": round(user + system, 4), "maxrss_mb": round(ru.ru_maxrss / 1024, 1),
                  "wall_s": round(wall, 3)}), file=sys.stderr)
sys.exit(p.returncode)
