/*
 * The SM-DP+ as ES12 client (SGP.22 5.9 RegisterEvent / DeleteEvent, 3.3
 * event registration; digest 5.6, 9.5; docs/smds.md): the SM-DSs it may
 * register events at, ConfirmOrder's RegisterEvent, and the outbox rows
 * (kind 1) that carry a RegisterEvent the SM-DS could not take at once and
 * every DeleteEvent.
 *
 * ConfirmOrder with an smdsAddress (es2.c) runs in three steps, so that no
 * database transaction waits on the network (a slow SM-DS would hold the
 * order's row locks, and SQLite's whole write lock, for up to timeout_ms):
 *  1. in the order's transaction: an address not configured here gets
 *     8.9 / 5.1 at once and nothing is stored; otherwise the order is
 *     confirmed and the RegisterEvent queued as an outbox row *held* (due
 *     only after the call below can have ended: smdp_es12_reserve);
 *  2. no transaction: RegisterEvent is sent (smdp_es12_send) with the short
 *     deadline, the very body queued;
 *  3. a second short transaction settles it (smdp_es12_settle, es2.c):
 *     registered: the row goes; the SM-DS answered Failed or an HTTP 4xx
 *     (8.9 / 4.2), or TLS was refused either way (8.9 / 5.1): the row goes
 *     and es2.c puts the order back as it was; unreachable (connect,
 *     timeout, 5xx): the row is made due at once, for the outbox.
 *  A crash between 1 and 3 leaves a confirmed order whose held row the
 *  outbox sends once its hold has passed: the order is never half
 *  confirmed (no event promised and none queued). RegisterEvent is
 *  idempotent at the SM-DS, so sending it twice is harmless.
 *
 * DeleteEvent is always queued (PIR, CancelOrder, an order that fails for
 * good in ES9+) with the row that ends the download or the order. A
 * RegisterEvent of that order not yet sent is dropped then (the event was
 * never registered, or the DeleteEvent removes it); one being sent by step
 * 2 meanwhile finds its row gone in step 3 and, if it was registered,
 * queues another DeleteEvent after it.
 *
 * The outbox judges a kind-1 row by the answer's functionExecutionStatus,
 * not only its HTTP status (smdp_es12_answer): a Failed RegisterEvent is a
 * final failure (the row marked failed, the profile's history and the
 * smdp_es12_refused_total metric say so); a Failed DeleteEvent of an event
 * the SM-DS no longer holds (8.9.5 / 3.9) is done.
 *
 * The TLS client identity (smds client-cert) is read from its files by
 * net_client for each connection; no key is kept here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "smdp_int.h"

struct smdp_smds {
	char *addr[SMDP_MAX_SMDS];
	size_t n;
	char *ca_file, *client_cert, *client_key;
	unsigned timeout_ms;
	struct net_client_config cc; /* strings point into this struct */
};

void smdp_smds_free(struct smdp_smds *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->addr[i]);
	free(m->ca_file);
	free(m->client_cert);
	free(m->client_key);
	free(m);
}

esim_err smdp_set_smds(smdp *d, const struct smdp_smds_config *c)
{
	if (!d || !c || c->n == 0 || c->n > SMDP_MAX_SMDS || !c->ca_file || !c->client_cert ||
	    !c->client_key)
		return ESIM_E_ARG;
	struct smdp_smds *m = calloc(1, sizeof *m);
	if (!m)
		return ESIM_E_NOMEM;
	bool ok = true;
	for (size_t i = 0; i < c->n; i++) {
		ok &= c->addresses[i] != NULL && (m->addr[i] = strdup(c->addresses[i])) != NULL;
		m->n = i + 1;
	}
	m->ca_file = strdup(c->ca_file);
	m->client_cert = strdup(c->client_cert);
	m->client_key = strdup(c->client_key);
	if (!ok || !m->ca_file || !m->client_cert || !m->client_key) {
		smdp_smds_free(m);
		return ESIM_E_NOMEM;
	}
	m->timeout_ms = c->timeout_ms ? c->timeout_ms : 5000;
	m->cc = (struct net_client_config){
	    .ca_file = m->ca_file,
	    .client_cert_file = m->client_cert,
	    .client_key_file = m->client_key,
	    .connect_timeout_ms = m->timeout_ms,
	    .timeout_ms = m->timeout_ms,
	    .max_response = 64 * 1024,
	    .user_agent = "esim-smdp",
	};
	smdp_smds_free(d->smds);
	d->smds = m;
	return ESIM_OK;
}

