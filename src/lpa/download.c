/*
 * `esim profile download`: the LPA's part of the common mutual
 * authentication and profile download (SGP.22 3.1.3; digest 6.1 to 6.7):
 *
 *   card GetEUICCChallenge + GetEUICCInfo1
 *   ES9+ initiateAuthentication           (safe to repeat: retried)
 *   check transactionId and serverAddress of serverSigned1 (digest 15.3)
 *   card AuthenticateServer
 *   ES9+ authenticateClient               (sent once)
 *   user consent, confirmation code -> hashCc
 *   card PrepareDownload
 *   ES9+ getBoundProfilePackage           (sent once)
 *   card LoadBoundProfilePackage in the pieces of digest 3.5
 *   ES9+ handleNotification of the PIR    (safe to repeat)
 *   card RemoveNotificationFromList once the server accepted it
 *
 * When something fails after the card opened its session, the card's
 * session is cancelled (ES10b CancelSession) with the reason of digest 6.7
 * and, when the server still has its session, the signed cancellation is
 * forwarded with ES9+ cancelSession.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esim/rsp_ac.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "lpa/lpa.h"

#define DL_MAX_FIELD (64 * 1024)

enum { OPT_SMDP = 0x200, OPT_MATCHING_ID, OPT_CC, OPT_IMEI };

struct dl {
	struct lpa *L;
	const char *ac_text;
	char smdp[RSP_ADDRESS_MAX + 1];
	char matching_id[RSP_AC_MATCHING_ID_MAX + 1];
	bool have_smdp, have_matching_id;
	const char *cc; /* --confirmation-code */
	char cc_buf[128];
	bool ac_cc_required;
	const char *imei;
	struct rsp_device_info dev;

	rsp_txid txid;
	char txid_hex[2 * RSP_TXID_MAX + 1];
	bool card_session;   /* AuthenticateServer succeeded */
	bool server_session; /* the SM-DP+ still has the session */
};

static int dl_opt(struct lpa *L, int id, const char *arg, void *user)
{
	struct dl *d = user;
	switch (id) {
	case OPT_SMDP:
		if (strlen(arg) >= sizeof d->smdp)
			return lpa_fail(L, CLI_EXIT_USAGE, "--smdp address too long");
		strcpy(d->smdp, arg);
		d->have_smdp = true;
		break;
	case OPT_MATCHING_ID:
		if (strlen(arg) >= sizeof d->matching_id)
			return lpa_fail(L, CLI_EXIT_USAGE, "--matching-id too long");
		strcpy(d->matching_id, arg);
		d->have_matching_id = true;
		break;
	case OPT_CC:
		d->cc = arg;
		break;
	case OPT_IMEI:
		d->imei = arg;
		break;
	default:
		return lpa_fail(L, CLI_EXIT_USAGE, "unexpected option");
	}
	return CLI_OK;
}

/* IMEI (15 digits) or IMEISV (16): TAC = the first 8 digits as BCD, the
 * IMEI itself as BCD in digit order, padded with F to 8 bytes. */
