/*
 * The profile inventory of the SM-DP+ (digest 9.1): operators, profile
 * types (a SAIP template, digest 13, with the metadata the user is shown),
 * profiles personalised from a template, and the profile states with one
 * function per transition. Every transition is a conditional UPDATE inside
 * a transaction, so that two callers racing for the same profile cannot
 * both win, and each leaves a line in the ICCID's history.
 *
 * Personalisation: the ICCID is written into the ProfileHeader and EF.ICCID
 * (rsp_saip_personalise_iccid), the IMSI into EF.IMSI and Ki / OPc into the
 * akaParameter elements (personalise.c) where the template has them. The
 * IMSI is also kept as inventory data. Ki and OPc are sealed under the KEK
 * (kek.c) and written into the package only in memory when it is bound;
 * the stored package keeps the template's bytes in their slots.
 *
 * A batch is imported as a stream, one line at a time through one
 * prepared INSERT, in one transaction: memory stays flat whatever the
 * file's size, and a bad line (its number and fault reported) leaves
 * nothing of the file behind. Rekey re-seals every row under a new KEK,
 * in one transaction as well.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_saip.h"
#include "smdp_int.h"

static const char *const state_names[] = {
    "Available",  "Allocated", "Linked", "Confirmed",	"Released",
    "Downloaded", "Installed", "Error",	 "Unavailable",
};

const char *smdp_state_name(enum smdp_state s)
{
	if ((unsigned)s >= sizeof state_names / sizeof state_names[0])
		return NULL;
	return state_names[s];
}

const char *smdp_state_sql(enum smdp_state s)
{
	return smdp_state_name(s);
}

esim_err smdp_state_parse(const char *name, enum smdp_state *out)
{
	for (size_t i = 0; name && i < sizeof state_names / sizeof state_names[0]; i++)
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum smdp_state)i;
			return ESIM_OK;
		}
	return ESIM_E_NOT_FOUND;
}

esim_err smdp_db_history(store *s, int64_t profile_id, time_t now, const char *event,
			 const char *detail)
{
	/* a profile's state and its history are lasting state: a transaction
	 * that writes them commits durably even if it began lazily */
	store_make_durable(s);
	store_stmt *st;
	esim_err err = store_prepare(
	    s, "INSERT INTO smdp_history (profile_id, at, event, detail) VALUES (?1, ?2, ?3, ?4)",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, profile_id);
	store_bind_int64(st, 2, (int64_t)now);
	store_bind_text(st, 3, event);
	store_bind_text(st, 4, detail);
	/* nobody reads its result: on PostgreSQL it travels with the
	 * transaction's next statement or its COMMIT (no round trip of its own);
	 * a failure comes back from that one */
	err = store_run_at_commit(st);
	store_finalize(st);
	return err;
}

esim_err smdp_db_transition(store *s, int64_t profile_id, unsigned from_mask, enum smdp_state to,
			    time_t now, const char *why)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(s, "SELECT state FROM smdp_profiles WHERE id = ?1 {{FOR_UPDATE}}", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, profile_id);
	bool row;
	enum smdp_state cur = SMDP_AVAILABLE;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK && smdp_state_parse(store_col_text(st, 0), &cur) != ESIM_OK)
		err = ESIM_E_STORE_CORRUPT;
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!(from_mask & SMDP_BIT(cur)))
		return ESIM_E_SMDP_TRANSITION;
	err = store_prepare(s, "UPDATE smdp_profiles SET state = ?1, updated = ?2 WHERE id = ?3",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, smdp_state_sql(to));
	store_bind_int64(st, 2, (int64_t)now);
	store_bind_int64(st, 3, profile_id);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	char detail[160];
	snprintf(detail, sizeof detail, "%s -> %s%s%s", smdp_state_name(cur), smdp_state_name(to),
		 why ? ": " : "", why ? why : "");
	return smdp_db_history(s, profile_id, now, "state", detail);
}

