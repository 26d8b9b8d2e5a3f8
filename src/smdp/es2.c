/*
 * ES2+ (operator -> SM-DP+, digest 9.2 / 9.3): DownloadOrder, ConfirmOrder,
 * CancelOrder, ReleaseProfile, and the durable outbox of
 * HandleDownloadProgressInfo calls back to the operator.
 *
 * The caller is identified by the SHA-256 of its TLS client certificate
 * (pinned per operator); the header's functionRequesterIdentifier must
 * name that same operator, and an operator only ever sees its own
 * profiles. Each function runs in one transaction together with the record
 * of its functionCallIdentifier, so a resent call gets the first answer
 * back (digest 15.4: idempotent ES2+). A call is known by (operator,
 * function, functionCallIdentifier) and kept with the SHA-256 of its
 * request: the same identifier on another function is another call, and
 * the same identifier and function with a different request is refused
 * (1.3.1 / 3.3) rather than answered with the first call's result.
 *
 * An ICCID that exists but belongs to another operator gets the very
 * answer of an unknown one (8.2.1 / 3.9), and so does another operator's
 * profileType (8.2.5 / 3.9), so that no operator can probe another's
 * inventory. Every EID that comes in is checked in full,
 * SGP.29 check digits included (rsp_eid_check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "esim/rsp.h"
#include "smdp_int.h"

#define ES2_MAX_BODY  (64 * 1024)
#define ES2_MAX_DEPTH 8

static const char *opt_str(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The answer for an ICCID that is unknown or another operator's: the
 * same bytes for both. */
static const struct smdp_status ICCID_UNKNOWN = {"8.2.1", "3.9", "ICCID unknown"};
/* Likewise for a profileType: another operator's type is answered as an
 * unknown one, or the names of its types could be probed. */
static const struct smdp_status PTYPE_UNKNOWN = {"8.2.5", "3.9", "profileType unknown"};

struct es2_ctx {
	smdp *d;
	const char *function;
	int64_t op_id;
	const char *op_name;
	const json_t *req;
	const char *call_id;
	char body_sha[65]; /* of the request without its header */
	time_t now;
	/* out, reset at each (re)try */
	struct smdp_status st;
	char msg[160]; /* a status message built for this call */
	json_t *resp_fields;
	char *replayed;
	/* ConfirmOrder with an smdsAddress: what its RegisterEvent's step 3
	 * needs (es12.c) to settle it, or to put the order back */
	struct smdp_es12_pending pend;
	enum smdp_es12_outcome outcome;
	int64_t profile_id;
	enum smdp_state prev_state, set_state;
	char *prev_eid, *prev_mid, *prev_smds;
	uint8_t prev_cc[32];
	bool prev_has_cc;
};

/* Forget a ConfirmOrder's pending RegisterEvent and the order as it was. */
static void pending_clear(struct es2_ctx *c)
{
	smdp_es12_pending_clear(&c->pend);
	free(c->prev_eid);
	free(c->prev_mid);
	free(c->prev_smds);
	c->prev_eid = c->prev_mid = c->prev_smds = NULL;
	esim_wipe(c->prev_cc, sizeof c->prev_cc);
	c->prev_has_cc = false;
}

/* The order's fields ConfirmOrder changes, kept to put them back when the
 * SM-DS refuses the event (step 3 of es12.c). */
static esim_err keep_order(struct es2_ctx *c, store *s, int64_t order_id)
{
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "SELECT eid, matching_id, cc_hash, smds_address FROM"
				     " smdp_orders WHERE id = ?1",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, order_id);
	bool row = false;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		const char *v;
		size_t n = 0;
		if ((v = store_col_text(st, 0)) && !(c->prev_eid = strdup(v)))
			err = ESIM_E_NOMEM;
		if ((v = store_col_text(st, 1)) && !(c->prev_mid = strdup(v)))
			err = ESIM_E_NOMEM;
		if ((v = store_col_text(st, 3)) && !(c->prev_smds = strdup(v)))
			err = ESIM_E_NOMEM;
		const uint8_t *h = store_col_blob(st, 2, &n);
		if (h && n == sizeof c->prev_cc) {
			memcpy(c->prev_cc, h, n);
			c->prev_has_cc = true;
		}
	}
	store_finalize(st);
	return err;
}

/* Profile + open order of an ICCID, checked to belong to the caller. */
struct prof {
	int64_t id, type_id, op_id, order_id;
	enum smdp_state state;
	char type_name[128];
	char order_eid[40];
	bool has_order_eid;
	char matching_id[80];
	bool has_mid;
};

static esim_err load_profile(store *s, const char *iccid, struct prof *p, bool *found)
{
	memset(p, 0, sizeof *p);
	store_stmt *st;
	esim_err err = store_prepare(
	    s,
	    "SELECT p.id, p.type_id, t.operator_id, p.state, t.name, o.id, o.eid, o.matching_id"
	    " FROM smdp_profiles p JOIN smdp_profile_types t ON t.id = p.type_id"
	    " LEFT JOIN smdp_orders o ON o.profile_id = p.id AND o.open = 1"
	    " WHERE p.iccid = ?1",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, iccid);
	bool row;
	err = store_step(st, &row);
	*found = err == ESIM_OK && row;
	if (*found) {
		p->id = store_col_int64(st, 0);
		p->type_id = store_col_int64(st, 1);
		p->op_id = store_col_int64(st, 2);
		if (smdp_state_parse(store_col_text(st, 3), &p->state) != ESIM_OK)
			err = ESIM_E_STORE_CORRUPT;
		snprintf(p->type_name, sizeof p->type_name, "%s", store_col_text(st, 4));
		p->order_id = store_col_is_null(st, 5) ? 0 : store_col_int64(st, 5);
		const char *e = store_col_text(st, 6);
		if (e) {
			p->has_order_eid = true;
			snprintf(p->order_eid, sizeof p->order_eid, "%s", e);
		}
		const char *m = store_col_text(st, 7);
		if (m) {
			p->has_mid = true;
			snprintf(p->matching_id, sizeof p->matching_id, "%s", m);
		}
	}
	store_finalize(st);
	return err;
}

/* An EID of the request, checked in full (32 digits, SGP.29 check
 * digits); false with 8.1.1 / 2.1 and a message naming the EID and the
 * rule broken. */
static bool eid_ok(struct es2_ctx *c, const char *eid)
{
	esim_err e = rsp_eid_check(eid);
	if (e == ESIM_OK)
		return true;
	if (e == ESIM_E_CRYPTO_EID_CHECK_DIGITS)
		snprintf(c->msg, sizeof c->msg,
			 "EID %s: wrong check digits (SGP.29: the 32-digit number mod 97 "
			 "must be 1)",
			 eid);
	else
		snprintf(c->msg, sizeof c->msg, "EID '%.40s': not 32 decimal digits", eid);
	c->st = SMDP_FAIL("8.1.1", "2.1", c->msg);
	return false;
}

