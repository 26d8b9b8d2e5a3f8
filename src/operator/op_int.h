/*
 * Private parts of the operator service shared by its source files.
 */
#ifndef ESIM_OP_INT_H
#define ESIM_OP_INT_H

#include <pthread.h>

#include <openssl/evp.h>

#include "esim/cert.h"
#include "esim/operator.h"
#include "esim/store.h"

#define OP_REF_LEN     13 /* "OP-XXXX-XXXX" + NUL */
#define OP_SESSION_TTL (30 * 60)
#define OP_DOC_MAX     (4u * 1024 * 1024)

struct op {
	pthread_mutex_t lock; /* one store, one caller at a time */
	store *s;
	char *web_dir, *maildir, *smdp_url, *smdp_ca, *cert_file, *key_file, *name, *ptype;
	EVP_PKEY *key;	     /* may be NULL: then no record signing / audit head */
	crypto_cert *cert;   /* may be NULL */
	crypto_trust *trust; /* may be NULL */
	unsigned char data_key[32];
	bool erase_pending;  /* a copy was erased: checkpoint the WAL after commit */
	const esim_log *log; /* runtime lines (op_set_log); NULL: plain stderr */
	bool fast_hash;
	/* SMTP (mail.c); smtp_pass is secret: wiped and freed by op_close */
	char *smtp_host, *smtp_user, *smtp_from, *smtp_ca;
	char *smtp_pass;
	size_t smtp_pass_len;
	uint16_t smtp_port;
	time_t (*now)(void *);
	void *now_arg;
	json_t *cat[4]; /* language catalogues en, nl, fr, zh (op_tr); NULL: not found */
};

time_t op_now(op *o);
void op_iso_time(time_t t, char out[32]);

/* Audit: append one entry (inside the caller's transaction). */
esim_err op_audit(op *o, const char *actor, const char *action, const char *data);

/* A one-time verification reference for a contact, recorded; and a notice
 * (e-mail to the maildir + SMS row) carrying it. ref out may be NULL. */
esim_err op_notify(op *o, int64_t customer_id, const char *purpose, const char *subject,
		   const char *text, char ref[OP_REF_LEN]);

esim_err op_password_hash(op *o, const char *password, char **out);

/* Languages of what customers read (op.c): "en", "nl", "fr", "zh". The
 * texts are the portal's catalogues (web_dir/i18n/LANG.json), one place for
 * the pages, the notices and the printable record. op_tr gives key's text
 * in lang, else in English, else en (the built-in English, which
 * tests/i18n/check_catalogues.py keeps equal to en.json). op_fill copies
 * tpl to out replacing {name} by the value after name in the NULL-ended
 * name, value list. op_customer_lang: the customer's stored language, "en"
 * when none. op_lang_negotiate: the best of the four for an
 * Accept-Language header (NULL or no match: "en"). */
bool op_lang_valid(const char *lang);
const char *op_tr(const op *o, const char *lang, const char *key, const char *en);
void op_fill(char *out, size_t n, const char *tpl, ...);
esim_err op_customer_lang(op *o, int64_t customer_id, char lang[4]);
const char *op_lang_negotiate(const char *accept_language);

int64_t op_setting(op *o, const char *key, int64_t def);

/* The case step after approval (ES2+ or stop the line). The SM-DP+'s
 * callbacks that end a download or a case are callback.c (op_callback_*
 * in esim/operator.h), on their own mutual-TLS listener. */
esim_err op_after_approval(op *o, int64_t case_id, const char *actor);
/* The signed record of a closed case, JSON text (malloc'd). */
esim_err op_record_build(op *o, int64_t case_id, char **out);
/* Case transition in a transaction: from must match (comma list). */
esim_err op_case_move(op *o, int64_t case_id, const char *from, const char *to, const char *actor,
		      const char *note);
/* ES2+ POST; *resp_json out (caller decrefs) when the call executed. */
esim_err op_es2_call(op *o, const char *function, json_t *body, json_t **resp_json);

