/*
 * operator: the mobile operator's subscription service (esim-operator).
 * It keeps customers, lines, invoices, usage and termination cases, talks
 * ES2+ to the SM-DP+ (SGP.22 5.3: DownloadOrder, ConfirmOrder, CancelOrder)
 * and takes the SM-DP+'s HandleDownloadProgressInfo callbacks, of which
 * the forwarded delete notification (an eUICC-signed
 * OtherSignedNotification, digest 8.4) is the proof that closes a case.
 * docs/operator.md tells the story, docs/operator-api.md the JSON API.
 *
 * Ownership: op_open gives a handle freed by op_close. Strings passed in
 * are copied. The handle is thread-safe (one lock around the store).
 */
#ifndef ESIM_OPERATOR_H
#define ESIM_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "esim/err.h"
#include "esim/net.h"

struct op_config {
	const char *db;		   /* store URL (sqlite path or postgresql://) */
	const char *web_dir;	   /* NULL: ESIM_OPERATOR_WEB_DIR */
	const char *maildir;	   /* NULL: e-mail notices are only recorded */
	const char *key_file;	   /* operator private key PEM: records, audit head */
	const char *cert_file;	   /* operator certificate PEM (ES2+ client, records) */
	const char *ci_file;	   /* CI certificate(s), comma-separated: deletion proofs */
	const char *data_key_file; /* 32-byte secretbox key; created when absent */
	const char *smdp_url;	   /* ES2+ base, e.g. https://smdp.example:8443; NULL: none */
	const char *smdp_ca;	   /* PEM trust for the SM-DP+ TLS chain */
	const char *name;	   /* functionRequesterIdentifier; NULL: "ACME" */
	const char *profile_type;  /* SM-DP+ profile type for orders; NULL: "STD" */
	bool fast_hash;		   /* tests: the cheapest argon2id parameters */
	/* time source for tests; NULL: time() */
	time_t (*now)(void *arg);
	void *now_arg;
};

typedef struct op op;

esim_err op_open(const struct op_config *cfg, op **out);
void op_close(op *o);

/* The portal's HTTP surface (API, static files) in one handler, so
 * tests can drive it without sockets. */
esim_err op_http(const net_request *req, net_response *resp, void *o);
/* Route every API path and the web directory's files to op_http. */
esim_err op_add_routes(op *o, net_server *srv, int listener);
/* The portal's security headers (CSP, X-Frame-Options, nosniff, ...):
 * static, *n entries. op_http puts them on its answers. */
const struct net_header *op_security_headers(size_t *n);
/* The portal's listener as esim-operator serve makes it: lc (copied) with
 * op_security_headers as its default headers, so that the server's own
 * answers (unknown path, wrong method, malformed request, body over the
 * cap) carry them too; routed with op_add_routes. *id (may be NULL). */
esim_err op_add_portal(op *o, net_server *srv, const struct net_listener_config *lc, int *id);

/* The ES2+ callbacks from the SM-DP+ (SGP.22 5.3.5, callback.c), served
 * on a listener of their own with mutual TLS pinned to the SM-DP+'s
 * client certificate; never on the portal's. */
struct op_callback_config {
	const char *smdp_id;		   /* expected functionRequesterIdentifier */
	const char *smdp_client_cert_file; /* the SM-DP+'s client certificate (PEM), pinned */
};
typedef struct op_callback op_callback;
/* Needs the handle's CI (op_config.ci_file) to verify forwarded
 * notifications: ESIM_E_OP_CONFIG without it or without cfg's fields.
 * *out borrows o; free it with op_callback_free before op_close. */
esim_err op_callback_new(op *o, const struct op_callback_config *cfg, op_callback **out);
void op_callback_free(op_callback *cb);
/* The pinned SHA-256 (32 bytes, borrowed) for net_listener_config's
 * client_pins, and the audit actor of the callbacks. */
const uint8_t *op_callback_pin(const op_callback *cb);
const char *op_callback_actor(const op_callback *cb);
/* The handler (arg: the op_callback), and its one route on listener. */
esim_err op_callback_http(const net_request *req, net_response *resp, void *cb);
esim_err op_callback_add_routes(op_callback *cb, net_server *srv, int listener);

/* Administration. Ids out (may be NULL). */
esim_err op_add_customer(op *o, const char *login, const char *password, const char *name,
			 const char *address, int64_t *id);
esim_err op_add_line(op *o, int64_t customer_id, const char *msisdn, const char *iccid,
		     const char *plan, bool downloaded, int64_t *id);
esim_err op_add_invoice(op *o, int64_t customer_id, const char *period, int64_t cents,
			const char *due, int64_t *id);
esim_err op_add_staff(op *o, const char *login, const char *password, const char *role);
/* Jan Peeters and Sofie Janssens, a reviewer and an admin (docs/operator-api.md). */
esim_err op_seed_demo(op *o);
esim_err op_set_setting(op *o, const char *key, int64_t value);

/* ES2+ DownloadOrder + ConfirmOrder for the customer's line (the first line
 * without an ICCID, or a new one): activation_code (LPA:1$...) out. */
esim_err op_order_esim(op *o, const char *login, char *activation_code, size_t n);

/* Reminders for cases waiting for deletion past their time. */
esim_err op_tick(op *o, size_t *reminders);

/* Walk the audit chain and check its signed head. *entries the count;
 * on ESIM_E_OP_AUDIT *bad_id the first entry at fault (0: the head). */
esim_err op_audit_verify(op *o, int64_t *entries, int64_t *bad_id);

/* A termination record (JSON text): the operator signature (with
 * operator_cert_pem pinned when given, else the embedded certificate) and
 * the deletion proof against the CI(s) in ci_file (NULL: proof chain not
 * checked against a CI — refused). why: a short reason on failure. */
esim_err op_record_verify(const uint8_t *json, size_t len, const char *ci_file,
			  const char *operator_cert_file, char *why, size_t why_len);

#endif
