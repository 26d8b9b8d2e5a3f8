/*
 * The ES9+ / ES11 message codec, common part (SGP.22 5.6 ES9+, 5.8 ES11,
 * 6.5 JSON binding, 6.6 ASN.1 binding): function names, which byte fields
 * each message carries and which TLV each must be, the owned memory of a
 * decoded message, and the tables between the JSON binding's subject /
 * reason codes (SGP.22 5.6.x, 5.8.x) and the ASN.1 binding's error
 * INTEGERs (RSPDefinitions). es9_json.c and es9_asn1.c are the two
 * bindings; both walk the field tables here, so that a message's fields
 * are listed once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es9_codec.h"

static const char *const fn_names[RSP_ES9_FN_COUNT] = {
    "initiateAuthentication", "authenticateClient", "getBoundProfilePackage",
    "cancelSession",	      "handleNotification", "authenticateClient",
};

const char *rsp_es9_fn_name(enum rsp_es9_fn fn)
{
	return (unsigned)fn < RSP_ES9_FN_COUNT ? fn_names[fn] : "unknown";
}

bool rsp_es9_fn_from_name(const char *name, enum rsp_es9_fn *out)
{
	for (unsigned i = 0; name && i < RSP_ES11_AUTHENTICATE_CLIENT; i++)
		if (strcmp(name, fn_names[i]) == 0) {
			*out = (enum rsp_es9_fn)i;
			return true;
		}
	return false;
}

/* ---- owned memory --------------------------------------------------------------------- */

struct own_block {
	struct own_block *next;
	uint8_t data[];
};

esim_err es9__own(void **own, size_t len, uint8_t **out)
{
	struct own_block *b = malloc(sizeof *b + (len ? len : 1));
	if (!b)
		return ESIM_E_NOMEM;
	b->next = *own;
	*own = b;
	*out = b->data;
	return ESIM_OK;
}

esim_err es9__own_copy(void **own, const uint8_t *p, size_t len, der_span *dst)
{
	uint8_t *q;
	esim_err err = es9__own(own, len, &q);
	if (err != ESIM_OK)
		return err;
	if (len)
		memcpy(q, p, len);
	dst->p = q;
	dst->len = len;
	return ESIM_OK;
}

void es9__own_free(void **own)
{
	struct own_block *b = *own;
	while (b) {
		struct own_block *n = b->next;
		free(b);
		b = n;
	}
	*own = NULL;
}

void rsp_es9_request_clear(struct rsp_es9_request *r)
{
	if (!r)
		return;
	es9__own_free(&r->own_);
	enum rsp_es9_fn fn = r->fn;
	memset(r, 0, sizeof *r);
	r->fn = fn;
}

void rsp_es9_response_clear(struct rsp_es9_response *r)
{
	if (!r)
		return;
	es9__own_free(&r->own_);
	enum rsp_es9_fn fn = r->fn;
	memset(r, 0, sizeof *r);
	r->fn = fn;
}

/* ---- fields --------------------------------------------------------------------------- */

#define REQ(m)	offsetof(struct rsp_es9_request, u.m)
#define RESP(m) offsetof(struct rsp_es9_response, u.m)

static const struct es9_field f_auth_req[] = {
    {"authenticateServerResponse", REQ(authenticate.authenticate_server_response), 0xBF38, 0,
     RSP_ES9_MAX_TLV},
};
static const struct es9_field f_bpp_req[] = {
    {"prepareDownloadResponse", REQ(get_bpp.prepare_download_response), 0xBF21, 0, RSP_ES9_MAX_TLV},
};
static const struct es9_field f_cancel_req[] = {
    {"cancelSessionResponse", REQ(cancel.cancel_session_response), 0xBF41, 0, RSP_ES9_MAX_TLV},
};
static const struct es9_field f_notify_req[] = {
    {"pendingNotification", REQ(notify.pending_notification), 0xBF37, 0x30, RSP_ES9_MAX_TLV},
};
static const struct es9_field f_init_resp[] = {
    {"serverSigned1", RESP(initiate.server_signed1), 0x30, 0, RSP_ES9_MAX_TLV},
    {"serverSignature1", RESP(initiate.server_signature1), 0x5F37, 0, RSP_ES9_MAX_TLV},
    {"euiccCiPKIdToBeUsed", RESP(initiate.euicc_ci_pkid), 0x04, 0, RSP_ES9_MAX_TLV},
    {"serverCertificate", RESP(initiate.server_certificate), 0x30, 0, RSP_ES9_MAX_TLV},
};
static const struct es9_field f_auth_resp[] = {
    {"profileMetadata", RESP(authenticate.profile_metadata), 0xBF25, 0, RSP_ES9_MAX_TLV},
    {"smdpSigned2", RESP(authenticate.smdp_signed2), 0x30, 0, RSP_ES9_MAX_TLV},
    {"smdpSignature2", RESP(authenticate.smdp_signature2), 0x5F37, 0, RSP_ES9_MAX_TLV},
    {"smdpCertificate", RESP(authenticate.smdp_certificate), 0x30, 0, RSP_ES9_MAX_TLV},
};
static const struct es9_field f_bpp_resp[] = {
    {"boundProfilePackage", RESP(get_bpp.bound_profile_package), 0xBF36, 0, RSP_ES9_MAX_BPP},
};