esim_err smdp_db_transition_expect(store *s, int64_t profile_id, enum smdp_state expect,
				   unsigned from_mask, enum smdp_state to, time_t now,
				   const char *why, const char *eid, const char *lifecycle)
{
	/* One conditional UPDATE instead of SELECT ... FOR UPDATE and UPDATE:
	 * when the row is in the expected state, that state is the "from" of
	 * the history line. The condition is evaluated on the row as locked
	 * (READ COMMITTED re-checks it after waiting for a concurrent writer;
	 * SQLite's write lock covers it), so no other state slips through.
	 * Anything else takes the general path, which reads the state. */
	if (from_mask & SMDP_BIT(expect)) {
		char detail[160];
		snprintf(detail, sizeof detail, "%s -> %s%s%s", smdp_state_name(expect),
			 smdp_state_name(to), why ? ": " : "", why ? why : "");
		/* PostgreSQL: the history line in the same statement (a
		 * data-modifying WITH; its count is the history's, 1 when the
		 * profile changed), one statement fewer per transition
		 * (docs/PERFORMANCE.md); SQLite has no such WITH */
		bool pg = store_sql_dialect(s) == STORE_DIALECT_POSTGRES;
		store_stmt *st;
		esim_err err = store_prepare(
		    s,
		    pg ? "WITH u AS (UPDATE smdp_profiles SET state = ?1, updated = ?2,"
			 " eid = COALESCE(?4, eid), lifecycle = COALESCE(?6, lifecycle)"
			 " WHERE id = ?3 AND state = ?5 RETURNING id)"
			 " INSERT INTO smdp_history (profile_id, at, event, detail)"
			 " SELECT id, ?2, 'state', ?7 FROM u"
		       : "UPDATE smdp_profiles SET state = ?1, updated = ?2, eid = COALESCE(?4, "
			 "eid),"
			 " lifecycle = COALESCE(?6, lifecycle) WHERE id = ?3 AND state = ?5",
		    &st);
		if (err != ESIM_OK)
			return err;
		if (pg) {
			store_make_durable(s); /* as smdp_db_history */
			store_bind_text(st, 7, detail);
		}
		store_bind_text(st, 1, smdp_state_sql(to));
		store_bind_int64(st, 2, (int64_t)now);
		store_bind_int64(st, 3, profile_id);
		if (eid)
			store_bind_text(st, 4, eid);
		else
			store_bind_null(st, 4);
		store_bind_text(st, 5, smdp_state_sql(expect));
		if (lifecycle)
			store_bind_text(st, 6, lifecycle);
		else
			store_bind_null(st, 6);
		err = store_run(st);
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
		if (store_changes(s) == 1)
			return pg ? ESIM_OK : smdp_db_history(s, profile_id, now, "state", detail);
	}
	esim_err err = smdp_db_transition(s, profile_id, from_mask, to, now, why);
	if (err != ESIM_OK || (!eid && !lifecycle))
		return err;
	store_stmt *st;
	if ((err = store_prepare(s,
				 "UPDATE smdp_profiles SET eid = COALESCE(?1, eid),"
				 " lifecycle = COALESCE(?2, lifecycle) WHERE id = ?3",
				 &st)) != ESIM_OK)
		return err;
	if (eid)
		store_bind_text(st, 1, eid);
	else
		store_bind_null(st, 1);
	if (lifecycle)
		store_bind_text(st, 2, lifecycle);
	else
		store_bind_null(st, 2);
	store_bind_int64(st, 3, profile_id);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* ---- transitions by ICCID ----------------------------------------------------- */

struct tr_arg {
	const char *iccid;
	unsigned from;
	enum smdp_state to;
	time_t now;
};

static esim_err profile_id_by_iccid(store *s, const char *iccid, int64_t *id)
{
	store_stmt *st;
	esim_err err = store_prepare(s, "SELECT id FROM smdp_profiles WHERE iccid = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, iccid);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK)
		*id = store_col_int64(st, 0);
	store_finalize(st);
	return err;
}

static esim_err tr_fn(store *s, void *arg)
{
	struct tr_arg *a = arg;
	int64_t id;
	esim_err err = profile_id_by_iccid(s, a->iccid, &id);
	if (err != ESIM_OK)
		return err;
	return smdp_db_transition(s, id, a->from, a->to, a->now, "admin");
}

static esim_err transition(smdp *d, const char *iccid, unsigned from, enum smdp_state to)
{
	if (!d || !iccid)
		return ESIM_E_ARG;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	struct tr_arg a = {iccid, from, to, smdp_now(d)};
	err = store_transaction(s, tr_fn, &a, 0);
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_tr_allocate(smdp *d, const char *iccid)
{
	return transition(d, iccid, SMDP_BIT(SMDP_AVAILABLE), SMDP_ALLOCATED);
}

esim_err smdp_tr_link(smdp *d, const char *iccid)
{
	return transition(d, iccid, SMDP_BIT(SMDP_AVAILABLE) | SMDP_BIT(SMDP_ALLOCATED),
			  SMDP_LINKED);
}

esim_err smdp_tr_confirm(smdp *d, const char *iccid)
{
	return transition(d, iccid, SMDP_BIT(SMDP_ALLOCATED) | SMDP_BIT(SMDP_LINKED),
			  SMDP_CONFIRMED);
}

esim_err smdp_tr_release(smdp *d, const char *iccid)
{
	return transition(
	    d, iccid, SMDP_BIT(SMDP_ALLOCATED) | SMDP_BIT(SMDP_LINKED) | SMDP_BIT(SMDP_CONFIRMED),
	    SMDP_RELEASED);
}

esim_err smdp_tr_downloaded(smdp *d, const char *iccid)
{
	return transition(d, iccid, SMDP_BIT(SMDP_RELEASED) | SMDP_BIT(SMDP_DOWNLOADED),
			  SMDP_DOWNLOADED);
}

esim_err smdp_tr_installed(smdp *d, const char *iccid)
{
	return transition(d, iccid, SMDP_BIT(SMDP_DOWNLOADED), SMDP_INSTALLED);
}

esim_err smdp_tr_error(smdp *d, const char *iccid)
{
	return transition(d, iccid,
			  ~(SMDP_BIT(SMDP_INSTALLED) | SMDP_BIT(SMDP_UNAVAILABLE)) & 0x1FFu,
			  SMDP_ERROR);
}

esim_err smdp_tr_make_available(smdp *d, const char *iccid)
{
	return transition(
	    d, iccid,
	    ~(SMDP_BIT(SMDP_INSTALLED) | SMDP_BIT(SMDP_DOWNLOADED) | SMDP_BIT(SMDP_UNAVAILABLE)) &
		0x1FFu,
	    SMDP_AVAILABLE);
}

esim_err smdp_tr_make_unavailable(smdp *d, const char *iccid)
{
	return transition(d, iccid, 0x1FFu, SMDP_UNAVAILABLE);
}

/* ---- operators and profile types -------------------------------------------------- */

esim_err smdp_add_operator(smdp *d, const char *name, const uint8_t *cert_sha256,
			   const char *callback_url)
{
	if (!d || !name || !*name)
		return ESIM_E_ARG;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s,
			    "INSERT INTO smdp_operators (name, cert_sha256, callback_url, created)"
			    " VALUES (?1, ?2, ?3, ?4)",
			    &st);
	if (err == ESIM_OK) {
		char hex[65];
		store_bind_text(st, 1, name);
		if (cert_sha256) {
			smdp_sha_hex(cert_sha256, hex);
			store_bind_text(st, 2, hex);
		}
		store_bind_text(st, 3, callback_url);
		store_bind_int64(st, 4, (int64_t)smdp_now(d));
		err = store_run(st);
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_set_operator_token(smdp *d, const char *name, const char *token)
{
	if (!d || !name || (token && !*token))
		return ESIM_E_ARG;
	char hex[65];
	if (token) {
		uint8_t sha[32];
		unsigned hl = 0;
		if (EVP_Digest(token, strlen(token), sha, &hl, EVP_sha256(), NULL) != 1)
			return ESIM_E_CRYPTO_OPENSSL;
		smdp_sha_hex(sha, hex);
	}
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s, "UPDATE smdp_operators SET token_sha256 = ?1 WHERE name = ?2", &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, token ? hex : NULL);
		store_bind_text(st, 2, name);
		err = store_run(st);
		if (err == ESIM_OK && store_changes(s) != 1)
			err = ESIM_E_SMDP_UNKNOWN;
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

static esim_err lookup_id(store *s, const char *sql, const char *key, int64_t *id)
{
	store_stmt *st;
	esim_err err = store_prepare(s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, key);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_SMDP_UNKNOWN;
	if (err == ESIM_OK)
		*id = store_col_int64(st, 0);
	store_finalize(st);
	return err;
}

/* ---- profile types and their metadata ------------------------------------------- */

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t n, const char *fmt, ...)
{
	if (!why || !n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

static const char *const event_words[] = {"install", "enable", "disable", "delete"};

/* One "EVENTS[@ADDRESS]" entry into *pmo / *addr (malloc'd). */
static esim_err notif_entry(const char *e, size_t len, const char *def, uint32_t *pmo, char **addr,
			    char *why, size_t why_len)
{
	const char *at = memchr(e, '@', len);
	size_t elen = at ? (size_t)(at - e) : len;
	*pmo = 0;
	*addr = NULL;
	size_t i = 0;
	while (i < elen) {
		size_t j = i;
		while (j < elen && e[j] != ',')
			j++;
		uint32_t bit = 0;
		if (j - i == 3 && strncmp(e + i, "all", 3) == 0)
			bit = RSP_PMO_ALL_LOCAL;
		for (unsigned k = 0; k < 4 && !bit; k++)
			if (strlen(event_words[k]) == j - i &&
			    strncmp(e + i, event_words[k], j - i) == 0)
				bit = RSP_PMO(k);
		if (!bit) {
			say(why, why_len,
			    "notification configuration: '%.*s' is not an event (install, enable, "
			    "disable, delete, all)",
			    (int)(j - i), e + i);
			return ESIM_E_ARG;
		}
		if (*pmo & bit) {
			say(why, why_len, "notification configuration: '%.*s' listed twice",
			    (int)(j - i), e + i);
			return ESIM_E_ARG;
		}
		*pmo |= bit;
		i = j + 1;
	}
	if (!*pmo) {
		say(why, why_len, "notification configuration: an entry names no event");
		return ESIM_E_ARG;
	}
	const char *a = at ? at + 1 : def;
	size_t alen = at ? len - elen - 1 : (def ? strlen(def) : 0);
	if (alen == 0 || alen > RSP_ADDRESS_MAX) {
		say(why, why_len,
		    "notification configuration: the address must be 1 to %d characters, not %zu",
		    RSP_ADDRESS_MAX, alen);
		return ESIM_E_ARG;
	}
	for (size_t k = 0; k < alen; k++)
		if (!isalnum((unsigned char)a[k]) && !strchr(".-:_", a[k])) {
			say(why, why_len,
			    "notification configuration: address '%.*s' is not an FQDN[:port]",
			    (int)alen, a);
			return ESIM_E_ARG;
		}
	*addr = strndup(a, alen);
	return *addr ? ESIM_OK : ESIM_E_NOMEM;
}

static void notif_free(struct rsp_notif_config *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].address);
	free(v);
}

esim_err smdp_notif_spec_parse(const char *spec, const char *default_address,
			       struct rsp_notif_config **out, size_t *n, char *why, size_t why_len)
{
	if (!spec || !out || !n)
		return ESIM_E_ARG;
	*out = NULL;
	*n = 0;
	if (strcmp(spec, "none") == 0)
		return ESIM_OK;
	struct rsp_notif_config *v = NULL;
	size_t k = 0;
	uint32_t seen = 0;
	esim_err err = ESIM_OK;
	const char *p = spec;
	do {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		struct rsp_notif_config *g = realloc(v, (k + 1) * sizeof *v);
		if (!g) {
			err = ESIM_E_NOMEM;
			break;
		}
		v = g;
		err = notif_entry(p, len, default_address, &v[k].pmo, &v[k].address, why, why_len);
		if (err != ESIM_OK)
			break;
		k++;
		if (seen & v[k - 1].pmo) {
			say(why, why_len, "notification configuration: an event is in two entries");
			err = ESIM_E_ARG;
			break;
		}
		seen |= v[k - 1].pmo;
		p = semi ? semi + 1 : NULL;
	} while (p);
	if (err != ESIM_OK) {
		notif_free(v, k);
		return err;
	}
	*out = v;
	*n = k;
	return ESIM_OK;
}

esim_err smdp_metadata_build(const smdp *d, const struct smdp_meta_src *src, uint8_t **out,
			     size_t *out_len)
{
	if (!d || !src || !out || !out_len)
		return ESIM_E_ARG;
	struct rsp_metadata m;
	memset(&m, 0, sizeof m);
	esim_err err = rsp_iccid_to_bcd(src->iccid, m.iccid);
	if (err != ESIM_OK)
		return err;
	struct rsp_notif_config def = {RSP_PMO_ALL_LOCAL, d->fqdn};
	struct rsp_notif_config *nc = NULL;
	size_t n_nc = 0;
	if (src->notif) {
		err = smdp_notif_spec_parse(src->notif, d->fqdn, &nc, &n_nc, NULL, 0);
		if (err != ESIM_OK)
			return err;
		m.notif = nc;
		m.n_notif = n_nc;
	} else {
		m.notif = &def;
		m.n_notif = 1;
	}
	m.spn = (char *)src->spn;
	m.name = (char *)src->name;
	m.has_class = true;
	m.profile_class = (enum rsp_profile_class)src->profile_class;
	m.has_ppr = src->ppr != 0;
	m.ppr = src->ppr;
	if (src->icon && src->icon_len) {
		m.has_icon_type = true;
		m.icon_type = (enum rsp_icon_type)src->icon_type;
		m.icon = (uint8_t *)src->icon;
		m.icon_len = src->icon_len;
	}
	err = rsp_metadata_encode(&m, out, out_len);
	notif_free(nc, n_nc);
	return err;
}

/* Every field of t, checked; the icon's type in *icon_type. */
static esim_err check_type(const smdp *d, const struct smdp_profile_type *t, int *icon_type,
			   char *why, size_t why_len)
{
	if (!t->name || !*t->name || !t->operator_name || !t->upp || !t->spn || !t->profile_name) {
		say(why, why_len, "name, operator, template, SPN and profile name are required");
		return ESIM_E_ARG;
	}
	if (t->profile_class < RSP_CLASS_TEST || t->profile_class > RSP_CLASS_OPERATIONAL) {
		say(why, why_len,
		    "profile class %d: must be test (0), provisioning (1) or operational (2)",
		    t->profile_class);
		return ESIM_E_ARG;
	}
	if (t->ppr & ~(RSP_PPR1 | RSP_PPR2)) {
		say(why, why_len, "profile policy rules 0x%x: only PPR1 and PPR2 can be set",
		    (unsigned)t->ppr);
		return ESIM_E_ARG;
	}
	struct rsp_saip_info info;
	esim_err err = rsp_saip_check(t->upp, t->upp_len, &info);
	if (err != ESIM_OK) {
		say(why, why_len, "the template is not a SAIP profile package: %s",
		    esim_strerror(err));
		return err;
	}
	*icon_type = -1;
	if (t->icon || t->icon_len) {
		enum rsp_icon_type it = RSP_ICON_PNG;
		err = rsp_icon_type_of(t->icon, t->icon_len, &it);
		if (err == ESIM_E_RSP_FIELD_SIZE) {
			say(why, why_len, "icon: %zu bytes; an icon is 1 to %d bytes (SGP.22)",
			    t->icon_len, RSP_ICON_MAX);
			return err;
		}
		if (err != ESIM_OK) {
			say(why, why_len,
			    "icon: neither PNG nor JPEG (it starts %02X %02X %02X %02X; "
			    "a PNG starts 89 50 4E 47, a JPEG FF D8 FF)",
			    t->icon_len > 0 ? t->icon[0] : 0, t->icon_len > 1 ? t->icon[1] : 0,
			    t->icon_len > 2 ? t->icon[2] : 0, t->icon_len > 3 ? t->icon[3] : 0);
			return ESIM_E_ARG;
		}
		*icon_type = (int)it;
	}
	if (t->notif && strlen(t->notif) > SMDP_NOTIF_SPEC_MAX) {
		say(why, why_len, "notification configuration: longer than %d characters",
		    SMDP_NOTIF_SPEC_MAX);
		return ESIM_E_ARG;
	}
	if (t->notif) {
		struct rsp_notif_config *nc = NULL;
		size_t n = 0;
		err = smdp_notif_spec_parse(t->notif, d->fqdn, &nc, &n, why, why_len);
		notif_free(nc, n);
		if (err != ESIM_OK)
			return err;
	}
	/* the StoreMetadata a download will carry, built once now (with the
	 * template's ICCID) so that a bad SPN or name is refused here and not
	 * at every download */
	struct smdp_meta_src src = {
	    .iccid = info.iccid,
	    .spn = t->spn,
	    .name = t->profile_name,
	    .profile_class = t->profile_class,
	    .ppr = t->ppr,
	    .icon_type = *icon_type,
	    .icon = t->icon,
	    .icon_len = t->icon_len,
	    .notif = t->notif,
	};
	uint8_t *meta = NULL;
	size_t meta_len = 0;
	err = smdp_metadata_build(d, &src, &meta, &meta_len);
	free(meta);
	if (err == ESIM_E_RSP_FIELD_SIZE || err == ESIM_E_DER_BAD_UTF8) {
		say(why, why_len,
		    "SPN must be at most %d and profile name at most %d characters of UTF-8",
		    RSP_SPN_MAX, RSP_NAME_MAX);
		return err;
	}
	if (err != ESIM_OK)
		say(why, why_len, "the metadata cannot be built: %s", esim_strerror(err));
	return err;
}

esim_err smdp_add_profile_type(smdp *d, const struct smdp_profile_type *t)
{
	return smdp_add_profile_type_why(d, t, NULL, 0);
}

esim_err smdp_add_profile_type_why(smdp *d, const struct smdp_profile_type *t, char *why,
				   size_t why_len)
{
	say(why, why_len, "%s", "");
	if (!d || !t)
		return ESIM_E_ARG;
	int icon_type = -1;
	esim_err err = check_type(d, t, &icon_type, why, why_len);
	if (err != ESIM_OK)
		return err;
	store *s;
	if ((err = smdp_store_get(d, &s)) != ESIM_OK)
		return err;
	int64_t op;
	err = lookup_id(s, "SELECT id FROM smdp_operators WHERE name = ?1", t->operator_name, &op);
	if (err == ESIM_E_SMDP_UNKNOWN)
		say(why, why_len, "unknown operator '%s'", t->operator_name);
	store_stmt *st = NULL;
	if (err == ESIM_OK)
		err = store_prepare(
		    s,
		    "INSERT INTO smdp_profile_types (name, operator_id, template, spn,"
		    " profile_name, profile_class, ppr, ppk, icon_type, icon, notif)"
		    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
		    &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, t->name);
		store_bind_int64(st, 2, op);
		store_bind_blob(st, 3, t->upp, t->upp_len);
		store_bind_text(st, 4, t->spn);
		store_bind_text(st, 5, t->profile_name);
		store_bind_int64(st, 6, t->profile_class);
		store_bind_int64(st, 7, t->ppr);
		store_bind_int64(st, 8, t->ppk ? 1 : 0);
		if (icon_type >= 0) {
			store_bind_int64(st, 9, icon_type);
			store_bind_blob(st, 10, t->icon, t->icon_len);
		} else {
			store_bind_null(st, 9);
			store_bind_null(st, 10);
		}
		store_bind_text(st, 11, t->notif);
		err = store_run(st);
		if (err == ESIM_E_STORE_CONSTRAINT)
			say(why, why_len, "a profile type named '%s' exists already", t->name);
	}
	store_finalize(st);
	smdp_store_put(d, s);
	return err;
}

/* ---- import -------------------------------------------------------------------- */

/* One batch import in progress: a transaction on one connection, the
 * template read once, the INSERT prepared once and reused for every row. */
struct importer {
	smdp *d;
	store *s;
	const char *type;
	int64_t type_id;
	uint8_t *tmpl;
	size_t tmpl_len;
	unsigned slots;	  /* SMDP_PERS_KI / SMDP_PERS_OPC: the template has them */
	int64_t first_id; /* the first row of this import (0: none yet) */
	store_stmt *ins, *find;
	time_t now;
	size_t count;
	struct smdp_import_report *rep;
};

struct import_item {
	char iccid[RSP_ICCID_TEXT_MAX];
	char imsi[16];
	uint8_t ki[16], opc[16]; /* secret */
	bool has_ki, has_opc;
};

static void report(struct smdp_import_report *rep, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct smdp_import_report *rep, size_t line, const char *fmt, ...)
{
	if (!rep)
		return;
	rep->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
	va_end(ap);
}

static void importer_end(struct importer *im, bool commit, esim_err *err)
{
	store_finalize(im->ins);
	store_finalize(im->find);
	im->ins = im->find = NULL;
	if (im->tmpl)
		esim_wipe(im->tmpl, im->tmpl_len);
	free(im->tmpl);
	im->tmpl = NULL;
	if (im->s) {
		if (commit && *err == ESIM_OK)
			*err = store_commit(im->s);
		else
			store_rollback(im->s);
		smdp_store_put(im->d, im->s);
		im->s = NULL;
	}
}

static esim_err importer_begin(struct importer *im, smdp *d, const char *type,
			       struct smdp_import_report *rep)
{
	memset(im, 0, sizeof *im);
	im->d = d;
	im->type = type;
	im->rep = rep;
	im->now = smdp_now(d);
	esim_err err = smdp_store_get(d, &im->s);
	if (err != ESIM_OK)
		return err;
	if ((err = store_begin(im->s)) != ESIM_OK) {
		smdp_store_put(d, im->s);
		im->s = NULL;
		return err;
	}
	/* history and states are lasting state (smdp_db_history) */
	store_make_durable(im->s);
	store_stmt *st;
	err = store_prepare(im->s, "SELECT id, template FROM smdp_profile_types WHERE name = ?1",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, type);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row) {
		report(rep, 0, "unknown profile type '%s'", type);
		err = ESIM_E_SMDP_UNKNOWN;
	}
	if (err == ESIM_OK) {
		im->type_id = store_col_int64(st, 0);
		const uint8_t *p = store_col_blob(st, 1, &im->tmpl_len);
		im->tmpl = malloc(im->tmpl_len ? im->tmpl_len : 1);
		if (!im->tmpl)
			err = ESIM_E_NOMEM;
		else if (im->tmpl_len)
			memcpy(im->tmpl, p, im->tmpl_len);
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	/* which of Ki / OPc the template has a slot for: personalise a copy */
	uint8_t *copy = malloc(im->tmpl_len ? im->tmpl_len : 1);
	if (!copy)
		return ESIM_E_NOMEM;
	memcpy(copy, im->tmpl, im->tmpl_len);
	static const uint8_t probe[16] = {0};
	err = smdp_personalise_upp(copy, im->tmpl_len, NULL, probe, probe, &im->slots);
	free(copy);
	if (err != ESIM_OK)
		return err;
	if ((err = store_prepare(
		 im->s,
		 "INSERT INTO smdp_profiles (iccid, imsi, type_id, state, upp, updated,"
		 " keys_sealed, kek_id) VALUES (?1, ?2, ?3, 'Available', ?4, ?5, ?6, ?7)"
		 " ON CONFLICT (iccid) DO NOTHING RETURNING id",
		 &im->ins)) != ESIM_OK)
		return err;
	return store_prepare(im->s, "SELECT id FROM smdp_profiles WHERE iccid = ?1", &im->find);
}

/* A duplicate ICCID: from this import or from before it. */
static esim_err report_duplicate(struct importer *im, size_t line, const char *iccid)
{
	store_reset(im->find);
	store_bind_text(im->find, 1, iccid);
	bool row;
	esim_err err = store_step(im->find, &row);
	if (err != ESIM_OK)
		return err;
	bool here = row && im->first_id > 0 && store_col_int64(im->find, 0) >= im->first_id;
	store_reset(im->find);
	report(im->rep, line, "duplicate ICCID %s: %s", iccid,
	       here ? "already on an earlier line of this file" : "already imported");
	return ESIM_E_STORE_CONSTRAINT;
}

static esim_err import_row(struct importer *im, size_t line, const struct import_item *it)
{
	unsigned want = (it->has_ki ? SMDP_PERS_KI : 0) | (it->has_opc ? SMDP_PERS_OPC : 0);
	if (want & ~im->slots) {
		report(im->rep, line,
		       "the template of profile type '%s' has no akaParameter slot for %s:"
		       " it would be dropped",
		       im->type, want & ~im->slots & SMDP_PERS_KI ? "Ki" : "OPc");
		return ESIM_E_SMDP_CSV;
	}
	if (want && !im->d->kek.loaded) {
		report(im->rep, line,
		       "Ki / OPc given but no key-encryption key configured (kek-file):"
		       " they are never stored in clear");
		return ESIM_E_SMDP_KEK;
	}
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	esim_err err =
	    rsp_saip_personalise_iccid(im->tmpl, im->tmpl_len, it->iccid, &upp, &upp_len);
	if (err != ESIM_OK) {
		report(im->rep, line, "ICCID %s: %s", it->iccid, esim_strerror(err));
		return err;
	}
	unsigned done = 0;
	err = smdp_personalise_upp(upp, upp_len, it->imsi[0] ? it->imsi : NULL, NULL, NULL, &done);
	uint8_t sealed[SMDP_SEALED_LEN];
	if (err == ESIM_OK && want)
		err = smdp_keys_seal(&im->d->kek, it->iccid, it->has_ki ? it->ki : NULL,
				     it->has_opc ? it->opc : NULL, sealed);
	if (err == ESIM_OK) {
		store_stmt *ins = im->ins;
		store_reset(ins);
		store_bind_text(ins, 1, it->iccid);
		store_bind_text(ins, 2, it->imsi[0] ? it->imsi : NULL);
		store_bind_int64(ins, 3, im->type_id);
		store_bind_blob(ins, 4, upp, upp_len);
		store_bind_int64(ins, 5, (int64_t)im->now);
		if (want) {
			store_bind_blob(ins, 6, sealed, sizeof sealed);
			store_bind_text(ins, 7, im->d->kek.id);
		}
		bool row = false;
		err = store_step(ins, &row);
		int64_t id = row ? store_col_int64(ins, 0) : 0;
		store_reset(ins);
		if (err == ESIM_OK && !row)
			err = report_duplicate(im, line, it->iccid);
		if (err == ESIM_OK) {
			if (im->first_id == 0)
				im->first_id = id;
			char detail[200];
			snprintf(detail, sizeof detail, "%s personalised: iccid%s%s%s", im->type,
				 done & SMDP_PERS_IMSI ? " imsi" : "",
				 want & SMDP_PERS_KI ? " ki" : "",
				 want & SMDP_PERS_OPC ? " opc" : "");
			err = smdp_db_history(im->s, id, im->now, "import", detail);
		}
	}
	esim_wipe(upp, upp_len);
	free(upp);
	if (err == ESIM_OK)
		im->count++;
	else if (im->rep && im->rep->reason[0] == '\0')
		report(im->rep, line, "ICCID %s: %s", it->iccid, esim_strerror(err));
	return err;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

esim_err smdp_import_profile(smdp *d, const char *type, const char *iccid, const char *imsi)
{
	if (!d || !type || !iccid)
		return ESIM_E_ARG;
	uint8_t bcd[RSP_ICCID_LEN];
	if (rsp_iccid_to_bcd(iccid, bcd) != ESIM_OK || !all_digits(iccid, 18, 20))
		return ESIM_E_RSP_BAD_ICCID;
	if (imsi && !all_digits(imsi, 6, 15))
		return ESIM_E_ARG;
	struct import_item it;
	memset(&it, 0, sizeof it);
	snprintf(it.iccid, sizeof it.iccid, "%s", iccid);
	if (imsi)
		snprintf(it.imsi, sizeof it.imsi, "%s", imsi);
	struct importer im;
	esim_err err = importer_begin(&im, d, type, NULL);
	if (err == ESIM_OK)
		err = import_row(&im, 0, &it);
	importer_end(&im, true, &err);
	return err;
}

/* Split one CSV line into at most 4 trimmed fields (in place); 5: more. */
static size_t csv_fields(char *line, char *f[4])
{
	size_t n = 0;
	char *p = line;
	while (n < 4) {
		while (*p == ' ' || *p == '\t')
			p++;
		f[n++] = p;
		char *c = strchr(p, ',');
		char *end = c ? c : p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		if (!c) {
			*end = '\0';
			break;
		}
		*end = '\0';
		p = c + 1;
		if (n == 4)
			return 5; /* too many fields */
	}
	return n;
}

/* A 16-byte key field (Ki or OPc) of 32 hex digits; never quoted back. */
static bool key_field(struct smdp_import_report *rep, size_t line, const char *name, const char *f,
		      uint8_t out[16])
{
	size_t n = strlen(f);
	if (n != 32) {
		report(rep, line, "%s must be 32 hex digits (16 bytes), found %zu characters", name,
		       n);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)f[i])) {
			report(rep, line, "%s is not hex (character %zu)", name, i + 1);
			return false;
		}
	return esim_hex_decode_fixed(f, out, 16) == ESIM_OK;
}

/* Parse one line into *it; false with the report filled for a bad row. */
static bool parse_row(struct smdp_import_report *rep, size_t line, char *text,
		      struct import_item *it)
{
	char *f[4] = {0};
	size_t nf = csv_fields(text, f);
	memset(it, 0, sizeof *it);
	if (nf > 4) {
		report(rep, line, "more than 4 fields (ICCID,IMSI,Ki,OPc)");
		return false;
	}
	if (!all_digits(f[0], 18, 20)) {
		report(rep, line, "ICCID '%.24s' must be 18 to 20 digits", f[0]);
		return false;
	}
	if (!rsp_iccid_luhn_ok(f[0])) {
		report(rep, line, "ICCID %s: bad check digit (Luhn)", f[0]);
		return false;
	}
	snprintf(it->iccid, sizeof it->iccid, "%s", f[0]);
	if (nf >= 2 && *f[1]) {
		if (!all_digits(f[1], 6, 15)) {
			report(rep, line, "IMSI '%.20s' must be 6 to 15 digits", f[1]);
			return false;
		}
		snprintf(it->imsi, sizeof it->imsi, "%s", f[1]);
	}
	if (nf >= 3 && *f[2]) {
		if (!key_field(rep, line, "Ki", f[2], it->ki))
			return false;
		it->has_ki = true;
	}
	if (nf == 4 && *f[3]) {
		if (!key_field(rep, line, "OPc", f[3], it->opc))
			return false;
		it->has_opc = true;
	}
	return true;
}

#define IMPORT_LINE_MAX 256

esim_err smdp_import_stream(smdp *d, const char *type, FILE *in, size_t *count,
			    struct smdp_import_report *rep)
{
	if (count)
		*count = 0;
	if (rep)
		memset(rep, 0, sizeof *rep);
	if (!d || !type || !in)
		return ESIM_E_ARG;
	struct importer im;
	esim_err err = importer_begin(&im, d, type, rep);
	char buf[IMPORT_LINE_MAX]; /* may hold Ki / OPc */
	struct import_item it;	   /* secret */
	size_t line = 0;
	while (err == ESIM_OK && fgets(buf, sizeof buf, in)) {
		line++;
		size_t n = strlen(buf);
		if (n == sizeof buf - 1 && buf[n - 1] != '\n' && !feof(in)) {
			report(rep, line, "longer than %d characters", IMPORT_LINE_MAX - 2);
			err = ESIM_E_SMDP_CSV;
			break;
		}
		char *l = buf;
		while (*l == ' ' || *l == '\t')
			l++;
		l[strcspn(l, "\r\n")] = '\0';
		if (*l == '#' || *l == '\0')
			continue;
		if (strncasecmp(l, "iccid", 5) == 0)
			continue; /* header */
		if (!parse_row(rep, line, l, &it))
			err = ESIM_E_SMDP_CSV;
		else
			err = import_row(&im, line, &it);
	}
	if (err == ESIM_OK && ferror(in)) {
		report(rep, line, "read error");
		err = ESIM_E_IO;
	}
	if (err == ESIM_OK && im.count == 0) {
		report(rep, 0, "no profile in the batch");
		err = ESIM_E_SMDP_CSV;
	}
	esim_wipe(buf, sizeof buf);
	esim_wipe(&it, sizeof it);
	size_t n = im.count;
	importer_end(&im, true, &err);
	if (err == ESIM_OK && count)
		*count = n;
	return err;
}

esim_err smdp_import_csv(smdp *d, const char *type, const char *csv, size_t len, size_t *count)
{
	if (!d || !type || !csv)
		return ESIM_E_ARG;
	if (len == 0)
		return ESIM_E_SMDP_CSV;
	FILE *f = fmemopen((void *)csv, len, "r");
	if (!f)
		return ESIM_E_NOMEM;
	char iobuf[4096]; /* stdio's copy of the Ki / OPc text, wiped below */
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	struct smdp_import_report rep;
	esim_err err = smdp_import_stream(d, type, f, count, &rep);
	fclose(f);
	esim_wipe(iobuf, sizeof iobuf);
	if (err != ESIM_OK && d->log)
		smdp_logf(d, "import", "type=%s line=%zu error=\"%s\"", type, rep.line, rep.reason);
	return err;
}

/* ---- Ki / OPc at rest: legacy rows and rekey ------------------------------------ */

/* Rows from before schema 5 by id, a batch at a time. */
struct legacy_row {
	int64_t id;
	char iccid[RSP_ICCID_TEXT_MAX];
	uint8_t *upp;
	size_t len;
};

static esim_err seal_legacy_fn(store *s, void *arg)
{
	smdp *d = arg;
	store_stmt *sel = NULL, *upd = NULL;
	esim_err err = store_prepare(s,
				     "SELECT id, iccid, upp FROM smdp_profiles WHERE legacy = 1"
				     " ORDER BY id LIMIT 256",
				     &sel);
	if (err == ESIM_OK)
		err = store_prepare(
		    s,
		    "UPDATE smdp_profiles SET upp = ?1, keys_sealed = ?2, kek_id = ?3,"
		    " legacy = 0 WHERE id = ?4",
		    &upd);
	struct legacy_row rows[256];
	size_t n = 1;
	while (err == ESIM_OK && n > 0) {
		n = 0;
		bool row;
		store_reset(sel);
		while (err == ESIM_OK && (err = store_step(sel, &row)) == ESIM_OK && row) {
			struct legacy_row *r = &rows[n];
			r->id = store_col_int64(sel, 0);
			snprintf(r->iccid, sizeof r->iccid, "%s", store_col_text(sel, 1));
			const uint8_t *p = store_col_blob(sel, 2, &r->len);
			r->upp = malloc(r->len ? r->len : 1);
			if (!r->upp) {
				err = ESIM_E_NOMEM;
				break;
			}
			memcpy(r->upp, p, r->len);
			n++;
		}
		store_reset(sel);
		for (size_t i = 0; i < n; i++) {
			struct legacy_row *r = &rows[i];
			uint8_t ki[16], opc[16], sealed[SMDP_SEALED_LEN];
			unsigned found = 0;
			if (err == ESIM_OK)
				err = smdp_upp_take_keys(r->upp, r->len, ki, opc, &found);
			if (err == ESIM_OK && found)
				err = smdp_keys_seal(&d->kek, r->iccid,
						     found & SMDP_PERS_KI ? ki : NULL,
						     found & SMDP_PERS_OPC ? opc : NULL, sealed);
			if (err == ESIM_OK) {
				store_reset(upd);
				store_bind_blob(upd, 1, r->upp, r->len);
				if (found) {
					store_bind_blob(upd, 2, sealed, sizeof sealed);
					store_bind_text(upd, 3, d->kek.id);
				}
				store_bind_int64(upd, 4, r->id);
				err = store_run(upd);
			}
			esim_wipe(ki, sizeof ki);
			esim_wipe(opc, sizeof opc);
			esim_wipe(r->upp, r->len);
			free(r->upp);
		}
	}
	store_finalize(sel);
	store_finalize(upd);
	return err;
}

esim_err smdp_seal_legacy(smdp *d)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	int64_t n = 0;
	err = store_prepare(s, "SELECT COUNT(*) FROM smdp_profiles WHERE legacy = 1", &st);
	if (err == ESIM_OK) {
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && row)
			n = store_col_int64(st, 0);
		store_finalize(st);
	}
	if (err == ESIM_OK && n > 0 && !d->kek.loaded) {
		fprintf(stderr,
			"esim-smdp: the database %s holds %lld profiles imported before Ki/OPc"
			" encryption (schema 5), their Ki/OPc in clear: set kek-file (a 0600 file"
			" of 32 random bytes) and open it again to seal them\n",
			d->db_url, (long long)n);
		err = ESIM_E_SMDP_KEK;
	}
	if (err == ESIM_OK && n > 0) {
		err = store_transaction(s, seal_legacy_fn, d, 0);
		/* the cleartext is gone from the rows, not yet from the files:
		 * SQLite's free pages and WAL are rewritten by VACUUM and a
		 * truncating checkpoint, PostgreSQL's table by VACUUM FULL */
		if (err == ESIM_OK)
			err = store_exec(s, store_sql_dialect(s) == STORE_DIALECT_SQLITE
						? "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);"
						: "VACUUM FULL smdp_profiles");
		smdp_logf(d, "kek", "legacy_sealed=%lld", (long long)n);
	}
	smdp_store_put(d, s);
	return err;
}

