/*
 * esim-smds end to end (SGP.22 3.3, ES11 5.8, ES12 5.9; docs/smds.md), with
 * the real programs: esim-pki issues the SM-DS's CERT.DStls and
 * CERT.DSauth under the CI, esim-smds and esim-smdp serve on loopback,
 * esim-euicc is the card and `esim` the LPA. The operator's ES2+ calls and
 * the direct ES12 / ES11 calls are made by the test over HTTPS with
 * net_client (the ES11 ones through lpa_driver, with the real card).
 *
 * The journey (both curves): ConfirmOrder with the SM-DS registers the
 * event (ES12 RegisterEvent), `esim profile discover` shows it, `esim
 * profile download --discover` installs the profile without an activation
 * code, and the event is gone afterwards (DeleteEvent from the SM-DP+'s
 * outbox after the PIR). The refusals: an SM-DS the SM-DP+ does not know
 * (8.9 / 5.1) or one that refuses (8.9 / 4.2), the order not confirmed; a
 * client certificate the SM-DS did not pin (refused in the handshake) and
 * a pinned SM-DP+ registering for another address (8.8.1 / 3.8); an
 * eUICC without events (empty list); an event of another EID never shown;
 * a replayed and an expired ES11 session (8.10.1 / 3.9); CancelOrder
 * deletes the event.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "test_lpa_fixture.h"

#include "esim/der.h"
#include "esim/net.h"
#include "esim/rsp_es9.h"
#include "esim/store.h"
#include "lpa_driver.h"
#include "pg_helper.h"

#define SESSION_TTL_S 2
/* the SM-DP+'s smds-timeout-ms here: ConfirmOrder's RegisterEvent waits
 * this long at most, and its held outbox row is due 4 + 2 s later */
#define SMDS_TIMEOUT_MS 4000

/* A test SM-DS for the SM-DP+ (ES12 over TLS with CERT.DStls, no client
 * check): answers each call after delay_ms, Executed-Success or, with
 * refuse, Failed 8.9.5 / 3.3. Runs in this process on its own threads. */
struct fake_smds {
	net_server *srv;
	atomic_int delay_ms;
	atomic_bool refuse;
	atomic_int registers, deletes;
};

struct senv {
	struct lenv l; /* dir, pki, card socket, SM-DP+ config, esim runs */
	const char *curve;
	char cdir[400]; /* pki/<curve> */
	uint16_t es2_port, es11_port, es12_port;
	char es11_addr[64], es12_addr[64];
	char smds_conf[700];
	pid_t smds;
	int calls;
	uint16_t fake_port;
	char fake_addr[64];
	char smdp_db[700]; /* the SM-DP+'s store (a URL for store_open) */
	struct fake_smds fake;
};

static esim_err fake_es12(const net_request *req, net_response *resp, void *arg)
{
	struct fake_smds *f = arg;
	atomic_fetch_add(strstr(req->path, "registerEvent") ? &f->registers : &f->deletes, 1);
	int ms = atomic_load(&f->delay_ms);
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	json_t *o = atomic_load(&f->refuse)
			? json_pack("{s:{s:{s:s,s:{s:s,s:s}}}}", "header",
				    "functionExecutionStatus", "status", "Failed", "statusCodeData",
				    "subjectCode", "8.9.5", "reasonCode", "3.3")
			: json_pack("{s:{s:{s:s}}}", "header", "functionExecutionStatus", "status",
				    "Executed-Success");
	esim_err err = net_response_json(resp, 200, o);
	json_decref(o);
	return err;
}

static void fake_stop(struct senv *e)
{
	net_server_free(e->fake.srv);
	e->fake.srv = NULL;
}

static void fake_start(struct senv *e, int delay_ms, bool refuse)
{
	struct fake_smds *f = &e->fake;
	fake_stop(e); /* one a failed test left running */
	atomic_store(&f->delay_ms, delay_ms);
	atomic_store(&f->refuse, refuse);
	atomic_store(&f->registers, 0);
	atomic_store(&f->deletes, 0);
	char cert[700], key[700];
	snprintf(cert, sizeof cert, "%s/dstls.pem", e->l.dir);
	snprintf(key, sizeof key, "%s/dstls.key.pem", e->l.dir);
	struct net_server_config sc = {.threads = 2, .shutdown_grace_ms = 200};
	assert_esim(ESIM_OK, net_server_new(&sc, &f->srv));
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .port = e->fake_port,
					 .tls = true,
					 .cert_chain_file = cert,
					 .key_file = key};
	int id = -1;
	assert_esim(ESIM_OK, net_server_add_listener(f->srv, &lc, &id));
	assert_esim(ESIM_OK, net_server_add_route(f->srv, id, "POST",
						  "/gsma/rsp2/es12/registerEvent", fake_es12, f));
	assert_esim(ESIM_OK, net_server_add_route(f->srv, id, "POST", "/gsma/rsp2/es12/deleteEvent",
						  fake_es12, f));
	assert_esim(ESIM_OK, net_server_start(f->srv));
}

static void start_smds(struct senv *e)
{
	char prog[700], log[700];
	snprintf(prog, sizeof prog, "%s/esim-smds", test_bin_dir());
	snprintf(log, sizeof log, "%s/smds.log", e->l.dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(prog, prog, "serve", "--config", e->smds_conf, (char *)NULL);
		_exit(127);
	}
	e->smds = pid;
	for (int i = 0; i < 2000 && !(l_port_open(e->es11_port) && l_port_open(e->es12_port)); i++)
		usleep(10000);
	assert_true(l_port_open(e->es11_port));
	assert_true(l_port_open(e->es12_port));
}

/* A certificate under the CI of the curve. CERT.DSauth carries the
 * SM-DS's OID as registeredID (SGP.22 4.5.2.1), as CERT.DPauth does the
 * SM-DP+'s: the eUICC needs one for the session. */
static void issue(struct senv *e, const char *role, const char *name)
{
	char cmd[3000];
	snprintf(cmd, sizeof cmd,
		 "'%s/esim-pki' issue %s --curve %s --out '%s/%s' --issuer-cert '%s/ci.pem'"
		 " --issuer-key '%s/ci.key.pem' --host 127.0.0.1 %s >/dev/null 2>&1",
		 test_bin_dir(), role, e->curve, e->l.dir, name, e->cdir, e->cdir,
		 strcmp(role, "dsauth") == 0 ? "--oid 2.999.20" : "");
	assert_int_equal(l_sh(cmd, NULL), 0);
}

/* The PostgreSQL group: both servers' stores in one real PostgreSQL. */
static struct pg_env pg;
static char pg_missing[300];

/* db_smds / db_smdp NULL: SQLite files in the test's directory. */
static struct senv *env_start(const char *curve, const char *db_smds, const char *db_smdp)
{
	struct senv *e = calloc(1, sizeof *e);
	struct lenv *l = &e->l;
	e->curve = curve;
	l->dir = test_mkdtemp();
	assert_true(strlen(l->dir) < 300);
	snprintf(l->pki, sizeof l->pki, "%s/pki", l->dir);
	h_pki_init(l->pki, H_EID);
	assert_true(strlen(l->pki) < 380);
	snprintf(e->cdir, sizeof e->cdir, "%.380s/%s", l->pki, curve);
	snprintf(l->ci, sizeof l->ci, "%s/ci.pem", e->cdir);
	snprintf(l->sock, sizeof l->sock, "%s/card.sock", l->dir);
	issue(e, "dstls", "dstls");
	issue(e, "dsauth", "dsauth");
	issue(e, "dptls", "rogue"); /* under the same CI, but not pinned at the SM-DS */

	char db[700], log[700], listen[700];
	snprintf(db, sizeof db, "%s/card.db", l->dir);
	snprintf(log, sizeof log, "%s/euicc.log", l->dir);
	snprintf(listen, sizeof listen, "unix:%s", l->sock);
	const char *args[] = {"--db", db, "--pki", l->pki, "--listen", listen, NULL};
	l->euicc = h_spawn_euicc(args, log);
	apdu_session_close(h_connect_retry(l->sock, 20000));

