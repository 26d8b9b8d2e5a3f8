/*
 * `esim profile discover` (ES11) against the real SM-DS, esim-smds (its
 * CERT.DStls and CERT.DSauth issued by esim-pki under the CI, the events
 * registered over ES12 with the SM-DP+'s certificate), and the LPA's own
 * checks of what a server signs (digest 6.3, 15.3) against a small HTTPS
 * server played by the test with include/esim/net.h and the rsp builders:
 * an SM-DS whose eventEntries is not a list, and the same server
 * misbehaving as an SM-DP+ (it signs another serverAddress, or puts
 * another transactionId in the JSON than it signed). The card is a real
 * esim-euicc; esim runs as a subprocess. The SM-DS's own cases are in
 * test_smds.c.
 */
#include "test_lpa_fixture.h"

#include "esim/net.h"

enum mode { MODE_SMDS = 0, MODE_WRONG_ADDRESS, MODE_WRONG_TXID, MODE_EVENTS_NOT_LIST };

struct ds {
	struct h_smdp d;
	char addr[64];
	enum mode mode;
	pthread_mutex_t lock;
	int auth_client_calls;
	net_server *srv;
	uint16_t port;
};

static esim_err reply(net_response *resp, json_t *doc)
{
	json_t *h = json_pack("{s:{s:s}}", "functionExecutionStatus", "status",
			      json_object_get(doc, "failed") ? "Failed" : "Executed-Success");
	json_object_set_new(doc, "header", h);
	esim_err err = net_response_json(resp, 200, doc);
	json_decref(doc);
	return err;
}

static void set_b64(json_t *o, const char *k, const uint8_t *p, size_t n)
{
	assert_esim(ESIM_OK, net_json_set_base64(o, k, p, n));
}

static esim_err initiate(const net_request *req, net_response *resp, void *arg)
{
	struct ds *s = arg;
	json_t *in = NULL;
	assert_esim(ESIM_OK, net_json_parse(req->body, req->body_len, 65536, 8, &in, NULL));
	uint8_t *ch = NULL;
	size_t ch_len = 0;
	assert_esim(ESIM_OK, net_json_get_base64(in, "euiccChallenge", 64, &ch, &ch_len, NULL));
	assert_int_equal(ch_len, 16);
	json_decref(in);
	pthread_mutex_lock(&s->lock);
	assert_esim(ESIM_OK, rsp_txid_random(&s->d.txid));
	for (size_t i = 0; i < 16; i++)
		s->d.server_challenge[i] = (uint8_t)rand();
	uint8_t *signed1 = NULL, sig[RSP_SIG_LEN], sig_tlv[RSP_SIG_TLV_LEN];
	size_t signed1_len = 0;
	const char *signed_addr = s->mode == MODE_WRONG_ADDRESS ? "evil.example.com" : s->addr;
	assert_esim(ESIM_OK,
		    rsp_server_signed1_build(&s->d.txid, ch, signed_addr, s->d.server_challenge,
					     s->d.auth_key, &signed1, &signed1_len, sig));
	rsp_sig_tlv(sig, sig_tlv);
	rsp_txid shown = s->d.txid;
	if (s->mode == MODE_WRONG_TXID)
		shown.b[0] ^= 0x55;
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&shown, hex);
	pthread_mutex_unlock(&s->lock);
	json_t *out = json_object();
	json_object_set_new(out, "transactionId", json_string(hex));
	set_b64(out, "serverSigned1", signed1, signed1_len);
	set_b64(out, "serverSignature1", sig_tlv, sizeof sig_tlv);
	set_b64(out, "euiccCiPKIdToBeUsed", s->d.ci_pkid_tlv, sizeof s->d.ci_pkid_tlv);
	set_b64(out, "serverCertificate", s->d.auth_der, s->d.auth_len);
	free(signed1);
	free(ch);
	return reply(resp, out);
}

static esim_err authenticate_client(const net_request *req, net_response *resp, void *arg)
{
	struct ds *s = arg;
	json_t *in = NULL;
	assert_esim(ESIM_OK, net_json_parse(req->body, req->body_len, 65536, 8, &in, NULL));
	uint8_t *asr = NULL;
	size_t asr_len = 0;
	assert_esim(ESIM_OK, net_json_get_base64(in, "authenticateServerResponse", 65536, &asr,
						 &asr_len, NULL));
	json_decref(in);
	pthread_mutex_lock(&s->lock);
	s->auth_client_calls++;
	struct rsp_auth_server_resp ar;
	memset(&ar, 0, sizeof ar);
	struct rsp_auth_expect ex = {
	    .trust = s->d.trust,
	    .txid = &s->d.txid,
	    .server_challenge = s->d.server_challenge,
	};
	esim_err err = rsp_auth_server_resp_verify(asr, asr_len, &ex, &ar);
	pthread_mutex_unlock(&s->lock);
	rsp_auth_server_resp_clear(&ar);
	free(asr);
	json_t *out = json_object();
	if (err != ESIM_OK) {
		json_object_set_new(out, "failed", json_true());
		return reply(resp, out);
	}
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&s->d.txid, hex);
	json_object_set_new(out, "transactionId", json_string(hex));
	if (s->mode == MODE_EVENTS_NOT_LIST) /* an object where the list belongs */
		json_object_set_new(out, "eventEntries", json_pack("{s:s}", "eventId", "EVT-1"));
	else
		json_object_set_new(out, "eventEntries",
				    json_pack("[{s:s,s:s},{s:s,s:s}]", "eventId", "EVT-1",
					      "rspServerAddress", "smdp.example.com", "eventId",
					      "EVT-2", "rspServerAddress", "other.example.com"));
	return reply(resp, out);
}

