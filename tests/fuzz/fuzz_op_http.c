/*
 * Fuzz target for the operator's portal: its JSON API, query strings,
 * cookies and the identity-copy upload (src/operator/http.c and
 * document.c, in front of the lines and termination cases of SGP.22 5.3
 * that docs/operator-api.md describes). Whoever reaches the portal can send
 * these; a logged-in customer or staff member still sends untrusted bodies.
 *
 * One operator handle for the process, on an in-memory SQLite store with
 * the demo's customers, staff, lines and invoices and the cheapest
 * password hashing; the harness logs in once as Jan (customer), reviewer
 * and admin (staff), so inputs carry real session cookies and CSRF tokens
 * and reach the authenticated handlers. State stays across inputs, as on a
 * running server (cases submitted by one input are reviewed by the next);
 * a logout of a harness session logs in again, and every RESET_EVERY inputs
 * the handle is opened afresh so the store stays small. The clock stands
 * still, so sessions never expire.
 *
 * Input: [route:1][flags:1] then parts separated by 0x00: query, body (and
 * first, with flag bit 3, the Cookie header's value).
 *  route % N: one of the API routes, "/", "/staff", "/static/<query>" or a
 *  path no route has; bit 7 swaps GET and POST (405s).
 *  flags bits 0-1: no session, Jan, reviewer, admin; bit 2: no (or a
 *  wrong) X-CSRF-Token; bit 3: Cookie from the input; bits 4-5: peer address.
 * Checked: op_http answers every request (no error return) with a status
 * in 200..599, a well-formed JSON body on /api paths, and the security
 * headers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "esim/operator.h"
#include "esim/store.h"
#include "operator/op_int.h"
#include "fuzz_asan_options.h"

#define RESET_EVERY 20000

static op *O;
static unsigned long inputs;

static const struct {
	const char *method, *path;
} routes[] = {
    {"POST", "/api/login"},
    {"POST", "/api/staff/login"},
    {"POST", "/api/logout"},
    {"GET", "/api/me"},
    {"GET", "/api/account"},
    {"POST", "/api/invoices/pay"},
    {"GET", "/api/lines/precheck"},
    {"POST", "/api/cases"},
    {"GET", "/api/cases"},
    {"GET", "/api/case"},
    {"POST", "/api/case/respond"},
    {"GET", "/api/case/record"},
    {"GET", "/api/case/record.html"},
    {"POST", "/api/reference/check"},
    {"GET", "/api/staff/queue"},
    {"GET", "/api/staff/case"},
    {"GET", "/api/staff/document"},
    {"GET", "/api/staff/document/view"},
    {"POST", "/api/staff/case/take"},
    {"POST", "/api/staff/case/approve"},
    {"POST", "/api/staff/case/reject"},
    {"POST", "/api/staff/case/request-info"},
    {"GET", "/api/staff/settings"},
    {"POST", "/api/staff/settings"},
    {"GET", "/"},
    {"GET", "/staff"},
    {"GET", "/static/"},
    {"GET", "/api/nothing-here"},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* the harness's sessions: Jan, reviewer, admin */
static struct sess {
	bool staff;
	const char *login, *password;
	char cookie[80]; /* "esim_session=<64 hex>" */
	char csrf[65];
} S[3] = {
    {false, "jan.peeters@example.be", "jan-demo-2026", "", ""},
    {true, "reviewer", "review-demo-2026", "", ""},
    {true, "admin", "admin-demo-2026", "", ""},
};

static time_t still(void *arg)
{
	(void)arg;
	return 1790000000;
}