static esim_err create_order(struct es2_ctx *c, store *s, int64_t profile_id, const char *eid)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    s,
	    "INSERT INTO smdp_orders (profile_id, operator_id, eid, cc_left, attempts, expires,"
	    " open, created, updated) VALUES (?1, ?2, ?3, ?4, 0, ?5, 1, ?6, ?6)",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, profile_id);
	store_bind_int64(st, 2, c->op_id);
	store_bind_text(st, 3, eid);
	store_bind_int64(st, 4, c->d->cc_max);
	store_bind_int64(st, 5, (int64_t)c->now + c->d->order_ttl_s);
	store_bind_int64(st, 6, (int64_t)c->now);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* ---- DownloadOrder (5.3.1) -------------------------------------------------- */

static esim_err download_order(struct es2_ctx *c, store *s)
{
	const char *eid = opt_str(c->req, "eid");
	const char *iccid = opt_str(c->req, "iccid");
	const char *ptype = opt_str(c->req, "profileType");
	if (eid && !eid_ok(c, eid))
		return ESIM_OK;
	if (!iccid && !ptype) {
		c->st = SMDP_FAIL("8.2.1", "2.3", "iccid or profileType required");
		return ESIM_OK;
	}
	struct prof p;
	esim_err err;
	if (iccid) {
		bool found;
		if ((err = load_profile(s, iccid, &p, &found)) != ESIM_OK)
			return err;
		if (!found || p.op_id != c->op_id) {
			c->st = ICCID_UNKNOWN;
			return ESIM_OK;
		}
		if (ptype && strcmp(ptype, p.type_name) != 0) {
			c->st = SMDP_FAIL("8.2.5", "3.8", "ICCID and profileType do not match");
			return ESIM_OK;
		}
		if (p.state != SMDP_AVAILABLE) {
			c->st = SMDP_FAIL("8.2.1", "3.3", "ICCID not available");
			return ESIM_OK;
		}
	} else {
		store_stmt *st;
		err = store_prepare(
		    s, "SELECT id, operator_id FROM smdp_profile_types WHERE name = ?1", &st);
		if (err != ESIM_OK)
			return err;
		store_bind_text(st, 1, ptype);
		bool row;
		err = store_step(st, &row);
		int64_t tid = row ? store_col_int64(st, 0) : 0;
		int64_t top = row ? store_col_int64(st, 1) : 0;
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
		if (!row || top != c->op_id) {
			c->st = PTYPE_UNKNOWN;
			return ESIM_OK;
		}
		/* claim exactly once (docs/store.md) */
		err = store_prepare(s,
				    "SELECT id FROM smdp_profiles WHERE type_id = ?1 AND state ="
				    " 'Available' ORDER BY id LIMIT 1 {{SKIP_LOCKED}}",
				    &st);
		if (err != ESIM_OK)
			return err;
		store_bind_int64(st, 1, tid);
		err = store_step(st, &row);
		int64_t pid = row ? store_col_int64(st, 0) : 0;
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
		if (!row) {
			c->st = SMDP_FAIL("8.2.5", "3.7", "no profile of this type left");
			return ESIM_OK;
		}
		p.id = pid;
	}
	err = smdp_db_transition(s, p.id, SMDP_BIT(SMDP_AVAILABLE),
				 eid ? SMDP_LINKED : SMDP_ALLOCATED, c->now, "DownloadOrder");
	if (err == ESIM_OK)
		err = create_order(c, s, p.id, eid);
	if (err != ESIM_OK)
		return err;
	/* the ICCID of the claimed profile */
	store_stmt *st;
	if ((err = store_prepare(s, "SELECT iccid FROM smdp_profiles WHERE id = ?1", &st)) !=
	    ESIM_OK)
		return err;
	store_bind_int64(st, 1, p.id);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row)
		json_object_set_new(c->resp_fields, "iccid", json_string(store_col_text(st, 0)));
	store_finalize(st);
	return err;
}

/* ---- ConfirmOrder (5.3.2) ---------------------------------------------------- */

static void make_matching_id(char out[24])
{
	static const char al[] = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
	uint8_t r[20];
	RAND_bytes(r, sizeof r);
	size_t k = 0;
	for (size_t i = 0; i < 20; i++) {
		if (i && i % 5 == 0)
			out[k++] = '-';
		out[k++] = al[r[i] % (sizeof al - 1)];
	}
	out[k] = '\0';
}

static bool mid_in_use(store *s, const char *mid, int64_t except_order, esim_err *err)
{
	store_stmt *st;
	*err =
	    store_prepare(s, "SELECT id FROM smdp_orders WHERE matching_id = ?1 AND open = 1", &st);
	if (*err != ESIM_OK)
		return false;
	store_bind_text(st, 1, mid);
	bool row;
	*err = store_step(st, &row);
	bool used = row && store_col_int64(st, 0) != except_order;
	store_finalize(st);
	return used;
}

static esim_err confirm_order(struct es2_ctx *c, store *s)
{
	const char *iccid = opt_str(c->req, "iccid");
	json_t *rf = json_object_get(c->req, "releaseFlag");
	if (!iccid || !json_is_boolean(rf)) {
		c->st = SMDP_FAIL("1.3.1", "2.2", "iccid and releaseFlag are mandatory");
		return ESIM_OK;
	}
	const char *eid = opt_str(c->req, "eid");
	const char *mid = opt_str(c->req, "matchingId");
	const char *cc = opt_str(c->req, "confirmationCode");
	const char *smds = opt_str(c->req, "smdsAddress");
	struct prof p;
	bool found;
	esim_err err = load_profile(s, iccid, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || p.op_id != c->op_id) {
		c->st = ICCID_UNKNOWN;
		return ESIM_OK;
	}
	if (!p.order_id || (p.state != SMDP_ALLOCATED && p.state != SMDP_LINKED)) {
		c->st = SMDP_FAIL("8.2.1", "3.5", "profile not in an orderable state");
		return ESIM_OK;
	}
	if (eid && !eid_ok(c, eid))
		return ESIM_OK;
	if (eid && p.has_order_eid && strcmp(eid, p.order_eid) != 0) {
		c->st = SMDP_FAIL("8.1.1", "3.10", "a different EID is linked");
		return ESIM_OK;
	}
	const char *final_eid = eid ? eid : (p.has_order_eid ? p.order_eid : NULL);
	if (!final_eid && (smds || (mid && !*mid))) {
		c->st = SMDP_FAIL("8.1.1", "2.2", "EID required for SM-DS or default SM-DP+ use");
		return ESIM_OK;
	}
	char gen[24];
	if (!mid) {
		make_matching_id(gen);
		mid = gen;
	}
	if (smds && !*mid) {
		c->st = SMDP_FAIL("8.2.6", "2.1", "an SM-DS event needs a non-empty matchingId");
		return ESIM_OK;
	}
	if (smds && !smdp_smds_known(c->d, smds)) {
		c->st = SMDP_FAIL("8.9", "5.1", "SM-DS address not known to this SM-DP+");
		return ESIM_OK;
	}
	if (*mid) {
		if (mid_in_use(s, mid, p.order_id, &err)) {
			c->st = SMDP_FAIL("8.2.6", "3.3", "matchingId already in use");
			return ESIM_OK;
		}
		if (err != ESIM_OK)
			return err;
	}
	uint8_t cch[32];
	unsigned int hl = 0;
	if (cc && EVP_Digest(cc, strlen(cc), cch, &hl, EVP_sha256(), NULL) != 1)
		return ESIM_E_CRYPTO_OPENSSL;
	if (smds && (err = keep_order(c, s, p.order_id)) != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s,
			    "UPDATE smdp_orders SET eid = ?1, matching_id = ?2, cc_hash = ?3,"
			    " smds_address = ?4, updated = ?5 WHERE id = ?6",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, final_eid);
	/* no matchingId (the default SM-DP+ case) is NULL, never '': the
	 * unique index on matching_id allows any number of NULLs */
	if (*mid)
		store_bind_text(st, 2, mid);
	else
		store_bind_null(st, 2);
	if (cc)
		store_bind_blob(st, 3, cch, sizeof cch);
	store_bind_text(st, 4, smds);
	store_bind_int64(st, 5, (int64_t)c->now);
	store_bind_int64(st, 6, p.order_id);
	err = store_run(st);
	store_finalize(st);
	esim_wipe(cch, sizeof cch);
	if (err != ESIM_OK)
		return err;
	bool release = json_is_true(rf);
	err = smdp_db_transition(s, p.id, SMDP_BIT(SMDP_ALLOCATED) | SMDP_BIT(SMDP_LINKED),
				 release ? SMDP_RELEASED : SMDP_CONFIRMED, c->now, "ConfirmOrder");
	if (err != ESIM_OK)
		return err;
	/* ES12 RegisterEvent (es12.c), step 1: queued held with the order;
	 * sent after this transaction commits (smdp_es2_auth), settled in a
	 * second one (confirm_settle_tx) */
	if (smds) {
		c->profile_id = p.id;
		c->prev_state = p.state;
		c->set_state = release ? SMDP_RELEASED : SMDP_CONFIRMED;
		err = smdp_es12_reserve(c->d, s, c->op_id, p.order_id, smds, final_eid, mid,
					&c->pend, &c->st);
		if (err != ESIM_OK || c->st.subject)
			return err;
	}
	if (final_eid)
		json_object_set_new(c->resp_fields, "eid", json_string(final_eid));
	json_object_set_new(c->resp_fields, "matchingId", json_string(mid));
	json_object_set_new(c->resp_fields, "smdpAddress", json_string(c->d->fqdn));
	return ESIM_OK;
}

