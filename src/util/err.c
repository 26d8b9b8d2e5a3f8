/*
 * Names and descriptions for esim_err, generated from the one list in
 * include/esim/err.h so that the enum and its texts cannot drift apart,
 * and esim_errctx, the caller-owned detail (path, address, reason, hint)
 * that a failing function adds to its code. Both are written in English
 * (logs, --json) and, for a person at a terminal, also in the user's
 * language from the "esim" gettext domain (docs/i18n.md): the texts here,
 * in include/esim/err.h and the formats given to esim_errctx_set are
 * msgids of po/esim.pot.
 */
#define ESIM_TEXT_DOMAIN "esim"
#define N_(s)		 (s) /* a msgid, translated where it is shown */
#include <libintl.h>
#include <stdarg.h>
#include <stdio.h>

#include "esim/err.h"

const char *esim_strerror(esim_err err)
{
	switch (err) {
	case ESIM_OK:
		return N_("success");
#define ESIM_ERR__TEXT_(name, value, text)                                                         \
	case name:                                                                                 \
		return text;
		ESIM_ERR_LIST(ESIM_ERR__TEXT_)
#undef ESIM_ERR__TEXT_
	case ESIM_E__LAST:
		break;
	}
	return N_("unknown error");
}

const char *esim_errname(esim_err err)
{
	switch (err) {
	case ESIM_OK:
		return "ESIM_OK";
#define ESIM_ERR__NAME_(name, value, text)                                                         \
	case name:                                                                                 \
		return #name;
		ESIM_ERR_LIST(ESIM_ERR__NAME_)
#undef ESIM_ERR__NAME_
	case ESIM_E__LAST:
		break;
	}
	return "ESIM_E_UNKNOWN";
}

void esim_errctx_set(esim_errctx *ctx, const char *fmt, ...)
{
	if (ctx == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->text, ESIM_ERRCTX_MAX, fmt, ap);
	va_end(ap);
	/* gettext returns fmt itself when no catalogue is bound (servers);
	 * msgfmt --check holds a translation to fmt's conversions */
	va_start(ap, fmt);
	vsnprintf(ctx->text + ESIM_ERRCTX_MAX, ESIM_ERRCTX_MAX, dgettext(ESIM_TEXT_DOMAIN, fmt),
		  ap);
	va_end(ap);
}

void esim_errctx_clear(esim_errctx *ctx)
{
	if (ctx != NULL) {
		ctx->text[0] = '\0';
		ctx->text[ESIM_ERRCTX_MAX] = '\0';
	}
}

const char *esim_errctx_text(const esim_errctx *ctx)
{
	return ctx != NULL ? ctx->text : "";
}

const char *esim_errctx_local(const esim_errctx *ctx)
{
	if (ctx == NULL)
		return "";
	const char *local = ctx->text + ESIM_ERRCTX_MAX;
	return local[0] != '\0' ? local : ctx->text;
}

const char *esim_strerror_local(esim_err err)
{
	return dgettext(ESIM_TEXT_DOMAIN, esim_strerror(err));
}
