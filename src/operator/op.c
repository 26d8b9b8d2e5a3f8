/*
 * The operator service's handle and its data: the schema (SQLite and
 * PostgreSQL through store), passwords (argon2id), the hash-chained audit
 * log with its signed head, contacts with one-time verification references
 * and the notices outbox (maildir e-mail, SMS rows). This is the operator
 * side of SGP.22's ES2+ relationship; the profile itself lives at the
 * SM-DP+ and on the eUICC.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "esim/crypto.h"
#include "op_int.h"

/* ES2+ call identifiers are remembered this long (op_tick prunes; setting
 * es2_call_retention_days). */
#define OP_ES2_CALL_RETENTION_DAYS 30

static const char *const migrations[] = {
    "CREATE TABLE op_customers (id {{ID}}, login TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL,"
    " name TEXT NOT NULL, address TEXT NOT NULL, account TEXT NOT NULL);"
    "CREATE TABLE op_staff (id {{ID}}, login TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL,"
    " role TEXT NOT NULL);"
    "CREATE TABLE op_lines (id {{ID}}, customer_id {{INT}} NOT NULL, msisdn TEXT NOT NULL,"
    " iccid TEXT, plan TEXT NOT NULL, monthly_cents {{INT}} NOT NULL, state TEXT NOT NULL,"
    " matching_id TEXT, downloaded {{INT}} NOT NULL DEFAULT 0, eid TEXT);"
    "CREATE TABLE op_invoices (id {{ID}}, customer_id {{INT}} NOT NULL, number TEXT NOT NULL,"
    " period TEXT NOT NULL, amount_cents {{INT}} NOT NULL, due TEXT NOT NULL,"
    " status TEXT NOT NULL, paid_at {{INT}});"
    "CREATE TABLE op_payments (id {{ID}}, invoice_id {{INT}} NOT NULL, amount_cents {{INT}},"
    " reference TEXT NOT NULL, at {{INT}} NOT NULL);"
    "CREATE TABLE op_usage (id {{ID}}, line_id {{INT}} NOT NULL, kind TEXT NOT NULL,"
    " amount {{INT}} NOT NULL, unit TEXT NOT NULL, at {{INT}} NOT NULL);"
    "CREATE TABLE op_equipment (id {{ID}}, line_id {{INT}} NOT NULL, item TEXT NOT NULL,"
    " return_by TEXT);"
    "CREATE TABLE op_cases (id {{ID}}, customer_id {{INT}} NOT NULL, line_id {{INT}} NOT NULL,"
    " state TEXT NOT NULL, reason TEXT NOT NULL, doc_type TEXT NOT NULL, doc_number TEXT NOT NULL,"
    " doc_sha256 TEXT NOT NULL, doc_mime TEXT, doc_cipher {{BLOB}}, doc_nonce {{BLOB}},"
    " info_request TEXT, decision_note TEXT, created {{INT}} NOT NULL, updated {{INT}} NOT NULL,"
    " closed {{INT}}, deletion_due {{INT}}, reminded {{INT}} NOT NULL DEFAULT 0,"
    " proof {{BLOB}}, proof_eid TEXT);"
    "CREATE TABLE op_identity_checks (id {{ID}}, case_id {{INT}} NOT NULL, doc_type TEXT,"
    " doc_number TEXT, doc_sha256 TEXT, actor TEXT NOT NULL, result TEXT NOT NULL,"
    " at {{INT}} NOT NULL);"
    "CREATE TABLE op_case_events (id {{ID}}, case_id {{INT}} NOT NULL, at {{INT}} NOT NULL,"
    " state TEXT NOT NULL, actor TEXT NOT NULL, note TEXT, reference TEXT);"
    "CREATE TABLE op_contacts (id {{ID}}, reference TEXT NOT NULL UNIQUE,"
    " customer_id {{INT}} NOT NULL, channel TEXT NOT NULL, purpose TEXT NOT NULL,"
    " at {{INT}} NOT NULL);"
    "CREATE TABLE op_notices (id {{ID}}, customer_id {{INT}} NOT NULL, channel TEXT NOT NULL,"
    " recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, reference TEXT,"
    " at {{INT}} NOT NULL, sent {{INT}} NOT NULL DEFAULT 0);"
    "CREATE TABLE op_audit (id {{ID}}, at {{INT}} NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE op_audit_head (id {{INT}} PRIMARY KEY, count {{INT}} NOT NULL,"
    " hash TEXT NOT NULL, sig {{BLOB}});"
    "CREATE TABLE op_sessions (token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL,"
    " principal {{INT}} NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,"
    " expires {{INT}} NOT NULL);"
    "CREATE TABLE op_login_fail (k TEXT PRIMARY KEY, count {{INT}} NOT NULL,"
    " first_at {{INT}} NOT NULL, locked_until {{INT}} NOT NULL, lockouts {{INT}} NOT NULL);"
    "CREATE TABLE op_settings (k TEXT PRIMARY KEY, v {{INT}} NOT NULL);",
    /* 2: a random key per identity copy, wrapped under the data key, in its
     * own row: deleting the row at close makes every leftover ciphertext
     * unreadable (document.c) */
    "CREATE TABLE op_case_keys (case_id {{INT}} PRIMARY KEY, wrapped {{BLOB}} NOT NULL,"
    " nonce {{BLOB}} NOT NULL);",
    /* 3: the SM-DP+'s ES2+ callbacks (callback.c): the call identifiers
     * answered (a resent call gets its first answer; pruned by op_tick
     * after es2_call_retention_days) and the notifications applied, by EID
     * and seqNumber. IF NOT EXISTS: before this migration callback.c made
     * them itself when its listener started, so older databases may have
     * them already (same columns). */
    "CREATE TABLE IF NOT EXISTS op_es2_calls (call_id TEXT PRIMARY KEY,"
    " body_sha256 TEXT NOT NULL, status {{INT}} NOT NULL, at {{INT}} NOT NULL);"
    "CREATE INDEX IF NOT EXISTS op_es2_calls_at ON op_es2_calls (at);"
    "CREATE TABLE IF NOT EXISTS op_es2_notifications (eid TEXT NOT NULL, seq {{INT}} NOT NULL,"
    " point {{INT}} NOT NULL, iccid TEXT NOT NULL, at {{INT}} NOT NULL, PRIMARY KEY (eid, seq));",
    /* 4: the language the customer reads (en, nl, fr, zh; NULL: never chosen,
     * English), for the portal and that customer's notices */
    "ALTER TABLE op_customers ADD COLUMN lang TEXT;",
    /* 5: charging (charging.c): each plan's price per unit by kind, home
     * or roaming ('*' is every plan without rows of its own; 0 is
     * included, not chargeable); per line the customer's monthly and
     * roaming caps (cents, NULL: none), the stop switch, the contract's
     * notice period and final-invoice policy; usage records rated with
     * the charging system's own record id (a resend is counted once) and
     * refused ones kept visible; the 80%/100% notices sent, once per line,
     * month, cap and threshold. Leased equipment's return reference and
     * receipt. The call-back verifications of assisted intake (intake.c).
     * The notices' mail outbox (mail.c): attempts, next try, claim, last
     * error. */
    "CREATE TABLE op_rates (plan TEXT NOT NULL, kind TEXT NOT NULL, roaming {{INT}} NOT NULL,"
    " unit TEXT NOT NULL, cents_per_unit {{INT}} NOT NULL, PRIMARY KEY (plan, kind, roaming));"
    "INSERT INTO op_rates VALUES ('*', 'data', 0, 'MB', 0), ('*', 'data', 1, 'MB', 2),"
    " ('*', 'voice', 0, 'min', 2), ('*', 'voice', 1, 'min', 30), ('*', 'sms', 0, 'sms', 5),"
    " ('*', 'sms', 1, 'sms', 15);"
    "ALTER TABLE op_lines ADD COLUMN cap_cents {{INT}};"
    "ALTER TABLE op_lines ADD COLUMN roaming_cap_cents {{INT}};"
    "ALTER TABLE op_lines ADD COLUMN services_stopped {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_lines ADD COLUMN notice_days {{INT}} NOT NULL DEFAULT 30;"
    "ALTER TABLE op_lines ADD COLUMN final_policy TEXT NOT NULL DEFAULT 'prorated';"
    "ALTER TABLE op_usage ADD COLUMN record_id TEXT;"
    "ALTER TABLE op_usage ADD COLUMN roaming {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_usage ADD COLUMN cents {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_usage ADD COLUMN status TEXT NOT NULL DEFAULT 'rated';"
    "ALTER TABLE op_usage ADD COLUMN reason TEXT;"
    "ALTER TABLE op_usage ADD COLUMN body_sha256 TEXT;"
    "CREATE UNIQUE INDEX op_usage_record ON op_usage (record_id);"
    "CREATE TABLE op_usage_alerts (line_id {{INT}} NOT NULL, month TEXT NOT NULL,"
    " cap TEXT NOT NULL, pct {{INT}} NOT NULL, at {{INT}} NOT NULL, reference TEXT,"
    " PRIMARY KEY (line_id, month, cap, pct));"
    "ALTER TABLE op_equipment ADD COLUMN return_ref TEXT;"
    "ALTER TABLE op_equipment ADD COLUMN received {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_equipment ADD COLUMN received_at {{INT}};"
    "CREATE TABLE op_intake (id {{ID}}, customer_id {{INT}} NOT NULL, staff TEXT NOT NULL,"
    " channel TEXT NOT NULL, code_hash TEXT NOT NULL, created {{INT}} NOT NULL,"
    " expires {{INT}} NOT NULL, attempts {{INT}} NOT NULL DEFAULT 0, state TEXT NOT NULL,"
    " notice_ref TEXT, case_id {{INT}});"
    "ALTER TABLE op_notices ADD COLUMN attempts {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_notices ADD COLUMN next_at {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_notices ADD COLUMN claimed_until {{INT}} NOT NULL DEFAULT 0;"
    "ALTER TABLE op_notices ADD COLUMN last_error TEXT;"
    "ALTER TABLE op_notices ADD COLUMN sent_at {{INT}};",
};