/* ---- CancelOrder (5.3.3) ------------------------------------------------------- */

static esim_err close_order(store *s, int64_t order_id, time_t now)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(s, "UPDATE smdp_orders SET open = 0, updated = ?1 WHERE id = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)now);
	store_bind_int64(st, 2, order_id);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if ((err = store_prepare(s, "DELETE FROM smdp_sessions WHERE order_id = ?1", &st)) !=
	    ESIM_OK)
		return err;
	store_bind_int64(st, 1, order_id);
	err = store_run(st);
	store_finalize(st);
	return err;
}

static esim_err cancel_order(struct es2_ctx *c, store *s)
{
	const char *iccid = opt_str(c->req, "iccid");
	const char *fpsi = opt_str(c->req, "finalProfileStatusIndicator");
	if (!iccid || !fpsi) {
		c->st = SMDP_FAIL("1.3.1", "2.2",
				  "iccid and finalProfileStatusIndicator are mandatory");
		return ESIM_OK;
	}
	bool to_avail = strcmp(fpsi, "Available") == 0;
	if (!to_avail && strcmp(fpsi, "Unavailable") != 0) {
		c->st = SMDP_FAIL("1.3.1", "2.1", "finalProfileStatusIndicator invalid");
		return ESIM_OK;
	}
	const char *eid = opt_str(c->req, "eid");
	const char *mid = opt_str(c->req, "matchingId");
	struct prof p;
	bool found;
	esim_err err = load_profile(s, iccid, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || p.op_id != c->op_id) {
		c->st = ICCID_UNKNOWN;
		return ESIM_OK;
	}
	if (!p.order_id) {
		c->st = SMDP_FAIL("8.2.1", "3.5", "no open order for this ICCID");
		return ESIM_OK;
	}
	if (mid && (!p.has_mid || strcmp(mid, p.matching_id) != 0)) {
		c->st = SMDP_FAIL("8.2.6", "3.10", "matchingId does not match the order");
		return ESIM_OK;
	}
	/* an order linked to an EID is cancelled only by a caller naming that
	 * EID (SGP.22 5.3.3; CancelOrder table of digest 9.3: "EID missing or
	 * different", 8.1.1 / 3.10) */
	if (p.has_order_eid && !eid) {
		c->st = SMDP_FAIL("8.1.1", "3.10", "the order is linked to an EID: eid is missing");
		return ESIM_OK;
	}
	if (eid && (!p.has_order_eid || strcmp(eid, p.order_eid) != 0)) {
		c->st = SMDP_FAIL("8.1.1", "3.10", "EID does not match the order");
		return ESIM_OK;
	}
	if (p.state == SMDP_INSTALLED || (p.state == SMDP_DOWNLOADED && to_avail)) {
		c->st = SMDP_FAIL("8.2.1", "3.5", "profile already delivered");
		return ESIM_OK;
	}
	if ((err = smdp_es12_queue_delete(c->d, s, p.order_id)) != ESIM_OK ||
	    (err = close_order(s, p.order_id, c->now)) != ESIM_OK)
		return err;
	return smdp_db_transition(s, p.id, 0x1FFu & ~SMDP_BIT(SMDP_INSTALLED),
				  to_avail ? SMDP_AVAILABLE : SMDP_UNAVAILABLE, c->now,
				  "CancelOrder");
}

/* ---- ReleaseProfile (5.3.4) ---------------------------------------------------- */

static esim_err release_profile(struct es2_ctx *c, store *s)
{
	const char *iccid = opt_str(c->req, "iccid");
	if (!iccid) {
		c->st = SMDP_FAIL("1.3.1", "2.2", "iccid is mandatory");
		return ESIM_OK;
	}
	struct prof p;
	bool found;
	esim_err err = load_profile(s, iccid, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || p.op_id != c->op_id) {
		c->st = ICCID_UNKNOWN;
		return ESIM_OK;
	}
	if (p.state != SMDP_CONFIRMED) {
		c->st = SMDP_FAIL("8.2.1", "3.5", "profile not Confirmed");
		return ESIM_OK;
	}
	return smdp_db_transition(s, p.id, SMDP_BIT(SMDP_CONFIRMED), SMDP_RELEASED, c->now,
				  "ReleaseProfile");
}

/* ---- dispatch -------------------------------------------------------------------- */

