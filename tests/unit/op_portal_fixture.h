/*
 * The operator service in process for rule tests (test_operator_charging,
 * test_operator_intake): a handle on SQLite or on a throwaway PostgreSQL
 * (pg_helper.h), seeded with the demo data, a fake clock, requests to the
 * portal through op_http and to the charging interface through
 * op_charging_http (as if over the pinned mutual-TLS listener), and a
 * second store handle on the same database to look at the rows.
 */
#ifndef ESIM_OP_PORTAL_FIXTURE_H
#define ESIM_OP_PORTAL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "esim/crypto.h"
#include "esim/operator.h"
#include "esim/store.h"
#include "pg_helper.h"
#include "testutil.h"

#define EID	     "89049032123451234512345678901235"
#define JAN_MSISDN   "+32470123456"
#define SOFIE_MSISDN "+32471987654"
#define FX_START     1790000000 /* 2026-09-21T14:13:20Z */

struct fx {
	char *dir;
	char db[512];
	char pki[600];
	op *o;
	op_charging *ch;
	uint8_t pin[32];
	time_t clock;
	char cookie[128];
	char csrf[80];
};

static struct pg_env pg;
static int pg_rc = -1;
static char *pki_dir;

static time_t fake_now(void *arg)
{
	return ((struct fx *)arg)->clock;
}

static int setup_common(void **state, bool postgres)
{
	struct fx *f = calloc(1, sizeof *f);
	f->dir = test_mkdtemp();
	f->clock = FX_START;
	snprintf(f->pki, sizeof f->pki, "%s/pki/nist", pki_dir);
	if (postgres) {
		if (pg_rc < 0 && (pg_rc = pg_start(&pg)) < 0)
			pg_rc = 1;
		if (pg_rc != 0 && pg_rc != TEST_SKIP_CODE)
			fail_msg("PostgreSQL is installed but did not start");
		if (pg_rc != 0) {
			test_rm_rf(f->dir);
			free(f->dir);
			free(f);
			*state = NULL;
			return 0;
		}
		assert_int_equal(0, pg_create_db(&pg, f->db, sizeof f->db));
	} else {
		snprintf(f->db, sizeof f->db, "%s/op.db", f->dir);
	}
	char dk[700], mail[700], key[700], cert[700];
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	snprintf(mail, sizeof mail, "%s/mail", f->dir);
	snprintf(key, sizeof key, "%s/operator.key.pem", f->pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", f->pki);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.maildir = mail,
				.key_file = key,
				.cert_file = cert,
				.data_key_file = dk,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
	assert_esim(ESIM_OK, op_seed_demo(f->o));
	/* the charging system's client certificate: any certificate will do
	 * for the pin; the operator's own here */
	struct op_charging_config cc = {.client_cert_file = cert};
	assert_esim(ESIM_OK, op_charging_new(f->o, &cc, &f->ch));
	memcpy(f->pin, op_charging_pin(f->ch), 32);
	*state = f;
	return 0;
}

static int setup_sqlite(void **state)
{
	return setup_common(state, false);
}

static int setup_pg(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	op_charging_free(f->ch);
	op_close(f->o);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

#define SKIP_IF_NO_PG(f)                                                                           \
	do {                                                                                       \
		if (!(f)) {                                                                        \
			print_message("PostgreSQL not available: skipped\n");                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown),                                \
	    cmocka_unit_test_setup_teardown(t, setup_pg, teardown)

/* One portal request; *out the parsed JSON (or NULL); the status. */
static int call(struct fx *f, const char *method, const char *path, const char *query,
		const char *body, json_t **out)
{
	struct net_header h[3];
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
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, f->o));
	int st = resp.status;
	if (out) {
		*out = NULL;
		if (resp.body.len)
			*out = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	}
	if (!strcmp(path, "/api/login") || !strcmp(path, "/api/staff/login")) {
		for (size_t i = 0; i < resp.n_headers; i++)
			if (!strcmp(resp.headers[i].name, "Set-Cookie")) {
				size_t n = strcspn(resp.headers[i].value, ";");
				snprintf(f->cookie, sizeof f->cookie, "%.*s", (int)n,
					 resp.headers[i].value);
			}
	}
	net_response_clear(&resp);
	return st;
}

static void login(struct fx *f, bool staff, const char *user, const char *pw)
{
	char b[256];
	snprintf(b, sizeof b, "{\"login\":\"%s\",\"password\":\"%s\"}", user, pw);
	json_t *j;
	f->cookie[0] = f->csrf[0] = '\0';
	assert_int_equal(200,
			 call(f, "POST", staff ? "/api/staff/login" : "/api/login", NULL, b, &j));
	snprintf(f->csrf, sizeof f->csrf, "%s", json_string_value(json_object_get(j, "csrf")));
	json_decref(j);
}

static __attribute__((unused)) void login_jan(struct fx *f)
{
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
}
static __attribute__((unused)) void login_sofie(struct fx *f)
{
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
}
static void login_reviewer(struct fx *f)
{
	login(f, true, "reviewer", "review-demo-2026");
}

/* One charging request as the pinned charging system (pinned = false: a
 * client whose certificate is another one). */
static int charge_as(struct fx *f, bool pinned, const char *path, const char *body, json_t **out)
{
	net_request req = {.method = "POST",
			   .path = path,
			   .body = (const uint8_t *)body,
			   .body_len = strlen(body),
			   .peer_addr = "192.0.2.9",
			   .tls = true,
			   .has_client_cert = true};
	memcpy(req.client_cert_sha256, f->pin, 32);
	if (!pinned)
		req.client_cert_sha256[0] ^= 1;
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_charging_http(&req, &resp, f->ch));
	int st = resp.status;
	if (out) {
		*out = NULL;
		if (resp.body.len)
			*out = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	}
	net_response_clear(&resp);
	return st;
}

static __attribute__((unused)) int charge(struct fx *f, const char *path, const char *body,
					  json_t **out)
{
	return charge_as(f, true, path, body, out);
}

/* A number from the database (a second handle on it). */
static int64_t qint(struct fx *f, const char *sql)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	int64_t v = row && !store_col_is_null(st, 0) ? store_col_int64(st, 0) : -1;
	store_finalize(st);
	store_close(s);
	return v;
}

static __attribute__((unused)) int64_t jint(const json_t *j, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(j, k));
}

static __attribute__((unused)) const char *jstr(const json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static int fixture_main(const struct CMUnitTest *tests, size_t n)
{
	pki_dir = test_mkdtemp();
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "%s/esim-pki init %s/pki --eid %s >/dev/null", test_bin_dir(),
		 pki_dir, EID);
	if (system(cmd) != 0) {
		fprintf(stderr, "esim-pki init failed\n");
		return 1;
	}
	int rc = _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
	if (pg_rc == 0)
		pg_stop(&pg);
	/* without the PostgreSQL half the run is a skip (a failure under
	 * CI=true), never a pass */
	if (rc == 0 && pg_rc == TEST_SKIP_CODE)
		rc = test_component_missing_status("PostgreSQL", pg.why);
	test_rm_rf(pki_dir);
	free(pki_dir);
	return rc;
}

#endif
