/*
 * smdp: the SM-DP+ of esimkit (SGP.22 roles, digest sections 5, 6, 7, 8.4,
 * 9): ES9+ towards the LPA, ES2+ towards operators, and the profile
 * inventory with its lifecycle, all in one store (SQLite or PostgreSQL).
 *
 * The handlers are plain functions (body in, HTTP status + body out) so
 * that tests drive them without sockets; smdp_add_routes() puts them on a
 * net_server. One smdp handle serves every listener and worker thread: it
 * keeps a pool of store connections, one per concurrent caller.
 *
 * Ownership: smdp_open() gives a handle freed by smdp_close(); the config
 * is copied. Output bodies are malloc'd and freed by the caller.
 */
#ifndef ESIM_SMDP_H
#define ESIM_SMDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "esim/err.h"
#include "esim/log.h"
#include "esim/net.h"
#include "esim/rsp.h"

#define SMDP_MAX_IDENTITIES 4
#define SMDP_MAX_CI	    8

/* One SM-DP+ identity: CERT.DPauth and CERT.DPpb with their keys (PEM or
 * DER files), signed by the same CI. Each curve gets its own. */
struct smdp_identity_cfg {
	const char *dpauth_cert, *dpauth_key;
	const char *dppb_cert, *dppb_key;
};

struct smdp_config {
	const char *db_url; /* store URL: sqlite:PATH, PATH, :memory:, postgresql://... */
	const char *fqdn;   /* our address (compared case-insensitively) */
	const char *oid;    /* NULL: the registeredID of the first DPauth certificate */
	struct smdp_identity_cfg ids[SMDP_MAX_IDENTITIES];
	size_t n_ids;
	/* CIs trusted for eUICC chains (usually the CIs of the identities). */
	const char *ci_paths[SMDP_MAX_CI];
	size_t n_ci;
	unsigned session_ttl_s;		/* idle RSP session lifetime; 0: 600 */
	unsigned cc_max_attempts;	/* confirmation code tries per order; 0: 3 */
	unsigned max_download_attempts; /* authenticateClient per order; 0: 10 */
	unsigned order_ttl_s;		/* default order lifetime; 0: 30 days */
	bool refuse_rebind;		/* a different otPK.EUICC gets 8.2/3.7 */
	bool no_cert_time_check;	/* skip validity periods of EUM/eUICC */
	bool log;			/* structured log lines on stderr */
	enum esim_log_format log_format; /* of those lines: ESIM_LOG_JSON (0) or _TEXT */
	unsigned max_db_connections;	/* store connections at most; 0: 16 */
	/* RSP sessions not yet authenticated (initiateAuthentication needs no
	 * credential) at most; beyond it initiateAuthentication answers 503.
	 * 0: 10000. */
	unsigned max_pending_sessions;
	/* Key-encryption key of the profiles' Ki / OPc at rest: a file of 32
	 * bytes (raw or hex), owned by this user, mode 0600. NULL: none, and
	 * a batch carrying Ki / OPc is refused. */
	const char *kek_file;
	/* Clock for tests (NULL: time()). */
	time_t (*clock)(void *arg);
	void *clock_arg;
};

typedef struct smdp smdp;

esim_err smdp_open(const struct smdp_config *cfg, smdp **out);
void smdp_close(smdp *d);
/* The OID in use (borrowed). */
const char *smdp_oid(const smdp *d);

/* ---- profile states (digest 9.1) ---------------------------------------- */

enum smdp_state {
	SMDP_AVAILABLE = 0,
	SMDP_ALLOCATED,
	SMDP_LINKED,
	SMDP_CONFIRMED,
	SMDP_RELEASED,
	SMDP_DOWNLOADED,
	SMDP_INSTALLED,
	SMDP_ERROR,
	SMDP_UNAVAILABLE,
};
/* "Available", ... (static); NULL for an unknown value. */
const char *smdp_state_name(enum smdp_state s);
/* ESIM_E_NOT_FOUND for an unknown name. */
esim_err smdp_state_parse(const char *name, enum smdp_state *out);

/* ---- administration (inventory.c) ---------------------------------------- */

/* Register an operator: its functionRequesterIdentifier, the SHA-256 of
 * its ES2+ client certificate (pinned; NULL: none yet) and the URL of its
 * handleDownloadProgressInfo endpoint (NULL: no callbacks). */