/* ---- languages ---------------------------------------------------------------- */

static const char *const op_langs[4] = {"en", "nl", "fr", "zh"};

static int lang_index(const char *lang)
{
	for (int i = 0; lang && i < 4; i++)
		if (!strcmp(lang, op_langs[i]))
			return i;
	return -1;
}

bool op_lang_valid(const char *lang)
{
	return lang_index(lang) >= 0;
}

/* web_dir/i18n/LANG.json, else the source tree's (a test's web_dir may
 * hold no catalogue). Missing: NULL, and op_tr falls back to English;
 * present but not a JSON object of strings: ESIM_E_OP_CONFIG, named on
 * stderr. */
static esim_err load_catalogue(const char *dir, const char *lang, json_t **out)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/i18n/%s.json", dir, lang);
	if (access(path, R_OK) != 0)
		return ESIM_OK;
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	bool ok = json_is_object(j);
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) ok = ok && json_is_string(v);
	if (!ok) {
		fprintf(stderr, "esim-operator: catalogue %s: %s\n", path,
			j ? "every value must be a string" : je.text);
		json_decref(j);
		return ESIM_E_OP_CONFIG;
	}
	*out = j;
	return ESIM_OK;
}

static esim_err load_catalogues(op *o)
{
	esim_err err = ESIM_OK;
	for (int i = 0; err == ESIM_OK && i < 4; i++) {
		err = load_catalogue(o->web_dir, op_langs[i], &o->cat[i]);
#ifdef ESIM_OPERATOR_WEB_DIR
		if (err == ESIM_OK && !o->cat[i])
			err = load_catalogue(ESIM_OPERATOR_WEB_DIR, op_langs[i], &o->cat[i]);
#endif
	}
	return err;
}

const char *op_tr(const op *o, const char *lang, const char *key, const char *en)
{
	int i = lang_index(lang);
	const char *s = i >= 0 ? json_string_value(json_object_get(o->cat[i], key)) : NULL;
	if (!s || !*s)
		s = json_string_value(json_object_get(o->cat[0], key));
	return s && *s ? s : en;
}

void op_fill(char *out, size_t n, const char *tpl, ...)
{
	size_t w = 0;
	if (!n)
		return;
	for (const char *p = tpl; *p && w + 1 < n;) {
		const char *val = NULL;
		size_t kl = 0;
		if (*p == '{') {
			const char *e = strchr(p + 1, '}');
			kl = e ? (size_t)(e - p - 1) : 0;
			va_list ap;
			va_start(ap, tpl);
			for (const char *name; kl && (name = va_arg(ap, const char *)) != NULL;) {
				const char *v = va_arg(ap, const char *);
				if (strlen(name) == kl && !strncmp(name, p + 1, kl)) {
					val = v ? v : "";
					break;
				}
			}
			va_end(ap);
		}
		if (val) {
			size_t vl = strlen(val);
			if (vl > n - 1 - w)
				vl = n - 1 - w;
			memcpy(out + w, val, vl);
			w += vl;
			p += kl + 2;
		} else {
			out[w++] = *p++;
		}
	}
	out[w] = '\0';
}

