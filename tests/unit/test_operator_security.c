/*
 * esim-operator's trust boundary towards the browser and the disk, in
 * process through op_http (no sockets) on SQLite:
 *  - the identity copy: only JPEG, PNG and PDF, judged by the content; an
 *    HTML page, an SVG, a program, or a JPEG that claims to be text/html is
 *    refused with a 400 that names the problem, and nothing is stored;
 *  - staff get the copy only as an attachment with nosniff and its checked
 *    type, images through a view route under "default-src 'none'; sandbox",
 *    PDFs never inline;
 *  - every answer (static file, JSON, 401, 404, 405) carries the CSP with
 *    frame-ancestors 'none' and the other security headers, and so do the
 *    server's own answers (an unknown path, a wrong method, a malformed
 *    request, a body over the cap) on a real net_server listener made as
 *    esim-operator serve makes it (op_add_portal);
 *  - erasure at close is final: no byte of the copy, its ciphertext or its
 *    per-case key is left in op.db, op.db-wal, op.db-shm or op.db-journal;
 *  - esim-operator add-customer / add-staff refuse a password argument and
 *    take it from stdin.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "esim/net.h"
#include "esim/operator.h"
#include "esim/store.h"
#include "testutil.h"

struct fx {
	char *dir;
	char db[512];
	op *o;
	time_t clock;
	char cookie[128];
	char csrf[80];
};

static time_t fake_now(void *arg)
{
	return ((struct fx *)arg)->clock;
}

static void open_op(struct fx *f)
{
	char dk[600];
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.data_key_file = dk,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	f->dir = test_mkdtemp();
	f->clock = 1790000000;
	snprintf(f->db, sizeof f->db, "%s/op.db", f->dir);
	open_op(f);
	assert_esim(ESIM_OK, op_seed_demo(f->o));
	write_text(f->dir, "index.html", "<!DOCTYPE html><title>portal</title>");
	write_text(f->dir, "app.js", "'use strict';\n");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	op_close(f->o);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* One request; the whole response is kept in *resp (caller clears). */
static int request(struct fx *f, const char *method, const char *path, const char *query,
		   const char *body, net_response *resp)
{
	struct net_header h[2];
	size_t nh = 0;
	if (f->cookie[0])
		h[nh++] = (struct net_header){"Cookie", f->cookie};
	if (f->csrf[0])
		h[nh++] = (struct net_header){"X-CSRF-Token", f->csrf};
	net_request req = {.method = method,
			   .path = path,
			   .query = query,
			   .headers = h,
			   .n_headers = nh,
			   .body = (const uint8_t *)body,
			   .body_len = body ? strlen(body) : 0,
			   .peer_addr = "192.0.2.9"};
	net_response_init(resp);
	assert_esim(ESIM_OK, op_http(&req, resp, f->o));
	return resp->status;
}