esim_err smdp_add_operator(smdp *d, const char *name, const uint8_t *cert_sha256,
			   const char *callback_url);

/* Require an ES2+ bearer token from the operator (by name), besides its
 * client certificate; only its SHA-256 is kept. token NULL: none. */
esim_err smdp_set_operator_token(smdp *d, const char *name, const char *token);

/* A profile type: a SAIP template (UPP) owned by an operator, with the
 * metadata shown to the user. profile_class is 0 test, 1 provisioning,
 * 2 operational; ppr the profilePolicyRules bits (RSP_PPR1 | RSP_PPR2;
 * 0: none). */
struct smdp_profile_type {
	const char *name;
	const char *operator_name;
	const uint8_t *upp;
	size_t upp_len;
	const char *spn;
	const char *profile_name;
	int profile_class;
	uint32_t ppr;
	/* Bind with profile protection keys (digest 7.8): the package is
	 * protected with fresh PPK-ENC / PPK-MAC, which travel to the eUICC in
	 * ReplaceSessionKeys (A2), instead of with the session keys. */
	bool ppk;
	/* The icon the LPA shows (StoreMetadata 93 / 94): the bytes of a PNG
	 * or JPEG file, at most 1024; its iconType is read from its first
	 * bytes. NULL: no icon. Copied. */
	const uint8_t *icon;
	size_t icon_len;
	/* notificationConfigurationInfo (B6), as smdp_notif_spec_parse reads
	 * it; NULL: every local event (enable, disable, delete) to our FQDN. */
	const char *notif;
};
/* Add a profile type; every field is checked first (the SAIP template,
 * the class, PPR bits, SPN and name lengths, the icon's size and kind,
 * the notification configuration) and nothing is stored when one is
 * wrong. */
esim_err smdp_add_profile_type(smdp *d, const struct smdp_profile_type *t);
/* The same; why (may be NULL) gets a sentence naming what was wrong. */
esim_err smdp_add_profile_type_why(smdp *d, const struct smdp_profile_type *t, char *why,
				   size_t why_len);

/* The longest notification configuration text a type may carry. */
#define SMDP_NOTIF_SPEC_MAX 512
/* A notification configuration as the operator writes it: "none" (no
 * notificationConfigurationInfo at all), or entries "EVENTS[@ADDRESS]"
 * separated by ';', EVENTS a ','-list of install, enable, disable, delete
 * (or "all": enable, disable and delete), ADDRESS an FQDN (default:
 * default_address). An event may be listed once. *out (caller frees the
 * array and each address; NULL when *n is 0); ESIM_E_ARG with why (may be
 * NULL) naming the fault. */
esim_err smdp_notif_spec_parse(const char *spec, const char *default_address,
			       struct rsp_notif_config **out, size_t *n, char *why, size_t why_len);

/* What a download's StoreMetadataRequest is made of (es9.c builds it from
 * the order's profile and its type). Borrowed. */
struct smdp_meta_src {
	const char *iccid;
	const char *spn, *name;
	int profile_class;
	uint32_t ppr;
	int icon_type; /* enum rsp_icon_type; ignored without icon */
	const uint8_t *icon;
	size_t icon_len;
	const char *notif; /* spec of smdp_notif_spec_parse; NULL: the default */
};
/* The BF25 TLV (*out malloc'd, caller frees). */
esim_err smdp_metadata_build(const smdp *d, const struct smdp_meta_src *src, uint8_t **out,
			     size_t *out_len);

/* Import one profile of a type (ICCID personalised into the template; the
 * IMSI kept as inventory data and written into EF.IMSI where the template
 * has one). State Available. */
esim_err smdp_import_profile(smdp *d, const char *type, const char *iccid, const char *imsi);
/* Import a CSV batch: lines "ICCID,IMSI[,Ki,OPc]" ('#' comments, an
 * optional header line starting with "iccid"). Each profile is
 * personalised with its ICCID, IMSI, Ki and OPc (smdp_personalise_upp);
 * Ki and OPc are kept nowhere else. *count: profiles added. All or
 * nothing. */
esim_err smdp_import_csv(smdp *d, const char *type, const char *csv, size_t len, size_t *count);
/* Where an import stopped: the line (1-based; 0 when not at a line) and
 * why, in words that name the field and the value's fault. */
