/*
 * The customer's identity copy on a termination case: which files are
 * accepted, how the copy is kept, and how it is erased for good. This is
 * operator-side data only (no SGP.22 message carries it); the standard's
 * part of the case is the ES2+ exchange in workflow.c.
 *
 * Accepted: JPEG, PNG and PDF, decided by the file's first bytes. What the
 * client says the type is counts only as a claim that must agree with the
 * content; an HTML page, an SVG or a program is refused whatever it claims
 * to be, so a copy can never be served back as something a browser runs.
 *
 * Kept: each copy is sealed (XSalsa20-Poly1305, libsodium secretbox) under
 * its own random case key; the case key is stored wrapped under the
 * operator's data key in its own row of op_case_keys. Erased: the case key
 * row is deleted and the ciphertext set to NULL in the same transaction, so
 * any ciphertext left anywhere (a WAL frame, a backup, a PostgreSQL dead
 * tuple) is unreadable. On SQLite the connection runs with secure_delete
 * (freed cells and pages are zeroed) and, once the transaction committed,
 * op_doc_flush() checkpoints the WAL and truncates it, so no byte of the
 * copy, its ciphertext or its key is left in any database file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "op_int.h"

static bool starts(const uint8_t *p, size_t n, const char *magic, size_t m)
{
	return n >= m && memcmp(p, magic, m) == 0;
}

const char *op_doc_type(const uint8_t *p, size_t n)
{
	if (starts(p, n, "\xff\xd8\xff", 3))
		return "image/jpeg";
	if (starts(p, n, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (starts(p, n, "%PDF-", 5))
		return "application/pdf";
	return NULL;
}

/* A name for what a refused file looks like, for the error message. */
static const char *looks_like(const uint8_t *p, size_t n)
{
	size_t i = 0;
	if (starts(p, n, "\xef\xbb\xbf", 3))
		i = 3; /* UTF-8 byte order mark */
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	const uint8_t *t = p + i;
	size_t tn = n - i;
	char head[256];
	size_t hn = tn < sizeof head - 1 ? tn : sizeof head - 1;
	for (size_t k = 0; k < hn; k++)
		head[k] = (char)(t[k] >= 'A' && t[k] <= 'Z' ? t[k] + 32 : t[k]);
	head[hn] = '\0';
	if (starts(p, n, "MZ", 2))
		return "a Windows executable (MZ header)";
	if (starts(p, n,
		   "\x7f"
		   "ELF",
		   4))
		return "an executable (ELF header)";
	if (strstr(head, "<svg"))
		return "an SVG image (it can carry script)";
	if (hn && head[0] == '<')
		return strncmp(head, "<?xml", 5) == 0 ? "an XML document"
						      : "an HTML document (it can carry script)";
	if (starts(p, n, "GIF8", 4))
		return "a GIF image";
	if (starts(p, n, "PK\x03\x04", 4))
		return "a ZIP archive (or an office document)";
	return "not a file type we recognise";
}

/* "image/jpeg; x=y" -> "image/jpeg"; image/jpg and image/pjpeg are JPEG. */
static void declared_base(const char *d, char out[64])
{
	size_t n = strcspn(d, "; \t");
	snprintf(out, 64, "%.*s", (int)(n < 63 ? n : 63), d);
	for (char *q = out; *q; q++)
		*q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
	if (!strcmp(out, "image/jpg") || !strcmp(out, "image/pjpeg"))
		snprintf(out, 64, "image/jpeg");
}

const char *op_doc_check(const uint8_t *p, size_t n, const char *declared, char *why, size_t wn)
{
	if (n == 0) {
		snprintf(why, wn, "document_copy is empty");
		return NULL;
	}
	const char *type = op_doc_type(p, n);
	if (!type) {
		snprintf(why, wn,
			 "document_copy is %s; only a JPEG, PNG or PDF copy is accepted (judged by"
			 " the file's content)",
			 looks_like(p, n));
		return NULL;
	}
	if (declared && *declared) {
		char base[64];
		declared_base(declared, base);
		if (strcmp(base, type) != 0) {
			snprintf(why, wn,
				 "document_mime says %.60s but the file's content is %s: the"
				 " declared type must match the file",
				 declared, type);
			return NULL;
		}
	}
	return type;
}

esim_err op_doc_seal(op *o, int64_t case_id, const uint8_t *doc, size_t n, const char *mime)
{
	uint8_t key[crypto_secretbox_KEYBYTES], nonce[crypto_secretbox_NONCEBYTES],
	    knonce[crypto_secretbox_NONCEBYTES],
	    wrapped[crypto_secretbox_KEYBYTES + crypto_secretbox_MACBYTES];
	crypto_secretbox_keygen(key);
	randombytes_buf(nonce, sizeof nonce);
	randombytes_buf(knonce, sizeof knonce);
	uint8_t *ct = malloc(n + crypto_secretbox_MACBYTES);
	if (!ct) {
		sodium_memzero(key, sizeof key);
		return ESIM_E_NOMEM;
	}
	crypto_secretbox_easy(ct, doc, n, nonce, key);
	crypto_secretbox_easy(wrapped, key, sizeof key, knonce, o->data_key);
	sodium_memzero(key, sizeof key);
	uint8_t md[32];
	char hex[65];
	crypto_hash_sha256(md, doc, n);
	sodium_bin2hex(hex, sizeof hex, md, sizeof md);
	/* a new copy replaces the old one and its key */
	store_stmt *st;
	esim_err err = store_prepare(o->s, "DELETE FROM op_case_keys WHERE case_id = ?1", &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, case_id);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK &&
	    (err = store_prepare(o->s,
				 "INSERT INTO op_case_keys (case_id, wrapped, nonce) VALUES"
				 " (?1, ?2, ?3)",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, case_id);
		store_bind_blob(st, 2, wrapped, sizeof wrapped);
		store_bind_blob(st, 3, knonce, sizeof knonce);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK &&
	    (err = store_prepare(
		 o->s,
		 "UPDATE op_cases SET doc_cipher = ?1, doc_nonce = ?2, doc_sha256 = ?3,"
		 " doc_mime = ?4 WHERE id = ?5",
		 &st)) == ESIM_OK) {
		store_bind_blob(st, 1, ct, n + crypto_secretbox_MACBYTES);
		store_bind_blob(st, 2, nonce, sizeof nonce);
		store_bind_text(st, 3, hex);
		store_bind_text(st, 4, mime);
		store_bind_int64(st, 5, case_id);
		err = store_run(st);
		store_finalize(st);
	}
	free(ct);
	return err;
}