struct rekey_arg {
	smdp *d;
	const struct smdp_kek *nk;
	size_t count;
};

static esim_err rekey_fn(store *s, void *arg)
{
	struct rekey_arg *a = arg;
	a->count = 0;
	store_stmt *sel = NULL, *upd = NULL;
	esim_err err = store_prepare(s,
				     "SELECT id, iccid, keys_sealed, kek_id FROM smdp_profiles"
				     " WHERE keys_sealed IS NOT NULL AND kek_id <> ?1 AND id > ?2"
				     " ORDER BY id LIMIT 512",
				     &sel);
	if (err == ESIM_OK)
		err = store_prepare(
		    s, "UPDATE smdp_profiles SET keys_sealed = ?1, kek_id = ?2 WHERE id = ?3",
		    &upd);
	int64_t last = 0;
	bool more = true;
	while (err == ESIM_OK && more) {
		struct {
			int64_t id;
			char iccid[RSP_ICCID_TEXT_MAX];
			uint8_t sealed[SMDP_SEALED_LEN];
		} rows[512];
		size_t n = 0;
		bool row;
		store_reset(sel);
		store_bind_text(sel, 1, a->nk->id);
		store_bind_int64(sel, 2, last);
		while ((err = store_step(sel, &row)) == ESIM_OK && row) {
			size_t len = 0;
			const uint8_t *p = store_col_blob(sel, 2, &len);
			const char *kid = store_col_text(sel, 3);
			rows[n].id = store_col_int64(sel, 0);
			snprintf(rows[n].iccid, sizeof rows[n].iccid, "%s", store_col_text(sel, 1));
			if (!kid || strcmp(kid, a->d->kek.id) != 0) {
				fprintf(stderr,
					"esim-smdp: rekey: profile %s is sealed under KEK %s, not"
					" under the configured one (%s)\n",
					rows[n].iccid, kid ? kid : "?", a->d->kek.id);
				err = ESIM_E_SMDP_KEK;
				break;
			}
			if (len != SMDP_SEALED_LEN) {
				err = ESIM_E_STORE_CORRUPT;
				break;
			}
			memcpy(rows[n].sealed, p, len);
			n++;
		}
		store_reset(sel);
		more = n == 512;
		for (size_t i = 0; err == ESIM_OK && i < n; i++) {
			uint8_t ki[16], opc[16];
			unsigned which = 0;
			err = smdp_keys_open(&a->d->kek, rows[i].iccid, rows[i].sealed,
					     SMDP_SEALED_LEN, ki, opc, &which);
			if (err == ESIM_OK)
				err = smdp_keys_seal(
				    a->nk, rows[i].iccid, which & SMDP_PERS_KI ? ki : NULL,
				    which & SMDP_PERS_OPC ? opc : NULL, rows[i].sealed);
			esim_wipe(ki, sizeof ki);
			esim_wipe(opc, sizeof opc);
			if (err == ESIM_E_SMDP_KEK)
				fprintf(stderr,
					"esim-smdp: rekey: the configured KEK does not open the"
					" Ki/OPc of profile %s\n",
					rows[i].iccid);
			if (err == ESIM_OK) {
				store_reset(upd);
				store_bind_blob(upd, 1, rows[i].sealed, SMDP_SEALED_LEN);
				store_bind_text(upd, 2, a->nk->id);
				store_bind_int64(upd, 3, rows[i].id);
				err = store_run(upd);
			}
			last = rows[i].id;
			a->count++;
		}
	}
	store_finalize(sel);
	store_finalize(upd);
	return err;
}