static int set_imei(struct dl *d)
{
	size_t n = strlen(d->imei);
	if ((n != 15 && n != 16) || strspn(d->imei, "0123456789") != n)
		return lpa_fail(d->L, CLI_EXIT_USAGE,
				"--imei must be 15 (IMEI) or 16 (IMEISV) digits");
	uint8_t nib[16];
	for (size_t i = 0; i < 16; i++)
		nib[i] = i < n ? (uint8_t)(d->imei[i] - '0') : 0xF;
	for (size_t i = 0; i < 4; i++)
		d->dev.tac[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
	for (size_t i = 0; i < 8; i++)
		d->dev.imei[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
	d->dev.has_imei = true;
	return CLI_OK;
}

static int resolve_inputs(struct dl *d)
{
	struct lpa *L = d->L;
	if (L->npos > 1)
		return lpa_fail(L, CLI_EXIT_USAGE, "give one activation code");
	if (L->npos == 1) {
		if (d->have_smdp || d->have_matching_id)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"give either an activation code or --smdp/--matching-id");
		struct rsp_activation_code ac;
		const char *why = NULL;
		if (rsp_ac_parse(L->pos[0], &ac, &why) != ESIM_OK) {
			int rc = lpa_fail(L, CLI_EXIT_USAGE, "invalid activation code: %s", why);
			lpa_error_set(L, "esim_error",
				      json_string("ESIM_E_RSP_BAD_ACTIVATION_CODE"));
			return rc;
		}
		strcpy(d->smdp, ac.smdp);
		strcpy(d->matching_id, ac.matching_id);
		d->have_smdp = d->have_matching_id = true;
		d->ac_cc_required = ac.cc_required;
	} else if (!d->have_smdp) {
		return lpa_fail(
		    L, CLI_EXIT_USAGE,
		    "give an activation code (LPA:1$address$matchingId) or --smdp ADDRESS "
		    "[--matching-id ID]");
	} else {
		const char *why = NULL;
		if (rsp_ac_check_address(d->smdp, &why) != ESIM_OK)
			return lpa_fail(L, CLI_EXIT_USAGE, "invalid --smdp: %s", why);
	}
	static const uint8_t default_tac[4] = {0x35, 0x29, 0x06, 0x11};
	memcpy(d->dev.tac, default_tac, 4);
	if (d->imei != NULL)
		return set_imei(d);
	return CLI_OK;
}

/* A base64 field of an ES9+ answer; failure recorded as a server error. */
static int get_b64(struct dl *d, json_t *doc, const char *fn, const char *field, uint8_t **out,
		   size_t *len, size_t max)
{
	struct net_json_error je;
	esim_err err = net_json_get_base64(doc, field, max, out, len, &je);
	if (err != ESIM_OK)
		return lpa_fail(d->L, CLI_EXIT_SERVER, "the %s answer has no valid '%s' (%s)", fn,
				field, esim_strerror(err));
	return CLI_OK;
}

static int check_txid(struct dl *d, json_t *doc, const char *fn)
{
	const char *t = json_string_value(json_object_get(doc, "transactionId"));
	rsp_txid got;
	if (t == NULL || rsp_txid_from_hex(t, &got) != ESIM_OK)
		return lpa_fail(d->L, CLI_EXIT_SERVER, "the %s answer has no valid transactionId",
				fn);
	if (!rsp_txid_equal(&got, &d->txid))
		return lpa_fail(d->L, CLI_EXIT_SERVER,
				"the %s answer carries transactionId %s, not the session's %s", fn,
				t, d->txid_hex);
	return CLI_OK;
}

/* Cancel the card's session with reason and, when the server still has
 * its session, forward the eUICC-signed cancellation (digest 6.7). Best
 * effort: failures here are warnings. */
static void cancel(struct dl *d, enum rsp_cancel_reason reason)
{
	struct lpa *L = d->L;
	if (!d->card_session)
		return;
	d->card_session = false;
	L->soft++;
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf resp = ESIM_BUF_INIT;
	esim_err err = rsp_cancel_session_req_build(&d->txid, reason, &req, &len);
	int rc = lpa_es10_owned(L, err, req, len, &resp);
	if (rc == CLI_OK) {
		struct rsp_cancel_session_resp cr;
		err = rsp_cancel_session_resp_parse(resp.data, resp.len, &cr);
		if (err == ESIM_E_RSP_EUICC_ERROR)
			lpa_fail_card_result(L, RSP_ES10_CANCEL_SESSION, cr.error_code);
		else if (err != ESIM_OK)
			lpa_fail_err(L, err, CLI_EXIT_CARD, "CancelSession");
		else if (d->server_session) {
			json_t *body = json_object(), *ans = NULL;
			json_object_set_new(body, "transactionId", json_string(d->txid_hex));
			net_json_set_base64(body, "cancelSessionResponse", resp.data, resp.len);
			if (lpa_es9_post(L, d->smdp, "cancelSession", body, false, &ans) == CLI_OK)
				json_object_set_new(L->result, "cancelled_with_server",
						    json_true());
			json_decref(ans);
			json_decref(body);
		}
	}
	d->server_session = false;
	json_object_set_new(L->result, "cancel_reason", json_integer(reason));
	esim_buf_free(&resp);
	L->soft--;
}

static int card_simple(struct dl *d, uint32_t tag, esim_buf *resp)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_es10_empty_req(tag, &req, &len);
	return lpa_es10_owned(d->L, err, req, len, resp);
}

