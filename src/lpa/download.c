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
 *   ES9+ getBoundProfilePackage           (sent once per code)
 *     8.2.7 / 3.8, a wrong confirmation code: the SM-DP+ counts it and
 *     keeps the session, so the user is asked again (or the next line of
 *     stdin with --cc -) and PrepareDownload + getBoundProfilePackage run
 *     again on the same transactionId (SGP.22 5.6.2, SGP.23 CC retry); no
 *     other code: both sessions cancelled, postponed; 8.2.7 / 6.4: the
 *     order is blocked
 *   card LoadBoundProfilePackage in the pieces of digest 3.5
 *   ES9+ handleNotification of the PIR    (safe to repeat)
 *   card RemoveNotificationFromList once the server accepted it
 *
 * Each ES9+ message and the LPA's checks of the answers (serverSigned1
 * names our transaction, challenge and address; smdpSigned2 our
 * transaction) are the library's (rsp_es9_dl_*, the rsp_es9 codec), the
 * code the test driver runs too; this file is the user's side of it.
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

#include "esim/i18n.h"
#include "esim/rsp_ac.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "lpa/lpa.h"

enum { OPT_SMDP = 0x200, OPT_MATCHING_ID, OPT_CC, OPT_IMEI };

struct dl {
	struct lpa *L;
	const char *ac_text;
	char smdp[RSP_ADDRESS_MAX + 1];
	char matching_id[RSP_AC_MATCHING_ID_MAX + 1];
	bool have_smdp, have_matching_id;
	const char *cc; /* --confirmation-code / --cc, or the last one read */
	bool cc_stdin;	/* --cc -: one code per line from stdin */
	char cc_buf[128];
	int cc_attempts; /* getBoundProfilePackage calls carrying a code */
	bool ac_cc_required;
	const char *imei;
	struct rsp_device_info dev;

