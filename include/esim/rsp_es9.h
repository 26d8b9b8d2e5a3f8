/*
 * rsp_es9: the one codec of every ES9+ (LPA <-> SM-DP+) and ES11 (LPA <->
 * SM-DS) message, in both bindings of SGP.22 6.5 (JSON) and 6.6 (ASN.1),
 * used by the LPA, the SM-DP+, the SM-DS and the tests alike.
 *
 * A request or a response is one struct: which function (enum
 * rsp_es9_fn), and the fields of that function's message. Byte fields are
 * complete TLVs (serverSigned1, the eUICC's AuthenticateServerResponse,
 * the bound profile package, ...) that cross both bindings byte for byte,
 * since signatures cover them; the transactionId is an rsp_txid (hex in
 * JSON, [0] OCTET STRING in ASN.1).
 *
 * Ownership: for encoding, the caller fills a struct whose spans it owns
 * (they are only read). A decoded struct owns its bytes; release it with
 * rsp_es9_request_clear / rsp_es9_response_clear (also safe on a zeroed
 * struct and after a failed decode).
 *
 * Decoding is strict and bounded: every mandatory field must be present
 * and well formed, byte fields are capped (RSP_ES9_MAX_*), the outer
 * ASN.1 envelope must be exactly one element. On failure the error is
 * ESIM_E_NOT_FOUND (a mandatory member missing), ESIM_E_RSP_BAD_STRUCTURE
 * (wrong type, wrong tag, not one element), ESIM_E_RSP_FIELD_SIZE,
 * ESIM_E_BASE64, ESIM_E_HEX / ESIM_E_RSP_BAD_TXID, ESIM_E_TOO_LARGE (the
 * body) or a DER error, and *field (when not NULL; static text, NULL on
 * success) names the member that was wrong ("transactionId", "eventId").
 * Unknown JSON members and ASN.1 elements after the mandatory ones are
 * ignored (both bindings are extensible).
 *
 * The ASN.1 binding (RSPDefinitions, DEFINITIONS AUTOMATIC TAGS): the
 * body is a RemoteProfileProvisioningRequest / -Response, [2] CHOICE (A2),
 * whose alternative is the function's message under its explicit tag
 * (BF39, BF3B, BF3A, BF41, BF3D; responses BF39, BF3B, BF3A, BF41 and
 * BF40 for ES11). Inside, components without a tag in the module get
 * context tags by position (implicit, except around an untagged CHOICE):
 * CancelSessionRequestEs9 is { [0] 80 transactionId, [1] A1 the eUICC's
 * CancelSessionResponse (its BF41 replaced) }, HandleNotification is
 * { [0] A0 { BF37 PIR | 30 other notification } }, each response CHOICE
 * is { [0] A0 ok | [1] 81 INTEGER error }, AuthenticateClientOkEs11 is
 * { 80 transactionId, A1 SEQUENCE OF EventEntries { 80 eventId, 81
 * rspServerAddress } }. es9_asn1.c derives each one.
 */
#ifndef ESIM_RSP_ES9_H
#define ESIM_RSP_ES9_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "esim/der.h"
#include "esim/err.h"
#include "esim/rsp.h"
#include "esim/rsp_auth.h"

/* Size caps of decoded byte fields. */
#define RSP_ES9_MAX_TLV	   (64u * 1024)	      /* a signed object or certificate */
#define RSP_ES9_MAX_BPP	   (8u * 1024 * 1024) /* boundProfilePackage */
#define RSP_ES9_MAX_TEXT   255u		      /* smdpAddress, eventId, rspServerAddress */
#define RSP_ES9_MAX_EVENTS 64u		      /* eventEntries of one ES11 answer */
#define RSP_ES9_MAX_BODY   (RSP_ES9_MAX_BPP * 2)

enum rsp_es9_fn {
	RSP_ES9_INITIATE_AUTHENTICATION = 0,
	RSP_ES9_AUTHENTICATE_CLIENT, /* ES9+ (the ok answer carries the metadata) */
	RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
	RSP_ES9_CANCEL_SESSION,
	RSP_ES9_HANDLE_NOTIFICATION,  /* request only: the answer is HTTP 204 */
	RSP_ES11_AUTHENTICATE_CLIENT, /* ES11: same request, eventEntries answer */
	RSP_ES9_FN_COUNT
};

/* The function's JSON name ("initiateAuthentication"), the last element of
 * its URL; both authenticateClient are "authenticateClient". */