static esim_err es2_tx(store *s, void *arg)
{
	struct es2_ctx *c = arg;
	c->st = SMDP_OK_STATUS;
	json_decref(c->resp_fields);
	c->resp_fields = json_object();
	free(c->replayed);
	c->replayed = NULL;
	pending_clear(c);
	if (!c->resp_fields)
		return ESIM_E_NOMEM;
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "SELECT response, body_sha256 FROM smdp_calls WHERE"
				     " operator_id = ?1 AND function = ?2 AND call_id = ?3",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, c->op_id);
	store_bind_text(st, 2, c->function);
	store_bind_text(st, 3, c->call_id);
	bool row, same = false;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		/* calls recorded before the hash was kept match any request */
		const char *h = store_col_text(st, 1);
		same = !h || strcmp(h, c->body_sha) == 0;
		if (same && !(c->replayed = strdup(store_col_text(st, 0))))
			err = ESIM_E_NOMEM;
	}
	store_finalize(st);
	if (err != ESIM_OK || (row && same))
		return err;
	if (row) {
		/* digest 9.2: a resend repeats the same input; another input
		 * under a used identifier is a conflicting call, not a resend */
		c->st = SMDP_FAIL("1.3.1", "3.3",
				  "functionCallIdentifier already used with a different request");
		return ESIM_E_SMDP_UNKNOWN;
	}

	if (strcmp(c->function, "downloadOrder") == 0)
		err = download_order(c, s);
	else if (strcmp(c->function, "confirmOrder") == 0)
		err = confirm_order(c, s);
	else if (strcmp(c->function, "cancelOrder") == 0)
		err = cancel_order(c, s);
	else
		err = release_profile(c, s);
	if (err != ESIM_OK)
		return err;
	if (c->st.subject)
		return ESIM_E_SMDP_UNKNOWN; /* roll back whatever was done; answered below */
	/* remember the answer for a resend */
	json_t *o = smdp_json_header(&c->st);
	json_object_update(o, c->resp_fields);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return ESIM_E_NOMEM;
	err = store_prepare(s,
			    "INSERT INTO smdp_calls (operator_id, call_id, function, response,"
			    " body_sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
			    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, c->op_id);
		store_bind_text(st, 2, c->call_id);
		store_bind_text(st, 3, c->function);
		store_bind_text(st, 4, text);
		store_bind_text(st, 5, c->body_sha);
		err = store_run(st);
		store_finalize(st);
	}
	free(text);
	return err;
}

/* Step 3 of ConfirmOrder's RegisterEvent (es12.c), a short transaction of
 * its own (store_tx_fn: database effects only). The SM-DS refused: the
 * order goes back to its previous state and fields and the call is
 * forgotten, as if the ConfirmOrder had never run; unless the order was
 * ended meanwhile (nothing left to put back) or a download has already
 * taken it (it stays confirmed, and the answer says so). */
static esim_err confirm_settle_tx(store *s, void *arg)
{
	struct es2_ctx *c = arg;
	c->st = SMDP_OK_STATUS;
	bool gone = false;
	esim_err err = smdp_es12_settle(c->d, s, &c->pend, c->outcome, &gone);
	if (err != ESIM_OK || c->outcome == SMDP_ES12_REGISTERED ||
	    c->outcome == SMDP_ES12_UNREACHABLE)
		return err;
	struct smdp_status refused =
	    c->outcome == SMDP_ES12_REFUSED
		? SMDP_FAIL("8.9", "4.2", "the SM-DS refused the event registration")
		: SMDP_FAIL("8.9", "5.1", "SM-DS not accessible");
	if (!gone) {
		err = smdp_db_transition(s, c->profile_id, SMDP_BIT(c->set_state), c->prev_state,
					 c->now, "ConfirmOrder undone: SM-DS event not registered");
		if (err == ESIM_E_SMDP_TRANSITION) {
			smdp_logf(c->d, "es12_register",
				  "event=%s refused but the order is already downloading: it"
				  " stays confirmed",
				  c->pend.event_id);
			return ESIM_OK;
		}
		if (err != ESIM_OK)
			return err;
		store_stmt *st;
		err =
		    store_prepare(s,
				  "UPDATE smdp_orders SET eid = ?1, matching_id = ?2, cc_hash = ?3,"
				  " smds_address = ?4, updated = ?5 WHERE id = ?6",
				  &st);
		if (err != ESIM_OK)
			return err;
		store_bind_text(st, 1, c->prev_eid);
		store_bind_text(st, 2, c->prev_mid);
		if (c->prev_has_cc)
			store_bind_blob(st, 3, c->prev_cc, sizeof c->prev_cc);
		else
			store_bind_null(st, 3);
		store_bind_text(st, 4, c->prev_smds);
		store_bind_int64(st, 5, (int64_t)c->now);
		store_bind_int64(st, 6, c->pend.order_id);
		err = store_run(st);
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
	}
	/* a refused call is not remembered (a resend runs it again), as
	 * when it was refused inside its own transaction */
	store_stmt *st;
	err = store_prepare(s,
			    "DELETE FROM smdp_calls WHERE operator_id = ?1 AND function = ?2 AND"
			    " call_id = ?3",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, c->op_id);
	store_bind_text(st, 2, c->function);
	store_bind_text(st, 3, c->call_id);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		c->st = refused;
	return err;
}

/* SHA-256 (hex) of the request without its header, in a canonical form
 * (compact, keys sorted), so that a resend matches whatever its layout. */
static esim_err request_sha(const json_t *req, char out[65])
{
	json_t *copy = json_copy((json_t *)req);
	if (!copy)
		return ESIM_E_NOMEM;
	json_object_del(copy, "header");
	char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	if (!text)
		return ESIM_E_NOMEM;
	uint8_t sha[32];
	unsigned hl = 0;
	int ok = EVP_Digest(text, strlen(text), sha, &hl, EVP_sha256(), NULL);
	free(text);
	if (ok != 1)
		return ESIM_E_CRYPTO_OPENSSL;
	smdp_sha_hex(sha, out);
	return ESIM_OK;
}

static esim_err find_operator(store *s, const uint8_t *sha, int64_t *id, char *name, size_t n,
			      char token_hex[65], bool *found)
{
	char hex[65];
	smdp_sha_hex(sha, hex);
	store_stmt *st;
	esim_err err = store_prepare(
	    s, "SELECT id, name, token_sha256 FROM smdp_operators WHERE cert_sha256 = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, hex);
	bool row;
	err = store_step(st, &row);
	*found = err == ESIM_OK && row;
	token_hex[0] = '\0';
	if (*found) {
		*id = store_col_int64(st, 0);
		snprintf(name, n, "%s", store_col_text(st, 1));
		const char *t = store_col_text(st, 2);
		if (t)
			snprintf(token_hex, 65, "%s", t);
	}
	store_finalize(st);
	return err;
}

/* An "Authorization: Bearer <token>" value matches the operator's token
 * (kept as its SHA-256 only). */
static bool bearer_ok(const char *authorization, const char *token_hex)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	uint8_t sha[32];
	unsigned hl = 0;
	char hex[65];
	if (EVP_Digest(tok, strlen(tok), sha, &hl, EVP_sha256(), NULL) != 1)
		return false;
	smdp_sha_hex(sha, hex);
	return esim_ct_equal(hex, token_hex, 64);
}

esim_err smdp_es2(smdp *d, const char *function, const uint8_t *client_sha256, const uint8_t *body,
		  size_t len, int *status, char **out)
{
	return smdp_es2_auth(d, function, client_sha256, NULL, body, len, status, out);
}