esim_err op_customer_lang(op *o, int64_t customer_id, char lang[4])
{
	store_stmt *st;
	snprintf(lang, 4, "en");
	esim_err err = store_prepare(o->s, "SELECT lang FROM op_customers WHERE id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, customer_id);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row && op_lang_valid(store_col_text(st, 0)))
		snprintf(lang, 4, "%s", store_col_text(st, 0));
	store_finalize(st);
	return err;
}

/* "fr-BE,fr;q=0.9,en;q=0.5": the highest q among the four languages by
 * their primary subtag (any zh-* reads Simplified Chinese, the only
 * Chinese written); ties go to the earlier entry. */
const char *op_lang_negotiate(const char *al)
{
	const char *best = "en";
	double best_q = 0;
	for (const char *p = al; p && *p;) {
		size_t n = strcspn(p, ",");
		char item[64];
		snprintf(item, sizeof item, "%.*s", (int)(n < 63 ? n : 63), p);
		char *semi = strchr(item, ';');
		double q = 1;
		if (semi) {
			*semi = '\0';
			const char *qs = strstr(semi + 1, "q=");
			if (qs)
				q = strtod(qs + 2, NULL);
		}
		const char *t = item;
		while (*t == ' ' || *t == '\t')
			t++;
		char prim[4] = "";
		if (strcspn(t, "-_ \t") == 2) {
			prim[0] = (char)(t[0] | 0x20);
			prim[1] = (char)(t[1] | 0x20);
		}
		int i = lang_index(prim);
		if (i >= 0 && q > best_q) {
			best = op_langs[i];
			best_q = q;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return best;
}

time_t op_now(op *o)
{
	return o->now ? o->now(o->now_arg) : time(NULL);
}

void op_iso_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

esim_err op_prep(op *o, const char *sql, store_stmt **st)
{
	return store_prepare(o->s, sql, st);
}

int64_t op_query_int(op *o, const char *sql, int64_t arg, int64_t def)
{
	store_stmt *st;
	if (store_prepare(o->s, sql, &st) != ESIM_OK)
		return def;
	store_bind_int64(st, 1, arg);
	bool row = false;
	int64_t v = def;
	if (store_step(st, &row) == ESIM_OK && row && !store_col_is_null(st, 0))
		v = store_col_int64(st, 0);
	store_finalize(st);
	return v;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The data key that wraps every per-case key: read from path (a secret
 * file: this user's, mode 0600 or stricter), or made and written there
 * (created 0600, never over an existing file) when there is none yet.
 * Without a path it lives only as long as the process (tests, demos). */
static esim_err load_data_key(op *o, const char *path)
{
	if (!path) {
		randombytes_buf(o->data_key, sizeof o->data_key);
		return ESIM_OK;
	}
	uint8_t *p = NULL;
	size_t n = 0;
	char why[600];
	esim_err err = esim_read_secret_file(path, 64, &p, &n, why, sizeof why);
	if (err == ESIM_OK) {
		err = n == sizeof o->data_key ? ESIM_OK : ESIM_E_OP_CONFIG;
		if (err == ESIM_OK)
			memcpy(o->data_key, p, n);
		else
			fprintf(stderr, "esim-operator: data key %s must hold %zu bytes\n", path,
				sizeof o->data_key);
		esim_wipe(p, n);
		free(p);
		return err;
	}
	if (err != ESIM_E_IO || access(path, F_OK) == 0) {
		fprintf(stderr, "esim-operator: data key %s\n", why);
		return err;
	}
	randombytes_buf(o->data_key, sizeof o->data_key);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "esim-operator: cannot create data key %s: %s\n", path,
			strerror(errno));
		return ESIM_E_IO;
	}
	ssize_t w = write(fd, o->data_key, sizeof o->data_key);
	bool ok = w == (ssize_t)sizeof o->data_key && fsync(fd) == 0;
	return close(fd) == 0 && ok ? ESIM_OK : ESIM_E_IO;
}

/* The SMTP settings; the password from its secret file (trailing newline
 * dropped), kept only in memory and wiped at op_close. */
static esim_err load_smtp(op *o, const struct op_config *cfg)
{
	o->smtp_host = strdup(cfg->smtp_host);
	o->smtp_port = cfg->smtp_port ? cfg->smtp_port : 587;
	o->smtp_user = dup_or_null(cfg->smtp_user);
	o->smtp_from =
	    strdup(cfg->smtp_from && *cfg->smtp_from ? cfg->smtp_from : "care@operator.example");
	o->smtp_ca = dup_or_null(cfg->smtp_ca);
	if (!o->smtp_host || !o->smtp_from)
		return ESIM_E_NOMEM;
	if (strpbrk(o->smtp_from, "\r\n<> ") || (o->smtp_user && strpbrk(o->smtp_user, "\r\n"))) {
		fprintf(stderr, "esim-operator: smtp-from and smtp-user must be one plain line\n");
		return ESIM_E_OP_CONFIG;
	}
	if (!cfg->smtp_user)
		return ESIM_OK;
	if (!cfg->smtp_password_file) {
		fprintf(stderr, "esim-operator: smtp-user needs smtp-password-file\n");
		return ESIM_E_OP_CONFIG;
	}
	uint8_t *p = NULL;
	size_t n = 0;
	char why[600];
	esim_err err =
	    esim_read_secret_file(cfg->smtp_password_file, 1024, &p, &n, why, sizeof why);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-operator: smtp password %s\n", why);
		return err;
	}
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		p[--n] = 0;
	o->smtp_pass = malloc(n + 1);
	if (o->smtp_pass) {
		memcpy(o->smtp_pass, p, n);
		o->smtp_pass[n] = '\0';
		o->smtp_pass_len = n + 1;
	}
	esim_wipe(p, n);
	free(p);
	return o->smtp_pass ? ESIM_OK : ESIM_E_NOMEM;
}

esim_err op_open(const struct op_config *cfg, op **out)
{
	*out = NULL;
	if (!cfg || !cfg->db)
		return ESIM_E_ARG;
	if (sodium_init() < 0)
		return ESIM_E_INTERNAL;
	op *o = calloc(1, sizeof *o);
	if (!o)
		return ESIM_E_NOMEM;
	pthread_mutex_init(&o->lock, NULL);
#ifdef ESIM_OPERATOR_WEB_DIR
	const char *web = cfg->web_dir ? cfg->web_dir : ESIM_OPERATOR_WEB_DIR;
#else
	const char *web = cfg->web_dir ? cfg->web_dir : "web";
#endif
	o->web_dir = strdup(web);
	o->maildir = dup_or_null(cfg->maildir);
	o->smdp_url = dup_or_null(cfg->smdp_url);
	o->smdp_ca = dup_or_null(cfg->smdp_ca);
	o->cert_file = dup_or_null(cfg->cert_file);
	o->key_file = dup_or_null(cfg->key_file);
	o->name = strdup(cfg->name ? cfg->name : "ACME");
	o->ptype = strdup(cfg->profile_type ? cfg->profile_type : "STD");
	o->fast_hash = cfg->fast_hash;
	o->now = cfg->now;
	o->now_arg = cfg->now_arg;
	esim_err err = o->web_dir && o->name && o->ptype ? ESIM_OK : ESIM_E_NOMEM;
	if (err == ESIM_OK && cfg->key_file)
		err = crypto_key_load_private_file(cfg->key_file, &o->key);
	if (err == ESIM_OK && cfg->cert_file)
		err = crypto_cert_load_file(cfg->cert_file, &o->cert);
	if (err == ESIM_OK && cfg->ci_file) {
		err = crypto_trust_new(&o->trust);
		char *list = strdup(cfg->ci_file), *save = NULL;
		if (!list)
			err = ESIM_E_NOMEM;
		for (char *t = list ? strtok_r(list, ",", &save) : NULL; err == ESIM_OK && t;
		     t = strtok_r(NULL, ",", &save))
			err = crypto_trust_add_ci_file(o->trust, t);
		free(list);
	}
	if (err == ESIM_OK)
		err = load_catalogues(o);
	if (err == ESIM_OK)
		err = load_data_key(o, cfg->data_key_file);
	if (err == ESIM_OK && cfg->smtp_host)
		err = load_smtp(o, cfg);
	if (err == ESIM_OK)
		err = store_open(cfg->db, &o->s);
	/* erased rows and pages are overwritten with zeros, not just unlinked */
	if (err == ESIM_OK && store_sql_dialect(o->s) == STORE_DIALECT_SQLITE)
		err = store_exec(o->s, "PRAGMA secure_delete=ON;");
	if (err == ESIM_OK)
		err = store_migrate(o->s, migrations, sizeof migrations / sizeof migrations[0]);
	if (err != ESIM_OK) {
		op_close(o);
		return err;
	}
	*out = o;
	return ESIM_OK;
}

void op_set_log(op *o, const esim_log *log)
{
	o->log = log;
}

void op_close(op *o)
{
	if (!o)
		return;
	store_close(o->s);
	EVP_PKEY_free(o->key);
	crypto_cert_free(o->cert);
	crypto_trust_free(o->trust);
	esim_wipe(o->data_key, sizeof o->data_key);
	if (o->smtp_pass)
		esim_wipe(o->smtp_pass, o->smtp_pass_len);
	free(o->smtp_pass);
	free(o->smtp_host);
	free(o->smtp_user);
	free(o->smtp_from);
	free(o->smtp_ca);
	free(o->web_dir);
	free(o->maildir);
	free(o->smdp_url);
	free(o->smdp_ca);
	free(o->cert_file);
	free(o->key_file);
	free(o->name);
	free(o->ptype);
	for (int i = 0; i < 4; i++)
		json_decref(o->cat[i]);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

/* ---- passwords ------------------------------------------------------------ */

esim_err op_password_hash(op *o, const char *password, char **out)
{
	char h[crypto_pwhash_STRBYTES];
	unsigned long long ops =
	    o->fast_hash ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = o->fast_hash ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE;
	if (crypto_pwhash_str(h, password, strlen(password), ops, mem) != 0)
		return ESIM_E_NOMEM;
	*out = strdup(h);
	return *out ? ESIM_OK : ESIM_E_NOMEM;
}

/* ---- settings ------------------------------------------------------------- */

int64_t op_setting(op *o, const char *key, int64_t def)
{
	store_stmt *st;
	if (store_prepare(o->s, "SELECT v FROM op_settings WHERE k = ?1", &st) != ESIM_OK)
		return def;
	store_bind_text(st, 1, key);
	bool row = false;
	int64_t v = def;
	if (store_step(st, &row) == ESIM_OK && row)
		v = store_col_int64(st, 0);
	store_finalize(st);
	return v;
}

static esim_err set_setting_locked(op *o, const char *key, int64_t value)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, "DELETE FROM op_settings WHERE k = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, key);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = store_prepare(o->s, "INSERT INTO op_settings (k, v) VALUES (?1, ?2)", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, key);
	store_bind_int64(st, 2, value);
	err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err op_set_setting(op *o, const char *key, int64_t value)
{
	pthread_mutex_lock(&o->lock);
	esim_err err = store_begin(o->s);
	if (err == ESIM_OK) {
		err = set_setting_locked(o, key, value);
		char d[160];
		snprintf(d, sizeof d, "{\"key\":\"%s\",\"value\":%lld}", key, (long long)value);
		if (err == ESIM_OK)
			err = op_audit(o, "admin-cli", "setting", d);
		if (err == ESIM_OK)
			err = store_commit(o->s);
		else
			store_rollback(o->s);
	}
	pthread_mutex_unlock(&o->lock);
	return err;
}

/* ---- audit chain ---------------------------------------------------------- */

static void enc_field(crypto_hash_sha256_state *h, const char *s)
{
	size_t n = strlen(s);
	uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	crypto_hash_sha256_update(h, l, 4);
	crypto_hash_sha256_update(h, (const uint8_t *)s, n);
}

/* hash = SHA-256 over the length-prefixed (4 bytes, big-endian) fields
 * "esim-audit-v1", prev, id, at, actor, action, data (numbers decimal). */
static void audit_hash(const char *prev, int64_t id, int64_t at, const char *actor,
		       const char *action, const char *data, char out[65])
{
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	char num[32];
	enc_field(&h, "esim-audit-v1");
	enc_field(&h, prev);
	snprintf(num, sizeof num, "%lld", (long long)id);
	enc_field(&h, num);
	snprintf(num, sizeof num, "%lld", (long long)at);
	enc_field(&h, num);
	enc_field(&h, actor);
	enc_field(&h, action);
	enc_field(&h, data);
	uint8_t md[32];
	crypto_hash_sha256_final(&h, md);
	sodium_bin2hex(out, 65, md, 32);
}

static void head_message(int64_t count, const char *hash, char *out, size_t n)
{
	snprintf(out, n, "esim-audit-head-v1|%lld|%s", (long long)count, hash);
}

static const char ZERO_HASH[] = "0000000000000000000000000000000000000000000000000000000000000000";

esim_err op_audit(op *o, const char *actor, const char *action, const char *data)
{
	store_stmt *st;
	char prev[65];
	snprintf(prev, sizeof prev, "%s", ZERO_HASH);
	int64_t count = 0;
	esim_err err = store_prepare(
	    o->s, "SELECT count, hash FROM op_audit_head WHERE id = 1 {{FOR_UPDATE}}", &st);
	if (err != ESIM_OK)
		return err;
	bool row;
	err = store_step(st, &row);
	bool have_head = err == ESIM_OK && row;
	if (have_head) {
		count = store_col_int64(st, 0);
		snprintf(prev, sizeof prev, "%s", store_col_text(st, 1));
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	int64_t at = (int64_t)op_now(o);
	err = store_prepare(o->s,
			    "INSERT INTO op_audit (at, actor, action, data, prev, hash)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, '') RETURNING id",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, at);
	store_bind_text(st, 2, actor);
	store_bind_text(st, 3, action);
	store_bind_text(st, 4, data);
	store_bind_text(st, 5, prev);
	int64_t id = 0;
	err = store_run_id(st, &id);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	char h[65];
	audit_hash(prev, id, at, actor, action, data, h);
	if ((err = store_prepare(o->s, "UPDATE op_audit SET hash = ?1 WHERE id = ?2", &st)) !=
	    ESIM_OK)
		return err;
	store_bind_text(st, 1, h);
	store_bind_int64(st, 2, id);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	/* the head: count and last hash, signed, so that cutting the tail
	 * (or rewriting it wholesale) shows */
	uint8_t sig[CRYPTO_DER_SIG_MAX];
	size_t sig_len = 0;
	if (o->key) {
		char msg[160];
		head_message(count + 1, h, msg, sizeof msg);
		if ((err = crypto_ecdsa_sign_der(o->key, (const uint8_t *)msg, strlen(msg), sig,
						 &sig_len)) != ESIM_OK)
			return err;
	}
	err = store_prepare(
	    o->s,
	    have_head ? "UPDATE op_audit_head SET count = ?1, hash = ?2, sig = ?3 WHERE id = 1"
		      : "INSERT INTO op_audit_head (id, count, hash, sig) VALUES (1, ?1, ?2, ?3)",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, count + 1);
	store_bind_text(st, 2, h);
	if (sig_len)
		store_bind_blob(st, 3, sig, sig_len);
	err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err op_audit_verify(op *o, int64_t *entries, int64_t *bad_id)
{
	*entries = 0;
	*bad_id = 0;
	pthread_mutex_lock(&o->lock);
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT id, at, actor, action, data, prev, hash FROM op_audit ORDER BY id", &st);
	char prev[65];
	snprintf(prev, sizeof prev, "%s", ZERO_HASH);
	bool broken = false;
	int64_t n = 0;
	if (err == ESIM_OK) {
		bool row;
		while (!broken && (err = store_step(st, &row)) == ESIM_OK && row) {
			int64_t id = store_col_int64(st, 0);
			const char *sp = store_col_text(st, 5), *sh = store_col_text(st, 6);
			char h[65];
			audit_hash(prev, id, store_col_int64(st, 1), store_col_text(st, 2),
				   store_col_text(st, 3), store_col_text(st, 4), h);
			if (!sp || !sh || strcmp(sp, prev) != 0 || strcmp(sh, h) != 0) {
				broken = true;
				*bad_id = id;
			}
			snprintf(prev, sizeof prev, "%s", h);
			n++;
		}
		store_finalize(st);
	}
	if (err == ESIM_OK && !broken) {
		err = store_prepare(o->s, "SELECT count, hash, sig FROM op_audit_head WHERE id = 1",
				    &st);
		if (err == ESIM_OK) {
			bool row;
			err = store_step(st, &row);
			if (err == ESIM_OK) {
				int64_t cnt = row ? store_col_int64(st, 0) : 0;
				const char *hh = row ? store_col_text(st, 1) : ZERO_HASH;
				if (cnt != n || !hh || strcmp(hh, prev) != 0)
					broken = true;
				else if (row && o->key) {
					size_t sl = 0;
					const uint8_t *sig = store_col_blob(st, 2, &sl);
					char msg[160];
					head_message(cnt, hh, msg, sizeof msg);
					if (!sig || crypto_ecdsa_verify_der(
							o->key, (const uint8_t *)msg, strlen(msg),
							sig, sl) != ESIM_OK)
						broken = true;
				}
			}
			store_finalize(st);
		}
	}
	pthread_mutex_unlock(&o->lock);
	*entries = n;
	if (err != ESIM_OK)
		return err;
	return broken ? ESIM_E_OP_AUDIT : ESIM_OK;
}

/* ---- contacts and notices ------------------------------------------------- */

static void new_reference(char ref[OP_REF_LEN])
{
	static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	char c[8];
	for (int i = 0; i < 8; i++)
		c[i] = alpha[randombytes_uniform(sizeof alpha - 1)];
	snprintf(ref, OP_REF_LEN, "OP-%.4s-%.4s", c, c + 4);
}

static esim_err write_maildir(op *o, int64_t id, const char *to, const char *subject,
			      const char *text, time_t at)
{
	if (!o->maildir)
		return ESIM_OK;
	char path[1024], tmp[1024];
	const char *sub[] = {"", "/tmp", "/new", "/cur"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s%s", o->maildir, sub[i]);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return ESIM_E_IO;
	}
	snprintf(tmp, sizeof tmp, "%s/tmp/%lld.%lld.esim-operator", o->maildir, (long long)at,
		 (long long)id);
	snprintf(path, sizeof path, "%s/new/%lld.%lld.esim-operator", o->maildir, (long long)at,
		 (long long)id);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return ESIM_E_IO;
	char date[32];
	op_iso_time(at, date);
	fprintf(f,
		"From: %s customer care <care@operator.example>\nTo: %s\nSubject: %s\nDate: %s\n"
		"Content-Type: text/plain; charset=UTF-8\n\n%s\n",
		o->name, to, subject, date, text);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return ESIM_E_IO;
	return ESIM_OK;
}

esim_err op_notify(op *o, int64_t customer_id, const char *purpose, const char *subject,
		   const char *text, char ref_out[OP_REF_LEN])
{
	char ref[OP_REF_LEN];
	new_reference(ref);
	time_t now = op_now(o);
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "INSERT INTO op_contacts (reference, customer_id, channel,"
				     " purpose, at) VALUES (?1, ?2, 'email+sms', ?3, ?4)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, ref);
	store_bind_int64(st, 2, customer_id);
	store_bind_text(st, 3, purpose);
	store_bind_int64(st, 4, (int64_t)now);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	char *to = NULL;
	if ((err = store_prepare(o->s, "SELECT login FROM op_customers WHERE id = ?1", &st)) !=
	    ESIM_OK)
		return err;
	store_bind_int64(st, 1, customer_id);
	bool row;
	if ((err = store_step(st, &row)) == ESIM_OK && row)
		to = strdup(store_col_text(st, 0));
	store_finalize(st);
	if (!to)
		return err != ESIM_OK ? err : ESIM_E_NOT_FOUND;
	/* the footer in the language the customer reads (the caller wrote
	 * text in it, op_customer_lang) */
	char lang[4], foot[600];
	if ((err = op_customer_lang(o, customer_id, lang)) != ESIM_OK) {
		free(to);
		return err;
	}
	op_fill(foot, sizeof foot,
		op_tr(o, lang, "notice.reference",
		      "Verification reference: {reference}\nCheck it on our site under \"Was this "
		      "really us?\". We never ask for your password or codes by phone."),
		"reference", ref, NULL);
	size_t bl = strlen(text) + strlen(foot) + 3;
	char *body = malloc(bl);
	if (!body) {
		free(to);
		return ESIM_E_NOMEM;
	}
	snprintf(body, bl, "%s\n\n%s", text, foot);
	const char *channels[] = {"email", "sms"};
	for (int i = 0; err == ESIM_OK && i < 2; i++) {
		err = store_prepare(
		    o->s,
		    "INSERT INTO op_notices (customer_id, channel, recipient, subject,"
		    " body, reference, at, sent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		    " RETURNING id",
		    &st);
		if (err != ESIM_OK)
			break;
		store_bind_int64(st, 1, customer_id);
		store_bind_text(st, 2, channels[i]);
		store_bind_text(st, 3, to);
		store_bind_text(st, 4, subject);
		store_bind_text(st, 5, body);
		store_bind_text(st, 6, ref);
		store_bind_int64(st, 7, (int64_t)now);
		/* with SMTP the e-mail waits in the outbox (mail.c) */
		store_bind_int64(st, 8, i == 0 && o->maildir && !o->smtp_host ? 1 : 0);
		int64_t nid = 0;
		err = store_run_id(st, &nid);
		store_finalize(st);
		if (err == ESIM_OK && i == 0 && !o->smtp_host)
			err = write_maildir(o, nid, to, subject, body, now);
	}
	free(body);
	free(to);
	if (err == ESIM_OK && ref_out)
		memcpy(ref_out, ref, OP_REF_LEN);
	return err;
}

/* ---- administration -------------------------------------------------------- */

static esim_err begin(op *o)
{
	pthread_mutex_lock(&o->lock);
	esim_err err = store_begin(o->s);
	if (err != ESIM_OK)
		pthread_mutex_unlock(&o->lock);
	return err;
}

static esim_err end(op *o, esim_err err)
{
	if (err == ESIM_OK)
		err = store_commit(o->s);
	else
		store_rollback(o->s);
	if (err == ESIM_OK)
		op_doc_flush(o); /* busy: tried again after the next commit */
	pthread_mutex_unlock(&o->lock);
	return err;
}

esim_err op_add_customer(op *o, const char *login, const char *password, const char *name,
			 const char *address, int64_t *id)
{
	char *h = NULL;
	esim_err err = op_password_hash(o, password, &h);
	if (err != ESIM_OK)
		return err;
	if ((err = begin(o)) != ESIM_OK) {
		free(h);
		return err;
	}
	store_stmt *st;
	int64_t cid = 0;
	err = store_prepare(o->s,
			    "INSERT INTO op_customers (login, pwhash, name, address, account)"
			    " VALUES (?1, ?2, ?3, ?4, '') RETURNING id",
			    &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, login);
		store_bind_text(st, 2, h);
		store_bind_text(st, 3, name);
		store_bind_text(st, 4, address);
		err = store_run_id(st, &cid);
		store_finalize(st);
	}
	if (err == ESIM_OK)
		err =
		    store_prepare(o->s, "UPDATE op_customers SET account = ?1 WHERE id = ?2", &st);
	if (err == ESIM_OK) {
		char acc[32];
		snprintf(acc, sizeof acc, "BE-%06lld", (long long)(100000 + cid));
		store_bind_text(st, 1, acc);
		store_bind_int64(st, 2, cid);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK) {
		json_t *j = json_pack("{s:I,s:s}", "customer", (json_int_t)cid, "login", login);
		char *d = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		err = d ? op_audit(o, "admin-cli", "customer.add", d) : ESIM_E_NOMEM;
		free(d);
		json_decref(j);
	}
	free(h);
	err = end(o, err);
	if (err == ESIM_OK && id)
		*id = cid;
	return err;
}

esim_err op_add_staff(op *o, const char *login, const char *password, const char *role)
{
	if (strcmp(role, "reviewer") != 0 && strcmp(role, "admin") != 0)
		return ESIM_E_ARG;
	char *h = NULL;
	esim_err err = op_password_hash(o, password, &h);
	if (err != ESIM_OK)
		return err;
	if ((err = begin(o)) != ESIM_OK) {
		free(h);
		return err;
	}
	store_stmt *st;
	err = store_prepare(o->s, "INSERT INTO op_staff (login, pwhash, role) VALUES (?1, ?2, ?3)",
			    &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, login);
		store_bind_text(st, 2, h);
		store_bind_text(st, 3, role);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK) {
		json_t *j = json_pack("{s:s,s:s}", "login", login, "role", role);
		char *d = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		err = d ? op_audit(o, "admin-cli", "staff.add", d) : ESIM_E_NOMEM;
		free(d);
		json_decref(j);
	}
	free(h);
	return end(o, err);
}

esim_err op_add_line(op *o, int64_t customer_id, const char *msisdn, const char *iccid,
		     const char *plan, bool downloaded, int64_t *id)
{
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	int64_t lid = 0;
	err =
	    store_prepare(o->s,
			  "INSERT INTO op_lines (customer_id, msisdn, iccid, plan, monthly_cents,"
			  " state, downloaded) VALUES (?1, ?2, ?3, ?4, 2000, ?5, ?6) RETURNING id",
			  &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, customer_id);
		store_bind_text(st, 2, msisdn);
		store_bind_text(st, 3, iccid);
		store_bind_text(st, 4, plan);
		store_bind_text(st, 5, iccid ? "active" : "ordered");
		store_bind_int64(st, 6, downloaded ? 1 : 0);
		err = store_run_id(st, &lid);
		store_finalize(st);
	}
	if (err == ESIM_OK) {
		char d[128];
		snprintf(d, sizeof d, "{\"customer\":%lld,\"line\":%lld}", (long long)customer_id,
			 (long long)lid);
		err = op_audit(o, "admin-cli", "line.add", d);
	}
	err = end(o, err);
	if (err == ESIM_OK && id)
		*id = lid;
	return err;
}

esim_err op_add_invoice(op *o, int64_t customer_id, const char *period, int64_t cents,
			const char *due, int64_t *id)
{
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	int64_t iid = 0;
	err =
	    store_prepare(o->s,
			  "INSERT INTO op_invoices (customer_id, number, period, amount_cents, due,"
			  " status) VALUES (?1, '', ?2, ?3, ?4, 'open') RETURNING id",
			  &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, customer_id);
		store_bind_text(st, 2, period);
		store_bind_int64(st, 3, cents);
		store_bind_text(st, 4, due);
		err = store_run_id(st, &iid);
		store_finalize(st);
	}
	if (err == ESIM_OK &&
	    (err = store_prepare(o->s, "UPDATE op_invoices SET number = ?1 WHERE id = ?2", &st)) ==
		ESIM_OK) {
		char num[32];
		snprintf(num, sizeof num, "INV-2026-%04lld", (long long)iid);
		store_bind_text(st, 1, num);
		store_bind_int64(st, 2, iid);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK) {
		char d[128];
		snprintf(d, sizeof d, "{\"customer\":%lld,\"invoice\":%lld,\"cents\":%lld}",
			 (long long)customer_id, (long long)iid, (long long)cents);
		err = op_audit(o, "admin-cli", "invoice.add", d);
	}
	err = end(o, err);
	if (err == ESIM_OK && id)
		*id = iid;
	return err;
}

static esim_err add_usage(op *o, int64_t line, const char *kind, int64_t amount, const char *unit)
{
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(o->s,
			    "INSERT INTO op_usage (line_id, kind, amount, unit, at) VALUES"
			    " (?1, ?2, ?3, ?4, ?5)",
			    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, line);
		store_bind_text(st, 2, kind);
		store_bind_int64(st, 3, amount);
		store_bind_text(st, 4, unit);
		store_bind_int64(st, 5, (int64_t)op_now(o));
		err = store_run(st);
		store_finalize(st);
	}
	return end(o, err);
}

