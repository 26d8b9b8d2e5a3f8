/*
 * ES11 (LPA -> SM-DS; SGP.22 5.8, 3.3; digest 5.5): the common mutual
 * authentication of SGP.22 3.1.2 run by the SM-DS, answering the event
 * records of the authenticated eUICC.
 *
 *  initiateAuthentication: the LPA names us (smdpAddress), sends the
 *    eUICC's challenge and EUICCInfo1; we pick a CI the eUICC signs with
 *    and we trust, and one of our CERT.DSauth the eUICC can verify, sign
 *    serverSigned1 (rsp_server_signed1_build, the same builder as the
 *    SM-DP+) and keep a session: transactionId, serverChallenge, identity,
 *    CI, time.
 *  authenticateClient: the session is taken out of the store in the same
 *    statement that reads it (DELETE ... RETURNING), so a transactionId
 *    works once (a replay is an unknown transaction, 8.10.1 / 3.9), and a
 *    session older than session_ttl_s is refused the same way. The eUICC's
 *    answer is verified by rsp_auth_server_resp_verify (library, shared
 *    with the LPA-facing checks of the SM-DP+): eUICC and EUM chain to the
 *    chosen CI, EID in the EUM's range, euiccSignature1, transactionId and
 *    serverChallenge. Only then is the EID known, and only its events are
 *    read. An EID without events gets an empty list: no difference an
 *    eUICC could use to learn whether other events exist.
 *
 * Every failure answers HTTP 200 with a Failed header (SGP.22 5.8.1 /
 * 5.8.2 codes; docs/smds.md lists them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "esim/rsp_auth.h"
#include "esim/rsp_es10.h"
#include "smds_int.h"

#define ES11_MAX_BODY	  (64 * 1024)
#define ES11_MAX_DEPTH	  4
#define ES11_MAX_SESSIONS 10000
#define ES11_MAX_EVENTS	  64

static const struct smds_status MISSING = {"1.3.1", "2.2", "mandatory element missing"};
static const struct smds_status BADFIELD = {"1.3.1", "2.1", "element invalid"};
static const struct smds_status UNKNOWN_TX = {"8.10.1", "3.9", "transactionId unknown"};

struct es11 {
	smds *d;
	json_t *req, *resp;
	struct smds_status st;
	bool busy;
};

/* A base64 member: false (with st set) when absent, invalid or too long. */
static bool get_b64(struct es11 *x, const char *field, size_t max, uint8_t **out, size_t *len)
{
	esim_err err = net_json_get_base64(x->req, field, max, out, len, NULL);
	if (err == ESIM_OK)
		return true;
	x->st = json_object_get(x->req, field) ? BADFIELD : MISSING;
	return false;
}

