/*
 * Notices that leave the building: e-mail over SMTP from a durable outbox,
 * and letters as printable pages. (SGP.22 has no part in this; the
 * notices are the operator's word to its customers about their lines and
 * cases, each with a verification reference that the "Was this really
 * us?" page checks.)
 *
 * The outbox is op_notices' e-mail rows not yet sent. op_mail_deliver
 * claims the due ones in a short transaction (claimed_until; SKIP LOCKED on
 * PostgreSQL, so two instances never send one notice twice), sends them
 * outside the store's lock, then marks each sent, or puts it back with the
 * error and its next try (30 s doubling up to an hour; after 20 tries it
 * stays unsent with its last error, for staff to see).
 *
 * The SMTP client (RFC 5321) speaks: greeting, EHLO, STARTTLS (required:
 * the server's certificate is verified against smtp_ca, or the system's
 * trust, and the host name), EHLO again, AUTH PLAIN (RFC 4616) or LOGIN
 * (only over TLS), MAIL FROM, RCPT TO, DATA with CRLF line ends and dot-stuffing,
 * QUIT. Header fields never take a CR or LF from data; a non-ASCII
 * subject is RFC 2047 encoded; the body is UTF-8 (8BITMIME when offered,
 * else base64). Every failure names the step and the server's reply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "op_int.h"

#define SMTP_TIMEOUT_S	 15
#define SMTP_LINE_MAX	 1024
#define MAIL_BATCH	 16
#define MAIL_MAX_TRIES	 20
#define MAIL_CLAIM_S	 300
#define MAIL_BACKOFF_MIN 30
#define MAIL_BACKOFF_MAX 3600

struct smtp {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char buf[4096];
	size_t have, off;
	bool eightbit, auth_plain, auth_login, starttls;
	char *why;
	size_t wn;
};

static esim_err smtp_fail(struct smtp *s, esim_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static esim_err smtp_fail(struct smtp *s, esim_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, s->wn, fmt, ap);
	va_end(ap);
	return err;
}

static esim_err smtp_connect(struct smtp *s, const char *host, uint16_t port)
{
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(host, ps, &hints, &res);
	if (rc != 0)
		return smtp_fail(s, ESIM_E_NET_CONNECT, "SMTP server %s: %s", host,
				 gai_strerror(rc));
	int last = 0;
	for (struct addrinfo *a = res; a && s->fd < 0; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = {SMTP_TIMEOUT_S, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			s->fd = fd;
			break;
		}
		last = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (s->fd < 0)
		return smtp_fail(s, ESIM_E_NET_CONNECT, "cannot connect to SMTP server %s:%u: %s",
				 host, port, strerror(last));
	return ESIM_OK;
}

static esim_err smtp_write(struct smtp *s, const char *p, size_t n)
{
	while (n) {
		ssize_t w;
		if (s->ssl) {
			int r = SSL_write(s->ssl, p, (int)(n > 65536 ? 65536 : n));
			w = r > 0 ? r : -1;
		} else {
			w = send(s->fd, p, n, MSG_NOSIGNAL);
		}
		if (w <= 0)
			return smtp_fail(s, ESIM_E_NET_IO, "SMTP connection lost while sending");
		p += w;
		n -= (size_t)w;
	}
	return ESIM_OK;
}

static esim_err smtp_fill(struct smtp *s)
{
	if (s->off == s->have)
		s->off = s->have = 0;
	if (s->have == sizeof s->buf)
		return smtp_fail(s, ESIM_E_NET_IO, "SMTP reply line too long");
	ssize_t r;
	if (s->ssl) {
		int k = SSL_read(s->ssl, s->buf + s->have, (int)(sizeof s->buf - s->have));
		r = k > 0 ? k : -1;
	} else {
		r = recv(s->fd, s->buf + s->have, sizeof s->buf - s->have, 0);
	}
	if (r <= 0)
		return smtp_fail(s,
				 r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
				     ? ESIM_E_NET_TIMEOUT
				     : ESIM_E_NET_IO,
				 "SMTP server closed the connection or did not answer");
	s->have += (size_t)r;
	return ESIM_OK;
}

/* One reply (all its lines): its code, the last line's text in last. */
static esim_err smtp_reply(struct smtp *s, int *code, char *last, size_t ln)
{
	for (;;) {
		char *nl;
		while (!(nl = memchr(s->buf + s->off, '\n', s->have - s->off))) {
			if (s->off) {
				memmove(s->buf, s->buf + s->off, s->have - s->off);
				s->have -= s->off;
				s->off = 0;
			}
			esim_err err = smtp_fill(s);
			if (err != ESIM_OK)
				return err;
		}
		size_t n = (size_t)(nl - (s->buf + s->off));
		char line[SMTP_LINE_MAX];
		size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
		memcpy(line, s->buf + s->off, k);
		line[k] = '\0';
		if (k && line[k - 1] == '\r')
			line[--k] = '\0';
		s->off += n + 1;
		if (k < 3 || line[0] < '1' || line[0] > '5')
			return smtp_fail(s, ESIM_E_NET_IO, "SMTP reply malformed: %.80s", line);
		*code = atoi(line);
		/* EHLO keywords */
		const char *kw = line + 4;
		if (k > 4 && !strncasecmp(kw, "8BITMIME", 8))
			s->eightbit = true;
		if (k > 4 && !strncasecmp(kw, "STARTTLS", 8))
			s->starttls = true;
		if (k > 4 && !strncasecmp(kw, "AUTH", 4) && strstr(kw, "PLAIN"))
			s->auth_plain = true;
		if (k > 4 && !strncasecmp(kw, "AUTH", 4) && strstr(kw, "LOGIN"))
			s->auth_login = true;
		if (line[3] != '-') {
			snprintf(last, ln, "%s", line);
			return ESIM_OK;
		}
	}
}

