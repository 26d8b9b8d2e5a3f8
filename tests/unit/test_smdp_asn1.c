/*
 * ES9+ in the ASN.1 binding (SGP.22 6.6): the test LPA's JSON calls are
 * turned into RemoteProfileProvisioningRequest DER (A2 { BF39 | BF3B | BF3A
 * | BF41 | BF3D }) by an adapter written here, sent to smdp_es9_asn1() (in
 * process) or to POST /gsma/rsp2/asn1 (over HTTP), and the DER answers are
 * decoded back for the LPA. Covers complete downloads on both curves
 * (initiateAuthentication, authenticateClient, getBoundProfilePackage,
 * handleNotification with a PIR and with another signed notification),
 * cancelSession, each function's error integer, and the protocol faults
 * (wrong outer tag, wrong content type). The adapter's tags are written
 * out from RSPDefinitions' automatic tagging, independently of the codec
 * (src/rsp/es9_asn1.c) the server uses: CancelSessionRequestEs9 carries the
 * eUICC's CancelSessionResponse as [1] A1, HandleNotification the
 * notification inside [0] A0.
 */
#include "esim/der.h"
#include "esim/rsp_es10.h"
#include "test_smdp_fixture.h"

static struct sfx F;

struct asn1_ctx {
	smdp *d;
	net_client *http; /* NULL: in process */
	const char *url;
	uint8_t last_resp[8]; /* first bytes of the last DER answer */
	size_t last_len;
};

static uint32_t fn_tag(const char *fn)
{
	if (strcmp(fn, "initiateAuthentication") == 0)
		return 0xBF39;
	if (strcmp(fn, "authenticateClient") == 0)
		return 0xBF3B;
	if (strcmp(fn, "getBoundProfilePackage") == 0)
		return 0xBF3A;
	if (strcmp(fn, "cancelSession") == 0)
		return 0xBF41;
	if (strcmp(fn, "handleNotification") == 0)
		return 0xBF3D;
	fail_msg("unknown function %s", fn);
	return 0;
}

static void add_field(der_builder *b, json_t *j, const char *field)
{
	uint8_t *p = NULL;
	size_t n = 0;
	assert_esim(ESIM_OK, net_json_get_base64(j, field, 1u << 20, &p, &n, NULL));
	der_add_raw(b, p, n);
	free(p);
}

static void add_txid(der_builder *b, json_t *j)
{
	rsp_txid t;
	assert_esim(ESIM_OK,
		    rsp_txid_from_hex(json_string_value(json_object_get(j, "transactionId")), &t));
	der_add_octet_string(b, 0x80, t.b, t.len);
}

/* The LPA's JSON request as a RemoteProfileProvisioningRequest. */
static void encode_request(const char *fn, const char *json, uint8_t **out, size_t *len)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xA2);
	uint32_t tag = fn_tag(fn);
	der_builder_open(&b, tag);
	if (tag == 0xBF39) {
		uint8_t *c = NULL;
		size_t n = 0;
		assert_esim(ESIM_OK, net_json_get_base64(j, "euiccChallenge", 64, &c, &n, NULL));
		der_add_octet_string(&b, 0x81, c, n);
		free(c);
		const char *a = json_string_value(json_object_get(j, "smdpAddress"));
		der_add_utf8(&b, 0x83, a, strlen(a));
		add_field(&b, j, "euiccInfo1");
	} else if (tag == 0xBF3D) {
		/* HandleNotification ::= [61] SEQUENCE { pendingNotification
		 * PendingNotification }: no component tagged, so automatic tags
		 * give it [0], explicit because PendingNotification is an untagged
		 * CHOICE: A0 wraps the BF37 or 30 */
		der_builder_open(&b, 0xA0);
		add_field(&b, j, "pendingNotification");
		der_builder_close(&b);
	} else if (tag == 0xBF41) {
		/* CancelSessionRequestEs9 ::= [65] SEQUENCE { transactionId,
		 * cancelSessionResponse }: automatic tags [0] 80 and [1], implicit
		 * on the [65]-tagged CancelSessionResponse: its BF41 becomes A1 */
		add_txid(&b, j);
		uint8_t *p = NULL;
		size_t n = 0;
		der_element e;
		assert_esim(ESIM_OK,
			    net_json_get_base64(j, "cancelSessionResponse", 4096, &p, &n, NULL));
		assert_esim(ESIM_OK, der_parse_single(p, n, &e));
		assert_int_equal(e.tag, 0xBF41);
		der_add_tlv(&b, 0xA1, e.value.p, e.value.len);
		free(p);
	} else {
		add_txid(&b, j);
		add_field(&b, j,
			  tag == 0xBF3B ? "authenticateServerResponse" : "prepareDownloadResponse");
	}
	der_builder_close(&b);
	der_builder_close(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, len));
	json_decref(j);
}