esim_err op_set_contract(op *o, int64_t line_id, int notice_days, const char *final_policy)
{
	if (notice_days < 0 || notice_days > 365 || !final_policy ||
	    (strcmp(final_policy, "prorated") != 0 && strcmp(final_policy, "full_month") != 0))
		return ESIM_E_ARG;
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(
	    o->s, "UPDATE op_lines SET notice_days = ?1, final_policy = ?2 WHERE id = ?3", &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, notice_days);
		store_bind_text(st, 2, final_policy);
		store_bind_int64(st, 3, line_id);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK &&
	    op_query_int(o, "SELECT COUNT(*) FROM op_lines WHERE id = ?1", line_id, 0) == 0)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK) {
		char d[160];
		snprintf(d, sizeof d, "{\"line\":%lld,\"notice_days\":%d,\"final_policy\":\"%s\"}",
			 (long long)line_id, notice_days, final_policy);
		err = op_audit(o, "admin-cli", "line.contract", d);
	}
	return end(o, err);
}

esim_err op_add_equipment(op *o, int64_t line_id, const char *item, const char *return_by,
			  const char *return_ref, int64_t *id)
{
	if (!item || !*item || !return_ref || !*return_ref)
		return ESIM_E_ARG;
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	int64_t eid = 0;
	if (op_query_int(o, "SELECT COUNT(*) FROM op_lines WHERE id = ?1", line_id, 0) == 0)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK)
		err =
		    store_prepare(o->s,
				  "INSERT INTO op_equipment (line_id, item, return_by, return_ref,"
				  " received) VALUES (?1, ?2, ?3, ?4, 0) RETURNING id",
				  &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, line_id);
		store_bind_text(st, 2, item);
		store_bind_text(st, 3, return_by);
		store_bind_text(st, 4, return_ref);
		err = store_run_id(st, &eid);
		store_finalize(st);
	}
	if (err == ESIM_OK) {
		json_t *j = json_pack("{s:I,s:I,s:s}", "line", (json_int_t)line_id, "equipment",
				      (json_int_t)eid, "return_ref", return_ref);
		char *d = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		err = d ? op_audit(o, "admin-cli", "equipment.add", d) : ESIM_E_NOMEM;
		free(d);
		json_decref(j);
	}
	err = end(o, err);
	if (err == ESIM_OK && id)
		*id = eid;
	return err;
}