/* Send a command (its text never logged when secret) and expect want
 * (or want2) as the reply's code. */
static esim_err smtp_cmd(struct smtp *s, const char *step, const char *cmd, int want, int want2)
{
	esim_err err = ESIM_OK;
	if (cmd) {
		err = smtp_write(s, cmd, strlen(cmd));
		if (err == ESIM_OK)
			err = smtp_write(s, "\r\n", 2);
	}
	int code = 0;
	char last[SMTP_LINE_MAX];
	if (err == ESIM_OK)
		err = smtp_reply(s, &code, last, sizeof last);
	if (err != ESIM_OK) {
		char tmp[300];
		snprintf(tmp, sizeof tmp, "%s", s->why);
		return smtp_fail(s, err, "SMTP %s: %s", step, tmp);
	}
	if (code != want && code != want2)
		return smtp_fail(s, code >= 500 ? ESIM_E_OP_STATE : ESIM_E_NET_HTTP_STATUS,
				 "SMTP %s refused: %.200s", step, last);
	return ESIM_OK;
}

static esim_err smtp_starttls(struct smtp *s, op *o)
{
	s->ctx = SSL_CTX_new(TLS_client_method());
	if (!s->ctx)
		return smtp_fail(s, ESIM_E_NET_TLS, "SMTP: TLS unavailable");
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	if ((o->smtp_ca ? SSL_CTX_load_verify_locations(s->ctx, o->smtp_ca, NULL)
			: SSL_CTX_set_default_verify_paths(s->ctx)) != 1)
		return smtp_fail(s, ESIM_E_NET_TLS_CONFIG, "SMTP: cannot load the trust %s",
				 o->smtp_ca ? o->smtp_ca : "(system)");
	s->ssl = SSL_new(s->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1)
		return smtp_fail(s, ESIM_E_NET_TLS, "SMTP: TLS setup failed");
	/* the name, or the address, the certificate must carry */
	unsigned char ip[16];
	bool is_ip =
	    inet_pton(AF_INET, o->smtp_host, ip) == 1 || inet_pton(AF_INET6, o->smtp_host, ip) == 1;
	if (is_ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), o->smtp_host);
	else if (SSL_set_tlsext_host_name(s->ssl, o->smtp_host) != 1 ||
		 SSL_set1_host(s->ssl, o->smtp_host) != 1)
		return smtp_fail(s, ESIM_E_NET_TLS, "SMTP: TLS setup failed");
	if (SSL_connect(s->ssl) != 1) {
		long v = SSL_get_verify_result(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL; /* no close_notify on a failed handshake */
		ERR_clear_error();
		if (v != X509_V_OK)
			return smtp_fail(s,
					 v == X509_V_ERR_HOSTNAME_MISMATCH
					     ? ESIM_E_NET_HOSTNAME
					     : ESIM_E_NET_UNTRUSTED_SERVER,
					 "SMTP STARTTLS: server certificate not accepted: %s",
					 X509_verify_cert_error_string(v));
		return smtp_fail(s, ESIM_E_NET_TLS, "SMTP STARTTLS: TLS handshake failed");
	}
	s->off = s->have = 0; /* nothing read before the handshake counts */
	return ESIM_OK;
}

