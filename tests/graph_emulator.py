#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Microsoft Graph + Entra ID token endpoint emulator for the aadguest tests.

Python 3 standard library only (plus the `openssl` command for client
assertion signatures).  Serves, over HTTPS on 127.0.0.1, the parts of
Microsoft Graph v1.0 and of the Entra v2.0 token endpoint that aadguest
uses, with Graph's URLs, JSON shapes, status codes and error bodies, and
a control API under /_emulator/ for tests (no auth; not Graph).

    graph_emulator.py --tenant FIXTURE.json --cert server.pem --key server.key
                      [--port 0] [--port-file FILE] [--log FILE]
                      [--generate N] [--seed S] [--page-size N]
                      [--client-cert PEM]

The authority and the Graph base URL are both https://127.0.0.1:PORT.
See tests/graphctl.py for a command-line client of the control API.
"""

import argparse
import base64
import bisect
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

GRAPH_CT = ("application/json;odata.metadata=minimal;odata.streaming=true;"
            "IEEE754Compatible=false;charset=utf-8")
AAD_CT = "application/json; charset=utf-8"
CTL_CT = "application/json"

DAY = 86400.0
RETENTION = 30 * DAY          # soft-deleted users are purged after this
DELTA_TOKEN_LIFETIME = 7 * DAY
TOKEN_LIFETIME = 3599
ASSERTION_SKEW = 300          # seconds of clock skew tolerated on assertions
MS_GRAPH_APPID = "00000003-0000-0000-c000-000000000000"

# Graph's default property set for users (returned when there is no $select).
DEFAULT_PROPS = ["businessPhones", "displayName", "givenName", "jobTitle", "mail",
                 "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                 "userPrincipalName", "id"]

# Known v1.0 user properties (for $select validation); collections default to [].
COLLECTION_PROPS = {"businessPhones", "otherMails", "proxyAddresses", "imAddresses",
                    "identities", "assignedLicenses", "assignedPlans", "provisionedPlans",
                    "interests", "pastProjects", "responsibilities", "schools", "skills",
                    "licenseAssignmentStates", "onPremisesProvisioningErrors"}
USER_PROPS = [
    "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans",
    "birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor",
    "country", "createdDateTime", "creationType", "deletedDateTime", "department",
    "displayName", "employeeHireDate", "employeeId", "employeeLeaveDateTime",
    "employeeOrgData", "employeeType", "externalUserState",
    "externalUserStateChangeDateTime", "faxNumber", "givenName", "hireDate", "id",
    "identities", "imAddresses", "interests", "isResourceAccount", "jobTitle",
    "lastPasswordChangeDateTime", "legalAgeGroupClassification",
    "licenseAssignmentStates", "mail", "mailNickname", "mobilePhone", "mySite",
    "officeLocation", "onPremisesDistinguishedName", "onPremisesDomainName",
    "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName", "otherMails", "passwordPolicies", "passwordProfile",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage",
    "preferredName", "provisionedPlans", "proxyAddresses", "responsibilities",
    "schools", "securityIdentifier", "showInAddressList", "signInActivity",
    "signInSessionsValidFromDateTime", "skills", "state", "streetAddress", "surname",
    "usageLocation", "userPrincipalName", "userType"]
USER_PROPS_CI = {p.lower(): p for p in USER_PROPS}
# Properties PATCH /v1.0/users/{id} accepts.
PATCHABLE = {"accountEnabled", "displayName", "givenName", "surname", "jobTitle", "mail",
             "otherMails", "userPrincipalName", "userType", "mailNickname", "mobilePhone",
             "officeLocation", "preferredLanguage", "businessPhones", "department",
             "companyName", "usageLocation", "city", "country", "employeeId",
             "passwordProfile", "showInAddressList"}
READ_ONLY = {"id", "createdDateTime", "deletedDateTime", "externalUserState",
             "externalUserStateChangeDateTime", "creationType", "securityIdentifier"}

ROLES_READ_USERS = {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                    "Directory.ReadWrite.All"}
ROLES_WRITE_USERS = {"User.ReadWrite.All", "Directory.ReadWrite.All"}
ROLES_READ_GROUPS = {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All",
                     "Directory.Read.All", "Directory.ReadWrite.All"}
DEFAULT_ROLES = ["User.ReadWrite.All", "GroupMember.Read.All", "Directory.Read.All"]

INSUFFICIENT = "Insufficient privileges to complete the operation."

# Device code sign-in (RFC 8628 as the Microsoft identity platform speaks it:
# entra-docs docs/identity-platform/v2-oauth2-device-code.md). ID tokens are
# RS256 JWTs signed by the emulator's own RSA keys, published as a JWKS.
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
ID_TOKEN_LIFETIME = 3600
USER_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# --------------------------------------------------------------------------
# small helpers

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def parse_time(value):
    """RFC 3339 -> epoch seconds (float)."""
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    if s.endswith("z") or s.endswith("Z"):
        s = s[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def fmt_time(ts):
    """epoch -> 2026-11-26T12:00:00Z (Graph's format for directory dates)."""
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_inner_date(ts):
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def fmt_aad_time(ts):
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def jdump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def qv(value):
    """Encode a query value the way Graph's nextLinks do."""
    return quote(value, safe=",()*:@/!$").replace("%20", "+")


def user_state(u, deleted):
    if deleted:
        return "departed"
    if u.get("accountEnabled") is False:
        return "disabled"
    if u.get("externalUserState") == "PendingAcceptance":
        return "pending"
    return "active"


class GraphError(Exception):
    def __init__(self, status, code, message, headers=None, inner=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.inner = inner or {}


class TokenError(Exception):
    def __init__(self, status, error, code, message):
        super().__init__(message)
        self.status, self.error, self.code, self.message = status, error, code, message


class CtlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def not_found(ident):
    return GraphError(404, "Request_ResourceNotFound",
                      "Resource '%s' does not exist or one of its queried reference-property "
                      "objects are not present." % ident)


def bad_request(message, code="Request_BadRequest"):
    return GraphError(400, code, message)


# --------------------------------------------------------------------------
# $filter: a small OData filter parser for the clauses directory objects support

class FilterError(Exception):
    def __init__(self, message, code="BadRequest"):
        super().__init__(message)
        self.code = code


FILTER_PROPS = {"id", "userType", "mail", "userPrincipalName", "accountEnabled",
                "externalUserState", "displayName", "givenName", "surname",
                "createdDateTime", "mailNickname", "creationType", "jobTitle",
                "otherMails", "deletedDateTime"}
FILTER_PROPS_CI = {p.lower(): p for p in FILTER_PROPS}
_WORD_RE = re.compile(r"[A-Za-z0-9_.:+\-/]+")


def _tokenize(text):
    toks, pos = [], 0
    while pos < len(text):
        c = text[pos]
        if c.isspace():
            pos += 1
            continue
        if c == "'":
            j, buf = pos + 1, []
            while True:
                if j >= len(text):
                    raise FilterError("Invalid filter clause: There is an unterminated string "
                                      "literal at position %d in '%s'." % (pos, text))
                if text[j] == "'":
                    if j + 1 < len(text) and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            toks.append(("str", "".join(buf), pos))
            pos = j + 1
            continue
        if c in "(),":
            toks.append((c, c, pos))
            pos += 1
            continue
        m = _WORD_RE.match(text, pos)
        if not m:
            raise FilterError("Invalid filter clause: Syntax error at position %d in '%s'."
                              % (pos, text))
        toks.append(("word", m.group(0), pos))
        pos = m.end()
    return toks


class Filter:
    """Parsed $filter: .pred(user) -> bool, .props (used), .advanced (needs
    ConsistencyLevel: eventual), .id_only (every clause is `id eq '...'`)."""

    def __init__(self, text):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.props = set()
        self.advanced = False
        self.id_only = True
        if not self.toks:
            raise FilterError("Invalid filter clause: The filter is empty.")
        self.pred = self._or()
        if self.i != len(self.toks):
            raise self._syntax(self.toks[self.i][2])

    def _syntax(self, pos):
        return FilterError("Invalid filter clause: Syntax error at position %d in '%s'."
                           % (pos, self.text))

    def _peek_word(self, *words):
        if self.i < len(self.toks) and self.toks[self.i][0] == "word" \
                and self.toks[self.i][1].lower() in words:
            return self.toks[self.i][1].lower()
        return None

    def _next(self):
        if self.i >= len(self.toks):
            raise self._syntax(len(self.text))
        t = self.toks[self.i]
        self.i += 1
        return t

    def _expect(self, kind):
        t = self._next()
        if t[0] != kind:
            raise self._syntax(t[2])
        return t

    def _or(self):
        left = self._and()
        while self._peek_word("or"):
            self.i += 1
            right = self._and()
            left = (lambda a, b: lambda u: a(u) or b(u))(left, right)
        return left

    def _and(self):
        left = self._not()
        while self._peek_word("and"):
            self.i += 1
            self.id_only = False
            right = self._not()
            left = (lambda a, b: lambda u: a(u) and b(u))(left, right)
        return left

    def _not(self):
        if self._peek_word("not"):
            self.i += 1
            self.advanced = True
            self.id_only = False
            inner = self._atom()
            return lambda u: not inner(u)
        return self._atom()

    def _prop(self, tok):
        name = FILTER_PROPS_CI.get(tok[1].lower())
        if name is None:
            if tok[1].lower() in USER_PROPS_CI:
                raise FilterError("Unsupported or invalid query filter clause specified for "
                                  "property '%s' of resource 'User'." % tok[1],
                                  "Request_UnsupportedQuery")
            raise FilterError("Could not find a property named '%s' on type "
                              "'microsoft.graph.user'." % tok[1], "BadRequest")
        self.props.add(name)
        if name != "id":
            self.id_only = False
        return name

    def _literal(self):
        t = self._next()
        if t[0] == "str":
            return t[1]
        if t[0] == "word":
            w = t[1].lower()
            if w == "true":
                return True
            if w == "false":
                return False
            if w == "null":
                return None
            if re.fullmatch(r"-?\d+", t[1]):
                return int(t[1])
            try:
                return parse_time(t[1])
            except ValueError:
                pass
        raise self._syntax(t[2])

    def _atom(self):
        t = self._next()
        if t[0] == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if t[0] != "word":
            raise self._syntax(t[2])
        if self.i < len(self.toks) and self.toks[self.i][0] == "(":
            func = t[1].lower()
            if func not in ("startswith", "endswith"):
                raise FilterError("Unsupported Query.", "Request_UnsupportedQuery")
            self.i += 1
            prop = self._prop(self._expect("word"))
            self._expect(",")
            lit = self._literal()
            self._expect(")")
            self.id_only = False
            if func == "endswith":
                self.advanced = True
            if not isinstance(lit, str):
                raise FilterError("Unsupported Query.", "Request_UnsupportedQuery")
            lit_l = lit.lower()
            if func == "startswith":
                return lambda u: isinstance(u.get(prop), str) and u[prop].lower().startswith(lit_l)
            return lambda u: isinstance(u.get(prop), str) and u[prop].lower().endswith(lit_l)
        prop = self._prop(t)
        op_t = self._next()
        op = op_t[1].lower() if op_t[0] == "word" else None
        if op not in ("eq", "ne", "ge", "le", "gt", "lt"):
            raise self._syntax(op_t[2])
        lit = self._literal()
        if op != "eq":
            self.advanced = True
            self.id_only = False
        if prop == "otherMails":
            raise FilterError("Unsupported or invalid query filter clause specified for "
                              "property 'otherMails' of resource 'User'.",
                              "Request_UnsupportedQuery")
        if prop in ("createdDateTime", "deletedDateTime"):
            def value(u, prop=prop):
                v = u.get(prop)
                return parse_time(v) if v else None
            if isinstance(lit, str):
                try:
                    lit = parse_time(lit)
                except ValueError:
                    raise self._syntax(op_t[2])
        else:
            def value(u, prop=prop):
                v = u.get(prop)
                return v.lower() if isinstance(v, str) else v
            if isinstance(lit, str):
                lit = lit.lower()

        def cmp(u, value=value, lit=lit, op=op):
            v = value(u)
            if op == "eq":
                return v == lit
            if op == "ne":
                return v != lit
            if v is None or lit is None:
                return False
            try:
                return {"ge": v >= lit, "le": v <= lit, "gt": v > lit, "lt": v < lit}[op]
            except TypeError:
                return False
        return cmp


# --------------------------------------------------------------------------
# the directory

class Clock:
    def __init__(self, start=None):
        self.lock = threading.Lock()
        self.set(start if start is not None else time.time())

    def set(self, ts, freeze=None):
        with self.lock:
            self.base = float(ts)
            self.mono = time.monotonic()
            if freeze is not None:
                self.frozen = bool(freeze)
            elif not hasattr(self, "frozen"):
                self.frozen = False

    def now(self):
        with self.lock:
            if self.frozen:
                return self.base
            return self.base + (time.monotonic() - self.mono)

    def advance(self, seconds):
        with self.lock:
            self.base += float(seconds)


class Client:
    def __init__(self, client_id, secret, certs, roles, name, public=False):
        self.client_id = client_id
        self.public = public          # "Allow public client flows" (device code flow)
        self.secret = secret
        self.certs = certs            # list of dicts: der, s256, s1, pubkey (path)
        self.roles = set(roles)
        self.name = name


class Emulator:
    def __init__(self, fixture_path, generate=0, seed=20261126, page_size=None,
                 client_cert=None):
        self.fixture_path = fixture_path
        self.generate_n = generate
        self.seed = seed
        self.page_cap = page_size
        self.client_cert_override = client_cert
        self.lock = threading.RLock()
        self.tmpdir = tempfile.mkdtemp(prefix="graph-emu-")
        self.key = secrets.token_bytes(32)     # signs paging and delta tokens
        self.port = 0
        self.log_file = None
        self.log_lock = threading.Lock()
        self.faults = []
        self.stats_lock = threading.Lock()
        self.recent = []                      # last requests (for tests)
        self.signing_keys = []                # [(kid, private key, cert DER)], newest first
        self.reset_stats()
        self.load()

    # ---- loading -------------------------------------------------------

    def load(self):
        with self.lock:
            with open(self.fixture_path, encoding="utf-8") as f:
                fx = json.load(f)
            self.fixture = fx
            self.tenant_id = fx["tenant_id"].lower()
            self.tenant_name = fx.get("display_name") or fx.get("tenant_name") or "Contoso"
            self.domains = [d.lower() for d in fx.get("domains", [])]
            start = parse_time(fx["now"]) if fx.get("now") else time.time()
            self.clock = Clock(start)
            self.clients = {}
            for c in fx.get("clients", []):
                self.add_client(c)
            self.users = {}        # id -> user (Graph property names)
            self.orig_upn = {}     # id -> UPN before soft delete
            self.deleted = {}      # id -> deletedDateTime epoch
            self.uver = {}         # id -> per-user version (serialization cache)
            self.groups = {}
            self.log = []          # change log: (id, kind, frozenset(props) or None)
            self.version = 0
            self.delta_epoch = getattr(self, "delta_epoch", 0) + 1
            self.delta_gone_status = 410
            self.tokens = {}       # access token -> dict(client, exp, expired)
            self.ser_cache = {}
            self.list_cache = {}
            self.group_cache = {}
            for u in fx.get("users", []):
                self._insert_user(dict(u), record=False)
            for g in fx.get("groups", []):
                self.groups[g["id"].lower()] = {"id": g["id"].lower(),
                                                "displayName": g.get("displayName"),
                                                "description": g.get("description"),
                                                "members": [m.lower() for m in g.get("members", [])]}
            if self.generate_n:
                self._generate(self.generate_n)
            self.faults = []
            self.devicecodes = {}  # device_code -> pending sign-in (see DeviceCodes)
            self.dc_interval = 5
            self.dc_expires_in = 900

    def add_client(self, c):
        certs = []
        files = c.get("certificate_pem_file") or []
        if isinstance(files, str):
            files = [files]
        if self.client_cert_override:
            files = [self.client_cert_override]
        base = os.path.dirname(os.path.abspath(self.fixture_path))
        for f in files:
            path = os.path.expandvars(f)
            if "$" in path:
                continue                      # variable not set: no certificate
            path = os.path.join(base, path)
            if not os.path.exists(path):
                self.warn("client %s: certificate %s not found; certificate credentials "
                          "disabled for it" % (c["client_id"], path))
                continue
            with open(path, encoding="ascii", errors="replace") as fh:
                certs.append(self._load_cert(fh.read()))
        for pem in c.get("certificate_pems", []):
            certs.append(self._load_cert(pem))
        cl = Client(c["client_id"].lower(), c.get("client_secret"), certs,
                    c.get("roles", DEFAULT_ROLES), c.get("display_name", "aadguest"),
                    bool(c.get("public_client", False)))
        self.clients[cl.client_id] = cl
        return cl

    def _load_cert(self, pem):
        m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
        if not m:
            raise ValueError("no certificate in PEM")
        der = base64.b64decode("".join(m.group(1).split()))
        pemfile = os.path.join(self.tmpdir, "cert-%s.pem" % hashlib.sha1(der).hexdigest())
        pubfile = pemfile[:-4] + ".pub"
        with open(pemfile, "w") as f:
            f.write(m.group(0) + "\n")
        r = subprocess.run(["openssl", "x509", "-in", pemfile, "-pubkey", "-noout"],
                           capture_output=True)
        if r.returncode != 0:
            raise ValueError("openssl cannot read certificate: %s" % r.stderr.decode())
        with open(pubfile, "wb") as f:
            f.write(r.stdout)
        return {"der": der, "s256": b64url(hashlib.sha256(der).digest()),
                "s1": b64url(hashlib.sha1(der).digest()),
                "thumb": hashlib.sha1(der).hexdigest().upper(), "pubkey": pubfile}

    def _insert_user(self, u, record=True, at=None):
        if not u.get("id"):
            u["id"] = str(uuid.uuid4())
        uid = u["id"] = u["id"].lower()
        for p in COLLECTION_PROPS:
            if p in u and u[p] is None:
                u[p] = []
        u.setdefault("userType", "Member")
        u.setdefault("accountEnabled", True)
        u.setdefault("createdDateTime", fmt_time(at if at is not None else self.clock.now()))
        deleted = u.pop("deletedDateTime", None)
        self.users[uid] = u
        self.uver[uid] = self.uver.get(uid, 0) + 1
        self.deleted.pop(uid, None)
        self.orig_upn.pop(uid, None)
        if deleted:
            self._soft_delete(uid, parse_time(deleted), record=False)
        self._bump()
        if record:
            self._record(uid, "add")
        return u

    def _generate(self, n):
        rng = random.Random(self.seed)
        primary = self.domains[0] if self.domains else "contoso.onmicrosoft.com"
        partners = ["partner%02d.example" % k for k in range(1, 41)]
        first = ["Ava", "Ben", "Chloe", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ines", "Jon",
                 "Kai", "Lena", "Milo", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tess"]
        last = ["Adams", "Baker", "Clark", "Diaz", "Evans", "Fox", "Garcia", "Hill", "Ito",
                "Jones", "Khan", "Lee", "Moore", "Ng", "Ortiz", "Park", "Reed", "Silva"]
        now = self.clock.now()
        t0 = parse_time("2024-01-01T00:00:00Z")
        gen_group = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                     "displayName": "Generated Guests", "members": []}
        for i in range(n):
            uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            fn, ln = rng.choice(first), rng.choice(last)
            dom = rng.choice(partners)
            local = "%s.%s%06d" % (fn.lower(), ln.lower(), i)
            email = "%s@%s" % (local, dom)
            created = t0 + rng.random() * max(1.0, now - t0 - DAY)
            r = rng.random()
            u = {"id": uid, "displayName": "%s %s %d" % (fn, ln, i), "givenName": fn,
                 "surname": ln, "userPrincipalName": "%s_%s#EXT#@%s" % (local, dom, primary),
                 "mailNickname": "%s_%s#EXT#" % (local, dom), "userType": "Guest",
                 "creationType": "Invitation", "accountEnabled": True,
                 "externalUserState": "Accepted",
                 "externalUserStateChangeDateTime": fmt_time(created + 3600),
                 "createdDateTime": fmt_time(created), "mail": email, "otherMails": [email]}
            m = rng.random()
            if m < 0.04:
                u["mail"] = None
            elif m < 0.05:
                u["mail"], u["otherMails"] = None, []
            if r < 0.05:
                u["externalUserState"] = "PendingAcceptance"
            elif r < 0.10:
                u["accountEnabled"] = False
            elif r < 0.14:
                u["deletedDateTime"] = fmt_time(now - rng.random() * 29 * DAY)
            self._insert_user(u, record=False)
            if i % 2 == 0:
                gen_group["members"].append(uid)
        self.groups[gen_group["id"]] = gen_group

    # ---- state changes ---------------------------------------------------

    def _bump(self):
        self.version += 1

    def _record(self, uid, kind, props=None):
        self.log.append((uid, kind, frozenset(props) if props is not None else None))
        self._bump()

    def _touch(self, uid):
        self.uver[uid] = self.uver.get(uid, 0) + 1

    def _soft_delete(self, uid, when, record=True):
        u = self.users[uid]
        self.deleted[uid] = when
        upn = u.get("userPrincipalName") or ""
        self.orig_upn[uid] = upn
        prefix = uid.replace("-", "")
        if not upn.lower().startswith(prefix):
            u["userPrincipalName"] = prefix + upn
        u["deletedDateTime"] = fmt_time(when)
        self._touch(uid)
        self._bump()
        if record:
            self._record(uid, "del")

    def depart(self, uid, when=None):
        if uid in self.deleted:
            raise not_found(uid)
        self._soft_delete(uid, self.clock.now() if when is None else when)

    def restore(self, uid):
        if uid not in self.deleted:
            raise not_found(uid)
        u = self.users[uid]
        upn = self.orig_upn.get(uid) or u.get("userPrincipalName")
        for oid, other in self.users.items():
            if oid != uid and oid not in self.deleted and \
                    (other.get("userPrincipalName") or "").lower() == upn.lower():
                raise bad_request("Another object with the same value for property "
                                  "userPrincipalName already exists.")
        u["userPrincipalName"] = upn
        u.pop("deletedDateTime", None)
        del self.deleted[uid]
        self.orig_upn.pop(uid, None)
        self._touch(uid)
        self._record(uid, "rst")
        return u

    def purge(self, uid):
        if uid not in self.users:
            raise not_found(uid)
        if uid not in self.deleted:
            self._soft_delete(uid, self.clock.now())
        del self.users[uid]
        self.deleted.pop(uid, None)
        self.orig_upn.pop(uid, None)
        # group listings skip ids that are not users any more (ids are never reused)
        self._record(uid, "purge")

    def update(self, uid, props):
        u = self.users[uid]
        changed = set()
        for k, v in props.items():
            if k == "userPrincipalName" and v:
                for oid, other in self.users.items():
                    if oid != uid and (other.get("userPrincipalName") or "").lower() == v.lower():
                        raise bad_request("Another object with the same value for property "
                                          "userPrincipalName already exists.")
            if u.get(k, None if k not in COLLECTION_PROPS else []) != v or k not in u:
                changed.add(k)
            u[k] = v
        if changed:
            self._touch(uid)
            self._record(uid, "upd", changed)

    def bulk(self, action, ids):
        """One control call for many users (benchmarks): ids are exact object ids.
        Restores check the UPN against the live users once, not once per user."""
        live = None
        if action == "restore":
            live = {(u.get("userPrincipalName") or "").lower()
                    for oid, u in self.users.items() if oid not in self.deleted}
        done = 0
        for ref in ids:
            uid = ref.lower()
            if uid not in self.users:
                raise CtlError(404, "no user %s" % ref)
            if action == "disable":
                self.update(uid, {"accountEnabled": False})
            elif action == "enable":
                self.update(uid, {"accountEnabled": True})
            elif action == "depart":
                if uid in self.deleted:
                    raise CtlError(409, "user %s is already departed" % uid)
                self._soft_delete(uid, self.clock.now())
            elif action == "restore":
                if uid not in self.deleted:
                    raise CtlError(409, "user %s is not deleted" % uid)
                upn = (self.orig_upn.get(uid) or self.users[uid].get("userPrincipalName") or "")
                if upn.lower() in live:
                    raise CtlError(409, "the UPN of %s is taken" % uid)
                u = self.users[uid]
                u["userPrincipalName"] = upn
                u.pop("deletedDateTime", None)
                del self.deleted[uid]
                self.orig_upn.pop(uid, None)
                live.add(upn.lower())
                self._touch(uid)
                self._record(uid, "rst")
            elif action == "purge":
                self.purge(uid)
            else:
                raise CtlError(404, "unknown bulk action %r" % action)
            done += 1
        return done

    def auto_purge(self):
        """Lazily purge soft-deleted users past the retention window."""
        now = self.clock.now()
        with self.lock:
            due = [uid for uid, when in self.deleted.items() if now - when >= RETENTION]
            for uid in sorted(due):
                self.purge(uid)

    # ---- views -----------------------------------------------------------

    def sorted_ids(self, coll, flt):
        """Ids of `coll` ('live' / 'deleted') matching a Filter, sorted; cached."""
        key = (coll, flt.text if flt else None)
        hit = self.list_cache.get(key)
        if hit and hit[0] == self.version:
            return hit[1]
        if coll == "live":
            src = (u for uid, u in self.users.items() if uid not in self.deleted)
        else:
            src = (self.users[uid] for uid in self.deleted)
        pred = flt.pred if flt else None
        ids = sorted(u["id"] for u in src if pred is None or pred(u))
        if len(self.list_cache) > 64:
            self.list_cache.clear()
        self.list_cache[key] = (self.version, ids)
        return ids

    def render(self, u, select, extra=None):
        """Serialized JSON bytes for one user with the given $select (None=default)."""
        skey = tuple(select) if select else None
        cache = self.ser_cache.setdefault(skey, {})
        uid = u["id"]
        ver = self.uver.get(uid, 0)
        hit = cache.get(uid)
        if hit and hit[0] == ver and not extra:
            return hit[1]
        props = select or DEFAULT_PROPS
        out = {}
        if extra:
            out.update(extra)
        for p in props:
            if p == "id":
                continue
            v = u.get(p, [] if p in COLLECTION_PROPS else None)
            out[p] = v
        out["id"] = uid
        data = jdump(out)
        if not extra:
            cache[uid] = (ver, data)
        return data

    def user_obj(self, u, select):
        return json.loads(self.render(u, select))

    def transitive_users(self, gid):
        hit = self.group_cache.get(gid)
        if hit and hit[0] == self.version:
            return hit[1]
        seen_groups, users, stack = set(), set(), [gid]
        while stack:
            g = stack.pop()
            if g in seen_groups or g not in self.groups:
                continue
            seen_groups.add(g)
            for m in self.groups[g]["members"]:
                if m in self.groups:
                    stack.append(m)
                else:
                    users.add(m)
        self.group_cache[gid] = (self.version, users)
        return users

    def transitive_groups_of(self, uid):
        return {gid for gid in self.groups if uid in self.transitive_users(gid)}

    def find_user(self, ref, prefer_deleted=False):
        """Control-API lookup: id, mail, otherMails, UPN (current or original), or a
        unique prefix of mail/UPN."""
        r = unquote(ref).strip().lower()
        if r in self.users:
            return r
        exact, prefix = [], []
        for uid, u in self.users.items():
            keys = [(u.get("mail") or "").lower(), (u.get("userPrincipalName") or "").lower(),
                    (self.orig_upn.get(uid) or "").lower()]
            keys += [m.lower() for m in (u.get("otherMails") or [])]
            if r in keys:
                exact.append(uid)
            elif any(k.startswith(r) for k in keys if k):
                prefix.append(uid)
        cands = exact or prefix
        if not cands:
            raise CtlError(404, "no user matches %r" % ref)
        if len(cands) > 1:
            pref = [c for c in cands if (c in self.deleted) == prefer_deleted]
            if len(pref) == 1:
                return pref[0]
            raise CtlError(409, "%r is ambiguous: %s" % (ref, ", ".join(sorted(cands))))
        return cands[0]

    # ---- ID token signing keys ------------------------------------------

    def rotate_keys(self, keep_old=True):
        """A new RSA key signs from now on; the previous one stays published
        (as Entra does during a rollover) unless keep_old is false."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "accounts.accesscontrol.windows.net")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .sign(key, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        kid = b64url(hashlib.sha1(der).digest())
        with self.lock:
            self.signing_keys.insert(0, (kid, key, der))
            del self.signing_keys[2 if keep_old else 1:]
        return kid

    def signing_key(self):
        with self.lock:
            if not self.signing_keys:
                self.rotate_keys()
            return self.signing_keys[0]

    def jwks(self, issuer):
        self.signing_key()
        keys = []
        with self.lock:
            for kid, key, der in self.signing_keys:
                pub = key.public_key().public_numbers()
                n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
                e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
                keys.append({"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                             "n": b64url(n), "e": b64url(e),
                             "x5c": [base64.b64encode(der).decode("ascii")],
                             "cloud_instance_name": "microsoftonline.com",
                             "issuer": issuer})
        return {"keys": keys}

    def sign_jwt(self, header, claims, forge=None):
        """RS256 with the current key; forge (tests) may ask for alg none, a
        broken signature, or a key the JWKS does not publish."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        forge = forge or {}
        kid, key, _ = self.signing_key()
        if forge.get("unpublished_key"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            kid = "unpublished-" + b64url(secrets.token_bytes(6))
        header = dict(header, alg=forge.get("alg", "RS256"), kid=kid, x5t=kid)
        signing_input = "%s.%s" % (b64url(jdump(header)), b64url(jdump(claims)))
        if header["alg"] == "none":
            return signing_input + "."
        if header["alg"] == "HS256":
            # the classic confusion: the public key's bytes as an HMAC secret
            pub = key.public_key().public_numbers().n.to_bytes(256, "big")
            sig = hmac.new(pub, signing_input.encode("ascii"), hashlib.sha256).digest()
        else:
            sig = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        if forge.get("bad_signature"):
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        return signing_input + "." + b64url(sig)

    def find_devicecode(self, ref):
        """A pending sign-in by user code (case-insensitive) or 'latest'."""
        with self.lock:
            items = list(self.devicecodes.values())
        if ref == "latest":
            if not items:
                raise CtlError(404, "no device code was issued")
            return max(items, key=lambda d: d["created"])
        for d in items:
            if d["user_code"].lower() == ref.lower():
                return d
        raise CtlError(404, "no device code with user code %s" % ref)

    # ---- tokens (paging / delta) ---------------------------------------

    def _keystream(self, nonce, n):
        out, i = [], 0
        while sum(len(b) for b in out) < n:
            out.append(hashlib.sha256(self.key + nonce + i.to_bytes(4, "big")).digest())
            i += 1
        return b"".join(out)[:n]

    def enc_token(self, payload):
        """Opaque token: payload encrypted (SHA-256 keystream) and MACed with a
        per-process key, so tokens from another emulator run are unknown."""
        raw = jdump(payload)
        nonce = secrets.token_bytes(8)
        ct = bytes(a ^ b for a, b in zip(raw, self._keystream(nonce, len(raw))))
        mac = hmac.new(self.key, nonce + ct, hashlib.sha256).digest()[:12]
        return b64url(b"\x01" + nonce + mac + ct)

    def dec_token(self, text):
        try:
            raw = b64url_decode(text)
        except Exception:
            return None
        if len(raw) < 22 or raw[0] != 1:
            return None
        nonce, mac, ct = raw[1:9], raw[9:21], raw[21:]
        if not hmac.compare_digest(mac, hmac.new(self.key, nonce + ct,
                                                 hashlib.sha256).digest()[:12]):
            return None
        try:
            return json.loads(bytes(a ^ b for a, b in zip(ct, self._keystream(nonce, len(ct)))))
        except ValueError:
            return None

    # ---- logging / stats --------------------------------------------------

    def warn(self, msg):
        self.log_line("WARN " + msg)

    def log_line(self, line):
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with self.log_lock:
            out = self.log_file or sys.stderr
            try:
                out.write("%s %s\n" % (stamp, line))
                out.flush()
            except (OSError, ValueError):
                pass

    def reset_stats(self):
        with self.stats_lock:
            self.stats = {"total": 0, "token": 0, "users": 0, "delta": 0, "deleted": 0,
                          "groups": 0, "other": 0, "faults": 0, "by_status": {}}

    def count(self, category, status):
        with self.stats_lock:
            self.stats["total"] += 1
            self.stats[category] = self.stats.get(category, 0) + 1
            k = str(status)
            self.stats["by_status"][k] = self.stats["by_status"].get(k, 0) + 1


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, body=b"", ctype=None, headers=None):
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = headers or {}


def categorize(path):
    p = path.lower()
    if "/oauth2/" in p:
        return "devicecode" if p.endswith("/devicecode") else "token"
    if "/discovery/" in p:
        return "keys"
    if "/.well-known/" in p:
        return "oidc"
    if p.startswith("/v1.0/users/delta") or p.startswith("/v1.0/users/microsoft.graph.delta"):
        return "delta"
    if p.startswith("/v1.0/directory/deleteditems"):
        return "deleted"
    if p.startswith("/v1.0/groups") or p.endswith("/checkmembergroups") \
            or p.endswith("/getmembergroups"):
        return "groups"
    if p.startswith("/v1.0/users"):
        return "users"
    return "other"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *args):      # silence http.server's own log
        pass

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self.handle_request()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_GET

    @property
    def emu(self):
        return self.server.emu

    # ---- plumbing ---------------------------------------------------------

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def base_url(self):
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.emu.port
        return "https://" + host

    def handle_request(self):
        t0 = time.monotonic()
        emu = self.emu
        self.req_id = str(uuid.uuid4())
        self.client_req_id = self.headers.get("client-request-id") or self.req_id
        self.fault_mode = None
        self.batch_urls = []
        status = 0
        try:
            try:
                self.body = self.read_body()
            except (ValueError, OSError):
                self.close_connection = True
                self.send_raw(Response(400, b"bad request body", "text/plain"))
                return
            parts = urlsplit(self.path)
            path, query = parts.path, parts.query
            if path.startswith("/_emulator"):
                resp = self.control(path, query)
                status = resp.status
                self.send_raw(resp)
                return
            category = categorize(path)
            rule = self.match_fault(path)
            resp = None
            if rule is not None:
                resp = self.apply_fault(rule, path)
                if self.fault_mode == "drop":
                    status = "drop"
                    emu.count(category, "drop")
                    return
            if resp is None:
                resp = self.dispatch(path, query)
            status = resp.status
            emu.count(category, status)
            self.send_raw(resp)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
            status = status or "disconnected"
        finally:
            ms = (time.monotonic() - t0) * 1000
            line = "%s %s %s %.1fms" % (self.command, self.path, status, ms)
            emu.log_line(line)
            with emu.stats_lock:
                entry = {"method": self.command, "path": self.path, "status": status,
                         "ms": round(ms, 1), "at": round(time.time(), 3)}
                if self.batch_urls:
                    entry["batch"] = self.batch_urls
                emu.recent.append(entry)
                if len(emu.recent) > 2000:
                    del emu.recent[:1000]

    def send_raw(self, resp):
        body = resp.body if isinstance(resp.body, bytes) else jdump(resp.body)
        self.send_response(resp.status)
        if resp.ctype and (body or resp.status != 204):
            self.send_header("Content-Type", resp.ctype)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.fault_mode == "rewrite" and resp.status == 200:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("value"), list):
                if self.fault_rule.get("duplicate"):
                    doc["value"] = doc["value"] + doc["value"][::-1]
                doc["value"] += list(self.fault_rule.get("inject") or [])
                body = json.dumps(doc).encode()
        if self.fault_mode == "truncate" and len(body) > 1:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.abort_connection()
            return
        self.send_header("Content-Length", str(len(body)))
        # headers and body in one write: no Nagle / delayed-ACK stall between them
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass

    def graph_headers(self, extra=None):
        h = {"request-id": self.req_id, "client-request-id": self.client_req_id,
             "x-ms-ags-diagnostic": json.dumps({"ServerInfo": {
                 "DataCenter": "Emulator", "Slice": "E", "Ring": "1", "ScaleUnit": "000",
                 "RoleInstance": "GRAPH-EMU"}}, separators=(",", ":")),
             "Strict-Transport-Security": "max-age=31536000", "OData-Version": "4.0",
             "Cache-Control": "no-cache"}
        if extra:
            h.update(extra)
        return h

    def graph_json(self, status, obj, headers=None):
        body = obj if isinstance(obj, bytes) else jdump(obj)
        return Response(status, body, GRAPH_CT, self.graph_headers(headers))

    def graph_error(self, err):
        inner = {"date": fmt_inner_date(self.emu.clock.now()), "request-id": self.req_id,
                 "client-request-id": self.client_req_id}
        inner.update(err.inner)
        body = {"error": {"code": err.code, "message": err.message, "innerError": inner}}
        return self.graph_json(err.status, body, err.headers)

    # ---- faults -------------------------------------------------------------

    def match_fault(self, path, in_batch=False):
        emu = self.emu
        with emu.lock:
            for rule in emu.faults:
                if bool(rule.get("in_batch")) != in_batch:
                    continue
                if rule.get("method") and rule["method"].upper() != self.command:
                    continue
                if rule.get("path_prefix") and not path.lower().startswith(
                        rule["path_prefix"].lower()):
                    continue
                if rule.get("query_contains") and rule["query_contains"] not in self.path:
                    continue
                rule["_seen"] += 1
                nth = rule.get("nth")
                if nth and rule["_seen"] < nth:
                    continue
                count = rule.get("count", 1)
                if count is not None and count > 0 and rule["_fired"] >= count:
                    continue
                rule["_fired"] += 1
                with emu.stats_lock:
                    emu.stats["faults"] += 1
                return dict(rule)
        return None

    def apply_fault(self, rule, path):
        """Returns a Response to send instead of the real one, or None to go on."""
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        action = rule.get("action")
        if action == "drop":
            self.fault_mode = "drop"
            self.abort_connection()
            return None
        if action == "truncate":
            self.fault_mode = "truncate"
            return None
        if action == "emptypage":
            self.fault_mode = "emptypage"
            return None
        if action == "rewrite":
            # Hostile directory data in a page: every item twice ("duplicate")
            # and/or extra objects ("inject", e.g. members in a guest page).
            self.fault_mode = "rewrite"
            self.fault_rule = rule
            return None
        if action == "expire_token":
            tok = self.bearer()
            with self.emu.lock:
                if tok in self.emu.tokens:
                    self.emu.tokens[tok]["expired"] = True
            return None
        if action == "badjson":
            return Response(200, b'{"@odata.context":"https://graph.microsoft.com/v1.0/$meta'
                                 b'data#users","value":[{"id":"0000', GRAPH_CT,
                            self.graph_headers())
        status = rule.get("status")
        if not status:
            return None
        headers = {}
        ra = rule.get("retry_after")
        if ra is not None and ra != "":
            headers["Retry-After"] = str(ra)
        if "/oauth2/" in path.lower():
            code, msg, err = {
                429: (90055, "TenantThrottlingError - There are too many incoming requests. "
                             "This exception is thrown for blocked tenants.",
                      "temporarily_unavailable"),
            }.get(status, (90033, "A transient error has occurred. Please try again.",
                           "temporarily_unavailable" if status >= 500 else "invalid_request"))
            resp = self.token_error(TokenError(status, err, code, msg))
            resp.headers.update(headers)
            return resp
        if status == 429:
            err = GraphError(429, "TooManyRequests", "Please retry again later.", headers,
                             {"code": "429", "message": "Please retry after", "status": "429"})
        else:
            code, msg = {
                500: ("InternalServerError", "An internal server error occurred."),
                502: ("BadGateway", "The service is temporarily unavailable."),
                503: ("ServiceUnavailable", "The service is temporarily unavailable. "
                                            "Please retry later."),
                504: ("GatewayTimeout", "The operation has timed out."),
                401: ("InvalidAuthenticationToken", "Access token validation failure."),
                403: ("Authorization_RequestDenied", INSUFFICIENT),
                404: ("Request_ResourceNotFound", "Resource does not exist."),
                400: ("Request_BadRequest", "Bad request."),
            }.get(status, ("UnknownError", "An error occurred."))
            err = GraphError(status, code, msg, headers)
        return self.graph_error(err)

    # ---- routing ---------------------------------------------------------------

    def dispatch(self, path, query):
        emu = self.emu
        segs = [unquote(s) for s in path.split("/") if s]
        low = [s.lower() for s in segs]
        try:
            if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "token"]:
                return self.token_endpoint(segs[0], path)
            if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "devicecode"]:
                return self.devicecode_endpoint(segs[0])
            if len(low) == 4 and low[1:] == ["discovery", "v2.0", "keys"]:
                return self.keys_endpoint(segs[0])
            if len(low) == 4 and low[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                return self.openid_configuration(segs[0])
            if not low or low[0] != "v1.0":
                if low and low[0] == "beta":
                    raise bad_request("The emulator serves v1.0 only.", "BadRequest")
                return Response(404, b'{"error":"not_found"}', CTL_CT)
            q = self.parse_query(query)
            self.auth_graph()
            emu.auto_purge()
            return self.route_graph(segs[1:], low[1:], q)
        except GraphError as e:
            return self.graph_error(e)
        except TokenError as e:
            return self.token_error(e)

    def parse_query(self, query):
        q = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            kl = k.lower()
            if kl.startswith("$"):
                if kl in q:
                    raise bad_request("Query option '%s' was specified more than once, but it "
                                      "must be specified at most once." % k, "BadRequest")
                q[kl] = v
        return q

    def batch(self):
        """JSON batching: POST /v1.0/$batch with up to 20 requests, answered in one
        response; each request is served as if it came alone (GET only here)."""
        try:
            doc = json.loads(self.body or b"{}")
            reqs = doc["requests"]
            assert isinstance(reqs, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise bad_request("Invalid batch payload format.", "BadRequest")
        if not reqs or len(reqs) > 20:
            raise bad_request("Number of batch request steps exceeds the maximum of 20.",
                              "BadRequest")
        out = []
        saved = self.command
        try:
            for r in reqs:
                rid = str(r.get("id", ""))
                method = str(r.get("method", "GET")).upper()
                url = str(r.get("url", ""))
                parts = urlsplit(url if url.startswith("/") else "/" + url)
                segs = [unquote(x) for x in parts.path.split("/") if x]
                if segs and segs[0].lower() == "v1.0":
                    segs = segs[1:]
                self.command = method
                self.batch_urls.append(url)
                try:
                    if method != "GET":
                        raise bad_request("The emulator batches GET requests only.", "BadRequest")
                    # A fault rule with "in_batch": true answers one item of a batch, with
                    # its own status and headers (concepts/json-batching.md: "each item
                    # has its own status", and a throttled item its own Retry-After).
                    rule = self.match_fault("/v1.0" + parts.path if not
                                            parts.path.lower().startswith("/v1.0")
                                            else parts.path, in_batch=True)
                    resp = self.apply_fault(rule, parts.path) if rule else None
                    if resp is None:
                        resp = self.route_graph(segs, [x.lower() for x in segs],
                                                self.parse_query(parts.query))
                except GraphError as e:
                    resp = self.graph_error(e)
                body = resp.body if isinstance(resp.body, bytes) else jdump(resp.body)
                headers = {"Content-Type": resp.ctype or GRAPH_CT}
                if "Retry-After" in resp.headers:
                    headers["Retry-After"] = resp.headers["Retry-After"]
                out.append({"id": rid, "status": resp.status, "headers": headers,
                            "body": json.loads(body) if body else None})
        finally:
            self.command = saved
        return self.graph_json(200, {"responses": out})

    def route_graph(self, segs, low, q):
        m = self.command
        n = len(low)
        if n == 0:
            raise bad_request("Resource not found for the segment 'v1.0'.", "BadRequest")
        head = low[0]
        if head == "$batch" and n == 1:
            if m != "POST":
                raise self.not_allowed()
            return self.batch()
        if head == "users":
            if n == 1:
                if m == "GET":
                    return self.list_users(q)
                if m == "POST":
                    return self.create_user()
                raise self.not_allowed()
            if low[1] in ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"):
                if n == 2 and m == "GET":
                    return self.delta(q)
                raise self.not_allowed()
            if n == 2:
                if m == "GET":
                    return self.get_user(segs[1], q)
                if m == "PATCH":
                    return self.patch_user(segs[1])
                if m == "DELETE":
                    return self.delete_user(segs[1])
                raise self.not_allowed()
            if n == 3 and low[2] in ("checkmembergroups", "microsoft.graph.checkmembergroups"):
                if m == "POST":
                    return self.check_member_groups(segs[1])
                raise self.not_allowed()
            if n == 3 and low[2] in ("getmembergroups", "microsoft.graph.getmembergroups"):
                if m == "POST":
                    return self.get_member_groups(segs[1])
                raise self.not_allowed()
            raise bad_request("Resource not found for the segment '%s'." % segs[2], "BadRequest")
        if head == "directoryobjects" and n == 3 and low[2] in (
                "checkmembergroups", "microsoft.graph.checkmembergroups"):
            if m == "POST":
                return self.check_member_groups(segs[1])
            raise self.not_allowed()
        if head == "directory" and n >= 2 and low[1] == "deleteditems":
            if n == 2:
                if m == "GET":
                    raise bad_request("Searches against this resource are not supported. Only "
                                      "specific instances can be queried.",
                                      "Request_UnsupportedQuery")
                raise self.not_allowed()
            if low[2] == "microsoft.graph.user" and n == 3:
                if m == "GET":
                    return self.list_deleted(q)
                raise self.not_allowed()
            if low[2].startswith("microsoft.graph.") and n == 3:
                if m == "GET":
                    self.require(ROLES_READ_USERS)
                    return self.graph_json(200, {"@odata.context": self.base_url() +
                                                 "/v1.0/$metadata#directoryObjects", "value": []})
                raise self.not_allowed()
            if n == 3:
                if m == "GET":
                    return self.get_deleted(segs[2], q)
                if m == "DELETE":
                    return self.purge_deleted(segs[2])
                raise self.not_allowed()
            if n == 4 and low[3] in ("restore", "microsoft.graph.restore"):
                if m == "POST":
                    return self.restore_deleted(segs[2])
                raise self.not_allowed()
            raise bad_request("Resource not found for the segment '%s'." % segs[-1], "BadRequest")
        if head == "groups" and n >= 2:
            return self.groups_route(segs, low, q)
        if head == "organization" and n == 1 and m == "GET":
            return self.organization()
        raise bad_request("Resource not found for the segment '%s'." % segs[0], "BadRequest")

    def not_allowed(self):
        return GraphError(405, "Request_BadRequest",
                          "Specified HTTP method is not allowed for the request target.")

    # ---- authentication ---------------------------------------------------------

    def bearer(self):
        h = self.headers.get("Authorization") or ""
        parts = h.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1].strip()
        return ""

    def auth_graph(self):
        emu = self.emu
        www = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.'
               'microsoftonline.com/common/oauth2/authorize", client_id="%s"' % MS_GRAPH_APPID}
        tok = self.bearer()
        if not tok:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", www)
        with emu.lock:
            info = emu.tokens.get(tok)
            if info is None:
                raise GraphError(401, "InvalidAuthenticationToken",
                                 "CompactToken parsing failed with error code: 80049217", www)
            if info.get("expired") or emu.clock.now() >= info["exp"]:
                raise GraphError(401, "InvalidAuthenticationToken",
                                 "Lifetime validation failed, the token is expired.", www)
            self.client = emu.clients.get(info["client"])
            self.roles = set(info["roles"])

    def require(self, roles):
        if not (self.roles & roles):
            raise GraphError(403, "Authorization_RequestDenied", INSUFFICIENT)

    # ---- token endpoint -----------------------------------------------------------

    def token_error(self, e):
        emu = self.emu
        now = emu.clock.now()
        trace, corr = str(uuid.uuid4()), self.headers.get("client-request-id") or str(uuid.uuid4())
        desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            e.code, e.message, trace, corr, fmt_aad_time(now))
        body = {"error": e.error, "error_description": desc, "error_codes": [e.code],
                "timestamp": fmt_aad_time(now), "trace_id": trace, "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % e.code}
        return Response(e.status, jdump(body), AAD_CT, self.aad_headers())

    def aad_headers(self):
        return {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                "x-ms-request-id": self.req_id, "Strict-Transport-Security":
                "max-age=31536000; includeSubDomains", "X-Content-Type-Options": "nosniff"}

    def token_endpoint(self, tenant, path):
        emu = self.emu
        t = tenant.lower()
        if t != emu.tenant_id and t not in emu.domains:
            raise TokenError(400, "invalid_request", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct "
                             "tenant ID and are signing into the correct cloud. Check with your "
                             "subscription administrator, this may happen if there are no active "
                             "subscriptions for the tenant." % tenant)
        if self.command != "POST":
            raise TokenError(400, "invalid_request", 900561,
                             "The endpoint only accepts POST requests. Received a %s request."
                             % self.command)
        ctype = (self.headers.get("Content-Type") or "").lower()
        form = {}
        if ctype.startswith("application/x-www-form-urlencoded"):
            try:
                form = dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                form = {}
        basic_id = basic_secret = None
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                dec = base64.b64decode(auth[6:].strip()).decode("utf-8")
                basic_id, basic_secret = [unquote(x.replace("+", " ")) for x in dec.split(":", 1)]
            except (ValueError, UnicodeDecodeError):
                pass
        gt = form.get("grant_type")
        if not gt:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'grant_type'.")
        if gt == DEVICE_CODE_GRANT:
            return self.device_code_grant(form)
        if gt != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type '%s'." % gt)
        assertion = form.get("client_assertion")
        atype = form.get("client_assertion_type")
        client_id = (form.get("client_id") or basic_id or "").strip().lower()
        claims = None
        if assertion and not client_id:
            try:
                claims = json.loads(b64url_decode(assertion.split(".")[1]))
                client_id = str(claims.get("iss") or "").lower()
            except Exception:
                pass
        if not client_id:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'client_id'.")
        with emu.lock:
            client = emu.clients.get(client_id)
        if client is None:
            raise TokenError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory "
                             "'%s'. This can happen if the application has not been installed by "
                             "the administrator of the tenant or consented to by any user in the "
                             "tenant. You may have sent your authentication request to the wrong "
                             "tenant." % (client_id, emu.tenant_name))
        scope = form.get("scope")
        if not scope:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        if not scope.endswith("/.default") or len(scope.split()) != 1:
            raise TokenError(400, "invalid_scope", 70011,
                             "The provided value for scope %s is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the "
                             "resource identifier (application ID URI)." % scope)
        resource = scope[:-len("/.default")].rstrip("/").lower()
        host = (self.headers.get("Host") or "").lower()
        ok_resources = {"https://graph.microsoft.com", MS_GRAPH_APPID,
                        "https://127.0.0.1:%d" % emu.port, "https://localhost:%d" % emu.port}
        if host:
            ok_resources.add("https://" + host)
        if resource not in ok_resources:
            raise TokenError(400, "invalid_resource", 500011,
                             "The resource principal named %s was not found in the tenant named "
                             "%s. This can happen if the application has not been installed by "
                             "the administrator of the tenant or consented to by any user in the "
                             "tenant. You might have sent your authentication request to the "
                             "wrong tenant." % (scope[:-len("/.default")], emu.tenant_name))
        secret = form.get("client_secret", basic_secret)
        if secret is not None and assertion:
            raise TokenError(400, "invalid_request", 90014,
                             "Only one client credential may be used: 'client_secret' and "
                             "'client_assertion' were both provided.")
        if assertion:
            if atype != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                raise TokenError(400, "invalid_request", 7000219 if not atype else 50027,
                                 "'client_assertion_type' is missing or has an unsupported "
                                 "value: '%s'." % (atype or ""))
            self.verify_assertion(client, assertion, tenant, path)
        elif secret is not None:
            if client.secret is None or not hmac.compare_digest(
                    secret.encode("utf-8"), client.secret.encode("utf-8")):
                raise TokenError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent "
                                 "in the request is the client secret value, not the client "
                                 "secret ID, for a secret added to app '%s'." % client.client_id)
        else:
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        now = emu.clock.now()
        token = self.make_access_token(client, now)
        with emu.lock:
            emu.tokens[token] = {"client": client.client_id, "exp": now + TOKEN_LIFETIME,
                                 "roles": sorted(client.roles), "expired": False}
            if len(emu.tokens) > 10000:
                for k in [k for k, v in emu.tokens.items() if v["exp"] < now][:5000]:
                    del emu.tokens[k]
        body = {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME, "access_token": token}
        return Response(200, jdump(body), AAD_CT, self.aad_headers())

    # ---- device code sign-in (RFC 8628) ---------------------------------------------

    def check_tenant(self, tenant):
        emu = self.emu
        t = tenant.lower()
        if t != emu.tenant_id and t not in emu.domains:
            raise TokenError(400, "invalid_request", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct "
                             "tenant ID and are signing into the correct cloud. Check with your "
                             "subscription administrator, this may happen if there are no active "
                             "subscriptions for the tenant." % tenant)

    def read_form(self):
        ctype = (self.headers.get("Content-Type") or "").lower()
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return {}
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return {}

    def issuer(self):
        return "%s/%s/v2.0" % (self.base_url(), self.emu.tenant_id)

    def devicecode_endpoint(self, tenant):
        """POST {authority}/{tenant}/oauth2/v2.0/devicecode: client_id, scope."""
        emu = self.emu
        self.check_tenant(tenant)
        if self.command != "POST":
            raise TokenError(400, "invalid_request", 900561,
                             "The endpoint only accepts POST requests. Received a %s request."
                             % self.command)
        form = self.read_form()
        client_id = (form.get("client_id") or "").strip().lower()
        if not client_id:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'client_id'.")
        with emu.lock:
            client = emu.clients.get(client_id)
        if client is None:
            raise TokenError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory "
                             "'%s'." % (client_id, emu.tenant_name))
        scope = form.get("scope")
        if not scope:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        user_code = "".join(secrets.choice(USER_CODE_CHARS) for _ in range(9))
        device_code = "DAQABIQEAAAD" + b64url(secrets.token_bytes(96))
        with emu.lock:
            emu.devicecodes[device_code] = {
                "user_code": user_code, "client_id": client_id, "scope": scope,
                "created": time.monotonic(), "expires_in": emu.dc_expires_in,
                "interval": emu.dc_interval, "state": "pending", "user": None, "forge": {},
                "polls": [], "last_poll": None, "slow_down": 0, "redeemed": False}
        body = {"user_code": user_code, "device_code": device_code,
                "verification_uri": VERIFICATION_URI, "expires_in": emu.dc_expires_in,
                "interval": emu.dc_interval,
                "message": "To sign in, use a web browser to open the page %s and enter the "
                           "code %s to authenticate." % (VERIFICATION_URI, user_code)}
        return Response(200, jdump(body), AAD_CT, self.aad_headers())

    def device_code_grant(self, form):
        """The token endpoint's device_code grant: the errors of RFC 8628 §3.5
        and of the device code flow page, and invalid_client (AADSTS7000218) for
        an app registration without "Allow public client flows"."""
        emu = self.emu
        client_id = (form.get("client_id") or "").strip().lower()
        with emu.lock:
            client = emu.clients.get(client_id)
        if client is None:
            raise TokenError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory "
                             "'%s'." % (client_id, emu.tenant_name))
        if not client.public:
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        with emu.lock:
            d = emu.devicecodes.get(form.get("device_code") or "")
            if d is None or d["client_id"] != client_id:
                raise TokenError(400, "bad_verification_code", 70019,
                                 "The provided value for the input parameter 'device_code' "
                                 "is not valid.")
            now = time.monotonic()
            d["polls"].append(round(now - d["created"], 3))
            last, d["last_poll"] = d["last_poll"], now
            if d["state"] == "expired" or now - d["created"] > d["expires_in"]:
                d["state"] = "expired"
                raise TokenError(400, "expired_token", 70020,
                                 "The provided value for the input parameter 'device_code' is "
                                 "not valid. This device code has expired.")
            if d["state"] == "declined":
                raise TokenError(400, "authorization_declined", 70000,
                                 "The user declined to authorize the request.")
            if d["state"] == "pending" and (d["slow_down"] > 0 or (
                    last is not None and now - last < d["interval"] - 0.2)):
                d["slow_down"] = max(0, d["slow_down"] - 1)
                d["interval"] += 5
                d["slowed"] = d.get("slowed", 0) + 1
                raise TokenError(400, "slow_down", 70016,
                                 "OAuth 2.0 device flow error. Authorization is pending. "
                                 "Poll no faster than every %d seconds." % d["interval"])
            if d["state"] == "pending":
                raise TokenError(400, "authorization_pending", 70016,
                                 "OAuth 2.0 device flow error. Authorization is pending. "
                                 "Continue polling.")
            if d["redeemed"]:
                raise TokenError(400, "invalid_grant", 54005,
                                 "OAuth2 Authorization code was already redeemed, please "
                                 "retry with a new valid code or use an existing refresh token.")
            d["redeemed"] = True
            if d["forge"].get("blocked"):
                raise TokenError(400, "invalid_grant", 53003,
                                 "Access has been blocked by Conditional Access policies. The "
                                 "access policy does not allow token issuance.")
            user = dict(emu.users.get(d["user"]) or {"id": d["user"]})
            forge = dict(d["forge"])
        nowc = int(emu.clock.now())
        claims = {"aud": client_id, "iss": self.issuer(), "iat": nowc, "nbf": nowc,
                  "exp": nowc + ID_TOKEN_LIFETIME, "name": user.get("displayName"),
                  "oid": user["id"], "preferred_username": user.get("userPrincipalName"),
                  "rh": b64url(secrets.token_bytes(24)),
                  "sub": b64url(hashlib.sha256((user["id"] + client_id).encode()).digest()),
                  "tid": emu.tenant_id, "uti": b64url(secrets.token_bytes(16)), "ver": "2.0"}
        for k, v in (forge.get("claims") or {}).items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        id_token = emu.sign_jwt({"typ": "JWT"}, claims, forge)
        body = {"token_type": "Bearer", "scope": "openid profile User.Read email",
                "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                "access_token": b64url(secrets.token_bytes(64)), "id_token": id_token}
        return Response(200, jdump(body), AAD_CT, self.aad_headers())

    def keys_endpoint(self, tenant):
        """GET {authority}/{tenant}/discovery/v2.0/keys."""
        self.check_tenant(tenant)
        return Response(200, jdump(self.emu.jwks(self.issuer())), AAD_CT, self.aad_headers())

    def openid_configuration(self, tenant):
        self.check_tenant(tenant)
        base, tid = self.base_url(), self.emu.tenant_id
        body = {"token_endpoint": "%s/%s/oauth2/v2.0/token" % (base, tid),
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt",
                                                          "client_secret_basic"],
                "jwks_uri": "%s/%s/discovery/v2.0/keys" % (base, tid),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token",
                                             "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self.issuer(),
                "device_authorization_endpoint": "%s/%s/oauth2/v2.0/devicecode" % (base, tid),
                "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (base, tid),
                "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com"}
        return Response(200, jdump(body), AAD_CT, self.aad_headers())

    def control_devicecodes(self, segs, m, data):
        emu = self.emu
        n = len(segs)
        data = data or {}
        if n == 1:
            with emu.lock:
                return {"devicecodes": [
                    {"user_code": d["user_code"], "client_id": d["client_id"],
                     "state": d["state"], "user": d["user"], "interval": d["interval"],
                     "expires_in": d["expires_in"], "polls": list(d["polls"]),
                     "slowed": d.get("slowed", 0),
                     "age": round(time.monotonic() - d["created"], 3)}
                    for d in sorted(emu.devicecodes.values(), key=lambda x: x["created"])]}
        if n == 2 and segs[1] == "config" and m == "POST":
            with emu.lock:
                if "interval" in data:
                    emu.dc_interval = int(data["interval"])
                if "expires_in" in data:
                    emu.dc_expires_in = int(data["expires_in"])
                return {"interval": emu.dc_interval, "expires_in": emu.dc_expires_in}
        if n == 3 and m == "POST":
            d = emu.find_devicecode(segs[1])
            action = segs[2]
            with emu.lock:
                if action == "approve":
                    if d["state"] != "pending":
                        raise CtlError(409, "code %s is %s" % (d["user_code"], d["state"]))
                    d["user"] = emu.find_user(data["user"])
                    d["forge"] = {k: v for k, v in data.items() if k != "user"}
                    d["state"] = "approved"
                elif action == "decline":
                    d["state"] = "declined"
                elif action == "expire":
                    d["state"] = "expired"
                elif action == "slow-down":
                    d["slow_down"] += int(data.get("count", 1))
                else:
                    raise CtlError(404, "unknown device code action %r" % action)
                return {"user_code": d["user_code"], "state": d["state"], "user": d["user"]}
        raise CtlError(404, "unknown control endpoint")

    def make_access_token(self, client, now):
        emu = self.emu
        header = {"typ": "JWT", "nonce": b64url(secrets.token_bytes(32)), "alg": "RS256",
                  "x5t": "emulator", "kid": "emulator"}
        payload = {"aud": "https://graph.microsoft.com",
                   "iss": "https://sts.windows.net/%s/" % emu.tenant_id,
                   "iat": int(now), "nbf": int(now), "exp": int(now) + TOKEN_LIFETIME,
                   "aio": b64url(secrets.token_bytes(48)), "app_displayname": client.name,
                   "appid": client.client_id, "appidacr": "1", "idp":
                   "https://sts.windows.net/%s/" % emu.tenant_id, "idtyp": "app",
                   "oid": str(uuid.uuid4()), "rh": b64url(secrets.token_bytes(24)),
                   "roles": sorted(client.roles), "sub": str(uuid.uuid4()), "tenant_region_scope":
                   "EU", "tid": emu.tenant_id, "uti": b64url(secrets.token_bytes(16)),
                   "ver": "1.0", "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
                   "xms_tcdt": 1600000000}
        return "%s.%s.%s" % (b64url(jdump(header)), b64url(jdump(payload)),
                             b64url(secrets.token_bytes(256)))

    def verify_assertion(self, client, assertion, tenant, path):
        emu = self.emu

        def fail(msg, code=700027):
            raise TokenError(401, "invalid_client", code, msg)

        parts = assertion.split(".")
        if len(parts) != 3:
            raise TokenError(400, "invalid_request", 50027,
                             "JWT token is invalid or malformed.")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except Exception:
            raise TokenError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            fail("Client assertion failed signature validation. [Reason - The signature "
                 "algorithm '%s' is not supported.]" % alg)
        if str(claims.get("iss", "")).lower() != client.client_id or \
                str(claims.get("sub", "")).lower() != client.client_id:
            fail("Client assertion contains an invalid issuer or subject: 'iss' and 'sub' must "
                 "both be the client id '%s'." % client.client_id, 700023)
        if not client.certs:
            fail("The certificate with identifier used to sign the client assertion is not "
                 "registered on application. [Reason - The key was not found.]")
        # The pairs Microsoft documents, and no others: PS256 with the SHA-256
        # thumbprint "x5t#S256" (entra-docs identity-platform/certificate-credentials.md:
        # "alg: Should be PS256", "x5t#S256: Base64url-encoded SHA-256 thumbprint",
        # "Use PSS padding"), and the older RS256 with the SHA-1 "x5t" (MSAL's
        # deprecated fromCertificate). No Microsoft source pairs RS256 with x5t#S256.
        cert = None
        if alg == "PS256" and header.get("x5t#S256"):
            cert = next((c for c in client.certs if c["s256"] == header["x5t#S256"]), None)
        elif alg == "RS256" and header.get("x5t") and not header.get("x5t#S256"):
            cert = next((c for c in client.certs if c["s1"] == header["x5t"]), None)
        elif alg == "RS256" and header.get("x5t#S256"):
            fail("Client assertion failed signature validation. [Reason - The signature "
                 "algorithm 'RS256' cannot be used with an 'x5t#S256' thumbprint: sign PS256.]")
        else:
            fail("The certificate with identifier used to sign the client assertion is not "
                 "registered on application. [Reason - The 'x5t#S256' header is missing.]")
        if cert is None:
            fail("The certificate with identifier used to sign the client assertion is not "
                 "registered on application. [Reason - The key was not found., Thumbprint of key "
                 "used by client: '%s']" % (header.get("x5t#S256") or header.get("x5t")))
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        hosts = {(self.headers.get("Host") or "").lower(), "127.0.0.1:%d" % emu.port,
                 "localhost:%d" % emu.port}
        wanted = {"https://%s%s" % (h, path) for h in hosts if h}
        if not any(isinstance(a, str) and a in wanted for a in auds):
            fail("The audience '%s' of the client assertion is invalid: it must be the token "
                 "endpoint URL '%s'." % (aud, sorted(wanted)[0]), 700027)
        # lifetime: accepted if valid against the emulator clock or the wall clock
        try:
            exp = float(claims["exp"])
            nbf = float(claims.get("nbf", claims.get("iat", 0)))
        except (KeyError, TypeError, ValueError):
            fail("Client assertion contains an invalid or missing 'exp' claim.", 700024)
        ok = False
        for now in (emu.clock.now(), time.time()):
            if exp > now - ASSERTION_SKEW and nbf <= now + ASSERTION_SKEW:
                ok = True
        if not ok:
            fail("Client assertion is not within its valid time range. Ensure that the "
                 "'nbf' and 'exp' claims are valid.", 700024)
        # signature, with openssl
        with tempfile.TemporaryDirectory(dir=emu.tmpdir) as td:
            data_f, sig_f = os.path.join(td, "data"), os.path.join(td, "sig")
            with open(data_f, "wb") as f:
                f.write(("%s.%s" % (parts[0], parts[1])).encode("ascii"))
            with open(sig_f, "wb") as f:
                f.write(sig)
            cmd = ["openssl", "dgst", "-sha256", "-verify", cert["pubkey"], "-signature", sig_f]
            if alg == "PS256":
                cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                        "-sigopt", "rsa_mgf1_md:sha256"]
            cmd.append(data_f)
            r = subprocess.run(cmd, capture_output=True)
        if r.returncode != 0:
            fail("Client assertion failed signature validation. [Reason - The key was found but "
                 "the signature did not verify with it., Thumbprint of key used by client: '%s', "
                 "Found key 'Start=..., End=...']" % cert["thumb"])

    # ---- Graph: helpers --------------------------------------------------------

    def parse_select(self, q, allow_deleted=True):
        sel = q.get("$select")
        if sel is None:
            return None
        out = []
        for raw in sel.split(","):
            name = raw.strip()
            if not name:
                continue
            canon = USER_PROPS_CI.get(name.lower())
            if canon is None:
                raise bad_request("Could not find a property named '%s' on type "
                                  "'Microsoft.DirectoryServices.User'." % name)
            if canon not in out:
                out.append(canon)
        if not out:
            raise bad_request("Invalid $select value.", "BadRequest")
        if "id" not in out:
            out.append("id")
        return out

    def parse_top(self, q, default=100):
        top = q.get("$top")
        if top is None:
            return default
        if not re.fullmatch(r"-?\d+", top.strip()):
            raise bad_request("Invalid value '%s' for $top query option found. The $top query "
                              "option requires a non-negative integer value." % top,
                              "BadRequest")
        n = int(top)
        if n < 1 or n > 999:
            raise bad_request("Invalid page size specified: '%d'. Must be between 1 and 999 "
                              "inclusive." % n, "Request_UnsupportedQuery")
        return n

    def parse_filter(self, q):
        text = q.get("$filter")
        if text is None:
            return None
        try:
            flt = Filter(text)
        except FilterError as e:
            raise bad_request(str(e), e.code)
        if flt.advanced and not self.advanced_query(q):
            raise bad_request("Unsupported or invalid query filter clause specified for property "
                              "'%s' of resource 'User'." % (sorted(flt.props)[0] if flt.props
                                                            else "?"),
                              "Request_UnsupportedQuery")
        return flt

    def advanced_query(self, q):
        return (self.headers.get("ConsistencyLevel") or "").lower() == "eventual" and \
            (q.get("$count") or "").lower() == "true"

    def check_unsupported(self, q, allowed):
        for k in q:
            if k not in allowed:
                if k in ("$orderby", "$expand", "$search", "$skip", "$format", "$levels"):
                    raise bad_request("The query option '%s' is not supported by the emulator "
                                      "for this request." % k, "Request_UnsupportedQuery")
                raise bad_request("The query parameter '%s' is not supported." % k,
                                  "BadRequest")
        if "$count" in q:
            if q["$count"].lower() not in ("true", "false"):
                raise bad_request("Invalid value for $count.", "BadRequest")
            if q["$count"].lower() == "true" and \
                    (self.headers.get("ConsistencyLevel") or "").lower() != "eventual":
                raise bad_request("$count is not currently supported.", "Request_BadRequest")

    def context(self, coll, select, entity=False):
        s = "%s/v1.0/$metadata#%s" % (self.base_url(), coll)
        if select:
            s += "(%s)" % ",".join(select)
        if entity:
            s += "/$entity"
        return s

    def page_size(self, requested):
        cap = self.emu.page_cap
        return min(requested, cap) if cap else requested

    def resolve_user(self, ref, include_deleted=False):
        """Graph-style lookup: object id or userPrincipalName."""
        emu = self.emu
        r = ref.lower()
        if r in emu.users and (include_deleted or r not in emu.deleted):
            return r
        if "@" in r:
            for uid, u in emu.users.items():
                if uid in emu.deleted and not include_deleted:
                    continue
                if (u.get("userPrincipalName") or "").lower() == r:
                    return uid
        raise not_found(ref)

    def page_response(self, coll_ctx, ids, users, select, q, path, top, count=None,
                      annotate=False):
        """A page of a collection sorted by id, cursor = last id."""
        emu = self.emu
        after = ""
        if "$skiptoken" in q:
            st = emu.dec_token(q["$skiptoken"])
            if not st or st.get("k") != path:
                raise bad_request("The specified page token value has expired and can no longer "
                                  "be included in your request.", "Directory_ExpiredPageToken")
            after = st["a"]
        start = bisect.bisect_right(ids, after) if after else 0
        size = self.page_size(top)
        if self.fault_mode == "emptypage":
            chunk = []
        else:
            chunk = ids[start:start + size]
        if annotate:
            parts = [emu.render(users[i], select, {"@odata.type": "#microsoft.graph.user"})
                     for i in chunk]
        else:
            parts = [emu.render(users[i], select) for i in chunk]
        out = [b'{"@odata.context":', jdump(coll_ctx)]
        if count is not None:
            out += [b',"@odata.count":', str(count).encode()]
        more = self.fault_mode == "emptypage" or start + len(chunk) < len(ids)
        if more:
            last = chunk[-1] if chunk else after
            params = [(k, v) for k, v in sorted(q.items()) if k != "$skiptoken"]
            params.append(("$skiptoken", emu.enc_token({"k": path, "a": last})))
            link = "%s%s?%s" % (self.base_url(), self.path.split("?")[0],
                                "&".join("%s=%s" % (k, qv(v)) for k, v in params))
            out += [b',"@odata.nextLink":', jdump(link)]
        out += [b',"value":[', b",".join(parts), b"]}"]
        return self.graph_json(200, b"".join(out))

    # ---- Graph: users ----------------------------------------------------------------

    def list_users(self, q):
        self.require(ROLES_READ_USERS)
        emu = self.emu
        self.check_unsupported(q, {"$filter", "$select", "$top", "$skiptoken", "$count"})
        select = self.parse_select(q)
        top = self.parse_top(q)
        flt = self.parse_filter(q)
        with emu.lock:
            ids = emu.sorted_ids("live", flt)
            count = len(ids) if (q.get("$count") or "").lower() == "true" else None
            return self.page_response(self.context("users", select), ids, emu.users, select, q,
                                      "users", top, count=count)

    def get_user(self, ref, q):
        self.require(ROLES_READ_USERS)
        emu = self.emu
        self.check_unsupported(q, {"$select"})
        select = self.parse_select(q)
        with emu.lock:
            uid = self.resolve_user(ref)
            body = emu.render(emu.users[uid], select)
        ctx = jdump(self.context("users", select, entity=True))
        return self.graph_json(200, b'{"@odata.context":' + ctx + b"," + body[1:])

    def create_user(self):
        self.require(ROLES_WRITE_USERS)
        emu = self.emu
        try:
            data = json.loads(self.body or b"{}")
            assert isinstance(data, dict)
        except (ValueError, AssertionError):
            raise bad_request("Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.", "BadRequest")
        for p in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName",
                  "passwordProfile"):
            if data.get(p) in (None, ""):
                raise bad_request("Invalid value specified for property '%s' of resource "
                                  "'User'." % p)
        for k in data:
            if k not in USER_PROPS and not k.startswith("@"):
                raise bad_request("Invalid property '%s'." % k)
            if k in READ_ONLY:
                raise bad_request("Property '%s' is read-only and cannot be set." % k)
        upn = data["userPrincipalName"]
        dom = upn.rsplit("@", 1)[-1].lower()
        if "@" not in upn or dom not in emu.domains:
            raise bad_request("Property userPrincipalName is invalid.")
        with emu.lock:
            for u in emu.users.values():
                if (u.get("userPrincipalName") or "").lower() == upn.lower():
                    raise bad_request("Another object with the same value for property "
                                      "userPrincipalName already exists.")
            u = {k: v for k, v in data.items() if not k.startswith("@") and
                 k != "passwordProfile"}
            u["id"] = str(uuid.uuid4())
            u.setdefault("userType", "Member")
            u["createdDateTime"] = fmt_time(emu.clock.now())
            u = emu._insert_user(u)
            body = emu.render(u, None)
        ctx = jdump(self.context("users", None, entity=True))
        return self.graph_json(201, b'{"@odata.context":' + ctx + b"," + body[1:],
                               {"Location": "%s/v1.0/users/%s" % (self.base_url(), u["id"])})

    def patch_user(self, ref):
        self.require(ROLES_WRITE_USERS)
        emu = self.emu
        try:
            data = json.loads(self.body or b"{}")
            assert isinstance(data, dict)
        except (ValueError, AssertionError):
            raise bad_request("Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.", "BadRequest")
        for k in data:
            if k in READ_ONLY:
                raise bad_request("Property '%s' is read-only and cannot be set." % k)
            if k not in PATCHABLE:
                raise bad_request("Invalid property '%s'." % k)
        if "accountEnabled" in data and not isinstance(data["accountEnabled"], bool):
            raise bad_request("Invalid value specified for property 'accountEnabled' of "
                              "resource 'User'.")
        if "userType" in data and data["userType"] not in ("Guest", "Member"):
            raise bad_request("Invalid value specified for property 'userType' of resource "
                              "'User'.")
        with emu.lock:
            uid = self.resolve_user(ref)
            data.pop("passwordProfile", None)
            emu.update(uid, data)
        return Response(204, b"", None, self.graph_headers())

    def delete_user(self, ref):
        self.require(ROLES_WRITE_USERS)
        emu = self.emu
        with emu.lock:
            uid = self.resolve_user(ref)
            emu.depart(uid)
        return Response(204, b"", None, self.graph_headers())

    # ---- Graph: deleted items ----------------------------------------------------------

    def list_deleted(self, q):
        self.require(ROLES_READ_USERS)
        emu = self.emu
        self.check_unsupported(q, {"$filter", "$select", "$top", "$skiptoken", "$count"})
        select = self.parse_select(q)
        top = self.parse_top(q)
        flt = self.parse_filter(q)
        with emu.lock:
            ids = emu.sorted_ids("deleted", flt)
            count = len(ids) if (q.get("$count") or "").lower() == "true" else None
            return self.page_response(self.context("directoryObjects/microsoft.graph.user",
                                                   select),
                                      ids, emu.users, select, q, "deleted", top, count=count)

    def get_deleted(self, ref, q):
        self.require(ROLES_READ_USERS)
        emu = self.emu
        self.check_unsupported(q, {"$select"})
        select = self.parse_select(q)
        with emu.lock:
            uid = ref.lower()
            if uid not in emu.deleted:
                raise not_found(ref)
            body = emu.render(emu.users[uid], select)
        head = b'{"@odata.context":' + jdump(self.context("directory/deletedItems", None,
                                                          entity=True)) + \
            b',"@odata.type":"#microsoft.graph.user",'
        return self.graph_json(200, head + body[1:])

    def purge_deleted(self, ref):
        self.require(ROLES_WRITE_USERS)
        emu = self.emu
        with emu.lock:
            uid = ref.lower()
            if uid not in emu.deleted:
                raise not_found(ref)
            emu.purge(uid)
        return Response(204, b"", None, self.graph_headers())

    def restore_deleted(self, ref):
        self.require(ROLES_WRITE_USERS)
        emu = self.emu
        with emu.lock:
            uid = ref.lower()
            if uid not in emu.deleted:
                raise not_found(ref)
            u = emu.restore(uid)
            body = emu.render(u, None)
        head = b'{"@odata.context":' + jdump(self.context("directoryObjects", None,
                                                          entity=True)) + \
            b',"@odata.type":"#microsoft.graph.user",'
        return self.graph_json(200, head + body[1:])

    # ---- Graph: delta -----------------------------------------------------------------

    def gone(self, st=None):
        # concepts/delta-query-overview.md (microsoft-graph-docs-contrib): an expired
        # token gets "410 (gone) and a Location header", or "a 40X-series error with
        # error codes such as syncStateNotFound"; recorded bodies spell it
        # "SyncStateNotFound". Which one this emulator answers is set by
        # POST /ctl/delta/expire {"status": 410|400|404}.
        msg = ("The sync state generation is not found. The delta token is expired "
               "and data must be synchronized again.")
        status = self.emu.delta_gone_status
        if status == 400:
            return GraphError(400, "SyncStateNotFound", msg)
        if status == 404:
            return GraphError(404, "ResourceNotFound", "Resource not found for the segment "
                              "'delta'. " + msg)
        loc = "%s/v1.0/users/delta" % self.base_url()
        if st and st.get("sel"):
            loc += "?$select=" + qv(",".join(st["sel"]))
        return GraphError(410, "syncStateNotFound", msg, {"Location": loc})

    def delta(self, q):
        self.require(ROLES_READ_USERS)
        emu = self.emu
        now = emu.clock.now()
        tok = q.get("$deltatoken") or q.get("$skiptoken")
        if tok is not None and tok.lower() == "latest" and "$skiptoken" not in q:
            # "$deltatoken=latest": no initial round, just a deltaLink for changes
            # from now on (Graph's documented shortcut for directory objects).
            select = self.parse_select(q)
            with emu.lock:
                nxt = {"k": "delta", "S": len(emu.log), "T": None, "a": "", "sel": select,
                       "f": None, "iat": now, "ep": emu.delta_epoch}
                link = "%s/v1.0/users/delta?$deltatoken=%s" % (self.base_url(), emu.enc_token(nxt))
            out = b"".join([b'{"@odata.context":', jdump(self.context("users", select)),
                            b',"@odata.deltaLink":', jdump(link), b',"value":[]}'])
            return self.graph_json(200, out)
        if tok is not None:
            st = emu.dec_token(tok)
            if not st or st.get("k") != "delta":
                raise self.gone()
            if st["ep"] != emu.delta_epoch or now - st["iat"] > DELTA_TOKEN_LIFETIME:
                raise self.gone(st)
        else:
            for k in q:
                if k not in ("$select", "$filter", "$top", "$expand"):
                    raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
            if "$expand" in q:
                raise bad_request("The emulator does not support $expand on delta.",
                                  "Request_UnsupportedQuery")
            select = self.parse_select(q)
            fl = None
            if "$filter" in q:
                try:
                    f = Filter(q["$filter"])
                except FilterError:
                    raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
                if not f.id_only:
                    raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
                fl = q["$filter"]
            with emu.lock:
                st = {"k": "delta", "S": None, "T": len(emu.log), "a": "", "sel": select,
                      "f": fl, "iat": now, "ep": emu.delta_epoch}
        select = st["sel"]
        flt = Filter(st["f"]) if st.get("f") else None
        size = 100
        pref = self.headers.get("Prefer") or ""
        m = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", pref)
        extra_headers = {}
        if m:
            size = max(1, min(999, int(m.group(1))))
            extra_headers["Preference-Applied"] = "odata.maxpagesize=%d" % size
        size = self.page_size(size)
        with emu.lock:
            if st["T"] is None:              # first use of a deltaLink: fix this round's end
                st = dict(st, T=len(emu.log), iat=now)
            T = st["T"]
            if st["S"] is None:
                ids = emu.sorted_ids("live", flt)
            else:
                selset = set(select) if select else None
                touched = set()
                for uid, kind, props in emu.log[st["S"]:T]:
                    if uid in touched:
                        continue
                    if kind != "upd" or selset is None or props is None or (props & selset):
                        touched.add(uid)
                if flt:
                    touched = {u for u in touched if flt.pred({"id": u})}
                ids = sorted(touched)
            start = bisect.bisect_right(ids, st["a"]) if st["a"] else 0
            chunk = [] if self.fault_mode == "emptypage" else ids[start:start + size]
            parts = []
            for uid in chunk:
                u = emu.users.get(uid)
                if u is None:
                    parts.append(jdump({"id": uid, "@removed": {"reason": "deleted"}}))
                elif uid in emu.deleted:
                    parts.append(jdump({"id": uid, "@removed": {"reason": "changed"}}))
                else:
                    parts.append(emu.render(u, select))
            more = self.fault_mode == "emptypage" or start + len(chunk) < len(ids)
            base = "%s/v1.0/users/delta" % self.base_url()
            if more:
                nxt = dict(st, a=chunk[-1] if chunk else st["a"])
                link_key, link = b"@odata.nextLink", base + "?$skiptoken=" + emu.enc_token(nxt)
            else:
                nxt = {"k": "delta", "S": T, "T": None, "a": "", "sel": select, "f": st.get("f"),
                       "iat": now, "ep": emu.delta_epoch}
                link_key, link = b"@odata.deltaLink", base + "?$deltatoken=" + emu.enc_token(nxt)
        out = b"".join([b'{"@odata.context":', jdump(self.context("users", select)),
                        b',"', link_key, b'":', jdump(link), b',"value":[', b",".join(parts),
                        b"]}"])
        return self.graph_json(200, out, extra_headers)

    # ---- Graph: groups -------------------------------------------------------------------

    def groups_route(self, segs, low, q):
        self.require(ROLES_READ_GROUPS)
        emu = self.emu
        gid = low[1]
        n = len(low)
        with emu.lock:
            if gid not in emu.groups:
                raise not_found(segs[1])
            g = emu.groups[gid]
            if n == 2 and self.command == "GET":
                self.check_unsupported(q, {"$select"})
                return self.graph_json(200, {
                    "@odata.context": self.context("groups", None, entity=True),
                    "id": g["id"], "displayName": g["displayName"],
                    "description": g.get("description"), "mailEnabled": False,
                    "securityEnabled": True, "groupTypes": []})
            if n in (3, 4) and low[2] in ("transitivemembers", "members") and \
                    self.command == "GET":
                cast_user = n == 4 and low[3] == "microsoft.graph.user"
                if n == 4 and not cast_user:
                    if low[3].startswith("microsoft.graph."):
                        return self.graph_json(200, {"@odata.context": self.context(
                            "directoryObjects", None), "value": []})
                    raise bad_request("Resource not found for the segment '%s'." % segs[3],
                                      "BadRequest")
                self.check_unsupported(q, {"$select", "$top", "$skiptoken", "$count",
                                           "$filter"})
                select = self.parse_select(q)
                top = self.parse_top(q)
                flt = self.parse_filter(q)
                key = ("g", gid, low[2], flt.text if flt else None)
                hit = emu.list_cache.get(key)
                if hit and hit[0] == emu.version:
                    ids = hit[1]
                else:
                    if low[2] == "transitivemembers":
                        members = emu.transitive_users(gid)
                    else:
                        members = {m for m in g["members"] if m not in emu.groups}
                    ids = sorted(m for m in members if m in emu.users and m not in emu.deleted
                                 and (flt is None or flt.pred(emu.users[m])))
                    emu.list_cache[key] = (emu.version, ids)
                # untyped listings annotate each item with its type (users only here)
                return self.page_response(self.context("directoryObjects/microsoft.graph.user"
                                                       if cast_user else "directoryObjects",
                                                       select), ids, emu.users, select, q,
                                          "g:" + gid + ":" + low[2], top,
                                          annotate=not cast_user)
        raise self.not_allowed() if n <= 4 else bad_request(
            "Resource not found for the segment '%s'." % segs[-1], "BadRequest")

    def read_json_body(self):
        try:
            data = json.loads(self.body or b"{}")
            assert isinstance(data, dict)
            return data
        except (ValueError, AssertionError):
            raise bad_request("Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.", "BadRequest")

    def check_member_groups(self, ref):
        self.require(ROLES_READ_GROUPS)
        emu = self.emu
        data = self.read_json_body()
        ids = data.get("groupIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad_request("Invalid value specified for property 'groupIds'.")
        if len(ids) > 20:
            raise bad_request("The number of groupIds exceeds the maximum of 20.")
        with emu.lock:
            uid = self.resolve_user(ref)
            mine = emu.transitive_groups_of(uid)
            hits = [i for i in ids if i.lower() in mine]
        return self.graph_json(200, {"@odata.context": "%s/v1.0/$metadata#Collection(Edm.String)"
                                     % self.base_url(), "value": hits})

    def get_member_groups(self, ref):
        self.require(ROLES_READ_GROUPS)
        emu = self.emu
        self.read_json_body()
        with emu.lock:
            uid = self.resolve_user(ref)
            mine = sorted(emu.transitive_groups_of(uid))
        return self.graph_json(200, {"@odata.context": "%s/v1.0/$metadata#Collection(Edm.String)"
                                     % self.base_url(), "value": mine})

    def organization(self):
        self.require({"Organization.Read.All", "Organization.ReadWrite.All",
                      "Directory.Read.All", "Directory.ReadWrite.All"})
        emu = self.emu
        doms = [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == 0,
                 "isInitial": d.endswith(".onmicrosoft.com"), "name": d, "type": "Managed"}
                for i, d in enumerate(emu.domains)]
        return self.graph_json(200, {"@odata.context": self.context("organization", None),
                                     "value": [{"id": emu.tenant_id,
                                                "displayName": emu.tenant_name,
                                                "verifiedDomains": doms}]})

    # ---- control API (not Graph) ---------------------------------------------------------

    def control(self, path, query):
        emu = self.emu
        segs = [unquote(s) for s in path.split("/") if s][1:]
        m = self.command
        try:
            data = None
            if self.body:
                try:
                    data = json.loads(self.body)
                except ValueError:
                    raise CtlError(400, "request body is not JSON")
            result = self.control_route(segs, m, data)
            status = 200
            if isinstance(result, tuple):
                status, result = result
            return Response(status, jdump(result), CTL_CT)
        except CtlError as e:
            return Response(e.status, jdump({"error": e.message}), CTL_CT)
        except GraphError as e:
            return Response(e.status, jdump({"error": e.message, "code": e.code}), CTL_CT)
        except (KeyError, TypeError, ValueError) as e:
            return Response(400, jdump({"error": "bad request: %s" % e}), CTL_CT)

    def user_view(self, uid):
        emu = self.emu
        u = dict(emu.users[uid])
        deleted = uid in emu.deleted
        u["state"] = user_state(u, deleted)
        if deleted:
            u["originalUserPrincipalName"] = emu.orig_upn.get(uid)
            u["purgeDateTime"] = fmt_time(emu.deleted[uid] + RETENTION)
        return u

    def control_route(self, segs, m, data):
        emu = self.emu
        n = len(segs)
        head = segs[0] if segs else ""
        if n == 0 or head == "info":
            return {"tenant_id": emu.tenant_id, "tenant_name": emu.tenant_name,
                    "domains": emu.domains, "base_url": self.base_url(),
                    "authority": self.base_url(), "graph_url": self.base_url(),
                    "token_url": "%s/%s/oauth2/v2.0/token" % (self.base_url(), emu.tenant_id),
                    "now": fmt_time(emu.clock.now()),
                    "clients": [{"client_id": c.client_id, "has_secret": c.secret is not None,
                                 "public_client": c.public,
                                 "certificates": [x["s256"] for x in c.certs],
                                 "roles": sorted(c.roles)} for c in emu.clients.values()],
                    "users": len(emu.users), "deleted": len(emu.deleted),
                    "groups": len(emu.groups)}
        if head == "clock":
            if m == "POST":
                data = data or {}
                if data.get("now"):
                    emu.clock.set(parse_time(data["now"]), data.get("freeze"))
                if data.get("advance_seconds"):
                    emu.clock.advance(float(data["advance_seconds"]))
                if "freeze" in data and not data.get("now"):
                    emu.clock.set(emu.clock.now(), data["freeze"])
                emu.auto_purge()
            return {"now": fmt_time(emu.clock.now()), "epoch": emu.clock.now(),
                    "frozen": emu.clock.frozen}
        if head == "faults":
            if m == "DELETE":
                with emu.lock:
                    emu.faults = []
                return {"faults": []}
            if m == "POST":
                rules = data if isinstance(data, list) else [data]
                with emu.lock:
                    for r in rules:
                        if not isinstance(r, dict):
                            raise CtlError(400, "a fault rule is a JSON object")
                        if r.get("action") not in (None, "drop", "truncate", "badjson",
                                                   "expire_token", "emptypage", "rewrite"):
                            raise CtlError(400, "unknown action %r" % r.get("action"))
                        r = dict(r, _seen=0, _fired=0)
                        emu.faults.append(r)
                    return {"faults": emu.faults}
            with emu.lock:
                return {"faults": emu.faults}
        if head == "stats":
            if n == 2 and segs[1] == "reset" and m == "POST":
                emu.reset_stats()
            with emu.stats_lock:
                return json.loads(json.dumps(emu.stats))
        if head == "requests":
            with emu.stats_lock:
                if m == "DELETE":
                    emu.recent.clear()
                return {"requests": list(emu.recent)}
        if head == "delta" and n == 2 and segs[1] == "expire" and m == "POST":
            status = (data or {}).get("status", 410) if isinstance(data, dict) else 410
            if status not in (400, 404, 410):
                raise CtlError(400, "status must be 400, 404 or 410")
            with emu.lock:
                emu.delta_epoch += 1
                emu.delta_gone_status = status
            return {"delta_epoch": emu.delta_epoch}
        if head == "tokens" and n == 2 and segs[1] == "expire" and m == "POST":
            with emu.lock:
                for t in emu.tokens.values():
                    t["expired"] = True
                return {"expired": len(emu.tokens)}
        if head == "reset" and m == "POST":
            emu.load()
            emu.reset_stats()
            return {"reset": True, "now": fmt_time(emu.clock.now())}
        if head == "clients" and m == "POST":
            with emu.lock:
                c = emu.add_client(data)
            return 201, {"client_id": c.client_id}
        if head == "devicecodes":
            return self.control_devicecodes(segs, m, data)
        if head == "keys":
            if n == 2 and segs[1] == "rotate" and m == "POST":
                kid = emu.rotate_keys(keep_old=not (data or {}).get("drop_old"))
                return {"kid": kid}
            emu.signing_key()
            with emu.lock:
                return {"kids": [k for k, _, _ in emu.signing_keys]}
        if head == "groups":
            return self.control_groups(segs, m, data)
        if head == "users":
            return self.control_users(segs, m, data)
        raise CtlError(404, "unknown control endpoint /_emulator/%s" % "/".join(segs))

    def control_groups(self, segs, m, data):
        emu = self.emu
        n = len(segs)
        with emu.lock:
            if n == 1:
                if m == "POST":
                    gid = (data.get("id") or str(uuid.uuid4())).lower()
                    emu.groups[gid] = {"id": gid, "displayName": data.get("displayName"),
                                       "members": [x.lower() for x in data.get("members", [])]}
                    emu._bump()
                    return 201, emu.groups[gid]
                return {"groups": list(emu.groups.values())}
            gid = segs[1].lower()
            if gid not in emu.groups:
                raise CtlError(404, "no group %s" % segs[1])
            g = emu.groups[gid]
            if n == 3 and segs[2] == "members" and m == "POST":
                for ref in data.get("add", []):
                    mid = ref.lower() if ref.lower() in emu.groups else emu.find_user(ref)
                    if mid not in g["members"]:
                        g["members"].append(mid)
                for ref in data.get("remove", []):
                    mid = ref.lower() if ref.lower() in emu.groups else emu.find_user(ref)
                    g["members"] = [x for x in g["members"] if x != mid]
                emu._bump()
            if m == "DELETE" and n == 2:
                del emu.groups[gid]
                emu._bump()
                return {"deleted": gid}
            return dict(g, transitiveUsers=sorted(emu.transitive_users(gid)))

    def control_users(self, segs, m, data):
        emu = self.emu
        n = len(segs)
        with emu.lock:
            emu.auto_purge()
            if n == 2 and segs[1] == "_bulk" and m == "POST":
                if not isinstance(data, dict) or not isinstance(data.get("ids"), list):
                    raise CtlError(400, 'POST /_emulator/users/_bulk takes {"action", "ids"}')
                return {"action": data.get("action"),
                        "done": emu.bulk(data.get("action"), data["ids"])}
            if n == 1:
                if m == "POST":
                    if not isinstance(data, dict):
                        raise CtlError(400, "POST /_emulator/users takes a user object")
                    u = dict(data)
                    if u.get("id") and u["id"].lower() in emu.users:
                        raise CtlError(409, "user %s exists" % u["id"])
                    u.setdefault("userType", "Guest")
                    if u["userType"] == "Guest":
                        u.setdefault("creationType", "Invitation")
                        u.setdefault("externalUserState", "PendingAcceptance")
                        u.setdefault("externalUserStateChangeDateTime",
                                     fmt_time(emu.clock.now()))
                    u.setdefault("otherMails", [u["mail"]] if u.get("mail") else [])
                    u = emu._insert_user(u)
                    return 201, self.user_view(u["id"])
                return {"users": [self.user_view(uid) for uid in sorted(emu.users)]}
            action = segs[2] if n == 3 else None
            uid = emu.find_user(segs[1], prefer_deleted=action in ("restore", "purge"))
            if n == 2:
                if m == "GET":
                    return self.user_view(uid)
                if m == "PATCH":
                    if not isinstance(data, dict):
                        raise CtlError(400, "PATCH takes a JSON object")
                    props = dict(data)
                    if "deletedDateTime" in props:
                        when = props.pop("deletedDateTime")
                        if when is None and uid in emu.deleted:
                            emu.restore(uid)
                        elif when is not None:
                            ts = parse_time(when)
                            if uid in emu.deleted:
                                emu.deleted[uid] = ts
                                emu.users[uid]["deletedDateTime"] = fmt_time(ts)
                                emu._touch(uid)
                                emu._bump()
                            else:
                                emu.depart(uid, ts)
                    if props.get("id") not in (None, uid):
                        raise CtlError(400, "cannot change id")
                    props.pop("id", None)
                    if uid in emu.deleted and "userPrincipalName" in props:
                        emu.orig_upn[uid] = props.pop("userPrincipalName")
                    if props:
                        emu.update(uid, props)
                    emu.auto_purge()
                    if uid not in emu.users:
                        return {"id": uid, "state": "purged"}
                    return self.user_view(uid)
                if m == "DELETE":
                    emu.purge(uid)
                    return {"id": uid, "state": "purged"}
                raise CtlError(405, "method not allowed")
            if n == 3 and m == "POST":
                d = data or {}
                if action == "disable":
                    emu.update(uid, {"accountEnabled": False})
                elif action == "enable":
                    emu.update(uid, {"accountEnabled": True})
                elif action == "depart":
                    if uid in emu.deleted:
                        raise CtlError(409, "user %s is already departed" % uid)
                    emu.depart(uid, parse_time(d["at"]) if d.get("at") else None)
                elif action == "restore":
                    if uid not in emu.deleted:
                        raise CtlError(409, "user %s is not deleted" % uid)
                    emu.restore(uid)
                elif action == "purge":
                    emu.purge(uid)
                    return {"id": uid, "state": "purged"}
                elif action == "accept":
                    emu.update(uid, {"externalUserState": "Accepted",
                                     "externalUserStateChangeDateTime":
                                         fmt_time(emu.clock.now())})
                elif action == "pending":
                    emu.update(uid, {"externalUserState": "PendingAcceptance",
                                     "externalUserStateChangeDateTime":
                                         fmt_time(emu.clock.now())})
                else:
                    raise CtlError(404, "unknown user action %r" % action)
                return self.user_view(uid)
        raise CtlError(404, "unknown control endpoint")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, emu, ctx):
        self.emu = emu
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS handshake happens lazily in the worker thread (first read)
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, socket.timeout, OSError)):
            self.emu.log_line("TLS/connection error from %s: %s" % (client_address[0], exc))
            return
        self.emu.log_line("ERROR " + traceback.format_exc().replace("\n", " | "))