esim_err op_seed_demo(op *o)
{
	int64_t jan, sofie, l1, l2;
	esim_err err = op_add_customer(o, "jan.peeters@example.be", "jan-demo-2026", "Jan Peeters",
				       "Rue Neuve 1, 1000 Brussels", &jan);
	if (err == ESIM_OK)
		err = op_add_customer(o, "sofie.janssens@example.be", "sofie-demo-2026",
				      "Sofie Janssens", "Veldstraat 10, 9000 Gent", &sofie);
	if (err == ESIM_OK)
		err = op_add_line(o, jan, "+32470123456", NULL, "Mobile 20 GB", false, &l1);
	if (err == ESIM_OK)
		err = op_add_line(o, sofie, "+32471987654", "8932000000000000017", "Mobile 5 GB",
				  true, &l2);
	if (err == ESIM_OK)
		err = op_add_invoice(o, jan, "2026-10", 4250, "2026-11-30", NULL);
	if (err == ESIM_OK)
		err = add_usage(o, l1, "data", 1536, "MB");
	if (err == ESIM_OK)
		err = add_usage(o, l1, "voice", 42, "min");
	if (err == ESIM_OK)
		err = add_usage(o, l2, "sms", 12, "sms");
	if (err == ESIM_OK && (err = begin(o)) == ESIM_OK) {
		/* Sofie leased a mobile router, already returned under its
		 * return reference: the precheck lists it, nothing is due */
		store_stmt *st;
		err = store_prepare(
		    o->s,
		    "INSERT INTO op_equipment (line_id, item, return_by, return_ref,"
		    " received, received_at) VALUES (?1, 'Mobile Wi-Fi router (leased)',"
		    " '2027-01-31', 'RET-2026-0017', 1, ?2)",
		    &st);
		if (err == ESIM_OK) {
			store_bind_int64(st, 1, l2);
			store_bind_int64(st, 2, (int64_t)op_now(o));
			err = store_run(st);
			store_finalize(st);
		}
		err = end(o, err);
	}
	if (err == ESIM_OK)
		err = op_add_staff(o, "reviewer", "review-demo-2026", "reviewer");
	if (err == ESIM_OK)
		err = op_add_staff(o, "admin", "admin-demo-2026", "admin");
	return err;
}