esim_err smdp_es2_auth(smdp *d, const char *function, const uint8_t *client_sha256,
		       const char *authorization, const uint8_t *body, size_t len, int *status,
		       char **out)
{
	if (!d || !function || !status || !out)
		return ESIM_E_ARG;
	*out = NULL;
	atomic_fetch_add(&d->req_es2, 1);
	if (strcmp(function, "downloadOrder") != 0 && strcmp(function, "confirmOrder") != 0 &&
	    strcmp(function, "cancelOrder") != 0 && strcmp(function, "releaseProfile") != 0) {
		*status = 404;
		return ESIM_OK;
	}
	*status = 200;
	struct smdp_status st = SMDP_OK_STATUS;
	json_t *req = NULL;
	store *s = NULL;
	esim_err err = ESIM_OK;
	struct es2_ctx c = {.d = d, .function = function, .now = smdp_now(d)};
	char op_name[128] = "";
	if (net_json_parse(body, len, ES2_MAX_BODY, ES2_MAX_DEPTH, &req, NULL) != ESIM_OK ||
	    !json_is_object(req)) {
		st = SMDP_FAIL("1.3.1", "2.1", "body is not a JSON object");
		goto answer;
	}
	json_t *hdr = json_object_get(req, "header");
	const char *fri = opt_str(hdr, "functionRequesterIdentifier");
	c.call_id = opt_str(hdr, "functionCallIdentifier");
	if (!fri || !c.call_id) {
		st = SMDP_FAIL("1.3.1", "2.2",
			       "header with functionRequesterIdentifier and "
			       "functionCallIdentifier required");
		goto answer;
	}
	if ((err = smdp_store_get(d, &s)) != ESIM_OK)
		goto done;
	bool found = false;
	char token_hex[65] = "";
	if (client_sha256 && (err = find_operator(s, client_sha256, &c.op_id, op_name,
						  sizeof op_name, token_hex, &found)) != ESIM_OK)
		goto done;
	if (!found || strcmp(fri, op_name) != 0) {
		/* (impl) function requester: not allowed */
		st = SMDP_FAIL("1.1.1", "1.2", "caller not authorised as this requester");
		goto answer;
	}
	if (token_hex[0] && !bearer_ok(authorization, token_hex)) {
		/* (impl) a configured bearer token is a second credential */
		st = SMDP_FAIL("1.1.1", "1.2", "bearer token missing or wrong");
		goto answer;
	}
	c.req = req;
	c.op_name = op_name;
	if ((err = request_sha(req, c.body_sha)) != ESIM_OK)
		goto done;
	err = store_transaction(s, es2_tx, &c, 0);
	if (err == ESIM_E_SMDP_UNKNOWN && c.st.subject)
		err = ESIM_OK;
	if (err != ESIM_OK)
		goto done;
	if (c.replayed) {
		*out = c.replayed;
		c.replayed = NULL;
		goto done;
	}
	if (c.pend.row_id && !c.st.subject) {
		/* ConfirmOrder's RegisterEvent, steps 2 and 3 (es12.c): the
		 * network call outside any transaction */
		c.outcome = smdp_es12_send(d, &c.pend);
		if ((err = store_transaction(s, confirm_settle_tx, &c, 0)) != ESIM_OK)
			goto done;
	}
	st = c.st;
answer:;
	json_t *o = smdp_json_header(&st);
	if (!st.subject && c.resp_fields)
		json_object_update(o, c.resp_fields);
	if (st.subject)
		atomic_fetch_add(&d->fail_es2, 1);
	smdp_logf(d, "es2", "function=%s operator=%s status=%s%s%s", function,
		  op_name[0] ? op_name : "-", st.subject ? "Failed" : "Executed-Success",
		  st.subject ? " subject=" : "", st.subject ? st.subject : "");
	err = smdp_json_finish(d, o, &st, out);
done:
	json_decref(c.resp_fields);
	free(c.replayed);
	pending_clear(&c);
	json_decref(req);
	smdp_store_put(d, s);
	return err;
}

/* ---- HandleDownloadProgressInfo outbox (5.3.5) ----------------------------------- */

/* With a ProfileInstallationResult (point 4): CERT.EUICC of the session
 * that the PIR ends, and its EUM, so that the operator can verify the
 * eUICC's signature itself before it activates a line. The PIR carries no
 * certificate (digest 8.2). The EUM is the one whose SKI is CERT.EUICC's
 * AKI: from the verified-EUM cache, or else from smdp_eum_certs (es9.c
 * writes each verified EUM there once), so that neither a restart between
 * authenticateClient and the PIR nor a full cache loses it. Only when both
 * miss (a database written before schema 6) does the operator get the
 * report without it, and then only records it. */
static esim_err add_euicc_chain(smdp *d, store *s, const uint8_t *der, size_t der_len, json_t *o)
{
	crypto_cert *euicc = NULL;
	if (!der || crypto_cert_load(der, der_len, &euicc) != ESIM_OK)
		return ESIM_OK;
	net_json_set_base64(o, "euiccCertificate", der, der_len);
	uint8_t aki[CRYPTO_KEY_ID_MAX], ski[CRYPTO_KEY_ID_MAX];
	size_t al = 0, sl = 0, len = 0;
	esim_err err = crypto_cert_aki(euicc, aki, &al);
	crypto_cert_free(euicc);
	if (err != ESIM_OK)
		return ESIM_OK;
	pthread_mutex_lock(&d->eum_lock);
	size_t n = d->n_eum;
	pthread_mutex_unlock(&d->eum_lock);
	for (size_t i = 0; i < n; i++) /* counted entries are immutable */
		if (crypto_cert_ski(d->eum[i].cert, ski, &sl) == ESIM_OK && sl == al &&
		    memcmp(ski, aki, al) == 0) {
			const uint8_t *e = crypto_cert_der(d->eum[i].cert, &len);
			net_json_set_base64(o, "eumCertificate", e, len);
			return ESIM_OK;
		}
	store_stmt *st;
	if ((err = store_prepare(s, "SELECT der FROM smdp_eum_certs WHERE ski = ?1", &st)) !=
	    ESIM_OK)
		return err;
	store_bind_blob(st, 1, aki, al);
	bool row = false;
	err = store_step(st, &row);
	const uint8_t *e = row ? store_col_blob(st, 0, &len) : NULL;
	if (err == ESIM_OK && e)
		net_json_set_base64(o, "eumCertificate", e, len);
	store_finalize(st);
	return err;
}

static esim_err outbox_queue(smdp *d, store *s, const char *rid, int64_t order_id, int point,
			     const struct smdp_status *st, const uint8_t *result, size_t result_len,
			     const uint8_t *euicc_cert, size_t euicc_cert_len);

esim_err smdp_outbox_queue(smdp *d, store *s, int64_t order_id, int point,
			   const struct smdp_status *st, const uint8_t *result, size_t result_len)
{
	return outbox_queue(d, s, NULL, order_id, point, st, result, result_len, NULL, 0);
}

esim_err smdp_outbox_queue_rid(smdp *d, store *s, const char *request_id, int64_t order_id,
			       int point, const struct smdp_status *st, const uint8_t *result,
			       size_t result_len)
{
	return outbox_queue(d, s, request_id, order_id, point, st, result, result_len, NULL, 0);
}

esim_err smdp_outbox_queue_pir(smdp *d, store *s, int64_t order_id, const struct smdp_status *st,
			       const uint8_t *pir, size_t pir_len, const uint8_t *euicc_cert,
			       size_t euicc_cert_len)
{
	return smdp_outbox_queue_pir_rid(d, s, NULL, order_id, st, pir, pir_len, euicc_cert,
					 euicc_cert_len);
}