/* The identity copy (document.c). op_doc_type: "image/jpeg", "image/png",
 * "application/pdf" by the content's magic bytes, or NULL. op_doc_check:
 * the same, NULL with why filled when the content is none of those or the
 * declared type (may be NULL) disagrees. op_doc_seal stores the copy under
 * a new per-case key (inside the caller's transaction); op_doc_open gives
 * the plaintext (caller wipes and frees; ESIM_E_NOT_FOUND once erased);
 * op_doc_erase destroys the case key and the ciphertext and marks the
 * handle for op_doc_flush, which the caller runs after its COMMIT (under
 * the handle's lock) to checkpoint and truncate SQLite's WAL. */
const char *op_doc_type(const uint8_t *p, size_t n);
const char *op_doc_check(const uint8_t *p, size_t n, const char *declared, char *why, size_t wn);
esim_err op_doc_seal(op *o, int64_t case_id, const uint8_t *doc, size_t n, const char *mime);
esim_err op_doc_open(op *o, int64_t case_id, uint8_t **plain, size_t *len);
esim_err op_doc_erase(op *o, int64_t case_id);
esim_err op_doc_flush(op *o);

/* A letter (printed and posted): recorded like the other notices, with a
 * verification reference of its own (channel "letter"), rendered as a
 * printable page by op_letter_html. ref out may be NULL. */
esim_err op_notify_letter(op *o, int64_t customer_id, const char *purpose, const char *subject,
			  const char *text, char ref[OP_REF_LEN]);
/* The letter notice id as a printable HTML page (malloc'd), only when it
 * is customer cust's (cust < 0: staff, any); *html NULL when none. */
esim_err op_letter_html(op *o, int64_t id, int64_t cust, char **html);

/* The caller of an API step written outside http.c, and its answer. */
struct op_caller {
	int64_t who;	   /* customer or staff id */
	const char *actor; /* audit actor, e.g. "staff:reviewer" */
};
struct op_answer {
	int status;   /* HTTP status */
	json_t *json; /* owned by the answer's receiver */
};
/* charging.c: the customer's caps and stop switch (portal, own lines),
 * the line's spend this month, and the final invoice at a case's close
 * (called by op_case_move on the way to "closed"). */
esim_err op_charging_set_caps(op *o, const struct op_caller *c, const json_t *body,
			      struct op_answer *a);
esim_err op_charging_set_stop(op *o, const struct op_caller *c, const json_t *body,
			      struct op_answer *a);
esim_err op_charging_line_info(op *o, int64_t line, json_t *into);
esim_err op_final_invoice(op *o, int64_t case_id, const char *actor);
/* intake.c: call-back verification for assisted intake (staff). start
 * sends the code to the contact on file; verify checks what the customer
 * read back; op_intake_check says whether intake_id (verified, this
 * staff member's, in time, unused) allows opening a case on line: *cust
 * the customer, or a refusal in *a; op_intake_used marks it spent. */
esim_err op_intake_start(op *o, const struct op_caller *c, const json_t *body, struct op_answer *a);
esim_err op_intake_verify(op *o, const struct op_caller *c, const json_t *body,
			  struct op_answer *a);
esim_err op_intake_check(op *o, const struct op_caller *c, int64_t intake_id, int64_t line,
			 int64_t *cust, struct op_answer *a);
esim_err op_intake_used(op *o, const struct op_caller *c, int64_t intake_id, int64_t case_id);
/* The call-back code masked ("****-****") in the stored copies of the notice
 * with this reference once its e-mail is delivered (sent = 1), and in its SMS
 * row; nothing for another notice. In the caller's transaction. */
esim_err op_intake_scrub(op *o, const char *reference);
/* Staff: a leased item received back (equipment_id, return_ref optional). */
esim_err op_equipment_received(op *o, const struct op_caller *c, const json_t *body,
			       struct op_answer *a);

/* small helpers */
esim_err op_prep(op *o, const char *sql, store_stmt **st);
int64_t op_query_int(op *o, const char *sql, int64_t arg, int64_t def);

#endif
