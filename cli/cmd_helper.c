/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_helper.c: `aadguest pam-helper`, the child pam_aadguest runs so that
 * libcurl and json-c never load into the program that called PAM. One request
 * line on stdin, answer lines on stdout (common/helperproto.h): a guest's live
 * state, or a device code sign-in (RFC 8628, SPEC §10). Also the sign-in part
 * of config-check. The device code and the tokens never leave this process. */
#include "cli.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/ledger.h"
#include "../common/helperproto.h"
#include "../common/idtoken.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_WAIT_MS	  10000
#define HTTP_TIMEOUT_MS	  15000
#define GRANT_DEVICE_CODE "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"

struct sign_in {
	struct cli *c;
	struct graph_client g;
	const char *name, *object_id;
	char tenant[64]; /* the tenant's GUID */
	char issuer[2048];
	char sentence[AG_HELPER_LINE_MAX - 64];
	unsigned polls, key_fetches;
};

/* snprintf that may cut (messages only). */
static void fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t n, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, n, f, ap);
	va_end(ap);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *k, int64_t dflt)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v))
		return dflt;
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	if (json_object_is_type(v, json_type_string)) {
		uint64_t u;
		if (ag_parse_u64(json_object_get_string(v), 86400, &u) == 0)
			return (int64_t)u;
	}
	return dflt;
}