static const char *header(const net_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

/* for assert_string_equal, which must not get NULL */
static const char *header_or_none(const net_response *r, const char *name)
{
	const char *v = header(r, name);
	return v ? v : "(none)";
}

/* status, and the JSON body's "message" (or "") copied to msg */
static int call(struct fx *f, const char *method, const char *path, const char *query,
		const char *body, char *msg, size_t mn, json_t **out)
{
	net_response r;
	int st = request(f, method, path, query, body, &r);
	json_t *j = r.body.len ? json_loadb((const char *)r.body.data, r.body.len, 0, NULL) : NULL;
	if (msg)
		snprintf(msg, mn, "%s",
			 j ? (json_string_value(json_object_get(j, "message"))
				  ? json_string_value(json_object_get(j, "message"))
				  : "")
			   : "");
	if (!strcmp(path, "/api/login") || !strcmp(path, "/api/staff/login")) {
		const char *sc = header(&r, "Set-Cookie");
		if (sc)
			snprintf(f->cookie, sizeof f->cookie, "%.*s", (int)strcspn(sc, ";"), sc);
	}
	if (out)
		*out = j;
	else
		json_decref(j);
	net_response_clear(&r);
	return st;
}

static void login(struct fx *f, bool staff, const char *user, const char *pw)
{
	char b[256];
	snprintf(b, sizeof b, "{\"login\":\"%s\",\"password\":\"%s\"}", user, pw);
	f->cookie[0] = f->csrf[0] = '\0';
	json_t *j;
	assert_int_equal(
	    200, call(f, "POST", staff ? "/api/staff/login" : "/api/login", NULL, b, NULL, 0, &j));
	snprintf(f->csrf, sizeof f->csrf, "%s", json_string_value(json_object_get(j, "csrf")));
	json_decref(j);
}

static void as_jan(struct fx *f)
{
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
}

static void as_reviewer(struct fx *f)
{
	login(f, true, "reviewer", "review-demo-2026");
}

/* A fresh line for Jan (one open case per line). */
static int64_t new_line(struct fx *f)
{
	static int n;
	char msisdn[32];
	snprintf(msisdn, sizeof msisdn, "+3247500000%d", n++);
	int64_t id = 0;
	assert_esim(ESIM_OK, op_add_line(f->o, 1, msisdn, NULL, "Mobile 5 GB", false, &id));
	return id;
}

/* POST /api/cases with this copy; mime NULL: no document_mime. */
static int submit(struct fx *f, int64_t line, const uint8_t *doc, size_t n, const char *mime,
		  char *msg, size_t mn, int64_t *case_id)
{
	char *b64;
	assert_esim(ESIM_OK, esim_base64_encode(doc, n, &b64));
	json_t *b = json_pack("{s:I,s:s,s:s,s:s,s:s}", "line_id", (json_int_t)line, "reason",
			      "moving abroad", "document_type", "passport", "document_number",
			      "EH123456", "document_copy", b64);
	if (mime)
		json_object_set_new(b, "document_mime", json_string(mime));
	char *text = json_dumps(b, JSON_COMPACT);
	json_t *j = NULL;
	int st = call(f, "POST", "/api/cases", NULL, text, msg, mn, &j);
	if (case_id)
		*case_id = json_integer_value(json_object_get(json_object_get(j, "case"), "id"));
	json_decref(j);
	free(text);
	json_decref(b);
	free(b64);
	return st;
}

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const char HTML[] = "<!DOCTYPE html><html><body><script>fetch('/api/me').then(r=>r.json())"
			   ".then(m=>fetch('/api/staff/case/approve',{method:'POST',headers:{'X-"
			   "CSRF-Token':m.csrf},body:'{\"case_id\":1}'}))</script></body></html>";
static const char SVG[] = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\">"
			  "<script>alert(document.domain)</script></svg>";
static const char EXE[] = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
			  "This program cannot be run in DOS mode.";
static const char JPEG[] = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00"
			   "\x00\xff\xd9";
static const char PNG[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01"
			  "\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x00IEND\xae\x42\x60\x82";
static const char PDF[] = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type"
			  "/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

static int64_t count_cases(struct fx *f)
{
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/cases", NULL, NULL, NULL, 0, &j));
	int64_t n = (int64_t)json_array_size(json_object_get(j, "cases"));
	json_decref(j);
	return n;
}

/* ---- what may be uploaded ------------------------------------------------------ */

static void test_upload_refused(void **state)
{
	struct fx *f = *state;
	as_jan(f);
	int64_t line = new_line(f);
	char msg[300];
	struct {
		const uint8_t *p;
		size_t n;
		const char *mime, *names;
	} bad[] = {
	    {S(HTML), "text/html", "HTML"},
	    {S(SVG), "image/svg+xml", "SVG"},
	    {S(EXE), "application/x-msdownload", "executable"},
	    {S(HTML), "image/png", "HTML"},	 /* a false claim does not help */
	    {S(SVG), NULL, "SVG"},		 /* nor does no claim at all */
	    {S(JPEG), "text/html", "text/html"}, /* real JPEG, declared as HTML */
	    {S(PNG), "image/jpeg", "image/png"}, /* types that disagree */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    400, submit(f, line, bad[i].p, bad[i].n, bad[i].mime, msg, sizeof msg, NULL));
		if (!strstr(msg, bad[i].names))
			fail_msg("refusal %zu does not name the problem (%s): %s", i, bad[i].names,
				 msg);
	}
	assert_non_null(strstr(msg, "document_mime says image/jpeg"));
	/* nothing was stored for any of them */
	assert_int_equal(0, count_cases(f));
	/* the same holds for a new copy given as an answer */
	int64_t cs;
	assert_int_equal(201, submit(f, line, S(PNG), "image/png", msg, sizeof msg, &cs));
	as_reviewer(f);
	char b[200];
	snprintf(b, sizeof b, "{\"case_id\":%lld,\"message\":\"better photo\"}", (long long)cs);
	assert_int_equal(200,
			 call(f, "POST", "/api/staff/case/request-info", NULL, b, NULL, 0, NULL));
	as_jan(f);
	char *b64;
	assert_esim(ESIM_OK, esim_base64_encode(S(HTML), &b64));
	char rb[1024];
	snprintf(rb, sizeof rb,
		 "{\"case_id\":%lld,\"message\":\"here\",\"document_copy\":\"%s\","
		 "\"document_mime\":\"image/jpeg\"}",
		 (long long)cs, b64);
	free(b64);
	assert_int_equal(400,
			 call(f, "POST", "/api/case/respond", NULL, rb, msg, sizeof msg, NULL));
	assert_non_null(strstr(msg, "HTML"));
	json_t *j;
	char q[32];
	snprintf(q, sizeof q, "id=%lld", (long long)cs);
	assert_int_equal(200, call(f, "GET", "/api/case", q, NULL, NULL, 0, &j));
	assert_string_equal(
	    "needs_info", json_string_value(json_object_get(json_object_get(j, "case"), "state")));
	json_decref(j);
	/* the copy on file is still the PNG */
	as_reviewer(f);
	net_response r;
	assert_int_equal(200, request(f, "GET", "/api/staff/document", q, NULL, &r));
	assert_int_equal(sizeof PNG - 1, r.body.len);
	assert_memory_equal(PNG, r.body.data, r.body.len);
	net_response_clear(&r);
}

static void test_upload_accepted_and_served(void **state)
{
	struct fx *f = *state;
	struct {
		const uint8_t *p;
		size_t n;
		const char *declared, *type, *ext;
		bool image;
	} good[] = {
	    {S(JPEG), "image/jpeg", "image/jpeg", "jpg", true},
	    {S(PNG), NULL, "image/png", "png", true},
	    {S(PDF), "application/pdf", "application/pdf", "pdf", false},
	};
	for (size_t i = 0; i < 3; i++) {
		as_jan(f);
		int64_t cs;
		char msg[300];
		assert_int_equal(201, submit(f, new_line(f), good[i].p, good[i].n, good[i].declared,
					     msg, sizeof msg, &cs));
		as_reviewer(f);
		char q[32];
		snprintf(q, sizeof q, "id=%lld", (long long)cs);
		json_t *j;
		assert_int_equal(200, call(f, "GET", "/api/staff/case", q, NULL, NULL, 0, &j));
		const char *dm =
		    json_string_value(json_object_get(json_object_get(j, "case"), "document_mime"));
		assert_non_null(dm);
		assert_string_equal(good[i].type, dm);
		json_decref(j);
		/* the download: attachment, nosniff, the checked type, intact */
		net_response r;
		assert_int_equal(200, request(f, "GET", "/api/staff/document", q, NULL, &r));
		assert_non_null(r.content_type);
		assert_string_equal(good[i].type, r.content_type);
		const char *cd = header(&r, "Content-Disposition");
		assert_non_null(cd);
		assert_true(!strncmp(cd, "attachment;", 11));
		assert_non_null(strstr(cd, good[i].ext));
		assert_string_equal("nosniff", header_or_none(&r, "X-Content-Type-Options"));
		assert_int_equal(good[i].n, r.body.len);
		assert_memory_equal(good[i].p, r.body.data, r.body.len);
		net_response_clear(&r);
		/* the image view: a sandbox that runs nothing; a PDF is never inline */
		int st = request(f, "GET", "/api/staff/document/view", q, NULL, &r);
		if (good[i].image) {
			assert_int_equal(200, st);
			assert_string_equal(good[i].type, r.content_type);
			assert_string_equal("default-src 'none'; sandbox; frame-ancestors 'none'",
					    header_or_none(&r, "Content-Security-Policy"));
			assert_string_equal("nosniff",
					    header_or_none(&r, "X-Content-Type-Options"));
			assert_int_equal(good[i].n, r.body.len);
		} else {
			assert_int_equal(415, st);
			assert_false(r.content_type && strstr(r.content_type, "pdf"));
		}
		net_response_clear(&r);
	}
	/* customers cannot reach either route */
	as_jan(f);
	net_response r;
	assert_int_equal(403, request(f, "GET", "/api/staff/document/view", "id=1", NULL, &r));
	net_response_clear(&r);
}

/* ---- headers on every answer ------------------------------------------------------ */

static void assert_security_headers(const net_response *r, const char *what)
{
	const char *csp = header(r, "Content-Security-Policy");
	if (!csp || !strstr(csp, "default-src 'self'") || !strstr(csp, "frame-ancestors 'none'") ||
	    !strstr(csp, "script-src 'self'") || !strstr(csp, "style-src 'self'") ||
	    strstr(csp, "unsafe-inline") || strstr(csp, "unsafe-eval"))
		fail_msg("%s: Content-Security-Policy missing or weak: %s", what,
			 csp ? csp : "(none)");
	const char *want[][2] = {{"X-Content-Type-Options", "nosniff"},
				 {"X-Frame-Options", "DENY"},
				 {"Referrer-Policy", "no-referrer"},
				 {"Cross-Origin-Opener-Policy", "same-origin"}};
	for (size_t i = 0; i < 4; i++) {
		const char *v = header(r, want[i][0]);
		if (!v || strcmp(v, want[i][1]) != 0)
			fail_msg("%s: %s is %s, not %s", what, want[i][0], v ? v : "(none)",
				 want[i][1]);
	}
	const char *pp = header(r, "Permissions-Policy");
	if (!pp || !strstr(pp, "camera=()"))
		fail_msg("%s: Permissions-Policy missing", what);
	/* one of each, not a second, laxer copy */
	size_t n = 0;
	for (size_t i = 0; i < r->n_headers; i++)
		n += !strcasecmp(r->headers[i].name, "Content-Security-Policy");
	if (n != 1)
		fail_msg("%s: %zu Content-Security-Policy headers", what, n);
}

static void test_headers_everywhere(void **state)
{
	struct fx *f = *state;
	struct {
		const char *method, *path, *query, *body;
		int status;
		bool login;
	} reqs[] = {
	    {"GET", "/", NULL, NULL, 200, false},
	    {"GET", "/static/app.js", NULL, NULL, 200, false},
	    {"GET", "/static/missing.js", NULL, NULL, 404, false},
	    {"GET", "/api/account", NULL, NULL, 401, false},
	    {"GET", "/api/no-such-endpoint", NULL, NULL, 404, false},
	    {"PUT", "/api/account", NULL, NULL, 405, false},
	    {"POST", "/api/login", NULL, "not json", 400, false},
	    {"GET", "/api/me", NULL, NULL, 200, true},
	    {"GET", "/api/account", NULL, NULL, 200, true},
	    {"GET", "/api/case", "id=999", NULL, 404, true},
	    {"GET", "/api/staff/queue", NULL, NULL, 403, true},
	};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		if (reqs[i].login && !f->cookie[0])
			as_jan(f);
		net_response r;
		char what[96];
		snprintf(what, sizeof what, "%s %s", reqs[i].method, reqs[i].path);
		int st = request(f, reqs[i].method, reqs[i].path, reqs[i].query, reqs[i].body, &r);
		if (st != reqs[i].status)
			fail_msg("%s: status %d, expected %d", what, st, reqs[i].status);
		assert_security_headers(&r, what);
		net_response_clear(&r);
	}
}