#define N(a) (sizeof(a) / sizeof *(a))

const struct es9_field *es9__request_fields(enum rsp_es9_fn fn, size_t *n, bool *txid)
{
	*txid = true;
	switch (fn) {
	case RSP_ES9_AUTHENTICATE_CLIENT:
	case RSP_ES11_AUTHENTICATE_CLIENT:
		*n = N(f_auth_req);
		return f_auth_req;
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		*n = N(f_bpp_req);
		return f_bpp_req;
	case RSP_ES9_CANCEL_SESSION:
		*n = N(f_cancel_req);
		return f_cancel_req;
	case RSP_ES9_HANDLE_NOTIFICATION:
		*txid = false;
		*n = N(f_notify_req);
		return f_notify_req;
	default: /* initiateAuthentication: its own code in each binding */
		*txid = false;
		*n = 0;
		return NULL;
	}
}

const struct es9_field *es9__response_fields(enum rsp_es9_fn fn, size_t *n, bool *txid)
{
	*txid = true;
	switch (fn) {
	case RSP_ES9_INITIATE_AUTHENTICATION:
		*n = N(f_init_resp);
		return f_init_resp;
	case RSP_ES9_AUTHENTICATE_CLIENT:
		*n = N(f_auth_resp);
		return f_auth_resp;
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		*n = N(f_bpp_resp);
		return f_bpp_resp;
	case RSP_ES11_AUTHENTICATE_CLIENT: /* transactionId + eventEntries: own code */
		*n = 0;
		return NULL;
	default: /* cancelSession: nothing; handleNotification: no answer */
		*txid = false;
		*n = 0;
		return NULL;
	}
}

rsp_txid *es9__request_txid(struct rsp_es9_request *r)
{
	switch (r->fn) {
	case RSP_ES9_AUTHENTICATE_CLIENT:
	case RSP_ES11_AUTHENTICATE_CLIENT:
		return &r->u.authenticate.txid;
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		return &r->u.get_bpp.txid;
	case RSP_ES9_CANCEL_SESSION:
		return &r->u.cancel.txid;
	default:
		return NULL;
	}
}

rsp_txid *es9__response_txid(struct rsp_es9_response *r)
{
	switch (r->fn) {
	case RSP_ES9_INITIATE_AUTHENTICATION:
		return &r->u.initiate.txid;
	case RSP_ES9_AUTHENTICATE_CLIENT:
		return &r->u.authenticate.txid;
	case RSP_ES11_AUTHENTICATE_CLIENT:
		return &r->u.es11.txid;
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		return &r->u.get_bpp.txid;
	default:
		return NULL;
	}
}

esim_err es9__check_field(const struct es9_field *f, const uint8_t *p, size_t len)
{
	if (len > f->max)
		return ESIM_E_RSP_FIELD_SIZE;
	if (f->tag == 0)
		return ESIM_OK;
	der_element e;
	esim_err err = der_parse_single(p, len, &e);
	if (err != ESIM_OK)
		return err;
	if (e.tag != f->tag && (f->alt == 0 || e.tag != f->alt))
		return ESIM_E_RSP_BAD_STRUCTURE;
	return ESIM_OK;
}

/* ---- error codes ------------------------------------------------------------------------ */

/* One error INTEGER of a function and the JSON codes it stands for. With
 * any_reason, every reason of the subject maps to the code (reason is then
 * the one reported when decoding the INTEGER). The first match wins. */
struct es9_error {
	int64_t code;
	const char *subject, *reason;
	bool any_reason;
};

/* InitiateAuthenticationResponse: invalidDpAddress(1),
 * euiccVersionNotSupportedByDp(2), ciPKNotSupported(3). */