esim_err smdp_smds_sender_new(smdp *d, smdp_outbox_sender **out)
{
	*out = NULL;
	if (!d->smds)
		return ESIM_OK;
	struct smdp_outbox_config oc = {.client = &d->smds->cc, .concurrency = 1, .es12 = true};
	return smdp_outbox_sender_new(&oc, out);
}

bool smdp_smds_known(const smdp *d, const char *address)
{
	for (size_t i = 0; d->smds && i < d->smds->n; i++)
		if (strcasecmp(d->smds->addr[i], address) == 0)
			return true;
	return false;
}

/* The body of an ES12 call (SGP.22 5.9.1 / 5.9.2). */
static char *es12_body(const smdp *d, bool reg, const char *eid, const char *event_id)
{
	uint8_t r[8];
	char callid[48];
	if (RAND_bytes(r, sizeof r) != 1)
		return NULL;
	snprintf(callid, sizeof callid, "es12-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
		 r[3], r[4], r[5], r[6], r[7]);
	json_t *o =
	    json_pack("{s:{s:s,s:s},s:s,s:s}", "header", "functionRequesterIdentifier", d->fqdn,
		      "functionCallIdentifier", callid, "eid", eid, "eventId", event_id);
	if (o && reg) {
		json_object_set_new(o, "rspServerAddress", json_string(d->fqdn));
		json_object_set_new(o, "forwardingIndicator", json_false());
	}
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

static void es12_url(const char *smds, bool reg, char *url, size_t n)
{
	snprintf(url, n, "https://%s/gsma/rsp2/es12/%s", smds,
		 reg ? "registerEvent" : "deleteEvent");
}

/* A row of kind 1 in the outbox, inside the caller's transaction, due at
 * next_try; its id in *id (may be NULL). body is the call as it is posted
 * (its functionCallIdentifier made once, when the body is). */
static esim_err es12_queue_at(smdp *d, store *s, int64_t operator_id, int64_t order_id,
			      const char *smds, bool reg, const char *body, int64_t next_try,
			      int64_t *id)
{
	char url[400];
	es12_url(smds, reg, url, sizeof url);
	store_make_durable(s);
	store_stmt *q;
	esim_err err = store_prepare(s,
				     "INSERT INTO smdp_outbox (operator_id, url, body, attempts,"
				     " next_try, done, created, kind, order_id) VALUES (?1, ?2, ?3,"
				     " 0, ?4, 0, ?5, 1, ?6) RETURNING id",
				     &q);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(q, 1, operator_id);
	store_bind_text(q, 2, url);
	store_bind_text(q, 3, body);
	store_bind_int64(q, 4, next_try);
	store_bind_int64(q, 5, (int64_t)smdp_now(d));
	if (order_id)
		store_bind_int64(q, 6, order_id);
	else
		store_bind_null(q, 6);
	int64_t rid = 0;
	err = store_run_id(q, &rid);
	store_finalize(q);
	if (id)
		*id = rid;
	return err;
}

void smdp_es12_pending_clear(struct smdp_es12_pending *p)
{
	if (!p)
		return;
	free(p->smds);
	free(p->event_id);
	free(p->body);
	memset(p, 0, sizeof *p);
}

esim_err smdp_es12_reserve(smdp *d, store *s, int64_t operator_id, int64_t order_id,
			   const char *smds, const char *eid, const char *event_id,
			   struct smdp_es12_pending *p, struct smdp_status *st)
{
	smdp_es12_pending_clear(p);
	*st = SMDP_OK_STATUS;
	if (!smdp_smds_known(d, smds)) {
		*st = SMDP_FAIL("8.9", "5.1", "SM-DS address not known to this SM-DP+");
		return ESIM_OK;
	}
	p->smds = strdup(smds);
	p->event_id = strdup(event_id);
	p->body = es12_body(d, true, eid, event_id);
	p->order_id = order_id;
	if (!p->smds || !p->event_id || !p->body) {
		smdp_es12_pending_clear(p);
		return ESIM_E_NOMEM;
	}
	/* held until the call of step 2 has surely ended (whole seconds, one
	 * spare): only a crash before step 3 lets the outbox send it */
	int64_t hold = (int64_t)(d->smds->timeout_ms + 999) / 1000 + 2;
	esim_err err = es12_queue_at(d, s, operator_id, order_id, smds, true, p->body,
				     (int64_t)smdp_now(d) + hold, &p->row_id);
	if (err != ESIM_OK)
		smdp_es12_pending_clear(p);
	return err;
}

/* The functionExecutionStatus of an ES12 answer: "Executed-..." is
 * success (*failed false); "Failed" sets *failed and subject / reason
 * (when given) into why ("8.9.5/3.9"). false: no such header (not an ES12
 * answer). */
static bool es12_answer_status(const uint8_t *body, size_t len, bool *failed, char *why,
			       size_t why_len)
{
	json_t *doc = NULL;
	bool ok = false;
	*failed = false;
	if (why_len)
		why[0] = '\0';
	if (net_json_parse(body, len, 64 * 1024, 8, &doc, NULL) != ESIM_OK)
		return false;
	json_t *fes = json_object_get(json_object_get(doc, "header"), "functionExecutionStatus");
	const char *status = json_string_value(json_object_get(fes, "status"));
	if (status && strncmp(status, "Executed-", 9) == 0) {
		ok = true;
	} else if (status && strcmp(status, "Failed") == 0) {
		ok = true;
		*failed = true;
		json_t *scd = json_object_get(fes, "statusCodeData");
		const char *sc = json_string_value(json_object_get(scd, "subjectCode"));
		const char *rc = json_string_value(json_object_get(scd, "reasonCode"));
		if (why_len)
			snprintf(why, why_len, "%.16s/%.16s", sc ? sc : "?", rc ? rc : "?");
	}
	json_decref(doc);
	return ok;
}

enum smdp_es12_verdict smdp_es12_answer(const char *url, long http, const uint8_t *body, size_t len,
					char *why, size_t why_len)
{
	if (why_len)
		why[0] = '\0';
	if (http < 200 || http >= 300)
		return SMDP_ES12_NOT_JUDGED;
	bool failed = false;
	if (!es12_answer_status(body, len, &failed, why, why_len))
		return SMDP_ES12_RETRY; /* a 2xx that is not an ES12 answer (a proxy?) */
	if (!failed)
		return SMDP_ES12_DONE;
	/* a DeleteEvent of an event the SM-DS no longer holds: nothing left
	 * to delete (SGP.22 5.9.2; 8.9.5 / 3.9) */
	size_t n = strlen(url), k = strlen("/deleteEvent");
	if (n > k && strcmp(url + n - k, "/deleteEvent") == 0 && strcmp(why, "8.9.5/3.9") == 0)
		return SMDP_ES12_DONE;
	return SMDP_ES12_REFUSED_FOR_GOOD;
}

enum smdp_es12_outcome smdp_es12_send(smdp *d, const struct smdp_es12_pending *p)
{
	char url[400];
	es12_url(p->smds, true, url, sizeof url);
	net_client *c = NULL;
	struct net_client_response r;
	memset(&r, 0, sizeof r);
	esim_err e = net_client_new(&d->smds->cc, &c);
	if (e == ESIM_OK)
		e = net_client_post_json(c, url, p->body, strlen(p->body), &r);
	long http = r.status;
	bool failed = false, es12 = false;
	char st[40] = "";
	if (e == ESIM_OK)
		es12 = es12_answer_status(r.body.data, r.body.len, &failed, st, sizeof st);
	bool registered = e == ESIM_OK && es12 && !failed;
	const char *why = e == ESIM_OK ? st : (c ? net_client_errmsg(c) : esim_strerror(e));
	smdp_logf(d, "es12_register", "smds=%s event=%s result=%s http=%ld%s%s", p->smds,
		  p->event_id, registered ? "registered" : "failed", http, why[0] ? " why=" : "",
		  why);
	net_client_response_clear(&r);
	net_client_free(c);
	if (registered)
		return SMDP_ES12_REGISTERED;
	if (e == ESIM_OK || (e == ESIM_E_NET_HTTP_STATUS && http < 500))
		return SMDP_ES12_REFUSED;
	if (e == ESIM_E_NET_CONNECT || e == ESIM_E_NET_TIMEOUT || e == ESIM_E_NET_HTTP_STATUS)
		return SMDP_ES12_UNREACHABLE;
	/* TLS (either certificate refused), I/O after the handshake, a bad CA
	 * file: the SM-DS is not accessible to us */
	return SMDP_ES12_INACCESSIBLE;
}

esim_err smdp_es12_settle(smdp *d, store *s, const struct smdp_es12_pending *p,
			  enum smdp_es12_outcome o, bool *row_gone)
{
	*row_gone = false;
	store_stmt *q;
	bool release = o == SMDP_ES12_UNREACHABLE;
	esim_err err = store_prepare(s,
				     release ? "UPDATE smdp_outbox SET next_try = ?2 WHERE id = ?1"
					       " AND done = 0 AND failed = 0"
					     : "DELETE FROM smdp_outbox WHERE id = ?1",
				     &q);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(q, 1, p->row_id);
	if (release)
		store_bind_int64(q, 2, (int64_t)smdp_now(d));
	err = store_run(q);
	store_finalize(q);
	if (err != ESIM_OK)
		return err;
	/* the row went meanwhile: CancelOrder, a PIR or an ES9+ failure ended
	 * the order and queued its DeleteEvent before our registration landed */
	*row_gone = store_changes(s) == 0;
	if (release && !*row_gone)
		smdp_logf(d, "es12_queued", "smds=%s function=registerEvent event=%s", p->smds,
			  p->event_id);
	if (*row_gone && o == SMDP_ES12_REGISTERED)
		return smdp_es12_queue_delete(d, s, p->order_id);
	return ESIM_OK;
}

esim_err smdp_es12_queue_delete(smdp *d, store *s, int64_t order_id)
{
	store_stmt *q;
	esim_err err = store_prepare(s,
				     "SELECT operator_id, smds_address, eid, matching_id FROM"
				     " smdp_orders WHERE id = ?1",
				     &q);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(q, 1, order_id);
	bool row = false;
	err = store_step(q, &row);
	if (err == ESIM_OK && row && !store_col_is_null(q, 1) && !store_col_is_null(q, 2) &&
	    !store_col_is_null(q, 3)) {
		int64_t op = store_col_int64(q, 0);
		char *smds = strdup(store_col_text(q, 1));
		char *eid = strdup(store_col_text(q, 2));
		char *mid = strdup(store_col_text(q, 3));
		store_finalize(q);
		q = NULL;
		/* a RegisterEvent of this order still waiting (held for
		 * ConfirmOrder, or backing off) and not being sent: dropped */
		if (smds && eid && mid)
			err =
			    store_prepare(s,
					  "DELETE FROM smdp_outbox WHERE kind = 1 AND order_id = ?1"
					  " AND done = 0 AND failed = 0 AND url LIKE"
					  " '%/registerEvent' AND (lease_until IS NULL OR"
					  " lease_until < ?2)",
					  &q);
		else
			err = ESIM_E_NOMEM;
		if (err == ESIM_OK) {
			store_bind_int64(q, 1, order_id);
			store_bind_int64(q, 2, (int64_t)smdp_now(d));
			err = store_run(q);
			store_finalize(q);
			q = NULL;
		}
		char *body = err == ESIM_OK ? es12_body(d, false, eid, mid) : NULL;
		if (err == ESIM_OK && !body)
			err = ESIM_E_NOMEM;
		if (err == ESIM_OK)
			err = es12_queue_at(d, s, op, order_id, smds, false, body,
					    (int64_t)smdp_now(d), NULL);
		if (err == ESIM_OK)
			smdp_logf(d, "es12_queued", "smds=%s function=deleteEvent event=%s", smds,
				  mid);
		free(body);
		free(smds);
		free(eid);
		free(mid);
	}
	store_finalize(q);
	return err;
}
