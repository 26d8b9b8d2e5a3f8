/*
 * ES9+ (LPA -> SM-DP+), JSON binding (SGP.22 5.6, 6.5; digest 5.1 to 5.4):
 * the dispatcher smdp_es9 and the small helpers its handlers share. The
 * handlers, by function:
 *   es9_session.c  sessions in the store: load, insert, end, purge, the cap
 *                  on sessions not yet authenticated;
 *   es9_auth.c     initiateAuthentication and authenticateClient (SGP.22
 *                  3.1.2, 5.6.1, 5.6.3; digest 6.2, 6.3);
 *   es9_bpp.c      getBoundProfilePackage (SGP.22 3.1.3, 5.6.2; digest 6.5);
 *   es9_notify.c   handleNotification and cancelSession (SGP.22 5.6.4,
 *                  5.6.5; digest 8.4, 6.7).
 *
 * Sessions live in the store (digest 15.4) keyed by the transactionId in
 * upper-case hex: a session is created by initiateAuthentication, moves to
 * "authenticated" exactly once (so each serverChallenge is used once), to
 * "downloaded" when a bound profile package went out, and is deleted by
 * the PIR, cancelSession, a failure, or when it has been idle longer than
 * the configured lifetime: found so when loaded, or swept in bounded
 * batches by smdp_purge_sessions (the server calls it on a timer), so
 * that sessions nobody comes back to do not pile up. initiateAuthentication
 * needs no credential, so the sessions not yet authenticated are capped:
 * beyond the cap the call gets HTTP 503 (retry later) and no row. Crypto
 * runs outside database transactions; every order and profile change runs
 * inside one.
 *
 * Every failure answers HTTP 200 with a Failed header and the subject and
 * reason codes of digest 5.4; handleNotification always answers 204.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es9_int.h"

esim_err smdp_es9_answer(struct es9 *x, const struct rsp_es9_response *r)
{
	free(x->answer);
	x->answer = NULL;
	return rsp_es9_response_to_json(r, &x->answer, NULL);
}

bool smdp_es9_decode(struct es9 *x, enum rsp_es9_fn fn, struct rsp_es9_request *rq)
{
	const char *field = NULL;
	esim_err err = rsp_es9_request_from_jdoc(fn, x->req, rq, &field);
	if (err == ESIM_OK)
		return true;
	x->st = err == ESIM_E_NOT_FOUND ? ES9_MISSING : ES9_BADFIELD;
	smdp_logf_rid(x->d, x->request_id, "es9_request_refused", "function=%s field=%s error=%s",
		      rsp_es9_fn_name(fn), field ? field : "-", esim_errname(err));
	return false;
}

const char *smdp_es9_opt_str(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Lock only the order row (alias o) of a join: the profile's state is
 * locked where it changes, and locking the profile type's row would queue
 * every download of that type behind one another. SQLite's write lock
 * covers everything. */
const char *smdp_es9_order_lock(store *s)
{
	return store_sql_dialect(s) == STORE_DIALECT_POSTGRES ? "FOR UPDATE OF o" : "";
}

esim_err smdp_es9_fail_order(smdp *d, store *s, int64_t order_id, int64_t profile_id, time_t now,
			     int point, const struct smdp_status *st)
{
	esim_err err = smdp_db_transition(s, profile_id, 0x1FFu & ~(SMDP_BIT(SMDP_INSTALLED)),
					  SMDP_ERROR, now, st->message);
	store_stmt *q;
	if (err == ESIM_OK &&
	    (err = store_prepare(s, "UPDATE smdp_orders SET open = 0, updated = ?1 WHERE id = ?2",
				 &q)) == ESIM_OK) {
		store_bind_int64(q, 1, (int64_t)now);
		store_bind_int64(q, 2, order_id);
		err = store_run(q);
		store_finalize(q);
	}
	/* the order is over: its SM-DS event goes too, in this transaction
	 * (es12.c), or a device would keep finding an order it can never get */
	if (err == ESIM_OK)
		err = smdp_es12_queue_delete(d, s, order_id);
	if (err == ESIM_OK)
		err = smdp_outbox_queue(d, s, order_id, point, st, NULL, 0);
	return err;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

esim_err smdp_es9(smdp *d, const char *function, const uint8_t *body, size_t len, int *status,
		  char **out)
{
	return smdp_es9_req(d, function, body, len, NULL, status, out);
}

esim_err smdp_es9_req(smdp *d, const char *function, const uint8_t *body, size_t len,
		      const char *request_id, int *status, char **out)
{
	if (!d || !function || !status || !out)
		return ESIM_E_ARG;
	*out = NULL;
	esim_err (*fn)(struct es9 *, store *) = NULL;
	if (strcmp(function, "initiateAuthentication") == 0)
		fn = smdp_es9_initiate_authentication;
	else if (strcmp(function, "authenticateClient") == 0)
		fn = smdp_es9_authenticate_client;
	else if (strcmp(function, "getBoundProfilePackage") == 0)
		fn = smdp_es9_get_bound_profile_package;
	else if (strcmp(function, "handleNotification") == 0)
		fn = smdp_es9_handle_notification;
	else if (strcmp(function, "cancelSession") == 0)
		fn = smdp_es9_cancel_session;
	if (!fn) {
		*status = 404;
		return ESIM_OK;
	}
	atomic_fetch_add(&d->req_es9, 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct es9 x = {.d = d, .st = SMDP_OK_STATUS, .request_id = request_id};
	x.resp = json_object();
	store *s = NULL;
	esim_err err = ESIM_OK;
	if (!x.resp)
		return ESIM_E_NOMEM;
	if (net_json_parse(body, len, ES9_MAX_BODY, ES9_MAX_DEPTH, &x.req, NULL) != ESIM_OK ||
	    !json_is_object(x.req)) {
		x.st = ES9_BADFIELD;
		x.no_content = strcmp(function, "handleNotification") == 0;
	} else if ((err = smdp_store_get(d, &s)) == ESIM_OK) {
		err = fn(&x, s);
	}
	smdp_store_put(d, s);
	if (err == ESIM_OK && x.no_content) {
		*status = 204;
	} else if (err == ESIM_OK) {
		*status = x.busy ? 503 : 200;
		if (!x.st.subject && x.answer) { /* encoded by the codec (smdp_es9_answer) */
			atomic_fetch_add(&d->ok_es9, 1);
			*out = x.answer;
			x.answer = NULL;
		} else {
			json_t *o = smdp_json_header(&x.st);
			if (!x.st.subject)
				json_object_update(o, x.resp);
			if (x.st.subject) {
				atomic_fetch_add(&d->fail_es9, 1);
				smdp_logf_rid(d, request_id, "es9_failed",
					      "function=%s subject=%s reason=%s", function,
					      x.st.subject, x.st.reason);
			} else {
				atomic_fetch_add(&d->ok_es9, 1);
			}
			err = smdp_json_finish(d, o, &x.st, out);
		}
	}
	json_decref(x.req);
	json_decref(x.resp);
	free(x.answer);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000L;
	atomic_fetch_add(&d->latency_us, (unsigned long)(us > 0 ? us : 0));
	return err;
}