struct smdp_import_report {
	size_t line;
	char reason[200];
};
/* Import a CSV batch read from in, line by line (memory bounded whatever
 * its size), in one transaction: the ICCID's check digit (Luhn), the IMSI,
 * Ki and OPc (32 hex digits each) are checked on every line, and an ICCID
 * already imported (earlier in the file or before) is refused. Ki and OPc
 * are sealed under the KEK (smdp_config.kek_file), never stored in clear;
 * a template without an akaParameter slot for them is refused. On any
 * error nothing of the file is imported and *rep (may be NULL) says where.
 * *count: profiles added. */
esim_err smdp_import_stream(smdp *d, const char *type, FILE *in, size_t *count,
			    struct smdp_import_report *rep);
/* Re-seal every profile's Ki / OPc under the KEK of new_kek_file, in one
 * transaction (the configured KEK opens the current ones). Afterwards only
 * the new KEK is needed. *count: rows re-sealed. */
esim_err smdp_rekey(smdp *d, const char *new_kek_file, size_t *count);

/* Personalisation of a profile package (digest 13.4), in place: imsi
 * (6..15 digits) into EF.IMSI of the usim element, ki and opc (16 bytes
 * each) into every akaParameter element. Any of the three may be NULL.
 * Only fixed-size fields are rewritten; *done tells which values found a
 * place (SMDP_PERS_* bits): a template without a usim or akaParameter
 * element is left alone. ESIM_E_ARG for a malformed IMSI. */
#define SMDP_PERS_IMSI 1u
#define SMDP_PERS_KI   2u
#define SMDP_PERS_OPC  4u
esim_err smdp_personalise_upp(uint8_t *upp, size_t len, const char *imsi, const uint8_t *ki,
			      const uint8_t *opc, unsigned *done);
/* The IMSI digits of an EF.IMSI content (9 bytes) into out. */
esim_err smdp_imsi_decode(const uint8_t ef[9], char out[16]);
/* Admin: the personalised package of an ICCID (*upp malloc'd; it holds the
 * profile's keys: the caller wipes and frees it). */
esim_err smdp_profile_upp(smdp *d, const char *iccid, uint8_t **upp, size_t *len);

/* The pinned client-certificate SHA-256 of every operator, for the ES2+
 * listener (*pins malloc'd, caller frees). */
esim_err smdp_operator_pins(smdp *d, uint8_t (**pins)[32], size_t *n);
/* Admin: DownloadOrder + ConfirmOrder on behalf of operator (by name),
 * for a profile of type (or the ICCID iccid_in when not NULL); eid and cc
 * may be NULL. Writes the ICCID and matchingId (>= 64 bytes each). */
esim_err smdp_admin_order(smdp *d, const char *operator_name, const char *type,
			  const char *iccid_in, const char *eid, const char *cc, char *iccid,
			  char *matching_id);
/* An order as an operator places it (`esim-smdp order`), through the same
 * ES2+ DownloadOrder / ConfirmOrder code as an operator's call. */
struct smdp_order_opts {
	const char *type;	  /* profileType, or */
	const char *iccid;	  /* this ICCID */
	const char *eid;	  /* NULL: any eUICC */
	const char *matching_id;  /* NULL: one made by the SM-DP+ */
	const char *cc;		  /* confirmation code; NULL: none */
	const char *smds_address; /* ConfirmOrder's smdsAddress; needs an EID */
	bool hold;		  /* releaseFlag false: Confirmed, released later */
	time_t expires;		  /* 0: now + order_ttl_s; else a time to come */
};
/* On an ES2+ failure *st (may be NULL) gets its subject and reason codes
 * and message, and ESIM_E_SMDP_UNKNOWN is returned; ESIM_E_ARG (with
 * st->message) for an expiry not in the future. Writes the ICCID and
 * matchingId (>= 64 bytes each). */
struct smdp_admin_status {
	char subject[16], reason[16], message[200];
};
esim_err smdp_admin_order_opts(smdp *d, const char *operator_name, const struct smdp_order_opts *o,
			       char *iccid, char *matching_id, struct smdp_admin_status *st);
/* ES2+ ReleaseProfile of a Confirmed order's profile, on behalf of the
 * operator; failures as smdp_admin_order_opts. */
esim_err smdp_admin_release(smdp *d, const char *operator_name, const char *iccid,
			    struct smdp_admin_status *st);