	l->port = l_free_port();
	do {
		e->es2_port = l_free_port();
		e->es11_port = l_free_port();
		e->es12_port = l_free_port();
		e->fake_port = l_free_port();
	} while (e->es2_port == l->port || e->es11_port == l->port || e->es12_port == l->port ||
		 e->es11_port == e->es2_port || e->es12_port == e->es2_port ||
		 e->es11_port == e->es12_port || e->fake_port == l->port ||
		 e->fake_port == e->es2_port || e->fake_port == e->es11_port ||
		 e->fake_port == e->es12_port);
	snprintf(e->fake_addr, sizeof e->fake_addr, "127.0.0.1:%u", e->fake_port);
	snprintf(l->addr, sizeof l->addr, "127.0.0.1:%u", l->port);
	snprintf(e->es11_addr, sizeof e->es11_addr, "127.0.0.1:%u", e->es11_port);
	snprintf(e->es12_addr, sizeof e->es12_addr, "127.0.0.1:%u", e->es12_port);

	/* the SM-DS: CERT.DSauth, DStls, the SM-DP+'s DPtls pinned for ES12 */
	const char *c = curve, *d = e->cdir, *dir = l->dir;
	char dbs[600], dbp[600];
	snprintf(dbs, sizeof dbs, "%s%s%s", db_smds ? "" : "sqlite:", db_smds ? db_smds : dir,
		 db_smds ? "" : "/smds.db");
	snprintf(dbp, sizeof dbp, "%s%s%s", db_smdp ? "" : "sqlite:", db_smdp ? db_smdp : dir,
		 db_smdp ? "" : "/smdp.db");
	snprintf(e->smdp_db, sizeof e->smdp_db, "%s", dbp);
	snprintf(e->smds_conf, sizeof e->smds_conf, "%s/smds.conf", dir);
	FILE *f = fopen(e->smds_conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s\nfqdn = %s\n"
		"dsauth-cert-%s = %s/dsauth.der\ndsauth-key-%s = %s/dsauth.key.pem\n"
		"ci = %s/ci.der\nlisten-%s = %s\ntls-cert-%s = %s/dstls.pem\n"
		"tls-key-%s = %s/dstls.key.pem\nlisten-es12 = %s\nes12-cert = %s/dstls.pem\n"
		"es12-key = %s/dstls.key.pem\nsmdp-clients = %s %s/dptls.pem\n"
		"session-ttl = %d\nlog = 1\n",
		dbs, e->es11_addr, c, dir, c, dir, d, c, e->es11_addr, c, dir, c, dir, e->es12_addr,
		dir, dir, l->addr, d, SESSION_TTL_S);
	fclose(f);

	/* the SM-DP+: three SM-DSs known, the real one (ES12), an address
	 * that answers HTTPS but not ES12 (the SM-DS's ES11 listener) and the
	 * test's own (fake_start); one confirmation code attempt */
	snprintf(l->conf, sizeof l->conf, "%s/smdp.conf", dir);
	f = fopen(l->conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s\nfqdn = %s\n"
		"dpauth-cert-%s = %s/dpauth.der\ndpauth-key-%s = %s/dpauth.key.pem\n"
		"dppb-cert-%s = %s/dppb.der\ndppb-key-%s = %s/dppb.key.pem\n"
		"ci = %s/ci.der\nlisten-%s = %s\ntls-cert-%s = %s/dptls.pem\n"
		"tls-key-%s = %s/dptls.key.pem\nlisten-es2 = 127.0.0.1:%u\n"
		"es2-cert = %s/dptls.pem\nes2-key = %s/dptls.key.pem\n"
		"smds = %s, %s, %s\nsmds-ca = %s/ci.pem\nsmds-client-cert = %s/dptls.pem\n"
		"smds-client-key = %s/dptls.key.pem\nsmds-timeout-ms = %d\ncc-attempts = 1\n"
		"outbox-idle-ms = 50\nlog = 1\n",
		dbp, l->addr, c, d, c, d, c, d, c, d, d, c, l->addr, c, d, c, d, e->es2_port, d, d,
		e->es12_addr, e->es11_addr, e->fake_addr, d, d, d, SMDS_TIMEOUT_MS);
	fclose(f);
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("89000123456789000010", &upp, &upp_len));
	char path[700], cmd[1500];
	snprintf(path, sizeof path, "%s/upp.der", dir);
	f = fopen(path, "wb");
	assert_int_equal(fwrite(upp, 1, upp_len, f), upp_len);
	fclose(f);
	free(upp);
	snprintf(cmd, sizeof cmd, "add-operator OP '%s/operator.der'", d);
	assert_int_equal(l_smdp_cmd(l, cmd, NULL), 0);
	snprintf(cmd, sizeof cmd, "add-type T1 OP '%s' 'Test SPN' 'Test Profile'", path);
	assert_int_equal(l_smdp_cmd(l, cmd, NULL), 0);
	snprintf(path, sizeof path, "%s/profiles.csv", dir);
	f = fopen(path, "w");
	for (int i = 0; i < L_N_ICCIDS; i++) {
		char body[32];
		snprintf(body, sizeof body, "89000123456789000%02d", i);
		fprintf(f, "%s%d,0010101234567%02d\n", body, rsp_iccid_luhn_digit(body, 19), i);
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "import T1 '%s'", path);
	assert_int_equal(l_smdp_cmd(l, cmd, NULL), 0);
	l_start_smdp(l);
	for (int i = 0; i < 2000 && !l_port_open(e->es2_port); i++)
		usleep(10000);
	start_smds(e);
	return e;
}

static void env_stop(struct senv *e)
{
	fake_stop(e);
	if (e->smds > 0) {
		kill(e->smds, SIGTERM);
		waitpid(e->smds, NULL, 0);
	}
	l_teardown(&e->l); /* frees e: l is its first member */
}

static int setup_nist(void **state)
{
	*state = env_start("nist", NULL, NULL);
	return 0;
}

static int setup_brp(void **state)
{
	*state = env_start("brp", NULL, NULL);
	return 0;
}

static int setup_pg(void **state)
{
	char u1[512], u2[512];
	assert_int_equal(pg_create_db(&pg, u1, sizeof u1), 0);
	assert_int_equal(pg_create_db(&pg, u2, sizeof u2), 0);
	*state = env_start("nist", u1, u2);
	return 0;
}

static int teardown(void **state)
{
	env_stop(*state);
	return 0;
}

/* ---- HTTPS helpers -------------------------------------------------------- */

/* POST json to https://addr/path with the client certificate prefix
 * (NULL: none); the answer parsed into *out (NULL when there is none). */
static esim_err post(struct senv *e, const char *addr, const char *path, const char *cert,
		     json_t *body, json_t **out)
{
	char cf[800], kf[800], url[300];
	snprintf(cf, sizeof cf, "%s.pem", cert ? cert : "");
	snprintf(kf, sizeof kf, "%s.key.pem", cert ? cert : "");
	struct net_client_config cc = {.ca_file = e->l.ci, .timeout_ms = 20000};
	if (cert) {
		cc.client_cert_file = cf;
		cc.client_key_file = kf;
	}
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(url, sizeof url, "https://%s%s", addr, path);
	struct net_client_response r;
	esim_err err = net_client_post_json(c, url, text, strlen(text), &r);
	free(text);
	*out = NULL;
	if (err == ESIM_OK)
		assert_esim(ESIM_OK,
			    net_json_parse(r.body.data, r.body.len, 1 << 20, 16, out, NULL));
	net_client_response_clear(&r);
	net_client_free(c);
	return err;
}