static void set_b64(json_t *o, const char *field, const der_element *e)
{
	net_json_set_base64(o, field, e->tlv.p, e->tlv.len);
}

/* Known error integers back to the JSON codes the test LPA reports. */
static void set_error(json_t *o, uint32_t tag, int64_t code)
{
	char s[16], r[16];
	snprintf(s, sizeof s, "asn1-%X", (unsigned)tag);
	snprintf(r, sizeof r, "%lld", (long long)code);
	json_t *scd = json_pack("{s:s,s:s}", "subjectCode", s, "reasonCode", r);
	json_object_set_new(o, "header",
			    json_pack("{s:{s:s,s:o}}", "functionExecutionStatus", "status",
				      "Failed", "statusCodeData", scd));
}

/* A RemoteProfileProvisioningResponse decoded into the JSON answer. */
static char *decode_response(const char *fn, const uint8_t *p, size_t len)
{
	uint32_t tag = fn_tag(fn);
	der_cursor top, a2, f, ok;
	der_cursor_init(&top, p, len);
	assert_esim(ESIM_OK, der_get_sequence(&top, 0xA2, &a2));
	assert_esim(ESIM_OK, der_expect_end(&top));
	assert_esim(ESIM_OK, der_get_sequence(&a2, tag, &f));
	assert_esim(ESIM_OK, der_expect_end(&a2));
	json_t *o = json_object();
	bool present = false;
	assert_esim(ESIM_OK, der_get_optional(&f, 0xA0, &present, &ok));
	if (!present) {
		int64_t code = 0;
		assert_esim(ESIM_OK, der_get_int64(&f, 0x81, &code));
		set_error(o, tag, code);
	} else {
		json_object_set_new(o, "header",
				    json_pack("{s:{s:s}}", "functionExecutionStatus", "status",
					      "Executed-Success"));
		der_element e;
		if (tag != 0xBF41) {
			assert_esim(ESIM_OK, der_get_tlv(&ok, 0x80, &e));
			rsp_txid t;
			assert_true(e.value.len <= RSP_TXID_MAX);
			memcpy(t.b, e.value.p, e.value.len);
			t.len = e.value.len;
			char hex[2 * RSP_TXID_MAX + 1];
			rsp_txid_to_hex(&t, hex);
			json_object_set_new(o, "transactionId", json_string(hex));
		}
		static const char *const f39[] = {"serverSigned1", "serverSignature1",
						  "euiccCiPKIdToBeUsed", "serverCertificate"};
		static const char *const f3b[] = {"profileMetadata", "smdpSigned2",
						  "smdpSignature2", "smdpCertificate"};
		static const uint32_t t39[] = {0x30, 0x5F37, 0x04, 0x30};
		static const uint32_t t3b[] = {0xBF25, 0x30, 0x5F37, 0x30};
		if (tag == 0xBF39 || tag == 0xBF3B)
			for (int i = 0; i < 4; i++) {
				assert_esim(ESIM_OK,
					    der_get_tlv(&ok, tag == 0xBF39 ? t39[i] : t3b[i], &e));
				set_b64(o, tag == 0xBF39 ? f39[i] : f3b[i], &e);
			}
		if (tag == 0xBF3A) {
			assert_esim(ESIM_OK, der_get_tlv(&ok, 0xBF36, &e));
			set_b64(o, "boundProfilePackage", &e);
		}
		assert_esim(ESIM_OK, der_expect_end(&ok));
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static esim_err asn1_es9(void *vctx, const char *fn, const char *json, int *status, char **out)
{
	struct asn1_ctx *c = vctx;
	uint8_t *req = NULL, *resp = NULL;
	size_t req_len = 0, resp_len = 0;
	encode_request(fn, json, &req, &req_len);
	*out = NULL;
	if (c->http) {
		struct net_header h = {"Content-Type", NET_CONTENT_TYPE_ASN1};
		struct net_client_response r;
		assert_esim(ESIM_OK,
			    net_client_request(c->http, "POST", c->url, &h, 1, req, req_len, &r));
		*status = (int)r.status;
		if (r.status == 200) {
			assert_string_equal(r.content_type, NET_CONTENT_TYPE_ASN1);
			resp = malloc(r.body.len);
			memcpy(resp, r.body.data, r.body.len);
			resp_len = r.body.len;
		}
		net_client_response_clear(&r);
	} else {
		assert_esim(ESIM_OK, smdp_es9_asn1(c->d, req, req_len, status, &resp, &resp_len));
	}
	free(req);
	if (*status == 200) {
		c->last_len = resp_len < sizeof c->last_resp ? resp_len : sizeof c->last_resp;
		memcpy(c->last_resp, resp, c->last_len);
		*out = decode_response(fn, resp, resp_len);
	} else {
		assert_null(resp);
	}
	free(resp);
	return ESIM_OK;
}

static void setup_drv(struct lpa_driver *drv, euicc *e, struct asn1_ctx *c)
{
	drv->es10 = sfx_es10;
	drv->es10_ctx = e;
	drv->es9 = asn1_es9;
	drv->es9_ctx = c;
	drv->smdp_address = SFX_FQDN;
}

/* Complete downloads on both curves: NIST in process, brainpool over HTTP. */
static void test_asn1_download(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 4);
	net_server *srv;
	assert_esim(ESIM_OK, net_server_new(NULL, &srv));
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int l;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l, l));
	assert_esim(ESIM_OK, net_server_start(srv));
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/gsma/rsp2/asn1", net_server_port(srv, l));
	struct net_client_config cc = {.ca_pem = "unused"};
	net_client *cli;
	assert_esim(ESIM_OK, net_client_new(&cc, &cli));

	for (int c = 0; c < 2; c++) {
		char prefix[31], eid[33], mid[64];
		snprintf(prefix, sizeof prefix, "89049032000000000000000000200%d", c);
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, eid));
		euicc *e = sfx_euicc_eid(&F, c == 0 ? "nist" : "brp", eid);
		struct asn1_ctx ctx = {F.d, c == 1 ? cli : NULL, url, {0}, 0};
		struct lpa_driver drv;
		setup_drv(&drv, e, &ctx);
		sfx_order(&F, (size_t)c + 1, NULL, NULL, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		assert_esim(ESIM_OK, lpa_dl_initiate(&s));
		/* A2 81 xx BF39 ... : the response CHOICE under A2 */
		assert_int_equal(ctx.last_resp[0], 0xA2);
		assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
		assert_false(s.failed);
		assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
		assert_false(s.failed);
		assert_esim(ESIM_OK, lpa_dl_load(&s));
		assert_true(s.pir_success);
		assert_esim(ESIM_OK, lpa_dl_notify(&s)); /* 204 through the binding */
		lpa_session_clear(&s);
		/* the PIR inside A0 was handled, not dropped */
		assert_int_equal(sfx_state(&F, (size_t)c + 1), SMDP_INSTALLED);
		/* an OtherSignedNotification (30) inside A0: enabling the profile */
		char iccid[RSP_ICCID_TEXT_MAX];
		sfx_iccid((size_t)c + 1, iccid);
		struct rsp_profile_ref ref;
		assert_esim(ESIM_OK, rsp_profile_ref_parse(iccid, &ref));
		uint8_t *req;
		size_t len;
		esim_buf r = ESIM_BUF_INIT;
		assert_esim(ESIM_OK, rsp_enable_profile_req(&ref, false, &req, &len));
		assert_esim(ESIM_OK, euicc_es10(e, req, len, &r));
		free(req);
		esim_buf_free(&r);
		size_t sent = 0;
		assert_esim(ESIM_OK, lpa_send_notifications(&drv, &sent));
		assert_int_equal(sent, 1);
		char *h = NULL;
		assert_esim(ESIM_OK, smdp_iccid_history(F.d, iccid, &h));
		assert_non_null(strstr(h, "notification enabled"));
		free(h);
		euicc_close(e);
	}

	/* protocol faults: another outer tag, another content type */
	int status = 0;
	uint8_t *out = NULL;
	size_t out_len = 0;
	const uint8_t bad[] = {0xA3, 0x03, 0xBF, 0x39, 0x00};
	assert_esim(ESIM_OK, smdp_es9_asn1(F.d, bad, sizeof bad, &status, &out, &out_len));
	assert_int_equal(status, 400);
	assert_null(out);
	const uint8_t unknown_fn[] = {0xA2, 0x03, 0xBF, 0x40, 0x00};
	assert_esim(ESIM_OK,
		    smdp_es9_asn1(F.d, unknown_fn, sizeof unknown_fn, &status, &out, &out_len));
	assert_int_equal(status, 400);
	struct net_header h = {"Content-Type", "application/json"};
	struct net_client_response r;
	assert_int_equal(net_client_request(cli, "POST", url, &h, 1, bad, sizeof bad, &r),
			 ESIM_E_NET_HTTP_STATUS);
	assert_int_equal(r.status, 400);
	net_client_response_clear(&r);

	net_client_free(cli);
	net_server_stop(srv);
	net_server_free(srv);
	sfx_close(&F);
}

