/*
 * lpa_driver: a small LPA for tests and the load generator. It runs the
 * profile download of digest section 6 step by step: ES10b calls on an
 * eUICC through a callback (the virtual eUICC in-process, or APDUs over
 * include/esim/apdu.h) and ES9+ calls to an SM-DP+ through another
 * callback (the handlers in-process, or HTTPS with net_client).
 *
 * Each step returns ESIM_OK when the exchange itself worked; when the
 * SM-DP+ answered "Failed", sess->failed is set with its subject and
 * reason codes so that tests can assert them.
 */
#ifndef ESIM_LPA_DRIVER_H
#define ESIM_LPA_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/net.h"
#include "esim/rsp.h"
#include "esim/rsp_es9.h"
#include "esim/util.h"

/* One ES10 command to the eUICC; the response TLV appended to resp. */
typedef esim_err (*lpa_es10_fn)(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp);
/* One ES9+ call: *status (200/204) and *out (malloc'd JSON or NULL). */
typedef esim_err (*lpa_es9_fn)(void *ctx, const char *function, const char *json, int *status,
			       char **out);

struct lpa_driver {
	lpa_es10_fn es10;
	void *es10_ctx;
	lpa_es9_fn es9;
	void *es9_ctx;
	const char *smdp_address;
};

struct lpa_session {
	const struct lpa_driver *drv;
	bool failed;
	char subject[16], reason[16];
	int http_status;
	rsp_txid txid;
	char txid_hex[2 * RSP_TXID_MAX + 1];
	bool cc_required;
	bool has_bound_otpk;
	/* kept between steps (malloc'd) */
	uint8_t *signed1, *sig1, *pkid, *server_cert;
	size_t signed1_len, sig1_len, pkid_len, server_cert_len;
	uint8_t *metadata, *signed2, *sig2, *smdp_cert;
	size_t metadata_len, signed2_len, sig2_len, smdp_cert_len;
	uint8_t *bpp;
	size_t bpp_len;
	uint8_t *pir;
	size_t pir_len;
	bool pir_success;
	struct rsp_es9_dl dl; /* the library's LPA steps (rsp_es9.h) */
};

void lpa_session_init(struct lpa_session *s, const struct lpa_driver *drv);
void lpa_session_clear(struct lpa_session *s);

/* GetEUICCChallenge + GetEUICCInfo1 + initiateAuthentication. */
esim_err lpa_dl_initiate(struct lpa_session *s);
/* AuthenticateServer (matching_id NULL: left out) + authenticateClient. */
esim_err lpa_dl_authenticate(struct lpa_session *s, const char *matching_id);
/* PrepareDownload (with hashCc from cc when required; cc NULL: none) +
 * getBoundProfilePackage. */
esim_err lpa_dl_prepare(struct lpa_session *s, const char *cc);
/* LoadBoundProfilePackage, segment by segment; sets pir / pir_success. */
esim_err lpa_dl_load(struct lpa_session *s);
/* handleNotification with the PIR, then RemoveNotificationFromList. */
esim_err lpa_dl_notify(struct lpa_session *s);
/* ES10b CancelSession(reason) + ES9+ cancelSession. */
esim_err lpa_dl_cancel(struct lpa_session *s, int reason);
/* Every step; ESIM_E_RSP_EUICC_ERROR when the SM-DP+ failed a step (codes
 * in s) or the PIR is an error. */
esim_err lpa_download(struct lpa_session *s, const char *matching_id, const char *cc);

/* Send every pending notification of the eUICC to the SM-DP+ (as the LPA
 * loop of digest 8.3); *sent (may be NULL) counts them. */
esim_err lpa_send_notifications(const struct lpa_driver *drv, size_t *sent);

/* ES9+ over HTTPS: ctx is a struct lpa_http. */
struct lpa_http {
	net_client *client;
	const char *base_url; /* "https://host:port" */
};
esim_err lpa_es9_http(void *ctx, const char *function, const char *json, int *status, char **out);

#endif