/* The answer's status: "" for success, else "subject/reason". */
static const char *status_of(const json_t *doc, char buf[32])
{
	const json_t *fes =
	    json_object_get(json_object_get(doc, "header"), "functionExecutionStatus");
	const char *st = json_string_value(json_object_get(fes, "status"));
	assert_non_null(st);
	buf[0] = '\0';
	if (strcmp(st, "Executed-Success") != 0) {
		const json_t *scd = json_object_get(fes, "statusCodeData");
		snprintf(buf, 32, "%s/%s", json_string_value(json_object_get(scd, "subjectCode")),
			 json_string_value(json_object_get(scd, "reasonCode")));
	}
	return buf;
}

/* An ES2+ call as the operator; returns the answer (caller decrefs). */
static json_t *es2(struct senv *e, const char *fn, json_t *body)
{
	char path[128], cert[700], id[32];
	snprintf(path, sizeof path, "/gsma/rsp2/es2plus/%s", fn);
	snprintf(cert, sizeof cert, "%s/operator", e->cdir);
	snprintf(id, sizeof id, "call-%d", ++e->calls);
	json_object_set_new(body, "header",
			    json_pack("{s:s,s:s}", "functionRequesterIdentifier", "OP",
				      "functionCallIdentifier", id));
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%u", e->es2_port);
	json_t *out = NULL;
	assert_esim(ESIM_OK, post(e, addr, path, cert, body, &out));
	return out;
}

/* DownloadOrder of a T1 profile: its ICCID. */
static void download_order(struct senv *e, char iccid[32])
{
	char st[32];
	json_t *r = es2(e, "downloadOrder", json_pack("{s:s}", "profileType", "T1"));
	assert_string_equal(status_of(r, st), "");
	snprintf(iccid, 32, "%s", json_string_value(json_object_get(r, "iccid")));
	json_decref(r);
}

/* ConfirmOrder with eid and smdsAddress: the status ("" for success),
 * the matchingId in mid when confirmed. */
static void confirm(struct senv *e, const char *iccid, const char *smds, const char *mid_in,
		    char st[32], char mid[80])
{
	json_t *b = json_pack("{s:s,s:s,s:s,s:b}", "iccid", iccid, "eid", H_EID, "smdsAddress",
			      smds, "releaseFlag", 1);
	if (mid_in)
		json_object_set_new(b, "matchingId", json_string(mid_in));
	json_t *r = es2(e, "confirmOrder", b);
	status_of(r, st);
	if (mid)
		snprintf(mid, 80, "%s",
			 st[0] ? "" : json_string_value(json_object_get(r, "matchingId")));
	json_decref(r);
}

static size_t smds_events(struct senv *e, const char *eid)
{
	char cmd[2000], *out = NULL;
	snprintf(cmd, sizeof cmd, "'%s/esim-smds' events %s --config '%s' 2>/dev/null",
		 test_bin_dir(), eid ? eid : "", e->smds_conf);
	assert_int_equal(l_sh(cmd, &out), 0);
	size_t n = (size_t)strtoul(out, NULL, 10);
	free(out);
	return n;
}

/* Events of eid at the SM-DS reach want within 15 s (the outbox). */
static bool wait_events(struct senv *e, const char *eid, size_t want)
{
	for (int i = 0; i < 300; i++) {
		if (smds_events(e, eid) == want)
			return true;
		usleep(50000);
	}
	return false;
}

static char *smdp_state(struct senv *e, const char *iccid, char out[32])
{
	char args[64], *text = NULL;
	snprintf(args, sizeof args, "state %s", iccid);
	assert_int_equal(l_smdp_cmd(&e->l, args, &text), 0);
	snprintf(out, 32, "%s", text);
	out[strcspn(out, "\n")] = '\0';
	free(text);
	return out;
}

/* ES12 RegisterEvent by hand, as the SM-DP+ with cert (path prefix). */
static esim_err register_event(struct senv *e, const char *cert, const char *eid, const char *addr,
			       const char *event, char st[32])
{
	json_t *b =
	    json_pack("{s:{s:s,s:s},s:s,s:s,s:s,s:b}", "header", "functionRequesterIdentifier",
		      "test", "functionCallIdentifier", "t1", "eid", eid, "rspServerAddress", addr,
		      "eventId", event, "forwardingIndicator", 0);
	json_t *out = NULL;
	esim_err err = post(e, e->es12_addr, "/gsma/rsp2/es12/registerEvent", cert, b, &out);
	st[0] = '\0';
	if (out)
		status_of(out, st);
	json_decref(out);
	return err;
}

/* ---- the journey ------------------------------------------------------------ */

/* esim-smds's log (issue 17.5): every line one JSON object of esim-smds,
 * and the registration and the ES11 session of this test among them. */
static void assert_smds_log_json(struct senv *e)
{
	char path[700], line[4096];
	snprintf(path, sizeof path, "%s/smds.log", e->l.dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int lines = 0, registered = 0, sessions = 0;
	while (fgets(line, sizeof line, f)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		if (!json_is_object(o))
			fail_msg("esim-smds log line is not a JSON object: %s", line);
		assert_string_equal(json_string_value(json_object_get(o, "prog")), "esim-smds");
		const char *msg = json_string_value(json_object_get(o, "msg"));
		registered += msg && strcmp(msg, "event_registered") == 0;
		sessions += msg && strcmp(msg, "session_start") == 0;
		json_decref(o);
		lines++;
	}
	fclose(f);
	assert_true(lines > 0);
	assert_true(registered > 0);
	assert_true(sessions > 0);
}

static void test_register_discover_download(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], mid[80], args[400], s2[32];
	download_order(e, iccid);
	confirm(e, iccid, e->es12_addr, NULL, st, mid);
	assert_string_equal(st, "");
	assert_string_equal(smdp_state(e, iccid, s2), "Released");
	assert_int_equal(smds_events(e, H_EID), 1); /* registered before the answer */

	snprintf(args, sizeof args, "profile discover --smds %s", e->es11_addr);
	if (l_esim(&e->l, args) != 0)
		fail_msg("discover: %s", e->l.err);
	json_t *ev = json_object_get(l_result(&e->l), "events");
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "event_id")),
			    mid);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(ev, 0), "smdp_address")), e->l.addr);

	snprintf(args, sizeof args, "profile download --discover --smds %s", e->es11_addr);
	if (l_esim(&e->l, args) != 0)
		fail_msg("download --discover: %s", e->l.err);
	assert_non_null(l_find_profile(&e->l, iccid));
	assert_string_equal(smdp_state(e, iccid, s2), "Installed");
	/* the PIR queued DeleteEvent: the event is gone, discovery is empty */
	assert_true(wait_events(e, H_EID, 0));
	snprintf(args, sizeof args, "profile discover --smds %s", e->es11_addr);
	assert_int_equal(l_esim(&e->l, args), 0);
	assert_int_equal(json_array_size(json_object_get(l_result(&e->l), "events")), 0);
	/* and a download from the SM-DS now has nothing to take */
	snprintf(args, sizeof args, "profile download --discover --smds %s", e->es11_addr);
	assert_int_equal(l_esim(&e->l, args), CLI_EXIT_FAILURE);
	assert_non_null(strstr(e->l.err, "no event for this eUICC"));
	assert_smds_log_json(e);
}

/* An SM-DS the SM-DP+ is not configured with: 8.9 / 5.1 at once. One that
 * refuses (here an HTTPS server that is not an ES12 endpoint): 8.9 / 4.2.
 * Either way the order stays unconfirmed and may be confirmed again. */