static void smtp_close(struct smtp *s)
{
	if (s->ssl) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	ERR_clear_error();
}

static bool one_line(const char *v)
{
	return v && !strpbrk(v, "\r\n");
}

static bool ascii(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p >= 0x80)
			return false;
	return true;
}

static esim_err buf_b64(esim_buf *b, const void *p, size_t n)
{
	size_t bl = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *t = malloc(bl);
	if (!t)
		return ESIM_E_NOMEM;
	sodium_bin2base64(t, bl, p, n, sodium_base64_VARIANT_ORIGINAL);
	esim_err err = esim_buf_append(b, t, strlen(t));
	free(t);
	return err;
}

/* The message as sent after DATA: headers, body (CRLF, dot-stuffed), and
 * the final ".". */
static esim_err build_message(op *o, bool eightbit, const char *to, const char *subject,
			      const char *text, time_t at, int64_t id, esim_buf *b)
{
	char h[1024], date[64];
	struct tm tm;
	gmtime_r(&at, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(h, sizeof h,
		 "From: %s customer care <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
		 "Message-ID: <notice-%lld.%lld@%s>\r\nMIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: %s\r\n"
		 "Subject: ",
		 o->name, o->smtp_from, to, date, (long long)id, (long long)at,
		 strchr(o->smtp_from, '@') + 1, eightbit ? "8bit" : "base64");
	esim_err err = esim_buf_append(b, h, strlen(h));
	if (err == ESIM_OK && ascii(subject)) {
		err = esim_buf_append(b, subject, strlen(subject));
	} else if (err == ESIM_OK) {
		err = esim_buf_append(b, "=?UTF-8?B?", 10);
		if (err == ESIM_OK)
			err = buf_b64(b, subject, strlen(subject));
		if (err == ESIM_OK)
			err = esim_buf_append(b, "?=", 2);
	}
	if (err == ESIM_OK)
		err = esim_buf_append(b, "\r\n\r\n", 4);
	if (err == ESIM_OK && !eightbit) {
		/* base64 in lines of 76 */
		esim_buf t = ESIM_BUF_INIT;
		err = buf_b64(&t, text, strlen(text));
		for (size_t i = 0; err == ESIM_OK && i < t.len; i += 76) {
			size_t n = t.len - i < 76 ? t.len - i : 76;
			err = esim_buf_append(b, t.data + i, n);
			if (err == ESIM_OK)
				err = esim_buf_append(b, "\r\n", 2);
		}
		esim_buf_free(&t);
	} else if (err == ESIM_OK) {
		/* each line: CRLF ends, a leading "." doubled (RFC 5321 4.5.2) */
		const char *p = text;
		while (err == ESIM_OK && *p) {
			size_t n = strcspn(p, "\r\n");
			if (p[0] == '.')
				err = esim_buf_append_byte(b, '.');
			if (err == ESIM_OK)
				err = esim_buf_append(b, p, n);
			if (err == ESIM_OK)
				err = esim_buf_append(b, "\r\n", 2);
			p += n;
			if (*p == '\r' && p[1] == '\n')
				p += 2;
			else if (*p)
				p++;
		}
	}
	if (err == ESIM_OK)
		err = esim_buf_append(b, ".\r\n", 3);
	return err;
}

/* base64 of p (n bytes) after prefix, as one command line (malloc'd;
 * the caller wipes it: it may hold the password). */
static char *b64_line(const char *prefix, const void *p, size_t n, size_t *len)
{
	size_t pl = strlen(prefix);
	size_t bl = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *line = malloc(pl + bl);
	if (!line)
		return NULL;
	memcpy(line, prefix, pl);
	sodium_bin2base64(line + pl, bl, p, n, sodium_base64_VARIANT_ORIGINAL);
	*len = pl + bl;
	return line;
}

static esim_err send_secret(struct smtp *s, const char *step, const char *prefix, const void *p,
			    size_t n, int want)
{
	size_t len = 0;
	char *line = b64_line(prefix, p, n, &len);
	if (!line)
		return ESIM_E_NOMEM;
	esim_err err = smtp_cmd(s, step, line, want, want);
	sodium_memzero(line, len);
	free(line);
	return err;
}

/* AUTH PLAIN (RFC 4616), or LOGIN when that is all the server offers;
 * only ever inside STARTTLS. */
static esim_err smtp_auth(struct smtp *s, op *o)
{
	size_t ul = strlen(o->smtp_user), pl = strlen(o->smtp_pass);
	if (s->auth_plain) {
		/* "\0user\0password" */
		size_t rl = ul + pl + 2;
		uint8_t *raw = malloc(rl);
		if (!raw)
			return ESIM_E_NOMEM;
		raw[0] = 0;
		memcpy(raw + 1, o->smtp_user, ul);
		raw[1 + ul] = 0;
		memcpy(raw + 2 + ul, o->smtp_pass, pl);
		esim_err err = send_secret(s, "AUTH PLAIN", "AUTH PLAIN ", raw, rl, 235);
		sodium_memzero(raw, rl);
		free(raw);
		return err;
	}
	if (!s->auth_login)
		return smtp_fail(s, ESIM_E_OP_CONFIG,
				 "SMTP server offers neither AUTH PLAIN nor LOGIN after STARTTLS");
	esim_err err = smtp_cmd(s, "AUTH LOGIN", "AUTH LOGIN", 334, 334);
	if (err == ESIM_OK)
		err = send_secret(s, "AUTH LOGIN user", "", o->smtp_user, ul, 334);
	if (err == ESIM_OK)
		err = send_secret(s, "AUTH LOGIN password", "", o->smtp_pass, pl, 235);
	return err;
}

/* One message over one SMTP session. why: the step and the server's word. */
static esim_err smtp_send(op *o, int64_t id, const char *to, const char *subject, const char *text,
			  time_t at, char *why, size_t wn)
{
	if (!one_line(to) || strpbrk(to, "<> ") || !strchr(to, '@') || !one_line(subject)) {
		snprintf(why, wn, "recipient or subject not a single plain line");
		return ESIM_E_ARG;
	}
	struct smtp s = {.fd = -1, .why = why, .wn = wn};
	char cmd[600];
	esim_err err = smtp_connect(&s, o->smtp_host, o->smtp_port);
	if (err == ESIM_OK)
		err = smtp_cmd(&s, "greeting", NULL, 220, 220);
	if (err == ESIM_OK)
		err = smtp_cmd(&s, "EHLO", "EHLO esim-operator", 250, 250);
	if (err == ESIM_OK && !s.starttls)
		err = smtp_fail(&s, ESIM_E_NET_TLS,
				"SMTP server offers no STARTTLS; refusing to send in the clear");
	if (err == ESIM_OK)
		err = smtp_cmd(&s, "STARTTLS", "STARTTLS", 220, 220);
	if (err == ESIM_OK)
		err = smtp_starttls(&s, o);
	s.eightbit = s.auth_plain = s.auth_login = false;
	if (err == ESIM_OK)
		err = smtp_cmd(&s, "EHLO after STARTTLS", "EHLO esim-operator", 250, 250);
	if (err == ESIM_OK && o->smtp_user)
		err = smtp_auth(&s, o);
	if (err == ESIM_OK) {
		snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>%s", o->smtp_from,
			 s.eightbit ? " BODY=8BITMIME" : "");
		err = smtp_cmd(&s, "MAIL FROM", cmd, 250, 250);
	}
	if (err == ESIM_OK) {
		snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", to);
		err = smtp_cmd(&s, "RCPT TO", cmd, 250, 251);
	}
	if (err == ESIM_OK)
		err = smtp_cmd(&s, "DATA", "DATA", 354, 354);
	if (err == ESIM_OK) {
		esim_buf b = ESIM_BUF_INIT;
		err = build_message(o, s.eightbit, to, subject, text, at, id, &b);
		if (err == ESIM_OK)
			err = smtp_write(&s, (const char *)b.data, b.len);
		esim_buf_free(&b);
		if (err == ESIM_OK)
			err = smtp_cmd(&s, "end of DATA", NULL, 250, 250);
	}
	if (err == ESIM_OK)
		smtp_cmd(&s, "QUIT", "QUIT", 221, 221); /* delivered already */
	smtp_close(&s);
	return err;
}

