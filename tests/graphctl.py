#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""graphctl - drive the Graph emulator's control API from shell scripts.

    graphctl.py (--url https://127.0.0.1:PORT | --port-file FILE) [--ca ca.pem] ACTION [ARGS]

Users are named by object id, mail, UPN, or a unique prefix of mail/UPN
(`depart alice@fabrikam.com`, `restore frank`).

Actions:
  info                      tenant id, clients, base URL, emulator clock
  list                      all users with their state (JSON)
  show USER                 one user (JSON)
  disable|enable USER       set accountEnabled
  depart USER [TIME]        soft delete (deletedDateTime = TIME or now)
  restore USER              restore from Deleted users
  purge USER                permanent delete
  accept|pending USER       set externalUserState
  bulk ACTION FILE          disable|enable|depart|restore|purge every object id in FILE
                            (whitespace-separated), in one call
  add JSON|@FILE            add a user (Graph user object; userType defaults to Guest)
  patch USER JSON|@FILE     change properties (mail, userType, deletedDateTime, ...)
  clock [TIME]              show or set the emulator clock (RFC 3339)
  freeze | unfreeze         stop / restart the emulator clock
  advance SECONDS           move the clock forward (suffixes s m h d allowed)
  fault JSON|@FILE          add fault rule(s): object or list
  faults                    list fault rules
  clear-faults              remove every fault rule
  stats                     request counters
  reset-stats               zero the counters
  requests [N]              the last N requests the emulator served
  expire-delta [STATUS]     every delta/skip token issued so far is refused from now on,
                            with 410 (the default), 400 or 404
  expire-tokens             every access token issued so far is expired
  group-add GROUP MEMBER    add a user/group to a group
  group-remove GROUP MEMBER remove it
  groups                    list groups
  reset                     reload the fixture (clock, users, faults, tokens)
  devicecodes               device code sign-ins issued so far, with their polls (JSON)
  devicecode-config JSON    {"interval": S, "expires_in": S} of codes issued from now on
  approve CODE USER [JSON]  sign in as USER for the user code CODE ("latest": the newest);
                            JSON forges the ID token: {"claims": {...}, "alg": "none",
                            "bad_signature": true, "unpublished_key": true,
                            "blocked": true (Conditional Access refuses the token)}
  decline CODE              the guest declines
  expire-code CODE          the code expires now
  slow-down CODE [N]        answer the next N polls with slow_down
  rotate-keys [--drop-old]  a new ID token signing key (the old one stays published)
  keys                      the published signing key ids
  port                      print the port
Exit status: 0 ok, 1 the emulator refused (message on stderr), 2 usage.
"""

import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from urllib.parse import quote


def die(msg, code=1):
    sys.stderr.write("graphctl: %s\n" % msg)
    sys.exit(code)


def load_json(arg):
    text = arg
    if arg.startswith("@"):
        try:
            with open(arg[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            die("cannot read %s: %s" % (arg[1:], e), 2)
    try:
        return json.loads(text)
    except ValueError as e:
        die("invalid JSON: %s" % e, 2)


def seconds(text):
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        die("bad duration %r" % text, 2)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class Ctl:
    def __init__(self, url, ca, insecure, timeout):
        self.url = url.rstrip("/")
        if insecure:
            self.ctx = ssl._create_unverified_context()
        else:
            self.ctx = ssl.create_default_context(cafile=ca) if ca else \
                ssl.create_default_context()
        self.timeout = timeout

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + "/_emulator" + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                msg = json.loads(raw).get("error", raw.decode("utf-8", "replace"))
            except ValueError:
                msg = raw.decode("utf-8", "replace")
            die("%s %s: HTTP %d: %s" % (method, path, e.code, msg))
        except (urllib.error.URLError, OSError) as e:
            die("cannot reach the emulator at %s: %s" % (self.url, getattr(e, "reason", e)))
        return json.loads(raw) if raw else {}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("GRAPHCTL_URL")
    ca = os.environ.get("GRAPHCTL_CA")
    port_file = os.environ.get("GRAPHCTL_PORT_FILE")
    insecure, timeout = False, 60.0
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt in ("--help",):
            print(__doc__)
            return 0
        if opt == "--insecure":
            insecure = True
            continue
        if "=" in opt:
            opt, val = opt.split("=", 1)
        else:
            if not argv:
                die("%s needs a value" % opt, 2)
            val = argv.pop(0)
        if opt == "--url":
            url = val
        elif opt == "--ca":
            ca = val
        elif opt == "--port-file":
            port_file = val
        elif opt == "--timeout":
            timeout = float(val)
        else:
            die("unknown option %s" % opt, 2)
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    if not url:
        if not port_file:
            die("need --url or --port-file", 2)
        try:
            with open(port_file) as f:
                url = "https://127.0.0.1:%d" % int(f.read().strip())
        except (OSError, ValueError) as e:
            die("cannot read port file %s: %s" % (port_file, e))
    action, args = argv[0], argv[1:]
    ctl = Ctl(url, ca, insecure, timeout)

    def need(n, usage):
        if len(args) < n:
            die("usage: %s %s" % (action, usage), 2)

    def u(ref):
        return quote(ref, safe="")

    out = None
    if action == "port":
        print(url.rsplit(":", 1)[1])
        return 0
    if action == "info":
        out = ctl.call("GET", "/info")
    elif action == "list":
        out = ctl.call("GET", "/users")["users"]
    elif action == "show":
        need(1, "USER")
        out = ctl.call("GET", "/users/" + u(args[0]))
    elif action in ("disable", "enable", "restore", "purge", "accept", "pending"):
        need(1, "USER")
        out = ctl.call("POST", "/users/%s/%s" % (u(args[0]), action), {})
    elif action == "depart":
        need(1, "USER [TIME]")
        out = ctl.call("POST", "/users/%s/depart" % u(args[0]),
                       {"at": args[1]} if len(args) > 1 else {})
    elif action == "bulk":
        need(2, "ACTION FILE")
        try:
            with open(args[1], encoding="utf-8") as f:
                ids = f.read().split()
        except OSError as e:
            die("cannot read %s: %s" % (args[1], e), 2)
        out = ctl.call("POST", "/users/_bulk", {"action": args[0], "ids": ids})
    elif action == "add":
        need(1, "JSON|@FILE")
        out = ctl.call("POST", "/users", load_json(args[0]))
    elif action == "patch":
        need(2, "USER JSON|@FILE")
        out = ctl.call("PATCH", "/users/" + u(args[0]), load_json(args[1]))
    elif action == "clock":
        out = ctl.call("POST", "/clock", {"now": args[0]}) if args else ctl.call("GET", "/clock")
    elif action == "freeze":
        out = ctl.call("POST", "/clock", {"freeze": True})
    elif action == "unfreeze":
        out = ctl.call("POST", "/clock", {"freeze": False})
    elif action == "advance":
        need(1, "SECONDS")
        out = ctl.call("POST", "/clock", {"advance_seconds": seconds(args[0])})
    elif action == "fault":
        need(1, "JSON|@FILE")
        out = ctl.call("POST", "/faults", load_json(args[0]))
    elif action == "faults":
        out = ctl.call("GET", "/faults")
    elif action == "clear-faults":
        out = ctl.call("DELETE", "/faults")
    elif action == "stats":
        out = ctl.call("GET", "/stats")
    elif action == "reset-stats":
        out = ctl.call("POST", "/stats/reset", {})
    elif action == "requests":
        out = ctl.call("GET", "/requests")["requests"]
        if args:
            out = out[-int(args[0]):]
    elif action == "expire-delta":
        out = ctl.call("POST", "/delta/expire", {"status": int(args[0]) if args else 410})
    elif action == "expire-tokens":
        out = ctl.call("POST", "/tokens/expire", {})
    elif action in ("group-add", "group-remove"):
        need(2, "GROUP MEMBER")
        key = "add" if action == "group-add" else "remove"
        out = ctl.call("POST", "/groups/%s/members" % u(args[0]), {key: [args[1]]})
    elif action == "groups":
        out = ctl.call("GET", "/groups")["groups"]
    elif action == "reset":
        out = ctl.call("POST", "/reset", {})
    elif action == "devicecodes":
        out = ctl.call("GET", "/devicecodes")["devicecodes"]
    elif action == "devicecode-config":
        need(1, "JSON")
        out = ctl.call("POST", "/devicecodes/config", load_json(args[0]))
    elif action == "approve":
        need(2, "CODE USER [JSON]")
        body = load_json(args[2]) if len(args) > 2 else {}
        body["user"] = args[1]
        out = ctl.call("POST", "/devicecodes/%s/approve" % u(args[0]), body)
    elif action in ("decline", "expire-code"):
        need(1, "CODE")
        out = ctl.call("POST", "/devicecodes/%s/%s" % (u(args[0]), action.split("-")[0]), {})
    elif action == "slow-down":
        need(1, "CODE [N]")
        out = ctl.call("POST", "/devicecodes/%s/slow-down" % u(args[0]),
                       {"count": int(args[1]) if len(args) > 1 else 1})
    elif action == "rotate-keys":
        out = ctl.call("POST", "/keys/rotate", {"drop_old": "--drop-old" in args})
    elif action == "keys":
        out = ctl.call("GET", "/keys")
    else:
        die("unknown action %r (try --help)" % action, 2)
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