static void test_confirm_unknown_or_refusing_smds(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], s2[32], mid[80];
	download_order(e, iccid);
	confirm(e, iccid, "smds.unknown.example:443", NULL, st, NULL);
	assert_string_equal(st, "8.9/5.1");
	assert_string_equal(smdp_state(e, iccid, s2), "Allocated");
	confirm(e, iccid, e->es11_addr, "EVT-REFUSED", st, NULL);
	assert_string_equal(st, "8.9/4.2");
	assert_string_equal(smdp_state(e, iccid, s2), "Allocated");
	assert_int_equal(smds_events(e, NULL), 0);
	/* the same order goes through with the right SM-DS */
	confirm(e, iccid, e->es12_addr, "EVT-REFUSED", st, mid);
	assert_string_equal(st, "");
	assert_string_equal(mid, "EVT-REFUSED");
	assert_int_equal(smds_events(e, H_EID), 1);
	/* CancelOrder deletes the event (from the outbox) */
	json_t *r = es2(e, "cancelOrder",
			json_pack("{s:s,s:s,s:s}", "iccid", iccid, "eid", H_EID,
				  "finalProfileStatusIndicator", "Available"));
	assert_string_equal(status_of(r, st), "");
	json_decref(r);
	assert_true(wait_events(e, H_EID, 0));
}

/* The SM-DS down at ConfirmOrder: the order is confirmed and the
 * RegisterEvent waits in the SM-DP+'s outbox, retried until the SM-DS is
 * back; then it is there once, and CancelOrder's DeleteEvent follows it. */
static void test_smds_unreachable_queued(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], s2[32], mid[80];
	kill(e->smds, SIGTERM);
	waitpid(e->smds, NULL, 0);
	e->smds = 0;
	download_order(e, iccid);
	confirm(e, iccid, e->es12_addr, NULL, st, mid);
	assert_string_equal(st, "");
	assert_string_equal(smdp_state(e, iccid, s2), "Released");
	assert_int_equal(smds_events(e, H_EID), 0);
	usleep(300000); /* a failed attempt or two meanwhile */
	start_smds(e);
	assert_true(wait_events(e, H_EID, 1));
	char args[300];
	snprintf(args, sizeof args, "profile discover --smds %s", e->es11_addr);
	assert_int_equal(l_esim(&e->l, args), 0);
	json_t *ev = json_object_get(l_result(&e->l), "events");
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "event_id")),
			    mid);
	json_t *r = es2(e, "cancelOrder",
			json_pack("{s:s,s:s,s:s}", "iccid", iccid, "eid", H_EID,
				  "finalProfileStatusIndicator", "Available"));
	assert_string_equal(status_of(r, st), "");
	json_decref(r);
	assert_true(wait_events(e, H_EID, 0));
}

/* ES12 is for the pinned SM-DP+ only, and only for its own address. */
static void test_es12_wrong_certificate(void **state)
{
	struct senv *e = *state;
	char rogue[700], real[700], st[32];
	snprintf(rogue, sizeof rogue, "%s/rogue", e->l.dir);
	snprintf(real, sizeof real, "%s/dptls", e->cdir);
	size_t before = smds_events(e, NULL);
	/* a certificate of the same CI, not pinned: no TLS session */
	esim_err err = register_event(e, rogue, H_EID, e->l.addr, "EVT-ROGUE", st);
	assert_true(err != ESIM_OK);
	/* no certificate at all: the same */
	err = register_event(e, NULL, H_EID, e->l.addr, "EVT-NONE", st);
	assert_true(err != ESIM_OK);
	/* the pinned SM-DP+ naming another SM-DP+'s address */
	assert_esim(ESIM_OK, register_event(e, real, H_EID, "evil.example.com", "EVT-X", st));
	assert_string_equal(st, "8.8.1/3.8");
	/* a bad EID */
	assert_esim(ESIM_OK, register_event(e, real, "89049032123451234512345678901234", e->l.addr,
					    "EVT-Y", st));
	assert_string_equal(st, "8.1.1/2.1");
	assert_int_equal(smds_events(e, NULL), before);
	/* the SM-DP+ itself with a client certificate the SM-DS did not pin
	 * (esim-smdp order runs the same ConfirmOrder): refused at TLS, so
	 * 8.9 / 5.1 and no order */
	char args[2000], log[700], *out = NULL;
	snprintf(args, sizeof args,
		 "order OP T1 %s --smds-address %s --smds-client-cert '%s.pem'"
		 " --smds-client-key '%s.key.pem'",
		 H_EID, e->es12_addr, rogue, rogue);
	assert_int_equal(l_smdp_cmd(&e->l, args, &out), 1);
	free(out);
	snprintf(log, sizeof log, "cat '%s/smdp-admin.log'", e->l.dir);
	char *text = NULL; /* l_sh: NUL-terminated */
	assert_int_equal(l_sh(log, &text), 0);
	assert_non_null(strstr(text, "(8.9 / 5.1)"));
	free(text);
	assert_int_equal(smds_events(e, NULL), before);
}

/* No event for this eUICC: success with an empty list; another EID's
 * event is held but never shown to this eUICC. */
static void test_other_eid_never_shown(void **state)
{
	struct senv *e = *state;
	char real[700], st[32], args[300];
	snprintf(real, sizeof real, "%s/dptls", e->cdir);
	snprintf(args, sizeof args, "profile discover --smds %s", e->es11_addr);
	assert_int_equal(l_esim(&e->l, args), 0);
	assert_int_equal(json_array_size(json_object_get(l_result(&e->l), "events")), 0);

	assert_esim(ESIM_OK, register_event(e, real, H_EID2, e->l.addr, "EVT-OTHER", st));
	assert_string_equal(st, "");
	assert_int_equal(smds_events(e, H_EID2), 1);
	assert_int_equal(l_esim(&e->l, args), 0);
	assert_int_equal(json_array_size(json_object_get(l_result(&e->l), "events")), 0);
	/* the same eventId for another EID is refused, not moved */
	assert_esim(ESIM_OK, register_event(e, real, H_EID, e->l.addr, "EVT-OTHER", st));
	assert_string_equal(st, "8.9.5/3.3");
	assert_int_equal(l_esim(&e->l, args), 0);
	assert_int_equal(json_array_size(json_object_get(l_result(&e->l), "events")), 0);
}

/* ---- ES11 sessions, driven step by step (lpa_driver, the real card) --------- */

struct cap {
	struct lpa_http h;
	char *auth_client; /* the last authenticateClient body sent */
	char *answer;	   /* and its answer */
};

static esim_err cap_es9(void *ctx, const char *function, const char *json, int *status, char **out)
{
	struct cap *c = ctx;
	esim_err err = lpa_es9_http(&c->h, function, json, status, out);
	if (strcmp(function, "authenticateClient") == 0) {
		free(c->auth_client);
		free(c->answer);
		c->auth_client = strdup(json);
		c->answer = *out ? strdup(*out) : NULL;
	}
	return err;
}

static esim_err card_es10(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = apdu_es10_transmit(ctx, cmd, len, &r);
	if (err == ESIM_OK)
		err = esim_buf_append(resp, r.data, r.len);
	esim_buf_free(&r);
	return err;
}

static void test_es11_replay_and_expiry(void **state)
{
	struct senv *e = *state;
	char base[96], st[32];
	snprintf(base, sizeof base, "https://%s", e->es11_addr);
	struct net_client_config cc = {.ca_file = e->l.ci};
	struct cap c = {0};
	assert_esim(ESIM_OK, net_client_new(&cc, &c.h.client));
	c.h.base_url = base;
	apdu_session *card = h_connect_retry(e->l.sock, 5000);
	struct lpa_driver drv = {card_es10, card, cap_es9, &c, e->es11_addr};

	/* one session: the events answer */
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_false(s.failed);
	lpa_dl_authenticate(&s, NULL); /* not an SM-DP+ answer: the driver stops there */
	assert_false(s.failed);
	assert_non_null(c.answer);
	json_t *a = json_loads(c.answer, 0, NULL);
	assert_string_equal(status_of(a, st), "");
	assert_true(json_is_array(json_object_get(a, "eventEntries")));
	json_decref(a);
	lpa_session_clear(&s);

	/* the same authenticateClient again: the session was spent */
	int status = 0;
	char *out = NULL;
	assert_esim(ESIM_OK,
		    lpa_es9_http(&c.h, "authenticateClient", c.auth_client, &status, &out));
	a = json_loads(out, 0, NULL);
	assert_string_equal(status_of(a, st), "8.10.1/3.9");
	assert_null(json_object_get(a, "eventEntries"));
	json_decref(a);
	free(out);

	/* a session older than the SM-DS's session-ttl */
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	sleep(SESSION_TTL_S + 2);
	lpa_dl_authenticate(&s, NULL);
	assert_true(s.failed);
	assert_string_equal(s.subject, "8.10.1");
	assert_string_equal(s.reason, "3.9");
	lpa_session_clear(&s);

	apdu_session_close(card);
	net_client_free(c.h.client);
	free(c.auth_client);
	free(c.answer);
}