/* ---- the outbox ------------------------------------------------------------------ */

struct outmail {
	int64_t id, tries, at;
	char *to, *subject, *body, *ref;
};

static void outmail_free(struct outmail *m)
{
	free(m->to);
	free(m->subject);
	/* a body may hold a one-time code (intake.c) */
	if (m->body)
		sodium_memzero(m->body, strlen(m->body));
	free(m->body);
	free(m->ref);
}

/* Claim the due e-mails: a short transaction under the lock. */
static esim_err claim_once(op *o, struct outmail *m, size_t *n)
{
	*n = 0;
	pthread_mutex_lock(&o->lock);
	esim_err err = store_begin(o->s);
	int64_t now = (int64_t)op_now(o);
	store_stmt *st;
	if (err == ESIM_OK)
		err = store_prepare(
		    o->s,
		    "SELECT id, recipient, subject, body, attempts, at, reference FROM op_notices"
		    " WHERE channel = 'email' AND sent = 0 AND attempts < ?2 AND"
		    " next_at <= ?1 AND claimed_until <= ?1 ORDER BY id LIMIT 16"
		    " {{SKIP_LOCKED}}",
		    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, now);
		store_bind_int64(st, 2, MAIL_MAX_TRIES);
		bool row;
		while (*n < MAIL_BATCH && (err = store_step(st, &row)) == ESIM_OK && row) {
			struct outmail *x = &m[*n];
			x->id = store_col_int64(st, 0);
			x->to = strdup(store_col_text(st, 1));
			x->subject = strdup(store_col_text(st, 2));
			x->body = strdup(store_col_text(st, 3));
			x->tries = store_col_int64(st, 4);
			x->at = store_col_int64(st, 5);
			const char *ref = store_col_text(st, 6); /* NULL: none */
			x->ref = strdup(ref ? ref : "");
			(*n)++;
			if (!x->to || !x->subject || !x->body || !x->ref)
				err = ESIM_E_NOMEM;
		}
		store_finalize(st);
	}
	for (size_t i = 0; err == ESIM_OK && i < *n; i++) {
		err = store_prepare(o->s, "UPDATE op_notices SET claimed_until = ?1 WHERE id = ?2",
				    &st);
		if (err == ESIM_OK) {
			store_bind_int64(st, 1, now + MAIL_CLAIM_S);
			store_bind_int64(st, 2, m[i].id);
			err = store_run(st);
			store_finalize(st);
		}
	}
	if (err == ESIM_OK)
		err = store_commit(o->s);
	else
		store_rollback(o->s);
	pthread_mutex_unlock(&o->lock);
	if (err != ESIM_OK) {
		for (size_t i = 0; i < *n; i++)
			outmail_free(&m[i]);
		*n = 0;
	}
	return err;
}