esim_err smdp_rekey(smdp *d, const char *new_kek_file, size_t *count)
{
	if (!d || !new_kek_file)
		return ESIM_E_ARG;
	struct smdp_kek nk;
	esim_err err = smdp_kek_load(new_kek_file, &nk);
	if (err != ESIM_OK)
		return err;
	if (!d->kek.loaded) {
		fprintf(stderr, "esim-smdp: rekey needs the current KEK (kek-file) to open the"
				" Ki/OPc sealed under it\n");
		smdp_kek_clear(&nk);
		return ESIM_E_SMDP_KEK;
	}
	store *s;
	if ((err = smdp_store_get(d, &s)) != ESIM_OK) {
		smdp_kek_clear(&nk);
		return err;
	}
	struct rekey_arg a = {d, &nk, 0};
	err = store_transaction(s, rekey_fn, &a, 0);
	smdp_store_put(d, s);
	if (err == ESIM_OK) {
		smdp_kek_clear(&d->kek);
		d->kek = nk; /* this handle goes on with the new key */
		smdp_logf(d, "kek", "rekey rows=%zu kek_id=%s", a.count, nk.id);
		if (count)
			*count = a.count;
	}
	smdp_kek_clear(&nk);
	return err;
}

/* ---- queries -------------------------------------------------------------------- */