/* ---- ES11 in the ASN.1 binding (SGP.22 6.6) -------------------------------- */

/* The LPA's ES11 calls as RemoteProfileProvisioningRequest DER (the rsp_es9
 * codec), posted to /gsma/rsp2/asn1; the DER answer kept (last) and given
 * back to the driver as JSON. */
struct asn1_cap {
	net_client *c;
	char url[128];
	uint8_t *last;
	size_t last_len;
};

static esim_err asn1_es11(void *ctx, const char *function, const char *json, int *status,
			  char **out)
{
	struct asn1_cap *a = ctx;
	*out = NULL;
	enum rsp_es9_fn fn;
	if (!rsp_es9_fn_from_name(function, &fn))
		return ESIM_E_ARG;
	struct rsp_es9_request rq;
	const char *field = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0, n = 0;
	esim_err err =
	    rsp_es9_request_from_json(fn, (const uint8_t *)json, strlen(json), &rq, &field);
	if (err == ESIM_OK)
		err = rsp_es9_request_to_asn1(&rq, &der, &der_len);
	rsp_es9_request_clear(&rq);
	if (err != ESIM_OK)
		return err;
	struct net_header h = {"Content-Type", NET_CONTENT_TYPE_ASN1};
	struct net_client_response r;
	err = net_client_request(a->c, "POST", a->url, &h, 1, der, der_len, &r);
	free(der);
	*status = (int)r.status;
	free(a->last);
	a->last = NULL;
	a->last_len = 0;
	if (err == ESIM_OK && r.status == 200) {
		a->last = malloc(r.body.len);
		memcpy(a->last, r.body.data, r.body.len);
		a->last_len = r.body.len;
		struct rsp_es9_response rs;
		err = rsp_es9_response_from_asn1(r.body.data, r.body.len, &rs, &field);
		if (err == ESIM_OK)
			err = rsp_es9_response_to_json(&rs, out, &n);
		rsp_es9_response_clear(&rs);
	}
	net_client_response_clear(&r);
	return err;
}

/* An eUICC's ES11 session in the ASN.1 binding: initiateAuthentication
 * (BF39) and authenticateClient answered as AuthenticateClientResponseEs11
 * (A2 { BF40 { A0 { 80 transactionId, A1 { 30 { 80 eventId, 81
 * rspServerAddress } } } } }, read here tag by tag) with the event the
 * SM-DP+ registered; a getBoundProfilePackage (an SM-DP+ function) and
 * another Content-Type are protocol faults (HTTP 400). */
static void test_es11_asn1(void **state)
{
	struct senv *e = *state;
	char real[700], st[32];
	snprintf(real, sizeof real, "%s/dptls", e->cdir);
	assert_esim(ESIM_OK, register_event(e, real, H_EID, e->l.addr, "EVT-ASN1", st));
	assert_string_equal(st, "");

	struct net_client_config cc = {.ca_file = e->l.ci};
	struct asn1_cap a = {0};
	assert_esim(ESIM_OK, net_client_new(&cc, &a.c));
	snprintf(a.url, sizeof a.url, "https://%s/gsma/rsp2/asn1", e->es11_addr);
	apdu_session *card = h_connect_retry(e->l.sock, 5000);
	struct lpa_driver drv = {card_es10, card, asn1_es11, &a, e->es11_addr};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_false(s.failed);
	lpa_dl_authenticate(&s, NULL); /* not an SM-DP+ answer: the driver stops there */
	assert_false(s.failed);
	lpa_session_clear(&s);

	/* the DER answer, by hand */
	assert_non_null(a.last);
	der_cursor top, rsp, ok, entries, entry;
	der_element el;
	der_cursor_init(&top, a.last, a.last_len);
	assert_esim(ESIM_OK, der_get_sequence(&top, 0xA2, &rsp));
	assert_esim(ESIM_OK, der_expect_end(&top));
	der_cursor bf40;
	assert_esim(ESIM_OK, der_get_sequence(&rsp, 0xBF40, &bf40));
	assert_esim(ESIM_OK, der_get_sequence(&bf40, 0xA0, &ok));
	assert_esim(ESIM_OK, der_get_tlv(&ok, 0x80, &el)); /* transactionId */
	assert_esim(ESIM_OK, der_get_sequence(&ok, 0xA1, &entries));
	bool found = false;
	while (der_get_sequence(&entries, 0x30, &entry) == ESIM_OK) {
		assert_esim(ESIM_OK, der_get_tlv(&entry, 0x80, &el));
		bool mine = el.value.len == 8 && memcmp(el.value.p, "EVT-ASN1", 8) == 0;
		assert_esim(ESIM_OK, der_get_tlv(&entry, 0x81, &el));
		if (mine) {
			assert_int_equal(el.value.len, strlen(e->l.addr));
			assert_memory_equal(el.value.p, e->l.addr, el.value.len);
			found = true;
		}
	}
	assert_true(found);

	/* protocol faults */
	const uint8_t gbpp[] = {0xA2, 0x03, 0xBF, 0x3A, 0x00};
	struct net_header h = {"Content-Type", NET_CONTENT_TYPE_ASN1};
	struct net_client_response r;
	assert_int_equal(net_client_request(a.c, "POST", a.url, &h, 1, gbpp, sizeof gbpp, &r),
			 ESIM_E_NET_HTTP_STATUS);
	assert_int_equal(r.status, 400);
	net_client_response_clear(&r);
	const uint8_t init[] = {0xA2, 0x03, 0xBF, 0x39, 0x00};
	h.value = "application/json";
	assert_int_equal(net_client_request(a.c, "POST", a.url, &h, 1, init, sizeof init, &r),
			 ESIM_E_NET_HTTP_STATUS);
	assert_int_equal(r.status, 400);
	net_client_response_clear(&r);

	apdu_session_close(card);
	net_client_free(a.c);
	free(a.last);
	/* the event goes again */
	json_t *b =
	    json_pack("{s:{s:s,s:s},s:s,s:s}", "header", "functionRequesterIdentifier", "test",
		      "functionCallIdentifier", "t-del", "eid", H_EID, "eventId", "EVT-ASN1");
	json_t *o = NULL;
	assert_esim(ESIM_OK, post(e, e->es12_addr, "/gsma/rsp2/es12/deleteEvent", real, b, &o));
	assert_string_equal(status_of(o, st), "");
	json_decref(o);
}

/* ---- the eUICC chain: one check for both servers ----------------------------- */

/* authenticateClient with the eUICC's answer as the card gave it, but
 * another certificate in place of CERT.EUM (the certificates are outside
 * euiccSigned1, so the rest still verifies). */
struct swap_eum {
	struct lpa_http h;
	const uint8_t *eum;
	size_t eum_len;
	char *answer;
};