static esim_err settle_once(op *o, const struct outmail *m, bool ok, const char *why)
{
	pthread_mutex_lock(&o->lock);
	esim_err err = store_begin(o->s);
	int64_t now = (int64_t)op_now(o);
	store_stmt *st;
	if (err == ESIM_OK)
		err = store_prepare(
		    o->s,
		    ok ? "UPDATE op_notices SET sent = 1, sent_at = ?1, attempts = ?2,"
			 " claimed_until = 0, last_error = NULL WHERE id = ?3"
		       : "UPDATE op_notices SET attempts = ?2, claimed_until = 0,"
			 " next_at = ?1, last_error = ?4 WHERE id = ?3",
		    &st);
	if (err == ESIM_OK) {
		int64_t back = MAIL_BACKOFF_MIN;
		for (int64_t i = 0; i < m->tries && back < MAIL_BACKOFF_MAX; i++)
			back *= 2;
		if (back > MAIL_BACKOFF_MAX)
			back = MAIL_BACKOFF_MAX;
		store_bind_int64(st, 1, ok ? now : now + back);
		store_bind_int64(st, 2, m->tries + 1);
		store_bind_int64(st, 3, m->id);
		if (!ok)
			store_bind_text(st, 4, why);
		err = store_run(st);
		store_finalize(st);
	}
	/* delivered: a call-back code leaves the stored copies (intake.c) */
	if (err == ESIM_OK && ok)
		err = op_intake_scrub(o, m->ref);
	char d[400];
	json_t *j = json_pack("{s:I,s:I,s:s?}", "notice", (json_int_t)m->id, "attempt",
			      (json_int_t)(m->tries + 1), "error", ok ? NULL : why);
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	snprintf(d, sizeof d, "%s", t ? t : "{}");
	free(t);
	json_decref(j);
	if (err == ESIM_OK)
		err = op_audit(o, "system", ok ? "mail.sent" : "mail.retry", d);
	if (err == ESIM_OK)
		err = store_commit(o->s);
	else
		store_rollback(o->s);
	pthread_mutex_unlock(&o->lock);
	return err;
}