/* One raw request to 127.0.0.1:port; the answer's status and headers
 * parsed into *r (caller clears). */
static int raw_request(uint16_t port, const char *text, net_response *r)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
	static char buf[16384];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof buf - 1 && (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	net_response_init(r);
	int status = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		fail_msg("no HTTP answer to %.40s: %.80s", text, buf);
	r->status = status;
	char *end = strstr(buf, "\r\n\r\n");
	assert_non_null(end);
	*end = '\0';
	char *save = NULL;
	strtok_r(buf, "\r\n", &save); /* the status line */
	for (char *line; (line = strtok_r(NULL, "\r\n", &save)) != NULL;) {
		char *colon = strchr(line, ':');
		assert_non_null(colon);
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		assert_esim(ESIM_OK, net_response_add_header(r, line, v));
	}
	return status;
}

/* The server's own answers on the portal's listener, as esim-operator serve
 * makes it: no handler of ours runs for these, net_server answers. */
static void test_headers_on_server_answers(void **state)
{
	struct fx *f = *state;
	net_server *srv = NULL;
	struct net_server_config sc = {.threads = 1, .max_body = 4096};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int id = -1;
	assert_esim(ESIM_OK, op_add_portal(f->o, srv, &lc, &id));
	assert_esim(ESIM_OK, net_server_start(srv));
	uint16_t port = net_server_port(srv, id);
	struct {
		const char *text;
		int status;
	} reqs[] = {
	    /* the portal's own answer through the listener: headers once */
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200},
	    /* paths no route knows, and a known path with another method */
	    {"GET /no/such/page HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 404},
	    {"GET /api/no-such-endpoint HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 404},
	    {"DELETE /api/account HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 405},
	    /* answered by evhttp itself */
	    {"NOT A REQUEST\r\n\r\n", 400},
	    {"POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n", 413},
	};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		net_response r;
		char what[64];
		snprintf(what, sizeof what, "%.*s", (int)strcspn(reqs[i].text, "\r"), reqs[i].text);
		int st = raw_request(port, reqs[i].text, &r);
		if (st != reqs[i].status)
			fail_msg("%s: status %d, expected %d", what, st, reqs[i].status);
		assert_security_headers(&r, what);
		net_response_clear(&r);
	}
	net_server_free(srv);
}

/* ---- erasure ------------------------------------------------------------------------- */

static bool file_has(const char *path, const uint8_t *needle, size_t n)
{
	size_t len = 0;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return false;
	fclose(fp);
	uint8_t *p = test_read(path, &len);
	bool hit = false;
	for (size_t i = 0; !hit && len >= n && i <= len - n; i++)
		hit = p[i] == needle[0] && memcmp(p + i, needle, n) == 0;
	free(p);
	return hit;
}

/* Any 32-byte piece of b (taken every 509 bytes, so pieces on every page
 * of a multi-page value are looked for) in any of the database's files. */
static const char *db_has(struct fx *f, const uint8_t *b, size_t n)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	static char hit[700];
	for (size_t s = 0; s < 4; s++) {
		snprintf(hit, sizeof hit, "%s%s", f->db, sfx[s]);
		size_t piece = n < 32 ? n : 32;
		for (size_t off = 0; off + piece <= n; off += 509)
			if (file_has(hit, b + off, piece))
				return hit;
	}
	return NULL;
}