esim_err smdp_profile_upp(smdp *d, const char *iccid, uint8_t **upp, size_t *len)
{
	if (!d || !iccid || !upp || !len)
		return ESIM_E_ARG;
	*upp = NULL;
	*len = 0;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(
	    s, "SELECT upp, keys_sealed, kek_id FROM smdp_profiles WHERE iccid = ?1", &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, iccid);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && !row)
			err = ESIM_E_NOT_FOUND;
		size_t n = 0, sn = 0;
		const uint8_t *p = err == ESIM_OK ? store_col_blob(st, 0, &n) : NULL;
		if (err == ESIM_OK && (*upp = malloc(n ? n : 1)) == NULL)
			err = ESIM_E_NOMEM;
		if (err == ESIM_OK) {
			if (n)
				memcpy(*upp, p, n);
			*len = n;
			/* the profile's own Ki / OPc, opened in memory only */
			const uint8_t *sealed = store_col_blob(st, 1, &sn);
			err = smdp_keys_apply(d, iccid, sealed, sn, store_col_text(st, 2), *upp, n);
			if (err != ESIM_OK) {
				esim_wipe(*upp, n);
				free(*upp);
				*upp = NULL;
				*len = 0;
			}
		}
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_profile_state(smdp *d, const char *iccid, enum smdp_state *out)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s, "SELECT state FROM smdp_profiles WHERE iccid = ?1", &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, iccid);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && !row)
			err = ESIM_E_NOT_FOUND;
		if (err == ESIM_OK)
			err = smdp_state_parse(store_col_text(st, 0), out);
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_count_state(smdp *d, const char *type, enum smdp_state state, size_t *out)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s,
			    "SELECT COUNT(*) FROM smdp_profiles p JOIN smdp_profile_types t"
			    " ON t.id = p.type_id WHERE t.name = ?1 AND p.state = ?2",
			    &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, type);
		store_bind_text(st, 2, smdp_state_sql(state));
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK)
			*out = (size_t)store_col_int64(st, 0);
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_iccid_history(smdp *d, const char *iccid, char **out)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	esim_buf b = ESIM_BUF_INIT;
	err =
	    store_prepare(s,
			  "SELECT h.at, h.event, h.detail FROM smdp_history h JOIN smdp_profiles p"
			  " ON p.id = h.profile_id WHERE p.iccid = ?1 ORDER BY h.id",
			  &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, iccid);
		bool row, any = false;
		while ((err = store_step(st, &row)) == ESIM_OK && row) {
			char line[400];
			const char *det = store_col_text(st, 2);
			int n = snprintf(line, sizeof line, "%lld %s %s\n",
					 (long long)store_col_int64(st, 0), store_col_text(st, 1),
					 det ? det : "");
			if (n > 0)
				esim_buf_append(&b, line,
						(size_t)n < sizeof line ? (size_t)n
									: sizeof line - 1);
			any = true;
		}
		if (err == ESIM_OK && !any)
			err = ESIM_E_NOT_FOUND;
		store_finalize(st);
	}
	smdp_store_put(d, s);
	if (err == ESIM_OK && esim_buf_append_byte(&b, 0) == ESIM_OK) {
		*out = (char *)b.data;
		return ESIM_OK;
	}
	esim_buf_free(&b);
	return err != ESIM_OK ? err : ESIM_E_NOMEM;
}
