/*
 * Names and descriptions for esim_err, generated from the one list in
 * include/esim/err.h so that the enum and its texts cannot drift apart,
 * and esim_errctx, the caller-owned detail (path, address, reason, hint)
 * that a failing function adds to its code.
 */
#include <stdarg.h>
#include <stdio.h>

#include "esim/err.h"

const char *esim_strerror(esim_err err)
{
	switch (err) {
	case ESIM_OK:
		return "success";
#define ESIM_ERR__TEXT_(name, value, text)                                                         \
	case name:                                                                                 \
		return text;
		ESIM_ERR_LIST(ESIM_ERR__TEXT_)
#undef ESIM_ERR__TEXT_
	case ESIM_E__LAST:
		break;
	}
	return "unknown error";
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
	vsnprintf(ctx->text, sizeof ctx->text, fmt, ap);
	va_end(ap);
}

void esim_errctx_clear(esim_errctx *ctx)
{
	if (ctx != NULL)
		ctx->text[0] = '\0';
}

const char *esim_errctx_text(const esim_errctx *ctx)
{
	return ctx != NULL ? ctx->text : "";
}