esim_err smdp_outbox_queue_pir_rid(smdp *d, store *s, const char *request_id, int64_t order_id,
				   const struct smdp_status *st, const uint8_t *pir, size_t pir_len,
				   const uint8_t *euicc_cert, size_t euicc_cert_len)
{
	return smdp_outbox_queue_pir_known(d, s, request_id, order_id, st, pir, pir_len, euicc_cert,
					   euicc_cert_len, true, true);
}

esim_err smdp_outbox_queue_pir_known(smdp *d, store *s, const char *request_id, int64_t order_id,
				     const struct smdp_status *st, const uint8_t *pir,
				     size_t pir_len, const uint8_t *euicc_cert,
				     size_t euicc_cert_len, bool smds, bool callback)
{
	/* the download is over: its SM-DS event goes (es12.c) */
	esim_err err = smds ? smdp_es12_queue_delete(d, s, order_id) : ESIM_OK;
	if (err != ESIM_OK || !callback)
		return err;
	return outbox_queue(d, s, request_id, order_id, 4, st, pir, pir_len, euicc_cert,
			    euicc_cert_len);
}

/* rid: the X-Request-Id of the ES9+ request that caused the callback
 * (checked by http.c; NULL: none), kept with the row so that the callback
 * carries it to the operator and both logs show it. */
static esim_err outbox_queue(smdp *d, store *s, const char *rid, int64_t order_id, int point,
			     const struct smdp_status *st, const uint8_t *result, size_t result_len,
			     const uint8_t *euicc_cert, size_t euicc_cert_len)
{
	store_stmt *q;
	esim_err err = store_prepare(
	    s,
	    "SELECT op.id, op.name, op.callback_url, o.eid, p.iccid, t.name FROM smdp_orders o"
	    " JOIN smdp_operators op ON op.id = o.operator_id"
	    " JOIN smdp_profiles p ON p.id = o.profile_id"
	    " JOIN smdp_profile_types t ON t.id = p.type_id WHERE o.id = ?1",
	    &q);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(q, 1, order_id);
	bool row;
	err = store_step(q, &row);
	if (err != ESIM_OK || !row || store_col_is_null(q, 2)) {
		store_finalize(q);
		return err;
	}
	int64_t op_id = store_col_int64(q, 0);
	time_t now = smdp_now(d);
	char ts[32], callid[48];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	uint8_t r[8];
	RAND_bytes(r, sizeof r);
	snprintf(callid, sizeof callid, "hdpi-%lld-%02x%02x%02x%02x%02x%02x%02x%02x",
		 (long long)order_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	json_t *o = json_object();
	json_t *h = json_object();
	json_object_set_new(h, "functionRequesterIdentifier", json_string(d->fqdn));
	json_object_set_new(h, "functionCallIdentifier", json_string(callid));
	json_object_set_new(o, "header", h);
	if (!store_col_is_null(q, 3))
		json_object_set_new(o, "eid", json_string(store_col_text(q, 3)));
	json_object_set_new(o, "iccid", json_string(store_col_text(q, 4)));
	json_object_set_new(o, "profileType", json_string(store_col_text(q, 5)));
	json_object_set_new(o, "timestamp", json_string(ts));
	json_object_set_new(o, "notificationPointId", json_integer(point));
	json_t *hdr = smdp_json_header(st);
	json_t *fes = json_object_get(json_object_get(hdr, "header"), "functionExecutionStatus");
	json_object_set(o, "notificationPointStatus", fes);
	json_decref(hdr);
	if (result && result_len)
		net_json_set_base64(o, "resultData", result, result_len);
	if (point == 4 && result && result_len &&
	    (err = add_euicc_chain(d, s, euicc_cert, euicc_cert_len, o)) != ESIM_OK) {
		json_decref(o);
		store_finalize(q);
		return err;
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	char *url = strdup(store_col_text(q, 2));
	store_finalize(q);
	if (!text || !url) {
		free(text);
		free(url);
		return ESIM_E_NOMEM;
	}
	store_make_durable(s); /* owed to the operator: never lost once queued */
	err = store_prepare(s,
			    "INSERT INTO smdp_outbox (operator_id, url, body, attempts, next_try,"
			    " done, created, request_id) VALUES (?1, ?2, ?3, 0, ?4, 0, ?4, ?5)",
			    &q);
	if (err == ESIM_OK) {
		store_bind_int64(q, 1, op_id);
		store_bind_text(q, 2, url);
		store_bind_text(q, 3, text);
		store_bind_int64(q, 4, (int64_t)now);
		if (esim_request_id_valid(rid))
			store_bind_text(q, 5, rid);
		else
			store_bind_null(q, 5);
		err = store_run(q);
		store_finalize(q);
	}
	free(text);
	free(url);
	return err;
}

esim_err smdp_outbox_pending(smdp *d, size_t *out)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err =
	    store_prepare(s, "SELECT COUNT(*) FROM smdp_outbox WHERE done = 0 AND failed = 0", &st);
	if (err == ESIM_OK) {
		bool row;
		err = store_step(st, &row);
		*out = (size_t)store_col_int64(st, 0);
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

/*
 * Delivery, by any number of SM-DP+ instances on one database, each
 * callback exactly once in normal running:
 *
 *  1. claim: one statement leases a batch of due rows to this pass
 *     (lease_owner: a random token, lease_until: now + lease). On
 *     PostgreSQL FOR UPDATE SKIP LOCKED lets instances claim different rows
 *     at the same time; on SQLite the write lock serialises the claimers.
 *     A row leased by a live pass is not due for anyone else.
 *  2. post: several connections at once (concurrency, one net_client and
 *     one thread each), each taking the next row of the batch. A row is
 *     only posted while its lease has at least one request timeout left,
 *     so that a slow operator never lets a lease run out under a request
 *     in flight (the request timeout is kept below half the lease).
 *  3. mark: one transaction per batch writes every row's verdict (by
 *     outbox_verdict) and drops the lease, only where the lease is still
 *     this pass's; rows not posted are handed back at once.
 *
 * An instance that dies between 1 and 3 leaves its rows leased; when the
 * lease runs out another instance claims and posts them again. Those are
 * the only duplicates, and they carry the same functionCallIdentifier:
 * it is made once, when the row is queued, and stored in the body that is
 * posted as is, so that the operator can drop a call it already has.
 */
enum outbox_verdict { OUTBOX_DELIVERED, OUTBOX_RETRY, OUTBOX_REFUSED };

/*
 * What an answer means for a callback. 2xx: delivered. No answer, 5xx,
 * 408 and 429: the operator may take it later, so it is tried again with
 * back-off (2^attempts s, at most 4096 s). Any other 4xx: the operator
 * refuses this call for good (its listener answers 403 / 404 / 409 / 422
 * for a call it will never accept), so the row is marked failed with the
 * status and never sent again. Others (1xx, 3xx: no redirect is
 * followed) are not a refusal either: retried.
 */
static enum outbox_verdict outbox_verdict(long http)
{
	if (http >= 200 && http < 300)
		return OUTBOX_DELIVERED;
	if (http >= 400 && http < 500 && http != 408 && http != 429)
		return OUTBOX_REFUSED;
	return OUTBOX_RETRY;
}

struct smdp_outbox_sender {
	struct net_client_config cc; /* strings borrowed from the caller's config */
	unsigned concurrency, batch, lease_s;
	bool es12; /* the SM-DS rows (kind 1), not the callbacks (kind 0) */
	net_client *clients[SMDP_OUTBOX_CONCURRENCY_MAX];
};

esim_err smdp_outbox_sender_new(const struct smdp_outbox_config *cfg, smdp_outbox_sender **out)
{
	*out = NULL;
	if (!cfg || !cfg->client || cfg->concurrency > SMDP_OUTBOX_CONCURRENCY_MAX ||
	    cfg->batch > SMDP_OUTBOX_BATCH_MAX || cfg->lease_s > 86400 ||
	    (cfg->lease_s != 0 && cfg->lease_s < 2))
		return ESIM_E_ARG;
	smdp_outbox_sender *s = calloc(1, sizeof *s);
	if (!s)
		return ESIM_E_NOMEM;
	s->cc = *cfg->client;
	s->concurrency = cfg->concurrency ? cfg->concurrency : 8;
	s->batch = cfg->batch ? cfg->batch : 8 * s->concurrency;
	if (s->batch > SMDP_OUTBOX_BATCH_MAX)
		s->batch = SMDP_OUTBOX_BATCH_MAX;
	s->lease_s = cfg->lease_s ? cfg->lease_s : 30;
	s->es12 = cfg->es12;
	/* a request must end well inside the lease that covers it */
	unsigned cap_ms = (s->lease_s - 1) * 1000 / 2; /* lease_until is in whole seconds */
	if (s->cc.timeout_ms == 0 || s->cc.timeout_ms > cap_ms)
		s->cc.timeout_ms = cap_ms < 10000 ? cap_ms : 10000;
	if (s->cc.connect_timeout_ms == 0 || s->cc.connect_timeout_ms > s->cc.timeout_ms)
		s->cc.connect_timeout_ms = s->cc.timeout_ms;
	for (unsigned i = 0; i < s->concurrency; i++) {
		esim_err err = net_client_new(&s->cc, &s->clients[i]);
		if (err != ESIM_OK) {
			smdp_outbox_sender_free(s);
			return err;
		}
	}
	*out = s;
	return ESIM_OK;
}

void smdp_outbox_sender_free(smdp_outbox_sender *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < SMDP_OUTBOX_CONCURRENCY_MAX; i++)
		net_client_free(s->clients[i]);
	free(s);
}

struct due {
	int64_t id, attempts;
	char *url, *body;
	long http;			   /* 0: no answer (network, TLS, timeout) */
	bool posted;			   /* false: not tried in this pass, handed back */
	char rid[ESIM_REQUEST_ID_MAX + 1]; /* X-Request-Id to send; "" none */
	int64_t order_id;		   /* kind 1: the order of the event; 0 unknown */
	enum smdp_es12_verdict es12;	   /* kind 1: judged by the answer's header */
	char why[40];			   /* kind 1: subject/reason of a Failed answer */
};

/* A row's verdict: the HTTP status, and for an SM-DS row (kind 1) its
 * answer's functionExecutionStatus too (es12.c smdp_es12_answer): a 200
 * with a Failed header is not a delivery. */
static enum outbox_verdict due_verdict(const struct due *it)
{
	if (it->es12 == SMDP_ES12_RETRY)
		return OUTBOX_RETRY;
	if (it->es12 == SMDP_ES12_REFUSED_FOR_GOOD)
		return OUTBOX_REFUSED;
	return outbox_verdict(it->http);
}

static bool is_register(const struct due *it)
{
	size_t n = strlen(it->url), k = strlen("/registerEvent");
	return n > k && strcmp(it->url + n - k, "/registerEvent") == 0;
}

/* One pass's batch, shared by its posting threads. */
struct outbox_batch {
	smdp_outbox_sender *snd;
	struct due *items;
	size_t n;
	atomic_size_t next;
	struct timespec claimed; /* CLOCK_MONOTONIC, when the lease began */
	char owner[17];
	int64_t now;
};

struct outbox_worker {
	struct outbox_batch *b;
	net_client *cl;
};

static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void *outbox_post_thread(void *arg)
{
	struct outbox_worker *w = arg;
	struct outbox_batch *b = w->b;
	/* the lease time left must cover a whole request (lease_until is in
	 * whole seconds: it may end up to one second early) */
	double last_start = (double)b->snd->lease_s - 1.0 - (double)b->snd->cc.timeout_ms / 1000.0;
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->n)
			break;
		struct due *it = &b->items[i];
		if (since(&b->claimed) > last_start)
			continue; /* handed back unposted */
		it->posted = true;
		struct net_client_response r;
		/* the request that caused the callback, for the operator's log */
		(void)net_client_set_request_id(w->cl, it->rid[0] ? it->rid : NULL);
		esim_err e = net_client_post_json(w->cl, it->url, it->body, strlen(it->body), &r);
		if (e == ESIM_OK || e == ESIM_E_NET_HTTP_STATUS)
			it->http = r.status;
		if (e == ESIM_OK && b->snd->es12)
			it->es12 = smdp_es12_answer(it->url, it->http, r.body.data, r.body.len,
						    it->why, sizeof it->why);
		net_client_response_clear(&r);
	}
	return NULL;
}

