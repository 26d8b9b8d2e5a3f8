/*
 * euicc_db: the durable state of the virtual eUICC in one SQLite database
 * (through esim/store.h): installed profiles with their StoreMetadata and
 * the whole unprotected profile package, pending notifications with the
 * eUICC-wide seqNumber counter (SGP.22 5.7.9, digest 8.1), the ISD-P AID
 * counter and the configured addresses (ES10a).
 *
 * Callers group the statements of one card operation in a store_begin /
 * store_commit pair, so that an install, enable, disable, delete or memory
 * reset is either wholly on disk or not at all. The counters are rows of
 * the same database and commit in the same transaction, so a seqNumber or
 * an AID is never handed out twice, even across crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"

#include "euicc_int.h"

static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO counters VALUES ('seq', 0), ('isdp', 0);"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE profiles ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " iccid BLOB NOT NULL UNIQUE,"
    " aid BLOB NOT NULL UNIQUE,"
    " state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1)),"
    " class INTEGER NOT NULL,"
    " ppr INTEGER NOT NULL DEFAULT 0,"
    " nickname TEXT NOT NULL DEFAULT '',"
    " metadata BLOB NOT NULL,"
    " dp_prop BLOB,"
    " ci_pkid BLOB NOT NULL,"
    " upp BLOB NOT NULL);"
    "CREATE UNIQUE INDEX one_enabled ON profiles(state) WHERE state = 1;"
    "CREATE TABLE notifications ("
    " seq INTEGER PRIMARY KEY,"
    " pmo INTEGER NOT NULL,"
    " meta BLOB NOT NULL,"
    " data BLOB NOT NULL);",
};

esim_err euicc_db_open(const char *url, store **out)
{
	store *s = NULL;
	esim_err err = store_open(url, &s);
	if (err != ESIM_OK)
		return err;
	err = store_migrate(s, migrations, sizeof migrations / sizeof migrations[0]);
	if (err != ESIM_OK) {
		store_close(s);
		return err;
	}
	*out = s;
	return ESIM_OK;
}

void euicc_profile_clear(struct euicc_profile *p)
{
	free(p->metadata);
	free(p->dp_prop);
	memset(p, 0, sizeof *p);
}

void euicc_profiles_free(struct euicc_profile *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		euicc_profile_clear(&v[i]);
	free(v);
}

static esim_err dup_blob(const uint8_t *p, size_t n, uint8_t **out)
{
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return ESIM_E_NOMEM;
	if (n)
		memcpy(*out, p, n);
	return ESIM_OK;
}

#define PROFILE_COLS                                                                               \
	"id, iccid, aid, state, class, ppr, nickname, metadata, dp_prop, length(upp), ci_pkid"

static esim_err row_to_profile(store_stmt *st, struct euicc_profile *p)
{
	memset(p, 0, sizeof *p);
	size_t n;
	const uint8_t *b;
	p->id = store_col_int64(st, 0);
	b = store_col_blob(st, 1, &n);
	if (n != EUICC_ICCID_LEN)
		return ESIM_E_EUICC_STATE;
	memcpy(p->iccid, b, n);
	b = store_col_blob(st, 2, &n);
	if (n != EUICC_AID_LEN)
		return ESIM_E_EUICC_STATE;
	memcpy(p->aid, b, n);
	p->state = (int)store_col_int64(st, 3);
	p->profile_class = (int)store_col_int64(st, 4);
	p->ppr = (uint64_t)store_col_int64(st, 5);
	const char *nick = store_col_text(st, 6);
	if (nick != NULL)
		snprintf(p->nickname, sizeof p->nickname, "%s", nick);
	b = store_col_blob(st, 7, &n);
	esim_err err = dup_blob(b, n, &p->metadata);
	if (err != ESIM_OK)
		return err;
	p->metadata_len = n;
	if (!store_col_is_null(st, 8)) {
		b = store_col_blob(st, 8, &n);
		err = dup_blob(b, n, &p->dp_prop);
		if (err != ESIM_OK) {
			euicc_profile_clear(p);
			return err;
		}
		p->dp_prop_len = n;
	}
	p->upp_len = (size_t)store_col_int64(st, 9);
	b = store_col_blob(st, 10, &n);
	if (n > sizeof p->ci_pkid) {
		euicc_profile_clear(p);
		return ESIM_E_EUICC_STATE;
	}
	memcpy(p->ci_pkid, b, n);
	p->ci_pkid_len = n;
	return ESIM_OK;
}

esim_err euicc_db_profiles(store *db, struct euicc_profile **out, size_t *n)
{
	store_stmt *st = NULL;
	struct euicc_profile *v = NULL;
	size_t count = 0;
	esim_err err = store_prepare(db, "SELECT " PROFILE_COLS " FROM profiles ORDER BY id", &st);
	if (err != ESIM_OK)
		return err;
	for (;;) {
		bool row = false;
		err = store_step(st, &row);
		if (err != ESIM_OK || !row)
			break;
		struct euicc_profile *nv = realloc(v, (count + 1) * sizeof *v);
		if (nv == NULL) {
			err = ESIM_E_NOMEM;
			break;
		}
		v = nv;
		err = row_to_profile(st, &v[count]);
		if (err != ESIM_OK)
			break;
		count++;
	}
	store_finalize(st);
	if (err != ESIM_OK) {
		euicc_profiles_free(v, count);
		return err;
	}
	*out = v;
	*n = count;
	return ESIM_OK;
}

static esim_err profile_by(store *db, const char *col, const uint8_t *key, size_t len,
			   struct euicc_profile *out)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT " PROFILE_COLS " FROM profiles WHERE %s = ?1", col);
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, sql, &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_bind_blob(st, 1, key, len);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	if (err == ESIM_OK)
		err = row ? row_to_profile(st, out) : ESIM_E_NOT_FOUND;
	store_finalize(st);
	return err;
}

esim_err euicc_db_profile_by_iccid(store *db, const uint8_t *iccid, struct euicc_profile *out)
{
	return profile_by(db, "iccid", iccid, EUICC_ICCID_LEN, out);
}

esim_err euicc_db_profile_by_aid(store *db, const uint8_t *aid, size_t len,
				 struct euicc_profile *out)
{
	return profile_by(db, "aid", aid, len, out);
}

esim_err euicc_db_profile_insert(store *db, const struct euicc_profile *p, const uint8_t *upp,
				 size_t upp_len)
{
	store_stmt *st = NULL;
	esim_err err =
	    store_prepare(db,
			  "INSERT INTO profiles (iccid, aid, state, class, ppr, nickname,"
			  " metadata, dp_prop, upp, ci_pkid)"
			  " VALUES (?1, ?2, 0, ?3, ?4, '', ?5, ?6, ?7, ?8)",
			  &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_blob(st, 1, p->iccid, EUICC_ICCID_LEN);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 2, p->aid, EUICC_AID_LEN);
	if (err == ESIM_OK)
		err = store_bind_int64(st, 3, p->profile_class);
	if (err == ESIM_OK)
		err = store_bind_int64(st, 4, (int64_t)p->ppr);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 5, p->metadata, p->metadata_len);
	if (err == ESIM_OK)
		err = p->dp_prop ? store_bind_blob(st, 6, p->dp_prop, p->dp_prop_len)
				 : store_bind_null(st, 6);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 7, upp, upp_len);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 8, p->ci_pkid, p->ci_pkid_len);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err euicc_db_profile_upp(store *db, int64_t id, uint8_t **out, size_t *len)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, "SELECT upp FROM profiles WHERE id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_bind_int64(st, 1, id);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK) {
		const uint8_t *b = store_col_blob(st, 0, len);
		err = dup_blob(b, *len, out);
	}
	store_finalize(st);
	return err;
}

static esim_err exec_id(store *db, const char *sql, int64_t id, int64_t v)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, sql, &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_int64(st, 1, id);
	if (err == ESIM_OK && strstr(sql, "?2") != NULL)
		err = store_bind_int64(st, 2, v);
	if (err == ESIM_OK)
		err = store_run(st);
	if (err == ESIM_OK && store_changes(db) != 1)
		err = ESIM_E_NOT_FOUND;
	store_finalize(st);
	return err;
}

esim_err euicc_db_profile_set_state(store *db, int64_t id, int state)
{
	return exec_id(db, "UPDATE profiles SET state = ?2 WHERE id = ?1", id, state);
}

esim_err euicc_db_profile_delete(store *db, int64_t id)
{
	return exec_id(db, "DELETE FROM profiles WHERE id = ?1", id, 0);
}

esim_err euicc_db_profile_set_nickname(store *db, int64_t id, const char *nick, size_t len)
{
	char buf[sizeof(((struct euicc_profile *)0)->nickname)];
	if (len >= sizeof buf)
		return ESIM_E_TOO_LARGE;
	memcpy(buf, nick, len);
	buf[len] = '\0';
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, "UPDATE profiles SET nickname = ?2 WHERE id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_int64(st, 1, id);
	if (err == ESIM_OK)
		err = store_bind_text(st, 2, buf);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err euicc_db_used_bytes(store *db, uint64_t *out)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(
	    db, "SELECT COALESCE(SUM(length(upp) + length(metadata)), 0) FROM profiles", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_step(st, &row);
	if (err == ESIM_OK)
		*out = row ? (uint64_t)store_col_int64(st, 0) : 0;
	store_finalize(st);
	return err;
}

esim_err euicc_db_counter(store *db, const char *name, int64_t *out)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, "SELECT value FROM counters WHERE name = ?1", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_bind_text(st, 1, name);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	if (err == ESIM_OK)
		err = row ? ESIM_OK : ESIM_E_EUICC_STATE;
	if (err == ESIM_OK)
		*out = store_col_int64(st, 0);
	store_finalize(st);
	return err;
}

/* Increment a counter and return the new value. */
static esim_err counter_next(store *db, const char *name, int64_t *out)
{
	store_stmt *st = NULL;
	esim_err err =
	    store_prepare(db, "UPDATE counters SET value = value + 1 WHERE name = ?1", &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_text(st, 1, name);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	return euicc_db_counter(db, name, out);
}

esim_err euicc_db_next_seq(store *db, int64_t *out)
{
	return counter_next(db, "seq", out);
}

esim_err euicc_db_next_aid(store *db, uint8_t out[EUICC_AID_LEN])
{
	/* The n-th ISD-P ever created gets rsp_isdp_aid(n) (...8900001000,
	 * ...8900001100, as real eUICCs number them): the counter is never
	 * decremented, so an AID is never reused, even after a delete. */
	int64_t v = 0;
	esim_err err = counter_next(db, "isdp", &v);
	if (err != ESIM_OK)
		return err;
	if (v < 1 || v > 0xFFF0)
		return ESIM_E_EUICC_STATE;
	return rsp_isdp_aid((unsigned)(v - 1), out);
}

esim_err euicc_db_get_setting(store *db, const char *key, char **out)
{
	*out = NULL;
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, "SELECT value FROM settings WHERE key = ?1", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_bind_text(st, 1, key);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		const char *v = store_col_text(st, 0);
		*out = strdup(v ? v : "");
		if (*out == NULL)
			err = ESIM_E_NOMEM;
	}
	store_finalize(st);
	return err;
}