/* Both steps again when PostgreSQL's SERIALIZABLE isolation rolls one back
 * (another instance touched the same rows), as a request is (http.c). */
static esim_err claim(op *o, struct outmail *m, size_t *n)
{
	esim_err err;
	for (int attempt = 0;; attempt++)
		if ((err = claim_once(o, m, n)) != ESIM_E_STORE_BUSY || attempt >= 20)
			return err;
}

static esim_err settle(op *o, const struct outmail *m, bool ok, const char *why)
{
	esim_err err;
	for (int attempt = 0;; attempt++)
		if ((err = settle_once(o, m, ok, why)) != ESIM_E_STORE_BUSY || attempt >= 20)
			return err;
}

esim_err op_mail_deliver(op *o, size_t *sent, size_t *failed)
{
	if (sent)
		*sent = 0;
	if (failed)
		*failed = 0;
	if (!o->smtp_host)
		return ESIM_E_OP_CONFIG;
	struct outmail m[MAIL_BATCH];
	memset(m, 0, sizeof m);
	size_t n = 0;
	esim_err err = claim(o, m, &n);
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		char why[400] = "";
		esim_err e = smtp_send(o, m[i].id, m[i].to, m[i].subject, m[i].body,
				       (time_t)m[i].at, why, sizeof why);
		if (e != ESIM_OK && o->log) {
			const struct esim_log_kv kv[] = {ESIM_LOG_I("notice", m[i].id),
							 ESIM_LOG_I("try", m[i].tries + 1),
							 ESIM_LOG_S("why", why)};
			esim_log_emit(o->log, ESIM_LOG_WARN, NULL, "notice not sent", kv, 3);
		} else if (e != ESIM_OK) {
			fprintf(stderr, "esim-operator: notice %lld not sent (try %lld): %s\n",
				(long long)m[i].id, (long long)m[i].tries + 1, why);
		}
		err = settle(o, &m[i], e == ESIM_OK, why);
		if (e == ESIM_OK && sent)
			(*sent)++;
		else if (e != ESIM_OK && failed)
			(*failed)++;
	}
	for (size_t i = 0; i < n; i++)
		outmail_free(&m[i]);
	return err;
}

/* ---- letters ------------------------------------------------------------------------ */