/* Lease up to batch due rows to owner; they are appended to b->items. */
static esim_err outbox_claim(store *s, struct outbox_batch *b, unsigned lease_s)
{
	store_stmt *st;
	/* An SM-DS row (kind 1) waits while an earlier one of its order is
	 * neither done nor failed: a DeleteEvent never overtakes the
	 * RegisterEvent that another instance (or a lease that ran out) is
	 * still sending, which would leave the event registered for good. */
	esim_err err = store_prepare(
	    s,
	    "UPDATE smdp_outbox SET lease_owner = ?1, lease_until = ?2"
	    " WHERE done = 0 AND id IN (SELECT o.id FROM smdp_outbox o"
	    " WHERE o.done = 0 AND o.failed = 0 AND o.next_try <= ?3"
	    " AND (o.lease_until IS NULL OR o.lease_until < ?3) AND o.kind = ?5"
	    " AND (o.kind = 0 OR o.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM smdp_outbox p"
	    " WHERE p.kind = 1 AND p.order_id = o.order_id AND p.id < o.id AND p.done = 0"
	    " AND p.failed = 0))"
	    " ORDER BY o.id LIMIT ?4 {{SKIP_LOCKED}})"
	    " RETURNING id, attempts, url, body, request_id, order_id",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, b->owner);
	store_bind_int64(st, 2, b->now + (int64_t)lease_s);
	store_bind_int64(st, 3, b->now);
	store_bind_int64(st, 4, (int64_t)b->snd->batch);
	store_bind_int64(st, 5, b->snd->es12 ? 1 : 0);
	bool row;
	while ((err = store_step(st, &row)) == ESIM_OK && row) {
		if (b->n == b->snd->batch)
			continue; /* cannot happen (LIMIT): read to the end */
		struct due *it = &b->items[b->n++];
		it->id = store_col_int64(st, 0);
		it->attempts = store_col_int64(st, 1);
		it->url = strdup(store_col_text(st, 2));
		it->body = strdup(store_col_text(st, 3));
		if (!store_col_is_null(st, 4) && esim_request_id_valid(store_col_text(st, 4)))
			snprintf(it->rid, sizeof it->rid, "%s", store_col_text(st, 4));
		it->order_id = store_col_is_null(st, 5) ? 0 : store_col_int64(st, 5);
		if (!it->url || !it->body)
			err = ESIM_E_NOMEM;
	}
	store_finalize(st);
	return err;
}