/* serverSigned1 = 30 { 80 txId, 81 euiccChallenge, 83 serverAddress, 84 serverChallenge } */
static int check_server_signed1(struct dl *d, const uint8_t *p, size_t len,
				const uint8_t challenge[RSP_CHALLENGE_LEN])
{
	struct lpa *L = d->L;
	der_cursor c, in;
	der_span txid, ch, addr;
	der_cursor_init(&c, p, len);
	esim_err err = der_get_sequence(&c, DER_TAG_SEQUENCE, &in);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x80, &txid);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x81, &ch);
	if (err == ESIM_OK)
		err = der_get_utf8(&in, 0x83, &addr);
	if (err != ESIM_OK)
		return lpa_fail_err(L, err, CLI_EXIT_SERVER,
				    "initiateAuthentication: serverSigned1 is malformed");
	rsp_txid signed_txid;
	if (rsp_txid_set(&signed_txid, txid.p, txid.len) != ESIM_OK ||
	    !rsp_txid_equal(&signed_txid, &d->txid))
		return lpa_fail(
		    L, CLI_EXIT_SERVER,
		    "initiateAuthentication: the JSON transactionId %s differs from the "
		    "one in serverSigned1",
		    d->txid_hex);
	if (ch.len != RSP_CHALLENGE_LEN || memcmp(ch.p, challenge, RSP_CHALLENGE_LEN) != 0)
		return lpa_fail(
		    L, CLI_EXIT_SERVER,
		    "initiateAuthentication: the server signed another eUICC challenge");
	if (addr.len != strlen(d->smdp) ||
	    strncasecmp((const char *)addr.p, d->smdp, addr.len) != 0)
		return lpa_fail(
		    L, CLI_EXIT_SERVER,
		    "initiateAuthentication: the server calls itself '%.*s', but %s was "
		    "contacted",
		    (int)addr.len, (const char *)addr.p, d->smdp);
	return CLI_OK;
}

/* Phase 1 and the card's half of phase 2: leaves the AuthenticateServer
 * response in *auth_resp. */