/* The case key, unwrapped; *found false when the case has none (a copy stored
 * before case keys existed is sealed under the data key itself). */
static esim_err case_key(op *o, int64_t case_id, uint8_t key[crypto_secretbox_KEYBYTES],
			 bool *found)
{
	*found = false;
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s, "SELECT wrapped, nonce FROM op_case_keys WHERE case_id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		size_t wl = 0, nl = 0;
		const uint8_t *w = store_col_blob(st, 0, &wl), *nc = store_col_blob(st, 1, &nl);
		if (w && nc && wl == crypto_secretbox_KEYBYTES + crypto_secretbox_MACBYTES &&
		    nl == crypto_secretbox_NONCEBYTES &&
		    crypto_secretbox_open_easy(key, w, wl, nc, o->data_key) == 0)
			*found = true;
		else
			err = ESIM_E_CRYPTO_MAC_INVALID; /* a key row that does not open: not the
							    data key */
	}
	store_finalize(st);
	return err;
}

esim_err op_doc_open(op *o, int64_t case_id, uint8_t **plain, size_t *len)
{
	*plain = NULL;
	*len = 0;
	uint8_t key[crypto_secretbox_KEYBYTES];
	bool have_key = false;
	esim_err err = case_key(o, case_id, key, &have_key);
	if (err != ESIM_OK)
		return err == ESIM_E_CRYPTO_MAC_INVALID ? ESIM_E_NOT_FOUND : err;
	store_stmt *st;
	err = store_prepare(o->s,
			    "SELECT doc_cipher, doc_nonce FROM op_cases WHERE id = ?1 AND"
			    " doc_cipher IS NOT NULL",
			    &st);
	if (err != ESIM_OK) {
		sodium_memzero(key, sizeof key);
		return err;
	}
	store_bind_int64(st, 1, case_id);
	bool row;
	err = store_step(st, &row);
	size_t cl = 0, nl = 0;
	const uint8_t *ct = err == ESIM_OK && row ? store_col_blob(st, 0, &cl) : NULL;
	const uint8_t *nonce = ct ? store_col_blob(st, 1, &nl) : NULL;
	if (err == ESIM_OK) {
		err = ESIM_E_NOT_FOUND;
		if (ct && nonce && nl == crypto_secretbox_NONCEBYTES &&
		    cl >= crypto_secretbox_MACBYTES) {
			size_t pl = cl - crypto_secretbox_MACBYTES;
			uint8_t *p = malloc(pl ? pl : 1);
			if (!p)
				err = ESIM_E_NOMEM;
			else if (crypto_secretbox_open_easy(p, ct, cl, nonce,
							    have_key ? key : o->data_key) == 0) {
				*plain = p;
				*len = pl;
				err = ESIM_OK;
			} else {
				free(p);
			}
		}
	}
	store_finalize(st);
	sodium_memzero(key, sizeof key);
	return err;
}

esim_err op_doc_erase(op *o, int64_t case_id)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, "DELETE FROM op_case_keys WHERE case_id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK &&
	    (err = store_prepare(
		 o->s, "UPDATE op_cases SET doc_cipher = NULL, doc_nonce = NULL WHERE id = ?1",
		 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, case_id);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK)
		o->erase_pending = true;
	return err;
}

esim_err op_doc_flush(op *o)
{
	if (!o->erase_pending)
		return ESIM_OK;
	if (store_sql_dialect(o->s) != STORE_DIALECT_SQLITE) {
		/* PostgreSQL: the key is gone, so the dead tuples' and the WAL's
		 * ciphertext is unreadable; VACUUM recycles them in time */
		o->erase_pending = false;
		return ESIM_OK;
	}
	/* the freed pages were zeroed (secure_delete) in the WAL's newest
	 * frames; copy those into the database and cut the WAL to nothing so
	 * that the older frames, which still hold the copy, are gone */
	store_stmt *st;
	esim_err err = store_prepare(o->s, "PRAGMA wal_checkpoint(TRUNCATE)", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_step(st, &row);
	if (err == ESIM_OK && row && store_col_int64(st, 0) == 0)
		o->erase_pending = false;
	else if (err == ESIM_OK)
		err = ESIM_E_STORE_BUSY; /* a reader held the WAL: tried again later */
	store_finalize(st);
	return err;
}