/* The state of the profile with this ICCID. */
esim_err smdp_profile_state(smdp *d, const char *iccid, enum smdp_state *out);
/* Profiles of a type in a state. */
esim_err smdp_count_state(smdp *d, const char *type, enum smdp_state s, size_t *out);
/* The ICCID's history as text lines "time event detail\n" (*out malloc'd). */
esim_err smdp_iccid_history(smdp *d, const char *iccid, char **out);

/* ---- profile transitions (one function each, digest 9.1) -------------------
 * Each checks the current state and moves the profile (by ICCID) in one
 * transaction; ESIM_E_SMDP_TRANSITION when the profile is not in a state
 * the transition starts from, ESIM_E_NOT_FOUND for an unknown ICCID. */
esim_err smdp_tr_allocate(smdp *d, const char *iccid); /* Available -> Allocated */
esim_err smdp_tr_link(smdp *d, const char *iccid);     /* Available|Allocated -> Linked */
esim_err smdp_tr_confirm(smdp *d, const char *iccid);  /* Allocated|Linked -> Confirmed */
esim_err smdp_tr_release(smdp *d, const char *iccid);  /* Allocated|Linked|Confirmed -> Released */
esim_err smdp_tr_downloaded(smdp *d, const char *iccid); /* Released|Downloaded -> Downloaded */
esim_err smdp_tr_installed(smdp *d, const char *iccid);	 /* Downloaded -> Installed */
esim_err smdp_tr_error(smdp *d, const char *iccid); /* any but Installed|Unavailable -> Error */
esim_err smdp_tr_make_available(smdp *d,
				const char *iccid); /* not Installed|Downloaded -> Available */
esim_err smdp_tr_make_unavailable(smdp *d, const char *iccid); /* any -> Unavailable */

/* ---- handlers ------------------------------------------------------------- */

/* One ES9+ function ("initiateAuthentication", ...), JSON binding: the
 * request body in, *status (200 or 204) and *body (malloc'd JSON, NULL for
 * 204) out. Protocol faults (unknown function) give 404. */
esim_err smdp_es9(smdp *d, const char *function, const uint8_t *body, size_t len, int *status,
		  char **out);
/* The same for a request with an id (X-Request-Id, include/esim/log.h;
 * NULL: none): the id is in the request's log lines and goes with the ES2+
 * callbacks the request queues to the operator. */
esim_err smdp_es9_req(smdp *d, const char *function, const uint8_t *body, size_t len,
		      const char *request_id, int *status, char **out);
/* ES9+ in the ASN.1 binding: body is a RemoteProfileProvisioningRequest
 * (A2 { BF39 | BF3B | BF3A | BF41 | BF3D ... }); it runs the same handler as
 * smdp_es9() and gives *status 200 with *out (malloc'd DER
 * RemoteProfileProvisioningResponse, *out_len bytes), 204 (handleNotification,
 * no body) or 400 (not a request of an ES9+ function, no body). */
esim_err smdp_es9_asn1(smdp *d, const uint8_t *body, size_t len, int *status, uint8_t **out,
		       size_t *out_len);
/* One ES2+ function ("downloadOrder", ...). client_sha256 is the SHA-256 of
 * the caller's TLS client certificate (NULL when none: refused). */
esim_err smdp_es2(smdp *d, const char *function, const uint8_t *client_sha256, const uint8_t *body,
		  size_t len, int *status, char **out);
/* smdp_es2 with the request's Authorization header (NULL when absent):
 * an operator with a bearer token (smdp_set_operator_token) must also send
 * "Bearer <token>", else 1.1.1 / 1.2. */
esim_err smdp_es2_auth(smdp *d, const char *function, const uint8_t *client_sha256,
		       const char *authorization, const uint8_t *body, size_t len, int *status,
		       char **out);

/* Deliver due HandleDownloadProgressInfo callbacks from the outbox (one
 * pass, the default smdp_outbox_config). client_cfg configures the TLS
 * client (trust, client cert); *delivered (may be NULL) counts successes.
 * Failed deliveries are retried later with backoff. */
esim_err smdp_outbox_run(smdp *d, const struct net_client_config *client_cfg, size_t *delivered);

/* The outbox's delivery, for any number of SM-DP+ instances on one
 * database (es2.c): each pass leases a batch of due rows, posts them over
 * several connections at once and marks them in one transaction; a row
 * leased by a live pass is not sent by anyone else, and the rows of an
 * instance that died are sent again (same functionCallIdentifier) once
 * their lease has run out. */
