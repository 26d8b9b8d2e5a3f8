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
#include "esim/log.h"
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
	/* SMTP delivery of the e-mail notices (mail.c): with smtp_host set they
	 * wait in the durable outbox for op_mail_deliver instead of going to
	 * the maildir. STARTTLS is required (verified against smtp_ca, else the
	 * system's trust, and the host name); AUTH PLAIN when smtp_user is set,
	 * its password read from smtp_password_file (a secret file: this
	 * user's, no group or other access). */
	const char *smtp_host;
	uint16_t smtp_port; /* 0: 587 */
	const char *smtp_user;
	const char *smtp_password_file;
	const char *smtp_from; /* envelope and From:; NULL: care@operator.example */
	const char *smtp_ca;   /* PEM trust for the server's certificate */
	bool fast_hash;	       /* tests: the cheapest argon2id parameters */
	/* time source for tests; NULL: time() */
	time_t (*now)(void *arg);
	void *now_arg;
};

typedef struct op op;

esim_err op_open(const struct op_config *cfg, op **out);
void op_close(op *o);
/* Where op's own runtime lines go (a notice that could not be sent, ...):
 * log (borrowed; it must outlive o) or, NULL as after op_open, plain lines
 * on stderr. Set it before serving starts. */
void op_set_log(op *o, const struct esim_log *log);

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
	/* Each callback is logged there, with the X-Request-Id the SM-DP+
	 * sent (the LPA's, include/esim/log.h); NULL: JSON lines on stderr. */
	const esim_log *log;
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

/* The network's charging system (charging.c): usage records and
 * authorisation requests, rated against the line's plan and the customer's
 * caps, served on a listener of their own with mutual TLS pinned to the
 * charging system's client certificate; never on the portal's.
 * POST /charging/authorize and POST /charging/usage (docs/operator-api.md).
 * *out borrows o; free it with op_charging_free before op_close. */
struct op_charging_config {
	const char *client_cert_file; /* the charging system's client certificate (PEM), pinned */
};
typedef struct op_charging op_charging;
esim_err op_charging_new(op *o, const struct op_charging_config *cfg, op_charging **out);
void op_charging_free(op_charging *ch);
/* The pinned SHA-256 (32 bytes, borrowed) for net_listener_config's
 * client_pins, and the audit actor ("charging:" + 16 hex digits). */
const uint8_t *op_charging_pin(const op_charging *ch);
const char *op_charging_actor(const op_charging *ch);
esim_err op_charging_http(const net_request *req, net_response *resp, void *ch);
esim_err op_charging_add_routes(op_charging *ch, net_server *srv, int listener);

/* The mail outbox (mail.c): e-mail notices due are claimed (SKIP LOCKED on
 * PostgreSQL), sent over SMTP outside the store's lock, then marked sent,
 * or put back with the error and a later try (back-off 30 s doubling, at
 * most an hour; given up after 20 tries). Counts out (may be NULL).
 * ESIM_E_OP_CONFIG without smtp_host. */
esim_err op_mail_deliver(op *o, size_t *sent, size_t *failed);

/* Contracts: the line's notice period (days, 0..365) and final-invoice
 * policy ("prorated": the plan fee for the days of the closing month up to
 * the close, "full_month": the whole month's fee; rated usage of that month
 * is added either way). */
esim_err op_set_contract(op *o, int64_t line_id, int notice_days, const char *final_policy);
/* Leased equipment on a line, to be returned under return_ref. id out. */
esim_err op_add_equipment(op *o, int64_t line_id, const char *item, const char *return_by,
			  const char *return_ref, int64_t *id);

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
