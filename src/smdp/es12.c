/*
 * The SM-DP+ as ES12 client (SGP.22 5.9 RegisterEvent / DeleteEvent, 3.3
 * event registration; digest 5.6, 9.5; docs/smds.md): the SM-DSs it may
 * register events at, the synchronous RegisterEvent of ConfirmOrder, and
 * the outbox rows (kind 1) that carry a RegisterEvent the SM-DS could not
 * take at once and every DeleteEvent.
 *
 * ConfirmOrder with an smdsAddress (es2.c):
 *  - an address not configured here: 8.9 / 5.1 at once, nothing stored;
 *  - RegisterEvent is tried at once, inside the order's transaction, with
 *    a short deadline (timeout_ms). Success: the order is confirmed. The
 *    SM-DS answered Failed or an HTTP 4xx: 8.9 / 4.2 and the order is not
 *    confirmed. TLS refused either way (a certificate not trusted, ours
 *    not pinned there): 8.9 / 5.1, not confirmed. The SM-DS unreachable
 *    (connect, timeout, 5xx): the order is confirmed and the
 *    RegisterEvent queued in the durable outbox in the same transaction,
 *    to be retried until the SM-DS takes it.
 *  RegisterEvent is idempotent at the SM-DS, so a transaction that runs
 *  again (a busy store) registers the same event again harmlessly.
 * DeleteEvent is always queued (PIR, CancelOrder) with the row that ends
 * the download or the order, and sent after any RegisterEvent queued
 * before it (one connection, rows in id order).
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

/* A row of kind 1 in the outbox, inside the caller's transaction. */
static esim_err es12_queue(smdp *d, store *s, int64_t operator_id, const char *smds, bool reg,
			   const char *eid, const char *event_id)
{
	char url[400];
	es12_url(smds, reg, url, sizeof url);
	char *body = es12_body(d, reg, eid, event_id);
	if (!body)
		return ESIM_E_NOMEM;
	store_make_durable(s);
	store_stmt *q;
	esim_err err = store_prepare(s,
				     "INSERT INTO smdp_outbox (operator_id, url, body, attempts,"
				     " next_try, done, created, kind) VALUES (?1, ?2, ?3, 0, ?4, 0,"
				     " ?4, 1)",
				     &q);
	if (err == ESIM_OK) {
		store_bind_int64(q, 1, operator_id);
		store_bind_text(q, 2, url);
		store_bind_text(q, 3, body);
		store_bind_int64(q, 4, (int64_t)smdp_now(d));
		err = store_run(q);
		store_finalize(q);
	}
	free(body);
	if (err == ESIM_OK)
		smdp_logf(d, "es12_queued", "smds=%s function=%s event=%s", smds,
			  reg ? "registerEvent" : "deleteEvent", event_id);
	return err;
}

esim_err smdp_es12_register(smdp *d, store *s, int64_t operator_id, const char *smds,
			    const char *eid, const char *event_id, struct smdp_status *st)
{
	*st = SMDP_OK_STATUS;
	if (!smdp_smds_known(d, smds)) {
		*st = SMDP_FAIL("8.9", "5.1", "SM-DS address not known to this SM-DP+");
		return ESIM_OK;
	}
	char url[400];
	es12_url(smds, true, url, sizeof url);
	char *body = es12_body(d, true, eid, event_id);
	if (!body)
		return ESIM_E_NOMEM;
	net_client *c = NULL;
	struct net_client_response r;
	memset(&r, 0, sizeof r);
	esim_err e = net_client_new(&d->smds->cc, &c);
	if (e == ESIM_OK)
		e = net_client_post_json(c, url, body, strlen(body), &r);
	free(body);
	long http = r.status;
	bool failed_header = false;
	if (e == ESIM_OK) {
		json_t *doc = NULL;
		const char *status = NULL;
		if (net_json_parse(r.body.data, r.body.len, 64 * 1024, 8, &doc, NULL) == ESIM_OK)
			status = json_string_value(
			    json_object_get(json_object_get(json_object_get(doc, "header"),
							    "functionExecutionStatus"),
					    "status"));
		failed_header = !status || strncmp(status, "Executed-", 9) != 0;
		json_decref(doc);
	}
	const char *why = e == ESIM_OK ? "" : (c ? net_client_errmsg(c) : esim_strerror(e));
	smdp_logf(d, "es12_register", "smds=%s event=%s result=%s http=%ld%s%s", smds, event_id,
		  e == ESIM_OK && !failed_header ? "registered" : "failed", http,
		  why[0] ? " why=" : "", why);
	net_client_response_clear(&r);
	net_client_free(c);
	if (e == ESIM_OK && !failed_header)
		return ESIM_OK;
	if (e == ESIM_OK || (e == ESIM_E_NET_HTTP_STATUS && http < 500)) {
		*st = SMDP_FAIL("8.9", "4.2", "the SM-DS refused the event registration");
		return ESIM_OK;
	}
	if (e == ESIM_E_NET_CONNECT || e == ESIM_E_NET_TIMEOUT || e == ESIM_E_NET_HTTP_STATUS)
		return es12_queue(d, s, operator_id, smds, true, eid, event_id);
	/* TLS (either certificate refused), I/O after the handshake, a bad CA
	 * file: the SM-DS is not accessible to us */
	*st = SMDP_FAIL("8.9", "5.1", "SM-DS not accessible");
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
		err =
		    smds && eid && mid ? es12_queue(d, s, op, smds, false, eid, mid) : ESIM_E_NOMEM;
		free(smds);
		free(eid);
		free(mid);
	}
	store_finalize(q);
	return err;
}