static struct ds *ds_start(struct lenv *e, enum mode mode)
{
	struct ds *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->mode = mode;
	h_smdp_from_pki(&s->d, e->pki, "nist");
	char chain[700], key[700];
	snprintf(chain, sizeof chain, "%s/nist/dptls.pem", e->pki);
	snprintf(key, sizeof key, "%s/nist/dptls.key.pem", e->pki);
	assert_esim(ESIM_OK, net_server_new(NULL, &s->srv));
	struct net_listener_config lc = {
	    .address = "127.0.0.1", .tls = true, .cert_chain_file = chain, .key_file = key};
	int id = -1;
	assert_esim(ESIM_OK, net_server_add_listener(s->srv, &lc, &id));
	s->port = net_server_port(s->srv, id);
	snprintf(s->addr, sizeof s->addr, "127.0.0.1:%u", s->port);
	assert_esim(ESIM_OK,
		    net_server_add_route(s->srv, -1, "POST",
					 "/gsma/rsp2/es9plus/initiateAuthentication", initiate, s));
	assert_esim(ESIM_OK, net_server_add_route(s->srv, -1, "POST",
						  "/gsma/rsp2/es9plus/authenticateClient",
						  authenticate_client, s));
	assert_esim(ESIM_OK, net_server_start(s->srv));
	return s;
}

static void ds_stop(struct ds *s)
{
	net_server_free(s->srv);
	h_smdp_free(&s->d);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- the real SM-DS ---------------------------------------------------- */

struct smds_proc {
	pid_t pid;
	char es11[64], es12[64], conf[700];
};

static void smds_start(struct lenv *e, struct smds_proc *p)
{
	char cmd[3000];
	const char *roles[][2] = {{"dstls", ""}, {"dsauth", "--oid 2.999.20"}};
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof cmd,
			 "'%s/esim-pki' issue %s --out '%s/%s' --issuer-cert '%s/nist/ci.pem'"
			 " --issuer-key '%s/nist/ci.key.pem' --host 127.0.0.1 %s >/dev/null 2>&1",
			 test_bin_dir(), roles[i][0], e->dir, roles[i][0], e->pki, e->pki,
			 roles[i][1]);
		assert_int_equal(l_sh(cmd, NULL), 0);
	}
	uint16_t p11 = l_free_port(), p12;
	do
		p12 = l_free_port();
	while (p12 == p11 || p12 == e->port || p11 == e->port);
	snprintf(p->es11, sizeof p->es11, "127.0.0.1:%u", p11);
	snprintf(p->es12, sizeof p->es12, "127.0.0.1:%u", p12);
	snprintf(p->conf, sizeof p->conf, "%s/smds.conf", e->dir);
	FILE *f = fopen(p->conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = sqlite:%s/smds.db\nfqdn = %s\ndsauth-cert-nist = %s/dsauth.pem\n"
		"dsauth-key-nist = %s/dsauth.key.pem\nci = %s/nist/ci.pem\nlisten-nist = %s\n"
		"tls-cert-nist = %s/dstls.pem\ntls-key-nist = %s/dstls.key.pem\n"
		"listen-es12 = %s\nsmdp-clients = %s %s/nist/dptls.pem\n",
		e->dir, p->es11, e->dir, e->dir, e->pki, p->es11, e->dir, e->dir, p->es12, e->addr,
		e->pki);
	fclose(f);
	char prog[700];
	snprintf(prog, sizeof prog, "%s/esim-smds", test_bin_dir());
	snprintf(cmd, sizeof cmd, "%s/smds.log", e->dir);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		int fd = open(cmd, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(prog, prog, "serve", "--config", p->conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 2000 && !(l_port_open(p11) && l_port_open(p12)); i++)
		usleep(10000);
	assert_true(l_port_open(p11) && l_port_open(p12));
}

static void smds_stop(struct smds_proc *p)
{
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
}

