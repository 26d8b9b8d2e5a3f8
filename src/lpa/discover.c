/*
 * `esim profile discover`: ES11 event retrieval from an SM-DS (SGP.22 5.8,
 * 3.3; digest 5.5). The same two-step mutual authentication as ES9+ runs
 * against the SM-DS on the /gsma/rsp2/es9plus/ paths (as lpac and
 * euicc-go do), with no matchingId in ctxParams1; the SM-DS answers
 * authenticateClient with eventEntries, each an eventId (the matching ID to
 * use) and the SM-DP+ address to download from. The SM-DS defaults to the
 * root SM-DS the eUICC is configured with (GetEuiccConfiguredAddresses).
 *
 * `esim profile download --discover [--smds ADDRESS] [--event ID]` runs
 * the same discovery, then the download of one event (the first, or the
 * one named) as `esim profile download --smdp ADDRESS --matching-id ID`
 * would (SGP.22 3.1.1.3 / 3.3: the eventId is the matchingId): no
 * activation code needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esim/rsp_ac.h"
#include "esim/rsp_auth.h"
#include "lpa/lpa.h"

enum { OPT_SMDS = 0x200 };

struct disc {
	const char *smds;
	char addr[RSP_ADDRESS_MAX + 1];
	bool quiet; /* no table: the events feed a download */
};

static int disc_opt(struct lpa *L, int id, const char *arg, void *user)
{
	(void)L;
	struct disc *d = user;
	if (id == OPT_SMDS)
		d->smds = arg;
	return CLI_OK;
}

static int es10_empty(struct lpa *L, uint32_t tag, esim_buf *resp)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_es10_empty_req(tag, &req, &len);
	return lpa_es10_owned(L, err, req, len, resp);
}

static int pick_address(struct lpa *L, struct disc *d)
{
	if (d->smds != NULL) {
		if (strlen(d->smds) >= sizeof d->addr)
			return lpa_fail(L, CLI_EXIT_USAGE, "--smds address too long");
		strcpy(d->addr, d->smds);
	} else {
		esim_buf r = ESIM_BUF_INIT;
		int rc = es10_empty(L, RSP_ES10_GET_ADDRESSES, &r);
		struct rsp_addresses a = {0};
		if (rc == CLI_OK) {
			esim_err err = rsp_get_addresses_parse(r.data, r.len, &a);
			if (err != ESIM_OK)
				rc = lpa_fail_err(L, err, CLI_EXIT_CARD,
						  "GetEuiccConfiguredAddresses");
		}
		esim_buf_free(&r);
		if (rc == CLI_OK && (a.root_ds == NULL || *a.root_ds == '\0'))
			rc = lpa_fail(L, CLI_EXIT_USAGE,
				      "the eUICC has no root SM-DS address: pass --smds ADDRESS");
		if (rc == CLI_OK && strlen(a.root_ds) < sizeof d->addr)
			strcpy(d->addr, a.root_ds);
		rsp_addresses_free(&a);
		if (rc != CLI_OK)
			return rc;
	}
	const char *why = NULL;
	if (rsp_ac_check_address(d->addr, &why) != ESIM_OK)
		return lpa_fail(L, CLI_EXIT_USAGE, "invalid SM-DS address '%s': %s", d->addr, why);
	return CLI_OK;
}

static int b64(struct lpa *L, json_t *doc, const char *field, uint8_t **out, size_t *len)
{
	struct net_json_error je;
	if (net_json_get_base64(doc, field, 64 * 1024, out, len, &je) != ESIM_OK)
		return lpa_fail(L, CLI_EXIT_SERVER, "the SM-DS answer has no valid '%s'", field);
	return CLI_OK;
}

/* The ES11 AuthenticateClient answer's eventEntries (SGP.22 5.8.2) as a
 * new array of {event_id, smdp_address} in *out (always set; the caller
 * owns it): CLI_EXIT_SERVER, and the events read so far, when the list is
 * not a list or an entry lacks eventId or rspServerAddress. No list: no
 * events. */