	struct rsp_es9_dl s; /* the library's LPA steps: messages and checks */
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
		d->cc_stdin = strcmp(arg, "-") == 0;
		d->cc = d->cc_stdin ? NULL : arg;
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

/* A successful answer is for the session's transaction. */
static int check_txid(struct dl *d, const struct rsp_es9_response *r, const rsp_txid *got,
		      const char *fn)
{
	if (rsp_es9_dl_check_txid(&d->s, r) == ESIM_OK)
		return CLI_OK;
	char hex[2 * RSP_TXID_MAX + 1] = "?";
	rsp_txid_to_hex(got, hex);
	return lpa_fail(d->L, CLI_EXIT_SERVER,
			"the %s answer carries transactionId %s, not the session's %s", fn, hex,
			d->txid_hex);
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
			struct rsp_es9_request rq;
			struct rsp_es9_response ans;
			struct lpa_es9_status st;
			memset(&ans, 0, sizeof ans);
			if (rsp_es9_dl_cancel(&d->s, resp.data, resp.len, &rq) == ESIM_OK &&
			    lpa_es9_call(L, d->smdp, &rq, false, &ans, &st) == CLI_OK)
				json_object_set_new(L->result, "cancelled_with_server",
						    json_true());
			rsp_es9_response_clear(&ans);
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

/* What rsp_es9_dl_authenticate_server found wrong in the
 * initiateAuthentication answer, said for the user. */
static int signed1_failed(struct dl *d, esim_err err, const char *txid_hex)
{
	struct lpa *L = d->L;
	switch (err) {
	case ESIM_E_RSP_TXID_MISMATCH:
		return lpa_fail(
		    L, CLI_EXIT_SERVER,
		    "initiateAuthentication: the JSON transactionId %s differs from the "
		    "one in serverSigned1",
		    txid_hex);
	case ESIM_E_RSP_CHALLENGE_MISMATCH:
		return lpa_fail(
		    L, CLI_EXIT_SERVER,
		    "initiateAuthentication: the server signed another eUICC challenge");
	case ESIM_E_RSP_ADDRESS_MISMATCH:
		return lpa_fail(L, CLI_EXIT_SERVER,
				"initiateAuthentication: the server calls itself '%s', but %s was "
				"contacted",
				d->s.signed_address, d->smdp);
	default:
		return lpa_fail_err(L, err, CLI_EXIT_SERVER,
				    "initiateAuthentication: serverSigned1 is malformed or the "
				    "answer cannot be passed to the eUICC");
	}
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
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	struct lpa_es9_status st;
	memset(&resp, 0, sizeof resp);
	if (rc == CLI_OK) {
		esim_err err = rsp_es9_dl_init(&d->s, d->smdp);
		if (err == ESIM_OK)
			err = rsp_es9_dl_initiate(&d->s, chal.data, chal.len, info1.data, info1.len,
						  &rq);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetEUICCChallenge");
	}
	if (rc == CLI_OK)
		rc = lpa_es9_call(L, d->smdp, &rq, true, &resp, &st);
	if (rc == CLI_OK) {
		char hex[2 * RSP_TXID_MAX + 1];
		rsp_txid_to_hex(&resp.u.initiate.txid, hex);
		uint8_t *as = NULL;
		size_t as_len = 0;
		esim_err err = rsp_es9_dl_authenticate_server(&d->s, &resp, matching_id, &d->dev,
							      &as, &as_len);
		if (err != ESIM_OK) {
			rc = signed1_failed(d, err, hex);
		} else {
			d->txid = d->s.txid;
			memcpy(d->txid_hex, hex, sizeof hex);
			json_object_set_new(L->result, "transaction_id", json_string(d->txid_hex));
			rc = lpa_es10_owned(L, ESIM_OK, as, as_len, auth_resp);
			if (rc == CLI_OK)
				d->server_session = true;
		}
	}
	rsp_es9_response_clear(&resp);
	esim_buf_free(&chal);
	esim_buf_free(&info1);
	return rc;
}

/* Tell the server that the eUICC refused (it ends its session), then fail
 * with the card's code. */
static int forward_card_refusal(struct dl *d, enum rsp_es9_fn fn, const esim_buf *resp,
				uint32_t tag, int64_t code)
{
	struct lpa *L = d->L;
	L->soft++;
	struct rsp_es9_request rq;
	struct rsp_es9_response ans;
	struct lpa_es9_status st;
	memset(&ans, 0, sizeof ans);
	esim_err err = fn == RSP_ES9_AUTHENTICATE_CLIENT
			   ? rsp_es9_dl_authenticate_client(&d->s, resp->data, resp->len, &rq)
			   : rsp_es9_dl_get_bpp(&d->s, resp->data, resp->len, &rq);
	if (err == ESIM_OK)
		(void)lpa_es9_call(L, d->smdp, &rq, false, &ans, &st);
	rsp_es9_response_clear(&ans);
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

/* The next confirmation code into cc_buf: a line of stdin (--cc -, the
 * question on stderr unless empty) or typed on the terminal, not echoed.
 * 1: a code; 0: the input ended or the line was empty; -1: too long (the
 * rest of the line is skipped). The previous code is wiped first. */
static int read_cc(struct dl *d, const char *question)
{
	esim_wipe(d->cc_buf, sizeof d->cc_buf);
	d->cc = NULL;
	lpa_progress_end(d->L);
	if (!d->cc_stdin)
		return lpa_prompt(d->L, question, true, d->cc_buf, sizeof d->cc_buf) &&
			       d->cc_buf[0] != '\0'
			   ? 1
			   : 0;
	if (question[0] != '\0') {
		fputs(question, stderr);
		fputc('\n', stderr);
	}
	if (fgets(d->cc_buf, (int)sizeof d->cc_buf, stdin) == NULL)
		return 0;
	size_t n = strcspn(d->cc_buf, "\r\n");
	if (d->cc_buf[n] == '\0' && n == sizeof d->cc_buf - 1) {
		int c;
		while ((c = getchar()) != EOF && c != '\n')
			;
		esim_wipe(d->cc_buf, sizeof d->cc_buf);
		return -1;
	}
	d->cc_buf[n] = '\0';
	if (n == 0)
		return 0;
	d->cc = d->cc_buf;
	return 1;
}

static int ask_cc(struct dl *d)
{
	struct lpa *L = d->L;
	if (d->cc != NULL)
		return CLI_OK;
	if (!d->cc_stdin && (!L->stdin_tty || L->o.json))
		return lpa_fail(L, CLI_EXIT_USAGE,
				"this profile needs a confirmation code: pass --confirmation-code "
				"CODE, or --cc - to read it from stdin");
	int got = read_cc(d, d->cc_stdin ? "" : "Confirmation code: ");
	if (got < 0)
		return lpa_fail(L, CLI_EXIT_USAGE, "the confirmation code is longer than %zu bytes",
				sizeof d->cc_buf - 2);
	if (got == 0)
		return lpa_fail(L, CLI_EXIT_USAGE,
				d->cc_stdin ? "no confirmation code on stdin (--cc -)"
					    : "no confirmation code given");
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
		return forward_card_refusal(d, RSP_ES9_AUTHENTICATE_CLIENT, auth_resp,
					    RSP_ES10_AUTHENTICATE_SERVER, code);
	if (err != ESIM_OK)
		return lpa_fail_err(L, err, CLI_EXIT_CARD, "AuthenticateServer");
	d->card_session = true;

	lpa_progress(L, "[2/6] authenticating the eUICC to %s", d->smdp);
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	struct lpa_es9_status st;
	memset(&resp, 0, sizeof resp);
	memset(&st, 0, sizeof st);
	err = rsp_es9_dl_authenticate_client(&d->s, auth_resp->data, auth_resp->len, &rq);
	int rc = err == ESIM_OK ? lpa_es9_call(L, d->smdp, &rq, false, &resp, &st)
				: lpa_fail_err(L, err, CLI_EXIT_FAILURE, "authenticateClient");
	if (rc != CLI_OK) {
		rsp_es9_response_clear(&resp);
		if (st.subject[0] != '\0')
			d->server_session = false; /* the server ended it */
		cancel(d, st.err != ESIM_OK ? RSP_CANCEL_TIMEOUT : RSP_CANCEL_UNDEFINED);
		return rc;
	}
	err = rsp_es9_dl_accept_authenticate(&d->s, &resp);
	rsp_es9_response_clear(&resp);
	if (err == ESIM_E_RSP_TXID_MISMATCH)
		rc = lpa_fail(L, CLI_EXIT_SERVER,
			      "authenticateClient: the answer or its smdpSigned2 is for another "
			      "transaction than %s",
			      d->txid_hex);
	else if (err != ESIM_OK)
		rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
				  "authenticateClient: smdpSigned2 is malformed");
	bool cc_required = rc == CLI_OK && d->s.cc_required;
	if (rc != CLI_OK) {
		cancel(d, RSP_CANCEL_UNDEFINED);
	} else {
		struct rsp_metadata m;
		const der_span meta = d->s.auth.u.authenticate.profile_metadata;
		err = rsp_metadata_decode(meta.p, meta.len, &m);
		if (err != ESIM_OK) {
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
					  "authenticateClient: the profile metadata is malformed");
			cancel(d, RSP_CANCEL_METADATA_MISMATCH);
		} else {
			json_t *mj = metadata_json(&m);
			json_object_set_new(L->result, "profile", mj);
			lpa_progress_end(L);
			if (L->tty)
				printf(_("profile: %s (%s), ICCID %s\n"), m.name ? m.name : "-",
				       m.spn ? m.spn : "-",
				       json_string_value(json_object_get(mj, "iccid")));
			if (!L->o.yes && L->stdin_tty && !L->o.json &&
			    !lpa_confirm(L, _("Download and install this profile? [y/N] "))) {
				rc = lpa_fail(L, CLI_EXIT_FAILURE,
					      "download declined: nothing was "
					      "installed");
				cancel(d, RSP_CANCEL_END_USER_REJECTION);
			}
			rsp_metadata_free(&m);
		}
	}
	json_object_set_new(L->result, "confirmation_code_required", json_boolean(cc_required));
	if (rc == CLI_OK && cc_required) {
		rc = ask_cc(d);
		if (rc != CLI_OK)
			cancel(d, RSP_CANCEL_POSTPONED);
	} else if (rc == CLI_OK && d->cc != NULL) {
		lpa_warn(L, "the profile needs no confirmation code; the one given is not used");
	}
	if (rc == CLI_OK) {
		/* hashCc of the code over the transaction, wiped once used */
		err = rsp_es9_dl_prepare_download(&d->s, cc_required ? d->cc : NULL, pd, pd_len);
		if (err != ESIM_OK) {
			rc = lpa_fail_err(L, err, CLI_EXIT_SERVER,
					  "authenticateClient: the answer cannot be passed to the "
					  "eUICC");
			cancel(d, RSP_CANCEL_UNDEFINED);
		}
	}
	return rc;
}

static bool status_is(const struct lpa_es9_status *st, const char *subject, const char *reason)
{
	return strcmp(st->subject, subject) == 0 && strcmp(st->reason, reason) == 0;
}

/* Phase 3 (card) and 4 once: the BPP in *bpp; *st says how the server
 * refused. A wrong confirmation code (8.2.7 / 3.8) leaves both sessions
 * open for another try (cc_again); any other failure cancels them. */
static int fetch_bpp(struct dl *d, uint8_t *pd, size_t pd_len, uint8_t **bpp, size_t *bpp_len,
		     struct lpa_es9_status *st)
{
	struct lpa *L = d->L;
	memset(st, 0, sizeof *st);
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
		rc = forward_card_refusal(d, RSP_ES9_GET_BOUND_PROFILE_PACKAGE, &resp,
					  RSP_ES10_PREPARE_DOWNLOAD, pr.error_code);
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
	struct rsp_es9_request rq;
	struct rsp_es9_response ans;
	memset(&ans, 0, sizeof ans);
	err = rsp_es9_dl_get_bpp(&d->s, resp.data, resp.len, &rq);
	if (d->s.cc_required)
		d->cc_attempts++;
	rc = err == ESIM_OK ? lpa_es9_call(L, d->smdp, &rq, false, &ans, st)
			    : lpa_fail_err(L, err, CLI_EXIT_FAILURE, "getBoundProfilePackage");
	esim_buf_free(&resp);
	if (rc != CLI_OK) {
		rsp_es9_response_clear(&ans);
		/* a wrong code is counted and the server keeps the session */
		if (d->s.cc_required && status_is(st, "8.2.7", "3.8"))
			return rc;
		if (st->subject[0] != '\0')
			d->server_session = false;
		if (status_is(st, "8.2.7", "6.4"))
			lpa_fail(L, CLI_EXIT_SERVER,
				 "too many wrong confirmation codes: the SM-DP+ has blocked this "
				 "order; contact the operator for a new activation code");
		cancel(d, st->err != ESIM_OK ? RSP_CANCEL_TIMEOUT : RSP_CANCEL_UNDEFINED);
		return rc;
	}
	rc = check_txid(d, &ans, &ans.u.get_bpp.txid, "getBoundProfilePackage");
	if (rc == CLI_OK) {
		const der_span b = ans.u.get_bpp.bound_profile_package;
		*bpp = malloc(b.len);
		if (*bpp == NULL) {
			rc = lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
		} else {
			memcpy(*bpp, b.p, b.len);
			*bpp_len = b.len;
		}
	}
	rsp_es9_response_clear(&ans);
	if (rc != CLI_OK)
		cancel(d, RSP_CANCEL_UNDEFINED);
	return rc;
}

/* How many times a refused confirmation code is asked for again. The
 * SM-DP+ has its own limit (esim-smdp: cc-attempts, 3 by default) and
 * blocks the order when it is reached; this one only ends the loop. */
#define DL_CC_RETRIES 3

/* After 8.2.7 / 3.8: the next code (a line of stdin with --cc -, else
 * asked on the terminal), its PrepareDownload request in *pd. When there
 * is none, both sessions are cancelled as postponed, so that the SM-DP+
 * does not keep one and the order stays downloadable. */
static int cc_again(struct dl *d, int retries_left, uint8_t **pd, size_t *pd_len)
{
	struct lpa *L = d->L;
	bool can_ask = d->cc_stdin || (L->stdin_tty && !L->o.json);
	int got = 0;
	if (can_ask && retries_left > 0) {
		char q[160];
		snprintf(q, sizeof q,
			 _("Confirmation code was not accepted; up to %d attempts may remain. "
			   "Enter it again: "),
			 retries_left);
		got = read_cc(d, q);
	}
	if (got != 1) {
		const char *why = !can_ask ? "the code given was wrong and cannot be asked for "
					     "again here (--cc - reads codes from stdin)"
				  : retries_left <= 0 ? "no more attempts are asked for"
				  : got < 0	      ? "the confirmation code is too long"
						      : "no other confirmation code was given";
		cancel(d, RSP_CANCEL_POSTPONED);
		/* the 8.2.7 / 3.8 failure stays the result; this explains it */
		return lpa_fail(L, CLI_EXIT_SERVER,
				"%s: the download was cancelled, nothing was installed; the order "
				"stays downloadable with the right code",
				why);
	}
	/* the refusal is forgotten: what counts is how the next try ends */
	L->exit_code = CLI_OK;
	json_decref(L->error);
	L->error = NULL;
	esim_err err = rsp_es9_dl_prepare_download(&d->s, d->cc, pd, pd_len);
	if (err != ESIM_OK) {
		int rc = lpa_fail_err(L, err, CLI_EXIT_FAILURE, "PrepareDownload");
		cancel(d, RSP_CANCEL_UNDEFINED);
		return rc;
	}
	return CLI_OK;
}

/* Phases 3 and 4, again with another confirmation code while the SM-DP+
 * refuses the code and keeps the session (SGP.22 5.6.2): the eUICC signs
 * a new euiccSigned2 with the new hashCc on the same transactionId. */
static int get_bpp(struct dl *d, uint8_t *pd, size_t pd_len, uint8_t **bpp, size_t *bpp_len)
{
	for (int retries_left = DL_CC_RETRIES;; retries_left--) {
		struct lpa_es9_status st;
		int rc = fetch_bpp(d, pd, pd_len, bpp, bpp_len, &st); /* takes pd */
		if (d->s.cc_required)
			json_object_set_new(d->L->result, "confirmation_code_attempts",
					    json_integer(d->cc_attempts));
		if (rc == CLI_OK || !d->s.cc_required || !status_is(&st, "8.2.7", "3.8"))
			return rc;
		pd = NULL;
		rc = cc_again(d, retries_left, &pd, &pd_len);
		if (rc != CLI_OK)
			return rc;
	}
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
			printf(_("profile %s installed (disabled); enable it with 'esim profile "
				 "enable %s'\n"),
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
	rsp_es9_dl_clear(&d->s);
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
	    {"cc", required_argument, NULL, OPT_CC},
	    {"imei", required_argument, NULL, OPT_IMEI},
	    {NULL, 0, NULL, 0},
	};
	struct lpa L;
	struct dl d;
	memset(&d, 0, sizeof d);
	d.L = &L;
	int rc = lpa_init(&L, "profile download", argc, argv, 2, opts, dl_opt, &d);
	if (rc < 0) {
		fputs(
		    _("usage: esim profile download ACTIVATION-CODE | --smdp ADDRESS "
		      "[--matching-id ID]\n"
		      "                            [--confirmation-code CC | --cc CC | --cc -] "
		      "[--imei IMEI]\n"
		      "  --cc -   read the confirmation code from stdin, one per line: a code\n"
		      "           the SM-DP+ refuses (8.2.7 / 3.8) is followed by the next line,\n"
		      "           up to 3 more; no more lines cancels the download "
		      "(postponed)\n\n"),
		    stdout);
		lpa_usage_globals(stdout);
		L.exit_code = CLI_OK;
	} else if (rc == CLI_OK) {
		download(&d);
	}
	return lpa_done(&L);
}
