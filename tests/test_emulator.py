#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-test of tests/graph_emulator.py, tests/graphctl.py and tests/mkcerts.sh.

    python3 tests/test_emulator.py [-v]

Starts the emulator on a temporary copy of tests/fixtures/contoso.json with
certificates from mkcerts.sh and checks it with urllib against the test CA.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "contoso.json")
EMULATOR = os.path.join(HERE, "graph_emulator.py")
GRAPHCTL = os.path.join(HERE, "graphctl.py")
MKCERTS = os.path.join(HERE, "mkcerts.sh")

TENANT = "54176139-ec83-456b-a6c1-88cd89519722"
CLIENT = "1dba7d55-1a64-46e0-a360-e072897b77de"
SECRET = "Xq88Q~emuContoso.Demo-Secret_0aB1cD2eF3gH4"
CLIENT_NOGROUPS = "b6ec0ad1-174b-4e78-9716-ebc7d29f7a62"
SECRET_NOGROUPS = "Zr77Q~emuContoso.NoGroups-Secret_9zY8xW7vU6"
ADMIN = "bbad181d-5c50-4f91-a066-b669f4bab45f"
ADMIN_SECRET = "Ad55Q~emuContoso.Admin-Secret_5tS4rQ3pO2nM1"
SIGNIN = "7c3f5a2e-91d4-4b8a-8e6f-2d1c0b9a8f47"   # public client flows allowed
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

ALICE = "d5f0946d-a1e9-4d59-ba86-895b1db28f5a"
BOB = "631228bb-bc48-4cc9-a875-8906530d31d7"
CAROL = "b3ac03f9-2508-477c-831c-425b57fc4253"
DAVE = "bc20d6a6-e36d-4a34-aa17-e5fc19fe074c"
ERIN = "120c404d-9c80-4363-be33-668dd1478ef0"
FRANK = "a6f8ab6c-3e1d-45c7-9b6d-5145921ea987"
GRACE = "376f1568-c762-484c-8a21-014ec1742f1c"
MALLORY = "8dbc8664-6843-4a94-8e23-8c9000ad5100"
MEGAN = "3ae4bdd9-6c38-4b88-b865-0f7e45692a10"
NESTOR = "287f811a-7bc9-4c67-b309-d83388ae1251"
OLGA = "cbe97537-0dcb-4677-b0c7-a115c069385d"
G_LINUX = "56ce337a-8e3f-4aa6-abc8-86fc3b8c4a5b"
G_PARTNER = "6e1fe979-fe80-43ca-a432-213f17e7d3dd"
G_CONTRACT = "8c7df79d-937a-4944-8eec-0e46d77e848d"