/* ---- reminders and pruning ------------------------------------------------- */

/* ES2+ call identifiers older than the retention (setting
 * es2_call_retention_days, default OP_ES2_CALL_RETENTION_DAYS) are
 * forgotten: the SM-DP+ resends a callback within minutes or hours, never
 * that late, and without this the table grows by one row per callback
 * forever. The notifications' (EID, seqNumber) rows are kept: a replayed
 * notification must stay refused however old it is. */
static esim_err prune_es2_calls(op *o)
{
	int64_t days = op_setting(o, "es2_call_retention_days", OP_ES2_CALL_RETENTION_DAYS);
	if (days < 1)
		days = 1;
	store_stmt *st;
	esim_err err = store_prepare(o->s, "DELETE FROM op_es2_calls WHERE at < ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)op_now(o) - days * 86400);
	err = store_run(st);
	store_finalize(st);
	return err;
}

esim_err op_tick(op *o, size_t *reminders)
{
	*reminders = 0;
	esim_err err = begin(o);
	if (err != ESIM_OK)
		return err;
	err = prune_es2_calls(o);
	if (err != ESIM_OK)
		return end(o, err);
	store_stmt *st;
	/* The due cases are claimed (row locks, SKIP LOCKED on PostgreSQL):
	 * several instances on one database tick at once, and one must pass
	 * over a case another is reminding, never send the notice twice. */
	int64_t ids[64], cust[64];
	char msisdn[64][32];
	size_t n = 0;
	err =
	    store_prepare(o->s,
			  "SELECT c.id, c.customer_id, l.msisdn FROM op_cases c JOIN op_lines l ON"
			  " l.id = c.line_id WHERE c.state = 'awaiting_deletion' AND c.reminded = 0"
			  " AND c.deletion_due <= ?1 ORDER BY c.id LIMIT 64 {{SKIP_LOCKED}}",
			  &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, (int64_t)op_now(o));
		bool row;
		while (n < 64 && (err = store_step(st, &row)) == ESIM_OK && row) {
			ids[n] = store_col_int64(st, 0);
			cust[n] = store_col_int64(st, 1);
			snprintf(msisdn[n], sizeof msisdn[n], "%s", store_col_text(st, 2));
			n++;
		}
		store_finalize(st);
	}
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		char text[1024], ref[OP_REF_LEN], purpose[96], lang[4], idt[24];
		snprintf(idt, sizeof idt, "%lld", (long long)ids[i]);
		if ((err = op_customer_lang(o, cust[i], lang)) != ESIM_OK)
			break;
		op_fill(
		    text, sizeof text,
		    op_tr(o, lang, "notice.reminder.text",
			  "Your line {msisdn} has been stopped, but the eSIM profile is still on "
			  "your device. Please delete it so that we can close case {id}:\n"
			  " - iPhone: Settings > Mobile Service > the line > Delete eSIM\n"
			  " - Android: Settings > Network & internet > SIMs > the line > Erase "
			  "SIM\n"
			  " - esim command line: esim cancel ICCID (or esim profile delete ICCID),"
			  " then esim notification process\n"
			  "Keep the device online afterwards so that the deletion is reported."),
		    "msisdn", msisdn[i], "id", idt, NULL);
		snprintf(purpose, sizeof purpose, "termination case %lld: deletion reminder",
			 (long long)ids[i]);
		err = op_notify(
		    o, cust[i], purpose,
		    op_tr(o, lang, "notice.reminder.subject", "Please delete the eSIM profile"),
		    text, ref);
		if (err == ESIM_OK &&
		    (err = store_prepare(
			 o->s,
			 "INSERT INTO op_case_events (case_id, at, state, actor, note,"
			 " reference) VALUES (?1, ?2, 'awaiting_deletion', 'system',"
			 " 'reminder sent with the deletion steps', ?3)",
			 &st)) == ESIM_OK) {
			store_bind_int64(st, 1, ids[i]);
			store_bind_int64(st, 2, (int64_t)op_now(o));
			store_bind_text(st, 3, ref);
			err = store_run(st);
			store_finalize(st);
		}
		if (err == ESIM_OK &&
		    (err = store_prepare(o->s, "UPDATE op_cases SET reminded = 1 WHERE id = ?1",
					 &st)) == ESIM_OK) {
			store_bind_int64(st, 1, ids[i]);
			err = store_run(st);
			store_finalize(st);
		}
		char d[64];
		snprintf(d, sizeof d, "{\"case\":%lld}", (long long)ids[i]);
		if (err == ESIM_OK)
			err = op_audit(o, "system", "case.reminder", d);
	}
	err = end(o, err);
	if (err == ESIM_OK)
		*reminders = n;
	return err;
}