static bool is_guid(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;
	for (i = 0; pat[i]; i++) {
		char ch = s[i];
		if (pat[i] == '-' ? ch != '-'
				  : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
				      (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return s[i] == '\0';
}

/* One line to the module. */
static int reply(const struct ag_helper_msg *m)
{
	char line[AG_HELPER_LINE_MAX];
	if (ag_helper_format(m, line, sizeof(line)))
		return -EINVAL;
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t w = write(STDOUT_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EPIPE;
		off += (size_t)w;
	}
	return 0;
}

static int reply_result(enum ag_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int reply_result(enum ag_outcome o, const char *fmt, ...)
{
	struct ag_helper_msg m = { .kind = AGH_RESULT, .outcome = o };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m.sentence, sizeof(m.sentence), fmt, ap);
	va_end(ap);
	for (char *p = m.sentence; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	reply(&m);
	return o == AGO_OK ? EXIT_OK : EXIT_FAIL;
}

/* The request line, within REQUEST_WAIT_MS. */
static int read_request(struct ag_helper_msg *m)
{
	char line[AG_HELPER_LINE_MAX + 1];
	size_t len = 0;
	int64_t end = mono_ms() + REQUEST_WAIT_MS;
	while (len < sizeof(line) - 1) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int64_t left = end - mono_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		ssize_t n = read(STDIN_FILENO, line + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	return ag_helper_parse(line, m);
}

/* Sleep ms, unless the module hangs up first (then -EPIPE: nobody waits any more). */
static int wait_ms(int64_t ms)
{
	int64_t end = mono_ms() + ms;
	for (;;) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return 0;
		char b;
		ssize_t n = read(STDIN_FILENO, &b, 1);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			return -EPIPE;
	}
}

/* "AADSTS7000218: The request body…" → the first line, at most n bytes. */
static void entra_error(struct json_object *o, char *out, size_t n)
{
	const char *e = jstr(o, "error"), *d = jstr(o, "error_description");
	char first[512];
	ag_strlcpy(first, d ? d : "", sizeof(first));
	first[strcspn(first, "\r\n")] = '\0';
	fmt(out, n, "%s%s%s", e ? e : "no error code", first[0] ? ": " : "", first);
}

static bool public_client_refused(struct json_object *o)
{
	const char *e = jstr(o, "error"), *d = jstr(o, "error_description");
	return e && strcmp(e, "invalid_client") == 0 && d &&
	       (strstr(d, "AADSTS7000218") ||
		strstr(d, "must contain the following parameter: 'client_assertion' or "
			  "'client_secret'"));
}

#define PUBLIC_CLIENT_HINT                                                                \
	"the sign-in app registration does not allow public client flows (Entra admin "   \
	"center: App registrations, the app, Authentication, Advanced settings: \"Allow " \
	"public client flows\" = Yes)"

/* The expected issuer: {authority}/{tenant GUID}/v2.0. A tenant given as a
 * domain is turned into its GUID by the OpenID configuration. */
static int resolve_issuer(struct sign_in *s, char *why, size_t n)
{
	const struct ag_config *cfg = &s->c->cfg;
	if (is_guid(cfg->tenant_id)) {
		ag_ascii_lower(s->tenant, cfg->tenant_id, sizeof(s->tenant));
	} else {
		char url[2048];
		long st;
		struct json_object *o = NULL;
		snprintf(url, sizeof(url), "%s/%s/v2.0/.well-known/openid-configuration",
			 cfg->authority, cfg->tenant_id);
		if (graph_plain(&s->g, url, NULL, &st, &o) || st != 200) {
			fmt(why, n, "the tenant's OpenID configuration: %s",
			    st ? "HTTP error" : s->g.err);
			json_object_put(o);
			return -EIO;
		}
		const char *iss = jstr(o, "issuer");
		size_t al = strlen(cfg->authority);
		int r = -EIO;
		if (iss && strncmp(iss, cfg->authority, al) == 0 && iss[al] == '/' &&
		    strlen(iss + al + 1) == 36 + 5 && strcmp(iss + al + 37, "/v2.0") == 0) {
			char guid[40];
			memcpy(guid, iss + al + 1, 36);
			guid[36] = '\0';
			if (is_guid(guid)) {
				ag_ascii_lower(s->tenant, guid, sizeof(s->tenant));
				r = 0;
			}
		}
		json_object_put(o);
		if (r) {
			fmt(why, n, "the tenant's OpenID configuration names no issuer of %s",
			    cfg->authority);
			return r;
		}
	}
	snprintf(s->issuer, sizeof(s->issuer), "%s/%s/v2.0", cfg->authority, s->tenant);
	return 0;
}

/* The cached key set, when it is ours alone. */
static struct json_object *keys_load(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077) || st.st_size <= 0 ||
	    st.st_size > (1 << 20)) {
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	struct json_object *o = NULL;
	if (got == st.st_size) {
		struct json_tokener *t = json_tokener_new();
		o = t ? json_tokener_parse_ex(t, buf, (int)got) : NULL;
		if (t && json_tokener_get_error(t) != json_tokener_success) {
			json_object_put(o);
			o = NULL;
		}
		if (t)
			json_tokener_free(t);
	}
	free(buf);
	return o;
}

/* {authority}/{tenant_id}/discovery/v2.0/keys, saved root-only. */
static struct json_object *keys_fetch(struct sign_in *s, const char *path, char *why, size_t n)
{
	const struct ag_config *cfg = &s->c->cfg;
	char url[2048], err[256];
	long st;
	struct json_object *o = NULL, *keys;
	snprintf(url, sizeof(url), "%s/%s/discovery/v2.0/keys", cfg->authority, cfg->tenant_id);
	s->key_fetches++;
	if (graph_plain(&s->g, url, NULL, &st, &o) || st != 200 || !o ||
	    !json_object_object_get_ex(o, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array)) {
		fmt(why, n, "the tenant's signing keys could not be fetched (%s)",
		    st ? "bad answer" : s->g.err);
		json_object_put(o);
		return NULL;
	}
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (text && ag_replace_file(path, text, strlen(text), 0600, err, sizeof(err)))
		syslog(LOG_WARNING, "sign-in key set not cached: %s", err);
	return o;
}

/* The ID token: signature, then claims. */
static enum ag_outcome verify_id_token(struct sign_in *s, const char *jwt)
{
	char why[256] = "", path[4096];
	struct idtoken t;
	struct json_object *jwks = NULL;
	enum ag_outcome out = AGO_INVALID_TOKEN;

	if (idtoken_parse(jwt, &t, why, sizeof(why))) {
		fmt(s->sentence, sizeof(s->sentence), "Sign-in refused: %s.", why);
		return out;
	}
	if (resolve_issuer(s, why, sizeof(why))) {
		out = AGO_UNAVAILABLE;
		fmt(s->sentence, sizeof(s->sentence), "Sign-in is not possible right now: %s.",
		    why);
		goto done;
	}
	ag_config_state_path(&s->c->cfg, AG_STATE_SIGNIN_KEYS, path, sizeof(path));
	jwks = keys_load(path);
	int r = idtoken_verify_signature(&t, jwks, why, sizeof(why));
	if (r == -ENOKEY) {
		/* A key we have not seen: the tenant rotated its keys. */
		json_object_put(jwks);
		jwks = keys_fetch(s, path, why, sizeof(why));
		if (!jwks) {
			out = AGO_UNAVAILABLE;
			fmt(s->sentence, sizeof(s->sentence),
			    "Sign-in is not possible right now: %s.", why);
			goto done;
		}
		r = idtoken_verify_signature(&t, jwks, why, sizeof(why));
		if (r == -ENOKEY)
			fmt(why, sizeof(why),
			    "the ID token is signed by a key the tenant does not publish");
	}
	if (r) {
		fmt(s->sentence, sizeof(s->sentence), "Sign-in refused: %s.", why);
		goto done;
	}
	struct idtoken_expect e = { .issuer = s->issuer,
				    .audience = s->c->cfg.sign_in_client_id,
				    .tenant = s->tenant,
				    .object_id = s->object_id,
				    .now = s->c->now };
	r = idtoken_check_claims(&t, &e, why, sizeof(why));
	if (r == 0) {
		out = AGO_OK;
		fmt(s->sentence, sizeof(s->sentence), "Signed in as %s.", s->name);
	} else if (r == -EACCES) {
		out = AGO_OTHER_ACCOUNT;
		const char *who = jstr(t.claims, "preferred_username");
		fmt(s->sentence, sizeof(s->sentence),
		    "Sign-in refused: signed in as a different account%s%s%s, not as %s.",
		    who ? " (" : "", who ? who : "", who ? ")" : "", s->name);
	} else {
		fmt(s->sentence, sizeof(s->sentence), "Sign-in refused: %s.", why);
	}
done:
	json_object_put(jwks);
	idtoken_free(&t);
	return out;
}

struct device_code {
	char *device_code; /* secret: wiped */
	char user_code[64], url[512];
	int64_t expires_in, interval;
};

static void device_code_free(struct device_code *d)
{
	if (d->device_code) {
		ag_wipe(d->device_code, strlen(d->device_code));
		free(d->device_code);
	}
	d->device_code = NULL;
}

/* POST …/devicecode. 0, or -EIO with sentence set (and, for config-check, what Entra said). */
static int device_code_request(struct sign_in *s, struct device_code *d, char *detail, size_t n)
{
	const struct ag_config *cfg = &s->c->cfg;
	char url[2048], *form = NULL;
	long st;
	struct json_object *o = NULL;
	int r = -EIO;

	memset(d, 0, sizeof(*d));
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/devicecode", cfg->authority, cfg->tenant_id);
	char *id = graph_escape(&s->g, cfg->sign_in_client_id);
	if (!id || asprintf(&form, "client_id=%s&scope=openid%%20profile", id) < 0) {
		graph_free_escaped(id);
		fmt(detail, n, "out of memory");
		return -ENOMEM;
	}
	graph_free_escaped(id);
	if (graph_plain(&s->g, url, form, &st, &o)) {
		fmt(detail, n, "%s", s->g.err);
	} else if (st != 200) {
		char e[512];
		entra_error(o, e, sizeof(e));
		fmt(detail, n, "device code request: HTTP %ld: %s", st, e);
	} else {
		const char *dc = jstr(o, "device_code"), *uc = jstr(o, "user_code");
		const char *vu = jstr(o, "verification_uri");
		d->expires_in = jint(o, "expires_in", 0);
		d->interval = jint(o, "interval", 5);
		if (!dc || !uc || !vu || d->expires_in <= 0 ||
		    ag_strlcpy(d->user_code, uc, sizeof(d->user_code)) ||
		    ag_strlcpy(d->url, vu, sizeof(d->url)) || !(d->device_code = strdup(dc))) {
			fmt(detail, n,
			    "device code answer without device_code, user_code, "
			    "verification_uri or expires_in");
		} else {
			if (d->interval < 1 || d->interval > 60)
				d->interval = 5;
			r = 0;
		}
	}
	json_object_put(o);
	free(form);
	return r;
}

enum poll_answer { POLL_PENDING, POLL_SLOW_DOWN, POLL_TOKEN, POLL_DONE };

/* One poll of the token endpoint for a device code (RFC 8628 §3.4): its HTTP
 * status and JSON answer. 0; -ENOMEM; -EIO when Entra cannot be reached (g->err
 * says why). The form, which holds the device code, is wiped. */
static int token_poll(struct graph_client *g, const struct ag_config *cfg, const char *device_code,
		      long *st, struct json_object **o)
{
	char url[2048], *form = NULL;
	int r = -ENOMEM;
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", cfg->authority, cfg->tenant_id);
	char *id = graph_escape(g, cfg->sign_in_client_id);
	char *dc = graph_escape(g, device_code);
	if (id && dc &&
	    asprintf(&form, "grant_type=%s&client_id=%s&device_code=%s", GRANT_DEVICE_CODE, id,
		     dc) >= 0) {
		r = graph_plain(g, url, form, st, o) ? -EIO : 0;
		ag_wipe(form, strlen(form));
		free(form);
	}
	graph_free_escaped(dc);
	graph_free_escaped(id);
	return r;
}

/* One poll of the token endpoint. POLL_TOKEN with *id_token (to be wiped and
 * freed), POLL_DONE with *outcome and s->sentence set. */
static enum poll_answer poll_token(struct sign_in *s, const struct device_code *d, char **id_token,
				   enum ag_outcome *outcome)
{
	const struct ag_config *cfg = &s->c->cfg;
	char e[512];
	long st;
	struct json_object *o = NULL;
	enum poll_answer a = POLL_DONE;

	*outcome = AGO_UNAVAILABLE;
	int r = token_poll(&s->g, cfg, d->device_code, &st, &o);
	if (r == -ENOMEM) {
		fmt(s->sentence, sizeof(s->sentence), "Sign-in failed: out of memory.");
		goto out;
	}
	s->polls++;
	if (r) {
		syslog(LOG_ERR, "sign-in of %s: %s", s->name, s->g.err);
		fmt(s->sentence, sizeof(s->sentence),
		    "Sign-in is not possible right now: Entra cannot be reached.");
		goto out;
	}
	const char *err = jstr(o, "error");
	if (st == 200) {
		const char *t = jstr(o, "id_token");
		if (t && (*id_token = strdup(t))) {
			a = POLL_TOKEN;
		} else {
			*outcome = AGO_INVALID_TOKEN;
			fmt(s->sentence, sizeof(s->sentence),
			    "Sign-in refused: Entra's answer carries no ID token.");
		}
	} else if (err && strcmp(err, "authorization_pending") == 0) {
		a = POLL_PENDING;
	} else if (err && strcmp(err, "slow_down") == 0) {
		a = POLL_SLOW_DOWN;
	} else if (err && strcmp(err, "authorization_declined") == 0) {
		*outcome = AGO_DECLINED;
		fmt(s->sentence, sizeof(s->sentence), "Sign-in refused: the sign-in was declined.");
	} else if (err && strcmp(err, "expired_token") == 0) {
		*outcome = AGO_EXPIRED;
		fmt(s->sentence, sizeof(s->sentence),
		    "Sign-in refused: the code expired before the sign-in was completed.");
	} else if (err && strcmp(err, "invalid_grant") == 0 && jstr(o, "error_description") &&
		   strstr(jstr(o, "error_description"), "AADSTS53003")) {
		/* The tenant's Conditional Access refused the token (it may block the
		 * device code flow altogether). */
		*outcome = AGO_BLOCKED;
		entra_error(o, e, sizeof(e));
		syslog(LOG_NOTICE, "sign-in of %s: %s", s->name, e);
		fmt(s->sentence, sizeof(s->sentence),
		    "Sign-in refused: blocked by the organization's Conditional Access policies "
		    "(they may not allow sign-in with a code).");
	} else {
		entra_error(o, e, sizeof(e));
		syslog(LOG_ERR, "sign-in of %s: token endpoint: HTTP %ld: %s%s%s", s->name, st, e,
		       public_client_refused(o) ? "; " : "",
		       public_client_refused(o) ? PUBLIC_CLIENT_HINT : "");
		fmt(s->sentence, sizeof(s->sentence),
		    "Sign-in is not possible right now: Entra answered %s.",
		    err ? err : "with an error");
	}
out:
	json_object_put(o);
	return a;
}

static int sign_in(struct cli *c, const struct ag_helper_msg *req)
{
	struct sign_in s = { .c = c, .name = req->name, .object_id = req->object_id };
	struct device_code d;
	char detail[1024];
	enum ag_outcome out = AGO_TIMEOUT;
	int rc;

	if (c->cfg.sign_in != SIGN_IN_DEVICE_CODE)
		return reply_result(AGO_UNAVAILABLE, "Sign-in through Entra is not enabled here.");
	if (graph_init(&s.g, &c->cfg)) {
		syslog(LOG_ERR, "sign-in of %s: %s", req->name, s.g.err);
		graph_free(&s.g);
		return reply_result(AGO_UNAVAILABLE, "Sign-in is not possible right now.");
	}
	s.g.timeout_ms = HTTP_TIMEOUT_MS;
	s.g.max_attempts = 2;
	if (device_code_request(&s, &d, detail, sizeof(detail))) {
		syslog(LOG_ERR, "sign-in of %s: %s", req->name, detail);
		rc = reply_result(AGO_UNAVAILABLE,
				  "Sign-in is not possible right now: Entra did not give a code.");
		goto out;
	}
	struct ag_helper_msg p = { .kind = AGH_PROMPT, .expires_in = d.expires_in };
	ag_strlcpy(p.url, d.url, sizeof(p.url));
	ag_strlcpy(p.code, d.user_code, sizeof(p.code));
	if (reply(&p)) {
		rc = reply_result(
			AGO_UNAVAILABLE,
			"Sign-in is not possible right now: Entra's code cannot be shown.");
		goto out;
	}
	int64_t limit =
		c->cfg.sign_in_timeout < d.expires_in ? c->cfg.sign_in_timeout : d.expires_in;
	int64_t deadline = mono_ms() + limit * 1000, interval = d.interval;
	/* A bound on the whole run: the last poll and the key set included. */
	s.g.deadline = deadline / 1000 + 2 * HTTP_TIMEOUT_MS / 1000;
	fmt(s.sentence, sizeof(s.sentence),
	    "Sign-in refused: nobody signed in within %lld seconds.", (long long)limit);
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		if (interval * 1000 > left) {
			/* The next poll would come after the deadline. */
			wait_ms(left);
			break;
		}
		if (wait_ms(interval * 1000) < 0) {
			rc = EXIT_FAIL; /* the module is gone: nobody to answer */
			goto out;
		}
		char *id_token = NULL;
		enum ag_outcome done;
		enum poll_answer a = poll_token(&s, &d, &id_token, &done);
		if (a == POLL_PENDING)
			continue;
		if (a == POLL_SLOW_DOWN) {
			interval += 5; /* RFC 8628 §3.5 */
			continue;
		}
		out = done;
		if (a == POLL_TOKEN) {
			out = verify_id_token(&s, id_token);
			ag_wipe(id_token, strlen(id_token));
			free(id_token);
		}
		break;
	}
	if (out == AGO_TIMEOUT)
		syslog(LOG_NOTICE, "sign-in of %s: no answer within %lld s (%u polls)", req->name,
		       (long long)limit, s.polls);
	rc = reply_result(out, "%s", s.sentence);
out:
	device_code_free(&d);
	graph_free(&s.g);
	return rc;
}

static int online(struct cli *c, const struct ag_helper_msg *req)
{
	struct ag_helper_msg m = { .kind = AGH_STATE };
	char err[1024];
	if (cli_online_state(c, req->object_id, &m.state, &m.deleted_at, err, sizeof(err))) {
		syslog(LOG_WARNING, "online check of %s: %s", req->name, err);
		return reply_result(AGO_UNAVAILABLE, "The guest's live state is not available.");
	}
	return reply(&m) ? EXIT_FAIL : EXIT_OK;
}

int cmd_pam_helper(struct cli *c, int argc, char **argv)
{
	struct ag_helper_msg req;
	(void)argv;
	if (argc != 1) {
		cli_err(AG_HELPER_ARG ": takes no arguments (a request line on stdin)");
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	openlog("aadguest", LOG_PID, LOG_AUTHPRIV);
	if (read_request(&req)) {
		cli_err(AG_HELPER_ARG ": no valid request on stdin");
		return EXIT_USAGE;
	}
	if (req.kind == AGH_ONLINE)
		return online(c, &req);
	if (req.kind == AGH_SIGN_IN)
		return sign_in(c, &req);
	cli_err(AG_HELPER_ARG ": not a request");
	return EXIT_USAGE;
}

int cli_check_sign_in(struct cli *c, struct cli_checks *k)
{
	struct sign_in s = { .c = c, .name = "config-check", .object_id = "-" };
	struct device_code d;
	char detail[1024], path[4096], why[256];
	int rc = 0;

	if (c->cfg.sign_in != SIGN_IN_DEVICE_CODE) {
		cli_check_line(k, "ok",
			       "sign_in = none: guests do not sign in through Entra (PAM auth "
			       "ignores them)");
		return 0;
	}
	if (graph_init(&s.g, &c->cfg)) {
		cli_check_line(k, "failed", "%s", s.g.err);
		graph_free(&s.g);
		return -EIO;
	}
	s.g.timeout_ms = HTTP_TIMEOUT_MS;
	s.g.max_attempts = 2;
	if (device_code_request(&s, &d, detail, sizeof(detail))) {
		cli_check_line(k, "failed", "sign-in app %s: %s", c->cfg.sign_in_client_id, detail);
		rc = -EIO;
		goto out;
	}
	/* One poll: a public client is told authorization_pending; an app without
	 * public client flows is refused (AADSTS7000218). */
	long st;
	char e[512];
	struct json_object *o = NULL;
	if (token_poll(&s.g, &c->cfg, d.device_code, &st, &o) == 0) {
		const char *err = jstr(o, "error");
		if (err &&
		    (strcmp(err, "authorization_pending") == 0 || strcmp(err, "slow_down") == 0)) {
			cli_check_line(k, "ok",
				       "sign-in app %s: device code flow works (public client)",
				       c->cfg.sign_in_client_id);
		} else if (public_client_refused(o)) {
			cli_check_line(k, "failed", "sign-in app %s: %s", c->cfg.sign_in_client_id,
				       PUBLIC_CLIENT_HINT);
			rc = -EACCES;
		} else {
			entra_error(o, e, sizeof(e));
			cli_check_line(k, "failed", "sign-in app %s: token endpoint: HTTP %ld: %s",
				       c->cfg.sign_in_client_id, st, e);
			rc = -EIO;
		}
	} else {
		cli_check_line(k, "failed", "sign-in app %s: %s", c->cfg.sign_in_client_id,
			       s.g.err);
		rc = -EIO;
	}
	json_object_put(o);
	if (rc == 0) {
		ag_config_state_path(&c->cfg, AG_STATE_SIGNIN_KEYS, path, sizeof(path));
		struct json_object *keys = NULL;
		if (resolve_issuer(&s, why, sizeof(why)) == 0 &&
		    (keys = keys_fetch(&s, path, why, sizeof(why)))) {
			cli_check_line(
				k, "ok", "%s/%s/discovery/v2.0/keys: %zu signing keys (issuer %s)",
				c->cfg.authority, c->cfg.tenant_id,
				json_object_array_length(json_object_object_get(keys, "keys")),
				s.issuer);
		} else {
			cli_check_line(k, "failed", "sign-in keys: %s", why);
			rc = -EIO;
		}
		json_object_put(keys);
	}
out:
	device_code_free(&d);
	graph_free(&s.g);
	return rc;
}
