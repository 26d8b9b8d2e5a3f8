/*
 * ES12 (SM-DP+ -> SM-DS; SGP.22 5.9, digest 5.6): RegisterEvent and
 * DeleteEvent. The caller is the SM-DP+ whose TLS client certificate the
 * ES12 listener pinned; its configured address is the only
 * rspServerAddress it may register events for, and it may only delete its
 * own events (an event of another SM-DP+ is answered as an unknown one).
 *
 * Both are idempotent, as the SM-DP+ sends them from a durable outbox and
 * may send one again: RegisterEvent of an event already held for the same
 * EID is a success, for another EID a conflict (8.9.5 / 3.3); DeleteEvent
 * of an event not held answers 8.9.5 / 3.9 with HTTP 200, which the
 * SM-DP+ takes as done.
 */
#include <string.h>
#include <strings.h>

#include "smds_int.h"

#define ES12_MAX_BODY	  (16 * 1024)
#define ES12_MAX_DEPTH	  4
#define SMDS_EVENT_ID_MAX 64

static const struct smds_status MISSING = {"1.3.1", "2.2", "mandatory element missing"};
static const struct smds_status EVENT_UNKNOWN = {"8.9.5", "3.9", "event record unknown"};

static const struct smds_smdp *caller(const smds *d, const uint8_t *sha)
{
	if (!sha)
		return NULL;
	for (size_t i = 0; i < d->n_smdps; i++)
		if (memcmp(d->smdps[i].sha, sha, 32) == 0)
			return &d->smdps[i];
	return NULL;
}

/* eventId: the matchingId the LPA will send, printable ASCII without
 * spaces (SGP.22 4.1's matchingId alphabet is narrower still). */
static bool event_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > SMDS_EVENT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= 0x20 || id[i] >= 0x7F)
			return false;
	return true;
}

static esim_err register_event(smds *d, const struct smds_smdp *who, const json_t *req,
			       struct smds_status *st)
{
	const char *eid = smds_opt_str(req, "eid");
	const char *addr = smds_opt_str(req, "rspServerAddress");
	const char *ev = smds_opt_str(req, "eventId");
	if (!eid || !addr || !ev) {
		*st = MISSING;
		return ESIM_OK;
	}
	if (rsp_eid_check(eid) != ESIM_OK) {
		*st = SMDS_FAIL("8.1.1", "2.1", "EID invalid");
		return ESIM_OK;
	}
	if (!event_id_ok(ev)) {
		*st = SMDS_FAIL("1.3.1", "2.1", "eventId invalid");
		return ESIM_OK;
	}
	if (strcasecmp(addr, who->address) != 0) {
		*st = SMDS_FAIL("8.8.1", "3.8", "rspServerAddress is not the caller's address");
		smds_logf(d, "es12_refused", "smdp=%s claimed=%s", who->address, addr);
		return ESIM_OK;
	}
	pthread_mutex_lock(&d->lock);
	store_stmt *q;
	esim_err err = store_begin(d->db);
	if (err == ESIM_OK)
		err = store_prepare(d->db,
				    "SELECT eid FROM smds_events WHERE smdp_address = ?1"
				    " AND event_id = ?2",
				    &q);
	bool row = false, same = false;
	if (err == ESIM_OK) {
		store_bind_text(q, 1, who->address);
		store_bind_text(q, 2, ev);
		err = store_step(q, &row);
		same = err == ESIM_OK && row && strcmp(store_col_text(q, 0), eid) == 0;
		store_finalize(q);
	}
	if (err == ESIM_OK && row && !same)
		*st = SMDS_FAIL("8.9.5", "3.3", "eventId already registered for another EID");
	if (err == ESIM_OK && !row) {
		err = store_prepare(
		    d->db,
		    "INSERT INTO smds_events (eid, event_id, smdp_address, registered)"
		    " VALUES (?1, ?2, ?3, ?4)",
		    &q);
		if (err == ESIM_OK) {
			store_bind_text(q, 1, eid);
			store_bind_text(q, 2, ev);
			store_bind_text(q, 3, who->address);
			store_bind_int64(q, 4, (int64_t)smds_now(d));
			err = store_run(q);
			store_finalize(q);
		}
	}
	if (err == ESIM_OK)
		err = store_commit(d->db);
	else
		store_rollback(d->db);
	pthread_mutex_unlock(&d->lock);
	if (err == ESIM_OK && !st->subject)
		smds_logf(d, "event_registered", "smdp=%s event=%s%s", who->address, ev,
			  row ? " again=1" : "");
	return err;
}

static esim_err delete_event(smds *d, const struct smds_smdp *who, const json_t *req,
			     struct smds_status *st)
{
	const char *eid = smds_opt_str(req, "eid");
	const char *ev = smds_opt_str(req, "eventId");
	if (!eid || !ev) {
		*st = MISSING;
		return ESIM_OK;
	}
	pthread_mutex_lock(&d->lock);
	store_stmt *q;
	esim_err err = store_prepare(d->db,
				     "DELETE FROM smds_events WHERE smdp_address = ?1"
				     " AND event_id = ?2 AND eid = ?3",
				     &q);
	int64_t n = 0;
	if (err == ESIM_OK) {
		store_bind_text(q, 1, who->address);
		store_bind_text(q, 2, ev);
		store_bind_text(q, 3, eid);
		err = store_run(q);
		n = store_changes(d->db);
		store_finalize(q);
	}
	pthread_mutex_unlock(&d->lock);
	if (err == ESIM_OK && n == 0)
		*st = EVENT_UNKNOWN;
	if (err == ESIM_OK && n > 0)
		smds_logf(d, "event_deleted", "smdp=%s event=%s", who->address, ev);
	return err;
}

esim_err smds_es12(smds *d, const char *function, const uint8_t *client_sha256, const uint8_t *body,
		   size_t len, int *status, char **out)
{
	*out = NULL;
	*status = 404;
	bool reg = strcmp(function, "registerEvent") == 0;
	if (!reg && strcmp(function, "deleteEvent") != 0)
		return ESIM_OK;
	*status = 200;
	struct smds_status st = SMDS_OK;
	const struct smds_smdp *who = caller(d, client_sha256);
	json_t *req = NULL;
	esim_err err = ESIM_OK;
	if (!who)
		st = SMDS_FAIL("1.1.1", "6.1", "SM-DP+ certificate not known to this SM-DS");
	else if (net_json_parse(body, len, ES12_MAX_BODY, ES12_MAX_DEPTH, &req, NULL) != ESIM_OK ||
		 !json_is_object(req))
		st = SMDS_FAIL("1.3.1", "2.1", "body is not a JSON object");
	else
		err = reg ? register_event(d, who, req, &st) : delete_event(d, who, req, &st);
	json_decref(req);
	if (err != ESIM_OK)
		return err;
	return smds_json_finish(&st, NULL, out);
}