static const struct es9_error e_init[] = {
    {1, "8.8.1", "3.8", true},
    {2, "8.8.3", "3.1", true},
    {3, "8.8.2", "3.1", true},
    {3, "8.8.4", "3.7", true},
};
/* AuthenticateClientResponseEs9: eumCertificateInvalid(1) ..
 * insufficientMemory(11). */
static const struct es9_error e_auth[] = {
    {2, "8.1.2", "6.3", false}, {1, "8.1.2", "6.1", true},   {4, "8.1.3", "6.3", false},
    {3, "8.1.3", "6.1", true},	{5, "8.1", "6.1", false},    {6, "8.2.6", "3.8", true},
    {7, "8.1.1", "3.8", true},	{8, "8.2.5", "4.3", true},   {8, "8.2", "1.2", false},
    {9, "8.11.1", "3.9", true}, {10, "8.10.1", "3.9", true}, {11, "8.1", "4.8", false},
};
/* AuthenticateClientResponseEs11: as ES9+ 1..5, eventIdUnknown(6),
 * invalidTransactionId(7). */
static const struct es9_error e_es11[] = {
    {2, "8.1.2", "6.3", false}, {1, "8.1.2", "6.1", true}, {4, "8.1.3", "6.3", false},
    {3, "8.1.3", "6.1", true},	{5, "8.1", "6.1", false},  {6, "8.9.5", "3.9", true},
    {7, "8.10.1", "3.9", true},
};
/* GetBoundProfilePackageResponse: euiccSignatureInvalid(1) ..
 * downloadOrderExpired(6), invalidTransactionId(95). */
static const struct es9_error e_bpp[] = {
    {1, "8.1", "6.1", false},	 {2, "8.2.7", "2.2", false}, {3, "8.2.7", "3.8", false},
    {4, "8.2.7", "6.4", false},	 {5, "8.2", "3.7", false},   {6, "8.8.5", "4.10", false},
    {95, "8.10.1", "3.9", true},
};
/* CancelSessionResponseEs9: invalidTransactionId(1),
 * euiccSignatureInvalid(2). */
static const struct es9_error e_cancel[] = {
    {1, "8.10.1", "3.9", true},
    {2, "8.1", "6.1", false},
};

static const struct es9_error *error_table(enum rsp_es9_fn fn, size_t *n)
{
	switch (fn) {
	case RSP_ES9_INITIATE_AUTHENTICATION:
		*n = N(e_init);
		return e_init;
	case RSP_ES9_AUTHENTICATE_CLIENT:
		*n = N(e_auth);
		return e_auth;
	case RSP_ES11_AUTHENTICATE_CLIENT:
		*n = N(e_es11);
		return e_es11;
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		*n = N(e_bpp);
		return e_bpp;
	case RSP_ES9_CANCEL_SESSION:
		*n = N(e_cancel);
		return e_cancel;
	default:
		*n = 0;
		return NULL;
	}
}

int64_t rsp_es9_error_code(enum rsp_es9_fn fn, const char *subject, const char *reason)
{
	size_t n;
	const struct es9_error *t = error_table(fn, &n);
	for (size_t i = 0; subject && i < n; i++)
		if (strcmp(t[i].subject, subject) == 0 &&
		    (t[i].any_reason || (reason && strcmp(t[i].reason, reason) == 0)))
			return t[i].code;
	return 127; /* undefinedError */
}

bool rsp_es9_error_status(enum rsp_es9_fn fn, int64_t code, const char **subject,
			  const char **reason)
{
	size_t n;
	const struct es9_error *t = error_table(fn, &n);
	*subject = *reason = NULL;
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code) {
			*subject = t[i].subject;
			*reason = t[i].reason;
			return true;
		}
	return false;
}

void es9__complete_status(enum rsp_es9_fn fn, struct rsp_es9_response *r)
{
	if (r->status != RSP_ES9_FAILED)
		return;
	if (r->subject[0] == '\0' && r->error != 0) {
		const char *s, *why;
		if (rsp_es9_error_status(fn, r->error, &s, &why)) {
			snprintf(r->subject, sizeof r->subject, "%s", s);
			snprintf(r->reason, sizeof r->reason, "%s", why);
		} else if (r->message[0] == '\0') { /* undefinedError, or a value not named */
			snprintf(r->message, sizeof r->message, "%s error %lld",
				 rsp_es9_fn_name(fn), (long long)r->error);
		}
	} else if (r->error == 0) {
		r->error = rsp_es9_error_code(fn, r->subject, r->reason);
	}
}