static void test_erasure_is_final(void **state)
{
	struct fx *f = *state;
	/* a 60 KiB "JPEG" of random bytes: no chance of a false hit, and it
	 * spans many overflow pages */
	size_t n = 60 * 1024;
	uint8_t *doc = malloc(n);
	randombytes_buf(doc, n);
	memcpy(doc, "\xff\xd8\xff\xe0", 4);
	as_jan(f);
	int64_t cs;
	char msg[300];
	assert_int_equal(201, submit(f, new_line(f), doc, n, "image/jpeg", msg, sizeof msg, &cs));
	/* what is on disk while the case is open: the ciphertext and the
	 * wrapped case key, which opens with the data key */
	store *s;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(s,
				  "SELECT c.doc_cipher, k.wrapped, k.nonce, c.doc_nonce"
				  " FROM op_cases c"
				  " JOIN op_case_keys k ON k.case_id = c.id WHERE c.id = ?1",
				  &st));
	store_bind_int64(st, 1, cs);
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	size_t cl, wl, nl;
	const uint8_t *c0 = store_col_blob(st, 0, &cl), *w0 = store_col_blob(st, 1, &wl),
		      *n0 = store_col_blob(st, 2, &nl);
	assert_int_equal(n + crypto_secretbox_MACBYTES, cl);
	assert_int_equal(crypto_secretbox_KEYBYTES + crypto_secretbox_MACBYTES, wl);
	uint8_t *ct = malloc(cl), wrapped[64], key[crypto_secretbox_KEYBYTES],
		dnonce[crypto_secretbox_NONCEBYTES];
	memcpy(ct, c0, cl);
	assert_int_equal(sizeof dnonce, (store_col_blob(st, 3, &nl), nl));
	memcpy(dnonce, store_col_blob(st, 3, &nl), sizeof dnonce);
	memcpy(wrapped, w0, wl);
	char dkp[600];
	snprintf(dkp, sizeof dkp, "%s/data.key", f->dir);
	size_t dkl;
	uint8_t *dk = test_read(dkp, &dkl);
	assert_int_equal(32, dkl);
	assert_int_equal(0, crypto_secretbox_open_easy(key, w0, wl, n0, dk));
	free(dk);
	store_finalize(st);
	store_close(s);
	/* the copy is sealed under the case key */
	uint8_t *pt = malloc(n);
	assert_int_equal(0, crypto_secretbox_open_easy(pt, ct, cl, dnonce, key));
	assert_memory_equal(doc, pt, n);
	free(pt);
	/* the search finds them while the case is open (so that it can fail) */
	assert_non_null(db_has(f, ct, cl));
	assert_non_null(db_has(f, wrapped, wl));
	/* approval closes the case at once (the line never had a profile) */
	assert_esim(ESIM_OK, op_set_setting(f->o, "final_invoice_policy", 1));
	as_reviewer(f);
	char b[64], q[32];
	snprintf(b, sizeof b, "{\"case_id\":%lld}", (long long)cs);
	snprintf(q, sizeof q, "id=%lld", (long long)cs);
	assert_int_equal(200, call(f, "POST", "/api/staff/case/approve", NULL, b, NULL, 0, NULL));
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/staff/case", q, NULL, NULL, 0, &j));
	assert_string_equal(
	    "closed", json_string_value(json_object_get(json_object_get(j, "case"), "state")));
	json_decref(j);
	assert_int_equal(404, call(f, "GET", "/api/staff/document", q, NULL, NULL, 0, NULL));
	/* with the service still running (the WAL still open): nothing left */
	const char *where;
	if ((where = db_has(f, doc, n)))
		fail_msg("the plaintext copy is still in %s", where);
	if ((where = db_has(f, ct, cl)))
		fail_msg("the copy's ciphertext is still in %s", where);
	if ((where = db_has(f, key, sizeof key)))
		fail_msg("the case key is still in %s", where);
	if ((where = db_has(f, wrapped, wl)))
		fail_msg("the wrapped case key is still in %s", where);
	sodium_memzero(key, sizeof key);
	free(ct);
	free(doc);
}