class SafeHandler(Handler):
    def handle(self):
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.emu.log_line("TLS handshake failed: %s" % e)
            self.close_connection = True
            return
        super().handle()

    def handle_request(self):
        try:
            super().handle_request()
        except Exception:
            self.emu.log_line("ERROR " + traceback.format_exc().replace("\n", " | "))
            try:
                body = jdump({"error": {"code": "InternalServerError",
                                        "message": "emulator bug (see its log)",
                                        "innerError": {"date": fmt_inner_date(time.time()),
                                                       "request-id": self.req_id,
                                                       "client-request-id": self.req_id}}})
                self.send_raw(Response(500, body, GRAPH_CT))
            except Exception:
                self.close_connection = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenant", required=True, help="fixture JSON")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--generate", type=int, default=0, help="add N synthetic guests")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--page-size", type=int, default=None,
                    help="cap every page at N items (fewer than $top)")
    ap.add_argument("--client-cert", help="certificate (PEM) registered for every client")
    args = ap.parse_args(argv)

    emu = Emulator(args.tenant, args.generate, args.seed, args.page_size, args.client_cert)
    if args.log:
        emu.log_file = open(args.log, "a", encoding="utf-8")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    httpd = Server(("127.0.0.1", args.port), SafeHandler, emu, ctx)
    emu.port = httpd.server_address[1]

    stopping = threading.Event()

    def stop(signum, frame):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        d = os.path.dirname(os.path.abspath(args.port_file))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".port-")
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % emu.port)
        os.replace(tmp, args.port_file)
    emu.log_line("listening on https://127.0.0.1:%d tenant %s (%d users, %d deleted, %d groups)"
                 % (emu.port, emu.tenant_id, len(emu.users), len(emu.deleted), len(emu.groups)))
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        emu.log_line("stopped")
        shutil.rmtree(emu.tmpdir, ignore_errors=True)
        if args.port_file:
            try:
                os.unlink(args.port_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
