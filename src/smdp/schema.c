/*
 * The SM-DP+ database schema (digest 9.1: per-profile state and per-order
 * fields; 15.4: a persisted session store). One SQL text for SQLite and
 * PostgreSQL: the {{...}} placeholders of esim/store.h cover the
 * differences. Secrets are not stored in clear: Ki / OPc only sealed
 * under the KEK (migration 5), confirmation codes as their SHA-256.
 * Migrations are only ever appended: a database records how many ran.
 */
#include <stdint.h>

#include "smdp_int.h"

static const char *const migrations[] = {
    /* 1: the whole first schema */
    "CREATE TABLE smdp_operators ("
    " id {{ID}}, name TEXT NOT NULL UNIQUE, cert_sha256 TEXT UNIQUE,"
    " callback_url TEXT, created {{INT}} NOT NULL);"
    "CREATE TABLE smdp_profile_types ("
    " id {{ID}}, name TEXT NOT NULL UNIQUE, operator_id {{INT}} NOT NULL,"
    " template {{BLOB}} NOT NULL, spn TEXT NOT NULL, profile_name TEXT NOT NULL,"
    " profile_class {{INT}} NOT NULL, ppr {{INT}} NOT NULL);"
    "CREATE TABLE smdp_profiles ("
    " id {{ID}}, iccid TEXT NOT NULL UNIQUE, imsi TEXT, type_id {{INT}} NOT NULL,"
    " state TEXT NOT NULL, upp {{BLOB}} NOT NULL, lifecycle TEXT,"
    " eid TEXT, updated {{INT}} NOT NULL);"
    "CREATE INDEX smdp_profiles_pick ON smdp_profiles(type_id, state, id);"
    "CREATE TABLE smdp_orders ("
    " id {{ID}}, profile_id {{INT}} NOT NULL, operator_id {{INT}} NOT NULL,"
    " eid TEXT, matching_id TEXT, cc_hash {{BLOB}}, cc_left {{INT}} NOT NULL,"
    " attempts {{INT}} NOT NULL, expires {{INT}} NOT NULL, open {{INT}} NOT NULL,"
    " smds_address TEXT, bound_otpk {{BLOB}}, bpp {{BLOB}},"
    " created {{INT}} NOT NULL, updated {{INT}} NOT NULL);"
    "CREATE UNIQUE INDEX smdp_orders_mid ON smdp_orders(matching_id)"
    " WHERE open = 1 AND matching_id IS NOT NULL;"
    "CREATE INDEX smdp_orders_profile ON smdp_orders(profile_id, open);"
    "CREATE INDEX smdp_orders_eid ON smdp_orders(eid, open);"
    "CREATE TABLE smdp_sessions ("
    " txid TEXT PRIMARY KEY, state TEXT NOT NULL, ident {{INT}} NOT NULL,"
    " euicc_challenge {{BLOB}} NOT NULL, server_challenge {{BLOB}} NOT NULL,"
    " ci_pkid {{BLOB}} NOT NULL, eid TEXT, order_id {{INT}},"
    " euicc_cert {{BLOB}}, euicc_sig1 {{BLOB}}, smdp_sig2 {{BLOB}},"
    " cc_required {{INT}} NOT NULL, created {{INT}} NOT NULL, updated {{INT}} NOT NULL);"
    "CREATE TABLE smdp_notifications ("
    " id {{ID}}, eid TEXT NOT NULL, seq {{INT}} NOT NULL, kind TEXT NOT NULL,"
    " event {{INT}} NOT NULL, iccid TEXT, received {{INT}} NOT NULL, data {{BLOB}} NOT NULL,"
    " UNIQUE (eid, seq));"
    "CREATE TABLE smdp_outbox ("
    " id {{ID}}, operator_id {{INT}} NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,"
    " attempts {{INT}} NOT NULL, next_try {{INT}} NOT NULL, done {{INT}} NOT NULL,"
    " created {{INT}} NOT NULL);"
    "CREATE INDEX smdp_outbox_due ON smdp_outbox(done, next_try);"
    "CREATE TABLE smdp_history ("
    " id {{ID}}, profile_id {{INT}} NOT NULL, at {{INT}} NOT NULL, event TEXT NOT NULL,"
    " detail TEXT);"
    "CREATE INDEX smdp_history_profile ON smdp_history(profile_id, id);"
    "CREATE TABLE smdp_calls ("
    " operator_id {{INT}} NOT NULL, call_id TEXT NOT NULL, function TEXT NOT NULL,"
    " response TEXT NOT NULL, PRIMARY KEY (operator_id, call_id));",
    /* 2: profile types bound with profile protection keys (digest 7.8), and
     * the SHA-256 of an operator's ES2+ bearer token */
    "ALTER TABLE smdp_profile_types ADD COLUMN ppk {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE smdp_operators ADD COLUMN token_sha256 TEXT;",
    /* 3: fewer pages written per download (docs/PERFORMANCE.md). Sessions
     * live in their key's B-tree (SQLite); closing an order no longer
     * moves it in the profile and EID indexes (their queries filter open
     * on the few rows of one profile or EID); the pick index holds only
     * Available profiles, the ones it picks from, so later state changes
     * do not touch it. */
    "DROP INDEX smdp_orders_profile;"
    "CREATE INDEX smdp_orders_profile ON smdp_orders(profile_id);"
    "DROP INDEX smdp_orders_eid;"
    "CREATE INDEX smdp_orders_eid ON smdp_orders(eid);"
    "DROP INDEX smdp_profiles_pick;"
    "CREATE INDEX smdp_profiles_pick ON smdp_profiles(type_id, id) WHERE state = 'Available';"
    "CREATE TABLE smdp_sessions_v3 ("
    " txid TEXT PRIMARY KEY, state TEXT NOT NULL, ident {{INT}} NOT NULL,"
    " euicc_challenge {{BLOB}} NOT NULL, server_challenge {{BLOB}} NOT NULL,"
    " ci_pkid {{BLOB}} NOT NULL, eid TEXT, order_id {{INT}},"
    " euicc_cert {{BLOB}}, euicc_sig1 {{BLOB}}, smdp_sig2 {{BLOB}},"
    " cc_required {{INT}} NOT NULL, created {{INT}} NOT NULL, updated {{INT}} NOT NULL)"
    " {{WITHOUT_ROWID}};"
    "INSERT INTO smdp_sessions_v3 (txid, state, ident, euicc_challenge, server_challenge,"
    " ci_pkid, eid, order_id, euicc_cert, euicc_sig1, smdp_sig2, cc_required, created, updated)"
    " SELECT txid, state, ident, euicc_challenge, server_challenge, ci_pkid, eid, order_id,"
    " euicc_cert, euicc_sig1, smdp_sig2, cc_required, created, updated FROM smdp_sessions;"
    "DROP TABLE smdp_sessions;"
    "ALTER TABLE smdp_sessions_v3 RENAME TO smdp_sessions;",
    /* 4 (ES2+ idempotency): a call is known by (operator, function,
     * functionCallIdentifier), and the SHA-256 of its request is kept so
     * that the same identifier with another request is refused (es2.c).
     * Calls recorded before have no hash and still answer a resend. */
    "CREATE TABLE smdp_calls_v4 ("
    " operator_id {{INT}} NOT NULL, function TEXT NOT NULL, call_id TEXT NOT NULL,"
    " body_sha256 TEXT, response TEXT NOT NULL,"
    " PRIMARY KEY (operator_id, function, call_id));"
    "INSERT INTO smdp_calls_v4 (operator_id, function, call_id, body_sha256, response)"
    " SELECT operator_id, function, call_id, NULL, response FROM smdp_calls;"
    "DROP TABLE smdp_calls;"
    "ALTER TABLE smdp_calls_v4 RENAME TO smdp_calls;",
    /* 5: Ki / OPc at rest only sealed under the KEK (kek.c): the package
     * keeps the template's bytes in their slots, keys_sealed the profile's
     * values (XChaCha20-Poly1305, the ICCID as associated data) and kek_id
     * the key that opens them. Rows of older schemas may hold their Ki /
     * OPc in clear in the package: marked legacy, sealed (or refused) by
     * smdp_seal_legacy when the SM-DP+ opens. */
    "ALTER TABLE smdp_profiles ADD COLUMN keys_sealed {{BLOB}};"
    "ALTER TABLE smdp_profiles ADD COLUMN kek_id TEXT;"
    "ALTER TABLE smdp_profiles ADD COLUMN legacy {{INT}} NOT NULL DEFAULT 0;"
    "UPDATE smdp_profiles SET legacy = 1;"
    "CREATE INDEX smdp_profiles_legacy ON smdp_profiles(id) WHERE legacy = 1;",
    /* 6: EUM certificates verified against a trusted CI, by SKI (es9.c
     * writes one row per distinct EUM, es2.c reads it when a PIR callback
     * needs the EUM of a session authenticated before a restart); outbox
     * calls the operator refused for good (a 4xx other than 408 / 429)
     * are marked failed with the HTTP status and never tried again. */
    "CREATE TABLE smdp_eum_certs ("
    " ski {{BLOB}} PRIMARY KEY, der {{BLOB}} NOT NULL, created {{INT}} NOT NULL);"
    "ALTER TABLE smdp_outbox ADD COLUMN failed {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE smdp_outbox ADD COLUMN last_status {{INT}};",
    /* 7: the outbox shared by several instances (es2.c): a pass leases the
     * rows it posts (lease_owner, a token of that pass; lease_until, when
     * others may take them again). The due index holds only the pending
     * rows, the few the claim and the pending count read. */
    "ALTER TABLE smdp_outbox ADD COLUMN lease_owner TEXT;"
    "ALTER TABLE smdp_outbox ADD COLUMN lease_until {{INT}};"
    "DROP INDEX smdp_outbox_due;"
    "CREATE INDEX smdp_outbox_due ON smdp_outbox(id) WHERE done = 0 AND failed = 0;",
    /* 8: what a profile type puts in the StoreMetadata besides its class
     * and PPRs (inventory.c): an icon (PNG or JPEG, <= 1024 bytes, its
     * iconType found from its bytes) and the notification configuration
     * ("EVENTS[@ADDRESS];..." as given to add-type; NULL: the default, every
     * local event to our FQDN; "none": no notificationConfigurationInfo). */
    "ALTER TABLE smdp_profile_types ADD COLUMN icon_type {{INT}};"
    "ALTER TABLE smdp_profile_types ADD COLUMN icon {{BLOB}};"
    "ALTER TABLE smdp_profile_types ADD COLUMN notif TEXT;",
    /* 9: no matchingId (an order for the default SM-DP+) is NULL, as
     * ConfirmOrder now stores it (es2.c): an empty one was stored as '',
     * and a second open default order collided with the first in the
     * unique index smdp_orders_mid. */
    "UPDATE smdp_orders SET matching_id = NULL WHERE matching_id = '';",
    /* 10: outbox rows for the SM-DSs (es12.c): kind 0 is a callback to an
     * operator, kind 1 an ES12 RegisterEvent / DeleteEvent; each kind has
     * its own sender (its own TLS client identity). */
    "ALTER TABLE smdp_outbox ADD COLUMN kind {{INT}} NOT NULL DEFAULT 0;",
    /* 11: the X-Request-Id of the ES9+ request that queued a callback
     * (es2.c), sent with it so that the operator's log shows the same id
     * as the LPA's and the SM-DP+'s (include/esim/log.h); NULL: none. */
    "ALTER TABLE smdp_outbox ADD COLUMN request_id TEXT;",
    /* 12: the order of an SM-DS row (kind 1, es12.c), so that the
     * DeleteEvent queued when an order ends drops a RegisterEvent of it not
     * yet sent, and a refused RegisterEvent is told in the order's
     * profile's history; NULL for rows queued before. */
    "ALTER TABLE smdp_outbox ADD COLUMN order_id {{INT}};",
    /* 13: the outbox's claim looks for an earlier SM-DS row of the same
     * order still to send (es2.c outbox_claim: a DeleteEvent waits for
     * its RegisterEvent) */
    "CREATE INDEX smdp_outbox_order ON smdp_outbox(order_id)"
    " WHERE done = 0 AND failed = 0;",
};

esim_err smdp_schema_migrate_upto(store *s, size_t n)
{
	size_t all = sizeof migrations / sizeof migrations[0];
	return store_migrate(s, migrations, n < all ? n : all);
}

esim_err smdp_schema_migrate(store *s)
{
	return smdp_schema_migrate_upto(s, SIZE_MAX);
}
