/*
 * smds: the Subscription Manager Discovery Server of esimkit (SGP.22 3.3,
 * 5.8 ES11, 5.9 ES12; docs/smds.md).
 *
 * ES12 (SM-DP+ -> SM-DS): RegisterEvent and DeleteEvent, over mutual TLS;
 * each SM-DP+ is known by the SHA-256 of its TLS client certificate and
 * may only register events that name its own address, and only delete its
 * own events.
 * ES11 (LPA -> SM-DS): InitiateAuthentication and AuthenticateClient, the
 * common mutual authentication of ES9+ (the SM-DS signs serverSigned1 with
 * CERT.DSauth, verifies the eUICC's chain and euiccSignature1 with the
 * library's rsp_auth_server_resp_verify), answering the event records of
 * the authenticated EID only. An EID without events gets an empty list.
 *
 * The handlers are plain functions (body in, HTTP status + body out);
 * smds_add_routes() puts them on a net_server. One smds handle serves every
 * listener and worker thread (one store connection behind a lock).
 *
 * Ownership: smds_open() gives a handle freed by smds_close(); the config
 * is copied. Output bodies are malloc'd and freed by the caller.
 */
#ifndef ESIM_SMDS_H
#define ESIM_SMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "esim/err.h"
#include "esim/log.h"
#include "esim/net.h"

#define SMDS_MAX_IDENTITIES 4
#define SMDS_MAX_CI	    8
#define SMDS_MAX_SMDP	    32

/* One SM-DS identity: CERT.DSauth and its key (PEM or DER files), one per
 * curve. */
struct smds_identity_cfg {
	const char *dsauth_cert, *dsauth_key;
};

/* An SM-DP+ allowed on ES12: its address (the rspServerAddress of its
 * events, compared case-insensitively) and the SHA-256 of its TLS client
 * certificate. */
struct smds_smdp_cfg {
	const char *address;
	uint8_t cert_sha256[32];
};

struct smds_config {
	const char *db_url; /* store URL: sqlite:PATH, PATH, :memory:, postgresql://... */
	const char *fqdn;   /* our address, as the LPA names it (host[:port]) */
	struct smds_identity_cfg ids[SMDS_MAX_IDENTITIES];
	size_t n_ids;
	const char *ci_paths[SMDS_MAX_CI]; /* CIs trusted for eUICC chains */
	size_t n_ci;
	struct smds_smdp_cfg smdps[SMDS_MAX_SMDP];
	size_t n_smdps;
	unsigned session_ttl_s;		 /* ES11 session lifetime; 0: 300 */
	bool no_cert_time_check;	 /* skip validity periods of EUM / eUICC */
	bool log;			 /* structured log lines on stderr */
	enum esim_log_format log_format; /* ESIM_LOG_JSON (0, the default) or text */
	time_t (*clock)(void *arg);	 /* for tests; NULL: time() */
	void *clock_arg;
};

typedef struct smds smds;

esim_err smds_open(const struct smds_config *cfg, smds **out);
/* One operational line (listening, ready, reload, shutdown, trouble) in the
 * configured log format, whatever `log` says: JSON on stderr, or
 * "esim-smds: MESSAGE" with log-format = text. */
void smds_log(const smds *d, enum esim_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void smds_close(smds *d);

/* One ES11 function ("initiateAuthentication" or "authenticateClient"),
 * JSON binding: *status 200 (failures in the header) or 404 for an
 * unknown function; *out malloc'd JSON (NULL for 404). */
esim_err smds_es11(smds *d, const char *function, const uint8_t *body, size_t len, int *status,
		   char **out);
/* One ES12 function ("registerEvent" or "deleteEvent"). client_sha256 is
 * the SHA-256 of the caller's TLS client certificate (NULL: refused). */
esim_err smds_es12(smds *d, const char *function, const uint8_t *client_sha256, const uint8_t *body,
		   size_t len, int *status, char **out);

/* Routes: POST /gsma/rsp2/es9plus/{initiateAuthentication,
 * authenticateClient} on es11_listener (the paths LPAs use for ES11) and
 * POST /gsma/rsp2/es12/{registerEvent,deleteEvent} on es12_listener,
 * which must require a client certificate. d must outlive srv. */
esim_err smds_add_routes(smds *d, net_server *srv, int es11_listener, int es12_listener);
/* GET /healthz (200 when the store answers) on admin_listener only. */
esim_err smds_add_admin_routes(smds *d, net_server *srv, int admin_listener);
esim_err smds_health(smds *d);

/* The SHA-256 of every allowed SM-DP+ certificate, for the ES12 listener's
 * pins (*pins malloc'd, caller frees). */
esim_err smds_smdp_pins(const smds *d, uint8_t (**pins)[32], size_t *n);

/* Events held (eid NULL: all). */
esim_err smds_event_count(smds *d, const char *eid, size_t *out);
/* Delete ES11 sessions older than the lifetime; *deleted may be NULL. */
esim_err smds_purge_sessions(smds *d, size_t *deleted);

#endif