/* Sessions older than the lifetime go; then the count of those left. */
static esim_err session_room(smds *d, bool *room)
{
	store_stmt *st;
	esim_err err = store_prepare(d->db, "DELETE FROM smds_sessions WHERE created < ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)smds_now(d) - (int64_t)d->session_ttl_s);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = store_prepare(d->db, "SELECT COUNT(*) FROM smds_sessions", &st);
	if (err != ESIM_OK)
		return err;
	bool row;
	err = store_step(st, &row);
	*room = err == ESIM_OK && row && store_col_int64(st, 0) < ES11_MAX_SESSIONS;
	store_finalize(st);
	return err;
}

static esim_err initiate_authentication(struct es11 *x)
{
	smds *d = x->d;
	const char *addr = smds_opt_str(x->req, "smdpAddress");
	uint8_t *chal = NULL, *info = NULL, *signed1 = NULL;
	size_t chal_len = 0, info_len = 0, signed1_len = 0;
	esim_err err = ESIM_OK;
	if (!addr) {
		x->st = MISSING;
		return ESIM_OK;
	}
	if (!get_b64(x, "euiccChallenge", 64, &chal, &chal_len) ||
	    !get_b64(x, "euiccInfo1", 4096, &info, &info_len))
		goto out;
	if (chal_len != RSP_CHALLENGE_LEN) {
		x->st = BADFIELD;
		goto out;
	}
	if (strcasecmp(addr, d->fqdn) != 0) {
		x->st = SMDS_FAIL("8.9.1", "3.8", "SM-DS address refused");
		goto out;
	}
	struct rsp_euicc_info1 i1;
	if (rsp_euicc_info1_parse(info, info_len, &i1) != ESIM_OK) {
		x->st = BADFIELD;
		goto out;
	}
	if (i1.svn[0] != 2) {
		x->st = SMDS_FAIL("8.9.3", "3.1", "SGP.22 version not supported");
		goto out;
	}
	/* the CI the eUICC signs with and our CERT.DSauth it can verify: the
	 * same choice as the SM-DP+'s (rsp_server_choose) */
	der_span sign[RSP_MAX_PKIDS], verif[RSP_MAX_PKIDS], ids[SMDS_MAX_IDENTITIES], chosen;
	for (size_t i = 0; i < i1.signing.n; i++)
		sign[i] = (der_span){i1.signing.id[i], i1.signing.len[i]};
	for (size_t i = 0; i < i1.verification.n; i++)
		verif[i] = (der_span){i1.verification.id[i], i1.verification.len[i]};
	for (size_t k = 0; k < d->n_ids; k++)
		ids[k] = (der_span){d->ids[k].ci_pkid, d->ids[k].ci_pkid_len};
	int ident = -1;
	esim_err ce = rsp_server_choose(sign, i1.signing.n, verif, i1.verification.n, d->trust, ids,
					d->n_ids, &chosen, &ident);
	if (ce == ESIM_E_CERT_UNKNOWN_CI) {
		x->st = SMDS_FAIL("8.9.2", "3.1", "none of the eUICC's CIs is supported");
		goto out;
	}
	if (ce != ESIM_OK) {
		x->st = SMDS_FAIL("8.9.4", "3.7", "no SM-DS certificate for the eUICC's CIs");
		goto out;
	}
	const uint8_t *ci = chosen.p;
	size_t ci_len = chosen.len;
	rsp_txid txid;
	uint8_t server_chal[RSP_CHALLENGE_LEN], sig1[RSP_SIG_LEN], sig_tlv[RSP_SIG_TLV_LEN];
	if ((err = rsp_txid_random(&txid)) != ESIM_OK)
		goto out;
	if (RAND_bytes(server_chal, sizeof server_chal) != 1) {
		err = ESIM_E_CRYPTO_RANDOM;
		goto out;
	}
	const struct smds_identity *id = &d->ids[ident];
	err = rsp_server_signed1_build(&txid, chal, d->fqdn, server_chal, id->dsauth_key, &signed1,
				       &signed1_len, sig1);
	if (err != ESIM_OK)
		goto out;
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&txid, hex);
	pthread_mutex_lock(&d->lock);
	bool room = false;
	err = session_room(d, &room);
	store_stmt *st = NULL;
	if (err == ESIM_OK && room)
		err = store_prepare(
		    d->db,
		    "INSERT INTO smds_sessions (txid, ident, server_challenge, ci_pkid,"
		    " created) VALUES (?1, ?2, ?3, ?4, ?5)",
		    &st);
	if (err == ESIM_OK && room) {
		store_bind_text(st, 1, hex);
		store_bind_int64(st, 2, ident);
		store_bind_blob(st, 3, server_chal, sizeof server_chal);
		store_bind_blob(st, 4, ci, ci_len);
		store_bind_int64(st, 5, (int64_t)smds_now(d));
		err = store_run(st);
		store_finalize(st);
	}
	pthread_mutex_unlock(&d->lock);
	if (err != ESIM_OK)
		goto out;
	if (!room) {
		x->st = SMDS_FAIL("8.9", "4.2", "too many sessions pending; retry later");
		x->busy = true;
		goto out;
	}
	uint8_t pk[2 + CRYPTO_KEY_ID_MAX];
	pk[0] = 0x04;
	pk[1] = (uint8_t)ci_len;
	memcpy(pk + 2, ci, ci_len);
	size_t cert_len;
	const uint8_t *cert = crypto_cert_der(id->dsauth, &cert_len);
	rsp_sig_tlv(sig1, sig_tlv);
	json_object_set_new(x->resp, "transactionId", json_string(hex));
	net_json_set_base64(x->resp, "serverSigned1", signed1, signed1_len);
	net_json_set_base64(x->resp, "serverSignature1", sig_tlv, sizeof sig_tlv);
	net_json_set_base64(x->resp, "euiccCiPKIdToBeUsed", pk, 2 + ci_len);
	net_json_set_base64(x->resp, "serverCertificate", cert, cert_len);
	smds_logf(d, "session_start", "txid=%s curve=%s", hex, crypto_curve_name(id->curve));
out:
	free(signed1);
	free(chal);
	free(info);
	return err;
}