esim_err euicc_db_set_setting(store *db, const char *key, const char *value)
{
	store_stmt *st = NULL;
	const char *sql = value ? "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)"
				: "DELETE FROM settings WHERE key = ?1";
	esim_err err = store_prepare(db, sql, &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_text(st, 1, key);
	if (err == ESIM_OK && value)
		err = store_bind_text(st, 2, value);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	return err;
}

void euicc_notifs_free(struct euicc_notif *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].meta);
		free(v[i].data);
	}
	free(v);
}

esim_err euicc_db_notif_insert(store *db, const struct euicc_notif *n)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(
	    db, "INSERT INTO notifications (seq, pmo, meta, data) VALUES (?1, ?2, ?3, ?4)", &st);
	if (err != ESIM_OK)
		return err;
	err = store_bind_int64(st, 1, n->seq);
	if (err == ESIM_OK)
		err = store_bind_int64(st, 2, n->pmo);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 3, n->meta, n->meta_len);
	if (err == ESIM_OK)
		err = store_bind_blob(st, 4, n->data, n->data_len);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err euicc_db_notifs(store *db, bool with_data, struct euicc_notif **out, size_t *n)
{
	store_stmt *st = NULL;
	struct euicc_notif *v = NULL;
	size_t count = 0;
	esim_err err =
	    store_prepare(db,
			  with_data ? "SELECT seq, pmo, meta, data FROM notifications ORDER BY seq"
				    : "SELECT seq, pmo, meta, NULL FROM notifications ORDER BY seq",
			  &st);
	if (err != ESIM_OK)
		return err;
	for (;;) {
		bool row = false;
		err = store_step(st, &row);
		if (err != ESIM_OK || !row)
			break;
		struct euicc_notif *nv = realloc(v, (count + 1) * sizeof *v);
		if (nv == NULL) {
			err = ESIM_E_NOMEM;
			break;
		}
		v = nv;
		struct euicc_notif *x = &v[count];
		memset(x, 0, sizeof *x);
		count++;
		x->seq = store_col_int64(st, 0);
		x->pmo = (int)store_col_int64(st, 1);
		size_t len;
		const uint8_t *b = store_col_blob(st, 2, &len);
		err = dup_blob(b, len, &x->meta);
		if (err != ESIM_OK)
			break;
		x->meta_len = len;
		if (with_data) {
			b = store_col_blob(st, 3, &len);
			err = dup_blob(b, len, &x->data);
			if (err != ESIM_OK)
				break;
			x->data_len = len;
		}
	}
	store_finalize(st);
	if (err != ESIM_OK) {
		euicc_notifs_free(v, count);
		return err;
	}
	*out = v;
	*n = count;
	return ESIM_OK;
}

esim_err euicc_db_notif_count(store *db, size_t *out)
{
	store_stmt *st = NULL;
	esim_err err = store_prepare(db, "SELECT COUNT(*) FROM notifications", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_step(st, &row);
	if (err == ESIM_OK)
		*out = row ? (size_t)store_col_int64(st, 0) : 0;
	store_finalize(st);
	return err;
}

esim_err euicc_db_notif_remove(store *db, int64_t seq)
{
	return exec_id(db, "DELETE FROM notifications WHERE seq = ?1", seq, 0);
}