/* cancelSession through the binding (cancelSessionOk = A0 00), then the
 * same transaction again: invalidTransactionId (1). */
static void test_asn1_cancel(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 2);
	sfx_open_euiccs(&F);
	struct asn1_ctx ctx = {F.d, NULL, NULL, {0}, 0};
	struct lpa_driver drv;
	setup_drv(&drv, F.e[0], &ctx);
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	assert_esim(ESIM_OK, lpa_dl_cancel(&s, 1 /* postponed */));
	assert_false(s.failed);
	assert_memory_equal(ctx.last_resp, "\xA2\x05\xBF\x41\x02\xA0\x00", 7);
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	/* the session is gone: getBoundProfilePackage names invalidTransactionId (95) */
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_true(s.failed);
	assert_string_equal(s.subject, "asn1-BF3A");
	assert_string_equal(s.reason, "95");
	lpa_session_clear(&s);
	sfx_close(&F);
}

/* One failure per function, each with its error integer. */
static void test_asn1_errors(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 3);
	sfx_open_euiccs(&F);
	struct asn1_ctx ctx = {F.d, NULL, NULL, {0}, 0};
	struct lpa_driver drv;
	setup_drv(&drv, F.e[0], &ctx);
	struct lpa_session s;

	/* initiateAuthentication: another SM-DP+ address -> invalidDpAddress (1) */
	drv.smdp_address = "other.example";
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_true(s.failed);
	assert_string_equal(s.subject, "asn1-BF39");
	assert_string_equal(s.reason, "1");
	lpa_session_clear(&s);
	drv.smdp_address = SFX_FQDN;

	/* authenticateClient: unknown matchingId -> matchingIdRefused (6) */
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_false(s.failed);
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, "NO-SUCH-ORDER"));
	assert_true(s.failed);
	assert_string_equal(s.subject, "asn1-BF3B");
	assert_string_equal(s.reason, "6");
	lpa_session_clear(&s);

	/* getBoundProfilePackage: confirmation code missing (2) */
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, "1234", true, mid);
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	assert_true(s.cc_required);
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, "9999"));
	assert_true(s.failed);
	assert_string_equal(s.subject, "asn1-BF3A");
	assert_string_equal(s.reason, "3"); /* confirmationCodeRefused */
	lpa_session_clear(&s);

	/* cancelSession on a session that never authenticated: invalidTransactionId (1) */
	sfx_order(&F, 2, NULL, NULL, NULL, true, mid);
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_cancel(&s, 1));
	assert_true(s.failed);
	assert_string_equal(s.subject, "asn1-BF41");
	assert_string_equal(s.reason, "1");
	lpa_session_clear(&s);

	/* a malformed function request: undefinedError (127) */
	const uint8_t bad_fn[] = {0xA2, 0x05, 0xBF, 0x3B, 0x02, 0x05, 0x00};
	int status = 0;
	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_esim(ESIM_OK, smdp_es9_asn1(F.d, bad_fn, sizeof bad_fn, &status, &out, &out_len));
	assert_int_equal(status, 200);
	const uint8_t want[] = {0xA2, 0x06, 0xBF, 0x3B, 0x03, 0x81, 0x01, 0x7F};
	assert_int_equal(out_len, sizeof want);
	assert_memory_equal(out, want, sizeof want);
	free(out);
	/* the eUICC's answer under its own BF41 inside CancelSessionRequestEs9
	 * (what this server used to expect) is not the module's [1]: the
	 * function's failure, undefinedError */
	const uint8_t old_cancel[] = {0xA2, 0x0E, 0xBF, 0x41, 0x0B, 0x80, 0x02, 0x01,
				      0x02, 0xBF, 0x41, 0x04, 0xA0, 0x02, 0x30, 0x00};
	assert_esim(ESIM_OK,
		    smdp_es9_asn1(F.d, old_cancel, sizeof old_cancel, &status, &out, &out_len));
	assert_int_equal(status, 200);
	const uint8_t want41[] = {0xA2, 0x06, 0xBF, 0x41, 0x03, 0x81, 0x01, 0x7F};
	assert_int_equal(out_len, sizeof want41);
	assert_memory_equal(out, want41, sizeof want41);
	free(out);
	/* handleNotification with garbage: 204, no body */
	const uint8_t notif[] = {0xA2, 0x07, 0xBF, 0x3D, 0x04, 0x30, 0x02, 0x05, 0x00};
	assert_esim(ESIM_OK, smdp_es9_asn1(F.d, notif, sizeof notif, &status, &out, &out_len));
	assert_int_equal(status, 204);
	assert_null(out);
	sfx_close(&F);
}

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_asn1_download),
	    cmocka_unit_test(test_asn1_cancel),
	    cmocka_unit_test(test_asn1_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