struct session {
	bool found, expired;
	int ident;
	uint8_t server_challenge[RSP_CHALLENGE_LEN];
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX];
	size_t ci_pkid_len;
};

/* Take the session out of the store: whatever follows, it is spent. */
static esim_err take_session(smds *d, const char *txhex, struct session *ss)
{
	memset(ss, 0, sizeof *ss);
	store_stmt *st;
	esim_err err = store_prepare(d->db,
				     "DELETE FROM smds_sessions WHERE txid = ?1"
				     " RETURNING ident, server_challenge, ci_pkid, created",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, txhex);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		size_t n1 = 0, n2 = 0;
		const uint8_t *ch = store_col_blob(st, 1, &n1);
		const uint8_t *ci = store_col_blob(st, 2, &n2);
		if (ch && ci && n1 == RSP_CHALLENGE_LEN && n2 <= sizeof ss->ci_pkid) {
			ss->found = true;
			ss->ident = (int)store_col_int64(st, 0);
			memcpy(ss->server_challenge, ch, n1);
			memcpy(ss->ci_pkid, ci, n2);
			ss->ci_pkid_len = n2;
			ss->expired = store_col_int64(st, 3) + (int64_t)d->session_ttl_s <
				      (int64_t)smds_now(d);
		}
		bool more;
		err = store_step(st, &more); /* run the statement to its end */
	}
	store_finalize(st);
	return err;
}

/* The failure codes of authenticateClient (SGP.22 5.8.2, as ES9+ 5.6.3). */
static struct smds_status verify_status(esim_err e)
{
	switch (e) {
	case ESIM_E_RSP_BAD_SIGNATURE:
	case ESIM_E_RSP_CHALLENGE_MISMATCH:
		return SMDS_FAIL("8.1", "6.1", "eUICC signature invalid");
	case ESIM_E_RSP_TXID_MISMATCH:
		return UNKNOWN_TX;
	case ESIM_E_RSP_CI_MISMATCH:
		return SMDS_FAIL("8.11.1", "3.9", "EUM not issued by the CI to be used");
	case ESIM_E_CERT_EXPIRED:
		return SMDS_FAIL("8.1.3", "6.3", "eUICC or EUM certificate expired");
	case ESIM_E_RSP_BAD_STRUCTURE:
	case ESIM_E_RSP_FIELD_SIZE:
	case ESIM_E_RSP_DUPLICATE_FIELD:
		return BADFIELD;
	default:
		return SMDS_FAIL("8.1.3", "6.1", "eUICC certificate invalid");
	}
}

static esim_err read_events(smds *d, const char *eid, json_t *list)
{
	store_stmt *st;
	esim_err err = store_prepare(d->db,
				     "SELECT event_id, smdp_address FROM smds_events WHERE eid = ?1"
				     " ORDER BY id LIMIT ?2",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, eid);
	store_bind_int64(st, 2, ES11_MAX_EVENTS);
	bool row;
	while ((err = store_step(st, &row)) == ESIM_OK && row)
		json_array_append_new(list, json_pack("{s:s,s:s}", "eventId", store_col_text(st, 0),
						      "rspServerAddress", store_col_text(st, 1)));
	store_finalize(st);
	return err;
}