static esim_err swap_eum_es9(void *ctx, const char *function, const char *json, int *status,
			     char **out)
{
	struct swap_eum *w = ctx;
	if (strcmp(function, "authenticateClient") != 0)
		return lpa_es9_http(&w->h, function, json, status, out);
	json_t *req = json_loads(json, 0, NULL);
	uint8_t *asr = NULL, *nasr = NULL;
	size_t asr_len = 0, nasr_len = 0;
	if (!req || net_json_get_base64(req, "authenticateServerResponse", 1 << 16, &asr, &asr_len,
					NULL) != ESIM_OK)
		return ESIM_E_ARG;
	der_cursor top, bf38, a0;
	der_element signed1, sig1, ecert, eum;
	der_cursor_init(&top, asr, asr_len);
	der_builder b;
	der_builder_init(&b);
	esim_err err = der_get_sequence(&top, 0xBF38, &bf38);
	if (err == ESIM_OK)
		err = der_get_sequence(&bf38, 0xA0, &a0);
	if (err == ESIM_OK)
		err = der_get_tlv(&a0, 0x30, &signed1);
	if (err == ESIM_OK)
		err = der_get_tlv(&a0, 0x5F37, &sig1);
	if (err == ESIM_OK)
		err = der_get_tlv(&a0, 0x30, &ecert);
	if (err == ESIM_OK)
		err = der_get_tlv(&a0, 0x30, &eum);
	if (err == ESIM_OK)
		err = der_builder_open(&b, 0xBF38);
	if (err == ESIM_OK)
		err = der_builder_open(&b, 0xA0);
	if (err == ESIM_OK)
		err = der_add_raw(&b, signed1.tlv.p, signed1.tlv.len);
	if (err == ESIM_OK)
		err = der_add_raw(&b, sig1.tlv.p, sig1.tlv.len);
	if (err == ESIM_OK)
		err = der_add_raw(&b, ecert.tlv.p, ecert.tlv.len);
	if (err == ESIM_OK)
		err = der_add_raw(&b, w->eum, w->eum_len);
	if (err == ESIM_OK)
		err = der_builder_close(&b);
	if (err == ESIM_OK)
		err = der_builder_close(&b);
	if (err == ESIM_OK)
		err = der_builder_finish(&b, &nasr, &nasr_len);
	der_builder_free(&b);
	char *text = NULL;
	if (err == ESIM_OK)
		err = net_json_set_base64(req, "authenticateServerResponse", nasr, nasr_len);
	if (err == ESIM_OK && !(text = json_dumps(req, JSON_COMPACT)))
		err = ESIM_E_NOMEM;
	if (err == ESIM_OK)
		err = lpa_es9_http(&w->h, function, text, status, out);
	if (err == ESIM_OK && *out) {
		free(w->answer);
		w->answer = strdup(*out);
	}
	free(text);
	free(asr);
	free(nasr);
	json_decref(req);
	return err;
}

/* One session at addr with the EUM swapped for cert_path's certificate:
 * the authenticateClient status. */
static void swapped_eum_status(struct senv *e, const char *addr, const char *cert_path, char st[32])
{
	char base[96];
	snprintf(base, sizeof base, "https://%s", addr);
	crypto_cert *c = NULL;
	assert_esim(ESIM_OK, crypto_cert_load_file(cert_path, &c));
	struct net_client_config cc = {.ca_file = e->l.ci};
	struct swap_eum w = {0};
	w.eum = crypto_cert_der(c, &w.eum_len);
	assert_esim(ESIM_OK, net_client_new(&cc, &w.h.client));
	w.h.base_url = base;
	apdu_session *card = h_connect_retry(e->l.sock, 5000);
	struct lpa_driver drv = {card_es10, card, swap_eum_es9, &w, addr};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_false(s.failed);
	lpa_dl_authenticate(&s, NULL);
	lpa_session_clear(&s);
	assert_non_null(w.answer);
	json_t *a = json_loads(w.answer, 0, NULL);
	status_of(a, st);
	assert_null(json_object_get(a, "eventEntries"));
	json_decref(a);
	apdu_session_close(card);
	net_client_free(w.h.client);
	free(w.answer);
	crypto_cert_free(c);
}

/* The SM-DS checks the eUICC's chain with the SM-DP+'s own function
 * (rsp_server_check_chain), step by step: a CERT.EUM that is no EUM (here
 * the SM-DP+'s CERT.DPauth, issued by the same CI but no CA) is "EUM
 * certificate invalid", 8.1.2 / 6.1, at both servers (the SM-DS answered
 * 8.1.3 / 6.1, the eUICC's code, before). */
static void test_es11_chain_same_codes(void **state)
{
	struct senv *e = *state;
	char dpauth[700], st[32];
	snprintf(dpauth, sizeof dpauth, "%s/dpauth.der", e->cdir);
	swapped_eum_status(e, e->es11_addr, dpauth, st);
	assert_string_equal(st, "8.1.2/6.1");
	swapped_eum_status(e, e->l.addr, dpauth, st);
	assert_string_equal(st, "8.1.2/6.1");
}

/* initiateAuthentication refused before any session: another address
 * (8.9.1 / 3.8), no signing CI we trust (8.9.2 / 3.1), no CERT.DSauth the
 * eUICC can verify (8.9.4 / 3.7), SGP.22 v3 (8.9.3 / 3.1). */
static json_t *initiate(struct senv *e, const char *addr, const uint8_t *sign_ci,
			const uint8_t *verif_ci, uint8_t major)
{
	uint8_t info[64] = {0xBF, 0x20, 0x35, 0x82, 0x03, major,
			    0x02, 0x00, 0xA9, 0x16, 0x04, 0x14};
	memcpy(info + 12, verif_ci, 20);
	info[32] = 0xAA;
	info[33] = 0x16;
	info[34] = 0x04;
	info[35] = 0x14;
	memcpy(info + 36, sign_ci, 20);
	uint8_t chal[16] = {1, 2, 3};
	json_t *b = json_pack("{s:s}", "smdpAddress", addr);
	assert_esim(ESIM_OK, net_json_set_base64(b, "euiccChallenge", chal, sizeof chal));
	assert_esim(ESIM_OK, net_json_set_base64(b, "euiccInfo1", info, 56));
	json_t *out = NULL;
	assert_esim(ESIM_OK, post(e, e->es11_addr, "/gsma/rsp2/es9plus/initiateAuthentication",
				  NULL, b, &out));
	return out;
}

