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
 * IMSI is also kept as inventory data; Ki and OPc live only inside the
 * personalised package, and every other copy is wiped.
 */
#include <ctype.h>
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
	err = store_run(st);
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

esim_err smdp_add_profile_type(smdp *d, const struct smdp_profile_type *t)
{
	if (!d || !t || !t->name || !t->operator_name || !t->upp || !t->spn || !t->profile_name ||
	    t->profile_class < 0 || t->profile_class > 2)
		return ESIM_E_ARG;
	struct rsp_saip_info info;
	esim_err err = rsp_saip_check(t->upp, t->upp_len, &info);
	if (err != ESIM_OK)
		return err;
	store *s;
	if ((err = smdp_store_get(d, &s)) != ESIM_OK)
		return err;
	int64_t op;
	err = lookup_id(s, "SELECT id FROM smdp_operators WHERE name = ?1", t->operator_name, &op);
	store_stmt *st = NULL;
	if (err == ESIM_OK)
		err = store_prepare(
		    s,
		    "INSERT INTO smdp_profile_types (name, operator_id, template, spn,"
		    " profile_name, profile_class, ppr, ppk) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
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
		err = store_run(st);
	}
	store_finalize(st);
	smdp_store_put(d, s);
	return err;
}

/* ---- import -------------------------------------------------------------------- */

struct import_item {
	char iccid[RSP_ICCID_TEXT_MAX];
	char imsi[16];
	uint8_t ki[16], opc[16]; /* secret */
	bool has_ki, has_opc;
};

struct import_arg {
	const char *type;
	const struct import_item *items;
	size_t n;
	time_t now;
};

static esim_err import_fn(store *s, void *arg)
{
	struct import_arg *a = arg;
	store_stmt *st;
	esim_err err =
	    store_prepare(s, "SELECT id, template FROM smdp_profile_types WHERE name = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->type);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_SMDP_UNKNOWN;
	int64_t type_id = 0;
	uint8_t *tmpl = NULL;
	size_t tmpl_len = 0;
	if (err == ESIM_OK) {
		type_id = store_col_int64(st, 0);
		const uint8_t *p = store_col_blob(st, 1, &tmpl_len);
		tmpl = malloc(tmpl_len ? tmpl_len : 1);
		if (!tmpl)
			err = ESIM_E_NOMEM;
		else if (tmpl_len)
			memcpy(tmpl, p, tmpl_len);
	}
	store_finalize(st);
	if (err != ESIM_OK) {
		free(tmpl);
		return err;
	}
	store_stmt *ins = NULL;
	err = store_prepare(s,
			    "INSERT INTO smdp_profiles (iccid, imsi, type_id, state, upp, updated)"
			    " VALUES (?1, ?2, ?3, 'Available', ?4, ?5) RETURNING id",
			    &ins);
	for (size_t i = 0; err == ESIM_OK && i < a->n; i++) {
		uint8_t *upp = NULL;
		size_t upp_len = 0;
		const struct import_item *it = &a->items[i];
		err = rsp_saip_personalise_iccid(tmpl, tmpl_len, it->iccid, &upp, &upp_len);
		if (err != ESIM_OK)
			break;
		unsigned done = 0;
		err = smdp_personalise_upp(upp, upp_len, it->imsi[0] ? it->imsi : NULL,
					   it->has_ki ? it->ki : NULL, it->has_opc ? it->opc : NULL,
					   &done);
		if (err != ESIM_OK) {
			esim_wipe(upp, upp_len);
			free(upp);
			break;
		}
		char detail[200];
		snprintf(detail, sizeof detail, "%s personalised: iccid%s%s%s", a->type,
			 done & SMDP_PERS_IMSI ? " imsi" : "", done & SMDP_PERS_KI ? " ki" : "",
			 done & SMDP_PERS_OPC ? " opc" : "");
		store_reset(ins);
		store_bind_text(ins, 1, a->items[i].iccid);
		store_bind_text(ins, 2, a->items[i].imsi[0] ? a->items[i].imsi : NULL);
		store_bind_int64(ins, 3, type_id);
		store_bind_blob(ins, 4, upp, upp_len);
		store_bind_int64(ins, 5, (int64_t)a->now);
		int64_t id;
		err = store_run_id(ins, &id);
		esim_wipe(upp, upp_len);
		free(upp);
		if (err == ESIM_OK)
			err = smdp_db_history(s, id, a->now, "import", detail);
	}
	store_finalize(ins);
	free(tmpl);
	return err;
}

static esim_err import_items(smdp *d, const char *type, const struct import_item *items, size_t n)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	struct import_arg a = {type, items, n, smdp_now(d)};
	err = store_transaction(s, import_fn, &a, 0);
	smdp_store_put(d, s);
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

static bool hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (size_t i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
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
	return import_items(d, type, &it, 1);
}

/* Split one CSV line into at most 4 trimmed fields (in place). */
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

esim_err smdp_import_csv(smdp *d, const char *type, const char *csv, size_t len, size_t *count)
{
	if (!d || !type || !csv)
		return ESIM_E_ARG;
	char *text = malloc(len + 1);
	if (!text)
		return ESIM_E_NOMEM;
	memcpy(text, csv, len);
	text[len] = '\0';
	struct import_item *items = NULL;
	size_t n = 0, cap = 0;
	esim_err err = ESIM_OK;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = {0};
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == '\0' || *line == '\r')
			continue;
		if (strncasecmp(line, "iccid", 5) == 0)
			continue; /* header */
		size_t nf = csv_fields(line, f);
		if (nf < 1 || nf > 4 || !all_digits(f[0], 18, 20) ||
		    (nf >= 2 && *f[1] && !all_digits(f[1], 6, 15)) ||
		    (nf >= 3 && *f[2] && !hex32(f[2])) || (nf == 4 && *f[3] && !hex32(f[3]))) {
			err = ESIM_E_SMDP_CSV;
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct import_item *ni = realloc(items, cap * sizeof *items);
			if (!ni) {
				err = ESIM_E_NOMEM;
				break;
			}
			items = ni;
		}
		memset(&items[n], 0, sizeof items[n]);
		snprintf(items[n].iccid, sizeof items[n].iccid, "%s", f[0]);
		if (nf >= 2)
			snprintf(items[n].imsi, sizeof items[n].imsi, "%s", f[1]);
		if (nf >= 3 && *f[2]) {
			esim_hex_decode_fixed(f[2], items[n].ki, 16);
			items[n].has_ki = true;
		}
		if (nf == 4 && *f[3]) {
			esim_hex_decode_fixed(f[3], items[n].opc, 16);
			items[n].has_opc = true;
		}
		n++;
	}
	esim_wipe(text, len); /* Ki / OPc */
	free(text);
	if (err == ESIM_OK && n == 0)
		err = ESIM_E_SMDP_CSV;
	if (err == ESIM_OK)
		err = import_items(d, type, items, n);
	if (items)
		esim_wipe(items, cap * sizeof *items);
	free(items);
	if (err == ESIM_OK && count)
		*count = n;
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
	err = store_prepare(s, "SELECT upp FROM smdp_profiles WHERE iccid = ?1", &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, iccid);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && !row)
			err = ESIM_E_NOT_FOUND;
		size_t n = 0;
		const uint8_t *p = err == ESIM_OK ? store_col_blob(st, 0, &n) : NULL;
		if (err == ESIM_OK && (*upp = malloc(n ? n : 1)) == NULL)
			err = ESIM_E_NOMEM;
		if (err == ESIM_OK) {
			if (n)
				memcpy(*upp, p, n);
			*len = n;
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