static esim_err authenticate_client(struct es11 *x)
{
	smds *d = x->d;
	const char *txhex = smds_opt_str(x->req, "transactionId");
	uint8_t *asr = NULL;
	size_t asr_len = 0;
	if (!txhex) {
		x->st = MISSING;
		return ESIM_OK;
	}
	rsp_txid txid;
	char hex[2 * RSP_TXID_MAX + 1];
	if (rsp_txid_from_hex(txhex, &txid) != ESIM_OK) {
		x->st = UNKNOWN_TX;
		return ESIM_OK;
	}
	rsp_txid_to_hex(&txid, hex); /* the stored form: upper case */
	if (!get_b64(x, "authenticateServerResponse", ES11_MAX_BODY, &asr, &asr_len))
		return ESIM_OK;
	struct session ss;
	pthread_mutex_lock(&d->lock);
	esim_err err = take_session(d, hex, &ss);
	pthread_mutex_unlock(&d->lock);
	if (err != ESIM_OK)
		goto out;
	if (!ss.found || ss.expired || ss.ident < 0 || (size_t)ss.ident >= d->n_ids) {
		x->st = UNKNOWN_TX;
		smds_logf(d, "session_refused", "txid=%s why=%s", hex,
			  ss.found ? "expired" : "unknown-or-spent");
		goto out;
	}
	/* the eUICC's chain as the SM-DP+ checks it (rsp_server_check_chain,
	 * each failure with its code), then euiccSignature1, the
	 * transactionId and the serverChallenge of this session */
	struct rsp_chain_check cc = {.trust = d->trust,
				     .ci_pkid = ss.ci_pkid,
				     .ci_pkid_len = ss.ci_pkid_len,
				     .check_time = d->check_time,
				     .now = smds_now(d)};
	struct rsp_auth_server_resp r;
	memset(&r, 0, sizeof r);
	enum rsp_chain_fault f = RSP_CHAIN_OK;
	crypto_cert *euicc = NULL;
	esim_err ve = rsp_auth_server_resp_parse(asr, asr_len, &r);
	if (ve == ESIM_OK && (ve = rsp_server_check_chain(&cc, &r, &f, &euicc, r.eid)) == ESIM_OK &&
	    f == RSP_CHAIN_OK) {
		if (crypto_ecdsa_verify(crypto_cert_pubkey(euicc), r.euicc_signed1.p,
					r.euicc_signed1.len, r.euicc_signature1,
					RSP_SIG_LEN) != ESIM_OK)
			ve = ESIM_E_RSP_BAD_SIGNATURE;
		else if (!rsp_txid_equal(&r.txid, &txid))
			ve = ESIM_E_RSP_TXID_MISMATCH;
		else if (memcmp(r.server_challenge, ss.server_challenge, RSP_CHALLENGE_LEN) != 0)
			ve = ESIM_E_RSP_CHALLENGE_MISMATCH;
	}
	crypto_cert_free(euicc);
	if (ve == ESIM_E_RSP_EUICC_ERROR) {
		x->st = SMDS_FAIL("8.1", "3.8", "eUICC refused the authentication");
	} else if (ve == ESIM_OK && f != RSP_CHAIN_OK) {
		const char *sc, *rc, *msg;
		rsp_chain_fault_status(f, &sc, &rc, &msg);
		x->st = SMDS_FAIL(sc, rc, msg);
		smds_logf(d, "auth_refused", "txid=%s why=%s", hex, msg);
	} else if (ve != ESIM_OK) {
		x->st = verify_status(ve);
		smds_logf(d, "auth_refused", "txid=%s why=%s", hex, esim_errname(ve));
	} else if (rsp_eid_check(r.eid) != ESIM_OK) {
		x->st = SMDS_FAIL("8.1.1", "2.1", "EID of the eUICC certificate invalid");
	} else if (r.has_matching_id && r.matching_id.len > 0) {
		/* ES11 carries no matchingId (SGP.22 3.1.2: an SM-DS session) */
		x->st = SMDS_FAIL("8.2.6", "3.8", "matchingId not expected by an SM-DS");
	} else {
		json_t *list = json_array();
		pthread_mutex_lock(&d->lock);
		err = list ? read_events(d, r.eid, list) : ESIM_E_NOMEM;
		pthread_mutex_unlock(&d->lock);
		if (err == ESIM_OK) {
			smds_logf(d, "events_read", "txid=%s events=%zu", hex,
				  json_array_size(list));
			json_object_set_new(x->resp, "transactionId", json_string(hex));
			json_object_set_new(x->resp, "eventEntries", list);
		} else {
			json_decref(list);
		}
	}
	rsp_auth_server_resp_clear(&r);
out:
	free(asr);
	return err;
}

esim_err smds_es11(smds *d, const char *function, const uint8_t *body, size_t len, int *status,
		   char **out)
{
	*out = NULL;
	*status = 404;
	bool init = strcmp(function, "initiateAuthentication") == 0;
	if (!init && strcmp(function, "authenticateClient") != 0)
		return ESIM_OK;
	*status = 200;
	struct es11 x = {.d = d, .st = SMDS_OK, .resp = json_object()};
	if (!x.resp)
		return ESIM_E_NOMEM;
	esim_err err = ESIM_OK;
	if (net_json_parse(body, len, ES11_MAX_BODY * 2, ES11_MAX_DEPTH, &x.req, NULL) != ESIM_OK ||
	    !json_is_object(x.req))
		x.st = BADFIELD;
	else
		err = init ? initiate_authentication(&x) : authenticate_client(&x);
	json_decref(x.req);
	if (err != ESIM_OK) {
		json_decref(x.resp);
		return err;
	}
	if (x.busy)
		*status = 503;
	return smds_json_finish(&x.st, x.resp, out);
}