#define SMDP_OUTBOX_CONCURRENCY_MAX 64
#define SMDP_OUTBOX_BATCH_MAX	    1024
struct smdp_outbox_config {
	const struct net_client_config *client; /* required; its strings borrowed */
	unsigned concurrency;			/* requests in flight, one connection each; 0: 8 */
	unsigned batch;				/* rows leased per pass; 0: 8 per connection */
	/* seconds a pass holds its rows (2..86400; 0: 30); the request timeout
	 * is kept under half of it */
	unsigned lease_s;
	/* The rows for the SM-DSs (ES12 RegisterEvent / DeleteEvent) instead
	 * of the operators' callbacks: see smdp_smds_sender_new. */
	bool es12;
};
/* The connections of one delivery loop (made now: ESIM_E_ARG for a bad
 * config, the net_client error for bad TLS files). Used by one thread at
 * a time; free with smdp_outbox_sender_free (NULL is fine). */
typedef struct smdp_outbox_sender smdp_outbox_sender;
esim_err smdp_outbox_sender_new(const struct smdp_outbox_config *cfg, smdp_outbox_sender **out);
void smdp_outbox_sender_free(smdp_outbox_sender *s);
/* One pass: *claimed rows leased (0: nothing due, the caller may sleep;
 * otherwise more may be due: call again), *delivered of them delivered
 * (both may be NULL). */
esim_err smdp_outbox_deliver(smdp *d, smdp_outbox_sender *s, size_t *claimed, size_t *delivered);
/* Callbacks waiting (not yet delivered). */
esim_err smdp_outbox_pending(smdp *d, size_t *out);

/* ---- SM-DS registration (ES12; es2.c, docs/smds.md) ----------------------
 * ConfirmOrder with an smdsAddress registers the event (eventId = the
 * matchingId) at that SM-DS, which must be one of these; the event is
 * deleted when the download ends (PIR) or the order is cancelled. */
#define SMDP_MAX_SMDS 8
struct smdp_smds_config {
	const char *addresses[SMDP_MAX_SMDS]; /* host[:port], compared case-insensitively */
	size_t n;
	const char *ca_file;		      /* CAs of the SM-DSs' TLS certificates (PEM) */
	const char *client_cert, *client_key; /* our TLS client identity (PEM files) */
	unsigned timeout_ms;		      /* ConfirmOrder's RegisterEvent attempt; 0: 5000 */
};
/* Copied; call before serving. ESIM_E_ARG when a field is missing. */
esim_err smdp_set_smds(smdp *d, const struct smdp_smds_config *c);
/* A sender of the outbox's ES12 rows (one connection, so that a
 * RegisterEvent queued before a DeleteEvent is sent before it); *out NULL
 * when no SM-DS is configured. */
esim_err smdp_smds_sender_new(smdp *d, smdp_outbox_sender **out);

/* Routes on srv: POST /gsma/rsp2/es9plus/<fn> and POST /gsma/rsp2/asn1 on
 * es9_listener, POST
 * /gsma/rsp2/es2plus/<fn> on es2_listener (-1: every listener). Nothing
 * administrative: see smdp_add_admin_routes. d is borrowed and must
 * outlive srv. */
esim_err smdp_add_routes(smdp *d, net_server *srv, int es9_listener, int es2_listener);
/* The administrative routes, GET /metrics and GET /healthz (200 when the
 * store answers, 503 otherwise), on admin_listener only: a listener of
 * their own (loopback by default in esim-smdp), never an ES9+ or ES2+
 * one. */
esim_err smdp_add_admin_routes(smdp *d, net_server *srv, int admin_listener);
/* ESIM_OK when a store connection answers a trivial query. */
esim_err smdp_health(smdp *d);

/* Delete RSP sessions idle longer than session_ttl_s, in bounded batches
 * (at most some tens of thousands of rows per call); *deleted (may be
 * NULL) counts them. Live sessions are never touched. */
esim_err smdp_purge_sessions(smdp *d, size_t *deleted);
/* Sessions in the store: all rows (*all) and those alive but not yet
 * authenticated (*pending); either may be NULL. */
esim_err smdp_session_count(smdp *d, size_t *all, size_t *pending);
/* Prometheus text of the counters (*out malloc'd). */
esim_err smdp_metrics(smdp *d, char **out);

#endif