static int authenticate(struct dl *d, const char *matching_id, esim_buf *auth_resp)
{
	struct lpa *L = d->L;
	esim_buf chal = ESIM_BUF_INIT, info1 = ESIM_BUF_INIT;
	uint8_t challenge[RSP_CHALLENGE_LEN];
	lpa_progress(L, "[1/6] authenticating with %s", d->smdp);
	int rc = card_simple(d, RSP_ES10_GET_EUICC_CHALLENGE, &chal);
	if (rc == CLI_OK) {
		esim_err err = rsp_challenge_parse(chal.data, chal.len, challenge);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetEUICCChallenge");
	}
	if (rc == CLI_OK)
		rc = card_simple(d, RSP_ES10_GET_EUICC_INFO1, &info1);
	json_t *req = NULL, *resp = NULL;
	if (rc == CLI_OK) {
		req = json_object();
		json_object_set_new(req, "smdpAddress", json_string(d->smdp));
		net_json_set_base64(req, "euiccChallenge", challenge, sizeof challenge);
		net_json_set_base64(req, "euiccInfo1", info1.data, info1.len);
		rc = lpa_es9_post(L, d->smdp, "initiateAuthentication", req, true, &resp);
	}
	uint8_t *signed1 = NULL, *sig1 = NULL, *pkid = NULL, *cert = NULL;
	size_t signed1_len = 0, sig1_len = 0, pkid_len = 0, cert_len = 0;
	if (rc == CLI_OK) {
		const char *t = json_string_value(json_object_get(resp, "transactionId"));
		if (t == NULL || rsp_txid_from_hex(t, &d->txid) != ESIM_OK)
			rc = lpa_fail(
			    L, CLI_EXIT_SERVER,
			    "initiateAuthentication: no valid transactionId in the answer");
		else
			rsp_txid_to_hex(&d->txid, d->txid_hex);
	}
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "initiateAuthentication", "serverSigned1", &signed1,
			     &signed1_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "initiateAuthentication", "serverSignature1", &sig1,
			     &sig1_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "initiateAuthentication", "euiccCiPKIdToBeUsed", &pkid,
			     &pkid_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "initiateAuthentication", "serverCertificate", &cert,
			     &cert_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = check_server_signed1(d, signed1, signed1_len, challenge);
	if (rc == CLI_OK) {
		json_object_set_new(L->result, "transaction_id", json_string(d->txid_hex));
		uint8_t *as = NULL;
		size_t as_len = 0;
		esim_err err =
		    rsp_auth_server_req_build(signed1, signed1_len, sig1, sig1_len, pkid, pkid_len,
					      cert, cert_len, matching_id, &d->dev, &as, &as_len);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
					  "initiateAuthentication: the server's answer cannot be "
					  "passed to the eUICC");
		else
			rc = lpa_es10_owned(L, ESIM_OK, as, as_len, auth_resp);
		if (rc == CLI_OK)
			d->server_session = true;
	}
	free(signed1);
	free(sig1);
	free(pkid);
	free(cert);
	json_decref(req);
	json_decref(resp);
	esim_buf_free(&chal);
	esim_buf_free(&info1);
	return rc;
}

/* Tell the server that the eUICC refused (it ends its session), then fail
 * with the card's code. */
static int forward_card_refusal(struct dl *d, const char *fn, const char *field,
				const esim_buf *resp, uint32_t tag, int64_t code)
{
	struct lpa *L = d->L;
	L->soft++;
	json_t *req = json_object(), *ans = NULL;
	json_object_set_new(req, "transactionId", json_string(d->txid_hex));
	net_json_set_base64(req, field, resp->data, resp->len);
	(void)lpa_es9_post(L, d->smdp, fn, req, false, &ans);
	json_decref(req);
	json_decref(ans);
	L->soft--;
	d->server_session = false;
	return lpa_fail_card_result(L, tag, code);
}

static json_t *metadata_json(const struct rsp_metadata *m)
{
	json_t *o = json_object();
	char iccid[RSP_ICCID_TEXT_MAX] = "";
	rsp_iccid_from_bcd(m->iccid, RSP_ICCID_LEN, iccid);
	json_object_set_new(o, "iccid", json_string(iccid));
	json_object_set_new(o, "service_provider", lpa_jstr(m->spn));
	json_object_set_new(o, "name", lpa_jstr(m->name));
	static const char *const classes[] = {"test", "provisioning", "operational"};
	json_object_set_new(o, "class",
			    json_string(m->has_class && m->profile_class <= 2
					    ? classes[m->profile_class]
					    : "operational"));
	return o;
}

/* smdpSigned2 = 30 { 80 txId, 01 ccRequiredFlag, [5F49 otPK] } */
static int smdp_signed2(struct dl *d, const uint8_t *p, size_t len, bool *cc_required)
{
	der_cursor c, in;
	der_span txid;
	der_cursor_init(&c, p, len);
	esim_err err = der_get_sequence(&c, DER_TAG_SEQUENCE, &in);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x80, &txid);
	if (err == ESIM_OK)
		err = der_get_bool(&in, DER_TAG_BOOLEAN, cc_required);
	if (err != ESIM_OK)
		return lpa_fail_err(d->L, err, CLI_EXIT_SERVER,
				    "authenticateClient: smdpSigned2 is malformed");
	rsp_txid t;
	if (rsp_txid_set(&t, txid.p, txid.len) != ESIM_OK || !rsp_txid_equal(&t, &d->txid))
		return lpa_fail(d->L, CLI_EXIT_SERVER,
				"authenticateClient: smdpSigned2 is for another transaction");
	return CLI_OK;
}