const char *rsp_es9_fn_name(enum rsp_es9_fn fn);
/* The ES9+ function of a name (ES11 callers pass their own fn); false when
 * unknown. */
bool rsp_es9_fn_from_name(const char *name, enum rsp_es9_fn *out);

/* --- requests ----------------------------------------------------------------------- */

struct rsp_es9_request {
	enum rsp_es9_fn fn;
	union {
		struct {			  /* InitiateAuthenticationRequest BF39 */
			der_span euicc_challenge; /* 16 bytes (value, not TLV) */
			der_span smdp_address;	  /* UTF-8, not NUL-terminated */
			der_span euicc_info1;	  /* BF20 TLV */
		} initiate;
		struct { /* AuthenticateClientRequest BF3B (ES9+ and ES11) */
			rsp_txid txid;
			der_span authenticate_server_response; /* BF38 TLV */
		} authenticate;
		struct { /* GetBoundProfilePackageRequest BF3A */
			rsp_txid txid;
			der_span prepare_download_response; /* BF21 TLV */
		} get_bpp;
		struct { /* CancelSessionRequestEs9 BF41 */
			rsp_txid txid;
			der_span cancel_session_response; /* the eUICC's BF41 TLV */
		} cancel;
		struct {			       /* HandleNotification BF3D */
			der_span pending_notification; /* BF37 or 30 TLV */
		} notify;
	} u;
	void *own_; /* decoded: the bytes the spans point into */
};

void rsp_es9_request_clear(struct rsp_es9_request *r);

/* JSON body (compact, members in the order of SGP.22 6.5.2), malloc'd and
 * NUL-terminated (*len excludes the NUL); caller frees. */
esim_err rsp_es9_request_to_json(const struct rsp_es9_request *r, char **out, size_t *len);
/* Decode the JSON body of function fn (an ES11 authenticateClient request
 * decodes as RSP_ES9_AUTHENTICATE_CLIENT's fields, r->fn = fn). */
esim_err rsp_es9_request_from_json(enum rsp_es9_fn fn, const uint8_t *body, size_t len,
				   struct rsp_es9_request *r, const char **field);
/* The same from a parsed document (borrowed; the server parses once). */
esim_err rsp_es9_request_from_jdoc(enum rsp_es9_fn fn, const json_t *doc, struct rsp_es9_request *r,
				   const char **field);
/* A RemoteProfileProvisioningRequest (A2 ...), malloc'd; caller frees. */
esim_err rsp_es9_request_to_asn1(const struct rsp_es9_request *r, uint8_t **out, size_t *len);
/* Decode a RemoteProfileProvisioningRequest; the function is its
 * alternative (BF3B gives RSP_ES9_AUTHENTICATE_CLIENT). */
esim_err rsp_es9_request_from_asn1(const uint8_t *body, size_t len, struct rsp_es9_request *r,
				   const char **field);

/* --- responses ---------------------------------------------------------------------- */

enum rsp_es9_status {
	RSP_ES9_SUCCESS = 0, /* Executed-Success */
	RSP_ES9_WARNING,     /* Executed-WithWarning (JSON only) */
	RSP_ES9_FAILED,	     /* Failed: subject / reason, or the ASN.1 error */
	RSP_ES9_EXPIRED,     /* Expired (JSON only) */
};

struct rsp_es11_event {
	der_span event_id;	     /* UTF-8 */
	der_span rsp_server_address; /* UTF-8 */
};

struct rsp_es9_response {
	enum rsp_es9_fn fn;
	enum rsp_es9_status status;
	/* Failed: the JSON statusCodeData ("8.1.1", "3.8", optional message;
	 * NUL-terminated) and the ASN.1 error INTEGER; each encoder derives the
	 * one it lacks (rsp_es9_error_code / rsp_es9_error_status) when it is
	 * empty / 0. */
	char subject[16], reason[16], message[256];
	int64_t error;
	union {
		struct { /* InitiateAuthenticationOkEs9 */
			rsp_txid txid;
			der_span server_signed1;     /* 30 TLV */
			der_span server_signature1;  /* 5F37 TLV */
			der_span euicc_ci_pkid;	     /* 04 TLV */
			der_span server_certificate; /* 30 TLV */
		} initiate;
		struct { /* AuthenticateClientOk (ES9+) */
			rsp_txid txid;
			der_span profile_metadata; /* BF25 TLV */
			der_span smdp_signed2;	   /* 30 TLV */
			der_span smdp_signature2;  /* 5F37 TLV */
			der_span smdp_certificate; /* 30 TLV */
		} authenticate;
		struct { /* AuthenticateClientOkEs11 */
			rsp_txid txid;
			size_t n_events;
			struct rsp_es11_event *events;
		} es11;
		struct { /* GetBoundProfilePackageOk */
			rsp_txid txid;
			der_span bound_profile_package; /* BF36 TLV */
		} get_bpp;
		/* cancelSession: CancelSessionOk is empty */
	} u;
	void *own_;
};