static void test_es11_initiate_refusals(void **state)
{
	struct senv *e = *state;
	crypto_cert *ci = NULL;
	uint8_t ours[CRYPTO_KEY_ID_MAX], other[20];
	size_t n = 0;
	assert_esim(ESIM_OK, crypto_cert_load_file(e->l.ci, &ci));
	assert_esim(ESIM_OK, crypto_cert_ski(ci, ours, &n));
	crypto_cert_free(ci);
	assert_int_equal(n, 20);
	memset(other, 0x5A, sizeof other);
	char st[32];
	struct {
		const char *addr;
		const uint8_t *sign, *verif;
		uint8_t major;
		const char *want;
	} cases[] = {
	    {e->es11_addr, ours, ours, 2, ""},
	    {"smds.other.example", ours, ours, 2, "8.9.1/3.8"},
	    {e->es11_addr, other, ours, 2, "8.9.2/3.1"},
	    {e->es11_addr, ours, other, 2, "8.9.4/3.7"},
	    {e->es11_addr, ours, ours, 3, "8.9.3/3.1"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *r =
		    initiate(e, cases[i].addr, cases[i].sign, cases[i].verif, cases[i].major);
		assert_string_equal(status_of(r, st), cases[i].want);
		assert_int_equal(json_object_get(r, "serverSigned1") != NULL,
				 cases[i].want[0] == 0);
		json_decref(r);
	}
}

/* ---- the SM-DP+ and a slow or refusing SM-DS (the test's own) --------------- */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ConfirmOrder on a thread of its own (no cmocka asserts there): the
 * status ("" success, "subject/reason", "error" without an answer) and
 * how long it took. */
struct bg_confirm {
	struct senv *e;
	char iccid[32], smds[64], call_id[32];
	char st[32];
	double secs;
	pthread_t th;
};

static void *bg_confirm_run(void *arg)
{
	struct bg_confirm *b = arg;
	struct senv *e = b->e;
	char cf[800], kf[800], url[300];
	snprintf(cf, sizeof cf, "%s/operator.pem", e->cdir);
	snprintf(kf, sizeof kf, "%s/operator.key.pem", e->cdir);
	struct net_client_config cc = {
	    .ca_file = e->l.ci, .timeout_ms = 30000, .client_cert_file = cf, .client_key_file = kf};
	json_t *body =
	    json_pack("{s:{s:s,s:s},s:s,s:s,s:s,s:b}", "header", "functionRequesterIdentifier",
		      "OP", "functionCallIdentifier", b->call_id, "iccid", b->iccid, "eid", H_EID,
		      "smdsAddress", b->smds, "releaseFlag", 1);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(url, sizeof url, "https://127.0.0.1:%u/gsma/rsp2/es2plus/confirmOrder",
		 e->es2_port);
	snprintf(b->st, sizeof b->st, "error");
	double t0 = now_s();
	net_client *c = NULL;
	struct net_client_response r;
	memset(&r, 0, sizeof r);
	if (text && net_client_new(&cc, &c) == ESIM_OK &&
	    net_client_post_json(c, url, text, strlen(text), &r) == ESIM_OK) {
		json_t *doc = NULL;
		if (net_json_parse(r.body.data, r.body.len, 1 << 20, 16, &doc, NULL) == ESIM_OK) {
			json_t *fes = json_object_get(json_object_get(doc, "header"),
						      "functionExecutionStatus");
			const char *s = json_string_value(json_object_get(fes, "status"));
			json_t *scd = json_object_get(fes, "statusCodeData");
			if (s && strcmp(s, "Executed-Success") == 0)
				b->st[0] = '\0';
			else if (s)
				snprintf(b->st, sizeof b->st, "%s/%s",
					 json_string_value(json_object_get(scd, "subjectCode")),
					 json_string_value(json_object_get(scd, "reasonCode")));
		}
		json_decref(doc);
	}
	b->secs = now_s() - t0;
	net_client_response_clear(&r);
	net_client_free(c);
	free(text);
	return NULL;
}

static void bg_confirm_start(struct bg_confirm *b, struct senv *e, const char *iccid,
			     const char *smds)
{
	memset(b, 0, sizeof *b);
	b->e = e;
	snprintf(b->iccid, sizeof b->iccid, "%s", iccid);
	snprintf(b->smds, sizeof b->smds, "%s", smds);
	snprintf(b->call_id, sizeof b->call_id, "call-%d", ++e->calls);
	assert_int_equal(pthread_create(&b->th, NULL, bg_confirm_run, b), 0);
}

/* Wait (up to ms) until the test SM-DS has seen want RegisterEvents. */
static bool fake_wait_registers(struct senv *e, int want, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (atomic_load(&e->fake.registers) >= want)
			return true;
		usleep(20000);
	}
	return atomic_load(&e->fake.registers) >= want;
}

/* The SM-DS rows (kind 1) of the SM-DP+'s outbox for registerEvent:
 * how many, and how many are done / failed. */
static void smds_rows(struct senv *e, int *n, int *done, int *failed)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(e->smdp_db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s,
					   "SELECT COUNT(*), COALESCE(SUM(done), 0),"
					   " COALESCE(SUM(failed), 0) FROM smdp_outbox WHERE"
					   " kind = 1 AND url LIKE '%/registerEvent'",
					   &st));
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	*n = (int)store_col_int64(st, 0);
	*done = (int)store_col_int64(st, 1);
	*failed = (int)store_col_int64(st, 2);
	store_finalize(st);
	store_close(s);
}

/* ConfirmOrder's RegisterEvent to a slow SM-DS holds no transaction:
 * another ES2+ call (DownloadOrder, a write) completes at once while it
 * waits. Registered: the order is confirmed and its held outbox row gone
 * (no second RegisterEvent). Refused after the wait: the order is back
 * to Allocated, no SM-DS row is left, and it can be confirmed again. */
static void test_slow_smds_blocks_nothing(void **state)
{
	struct senv *e = *state;
	char iccid[32], other[32], st[32], s2[32];
	int n0, d0, f0, n, dn, fl;
	smds_rows(e, &n0, &d0, &f0);
	fake_start(e, 3000, false);
	download_order(e, iccid);
	struct bg_confirm b;
	bg_confirm_start(&b, e, iccid, e->fake_addr);
	assert_true(fake_wait_registers(e, 1, 5000)); /* the SM-DP+ waits on it now */
	double t0 = now_s();
	download_order(e, other); /* an ES2+ write meanwhile */
	double took = now_s() - t0;
	assert_int_equal(pthread_join(b.th, NULL), 0);
	if (took > 1.5)
		fail_msg("DownloadOrder took %.2f s while the SM-DS was slow", took);
	print_message("DownloadOrder while ConfirmOrder waits 3 s on the SM-DS: %.3f s\n", took);
	assert_string_equal(b.st, "");
	assert_true(b.secs >= 2.5); /* it did wait for the SM-DS */
	assert_string_equal(smdp_state(e, iccid, s2), "Released");
	smds_rows(e, &n, &dn, &fl);
	assert_int_equal(n, n0); /* registered: the held row went */
	usleep(300000);
	assert_int_equal(atomic_load(&e->fake.registers), 1);

	/* refused after the wait: the order is put back, nothing queued */
	atomic_store(&e->fake.refuse, true);
	bg_confirm_start(&b, e, other, e->fake_addr);
	assert_true(fake_wait_registers(e, 2, 5000));
	t0 = now_s();
	download_order(e, iccid);
	took = now_s() - t0;
	assert_int_equal(pthread_join(b.th, NULL), 0);
	if (took > 1.5)
		fail_msg("DownloadOrder took %.2f s while the SM-DS was slow", took);
	assert_string_equal(b.st, "8.9/4.2");
	assert_string_equal(smdp_state(e, other, s2), "Allocated");
	smds_rows(e, &n, &dn, &fl);
	assert_int_equal(n, n0);
	/* and the order confirms now that the SM-DS takes it */
	atomic_store(&e->fake.refuse, false);
	atomic_store(&e->fake.delay_ms, 0);
	confirm(e, other, e->fake_addr, NULL, st, NULL);
	assert_string_equal(st, "");
	assert_string_equal(smdp_state(e, other, s2), "Released");
	fake_stop(e);
}

/* The SM-DP+ killed while its ConfirmOrder waits on the SM-DS (after the
 * first transaction, before the second): the order is confirmed and its
 * RegisterEvent is in the outbox, held; the restarted SM-DP+ sends it
 * once the hold has passed. No order is confirmed without its event
 * queued, none is left half-way. */
static void test_crash_between_steps(void **state)
{
	struct senv *e = *state;
	char iccid[32], s2[32];
	int n0, d0, f0, n, dn, fl;
	smds_rows(e, &n0, &d0, &f0);
	fake_start(e, 3000, false);
	download_order(e, iccid);
	struct bg_confirm b;
	bg_confirm_start(&b, e, iccid, e->fake_addr);
	assert_true(fake_wait_registers(e, 1, 5000));
	kill(e->l.smdp, SIGKILL);
	waitpid(e->l.smdp, NULL, 0);
	e->l.smdp = 0;
	assert_int_equal(pthread_join(b.th, NULL), 0);
	assert_string_equal(b.st, "error"); /* no answer */
	assert_string_equal(smdp_state(e, iccid, s2), "Released");
	smds_rows(e, &n, &dn, &fl);
	assert_int_equal(n - n0, 1);
	assert_int_equal(dn - d0, 0);
	atomic_store(&e->fake.delay_ms, 0);
	l_start_smdp(&e->l);
	/* due SMDS_TIMEOUT_MS / 1000 + 2 s after the first transaction */
	assert_true(fake_wait_registers(e, 2, 15000));
	for (int i = 0; i < 100; i++) {
		smds_rows(e, &n, &dn, &fl);
		if (dn - d0 == 1)
			break;
		usleep(50000);
	}
	assert_int_equal(dn - d0, 1);
	assert_int_equal(fl - f0, 0);
	fake_stop(e);
}