/* ES12 RegisterEvent as the SM-DP+ (its DPtls certificate, pinned). */
static void smds_register(struct lenv *e, struct smds_proc *p, const char *event)
{
	char cert[700], key[700], url[200];
	snprintf(cert, sizeof cert, "%s/nist/dptls.pem", e->pki);
	snprintf(key, sizeof key, "%s/nist/dptls.key.pem", e->pki);
	struct net_client_config cc = {
	    .ca_file = e->ci, .client_cert_file = cert, .client_key_file = key};
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	json_t *b = json_pack("{s:s,s:s,s:s,s:b}", "eid", H_EID, "rspServerAddress", e->addr,
			      "eventId", event, "forwardingIndicator", 0);
	char *text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	snprintf(url, sizeof url, "https://%s/gsma/rsp2/es12/registerEvent", p->es12);
	struct net_client_response r;
	assert_esim(ESIM_OK, net_client_post_json(c, url, text, strlen(text), &r));
	assert_non_null(strstr((const char *)r.body.data, "Executed-Success"));
	net_client_response_clear(&r);
	free(text);
	net_client_free(c);
}

static int setup(void **state)
{
	*state = l_setup();
	return 0;
}

static int teardown(void **state)
{
	l_teardown(*state);
	return 0;
}

static void test_discover(void **state)
{
	struct lenv *e = *state;
	struct smds_proc p;
	smds_start(e, &p);
	char args[300];
	snprintf(args, sizeof args, "profile discover --smds %s", p.es11);
	int rc0 = l_esim(e, args); /* nothing registered yet: an empty list */
	size_t n0 = json_array_size(json_object_get(l_result(e), "events"));
	smds_register(e, &p, "EVT-1");
	smds_register(e, &p, "EVT-2");
	int rc = l_esim(e, args);
	smds_stop(&p);
	assert_int_equal(rc0, 0);
	assert_int_equal(n0, 0);
	/* the SM-DS refuses a matchingId in ctxParams1 (8.2.6 / 3.8): success
	 * also says that the LPA sent none, as ES11 wants */
	if (rc != 0)
		fail_msg("discover: %s", e->err);
	json_t *ev = json_object_get(l_result(e), "events");
	assert_int_equal(json_array_size(ev), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "event_id")),
			    "EVT-1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 1), "event_id")),
			    "EVT-2");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(ev, 0), "smdp_address")), e->addr);
	assert_int_equal(l_esim(e, "profile discover --smds 'not an address'"), CLI_EXIT_USAGE);
}

/* An eventEntries that is not a list is refused as the server's fault; the
 * LPA used to drop the answer's own reference to it and then free the
 * answer (a double free that killed esim with SIGABRT). */
static void test_discover_events_not_a_list(void **state)
{
	struct lenv *e = *state;
	struct ds *s = ds_start(e, MODE_EVENTS_NOT_LIST);
	char args[300];
	snprintf(args, sizeof args, "profile discover --smds %s", s->addr);
	int rc = l_esim(e, args);
	ds_stop(s);
	assert_int_equal(rc, CLI_EXIT_SERVER);
	assert_non_null(strstr(e->err, "eventEntries is not a list"));
}

static void test_discover_untrusted(void **state)
{
	struct lenv *e = *state;
	struct ds *s = ds_start(e, MODE_SMDS);
	char cmd[3000];
	snprintf(cmd, sizeof cmd,
		 "'%s/esim' profile discover --smds %s --socket 'unix:%s' --ci '%s/brp/ci.pem' "
		 ">/dev/null 2>&1",
		 test_bin_dir(), s->addr, e->sock, e->pki);
	int rc = l_sh(cmd, NULL);
	int calls = s->auth_client_calls;
	ds_stop(s);
	assert_int_equal(rc, CLI_EXIT_NETWORK);
	assert_int_equal(calls, 0);
}

static void test_server_signs_other_address(void **state)
{
	struct lenv *e = *state;
	struct ds *s = ds_start(e, MODE_WRONG_ADDRESS);
	char args[300];
	snprintf(args, sizeof args, "profile download 'LPA:1$%s$MID-1'", s->addr);
	int rc = l_esim(e, args);
	int calls = s->auth_client_calls;
	ds_stop(s);
	assert_int_equal(rc, CLI_EXIT_SERVER);
	assert_non_null(strstr(e->err, "evil.example.com"));
	assert_int_equal(calls, 0); /* stopped before AuthenticateServer */
}

static void test_server_txid_mismatch(void **state)
{
	struct lenv *e = *state;
	struct ds *s = ds_start(e, MODE_WRONG_TXID);
	char args[300];
	snprintf(args, sizeof args, "profile download --smdp %s --matching-id MID-1", s->addr);
	int rc = l_esim(e, args);
	int calls = s->auth_client_calls;
	ds_stop(s);
	assert_int_equal(rc, CLI_EXIT_SERVER);
	assert_non_null(strstr(e->err, "transactionId"));
	assert_int_equal(calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_discover),
	    cmocka_unit_test(test_discover_events_not_a_list),
	    cmocka_unit_test(test_discover_untrusted),
	    cmocka_unit_test(test_server_signs_other_address),
	    cmocka_unit_test(test_server_txid_mismatch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