int lpa_es11_events(struct lpa *L, const json_t *resp, json_t **out)
{
	*out = json_array();
	if (*out == NULL)
		return lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
	json_t *entries = json_object_get(resp, "eventEntries"); /* borrowed */
	if (entries == NULL)
		return CLI_OK;
	if (!json_is_array(entries))
		return lpa_fail(L, CLI_EXIT_SERVER, "the SM-DS eventEntries is not a list");
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "eventId"));
		const char *dp = json_string_value(json_object_get(e, "rspServerAddress"));
		if (id == NULL || dp == NULL)
			return lpa_fail(L, CLI_EXIT_SERVER,
					"an SM-DS event lacks eventId or rspServerAddress");
		json_t *o = json_object();
		json_object_set_new(o, "event_id", json_string(id));
		json_object_set_new(o, "smdp_address", json_string(dp));
		json_array_append_new(*out, o);
	}
	return CLI_OK;
}

static int discover(struct lpa *L, struct disc *d)
{
	int rc = lpa_http(L);
	if (rc == CLI_OK)
		rc = pick_address(L, d);
	if (rc != CLI_OK)
		return rc;
	json_object_set_new(L->result, "smds_address", json_string(d->addr));
	esim_buf chal = ESIM_BUF_INIT, info1 = ESIM_BUF_INIT, auth = ESIM_BUF_INIT;
	uint8_t challenge[RSP_CHALLENGE_LEN];
	json_t *req = NULL, *resp = NULL, *resp2 = NULL;
	uint8_t *s1 = NULL, *sig1 = NULL, *pkid = NULL, *cert = NULL;
	size_t s1_len = 0, sig1_len = 0, pkid_len = 0, cert_len = 0;
	rsp_txid txid;
	char txid_hex[2 * RSP_TXID_MAX + 1] = "";
	rc = es10_empty(L, RSP_ES10_GET_EUICC_CHALLENGE, &chal);
	if (rc == CLI_OK && rsp_challenge_parse(chal.data, chal.len, challenge) != ESIM_OK)
		rc = lpa_fail(L, CLI_EXIT_CARD, "GetEUICCChallenge: malformed answer");
	if (rc == CLI_OK)
		rc = es10_empty(L, RSP_ES10_GET_EUICC_INFO1, &info1);
	if (rc == CLI_OK) {
		req = json_object();
		json_object_set_new(req, "smdpAddress", json_string(d->addr));
		net_json_set_base64(req, "euiccChallenge", challenge, sizeof challenge);
		net_json_set_base64(req, "euiccInfo1", info1.data, info1.len);
		rc = lpa_es9_post(L, d->addr, "initiateAuthentication", req, true, &resp);
	}
	if (rc == CLI_OK) {
		const char *t = json_string_value(json_object_get(resp, "transactionId"));
		if (t == NULL || rsp_txid_from_hex(t, &txid) != ESIM_OK)
			rc = lpa_fail(L, CLI_EXIT_SERVER, "the SM-DS answer has no transactionId");
		else
			rsp_txid_to_hex(&txid, txid_hex);
	}
	if (rc == CLI_OK)
		rc = b64(L, resp, "serverSigned1", &s1, &s1_len);
	if (rc == CLI_OK)
		rc = b64(L, resp, "serverSignature1", &sig1, &sig1_len);
	if (rc == CLI_OK)
		rc = b64(L, resp, "euiccCiPKIdToBeUsed", &pkid, &pkid_len);
	if (rc == CLI_OK)
		rc = b64(L, resp, "serverCertificate", &cert, &cert_len);
	if (rc == CLI_OK) {
		/* the same checks as for an SM-DP+ (digest 15.3) */
		der_cursor c, in;
		der_span t, ch, addr;
		der_cursor_init(&c, s1, s1_len);
		esim_err err = der_get_sequence(&c, DER_TAG_SEQUENCE, &in);
		if (err == ESIM_OK)
			err = der_get_octet_string(&in, 0x80, &t);
		if (err == ESIM_OK)
			err = der_get_octet_string(&in, 0x81, &ch);
		if (err == ESIM_OK)
			err = der_get_utf8(&in, 0x83, &addr);
		rsp_txid st;
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER, "serverSigned1 is malformed");
		else if (rsp_txid_set(&st, t.p, t.len) != ESIM_OK || !rsp_txid_equal(&st, &txid))
			rc = lpa_fail(L, CLI_EXIT_SERVER,
				      "the SM-DS transactionId differs from serverSigned1's");
		else if (addr.len != strlen(d->addr) ||
			 strncasecmp((const char *)addr.p, d->addr, addr.len) != 0)
			rc = lpa_fail(L, CLI_EXIT_SERVER,
				      "the SM-DS calls itself '%.*s', but %s was contacted",
				      (int)addr.len, (const char *)addr.p, d->addr);
	}
	if (rc == CLI_OK) {
		uint8_t *as = NULL;
		size_t as_len = 0;
		struct rsp_device_info dev = {.tac = {0x35, 0x29, 0x06, 0x11}};
		esim_err err = rsp_auth_server_req_build(s1, s1_len, sig1, sig1_len, pkid, pkid_len,
							 cert, cert_len, NULL, &dev, &as, &as_len);
		rc = lpa_es10_owned(L, err, as, as_len, &auth);
	}
	if (rc == CLI_OK) {
		struct rsp_auth_server_resp ar;
		memset(&ar, 0, sizeof ar);
		esim_err err = rsp_auth_server_resp_parse(auth.data, auth.len, &ar);
		int64_t code = ar.error_code;
		rsp_auth_server_resp_clear(&ar);
		if (err == ESIM_E_RSP_EUICC_ERROR)
			rc = lpa_fail_card_result(L, RSP_ES10_AUTHENTICATE_SERVER, code);
		else if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "AuthenticateServer");
	}
	if (rc == CLI_OK) {
		json_decref(req);
		req = json_object();
		json_object_set_new(req, "transactionId", json_string(txid_hex));
		net_json_set_base64(req, "authenticateServerResponse", auth.data, auth.len);
		rc = lpa_es9_post(L, d->addr, "authenticateClient", req, false, &resp2);
	}
	if (rc == CLI_OK) {
		json_t *out = NULL;
		rc = lpa_es11_events(L, resp2, &out);
		size_t i;
		json_t *e;
		json_object_set_new(L->result, "events", out);
		if (rc == CLI_OK && !L->o.json && !d->quiet) {
			if (json_array_size(out) == 0)
				printf("no events for this eUICC at %s\n", d->addr);
			else
				printf("%-40s %s\n", "SM-DP+ ADDRESS", "EVENT ID (matching ID)");
			json_array_foreach(out, i, e) printf(
			    "%-40s %s\n", json_string_value(json_object_get(e, "smdp_address")),
			    json_string_value(json_object_get(e, "event_id")));
		}
	}
	free(s1);
	free(sig1);
	free(pkid);
	free(cert);
	json_decref(req);
	json_decref(resp);
	json_decref(resp2);
	esim_buf_free(&chal);
	esim_buf_free(&info1);
	esim_buf_free(&auth);
	return rc;
}