static int ask_cc(struct dl *d)
{
	struct lpa *L = d->L;
	if (d->cc != NULL)
		return CLI_OK;
	if (!L->stdin_tty || L->o.json)
		return lpa_fail(L, CLI_EXIT_USAGE,
				"this profile needs a confirmation code: pass --confirmation-code");
	lpa_progress_end(L);
	if (!lpa_prompt(L, "Confirmation code: ", true, d->cc_buf, sizeof d->cc_buf) ||
	    d->cc_buf[0] == '\0')
		return lpa_fail(L, CLI_EXIT_USAGE, "no confirmation code given");
	d->cc = d->cc_buf;
	return CLI_OK;
}

/* Phase 2 (server half), 3: returns the PrepareDownload request in *pd. */
static int authorise(struct dl *d, const esim_buf *auth_resp, uint8_t **pd, size_t *pd_len)
{
	struct lpa *L = d->L;
	struct rsp_auth_server_resp ar;
	memset(&ar, 0, sizeof ar);
	esim_err err = rsp_auth_server_resp_parse(auth_resp->data, auth_resp->len, &ar);
	int64_t code = ar.error_code;
	rsp_auth_server_resp_clear(&ar);
	if (err == ESIM_E_RSP_EUICC_ERROR)
		return forward_card_refusal(d, "authenticateClient", "authenticateServerResponse",
					    auth_resp, RSP_ES10_AUTHENTICATE_SERVER, code);
	if (err != ESIM_OK)
		return lpa_fail_err(L, err, CLI_EXIT_CARD, "AuthenticateServer");
	d->card_session = true;

	lpa_progress(L, "[2/6] authenticating the eUICC to %s", d->smdp);
	json_t *req = json_object(), *resp = NULL;
	json_object_set_new(req, "transactionId", json_string(d->txid_hex));
	net_json_set_base64(req, "authenticateServerResponse", auth_resp->data, auth_resp->len);
	struct lpa_es9_status st;
	int rc = lpa_es9_post_status(L, d->smdp, "authenticateClient", req, false, &resp, &st);
	json_decref(req);
	if (rc != CLI_OK) {
		if (st.subject[0] != '\0')
			d->server_session = false; /* the server ended it */
		cancel(d, st.err != ESIM_OK ? RSP_CANCEL_TIMEOUT : RSP_CANCEL_UNDEFINED);
		return rc;
	}
	uint8_t *meta = NULL, *signed2 = NULL, *sig2 = NULL, *cert = NULL;
	size_t meta_len = 0, signed2_len = 0, sig2_len = 0, cert_len = 0;
	rc = check_txid(d, resp, "authenticateClient");
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "authenticateClient", "profileMetadata", &meta, &meta_len,
			     DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "authenticateClient", "smdpSigned2", &signed2, &signed2_len,
			     DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "authenticateClient", "smdpSignature2", &sig2, &sig2_len,
			     DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "authenticateClient", "smdpCertificate", &cert, &cert_len,
			     DL_MAX_FIELD);
	bool cc_required = false;
	if (rc == CLI_OK)
		rc = smdp_signed2(d, signed2, signed2_len, &cc_required);
	if (rc != CLI_OK) {
		cancel(d, RSP_CANCEL_UNDEFINED);
	} else {
		struct rsp_metadata m;
		err = rsp_metadata_decode(meta, meta_len, &m);
		if (err != ESIM_OK) {
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
					  "authenticateClient: the profile metadata is malformed");
			cancel(d, RSP_CANCEL_METADATA_MISMATCH);
		} else {
			json_t *mj = metadata_json(&m);
			json_object_set_new(L->result, "profile", mj);
			lpa_progress_end(L);
			if (L->tty)
				printf("profile: %s (%s), ICCID %s\n", m.name ? m.name : "-",
				       m.spn ? m.spn : "-",
				       json_string_value(json_object_get(mj, "iccid")));
			if (!L->o.yes && L->stdin_tty && !L->o.json &&
			    !lpa_confirm(L, "Download and install this profile? [y/N] ")) {
				rc = lpa_fail(L, CLI_EXIT_FAILURE,
					      "download declined: nothing was "
					      "installed");
				cancel(d, RSP_CANCEL_END_USER_REJECTION);
			}
			rsp_metadata_free(&m);
		}
	}
	json_object_set_new(L->result, "confirmation_code_required", json_boolean(cc_required));
	uint8_t hash_cc[32];
	if (rc == CLI_OK && cc_required) {
		rc = ask_cc(d);
		if (rc != CLI_OK)
			cancel(d, RSP_CANCEL_POSTPONED);
		else
			rsp_hash_cc(d->cc, strlen(d->cc), &d->txid, hash_cc);
	} else if (rc == CLI_OK && d->cc != NULL) {
		lpa_warn(L, "the profile needs no confirmation code; the one given is not used");
	}
	if (rc == CLI_OK) {
		err = rsp_prepare_download_req_build(signed2, signed2_len, sig2, sig2_len,
						     cc_required ? hash_cc : NULL, cert, cert_len,
						     pd, pd_len);
		if (err != ESIM_OK) {
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
					  "authenticateClient: the answer cannot be passed to the "
					  "eUICC");
			cancel(d, RSP_CANCEL_UNDEFINED);
		}
	}
	esim_wipe(hash_cc, sizeof hash_cc);
	free(meta);
	free(signed2);
	free(sig2);
	free(cert);
	json_decref(resp);
	return rc;
}