/* A rejected case's copy goes the same way. */
static void test_erasure_on_reject(void **state)
{
	struct fx *f = *state;
	size_t n = 20 * 1024;
	uint8_t *doc = malloc(n);
	randombytes_buf(doc, n);
	memcpy(doc, "\x89PNG\r\n\x1a\n", 8);
	as_jan(f);
	int64_t cs;
	char msg[300];
	assert_int_equal(201, submit(f, new_line(f), doc, n, NULL, msg, sizeof msg, &cs));
	store *s;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(s, "SELECT doc_cipher FROM op_cases WHERE id = ?1", &st));
	store_bind_int64(st, 1, cs);
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	size_t cl;
	const uint8_t *c0 = store_col_blob(st, 0, &cl);
	uint8_t *ct = malloc(cl);
	memcpy(ct, c0, cl);
	store_finalize(st);
	store_close(s);
	assert_non_null(db_has(f, ct, cl));
	as_reviewer(f);
	char b[128];
	snprintf(b, sizeof b, "{\"case_id\":%lld,\"reason\":\"blurred\"}", (long long)cs);
	assert_int_equal(200, call(f, "POST", "/api/staff/case/reject", NULL, b, NULL, 0, NULL));
	const char *where = db_has(f, ct, cl);
	if (where)
		fail_msg("the rejected copy's ciphertext is still in %s", where);
	free(ct);
	free(doc);
}