void rsp_es9_response_clear(struct rsp_es9_response *r);

/* The JSON answer with its header (functionExecutionStatus; statusCodeData
 * when Failed, the function's fields only on success / warning). */
esim_err rsp_es9_response_to_json(const struct rsp_es9_response *r, char **out, size_t *len);
/* Decode the JSON answer of fn. A well-formed Failed / Expired answer is
 * ESIM_OK with r->status saying so (and subject / reason / message, error
 * mapped); the fields are decoded only on success or warning. */
esim_err rsp_es9_response_from_json(enum rsp_es9_fn fn, const uint8_t *body, size_t len,
				    struct rsp_es9_response *r, const char **field);
/* The same from a parsed document (borrowed: the LPA parses long base64
 * members its own fast way, lpa_es9_parse). */
esim_err rsp_es9_response_from_jdoc(enum rsp_es9_fn fn, const json_t *doc,
				    struct rsp_es9_response *r, const char **field);
/* A RemoteProfileProvisioningResponse. A failure is the error INTEGER
 * (r->error, or mapped from subject / reason; 127 undefinedError when
 * nothing fits). RSP_ES9_HANDLE_NOTIFICATION has none: ESIM_E_ARG. */
esim_err rsp_es9_response_to_asn1(const struct rsp_es9_response *r, uint8_t **out, size_t *len);
/* Decode a RemoteProfileProvisioningResponse; BF3B is the ES9+
 * authenticateClient, BF40 the ES11 one. An error alternative gives
 * RSP_ES9_FAILED with r->error and the subject / reason it maps to. */
esim_err rsp_es9_response_from_asn1(const uint8_t *body, size_t len, struct rsp_es9_response *r,
				    const char **field);

/* --- a server's ASN.1 binding (es9_binding.c) ------------------------------------------- */

/* The server's JSON handler of one function (function: the last element of
 * its JSON URL, "initiateAuthentication"); *status the HTTP status, *answer
 * the JSON answer (malloc'd, freed by the caller). */
typedef esim_err (*rsp_es9_json_handler)(void *ctx, const char *function, const uint8_t *body,
					 size_t len, int *status, char **answer);
struct rsp_es9_asn1_server {
	bool es11;		      /* an SM-DS: initiateAuthentication and authenticateClient
				       * only, the latter answered as BF40 */
	size_t max_body;	      /* bodies beyond it are a protocol fault; 0: no cap */
	rsp_es9_json_handler handler; /* runs each request */
	void *ctx;
};
/* A request whose function's structure did not decode (the handler got
 * "{}"): for the caller's log. */
struct rsp_es9_asn1_fault {
	bool malformed;
	enum rsp_es9_fn fn;
	const char *field; /* static, may be NULL */
	esim_err err;
};
/* Serve one POST /gsma/rsp2/asn1 body through the server's JSON handler
 * (SGP.22 6.6). Not a RemoteProfileProvisioningRequest of a function
 * offered: *status 400 and no body. Else *status is the handler's; on 200
 * *out is the RemoteProfileProvisioningResponse (malloc'd; caller frees),
 * on another status there is none. fault may be NULL. */
esim_err rsp_es9_asn1_serve(const struct rsp_es9_asn1_server *srv, const uint8_t *body, size_t len,
			    int *status, uint8_t **out, size_t *out_len,
			    struct rsp_es9_asn1_fault *fault);

/* --- error codes ---------------------------------------------------------------------- */

/* The function's error INTEGER (SGP.22 RSPDefinitions) for a JSON subject /
 * reason code pair; 127 (undefinedError) when none fits. */
int64_t rsp_es9_error_code(enum rsp_es9_fn fn, const char *subject, const char *reason);
/* The subject / reason codes (static strings) of an error INTEGER; false,
 * with both NULL, when the function defines no such value. */
bool rsp_es9_error_status(enum rsp_es9_fn fn, int64_t code, const char **subject,
			  const char **reason);