/* Phase 3 (card) and 4: the BPP in *bpp. */
static int get_bpp(struct dl *d, uint8_t *pd, size_t pd_len, uint8_t **bpp, size_t *bpp_len)
{
	struct lpa *L = d->L;
	lpa_progress(L, "[3/6] preparing the eUICC");
	esim_buf resp = ESIM_BUF_INIT;
	int rc = lpa_es10_owned(L, ESIM_OK, pd, pd_len, &resp);
	if (rc != CLI_OK) {
		cancel(d, RSP_CANCEL_UNDEFINED);
		esim_buf_free(&resp);
		return rc;
	}
	struct rsp_prepare_download_resp pr;
	memset(&pr, 0, sizeof pr);
	esim_err err = rsp_prepare_download_resp_parse(resp.data, resp.len, &pr);
	if (err == ESIM_E_RSP_EUICC_ERROR) {
		d->card_session = false; /* the eUICC ended it */
		rc = forward_card_refusal(d, "getBoundProfilePackage", "prepareDownloadResponse",
					  &resp, RSP_ES10_PREPARE_DOWNLOAD, pr.error_code);
		esim_buf_free(&resp);
		return rc;
	}
	if (err != ESIM_OK) {
		rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "PrepareDownload");
		cancel(d, RSP_CANCEL_UNDEFINED);
		esim_buf_free(&resp);
		return rc;
	}
	lpa_progress(L, "[4/6] fetching the bound profile package");
	json_t *req = json_object(), *ans = NULL;
	json_object_set_new(req, "transactionId", json_string(d->txid_hex));
	net_json_set_base64(req, "prepareDownloadResponse", resp.data, resp.len);
	esim_buf_free(&resp);
	struct lpa_es9_status st;
	rc = lpa_es9_post_status(L, d->smdp, "getBoundProfilePackage", req, false, &ans, &st);
	json_decref(req);
	if (rc != CLI_OK) {
		if (st.subject[0] != '\0')
			d->server_session = false;
		cancel(d, st.err != ESIM_OK ? RSP_CANCEL_TIMEOUT : RSP_CANCEL_UNDEFINED);
		return rc;
	}
	rc = check_txid(d, ans, "getBoundProfilePackage");
	if (rc == CLI_OK)
		rc = get_b64(d, ans, "getBoundProfilePackage", "boundProfilePackage", bpp, bpp_len,
			     LPA_MAX_BPP);
	json_decref(ans);
	if (rc != CLI_OK)
		cancel(d, RSP_CANCEL_UNDEFINED);
	return rc;
}

