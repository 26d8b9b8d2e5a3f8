/*
 * The SM-DS database schema (SGP.22 3.3: event records, one per
 * (SM-DP+, eventId), each for one EID; ES11 sessions between
 * initiateAuthentication and authenticateClient). One SQL text for SQLite
 * and PostgreSQL (esim/store.h placeholders). Migrations are only ever
 * appended. No secret is stored: a session keeps its serverChallenge and
 * the CI chosen, both sent in clear to the LPA already.
 */
#include <stdint.h>

#include "smds_int.h"

static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE smds_events ("
    " id {{ID}}, eid TEXT NOT NULL, event_id TEXT NOT NULL, smdp_address TEXT NOT NULL,"
    " registered {{INT}} NOT NULL, UNIQUE (smdp_address, event_id));"
    "CREATE INDEX smds_events_eid ON smds_events(eid);"
    "CREATE TABLE smds_sessions ("
    " txid TEXT PRIMARY KEY, ident {{INT}} NOT NULL, server_challenge {{BLOB}} NOT NULL,"
    " ci_pkid {{BLOB}} NOT NULL, created {{INT}} NOT NULL) {{WITHOUT_ROWID}};",
};

esim_err smds_schema_migrate(store *s)
{
	return store_migrate(s, migrations, sizeof migrations / sizeof migrations[0]);
}
