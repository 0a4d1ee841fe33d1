/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* graph.c: token, paged GETs with retries, and the one place that reads a
 * Graph user object. TLS is always verified; every request has a timeout. */
#include "graph.h"
#include "clock.h"
#include "credential.h"
#include "ledger.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <strings.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY       (256u << 20)
#define MAX_ATTEMPTS   6
#define MAX_RETRY_WAIT 120

struct buf {
	char *p;
	size_t len, cap;
	bool overflow;
};

struct response {
	long status;
	struct buf body;
	char retry_after[64];
	char content_type[128];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct buf *b = ctx;
	size_t n = size * nmemb;
	if (b->len + n + 1 > MAX_BODY) {
		b->overflow = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 65536;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

void graph_header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	const char *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t len = (size_t)(end - v);
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct response *r = ctx;
	size_t n = size * nmemb;
	graph_header_value(data, n, "Retry-After", r->retry_after, sizeof(r->retry_after));
	graph_header_value(data, n, "Content-Type", r->content_type, sizeof(r->content_type));
	return n;
}

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int set_err(struct graph_client *g, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int set_err(struct graph_client *g, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->err, sizeof(g->err), fmt, ap);
	va_end(ap);
	return r;
}

int graph_curl_global(void)
{
	pthread_once(&curl_once, curl_init);
	return curl_init_rc == CURLE_OK ? 0 : (int)curl_init_rc;
}

void graph_curl_secure(void *curl, const struct ag_config *cfg)
{
	CURL *c = curl;
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	if (cfg->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
		/* An extra bundle adds to the system store, it does not replace it. */
		if (access("/etc/ssl/certs", R_OK) == 0)
			curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
	} else if (v->capath && access(v->capath, R_OK | X_OK) == 0) {
		/* The system store as the hashed directory libcurl was built with
		 * (Debian's /etc/ssl/certs): OpenSSL reads the one CA a chain needs
		 * instead of parsing the whole bundle (144 certificates: 20 to 30 ms
		 * of CPU) for every connection, in every sign-in and every sync.
		 * Where libcurl has no CA directory (Fedora), its bundle stays. */
		curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(c, CURLOPT_CAPATH, v->capath);
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

int graph_init(struct graph_client *g, const struct ag_config *cfg)
{
	memset(g, 0, sizeof(*g));
	g->cfg = cfg;
	graph_curl_global();
	unsigned seed;
	if (getentropy(&seed, sizeof(seed)) == 0)
		srand(seed); /* back-off jitter that differs from host to host */
	if (curl_init_rc != CURLE_OK)
		return set_err(g, -EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	g->curl = curl_easy_init();
	if (!g->curl)
		return set_err(g, -ENOMEM, "libcurl: cannot create a handle");
	return 0;
}

void graph_free(struct graph_client *g)
{
	if (g->curl)
		curl_easy_cleanup(g->curl);
	if (g->token) {
		ag_wipe(g->token, strlen(g->token));
		free(g->token);
	}
	g->curl = NULL;
	g->token = NULL;
}

/* Path part of a URL, for messages (never the query: it can be long). */
static void url_for_log(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	ag_strlcpy(out, p ? p : url, n);
	out[strcspn(out, "?")] = '\0';
}

static int perform(struct graph_client *g, const char *method, const char *url, const char *form,
		   struct curl_slist *headers, struct response *resp)
{
	CURL *c = g->curl;
	CURLcode rc;
	long timeout_ms = g->timeout_ms > 0 ? g->timeout_ms : 30000;

	memset(resp, 0, sizeof(*resp));
	if (g->deadline) {
		int64_t left = g->deadline - mono_s();
		if (left <= 0)
			return set_err(g, -ETIMEDOUT, "the sync ran past its time bound");
		if (left * 1000 < timeout_ms)
			timeout_ms = (long)(left * 1000);
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	graph_curl_secure(c, g->cfg);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "aadguest/0.1");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (form) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	g->requests++;
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		char where[256];
		url_for_log(url, where, sizeof(where));
		free(resp->body.p);
		resp->body.p = NULL;
		if (resp->body.overflow)
			return set_err(g, -EFBIG, "%s %s: response larger than %u MiB", method,
				       where, MAX_BODY >> 20);
		int e = -EIO;
		if (rc == CURLE_OPERATION_TIMEDOUT)
			e = -ETIMEDOUT;
		else if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
			 rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE ||
			 rc == CURLE_COULDNT_CONNECT)
			e = -ECONNRESET;
		if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		    rc == CURLE_SSL_CONNECT_ERROR)
			return set_err(g, -EIO,
				       "%s %s: TLS: %s (is the server's CA in the system store or "
				       "in ca_file?)",
				       method, where, curl_easy_strerror(rc));
		return set_err(g, e, "%s %s: %s", method, where, curl_easy_strerror(rc));
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	return 0;
}

static struct json_object *parse_json(const struct buf *b, char *why, size_t whylen)
{
	struct json_tokener *tok;
	struct json_object *o;
	if (!b->p || b->len == 0) {
		snprintf(why, whylen, "empty body");
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, b->p, (int)b->len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (!o || e != json_tokener_success) {
		snprintf(why, whylen, "invalid JSON: %s",
			 e == json_tokener_continue ? "truncated" : json_tokener_error_desc(e));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* One line out of a Graph or token error body. */
static void describe_error(const struct response *resp, char *out, size_t n)
{
	char why[128];
	struct json_object *o = parse_json(&resp->body, why, sizeof(why));
	struct json_object *e = NULL;
	out[0] = '\0';
	if (o && json_object_object_get_ex(o, "error", &e) &&
	    json_object_is_type(e, json_type_object)) {
		const char *code = jstr(e, "code"), *msg = jstr(e, "message");
		snprintf(out, n, "%s: %s", code ? code : "error", msg ? msg : "");
	} else if (o && jstr(o, "error")) {
		const char *d = jstr(o, "error_description");
		char first[512];
		ag_strlcpy(first, d ? d : "", sizeof(first));
		first[strcspn(first, "\r\n")] = '\0';
		snprintf(out, n, "%s: %s", jstr(o, "error"), first);
	} else {
		snprintf(out, n, "no error details");
	}
	json_object_put(o);
}

static const char *graph_error_code(const struct response *resp, char *buf, size_t n)
{
	char why[64];
	struct json_object *o = parse_json(&resp->body, why, sizeof(why)), *e;
	buf[0] = '\0';
	if (o && json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_object) && jstr(e, "code"))
			ag_strlcpy(buf, jstr(e, "code"), n);
		else if (json_object_is_type(e, json_type_string))
			ag_strlcpy(buf, json_object_get_string(e), n);
	}
	json_object_put(o);
	return buf;
}

/* Milliseconds to wait before retry number `attempt` (1-based). */
static unsigned retry_wait(const char *retry_after, unsigned attempt)
{
	if (retry_after[0]) {
		uint64_t s;
		if (ag_parse_u64(retry_after, UINT32_MAX, &s) == 0)
			return s > MAX_RETRY_WAIT ? MAX_RETRY_WAIT * 1000 : (unsigned)s * 1000;
		/* An HTTP date: "Wed, 21 Oct 2026 07:28:00 GMT". */
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (end && !*end) {
			int64_t when =
				ag_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
						   (unsigned)tm.tm_mday) *
					86400 +
				tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
			int64_t now = (int64_t)time(NULL);
			if (when <= now)
				return 0;
			return when - now > MAX_RETRY_WAIT ? MAX_RETRY_WAIT * 1000
							   : (unsigned)(when - now) * 1000;
		}
	}
	/* Exponential back-off with jitter: 1, 2, 4, … 64 s, ±50%. AADGUEST_RETRY_BASE_MS
	 * (a documented test hook) shrinks the unit so fault tests run fast. */
	uint64_t unit = 1000;
	const char *hook = secure_getenv("AADGUEST_RETRY_BASE_MS");
	if (hook && ag_parse_u64(hook, 60000, &unit))
		unit = 1000;
	uint64_t ms = unit << (attempt > 7 ? 6 : attempt - 1);
	ms = ms / 2 + (uint64_t)rand() % (ms + 1);
	if (ms > MAX_RETRY_WAIT * 1000ULL)
		ms = MAX_RETRY_WAIT * 1000ULL;
	return (unsigned)ms;
}

static unsigned max_attempts(const struct graph_client *g)
{
	return g->max_attempts ? g->max_attempts : MAX_ATTEMPTS;
}

static bool retryable(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* Sleep before retry `attempt`; non-zero when the sync's deadline forbids it. */
static int backoff(struct graph_client *g, const char *retry_after, unsigned attempt)
{
	unsigned ms = retry_wait(retry_after, attempt);
	if (g->deadline && mono_s() + (int64_t)(ms / 1000) >= g->deadline)
		return set_err(g, -ETIMEDOUT, "the sync's time bound is near; giving up retrying");
	g->retries++;
	if (ms) {
		struct timespec ts = { .tv_sec = ms / 1000,
				       .tv_nsec = (long)(ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return 0;
}

static bool transient_curl_error(int r)
{
	/* perform() maps curl failures to -EIO/-ETIMEDOUT; TLS and protocol errors
	 * are not retried (they do not heal by waiting). */
	return r == -ETIMEDOUT || r == -ECONNRESET;
}

/* The token cache: {"key": authority|tenant|client, "access_token", "expires_at"}. */
static void cache_key(const struct ag_config *cfg, char *buf, size_t n)
{
	snprintf(buf, n, "%s|%s|%s|%s", cfg->authority, cfg->tenant_id, cfg->client_id,
		 cfg->graph_url);
}

static bool token_cache_load(struct graph_client *g)
{
	char key[2048];
	struct stat st;
	struct json_object *o, *v;
	bool ok = false;

	if (!g->token_cache[0] || g->skip_cache)
		return false;
	int fd = open(g->token_cache, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	/* Only a root-only file of ours is trusted. */
	if (fstat(fd, &st) < 0 || (st.st_mode & 077) || st.st_uid != geteuid() ||
	    st.st_size > 65536) {
		close(fd);
		return false;
	}
	char buf[65537];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	struct json_tokener *jt = json_tokener_new();
	o = jt ? json_tokener_parse_ex(jt, buf, (int)n) : NULL;
	if (jt && json_tokener_get_error(jt) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	if (jt)
		json_tokener_free(jt);
	ag_wipe(buf, (size_t)n);
	cache_key(g->cfg, key, sizeof(key));
	const char *k = jstr(o, "key"), *tok = jstr(o, "access_token");
	if (k && tok && strcmp(k, key) == 0 && json_object_object_get_ex(o, "expires_at", &v)) {
		int64_t left = json_object_get_int64(v) - (int64_t)time(NULL);
		if (left > 300) {
			free(g->token);
			g->token = strdup(tok);
			g->token_expires = mono_s() + left - 300;
			g->token_from_cache = ok = g->token != NULL;
		}
	}
	json_object_put(o);
	return ok;
}

static void token_cache_save(struct graph_client *g, int64_t expires_in)
{
	char key[2048], err[256];
	struct json_object *o;
	if (!g->token_cache[0])
		return;
	cache_key(g->cfg, key, sizeof(key));
	o = json_object_new_object();
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "access_token", json_object_new_string(g->token));
	json_object_object_add(o, "expires_at",
			       json_object_new_int64((int64_t)time(NULL) + expires_in));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (s) {
		ag_replace_file(g->token_cache, s, strlen(s), 0600, err, sizeof(err));
		ag_wipe((void *)s, strlen(s));
	}
	json_object_put(o);
}

/* The form body: client id, scope, grant type and the credential. */
static int token_form(struct graph_client *g, const char *url, char **form)
{
	const struct ag_config *cfg = g->cfg;
	char err[512], scope[1200], *cred = NULL;
	const char *cred_key;
	int r;

	*form = NULL;
	if (cfg->client_certificate) {
		r = credential_assertion(cfg, url, (int64_t)time(NULL), &cred, err, sizeof(err));
		cred_key =
			"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion";
	} else {
		r = ag_config_read_secret(cfg, AG_CONFIG_CHECK_PERMS, &cred, err, sizeof(err));
		cred_key = "client_secret";
	}
	if (r)
		return set_err(g, r, "%s", err);
	snprintf(scope, sizeof(scope), "%s/.default", cfg->graph_url);
	char *e_id = curl_easy_escape(g->curl, cfg->client_id, 0);
	char *e_cred = curl_easy_escape(g->curl, cred, 0);
	char *e_scope = curl_easy_escape(g->curl, scope, 0);
	ag_wipe(cred, strlen(cred));
	free(cred);
	if (!e_id || !e_cred || !e_scope ||
	    asprintf(form, "client_id=%s&scope=%s&grant_type=client_credentials&%s=%s", e_id,
		     e_scope, cred_key, e_cred) < 0) {
		*form = NULL;
		r = set_err(g, -ENOMEM, "out of memory");
	}
	if (e_cred) {
		ag_wipe(e_cred, strlen(e_cred));
		curl_free(e_cred);
	}
	curl_free(e_id);
	curl_free(e_scope);
	return r;
}

int graph_token(struct graph_client *g)
{
	const struct ag_config *cfg = g->cfg;
	char url[2048], *form = NULL, detail[768], code[128], why[128];
	struct response resp;
	int r;

	/* Even when the cached token spares reading it (SPEC §3). */
	r = ag_config_check_credential(cfg, detail, sizeof(detail));
	if (r)
		return set_err(g, r, "%s", detail);
	if (token_cache_load(g))
		return 0;
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", cfg->authority, cfg->tenant_id);
	for (unsigned attempt = 1;; attempt++) {
		/* A new assertion each attempt: its jti must not repeat. */
		r = token_form(g, url, &form);
		if (r)
			return r;
		r = perform(g, "POST", url, form, NULL, &resp);
		ag_wipe(form, strlen(form));
		free(form);
		form = NULL;
		if (r) {
			if (transient_curl_error(r) && attempt < max_attempts(g) &&
			    !backoff(g, "", attempt))
				continue;
			return r;
		}
		if (!retryable(resp.status) || attempt >= max_attempts(g) ||
		    backoff(g, resp.retry_after, attempt))
			break;
		free(resp.body.p);
	}
	if (resp.status != 200) {
		describe_error(&resp, detail, sizeof(detail));
		graph_error_code(&resp, code, sizeof(code));
		const char *hint = "";
		if (strstr(detail, "AADSTS90002"))
			hint = " (no such tenant: check tenant_id)";
		else if (strstr(detail, "AADSTS700016"))
			hint = " (no such application in the tenant: check client_id)";
		else if (strstr(detail, "AADSTS7000215"))
			hint = " (wrong client secret)";
		else if (strstr(detail, "AADSTS700027"))
			hint = " (the certificate is not registered for the application)";
		r = set_err(g, -EACCES, "token request to %s failed (HTTP %ld): %s%s",
			    cfg->authority, resp.status, detail, hint);
		free(resp.body.p);
		return r;
	}
	struct json_object *o = parse_json(&resp.body, why, sizeof(why)), *exp;
	const char *tok = jstr(o, "access_token");
	int64_t expires_in = 3599;
	if (o && json_object_object_get_ex(o, "expires_in", &exp))
		expires_in = json_object_get_int64(exp);
	if (expires_in <= 0 || expires_in > 86400)
		expires_in = 3599;
	if (!tok || !*tok) {
		r = set_err(g, -EBADMSG, "token response without access_token%s%s", o ? "" : ": ",
			    o ? "" : why);
	} else {
		free(g->token);
		g->token = strdup(tok);
		g->token_expires =
			mono_s() + (expires_in > 600 ? expires_in - 300 : expires_in / 2);
		g->token_from_cache = false;
		r = g->token ? 0 : -ENOMEM;
		if (!r)
			token_cache_save(g, expires_in);
	}
	json_object_put(o);
	ag_wipe(resp.body.p, resp.body.len);
	free(resp.body.p);
	return r;
}

/* A Graph call with the bearer token, retries and one token refresh on 401:
 * a GET, or a POST of a JSON body. */
static int graph_call(struct graph_client *g, const char *url, const char *json_body,
		      struct json_object **out)
{
	struct response resp;
	bool refreshed = false;
	char where[256], detail[768], code[128], why[128];
	int r;

	*out = NULL;
	url_for_log(url, where, sizeof(where));
	for (unsigned attempt = 1;; attempt++) {
		if (!g->token || mono_s() >= g->token_expires) {
			r = graph_token(g);
			if (r)
				return r;
		}
		char *auth = NULL;
		if (asprintf(&auth, "Authorization: Bearer %s", g->token) < 0)
			return set_err(g, -ENOMEM, "out of memory");
		struct curl_slist *h = curl_slist_append(NULL, auth);
		struct curl_slist *h2 = h ? curl_slist_append(h, "Accept: application/json") : NULL;
		if (h2 && json_body)
			h2 = curl_slist_append(h2, "Content-Type: application/json");
		/* Delta pages of up to 999 users instead of the default 100. */
		struct curl_slist *h3 =
			h2 && strstr(url, "/delta")
				? curl_slist_append(h2, "Prefer: odata.maxpagesize=999")
				: h2;
		ag_wipe(auth, strlen(auth));
		free(auth);
		if (!h3) {
			curl_slist_free_all(h);
			return set_err(g, -ENOMEM, "out of memory");
		}
		r = perform(g, json_body ? "POST" : "GET", url, json_body, h3, &resp);
		curl_slist_free_all(h3);
		if (r) {
			if (transient_curl_error(r) && attempt < max_attempts(g) &&
			    !backoff(g, "", attempt))
				continue;
			return r;
		}
		if (resp.status == 200) {
			*out = parse_json(&resp.body, why, sizeof(why));
			free(resp.body.p);
			if (*out && json_object_is_type(*out, json_type_object))
				return 0;
			json_object_put(*out);
			*out = NULL;
			/* A cut or garbled body is a transient fault like a dropped line. */
			if (attempt < max_attempts(g) && !backoff(g, "", attempt))
				continue;
			return set_err(g, -EBADMSG, "GET %s: %s", where,
				       why[0] ? why : "the answer is not a JSON object");
		}
		if (resp.status == 401 && !refreshed) {
			refreshed = true;
			free(g->token);
			g->token = NULL;
			g->skip_cache = true; /* a cached token the service no longer takes */
			free(resp.body.p);
			continue;
		}
		if (retryable(resp.status) && attempt < max_attempts(g)) {
			int b = backoff(g, resp.retry_after, attempt);
			if (!b) {
				free(resp.body.p);
				continue;
			}
		}
		describe_error(&resp, detail, sizeof(detail));
		graph_error_code(&resp, code, sizeof(code));
		if (strcmp(code, "Authorization_RequestDenied") == 0)
			r = set_err(
				g, -EACCES,
				"GET %s: HTTP %ld: %s (the application lacks a permission or admin "
				"consent: User.Read.All, and GroupMember.Read.All for allowed_groups)",
				where, resp.status, detail);
		else if (resp.status == 410 || strcasecmp(code, "syncStateNotFound") == 0)
			r = set_err(g, -ESTALE, "GET %s: HTTP %ld: %s", where, resp.status, detail);
		else
			r = set_err(g, resp.status == 404 ? -ENOENT : -EIO, "GET %s: HTTP %ld: %s",
				    where, resp.status, detail);
		g->last_status = resp.status;
		free(resp.body.p);
		return r;
	}
}

/* True when url lies under base (graph_url): the same scheme and host, case
 * aside, then base's path followed by '/', '?' or the end. The bearer token
 * goes only there. */
static bool url_under(const char *url, const char *base)
{
	const char *bh = strstr(base, "://"), *uh = strstr(url, "://");
	if (!bh || !uh || bh - base != uh - url || strncasecmp(url, base, (size_t)(bh - base)) != 0)
		return false;
	bh += 3;
	uh += 3;
	size_t bhost = strcspn(bh, "/"), uhost = strcspn(uh, "/?#");
	if (bhost != uhost || strncasecmp(bh, uh, bhost) != 0)
		return false;
	const char *bp = bh + bhost, *up = uh + uhost;
	size_t bl = strlen(bp);
	if (strncmp(up, bp, bl) != 0)
		return false;
	return up[bl] == '\0' || up[bl] == '/' || up[bl] == '?';
}

int graph_plain(struct graph_client *g, const char *url, const char *form, long *status,
		struct json_object **out)
{
	struct response resp;
	char why[128];
	int r;

	*out = NULL;
	*status = 0;
	for (unsigned attempt = 1;; attempt++) {
		struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
		if (!h)
			return set_err(g, -ENOMEM, "out of memory");
		r = perform(g, form ? "POST" : "GET", url, form, h, &resp);
		curl_slist_free_all(h);
		if (r) {
			if (transient_curl_error(r) && attempt < max_attempts(g) &&
			    !backoff(g, "", attempt))
				continue;
			return r;
		}
		if (retryable(resp.status) && attempt < max_attempts(g) &&
		    !backoff(g, resp.retry_after, attempt)) {
			free(resp.body.p);
			continue;
		}
		break;
	}
	*status = resp.status;
	*out = parse_json(&resp.body, why, sizeof(why));
	if (*out && !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
	}
	if (resp.body.p)
		ag_wipe(resp.body.p, resp.body.len);
	free(resp.body.p);
	g->last_status = resp.status;
	return 0;
}

char *graph_escape(struct graph_client *g, const char *s)
{
	return curl_easy_escape(g->curl, s, 0);
}

void graph_free_escaped(char *s)
{
	if (s)
		ag_wipe(s, strlen(s));
	curl_free(s);
}

int graph_get(struct graph_client *g, const char *url, struct json_object **out)
{
	return graph_call(g, url, NULL, out);
}

/* One POST /v1.0/$batch of the requests idx[0..n) of paths; each answer lands
 * at its index. *wait: the longest Retry-After among the items that were
 * throttled (empty when none said). */
static int batch_once(struct graph_client *g, char *const *paths, const size_t *idx, size_t n,
		      struct json_object **bodies, long *statuses, char *wait, size_t waitlen)
{
	struct json_object *req = json_object_new_object(), *arr = json_object_new_array(), *resp;
	char url[2048], id[24];
	bool seen[20] = { false }, answered[20] = { false };
	uint64_t longest = 0;
	int r;

	for (size_t k = 0; k < n; k++) {
		struct json_object *one = json_object_new_object();
		snprintf(id, sizeof(id), "%zu", idx[k]);
		json_object_object_add(one, "id", json_object_new_string(id));
		json_object_object_add(one, "method", json_object_new_string("GET"));
		json_object_object_add(one, "url", json_object_new_string(paths[idx[k]]));
		json_object_array_add(arr, one);
		seen[idx[k]] = true;
	}
	json_object_object_add(req, "requests", arr);
	snprintf(url, sizeof(url), "%s/v1.0/$batch", g->cfg->graph_url);
	r = graph_call(g, url,
		       json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE),
		       &resp);
	json_object_put(req);
	if (r)
		return r;
	struct json_object *list;
	if (!json_object_object_get_ex(resp, "responses", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		json_object_put(resp);
		return set_err(g, -EBADMSG, "POST /v1.0/$batch: no \"responses\" array");
	}
	wait[0] = '\0';
	for (size_t k = 0; k < json_object_array_length(list); k++) {
		struct json_object *one = json_object_array_get_idx(list, k), *v;
		const char *rid = jstr(one, "id");
		uint64_t i;
		/* Answers come in any order, matched by id; one per request asked. */
		if (!rid || ag_parse_u64(rid, 19, &i) || !seen[i] || answered[i])
			continue;
		answered[i] = true;
		if (json_object_object_get_ex(one, "status", &v))
			statuses[i] = (long)json_object_get_int64(v);
		if (json_object_object_get_ex(one, "body", &v) &&
		    json_object_is_type(v, json_type_object))
			bodies[i] = json_object_get(v);
		struct json_object *h;
		if (!retryable(statuses[i]) || !json_object_object_get_ex(one, "headers", &h) ||
		    !json_object_is_type(h, json_type_object))
			continue;
		json_object_object_foreach(h, key, val)
		{
			uint64_t secs;
			if (strcasecmp(key, "Retry-After") == 0 &&
			    json_object_is_type(val, json_type_string) &&
			    ag_parse_u64(json_object_get_string(val), UINT32_MAX, &secs) == 0 &&
			    (!wait[0] || secs > longest)) {
				longest = secs;
				snprintf(wait, waitlen, "%llu", (unsigned long long)secs);
			}
		}
	}
	json_object_put(resp);
	return 0;
}

int graph_batch_get(struct graph_client *g, char *const *paths, size_t n,
		    struct json_object **bodies, long *statuses)
{
	size_t pending[20], np = 0;
	char wait[64];

	if (n > 20)
		return set_err(g, -EINVAL, "a $batch holds at most 20 requests");
	for (size_t i = 0; i < n; i++) {
		bodies[i] = NULL;
		statuses[i] = 0;
		pending[np++] = i;
	}
	/* Items throttled (429) or failing transiently are asked again, alone in a
	 * smaller batch, after the longest Retry-After their own headers gave. */
	for (unsigned attempt = 1; np; attempt++) {
		int r = batch_once(g, paths, pending, np, bodies, statuses, wait, sizeof(wait));
		if (r)
			return r;
		size_t again = 0;
		for (size_t k = 0; k < np; k++)
			if (retryable(statuses[pending[k]]))
				pending[again++] = pending[k];
		if (!again || attempt >= max_attempts(g) || backoff(g, wait, attempt))
			break; /* what is left carries its last answer: the caller's to retry */
		for (size_t k = 0; k < again; k++) {
			json_object_put(bodies[pending[k]]);
			bodies[pending[k]] = NULL;
			statuses[pending[k]] = 0;
		}
		np = again;
	}
	g->err[0] = '\0';
	return 0;
}

int graph_get_all(struct graph_client *g, const char *first_url, graph_item_cb cb, void *ctx,
		  char **delta_link)
{
	char *url;
	unsigned pages = 0;
	int r = 0;

	if (!url_under(first_url, g->cfg->graph_url))
		return set_err(g, -EINVAL, "refusing to send the token outside graph_url");
	url = strdup(first_url);
	if (!url)
		return set_err(g, -ENOMEM, "out of memory");
	while (url) {
		struct json_object *page, *value;
		char where[256];
		url_for_log(url, where, sizeof(where));
		r = graph_get(g, url, &page);
		free(url);
		url = NULL;
		if (r)
			break;
		if (!json_object_object_get_ex(page, "value", &value) ||
		    !json_object_is_type(value, json_type_array)) {
			json_object_put(page);
			r = set_err(g, -EBADMSG, "GET %s: page without a \"value\" array", where);
			break;
		}
		size_t n = json_object_array_length(value);
		for (size_t i = 0; i < n && !r && cb; i++)
			r = cb(json_object_array_get_idx(value, i), ctx);
		g->pages++;
		const char *next = jstr(page, "@odata.nextLink");
		const char *dl = jstr(page, "@odata.deltaLink");
		if (!r && !next && dl && delta_link) {
			free(*delta_link);
			*delta_link = strdup(dl);
			if (!*delta_link)
				r = set_err(g, -ENOMEM, "out of memory");
		}
		if (!r && dl && delta_link && !url_under(dl, g->cfg->graph_url))
			r = set_err(g, -EBADMSG, "GET %s: @odata.deltaLink leaves graph_url",
				    where);
		if (!r && next) {
			/* The bearer token goes wherever the link points: only to graph_url. */
			if (!url_under(next, g->cfg->graph_url))
				r = set_err(g, -EBADMSG, "GET %s: @odata.nextLink leaves graph_url",
					    where);
			else {
				url = strdup(next);
				if (!url)
					r = set_err(g, -ENOMEM, "out of memory");
			}
		}
		json_object_put(page);
		pages++;
		if (r)
			break;
		if (pages > 1000000) {
			r = set_err(g, -ELOOP, "GET %s: more than a million pages", where);
			break;
		}
	}
	free(url);
	return r;
}

static int opt_string(struct json_object *o, const char *key, const char **out, const char **why)
{
	struct json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		*why = key;
		return -EBADMSG;
	}
	*out = json_object_get_string(v);
	return 0;
}

static int opt_time(struct json_object *o, const char *key, int64_t *out, const char **why)
{
	const char *s;
	*out = AG_TIME_UNKNOWN;
	if (opt_string(o, key, &s, why))
		return -EBADMSG;
	if (s && ag_parse_rfc3339(s, out)) {
		*why = key;
		return -EBADMSG;
	}
	return 0;
}

/* Object ids are GUIDs: anything else is refused before it reaches a URL, a
 * file or a home directory template. */
static bool is_object_id(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;
	for (i = 0; pat[i]; i++) {
		char c = s[i];
		bool hex =
			(c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		if (pat[i] == '-' ? c != '-' : !hex)
			return false;
	}
	return s[i] == '\0';
}

int graph_user_parse(struct json_object *o, struct graph_user *u, const char **why)
{
	struct json_object *v;
	memset(u, 0, sizeof(*u));
	u->created_at = u->deleted_at = AG_TIME_UNKNOWN;
	if (!json_object_is_type(o, json_type_object)) {
		*why = "not an object";
		return -EBADMSG;
	}
	if (opt_string(o, "id", &u->id, why) || !u->id || !is_object_id(u->id)) {
		*why = "id";
		return -EBADMSG;
	}
	if (json_object_object_get_ex(o, "@removed", &v)) {
		u->removed = true;
		if (json_object_is_type(v, json_type_object))
			opt_string(v, "reason", &u->removed_reason, why);
		return 0;
	}
	static const struct {
		const char *key;
		unsigned bit;
	} props[] = { { "displayName", GU_DISPLAY },	{ "mail", GU_MAIL },
		      { "otherMails", GU_OTHER },	{ "userPrincipalName", GU_UPN },
		      { "userType", GU_TYPE },		{ "externalUserState", GU_EXTSTATE },
		      { "accountEnabled", GU_ENABLED }, { "createdDateTime", GU_CREATED },
		      { "deletedDateTime", GU_DELETED } };
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (json_object_object_get_ex(o, props[i].key, NULL))
			u->present |= props[i].bit;
	if (opt_string(o, "displayName", &u->display_name, why) ||
	    opt_string(o, "mail", &u->mail, why) ||
	    opt_string(o, "userPrincipalName", &u->upn, why) ||
	    opt_string(o, "userType", &u->user_type, why) ||
	    opt_string(o, "externalUserState", &u->external_state, why) ||
	    opt_time(o, "createdDateTime", &u->created_at, why) ||
	    opt_time(o, "deletedDateTime", &u->deleted_at, why))
		return -EBADMSG;
	if (json_object_object_get_ex(o, "otherMails", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_array)) {
			*why = "otherMails";
			return -EBADMSG;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *m = json_object_array_get_idx(v, i);
			if (!json_object_is_type(m, json_type_string)) {
				*why = "otherMails";
				return -EBADMSG;
			}
			if (!u->other_mail)
				u->other_mail = json_object_get_string(m);
		}
	}
	if (json_object_object_get_ex(o, "accountEnabled", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			*why = "accountEnabled";
			return -EBADMSG;
		}
		u->account_enabled = json_object_get_boolean(v);
		u->enabled_known = true;
	}
	return 0;
}