/* A RegisterEvent the SM-DS refused for good from the outbox: the order
 * stays confirmed (the operator confirmed it and the device may still get
 * it by its activation code), but no event leads a device to it; the
 * profile's history says so (esim-smdp history ICCID), beside the log line
 * and the smdp_es12_refused_total metric. */
static esim_err es12_refused_history(store *s, const struct due *it, int64_t now)
{
	store_stmt *q;
	esim_err err = store_prepare(s, "SELECT profile_id FROM smdp_orders WHERE id = ?1", &q);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(q, 1, it->order_id);
	bool row = false;
	err = store_step(q, &row);
	int64_t pid = row ? store_col_int64(q, 0) : 0;
	store_finalize(q);
	if (err != ESIM_OK || !row)
		return err;
	char detail[600];
	snprintf(detail, sizeof detail,
		 "RegisterEvent refused by the SM-DS (%s): %.400s; no event announces this order",
		 it->why[0] ? it->why : "HTTP error", it->url);
	return smdp_db_history(s, pid, (time_t)now, "smds", detail);
}

/* The verdicts of one batch, in one transaction (store_tx_fn: only
 * database effects, safe to run again). */
static esim_err outbox_mark_tx(store *s, void *arg)
{
	struct outbox_batch *b = arg;
	store_stmt *done, *back;
	esim_err err =
	    store_prepare(s,
			  "UPDATE smdp_outbox SET done = ?1, failed = ?2, last_status = ?3,"
			  " attempts = attempts + 1, next_try = ?4, lease_owner = NULL,"
			  " lease_until = NULL WHERE id = ?5 AND lease_owner = ?6",
			  &done);
	if (err != ESIM_OK)
		return err;
	err = store_prepare(s,
			    "UPDATE smdp_outbox SET lease_owner = NULL, lease_until = NULL"
			    " WHERE id = ?1 AND lease_owner = ?2",
			    &back);
	if (err != ESIM_OK) {
		store_finalize(done);
		return err;
	}
	for (size_t i = 0; err == ESIM_OK && i < b->n; i++) {
		const struct due *it = &b->items[i];
		if (!it->posted) {
			store_reset(back);
			store_bind_int64(back, 1, it->id);
			store_bind_text(back, 2, b->owner);
			err = store_run(back);
			continue;
		}
		enum outbox_verdict v = due_verdict(it);
		int64_t backoff = 1LL << (it->attempts < 12 ? it->attempts : 12);
		store_reset(done);
		store_bind_int64(done, 1, v == OUTBOX_DELIVERED);
		store_bind_int64(done, 2, v == OUTBOX_REFUSED);
		if (it->http)
			store_bind_int64(done, 3, it->http);
		store_bind_int64(done, 4, b->now + backoff);
		store_bind_int64(done, 5, it->id);
		store_bind_text(done, 6, b->owner);
		err = store_run(done);
		if (err == ESIM_OK && store_changes(s) == 1 && v == OUTBOX_REFUSED &&
		    b->snd->es12 && it->order_id && is_register(it))
			err = es12_refused_history(s, it, b->now);
	}
	store_finalize(done);
	store_finalize(back);
	return err;
}

esim_err smdp_outbox_deliver(smdp *d, smdp_outbox_sender *snd, size_t *claimed, size_t *delivered)
{
	if (claimed)
		*claimed = 0;
	if (delivered)
		*delivered = 0;
	if (!d || !snd)
		return ESIM_E_ARG;
	struct outbox_batch b = {.snd = snd, .now = (int64_t)smdp_now(d)};
	b.items = calloc(snd->batch, sizeof *b.items);
	if (!b.items)
		return ESIM_E_NOMEM;
	uint8_t r[8];
	RAND_bytes(r, sizeof r);
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(b.owner + 2 * i, 3, "%02x", r[i]);
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK) {
		free(b.items);
		return err;
	}
	clock_gettime(CLOCK_MONOTONIC, &b.claimed);
	err = outbox_claim(s, &b, snd->lease_s);
	/* post: one thread per connection, or this one alone */
	unsigned nt = b.n < snd->concurrency ? (unsigned)b.n : snd->concurrency;
	struct outbox_worker w[SMDP_OUTBOX_CONCURRENCY_MAX];
	pthread_t th[SMDP_OUTBOX_CONCURRENCY_MAX];
	bool started[SMDP_OUTBOX_CONCURRENCY_MAX] = {false};
	if (err == ESIM_OK && nt > 0) {
		for (unsigned i = 0; i < nt; i++) {
			w[i] = (struct outbox_worker){.b = &b, .cl = snd->clients[i]};
			if (i > 0)
				started[i] =
				    pthread_create(&th[i], NULL, outbox_post_thread, &w[i]) == 0;
		}
		outbox_post_thread(&w[0]);
		for (unsigned i = 1; i < nt; i++)
			if (started[i])
				pthread_join(th[i], NULL);
	}
	/* mark (also after a failed claim: what was read is handed back) */
	if (b.n > 0) {
		esim_err e = store_transaction(s, outbox_mark_tx, &b, 0);
		if (err == ESIM_OK)
			err = e;
	}
	size_t ok = 0;
	for (size_t i = 0; i < b.n; i++) {
		struct due *it = &b.items[i];
		if (it->posted && err == ESIM_OK) {
			enum outbox_verdict v = due_verdict(it);
			if (v == OUTBOX_DELIVERED) {
				atomic_fetch_add(&d->outbox_delivered, 1);
				ok++;
			} else if (v == OUTBOX_REFUSED) {
				atomic_fetch_add(&d->outbox_refused, 1);
				if (snd->es12 && is_register(it)) {
					atomic_fetch_add(&d->es12_refused, 1);
					smdp_logf(d, "es12_refused",
						  "id=%lld url=%s status=%ld why=%s order=%lld",
						  (long long)it->id, it->url, it->http,
						  it->why[0] ? it->why : "http",
						  (long long)it->order_id);
				}
			} else {
				atomic_fetch_add(&d->outbox_retried, 1);
			}
			smdp_logf_rid(d, it->rid[0] ? it->rid : NULL, "outbox",
				      "id=%lld status=%ld result=%s%s", (long long)it->id, it->http,
				      v == OUTBOX_DELIVERED ? "delivered"
				      : v == OUTBOX_REFUSED ? "failed"
							    : "retry",
				      v == OUTBOX_REFUSED ? " reason=refused-for-good" : "");
		}
		free(it->url);
		free(it->body);
	}
	if (claimed)
		*claimed = b.n;
	if (delivered)
		*delivered = ok;
	free(b.items);
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_outbox_run(smdp *d, const struct net_client_config *client_cfg, size_t *delivered)
{
	if (delivered)
		*delivered = 0;
	struct smdp_outbox_config oc = {.client = client_cfg};
	smdp_outbox_sender *snd;
	esim_err err = smdp_outbox_sender_new(&oc, &snd);
	if (err != ESIM_OK)
		return err;
	err = smdp_outbox_deliver(d, snd, NULL, delivered);
	smdp_outbox_sender_free(snd);
	return err;
}