/* ---- passwords never on a command line ------------------------------------------------ */

static int run(const char *cmd, char *out, size_t n)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t got = fread(out, 1, n - 1, p);
	out[got] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_password_not_in_argv(void **state)
{
	struct fx *f = *state;
	char db[480], cmd[2000], out[4096];
	snprintf(db, sizeof db, "%s/cli.db", f->dir);
	const char *bin = test_bin_dir();
	const char *refused[] = {
	    "add-customer ann@example.be s3cret-pass 'Ann' 'Street 1'",
	    "add-customer ann@example.be s3cret-pass 'Ann' 'Street 1' +32470111111 'Mobile 5 GB'",
	    "add-customer ann@example.be 'Ann' 'Street 1' --password s3cret-pass",
	    "add-staff rita s3cret-pass reviewer",
	    "add-staff rita reviewer --password s3cret-pass",
	};
	for (size_t i = 0; i < 5; i++) {
		snprintf(cmd, sizeof cmd, "%s/esim-operator %s --db %s </dev/null 2>&1", bin,
			 refused[i], db);
		int rc = run(cmd, out, sizeof out);
		if (rc == 0 || !strstr(out, "password on the command line is refused") ||
		    !strstr(out, "stdin"))
			fail_msg("not refused (rc %d): %s\n%s", rc, refused[i], out);
	}
	/* nothing was created by the refused commands */
	FILE *fp = fopen(db, "rb");
	assert_null(fp);
	/* from stdin it works, and the password is the one given */
	snprintf(cmd, sizeof cmd,
		 "printf 'ann-pass-2026\\n' | %s/esim-operator add-customer ann@example.be 'Ann"
		 " Example' 'Street 1' --db %s 2>&1",
		 bin, db);
	assert_int_equal(0, run(cmd, out, sizeof out));
	snprintf(
	    cmd, sizeof cmd,
	    "printf 'rita-pass-2026\\n' | %s/esim-operator add-staff rita reviewer --db %s 2>&1",
	    bin, db);
	assert_int_equal(0, run(cmd, out, sizeof out));
	/* an empty or short one is refused */
	snprintf(cmd, sizeof cmd,
		 "printf 'short\\n' | %s/esim-operator add-staff tom reviewer --db %s 2>&1", bin,
		 db);
	assert_int_equal(1, run(cmd, out, sizeof out));
	assert_non_null(strstr(out, "at least 8"));
	op_close(f->o);
	snprintf(f->db, sizeof f->db, "%s", db);
	open_op(f);
	login(f, false, "ann@example.be", "ann-pass-2026");
	login(f, true, "rita", "rita-pass-2026");
	assert_int_equal(401, call(f, "POST", "/api/staff/login", NULL,
				   "{\"login\":\"tom\",\"password\":\"short\"}", NULL, 0, NULL));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_upload_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_accepted_and_served, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers_everywhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers_on_server_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_erasure_is_final, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_erasure_on_reject, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_password_not_in_argv, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