/* --- the LPA's side of a download ---------------------------------------------------------
 *
 * The steps of SGP.22 3.1.2 / 3.1.3 an LPA (LPAd) runs between the eUICC
 * and the SM-DP+ (or, up to authenticateClient, an SM-DS), without any
 * I/O: each step takes what the card or the server answered and gives the
 * next message, and checks what the LPA must check on the way. The esim
 * program (src/lpa/download.c, discover.c) and the tests' and benchmarks'
 * driver (tests/common/lpa_driver.c) both run their downloads through
 * them, each with its own transport.
 */
struct rsp_es9_dl {
	char address[RSP_ES9_MAX_TEXT + 1]; /* the SM-DP+ / SM-DS contacted */
	uint8_t challenge[16];		    /* euiccChallenge sent */
	rsp_txid txid;			    /* from initiateAuthentication */
	/* the serverAddress serverSigned1 named (printable, may be cut) */
	char signed_address[RSP_ES9_MAX_TEXT + 1];
	bool cc_required; /* smdpSigned2's ccRequiredFlag */
	bool bound_otpk;  /* smdpSigned2 carries the otPK (a retry) */
	/* the authenticateClient answer, kept for PrepareDownload */
	struct rsp_es9_response auth;
};

/* address: NUL-terminated, at most RSP_ES9_MAX_TEXT bytes. */
esim_err rsp_es9_dl_init(struct rsp_es9_dl *s, const char *address);
void rsp_es9_dl_clear(struct rsp_es9_dl *s);
/* The initiateAuthentication request from the eUICC's GetEUICCChallenge
 * (BF2E) and GetEUICCInfo1 (BF20) answers; *out borrows info1 and s. */
esim_err rsp_es9_dl_initiate(struct rsp_es9_dl *s, const uint8_t *challenge_resp, size_t cl,
			     const uint8_t *info1, size_t il, struct rsp_es9_request *out);
/* Check a successful initiateAuthentication answer (serverSigned1 =
 * 30 { 80 transactionId, 81 euiccChallenge, 83 serverAddress, 84
 * serverChallenge } must carry the answer's transactionId
 * (ESIM_E_RSP_TXID_MISMATCH), our challenge (ESIM_E_RSP_CHALLENGE_MISMATCH)
 * and the address contacted, case aside (ESIM_E_RSP_ADDRESS_MISMATCH)),
 * remember its transactionId and build ES10b.AuthenticateServer (malloc'd,
 * caller frees); matching_id may be NULL. */
esim_err rsp_es9_dl_authenticate_server(struct rsp_es9_dl *s, const struct rsp_es9_response *r,
					const char *matching_id, const struct rsp_device_info *dev,
					uint8_t **cmd, size_t *cmd_len);
/* The authenticateClient request carrying the eUICC's
 * AuthenticateServerResponse (borrowed). */
esim_err rsp_es9_dl_authenticate_client(const struct rsp_es9_dl *s, const uint8_t *asr,
					size_t asr_len, struct rsp_es9_request *out);
/* Check a successful authenticateClient answer (its transactionId and
 * smdpSigned2's are the session's: ESIM_E_RSP_TXID_MISMATCH; smdpSigned2
 * = 30 { 80 txId, 01 ccRequiredFlag, [5F49 otPK] }) and keep it: *r is
 * moved into s (left cleared). */
esim_err rsp_es9_dl_accept_authenticate(struct rsp_es9_dl *s, struct rsp_es9_response *r);
/* ES10b.PrepareDownload (malloc'd) from the kept answer, with hashCc of cc
 * when cc is not NULL (the caller passes one when s->cc_required). */
esim_err rsp_es9_dl_prepare_download(const struct rsp_es9_dl *s, const char *cc, uint8_t **cmd,
				     size_t *cmd_len);
/* getBoundProfilePackage / cancelSession requests carrying the eUICC's
 * PrepareDownloadResponse / CancelSessionResponse (borrowed). */
esim_err rsp_es9_dl_get_bpp(const struct rsp_es9_dl *s, const uint8_t *pdr, size_t pdr_len,
			    struct rsp_es9_request *out);
esim_err rsp_es9_dl_cancel(const struct rsp_es9_dl *s, const uint8_t *csr, size_t csr_len,
			   struct rsp_es9_request *out);
/* A successful answer's transactionId is the session's
 * (ESIM_E_RSP_TXID_MISMATCH). */
esim_err rsp_es9_dl_check_txid(const struct rsp_es9_dl *s, const struct rsp_es9_response *r);
/* The handleNotification request carrying a pending notification (BF37 or
 * 30, borrowed). */
void rsp_es9_dl_notification(const uint8_t *p, size_t len, struct rsp_es9_request *out);

#endif
