/*
 * Structured log lines (include/esim/log.h): one event, one line, JSON or
 * text, built in a stack buffer and written with one fputs so that lines
 * from different threads never interleave. JSON strings are escaped here
 * (quote, backslash, every control character as \u00XX, bytes that are
 * not UTF-8 as U+FFFD) so that a value from the network cannot break the
 * line, forge a field or make it invalid JSON; text values
 * with spaces, quotes or control characters are quoted the same way.
 * Request ids (X-Request-Id) are checked and made here too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "esim/log.h"

#define LOG_LINE_MAX 2048

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void esim_log_init(esim_log *lg, const char *prog, enum esim_log_format fmt)
{
	if (lg == NULL)
		return;
	lg->prog = prog;
	lg->format = fmt;
	lg->min_level = ESIM_LOG_INFO;
	lg->out = NULL;
}

esim_err esim_log_format_parse(const char *text, enum esim_log_format *out)
{
	if (text == NULL || out == NULL)
		return ESIM_E_ARG;
	if (strcmp(text, "json") == 0)
		*out = ESIM_LOG_JSON;
	else if (strcmp(text, "text") == 0)
		*out = ESIM_LOG_TEXT;
	else
		return ESIM_E_ARG;
	return ESIM_OK;
}

/* A bounded writer: what does not fit is dropped, len says what was kept. */
struct wbuf {
	char *p;
	size_t cap, len;
	bool full;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
	if (w->full || w->len + n + 1 > w->cap) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

static void puts_(struct wbuf *w, const char *s)
{
	put(w, s, strlen(s));
}

static void putf(struct wbuf *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct wbuf *w, const char *fmt, ...)
{
	char tmp[96];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		put(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The length of the well-formed UTF-8 sequence at c (1..4), or 0 when it
 * is not one (a stray continuation byte, an overlong form, a surrogate,
 * beyond U+10FFFF, or cut short by the end of the string). */
static size_t utf8_len(const unsigned char *c)
{
	if (c[0] < 0x80)
		return 1;
	size_t n;
	unsigned cp;
	if ((c[0] & 0xE0) == 0xC0) {
		n = 2;
		cp = c[0] & 0x1Fu;
	} else if ((c[0] & 0xF0) == 0xE0) {
		n = 3;
		cp = c[0] & 0x0Fu;
	} else if ((c[0] & 0xF8) == 0xF0) {
		n = 4;
		cp = c[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((c[i] & 0xC0) != 0x80) /* the NUL ends it too */
			return 0;
		cp = cp << 6 | (c[i] & 0x3Fu);
	}
	static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* s as a quoted JSON string (NULL: null); bytes that are not UTF-8 become
 * U+FFFD, so that the line stays valid JSON whatever came in. */
static void put_json_str(struct wbuf *w, const char *s)
{
	if (s == NULL) {
		puts_(w, "null");
		return;
	}
	puts_(w, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c;) {
		size_t n = utf8_len(c);
		if (n == 0) {
			puts_(w, "\\ufffd");
			c++;
			continue;
		}
		if (*c == '"')
			puts_(w, "\\\"");
		else if (*c == '\\')
			puts_(w, "\\\\");
		else if (*c < 0x20 || *c == 0x7f)
			putf(w, "\\u%04x", *c);
		else
			put(w, (const char *)c, n);
		c += n;
	}
	puts_(w, "\"");
}

/* A text value as it is when it is one plain word, else JSON-quoted. */
static void put_text_value(struct wbuf *w, const char *s)
{
	if (s == NULL) {
		puts_(w, "-");
		return;
	}
	bool plain = *s != '\0';
	for (const unsigned char *c = (const unsigned char *)s; *c && plain; c++)
		plain = *c > 0x20 && *c < 0x7f && *c != '"' && *c != '\\' && *c != '=';
	if (plain)
		puts_(w, s);
	else
		put_json_str(w, s);
}

static void timestamp(char out[32])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* One field; returns false (and writes nothing) when it does not fit. */
static bool put_field(struct wbuf *w, enum esim_log_format fmt, const char *key, const char *str,
		      long long num, bool is_num)
{
	size_t mark = w->len;
	if (fmt == ESIM_LOG_JSON) {
		puts_(w, ",");
		put_json_str(w, key);
		puts_(w, ":");
		if (is_num)
			putf(w, "%lld", num);
		else
			put_json_str(w, str);
	} else {
		puts_(w, " ");
		put_text_value(w, key);
		puts_(w, "=");
		if (is_num)
			putf(w, "%lld", num);
		else
			put_text_value(w, str);
	}
	if (!w->full)
		return true;
	w->len = mark; /* cut at the field: the line stays well formed */
	w->p[w->len] = '\0';
	w->full = false;
	return false;
}

size_t esim_log_render(const esim_log *lg, enum esim_log_level level, const char *request_id,
		       const char *msg, const struct esim_log_kv *kv, size_t n, char *out,
		       size_t cap)
{
	if (out == NULL || cap == 0)
		return 0;
	out[0] = '\0';
	if (lg == NULL || cap < 64)
		return 0;
	if ((unsigned)level > ESIM_LOG_ERROR)
		level = ESIM_LOG_ERROR;
	/* room for the closing "}\n" is kept back from the fields */
	struct wbuf w = {.p = out, .cap = cap - 2};
	char ts[32];
	timestamp(ts);
	const char *prog = lg->prog ? lg->prog : "esim";
	if (lg->format == ESIM_LOG_JSON) {
		puts_(&w, "{\"ts\":");
		put_json_str(&w, ts);
		puts_(&w, ",\"level\":");
		put_json_str(&w, level_names[level]);
		puts_(&w, ",\"prog\":");
		put_json_str(&w, prog);
		if (w.full) { /* a tiny buffer: nothing useful fits */
			out[0] = '\0';
			return 0;
		}
	} else {
		puts_(&w, ts);
		puts_(&w, " ");
		puts_(&w, level_names[level]);
		puts_(&w, " ");
		puts_(&w, prog);
		puts_(&w, ":");
	}
	bool ok = put_field(&w, lg->format, "msg", msg ? msg : "", 0, false);
	if (ok && request_id != NULL && request_id[0] != '\0')
		ok = put_field(&w, lg->format, "request_id", request_id, 0, false);
	for (size_t i = 0; ok && i < n; i++)
		if (kv[i].key != NULL)
			ok = put_field(&w, lg->format, kv[i].key, kv[i].str, kv[i].num,
				       kv[i].is_num);
	if (lg->format == ESIM_LOG_TEXT && w.len > 0 && out[w.len - 1] == ':')
		w.len--; /* no msg fitted */
	w.cap = cap;	 /* the kept-back room */
	if (lg->format == ESIM_LOG_JSON)
		puts_(&w, "}");
	puts_(&w, "\n");
	return w.len;
}

void esim_log_emit(const esim_log *lg, enum esim_log_level level, const char *request_id,
		   const char *msg, const struct esim_log_kv *kv, size_t n)
{
	if (lg == NULL || level < lg->min_level)
		return;
	char line[LOG_LINE_MAX];
	if (esim_log_render(lg, level, request_id, msg, kv, n, line, sizeof line) == 0)
		return;
	FILE *f = lg->out ? lg->out : stderr;
	fputs(line, f);
	fflush(f);
}

void esim_log_net(void *arg, const char *line)
{
	esim_log_emit(arg, ESIM_LOG_WARN, NULL, line, NULL, 0);
}

/* ---- request ids ---- */

bool esim_request_id_valid(const char *id)
{
	if (id == NULL || id[0] == '\0')
		return false;
	size_t n = 0;
	for (const char *c = id; *c; c++, n++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.';
		if (!ok || n >= ESIM_REQUEST_ID_MAX)
			return false;
	}
	return true;
}

esim_err esim_request_id_new(char out[ESIM_REQUEST_ID_MAX + 1])
{
	uint8_t r[8];
	size_t got = 0;
	while (got < sizeof r) {
		ssize_t k = getrandom(r + got, sizeof r - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			out[0] = '\0';
			return ESIM_E_CRYPTO_RANDOM;
		}
		got += (size_t)k;
	}
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return ESIM_OK;
}

const char *esim_request_id_pick(const char *in, char out[ESIM_REQUEST_ID_MAX + 1])
{
	if (esim_request_id_valid(in)) {
		memcpy(out, in, strlen(in) + 1);
		return out;
	}
	if (esim_request_id_new(out) != ESIM_OK)
		snprintf(out, ESIM_REQUEST_ID_MAX + 1, "none");
	return out;
}