esim_err op_notify_letter(op *o, int64_t cust, const char *purpose, const char *subject,
			  const char *text, char ref_out[OP_REF_LEN])
{
	static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	char c[8], ref[OP_REF_LEN];
	for (int i = 0; i < 8; i++)
		c[i] = alpha[randombytes_uniform(sizeof alpha - 1)];
	snprintf(ref, sizeof ref, "OP-%.4s-%.4s", c, c + 4);
	int64_t now = (int64_t)op_now(o);
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "INSERT INTO op_contacts (reference, customer_id, channel,"
				     " purpose, at) VALUES (?1, ?2, 'letter', ?3, ?4)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, ref);
	store_bind_int64(st, 2, cust);
	store_bind_text(st, 3, purpose);
	store_bind_int64(st, 4, now);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = store_prepare(
		    o->s,
		    "INSERT INTO op_notices (customer_id, channel, recipient, subject,"
		    " body, reference, at, sent) SELECT id, 'letter', name || ', ' ||"
		    " address, ?2, ?3, ?4, ?5, 0 FROM op_customers WHERE id = ?1",
		    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, cust);
	store_bind_text(st, 2, subject);
	store_bind_text(st, 3, text);
	store_bind_text(st, 4, ref);
	store_bind_int64(st, 5, now);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK && ref_out)
		memcpy(ref_out, ref, OP_REF_LEN);
	return err;
}

static esim_err html_text(esim_buf *b, const char *s)
{
	esim_err err = ESIM_OK;
	for (const char *p = s ? s : ""; err == ESIM_OK && *p; p++) {
		const char *e = *p == '<'    ? "&lt;"
				: *p == '>'  ? "&gt;"
				: *p == '&'  ? "&amp;"
				: *p == '"'  ? "&quot;"
				: *p == '\'' ? "&#39;"
					     : NULL;
		err = e ? esim_buf_append(b, e, strlen(e)) : esim_buf_append_byte(b, (uint8_t)*p);
	}
	return err;
}

esim_err op_letter_html(op *o, int64_t id, int64_t cust, char **html)
{
	*html = NULL;
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "SELECT n.recipient, n.subject, n.body, n.reference, n.at,"
				     " n.customer_id FROM op_notices n WHERE n.id = ?1 AND"
				     " n.channel = 'letter' AND (?2 < 0 OR n.customer_id = ?2)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, cust);
	bool row;
	err = store_step(st, &row);
	char lang[4] = "en";
	if (err == ESIM_OK && row)
		err = op_customer_lang(o, store_col_int64(st, 5), lang);
	if (err != ESIM_OK || !row) {
		store_finalize(st);
		return err;
	}
	esim_buf b = ESIM_BUF_INIT;
	char date[32], from[200], foot[600];
	op_iso_time((time_t)store_col_int64(st, 4), date);
	date[10] = '\0';
	op_fill(from, sizeof from, op_tr(o, lang, "letter.from", "{operator} customer care"),
		"operator", o->name, NULL);
	/* the same footer as the e-mail and SMS notices */
	op_fill(foot, sizeof foot,
		op_tr(o, lang, "notice.reference",
		      "Verification reference: {reference}\nCheck it on our site under \"Was this "
		      "really us?\". We never ask for your password or codes by phone."),
		"reference", store_col_text(st, 3), NULL);
	char head[120];
	snprintf(head, sizeof head,
		 "<!DOCTYPE html><html lang=\"%s\"><head><meta charset=\"utf-8\"><title>",
		 !strcmp(lang, "zh") ? "zh-CN" : lang);
	/* even entries are markup, odd ones text (escaped) */
	const char *parts[] = {head,
			       store_col_text(st, 1),
			       "</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>"
			       "<body class=\"letter\"><p class=\"letter-from\">",
			       from,
			       "</p><p class=\"letter-to\">",
			       store_col_text(st, 0),
			       "</p><p class=\"letter-date\">",
			       date,
			       "</p><h1>",
			       store_col_text(st, 1),
			       "</h1><pre class=\"letter-body\">",
			       store_col_text(st, 2),
			       "</pre><pre class=\"letter-ref\">",
			       foot,
			       "</pre></body></html>\n"};
	for (size_t i = 0; err == ESIM_OK && i < sizeof parts / sizeof parts[0]; i++)
		err = i % 2 ? html_text(&b, parts[i])
			    : esim_buf_append(&b, parts[i], strlen(parts[i]));
	store_finalize(st);
	if (err == ESIM_OK)
		err = esim_buf_append_byte(&b, 0);
	if (err == ESIM_OK)
		*html = (char *)b.data;
	else
		esim_buf_free(&b);
	return err;
}
