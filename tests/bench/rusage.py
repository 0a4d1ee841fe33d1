#!/usr/bin/env python3
"""rusage.py CMD...: run CMD, then print its CPU time and peak RSS as JSON on stderr's last line."""
import json, resource, subprocess, sys, time

t0 = time.monotonic()
p = subprocess.run(sys.argv[1:])
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_mb": round(ru.ru_maxrss / 1024, 1),
                  "wall_s": round(wall, 3)}), file=sys.stderr)
sys.exit(p.returncode)