/* Phase 5: feed the BPP; the PIR (BF37) into *pir. */
static int load_bpp(struct dl *d, const uint8_t *bpp, size_t bpp_len, esim_buf *pir)
{
	struct lpa *L = d->L;
	der_span *chunks = NULL;
	size_t n = 0;
	esim_err err = rsp_bpp_split(bpp, bpp_len, &chunks, &n);
	if (err != ESIM_OK) {
		int rc =
		    lpa_fail_err(L, err, CLI_EXIT_SERVER,
				 "getBoundProfilePackage: the bound profile package is malformed");
		cancel(d, RSP_CANCEL_LOAD_BPP_ERROR);
		return rc;
	}
	size_t sent = 0;
	int rc = CLI_OK;
	pir->len = 0;
	for (size_t i = 0; i < n && rc == CLI_OK && pir->len == 0; i++) {
		lpa_progress(L, "[5/6] installing: %zu / %zu bytes", sent, bpp_len);
		err = apdu_es10_transmit(L->s, chunks[i].p, chunks[i].len, pir);
		if (err != ESIM_OK) {
			char ctx[96];
			snprintf(ctx, sizeof ctx, "LoadBoundProfilePackage (piece %zu of %zu)",
				 i + 1, n);
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, ctx);
			if (err == ESIM_E_APDU_SW) {
				char sw[8];
				snprintf(sw, sizeof sw, "%04X", apdu_session_last_sw(L->s));
				lpa_error_set(L, "sw", json_string(sw));
			}
		}
		sent += chunks[i].len;
	}
	free(chunks);
	lpa_progress(L, "[5/6] installing: %zu / %zu bytes", sent, bpp_len);
	lpa_progress_end(L);
	if (rc == CLI_OK && pir->len == 0)
		rc = lpa_fail(L, CLI_EXIT_CARD,
			      "LoadBoundProfilePackage: the eUICC gave no installation result");
	if (rc != CLI_OK)
		cancel(d, RSP_CANCEL_LOAD_BPP_ERROR);
	else
		d->card_session = false; /* the PIR ends the session on both sides */
	return rc;
}