LIVE_GUESTS = {ALICE, BOB, CAROL, DAVE, ERIN, GRACE, MALLORY}
MEMBERS = {MEGAN, NESTOR}
DEFAULT_KEYS = {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                "userPrincipalName", "id"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def start_emulator(tmp, fixture, extra=(), name="emu"):
    port_file = os.path.join(tmp, name + ".port")
    log = os.path.join(tmp, name + ".log")
    proc = subprocess.Popen([sys.executable, EMULATOR, "--tenant", fixture,
                             "--cert", os.path.join(tmp, "server.pem"),
                             "--key", os.path.join(tmp, "server.key"),
                             "--port", "0", "--port-file", port_file, "--log", log] + list(extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not os.path.exists(port_file):
        if proc.poll() is not None:
            raise RuntimeError("emulator exited: %s" % proc.stderr.read().decode())
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError("emulator did not start")
        time.sleep(0.02)
    with open(port_file) as f:
        port = int(f.read())
    return proc, port, port_file, log


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-test-")
        subprocess.run(["sh", MKCERTS, cls.tmp], check=True)
        with open(FIXTURE, encoding="utf-8") as f:
            fx = json.load(f)
        fx["clients"][0]["certificate_pem_file"] = os.path.join(cls.tmp, "client.pem")
        cls.fixture = os.path.join(cls.tmp, "fixture.json")
        with open(cls.fixture, "w", encoding="utf-8") as f:
            json.dump(fx, f)
        cls.proc, cls.port, cls.port_file, cls.log = start_emulator(cls.tmp, cls.fixture)
        cls.base = "https://127.0.0.1:%d" % cls.port
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.tmp, "ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        try:
            rc = cls.proc.wait(60)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            rc = "timeout"
        cls.proc.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "emulator exit status on SIGTERM: %r" % rc

    def setUp(self):
        self.ctl("POST", "/reset", {})
        self._token = None
        self._admin = None

    # ---- helpers ----
    def http(self, method, url, body=None, headers=None, raw=False):
        if not url.startswith("https://"):
            url = self.base + url
        data = body
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                status, rh, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        if raw:
            return status, rh, payload
        return status, rh, (json.loads(payload) if payload else None)

    def ctl(self, method, path, body=None):
        st, _, js = self.http(method, "/_emulator" + path, body)
        self.assertLess(st, 300, js)
        return js

    def token_request(self, form, tenant=TENANT):
        return self.http("POST", "/%s/oauth2/v2.0/token" % tenant,
                         urllib.parse.urlencode(form),
                         {"Content-Type": "application/x-www-form-urlencoded"})

    def token(self, client=CLIENT, secret=SECRET):
        st, _, js = self.token_request({"client_id": client, "client_secret": secret,
                                        "scope": self.base + "/.default",
                                        "grant_type": "client_credentials"})
        self.assertEqual(st, 200, js)
        return js["access_token"]

    def g(self, method, path, body=None, token=None, headers=None):
        if token is None:
            if self._token is None:
                self._token = self.token()
            token = self._token
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        return self.http(method, path, body, h)

    def admin(self, method, path, body=None):
        """Graph mutations need User.ReadWrite.All: the admin client has it."""
        if self._admin is None:
            self._admin = self.token(ADMIN, ADMIN_SECRET)
        return self.g(method, path, body, token=self._admin)

    def collect(self, path, headers=None, expect_delta=False):
        """Follow @odata.nextLink verbatim; returns (items, pages, deltaLink)."""
        items, pages, url = [], 0, path
        while True:
            st, rh, js = self.g("GET", url, headers=headers)
            self.assertEqual(st, 200, js)
            self.assertTrue(rh["Content-Type"].startswith(
                "application/json;odata.metadata=minimal;odata.streaming=true"))
            pages += 1
            items += js["value"]
            if "@odata.nextLink" in js:
                self.assertNotIn("@odata.deltaLink", js)
                url = js["@odata.nextLink"]
                continue
            if expect_delta:
                self.assertIn("@odata.deltaLink", js)
            return items, pages, js.get("@odata.deltaLink")

    def assertAadError(self, resp, status, error, code):
        st, rh, js = resp
        self.assertEqual(st, status, js)
        self.assertEqual(js["error"], error)
        self.assertEqual(js["error_codes"], [code])
        self.assertTrue(js["error_description"].startswith("AADSTS%d: " % code), js)
        for k in ("timestamp", "trace_id", "correlation_id", "error_uri"):
            self.assertIn(k, js)

    def assertGraphError(self, resp, status, code):
        st, rh, js = resp
        self.assertEqual(st, status, js)
        self.assertEqual(js["error"]["code"], code, js)
        inner = js["error"]["innerError"]
        self.assertEqual(set(inner) >= {"date", "request-id", "client-request-id"}, True)
        self.assertEqual(rh["request-id"], inner["request-id"])
        self.assertIn("client-request-id", rh)
        return js

    def make_assertion(self, alg="PS256", aud=None, iss=CLIENT, exp_delta=300, x5t=None,
                       corrupt=False, thumb="x5t#S256", saltlen=32):
        with open(os.path.join(self.tmp, "client.pem")) as f:
            pem = f.read()
        der = base64.b64decode("".join(pem.split("-----")[2].split()))
        digest = hashlib.sha256(der) if thumb == "x5t#S256" else hashlib.sha1(der)
        header = {"alg": alg, "typ": "JWT", thumb: x5t or b64url(digest.digest())}
        now = int(time.time())
        claims = {"aud": aud or "%s/%s/oauth2/v2.0/token" % (self.base, TENANT), "iss": iss,
                  "sub": iss, "jti": str(uuid.uuid4()), "nbf": now, "iat": now,
                  "exp": now + exp_delta}
        signing_input = ("%s.%s" % (b64url(json.dumps(header).encode()),
                                    b64url(json.dumps(claims).encode()))).encode()
        cmd = ["openssl", "dgst", "-sha256", "-sign", os.path.join(self.tmp, "client.key")]
        if alg == "PS256":
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:%d" % saltlen]
        sig = subprocess.run(cmd, input=signing_input, capture_output=True, check=True).stdout
        if corrupt:
            sig = bytes([sig[0] ^ 0xFF]) + sig[1:]
        return signing_input.decode() + "." + b64url(sig)

    def assertion_request(self, assertion, tenant=TENANT):
        return self.token_request({
            "client_id": CLIENT, "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}, tenant)


class TokenTests(Base):
    def test_secret_success(self):
        for tenant in (TENANT, "contoso.onmicrosoft.com", "CONTOSO.COM"):
            st, rh, js = self.token_request({"client_id": CLIENT, "client_secret": SECRET,
                                             "scope": self.base + "/.default",
                                             "grant_type": "client_credentials"}, tenant)
            self.assertEqual(st, 200, js)
            self.assertEqual(set(js), {"token_type", "expires_in", "ext_expires_in",
                                       "access_token"})
            self.assertEqual(js["token_type"], "Bearer")
            self.assertEqual(js["expires_in"], 3599)
            self.assertTrue(rh["Content-Type"].startswith("application/json"))

    def test_errors(self):
        ok = {"client_id": CLIENT, "client_secret": SECRET, "scope": self.base + "/.default",
              "grant_type": "client_credentials"}
        self.assertAadError(self.token_request(ok, "fabrikam.com"), 400, "invalid_request",
                            90002)
        self.assertAadError(self.token_request(dict(ok, grant_type="password")), 400,
                            "unsupported_grant_type", 70003)
        self.assertAadError(self.token_request(dict(ok, client_id=str(uuid.uuid4()))), 400,
                            "unauthorized_client", 700016)
        self.assertAadError(self.token_request(dict(ok, client_secret="wrong")), 401,
                            "invalid_client", 7000215)
        self.assertAadError(self.token_request(dict(ok, scope="User.Read.All")), 400,
                            "invalid_scope", 70011)
        no_cred = dict(ok)
        del no_cred["client_secret"]
        self.assertAadError(self.token_request(no_cred), 401, "invalid_client", 7000218)

    def test_jwt_assertion(self):
        # entra-docs identity-platform/certificate-credentials.md: "alg: Should be PS256",
        # "x5t#S256: Base64url-encoded SHA-256 thumbprint", "Use PSS padding"; the
        # older form (MSAL's deprecated fromCertificate) is RS256 with a SHA-1 "x5t".
        for alg, thumb in (("PS256", "x5t#S256"), ("RS256", "x5t")):
            st, _, js = self.assertion_request(self.make_assertion(alg, thumb=thumb))
            self.assertEqual(st, 200, js)
            self.assertEqual(js["token_type"], "Bearer")
            st, _, js = self.g("GET", "/v1.0/users/" + ALICE, token=js["access_token"])
            self.assertEqual(st, 200, js)
        # tenant given as a domain: aud must be the URL as used
        aud = "%s/contoso.com/oauth2/v2.0/token" % self.base
        st, _, js = self.assertion_request(self.make_assertion(aud=aud), "contoso.com")
        self.assertEqual(st, 200, js)

    def test_jwt_assertion_refused(self):
        self.assertAadError(self.assertion_request(self.make_assertion(corrupt=True)), 401,
                            "invalid_client", 700027)
        # No Microsoft source pairs RS256 with x5t#S256: refused, as an unknown pairing.
        self.assertAadError(self.assertion_request(self.make_assertion("RS256")), 401,
                            "invalid_client", 700027)
        # PS256 is RSA-PSS with a salt as long as the hash (RFC 7518 section 3.5).
        self.assertAadError(self.assertion_request(self.make_assertion(saltlen=20)), 401,
                            "invalid_client", 700027)
        self.assertAadError(self.assertion_request(self.make_assertion("RS256", corrupt=True,
                                                                       thumb="x5t")), 401,
                            "invalid_client", 700027)
        self.assertAadError(self.assertion_request(self.make_assertion("PS256", corrupt=True)),
                            401, "invalid_client", 700027)
        self.assertAadError(self.assertion_request(self.make_assertion(
            aud="https://login.microsoftonline.com/%s/oauth2/v2.0/token" % TENANT)), 401,
            "invalid_client", 700027)
        self.assertAadError(self.assertion_request(self.make_assertion(x5t=b64url(b"x" * 32))),
                            401, "invalid_client", 700027)
        self.assertAadError(self.assertion_request(self.make_assertion(exp_delta=-3600)), 401,
                            "invalid_client", 700024)


class GraphTests(Base):
    def test_auth_required(self):
        js = self.assertGraphError(self.http("GET", "/v1.0/users"), 401,
                                   "InvalidAuthenticationToken")
        self.assertEqual(js["error"]["message"], "Access token is empty.")
        self.assertGraphError(self.g("GET", "/v1.0/users", token="eyJbogus"), 401,
                              "InvalidAuthenticationToken")
        st, rh, _ = self.g("GET", "/v1.0/users", token="nope")
        self.assertIn("WWW-Authenticate", rh)

    def test_users_paging_guests(self):
        items, pages, _ = self.collect(
            "/v1.0/users?$filter=" + urllib.parse.quote("userType eq 'Guest'") +
            "&$select=id,mail,userType,accountEnabled&$top=2")
        ids = [u["id"] for u in items]
        self.assertEqual(len(ids), len(set(ids)), "a guest was returned twice")
        self.assertEqual(set(ids), LIVE_GUESTS)
        self.assertTrue(all(u["userType"] == "Guest" for u in items))
        self.assertEqual(pages, 4)
        for u in items:
            self.assertEqual(set(u), {"id", "mail", "userType", "accountEnabled"})

    def test_users_members_and_all(self):
        items, _, _ = self.collect("/v1.0/users?$filter=userType+eq+'Member'&$select=id")
        self.assertEqual({u["id"] for u in items}, MEMBERS)
        items, _, _ = self.collect("/v1.0/users?$top=999")
        self.assertEqual({u["id"] for u in items}, LIVE_GUESTS | MEMBERS)

    def test_select(self):
        st, rh, js = self.g("GET", "/v1.0/users")
        self.assertEqual(st, 200)
        self.assertIn("@odata.context", js)
        for u in js["value"]:
            self.assertEqual(set(u), DEFAULT_KEYS)
        st, _, js = self.g("GET", "/v1.0/users?$select=displayName")
        self.assertEqual(set(js["value"][0]), {"displayName", "id"})
        self.assertGraphError(self.g("GET", "/v1.0/users?$select=nosuchprop"), 400,
                              "Request_BadRequest")
        self.assertGraphError(self.g("GET", "/v1.0/users?$top=1000"), 400,
                              "Request_UnsupportedQuery")
        self.assertGraphError(self.g("GET", "/v1.0/users?$top=0"), 400,
                              "Request_UnsupportedQuery")
        self.assertGraphError(self.g("GET", "/v1.0/users?$filter=" +
                                     urllib.parse.quote("userType eq Guest'")), 400,
                              "BadRequest")
        self.assertGraphError(self.g("GET", "/v1.0/users?$filter=" +
                                     urllib.parse.quote("userType ne 'Guest'")), 400,
                              "Request_UnsupportedQuery")

    def test_get_user(self):
        st, _, js = self.g("GET", "/v1.0/users/%s?$select=id,accountEnabled,externalUserState"
                           % ERIN)
        self.assertEqual(st, 200, js)
        self.assertEqual(js["externalUserState"], "PendingAcceptance")
        self.assertTrue(js["@odata.context"].endswith("/$entity"))
        st, _, js = self.g("GET", "/v1.0/users/" +
                           urllib.parse.quote("carol_northwind.com#EXT#@contoso.onmicrosoft.com",
                                              safe="@"))
        self.assertEqual((st, js["id"]), (200, CAROL))
        self.assertGraphError(self.g("GET", "/v1.0/users/" + FRANK), 404,
                              "Request_ResourceNotFound")
        self.assertGraphError(self.g("GET", "/v1.0/users/" + str(uuid.uuid4())), 404,
                              "Request_ResourceNotFound")

    def test_deleted_items(self):
        items, _, _ = self.collect("/v1.0/directory/deletedItems/microsoft.graph.user"
                                   "?$select=id,userPrincipalName,userType,deletedDateTime&$top=1")
        by = {u["id"]: u for u in items}
        self.assertEqual(set(by), {FRANK, OLGA})
        self.assertEqual(by[FRANK]["deletedDateTime"], "2026-11-16T12:00:00Z")
        self.assertEqual(by[FRANK]["userPrincipalName"],
                         FRANK.replace("-", "") + "frank_litware.com#EXT#@contoso.onmicrosoft.com")
        self.assertGraphError(self.g("GET", "/v1.0/directory/deletedItems"), 400,
                              "Request_UnsupportedQuery")
        st, _, js = self.g("GET", "/v1.0/directory/deletedItems/" + FRANK)
        self.assertEqual((st, js["@odata.type"]), (200, "#microsoft.graph.user"))
        self.assertGraphError(self.g("GET", "/v1.0/directory/deletedItems/" + ALICE), 404,
                              "Request_ResourceNotFound")

    def test_graph_mutations(self):
        # the aadguest app client only reads: Graph refuses it a write
        self.assertGraphError(self.g("PATCH", "/v1.0/users/" + BOB, {"accountEnabled": False}),
                              403, "Authorization_RequestDenied")
        st, _, _ = self.admin("PATCH", "/v1.0/users/" + BOB, {"accountEnabled": False})
        self.assertEqual(st, 204)
        _, _, js = self.g("GET", "/v1.0/users/%s?$select=accountEnabled" % BOB)
        self.assertIs(js["accountEnabled"], False)
        self.assertGraphError(self.admin("PATCH", "/v1.0/users/" + BOB, {"bogus": 1}), 400,
                              "Request_BadRequest")
        st, _, _ = self.admin("DELETE", "/v1.0/users/" + ALICE)
        self.assertEqual(st, 204)
        self.assertGraphError(self.g("GET", "/v1.0/users/" + ALICE), 404,
                              "Request_ResourceNotFound")
        _, _, js = self.g("GET", "/v1.0/directory/deletedItems/%s?$select=id,userPrincipalName,"
                          "deletedDateTime" % ALICE)
        self.assertTrue(js["userPrincipalName"].startswith(ALICE.replace("-", "")))
        self.assertTrue(js["deletedDateTime"].startswith("2026-11-26T12:"))
        st, _, js = self.admin("POST", "/v1.0/directory/deletedItems/%s/restore" % ALICE, {})
        self.assertEqual(st, 200, js)
        self.assertEqual(js["userPrincipalName"],
                         "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com")
        st, _, js = self.admin("POST", "/v1.0/users", {
            "accountEnabled": True, "displayName": "Test Member", "mailNickname": "tm",
            "userPrincipalName": "tm@contoso.com",
            "passwordProfile": {"password": "x-Y-z-1234567"}})
        self.assertEqual(st, 201, js)
        self.assertIn("id", js)
        st, _, _ = self.admin("DELETE", "/v1.0/users/" + OLGA)      # already deleted
        self.assertEqual(st, 404)
        st, _, _ = self.admin("DELETE", "/v1.0/directory/deletedItems/" + OLGA)
        self.assertEqual(st, 204)
        self.assertGraphError(self.g("GET", "/v1.0/directory/deletedItems/" + OLGA), 404,
                              "Request_ResourceNotFound")

    def test_delta(self):
        sel = "$select=id,mail,userType,accountEnabled,userPrincipalName"
        items, pages, link = self.collect("/v1.0/users/delta?" + sel,
                                          headers={"Prefer": "odata.maxpagesize=3"},
                                          expect_delta=True)
        self.assertEqual({u["id"] for u in items}, LIVE_GUESTS | MEMBERS)
        self.assertEqual(pages, 3)
        self.assertNotIn("$select", link)
        # no change: an empty round
        items, _, link2 = self.collect(link, expect_delta=True)
        self.assertEqual(items, [])
        # changes through Graph and through the control API
        self.assertEqual(self.admin("DELETE", "/v1.0/users/" + ALICE)[0], 204)
        self.assertEqual(self.admin("PATCH", "/v1.0/users/" + BOB, {"accountEnabled": False})[0],
                         204)
        self.assertEqual(self.admin("POST", "/v1.0/directory/deletedItems/%s/restore" % FRANK,
                                {})[0], 200)
        self.assertEqual(self.admin("DELETE", "/v1.0/directory/deletedItems/" + OLGA)[0], 204)
        self.ctl("PATCH", "/users/" + CAROL, {"jobTitle": "not selected"})
        self.ctl("POST", "/users/dave@adatum.com/enable", {})
        items, _, link3 = self.collect(link2, expect_delta=True)
        by = {u["id"]: u for u in items}
        self.assertEqual(set(by), {ALICE, BOB, FRANK, OLGA, DAVE})
        self.assertEqual(by[ALICE], {"id": ALICE, "@removed": {"reason": "changed"}})
        self.assertEqual(by[OLGA], {"id": OLGA, "@removed": {"reason": "deleted"}})
        self.assertIs(by[BOB]["accountEnabled"], False)
        self.assertNotIn("@removed", by[FRANK])
        self.assertEqual(by[FRANK]["userPrincipalName"],
                         "frank_litware.com#EXT#@contoso.onmicrosoft.com")
        self.assertIs(by[DAVE]["accountEnabled"], True)
        # the old deltaLink still works (replay), the new one sees the purge of alice
        self.ctl("POST", "/users/%s/purge" % ALICE, {})
        items, _, _ = self.collect(link3, expect_delta=True)
        self.assertEqual(items, [{"id": ALICE, "@removed": {"reason": "deleted"}}])
        items, _, _ = self.collect(link2, expect_delta=True)
        self.assertIn({"id": ALICE, "@removed": {"reason": "deleted"}}, items)
        # filter: only id eq is supported
        st, _, js = self.g("GET", "/v1.0/users/delta?$filter=" +
                           urllib.parse.quote("userType eq 'Guest'"))
        self.assertGraphError((st, _, js), 400, "Request_UnsupportedQuery")
        items, _, _ = self.collect("/v1.0/users/delta?$select=id&$filter=" +
                                   urllib.parse.quote("id eq '%s'" % BOB), expect_delta=True)
        self.assertEqual(items, [{"id": BOB}])

    def test_delta_gone(self):
        _, _, link = self.collect("/v1.0/users/delta?$select=id", expect_delta=True)
        self.ctl("POST", "/delta/expire", {})
        js = self.assertGraphError(self.g("GET", link), 410, "syncStateNotFound")
        self.assertIn("delta token is expired", js["error"]["message"])
        _, _, link = self.collect("/v1.0/users/delta?$select=id", expect_delta=True)
        self.assertEqual(self.g("GET", link)[0], 200)
        self.ctl("POST", "/clock", {"advance_seconds": 8 * 86400})
        self._token = None                 # the access token expired with the clock too
        self.assertGraphError(self.g("GET", link), 410, "syncStateNotFound")
        self.assertGraphError(self.g("GET", "/v1.0/users/delta?$deltatoken=garbage"), 410,
                              "syncStateNotFound")

    def test_delta_gone_other_statuses(self):
        # concepts/delta-query-overview.md: "410 (gone) and a Location header", or "a 40X-series
        # error with error codes such as syncStateNotFound"; recorded bodies spell it
        # "SyncStateNotFound". The emulator can answer each way.
        for status, code in ((400, "SyncStateNotFound"), (404, "ResourceNotFound"),
                             (410, "syncStateNotFound")):
            _, _, link = self.collect("/v1.0/users/delta?$select=id", expect_delta=True)
            self.ctl("POST", "/delta/expire", {"status": status})
            st, rh, js = self.g("GET", link)
            self.assertGraphError((st, rh, js), status, code)
            self.assertEqual("Location" in rh, status == 410)

    def test_token_expiry_and_auto_purge(self):
        tok = self.token()
        self.ctl("POST", "/clock", {"advance_seconds": 3600})
        js = self.assertGraphError(self.g("GET", "/v1.0/users", token=tok), 401,
                                   "InvalidAuthenticationToken")
        self.assertIn("expired", js["error"]["message"])
        # frank was deleted 10 days before "now": 20 more days and he is purged
        self.ctl("POST", "/clock", {"advance_seconds": 19 * 86400})
        self._token = None
        self.assertEqual(self.g("GET", "/v1.0/directory/deletedItems/" + FRANK)[0], 200)
        _, _, link = self.collect("/v1.0/users/delta?$select=id", expect_delta=True)
        self.ctl("POST", "/clock", {"advance_seconds": 86400})
        self._token = None
        self.assertEqual(self.g("GET", "/v1.0/directory/deletedItems/" + FRANK)[0], 404)
        items, _, _ = self.collect(link, expect_delta=True)
        self.assertIn({"id": FRANK, "@removed": {"reason": "deleted"}}, items)
        st = self.ctl("GET", "/users/" + OLGA)
        self.assertEqual(st["state"], "departed")

    def test_groups(self):
        items, pages, _ = self.collect("/v1.0/groups/%s/transitiveMembers/microsoft.graph.user"
                                       "?$select=id&$top=2" % G_LINUX)
        self.assertEqual({u["id"] for u in items}, {ALICE, BOB, GRACE, MEGAN})
        self.assertEqual(pages, 2)
        self.ctl("POST", "/users/%s/restore" % FRANK, {})
        items, _, _ = self.collect("/v1.0/groups/%s/transitiveMembers/microsoft.graph.user"
                                   "?$select=id" % G_LINUX)
        self.assertIn(FRANK, {u["id"] for u in items})
        st, _, js = self.g("POST", "/v1.0/users/%s/checkMemberGroups" % BOB,
                           {"groupIds": [G_LINUX, G_CONTRACT, G_PARTNER]})
        self.assertEqual(st, 200, js)
        self.assertEqual(js["value"], [G_LINUX, G_PARTNER])
        self.assertGraphError(self.g("POST", "/v1.0/users/%s/checkMemberGroups" % BOB,
                                     {"groupIds": [str(uuid.uuid4()) for _ in range(21)]}),
                              400, "Request_BadRequest")
        self.assertGraphError(self.g("GET", "/v1.0/groups/%s/transitiveMembers/"
                                     "microsoft.graph.user" % uuid.uuid4()), 404,
                              "Request_ResourceNotFound")
        tok = self.token(CLIENT_NOGROUPS, SECRET_NOGROUPS)
        self.assertGraphError(self.g("GET", "/v1.0/groups/%s/transitiveMembers/"
                                     "microsoft.graph.user" % G_LINUX, token=tok), 403,
                              "Authorization_RequestDenied")
        self.assertEqual(self.g("GET", "/v1.0/users", token=tok)[0], 200)

    def test_faults(self):
        self.g("GET", "/v1.0/users/" + ALICE)            # get a token first
        self.ctl("POST", "/stats/reset", {})
        self.ctl("POST", "/faults", [{"method": "GET", "path_prefix": "/v1.0/users",
                                      "status": 429, "retry_after": "1"}])
        st, rh, js = self.g("GET", "/v1.0/users")
        self.assertGraphError((st, rh, js), 429, "TooManyRequests")
        self.assertEqual(rh["Retry-After"], "1")
        self.assertEqual(self.g("GET", "/v1.0/users")[0], 200)
        self.ctl("POST", "/faults", {"path_prefix": "/v1.0/users/delta", "nth": 2,
                                     "status": 503})
        self.assertEqual(self.g("GET", "/v1.0/users/delta")[0], 200)
        st, rh, js = self.g("GET", "/v1.0/users/delta")
        self.assertGraphError((st, rh, js), 503, "ServiceUnavailable")
        self.assertNotIn("Retry-After", rh)
        self.assertEqual(self.g("GET", "/v1.0/users/delta")[0], 200)
        stats = self.ctl("GET", "/stats")
        self.assertEqual((stats["users"], stats["delta"], stats["faults"]), (2, 3, 2))
        self.assertEqual(stats["total"], 5)
        # expire_token -> 401; badjson; truncate; drop
        self.ctl("POST", "/faults", {"path_prefix": "/v1.0/users", "action": "expire_token"})
        self.assertGraphError(self.g("GET", "/v1.0/users"), 401, "InvalidAuthenticationToken")
        self._token = None
        self.ctl("POST", "/faults", {"path_prefix": "/v1.0/users", "action": "badjson"})
        st, _, raw = self.http("GET", "/v1.0/users", headers={
            "Authorization": "Bearer " + self.token()}, raw=True)
        self.assertEqual(st, 200)
        self.assertRaises(ValueError, json.loads, raw)
        self.ctl("POST", "/faults", {"path_prefix": "/v1.0/users", "action": "truncate"})
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, OSError)):
            self.g("GET", "/v1.0/users")
        self.ctl("POST", "/faults", {"path_prefix": "/v1.0/users", "action": "drop"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, OSError,
                                urllib.error.URLError)):
            self.g("GET", "/v1.0/users")
        self.ctl("POST", "/faults", {"path_prefix": "/%s/oauth2" % TENANT, "status": 503,
                                     "retry_after": "2"})
        st, rh, js = self.token_request({"client_id": CLIENT, "client_secret": SECRET,
                                         "scope": self.base + "/.default",
                                         "grant_type": "client_credentials"})
        self.assertEqual((st, rh["Retry-After"]), (503, "2"))
        self.assertTrue(js["error_description"].startswith("AADSTS"))
        self.ctl("DELETE", "/faults")
        self.assertEqual(self.g("GET", "/v1.0/users")[0], 200)

    def test_keepalive(self):
        tok = self.token()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
        for _ in range(3):
            conn.request("GET", "/v1.0/users?$select=id", headers={"Authorization": "Bearer " +
                                                                    tok})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            json.loads(r.read())
        sock = conn.sock
        conn.request("GET", "/v1.0/users/" + ALICE, headers={"Authorization": "Bearer " + tok})
        r = conn.getresponse()
        r.read()
        self.assertIs(conn.sock, sock)
        conn.close()

    def test_graphctl(self):
        def run(*args):
            return subprocess.run([sys.executable, GRAPHCTL, "--port-file", self.port_file,
                                   "--ca", os.path.join(self.tmp, "ca.pem")] + list(args),
                                  capture_output=True, text=True, timeout=120)
        r = run("depart", "alice@fabrikam.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "departed")
        r = run("restore", "alice")
        self.assertEqual(json.loads(r.stdout)["state"], "active")
        r = run("disable", "bob@tailspintoys.com")
        self.assertEqual(json.loads(r.stdout)["state"], "disabled")
        r = run("patch", NESTOR, '{"userType":"Guest"}')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("add", '{"displayName":"Zed","mail":"zed@example.org",'
                       '"userPrincipalName":"zed_example.org#EXT#@contoso.onmicrosoft.com"}')
        self.assertEqual(json.loads(r.stdout)["state"], "pending")
        r = run("accept", "zed@example.org")
        self.assertEqual(json.loads(r.stdout)["state"], "active")
        r = run("clock", "2026-12-27T12:00:00Z")
        self.assertEqual(json.loads(r.stdout)["now"][:13], "2026-12-27T12")
        r = run("show", "frank@litware.com")                  # purged after 30 days
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user matches", r.stderr)
        r = run("depart", "nobody@nowhere")
        self.assertEqual(r.returncode, 1)
        r = run("stats")
        self.assertEqual(r.returncode, 0)
        self.assertIn("total", json.loads(r.stdout))
        r = run("bogus-action")
        self.assertEqual(r.returncode, 2)


class DeviceCodeTests(Base):
    """The device authorization grant as the Microsoft identity platform speaks
    it (entra-docs docs/identity-platform/v2-oauth2-device-code.md): the
    /devicecode answer's fields, the token endpoint's polling errors
    (authorization_pending, authorization_declined, bad_verification_code,
    expired_token; slow_down from RFC 8628 §3.5), invalid_client AADSTS7000218
    for an app without public client flows, and RS256 ID tokens whose keys are
    published at /discovery/v2.0/keys."""

    def devicecode(self, client=SIGNIN, tenant=TENANT):
        return self.http("POST", "/%s/oauth2/v2.0/devicecode" % tenant,
                         urllib.parse.urlencode({"client_id": client,
                                                 "scope": "openid profile"}),
                         {"Content-Type": "application/x-www-form-urlencoded"})

    def poll(self, device_code, client=SIGNIN):
        return self.token_request({"grant_type": DEVICE_GRANT, "client_id": client,
                                   "device_code": device_code})

    def test_devicecode_answer(self):
        st, rh, js = self.devicecode()
        self.assertEqual(st, 200, js)
        self.assertEqual(set(js), {"device_code", "user_code", "verification_uri",
                                   "expires_in", "interval", "message"})
        self.assertEqual(js["verification_uri"], "https://microsoft.com/devicelogin")
        self.assertEqual(js["expires_in"], 900)
        self.assertEqual(js["interval"], 5)
        self.assertIn(js["user_code"], js["message"])
        self.assertAadError(self.devicecode(client=str(uuid.uuid4())), 400,
                            "unauthorized_client", 700016)
        self.assertAadError(self.devicecode(tenant="fabrikam.com"), 400, "invalid_request",
                            90002)

    def test_polling_errors(self):
        self.ctl("POST", "/devicecodes/config", {"interval": 3})
        js = self.devicecode()[2]
        dc = js["device_code"]
        self.assertEqual(js["interval"], 3)
        self.assertAadError(self.poll(dc), 400, "authorization_pending", 70016)
        self.assertAadError(self.poll(dc), 400, "slow_down", 70016)   # polled at once
        self.assertAadError(self.poll("not-a-code"), 400, "bad_verification_code", 70019)
        self.assertAadError(self.poll(dc, client=CLIENT), 401, "invalid_client", 7000218)
        self.ctl("POST", "/devicecodes/%s/decline" % js["user_code"], {})
        self.assertAadError(self.poll(dc), 400, "authorization_declined", 70000)
        js = self.devicecode()[2]
        self.ctl("POST", "/devicecodes/latest/slow-down", {"count": 1})
        self.assertAadError(self.poll(js["device_code"]), 400, "slow_down", 70016)
        self.ctl("POST", "/devicecodes/latest/expire", {})
        self.assertAadError(self.poll(js["device_code"]), 400, "expired_token", 70020)
        codes = self.ctl("GET", "/devicecodes")["devicecodes"]
        self.assertEqual([c["state"] for c in codes], ["declined", "expired"])
        self.assertEqual(codes[0]["interval"], 8)          # 3, then 5 more after slow_down
        self.assertEqual(len(codes[0]["polls"]), 3)        # the refused client's and the bad
                                                           # code's polls are not the code's

    def test_id_token(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        self.ctl("POST", "/devicecodes/config", {"interval": 1})
        js = self.devicecode()[2]
        self.ctl("POST", "/devicecodes/%s/approve" % js["user_code"], {"user": "alice@fab"})
        st, _, tok = self.poll(js["device_code"])
        self.assertEqual(st, 200, tok)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertIn("access_token", tok)
        h64, c64, s64 = tok["id_token"].split(".")
        pad = lambda t: t + "=" * (-len(t) % 4)
        header = json.loads(base64.urlsafe_b64decode(pad(h64)))
        claims = json.loads(base64.urlsafe_b64decode(pad(c64)))
        self.assertEqual(header["alg"], "RS256")
        self.assertEqual(claims["oid"], ALICE)
        self.assertEqual(claims["tid"], TENANT)
        self.assertEqual(claims["aud"], SIGNIN)
        self.assertEqual(claims["iss"], "%s/%s/v2.0" % (self.base, TENANT))
        self.assertEqual(claims["ver"], "2.0")
        self.assertAadError(self.poll(js["device_code"]), 400, "invalid_grant", 54005)
        st, _, conf = self.http("GET", "/%s/v2.0/.well-known/openid-configuration" % TENANT)
        self.assertEqual(conf["issuer"], claims["iss"])
        st, _, jwks = self.http("GET", "/contoso.com/discovery/v2.0/keys")
        self.assertEqual(st, 200)
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        self.assertEqual(set(key) >= {"kty", "use", "kid", "x5t", "n", "e", "x5c"}, True)
        n = int.from_bytes(base64.urlsafe_b64decode(pad(key["n"])), "big")
        e = int.from_bytes(base64.urlsafe_b64decode(pad(key["e"])), "big")
        rsa.RSAPublicNumbers(e, n).public_key().verify(
            base64.urlsafe_b64decode(pad(s64)), ("%s.%s" % (h64, c64)).encode(),
            padding.PKCS1v15(), hashes.SHA256())
        # rotation: a new kid signs, the old one stays published
        old = header["kid"]
        new = self.ctl("POST", "/keys/rotate", {})["kid"]
        kids = [k["kid"] for k in self.http("GET", "/%s/discovery/v2.0/keys" % TENANT)[2]["keys"]]
        self.assertEqual(kids, [new, old])

    def test_graphctl_devicecodes(self):
        self.devicecode()
        env = dict(os.environ, GRAPHCTL_URL=self.base, GRAPHCTL_CA=os.path.join(self.tmp, "ca.pem"))
        r = subprocess.run([sys.executable, GRAPHCTL, "approve", "latest", "bob@tailspintoys.com",
                            '{"claims": {"aud": "x"}}'], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["user"], BOB)
        r = subprocess.run([sys.executable, GRAPHCTL, "devicecodes"], env=env,
                           capture_output=True, text=True)
        self.assertEqual(json.loads(r.stdout)[0]["state"], "approved")


class GenerateTest(unittest.TestCase):
    def test_generate_100k(self):
        tmp = tempfile.mkdtemp(prefix="emu-gen-")
        try:
            subprocess.run(["sh", MKCERTS, tmp], check=True)
            t0 = time.time()
            proc, port, _, _ = start_emulator(tmp, FIXTURE, ["--generate", "100000"])
            try:
                ctx = ssl.create_default_context(cafile=os.path.join(tmp, "ca.pem"))
                base = "https://127.0.0.1:%d" % port
                data = urllib.parse.urlencode({"client_id": CLIENT, "client_secret": SECRET,
                                               "scope": base + "/.default",
                                               "grant_type": "client_credentials"}).encode()
                with urllib.request.urlopen(base + "/%s/oauth2/v2.0/token" % TENANT, data,
                                            context=ctx) as r:
                    tok = json.loads(r.read())["access_token"]
                url = base + "/v1.0/users?$filter=userType+eq+'Guest'&$select=id,mail," \
                             "accountEnabled,externalUserState&$top=999"
                seen, pages = set(), 0
                while url:
                    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + tok})
                    with urllib.request.urlopen(req, context=ctx) as r:
                        js = json.loads(r.read())
                    seen.update(u["id"] for u in js["value"])
                    pages += 1
                    url = js.get("@odata.nextLink")
                elapsed = time.time() - t0
                # ~4% of the generated guests are soft-deleted, plus 7 live demo guests
                self.assertGreater(len(seen), 94000)
                self.assertLess(len(seen), 100007)
                # 9 s measured on a loaded 2-core machine: a wide margin
                self.assertLess(elapsed, 90, "100k guests took %.1fs" % elapsed)
                sys.stderr.write("[100k guests: %d live, %d pages, %.1fs incl. startup] "
                                 % (len(seen), pages, elapsed))
            finally:
                proc.terminate()
                proc.wait(60)
                proc.stderr.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