/* A RegisterEvent from the outbox (the SM-DS was down at ConfirmOrder)
 * that the SM-DS then refuses with HTTP 200 and a Failed header: not
 * delivered but failed for good (not sent again), and the profile's
 * history says the event was refused and why. */
static void test_outbox_register_refused(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], s2[32], args[64], *hist = NULL;
	int n0, d0, f0, n, dn, fl;
	fake_stop(e); /* nobody listens there yet */
	smds_rows(e, &n0, &d0, &f0);
	download_order(e, iccid);
	confirm(e, iccid, e->fake_addr, NULL, st, NULL);
	assert_string_equal(st, "");
	assert_string_equal(smdp_state(e, iccid, s2), "Released");
	fake_start(e, 0, true);
	assert_true(fake_wait_registers(e, 1, 15000));
	for (int i = 0; i < 100; i++) {
		smds_rows(e, &n, &dn, &fl);
		if (fl - f0 == 1)
			break;
		usleep(50000);
	}
	assert_int_equal(n - n0, 1);
	assert_int_equal(fl - f0, 1);
	assert_int_equal(dn - d0, 0);
	snprintf(args, sizeof args, "history %s", iccid);
	assert_int_equal(l_smdp_cmd(&e->l, args, &hist), 0);
	if (!strstr(hist, "RegisterEvent refused by the SM-DS (8.9.5/3.3)"))
		fail_msg("history without the refusal:\n%s", hist);
	free(hist);
	usleep(2500000); /* the outbox's back-off would have retried by now */
	assert_int_equal(atomic_load(&e->fake.registers), 1);
	fake_stop(e);
}

/* An order that fails for good in ES9+ (here its one confirmation code
 * attempt spent on a wrong code) loses its SM-DS event with it. */
static void test_failed_order_deletes_event(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], s2[32], args[400], mid[80];
	size_t before = smds_events(e, H_EID);
	download_order(e, iccid);
	json_t *r =
	    es2(e, "confirmOrder",
		json_pack("{s:s,s:s,s:s,s:s,s:b}", "iccid", iccid, "eid", H_EID, "smdsAddress",
			  e->es12_addr, "confirmationCode", "7294", "releaseFlag", 1));
	assert_string_equal(status_of(r, st), "");
	snprintf(mid, sizeof mid, "%s", json_string_value(json_object_get(r, "matchingId")));
	json_decref(r);
	assert_int_equal(smds_events(e, H_EID), before + 1);
	snprintf(args, sizeof args,
		 "profile download --discover --smds %s --event %s --confirmation-code 1111",
		 e->es11_addr, mid);
	assert_int_not_equal(l_esim(&e->l, args), 0);
	assert_non_null(strstr(e->l.err, "8.2.7"));
	assert_string_equal(smdp_state(e, iccid, s2), "Error");
	assert_true(wait_events(e, H_EID, before));
}

/* SM-DS rows of the outbox not yet done nor failed. */
static int smds_pending(struct senv *e)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(e->smdp_db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s,
					   "SELECT COUNT(*) FROM smdp_outbox WHERE kind = 1 AND"
					   " done = 0 AND failed = 0",
					   &st));
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	int n = row ? (int)store_col_int64(st, 0) : -1;
	store_finalize(st);
	store_close(s);
	return n;
}

/* The newest RegisterEvent row as another instance holds it while sending
 * it: leased to someone else for secs more, due once the lease runs out. */
static void lease_register_elsewhere(struct senv *e, int secs)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(e->smdp_db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(s,
				  "UPDATE smdp_outbox SET lease_owner = 'another-instance',"
				  " lease_until = ?1, next_try = ?2 WHERE id = (SELECT MAX(id) FROM"
				  " smdp_outbox WHERE kind = 1 AND url LIKE '%/registerEvent')",
				  &st));
	int64_t now = (int64_t)time(NULL);
	store_bind_int64(st, 1, now + secs);
	store_bind_int64(st, 2, now);
	assert_esim(ESIM_OK, store_run(st));
	assert_int_equal(store_changes(s), 1);
	store_finalize(st);
	store_close(s);
}

/* An order ends while another instance is still sending its RegisterEvent
 * (the row leased elsewhere): the DeleteEvent queued then waits for it, so
 * the SM-DS ends with no event. Before, the DeleteEvent went first (nothing
 * to delete yet: done) and the RegisterEvent after it left the event at the
 * SM-DS for good, announcing an order that no longer exists. */
static void test_delete_waits_for_register(void **state)
{
	struct senv *e = *state;
	char iccid[32], st[32], mid[80];
	int n0, d0, f0, n, dn, fl;
	kill(e->smds, SIGTERM);
	waitpid(e->smds, NULL, 0);
	e->smds = 0;
	smds_rows(e, &n0, &d0, &f0);
	size_t before = smds_events(e, NULL);
	download_order(e, iccid);
	confirm(e, iccid, e->es12_addr, NULL, st, mid);
	assert_string_equal(st, "");
	lease_register_elsewhere(e, 3);
	json_t *r = es2(e, "cancelOrder",
			json_pack("{s:s,s:s,s:s}", "iccid", iccid, "eid", H_EID,
				  "finalProfileStatusIndicator", "Available"));
	assert_string_equal(status_of(r, st), "");
	json_decref(r);
	assert_int_equal(smds_pending(e), 2); /* the RegisterEvent kept, the DeleteEvent */
	start_smds(e);
	/* the lease runs out, this instance sends both, in their order */
	int pending = -1;
	for (int i = 0; i < 300 && (pending = smds_pending(e)) != 0; i++)
		usleep(50000);
	assert_int_equal(pending, 0);
	smds_rows(e, &n, &dn, &fl);
	assert_int_equal(dn - d0, 1); /* the RegisterEvent was sent */
	assert_int_equal(fl - f0, 0);
	assert_int_equal(smds_events(e, NULL), before);
}

int main(void)
{
	const struct CMUnitTest nist[] = {
	    cmocka_unit_test(test_register_discover_download),
	    cmocka_unit_test(test_confirm_unknown_or_refusing_smds),
	    cmocka_unit_test(test_es12_wrong_certificate),
	    cmocka_unit_test(test_other_eid_never_shown),
	    cmocka_unit_test(test_es11_replay_and_expiry),
	    cmocka_unit_test(test_es11_initiate_refusals),
	    cmocka_unit_test(test_smds_unreachable_queued),
	    cmocka_unit_test(test_slow_smds_blocks_nothing),
	    cmocka_unit_test(test_crash_between_steps),
	    cmocka_unit_test(test_outbox_register_refused),
	    cmocka_unit_test(test_failed_order_deletes_event),
	    cmocka_unit_test(test_delete_waits_for_register),
	    cmocka_unit_test(test_es11_asn1),
	    cmocka_unit_test(test_es11_chain_same_codes),
	};
	const struct CMUnitTest brp[] = {
	    cmocka_unit_test(test_register_discover_download),
	    cmocka_unit_test(test_es12_wrong_certificate),
	    cmocka_unit_test(test_es11_asn1),
	};
	const struct CMUnitTest on_pg[] = {
	    cmocka_unit_test(test_register_discover_download),
	    cmocka_unit_test(test_confirm_unknown_or_refusing_smds),
	    cmocka_unit_test(test_other_eid_never_shown),
	    cmocka_unit_test(test_es11_replay_and_expiry),
	};
	int rc = cmocka_run_group_tests_name("smds_nist", nist, setup_nist, teardown);
	rc |= cmocka_run_group_tests_name("smds_brp", brp, setup_brp, teardown);
	/* the same code on PostgreSQL (tests/common/pg_helper.c) */
	int pr = pg_start(&pg);
	if (pr == TEST_SKIP_CODE)
		snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
	else if (pr != 0)
		rc = 1;
	else
		rc |= cmocka_run_group_tests_name("smds_postgresql", on_pg, setup_pg, teardown);
	pg_stop(&pg);
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