/* The PIR to the SM-DP+ and off the card; then report what it said. */
static int finish(struct dl *d, const esim_buf *pir)
{
	struct lpa *L = d->L;
	struct rsp_pir r;
	memset(&r, 0, sizeof r);
	esim_err err = rsp_pir_parse(pir->data, pir->len, &r);
	if (err != ESIM_OK) {
		d->server_session = false;
		return lpa_fail_err(
		    L, err, CLI_EXIT_CARD,
		    "LoadBoundProfilePackage: the installation result is malformed");
	}
	lpa_progress(L, "[6/6] reporting the result to %s", d->smdp);
	bool delivered = false;
	struct lpa_es9_status st;
	L->soft++;
	(void)lpa_deliver_notification(L, pir->data, pir->len, d->smdp, r.meta.seq, &delivered,
				       &st);
	L->soft--;
	lpa_progress_end(L);
	d->server_session = false;
	json_t *nj = json_object();
	json_object_set_new(nj, "seq", json_integer((json_int_t)r.meta.seq));
	json_object_set_new(nj, "delivered", json_boolean(delivered));
	json_object_set_new(L->result, "notification", nj);
	if (!delivered)
		lpa_warn(L,
			 "the installation result (notification %llu) stays on the eUICC; send it "
			 "later with 'esim notification process'",
			 (unsigned long long)r.meta.seq);
	char iccid[RSP_ICCID_TEXT_MAX] = "";
	if (r.meta.has_iccid)
		rsp_iccid_from_bcd(r.meta.iccid, RSP_ICCID_LEN, iccid);
	json_object_set_new(L->result, "iccid",
			    r.meta.has_iccid ? json_string(iccid) : json_null());
	int rc = CLI_OK;
	if (r.success) {
		json_object_set_new(L->result, "installed", json_true());
		json_object_set_new(L->result, "aid", lpa_jhex(r.aid, r.aid_len));
		if (!L->o.json)
			printf(
			    "profile %s installed (disabled); enable it with 'esim profile enable "
			    "%s'\n",
			    iccid, iccid);
	} else {
		json_object_set_new(L->result, "installed", json_false());
		const char *cmd = lpa_bpp_command_name(r.bpp_command_id);
		const char *why = lpa_bpp_error_name(r.error_reason);
		rc = lpa_fail(L, CLI_EXIT_CARD,
			      "the eUICC did not install the profile: %s failed with %s (%lld)",
			      cmd ? cmd : "an unknown step", why ? why : "an unknown reason",
			      (long long)r.error_reason);
		lpa_error_set(L, "bpp_command_id", json_integer(r.bpp_command_id));
		lpa_error_set(L, "error_reason", json_integer(r.error_reason));
		lpa_error_set(L, "result_name", lpa_jstr(why));
	}
	rsp_pir_free(&r);
	return rc;
}

static int download(struct dl *d)
{
	struct lpa *L = d->L;
	int rc = resolve_inputs(d);
	if (rc != CLI_OK)
		return rc;
	rc = lpa_http(L); /* fail on missing CIs before touching the card */
	if (rc != CLI_OK)
		return rc;
	json_object_set_new(L->result, "smdp_address", json_string(d->smdp));
	json_object_set_new(L->result, "matching_id",
			    d->have_matching_id ? json_string(d->matching_id) : json_null());
	esim_buf auth = ESIM_BUF_INIT, pir = ESIM_BUF_INIT;
	uint8_t *pd = NULL, *bpp = NULL;
	size_t pd_len = 0, bpp_len = 0;
	rc = authenticate(d, d->have_matching_id ? d->matching_id : NULL, &auth);
	if (rc == CLI_OK)
		rc = authorise(d, &auth, &pd, &pd_len);
	if (rc == CLI_OK)
		rc = get_bpp(d, pd, pd_len, &bpp, &bpp_len); /* takes pd */
	if (rc == CLI_OK)
		rc = load_bpp(d, bpp, bpp_len, &pir);
	if (rc == CLI_OK)
		rc = finish(d, &pir);
	cancel(d, RSP_CANCEL_UNDEFINED); /* no-op unless a session is left */
	lpa_progress_end(L);
	free(bpp);
	esim_buf_free(&auth);
	esim_buf_free(&pir);
	if (d->cc_buf[0])
		esim_wipe(d->cc_buf, sizeof d->cc_buf);
	return rc;
}

int lpa_profile_download(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"smdp", required_argument, NULL, OPT_SMDP},
	    {"matching-id", required_argument, NULL, OPT_MATCHING_ID},
	    {"confirmation-code", required_argument, NULL, OPT_CC},
	    {"imei", required_argument, NULL, OPT_IMEI},
	    {NULL, 0, NULL, 0},
	};
	struct lpa L;
	struct dl d;
	memset(&d, 0, sizeof d);
	d.L = &L;
	int rc = lpa_init(&L, "profile download", argc, argv, 2, opts, dl_opt, &d);
	if (rc < 0) {
		printf("usage: esim profile download ACTIVATION-CODE | --smdp ADDRESS "
		       "[--matching-id ID]\n"
		       "                            [--confirmation-code CC] [--imei IMEI]\n\n");
		lpa_usage_globals(stdout);
		L.exit_code = CLI_OK;
	} else if (rc == CLI_OK) {
		download(&d);
	}
	return lpa_done(&L);
}
