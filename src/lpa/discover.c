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

#include "esim/i18n.h"
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

/* The ES11 AuthenticateClient answer's eventEntries (SGP.22 5.8.2), as
 * the codec decoded them, as a new array of {event_id, smdp_address} in
 * *out (always set; the caller owns it). */
int lpa_es11_events(struct lpa *L, const struct rsp_es9_response *resp, json_t **out)
{
	*out = json_array();
	if (*out == NULL)
		return lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
	for (size_t i = 0; i < resp->u.es11.n_events; i++) {
		const struct rsp_es11_event *e = &resp->u.es11.events[i];
		json_t *o = json_object();
		json_object_set_new(o, "event_id",
				    json_stringn((const char *)e->event_id.p, e->event_id.len));
		json_object_set_new(
		    o, "smdp_address",
		    json_stringn((const char *)e->rsp_server_address.p, e->rsp_server_address.len));
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
	struct rsp_es9_dl dl;
	struct rsp_es9_request rq;
	struct rsp_es9_response resp, resp2;
	struct lpa_es9_status st;
	memset(&dl, 0, sizeof dl);
	memset(&resp, 0, sizeof resp);
	memset(&resp2, 0, sizeof resp2);
	rc = es10_empty(L, RSP_ES10_GET_EUICC_CHALLENGE, &chal);
	if (rc == CLI_OK)
		rc = es10_empty(L, RSP_ES10_GET_EUICC_INFO1, &info1);
	if (rc == CLI_OK &&
	    (rsp_es9_dl_init(&dl, d->addr) != ESIM_OK ||
	     rsp_es9_dl_initiate(&dl, chal.data, chal.len, info1.data, info1.len, &rq) != ESIM_OK))
		rc = lpa_fail(L, CLI_EXIT_CARD, "GetEUICCChallenge: malformed answer");
	if (rc == CLI_OK)
		rc = lpa_es9_call(L, d->addr, &rq, true, &resp, &st);
	if (rc == CLI_OK) {
		/* the same checks and the same AuthenticateServer as for an
		 * SM-DP+ (SGP.22 3.1.2), with no matchingId */
		uint8_t *as = NULL;
		size_t as_len = 0;
		struct rsp_device_info dev = {.tac = {0x35, 0x29, 0x06, 0x11}};
		esim_err err = rsp_es9_dl_authenticate_server(&dl, &resp, NULL, &dev, &as, &as_len);
		if (err == ESIM_E_RSP_TXID_MISMATCH)
			rc = lpa_fail(L, CLI_EXIT_SERVER,
				      "the SM-DS transactionId differs from serverSigned1's");
		else if (err == ESIM_E_RSP_CHALLENGE_MISMATCH)
			rc = lpa_fail(L, CLI_EXIT_SERVER,
				      "the SM-DS signed another eUICC challenge");
		else if (err == ESIM_E_RSP_ADDRESS_MISMATCH)
			rc = lpa_fail(L, CLI_EXIT_SERVER,
				      "the SM-DS calls itself '%s', but %s was contacted",
				      dl.signed_address, d->addr);
		else if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER, "serverSigned1 is malformed");
		else
			rc = lpa_es10_owned(L, ESIM_OK, as, as_len, &auth);
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
	if (rc == CLI_OK &&
	    rsp_es9_dl_authenticate_client(&dl, auth.data, auth.len, &rq) != ESIM_OK)
		rc = lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
	if (rc == CLI_OK) {
		rq.fn = RSP_ES11_AUTHENTICATE_CLIENT; /* the same request, the ES11 answer */
		rc = lpa_es9_call(L, d->addr, &rq, false, &resp2, &st);
	}
	if (rc == CLI_OK && rsp_es9_dl_check_txid(&dl, &resp2) != ESIM_OK)
		rc = lpa_fail(L, CLI_EXIT_SERVER,
			      "the SM-DS answered authenticateClient for another transaction");
	if (rc == CLI_OK) {
		json_t *out = NULL;
		rc = lpa_es11_events(L, &resp2, &out);
		size_t i;
		json_t *e;
		json_object_set_new(L->result, "events", out);
		if (rc == CLI_OK && !L->o.json && !d->quiet) {
			if (json_array_size(out) == 0)
				printf(_("no events for this eUICC at %s\n"), d->addr);
			else
				printf("%-40s %s\n", _("SM-DP+ ADDRESS"),
				       _("EVENT ID (matching ID)"));
			json_array_foreach(out, i, e) printf(
			    "%-40s %s\n", json_string_value(json_object_get(e, "smdp_address")),
			    json_string_value(json_object_get(e, "event_id")));
		}
	}
	rsp_es9_response_clear(&resp);
	rsp_es9_response_clear(&resp2);
	rsp_es9_dl_clear(&dl);
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
		fputs(_("usage: esim profile discover [--smds ADDRESS]\n\n"), stdout);
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
		fprintf(stderr, "%s\n", _("esim: out of memory"));
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
				fprintf(stderr, _("esim: %s needs a value\n"), argv[i]);
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
		fprintf(stderr, _("esim: SM-DS %s: event %s at %s\n"), d.addr, id, addr);
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