static void login(struct sess *s)
{
	/* failed logins of the inputs may have locked the name: forget them */
	if (store_exec(O->s, "DELETE FROM op_login_fail") != ESIM_OK)
		abort();
	char body[200];
	snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\"}", s->login,
		 s->password);
	net_request req = {.method = "POST",
			   .path = s->staff ? "/api/staff/login" : "/api/login",
			   .body = (const uint8_t *)body,
			   .body_len = strlen(body),
			   .peer_addr = "198.51.100.7"};
	net_response r;
	net_response_init(&r);
	if (op_http(&req, &r, O) != ESIM_OK || r.status != 200)
		abort();
	for (size_t i = 0; i < r.n_headers; i++)
		if (!strcasecmp(r.headers[i].name, "Set-Cookie"))
			snprintf(s->cookie, sizeof s->cookie, "%.*s",
				 (int)strcspn(r.headers[i].value, ";"), r.headers[i].value);
	json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	const char *c = json_string_value(json_object_get(j, "csrf"));
	if (!c || strlen(c) != 64 || strlen(s->cookie) != 13 + 64)
		abort();
	memcpy(s->csrf, c, 65);
	json_decref(j);
	net_response_clear(&r);
}

static void open_op(void)
{
	struct op_config cfg = {.db = ":memory:", .fast_hash = true, .now = still};
	if (op_open(&cfg, &O) != ESIM_OK || op_seed_demo(O) != ESIM_OK)
		abort();
	for (int i = 0; i < 3; i++)
		login(&S[i]);
}

static void done(void)
{
	op_close(O);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	open_op();
	atexit(done);
	return 0;
}

/* the next part of the input (up to a 0x00), as a string; NULL at the end */
static char *part(const uint8_t **p, size_t *n)
{
	if (*n == 0)
		return NULL;
	const uint8_t *z = memchr(*p, 0, *n);
	size_t l = z ? (size_t)(z - *p) : *n;
	char *s = malloc(l + 1);
	if (!s)
		abort();
	memcpy(s, *p, l);
	s[l] = '\0';
	*p += z ? l + 1 : l;
	*n -= z ? l + 1 : l;
	return s;
}

static bool has_header(const net_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (++inputs % RESET_EVERY == 0) {
		op_close(O);
		open_op();
	}
	unsigned ri = (data[0] & 0x7f) % N_ROUTES, flags = data[1];
	const char *method = routes[ri].method;
	if (data[0] & 0x80)
		method = !strcmp(method, "GET") ? "POST" : "GET";
	const uint8_t *p = data + 2;
	size_t n = size - 2;
	char *cookie = (flags & 8) ? part(&p, &n) : NULL;
	char *query = part(&p, &n);
	/* the body: the rest, 0x00 bytes and all */
	const uint8_t *body = p;
	size_t body_len = n;

	char path[300];
	if (!strcmp(routes[ri].path, "/static/"))
		snprintf(path, sizeof path, "/static/%s", query ? query : "");
	else
		snprintf(path, sizeof path, "%s", routes[ri].path);

	struct sess *s = (flags & 3) ? &S[(flags & 3) - 1] : NULL;
	struct net_header h[2];
	size_t nh = 0;
	if (cookie)
		h[nh++] = (struct net_header){"Cookie", cookie};
	else if (s)
		h[nh++] = (struct net_header){"Cookie", s->cookie};
	if (s && !(flags & 4))
		h[nh++] = (struct net_header){"X-CSRF-Token", s->csrf};
	static const char *const peers[4] = {"192.0.2.9", "192.0.2.10", "2001:db8::1", ""};
	net_request req = {.method = method,
			   .path = path,
			   .query = query,
			   .headers = h,
			   .n_headers = nh,
			   .body = body_len ? body : NULL,
			   .body_len = body_len,
			   .peer_addr = peers[(flags >> 4) & 3]};
	net_response r;
	net_response_init(&r);
	if (op_http(&req, &r, O) != ESIM_OK)
		abort(); /* every request gets an answer from the handler */
	if (r.status < 200 || r.status > 599 || !has_header(&r, "Content-Security-Policy") ||
	    !has_header(&r, "X-Content-Type-Options"))
		abort();
	if (!strncmp(path, "/api/", 5) && r.content_type &&
	    !strncmp(r.content_type, "application/json", 16)) {
		json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		if (!j)
			abort();
		json_decref(j);
	}
	net_response_clear(&r);
	/* a logout of a harness session: log in again */
	if (s && !cookie && !strcmp(routes[ri].path, "/api/logout") && !strcmp(method, "POST"))
		login(s);
	free(cookie);
	free(query);
	return 0;
}