int lpa_profile_discover(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"smds", required_argument, NULL, OPT_SMDS},
	    {NULL, 0, NULL, 0},
	};
	struct lpa L;
	struct disc d = {NULL, "", false};
	int rc = lpa_init(&L, "profile discover", argc, argv, 2, opts, disc_opt, &d);
	if (rc < 0) {
		printf("usage: esim profile discover [--smds ADDRESS]\n\n");
		lpa_usage_globals(stdout);
		L.exit_code = CLI_OK;
	} else if (rc == CLI_OK) {
		if (L.npos != 0)
			lpa_fail(&L, CLI_EXIT_USAGE, "profile discover takes no arguments");
		else
			discover(&L, &d);
	}
	return lpa_done(&L);
}

/* Split argv of `profile download --discover ...`: the discovery gets the
 * global options and --smds, the download everything but --discover,
 * --smds and --event. */
static bool is_opt(const char *a, const char *name, const char **inline_val)
{
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return false;
	*inline_val = a[n] == '=' ? a + n + 1 : NULL;
	return a[n] == '\0' || a[n] == '=';
}

int lpa_profile_download_discover(int argc, char **argv)
{
	char **dargv = calloc((size_t)argc + 1, sizeof *dargv);
	char **largv = calloc((size_t)argc + 5, sizeof *largv);
	const char *event = NULL, *smds = NULL, *v;
	int dn = 2, ln = 2, rc = CLI_EXIT_USAGE;
	if (!dargv || !largv) {
		free(dargv);
		free(largv);
		fprintf(stderr, "esim: out of memory\n");
		return CLI_EXIT_FAILURE;
	}
	dargv[0] = largv[0] = argv[0];
	dargv[1] = largv[1] = argv[1];
	for (int i = 2; i < argc; i++) {
		bool takes = false;
		if (strcmp(argv[i], "--discover") == 0)
			continue;
		if (is_opt(argv[i], "--smds", &v) || is_opt(argv[i], "--event", &v)) {
			bool ev = argv[i][2] == 'e';
			if (!v && i + 1 < argc)
				v = argv[++i];
			if (!v) {
				fprintf(stderr, "esim: %s needs a value\n", argv[i]);
				goto out;
			}
			*(ev ? &event : &smds) = v;
			continue;
		}
		if (is_opt(argv[i], "--smdp", &v) || is_opt(argv[i], "--matching-id", &v)) {
			fprintf(stderr, "esim: --discover finds the SM-DP+ and matching ID itself: "
					"leave out --smdp and --matching-id\n");
			goto out;
		}
		largv[ln++] = argv[i];
		if (lpa_is_global_option(argv[i], &takes)) {
			dargv[dn++] = argv[i];
			if (takes && !strchr(argv[i], '=') && i + 1 < argc) {
				dargv[dn++] = argv[i + 1];
				largv[ln++] = argv[++i];
			}
		}
	}
	if (smds) {
		dargv[dn++] = "--smds";
		dargv[dn++] = (char *)smds;
	}
	static const struct option opts[] = {
	    {"smds", required_argument, NULL, OPT_SMDS},
	    {NULL, 0, NULL, 0},
	};
	struct lpa L;
	struct disc d = {NULL, "", true};
	rc = lpa_init(&L, "profile download", dn, dargv, 2, opts, disc_opt, &d);
	if (rc == CLI_OK)
		rc = discover(&L, &d);
	char addr[RSP_ADDRESS_MAX + 1] = "", id[RSP_AC_MATCHING_ID_MAX + 1] = "";
	if (rc == CLI_OK) {
		json_t *evs = json_object_get(L.result, "events"), *e; /* borrowed */
		size_t i;
		json_array_foreach(evs, i, e)
		{
			const char *eid = json_string_value(json_object_get(e, "event_id"));
			const char *dp = json_string_value(json_object_get(e, "smdp_address"));
			if (addr[0] || (event && strcmp(event, eid) != 0))
				continue;
			if (strlen(eid) >= sizeof id || strlen(dp) >= sizeof addr) {
				rc = lpa_fail(&L, CLI_EXIT_SERVER, "the SM-DS event %s is too long",
					      eid);
				break;
			}
			strcpy(id, eid);
			strcpy(addr, dp);
		}
		if (rc == CLI_OK && !addr[0])
			rc = lpa_fail(&L, CLI_EXIT_FAILURE, "%s at %s: nothing to download",
				      event ? "no such event for this eUICC"
					    : "no event for this eUICC",
				      d.addr);
	}
	if (rc != CLI_OK) {
		rc = lpa_done(&L);
		goto out;
	}
	if (!L.o.json)
		fprintf(stderr, "esim: SM-DS %s: event %s at %s\n", d.addr, id, addr);
	L.o.json = false; /* the download prints the one document */
	lpa_done(&L);
	largv[ln++] = "--smdp";
	largv[ln++] = addr;
	largv[ln++] = "--matching-id";
	largv[ln++] = id;
	rc = lpa_profile_download(ln, largv);
out:
	free(dargv);
	free(largv);
	return rc;
}
