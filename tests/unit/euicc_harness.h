/*
 * euicc_harness: what the virtual-eUICC tests share. A card is opened from a
 * PKI made by the real `esim-pki init`, served by the real APDU front and
 * socket transport in a thread, and driven by the LPA's host-side
 * apdu_session over a unix socket: every test talks to the eUICC through
 * APDUs (STORE DATA segmentation, GET RESPONSE), never by calling ES10
 * handlers.
 *
 * Also: small DER helpers to build ES10 requests and read result codes.
 * Header-only (static functions) so that each test program stays one file.
 */
#ifndef ESIM_EUICC_HARNESS_H
#define ESIM_EUICC_HARNESS_H

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "testutil.h"

#include "esim/cert.h"

#include "esim/apdu.h"
#include "esim/der.h"
#include "esim/rsp.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "esim/rsp_saip.h"
#include "euicc/apdu_front.h"
#include "euicc/euicc.h"
#include "euicc/transport.h"

#define H_EID  "89049032123451234512345678901235"
#define H_EID2 "89049032999999999999999999999991"

struct harness {
	char dir[512];
	char db[600];
	char sock[600];
	euicc *e;
	euicc_apdu_front *front;
	int stop[2];
	int listen_fd;
	pthread_t thr;
	apdu_session *s;
};

/* esim-pki init DIR --eid EID (both curves). */
static inline void h_pki_init(const char *dir, const char *eid)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "'%s/esim-pki' init '%s' --eid %s --curve both >/dev/null",
		 test_bin_dir(), dir, eid);
	assert_int_equal(system(cmd), 0);
}

/* Fill an identity config from DIR/<curve>/ of an esim-pki PKI (paths are
 * written into bufs, 4 x 700 bytes). */
static inline void h_identity(struct euicc_config *cfg, const char *pki, const char *curve,
			      char bufs[4][700])
{
	snprintf(bufs[0], 700, "%s/%s/euicc.der", pki, curve);
	snprintf(bufs[1], 700, "%s/%s/euicc.key.pem", pki, curve);
	snprintf(bufs[2], 700, "%s/%s/eum.der", pki, curve);
	snprintf(bufs[3], 700, "%s/%s/ci.der", pki, curve);
	struct euicc_identity_cfg *id = &cfg->identities[cfg->n_identities++];
	id->cert_path = bufs[0];
	id->key_path = bufs[1];
	id->eum_path = bufs[2];
	cfg->ci_paths[cfg->n_ci_paths++] = bufs[3];
}

static void *h_serve(void *arg)
{
	struct harness *h = arg;
	struct euicc_serve_opts o = {.stop_fd = h->stop[0]};
	euicc_serve_listener(h->listen_fd, h->front, &o);
	return NULL;
}

/* Serve the opened card h->e on h->sock and connect an LPA session. */
static inline void h_serve_and_connect(struct harness *h)
{
	struct euicc_apdu_front_cfg fc = {
	    .es10 = euicc_front_es10,
	    .es10_ctx = h->e,
	    .on_reset = euicc_front_reset,
	};
	assert_esim(ESIM_OK, euicc_apdu_front_new(&fc, &h->front));
	assert_int_equal(pipe(h->stop), 0);
	char spec[700];
	snprintf(spec, sizeof spec, "unix:%s", h->sock);
	assert_esim(ESIM_OK, euicc_socket_listen(spec, &h->listen_fd));
	assert_int_equal(pthread_create(&h->thr, NULL, h_serve, h), 0);
	assert_esim(ESIM_OK, apdu_session_open("socket", spec, NULL, &h->s));
}

/* Open a card on dir/db.sqlite with the given config (db_url filled in). */
static inline void h_start_cfg(struct harness *h, struct euicc_config *cfg)
{
	snprintf(h->db, sizeof h->db, "%s/card.db", h->dir);
	snprintf(h->sock, sizeof h->sock, "%s/card.sock", h->dir);
	cfg->db_url = h->db;
	assert_esim(ESIM_OK, euicc_open(cfg, &h->e));
	h_serve_and_connect(h);
}

/* Stop serving and close the card (the database stays). */
static inline void h_stop(struct harness *h)
{
	apdu_session_close(h->s);
	h->s = NULL;
	assert_int_equal(write(h->stop[1], "x", 1), 1);
	pthread_join(h->thr, NULL);
	close(h->stop[0]);
	close(h->stop[1]);
	close(h->listen_fd);
	unlink(h->sock);
	euicc_apdu_front_free(h->front);
	h->front = NULL;
	euicc_close(h->e);
	h->e = NULL;
}

/* One ES10 command through STORE DATA; the response TLV into *resp
 * (emptied first). Fails the test on a transport error or a bad SW. */
static inline void h_es10(struct harness *h, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	resp->len = 0;
	assert_esim(ESIM_OK, apdu_es10_transmit(h->s, cmd, len, resp));
}

/* Same, for hex text. */
static inline void h_es10_hex(struct harness *h, const char *hex, esim_buf *resp)
{
	size_t n;
	uint8_t *cmd = test_unhex(hex, &n);
	h_es10(h, cmd, n, resp);
	free(cmd);
}

/* Send a command expected to fail at the APDU level: returns the SW. */
static inline uint16_t h_es10_sw(struct harness *h, const uint8_t *cmd, size_t len)
{
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = apdu_es10_transmit(h->s, cmd, len, &r);
	esim_buf_free(&r);
	if (err == ESIM_OK)
		return 0x9000;
	assert_esim(ESIM_E_APDU_SW, err);
	return apdu_session_last_sw(h->s);
}

/* Finish a builder into an esim_buf-like pair (caller frees *out). */
static inline void h_finish(der_builder *b, uint8_t **out, size_t *len)
{
	assert_esim(ESIM_OK, der_builder_finish(b, out, len));
}

/* The integer under tag inside the response TLV resp (outer tag outer),
 * following the path of constructed tags in path (0-terminated). */
static inline int64_t h_int_at(const esim_buf *resp, uint32_t outer, const uint32_t *path,
			       uint32_t tag)
{
	der_cursor c, v;
	der_cursor_init(&c, resp->data, resp->len);
	assert_esim(ESIM_OK, der_get_element(&c, outer, &v));
	for (; path != NULL && *path != 0; path++) {
		der_cursor in;
		assert_esim(ESIM_OK, der_get_element(&v, *path, &in));
		v = in;
	}
	for (;;) {
		der_element el;
		assert_esim(ESIM_OK, der_get_any(&v, &el));
		if (el.tag == tag) {
			int64_t x;
			assert_esim(ESIM_OK, der_value_int64(el.value, &x));
			return x;
		}
	}
}

/* "TAG { 80 result }" responses. */
static inline int64_t h_result(const esim_buf *resp, uint32_t outer)
{
	return h_int_at(resp, outer, NULL, 0x80);
}

static inline void h_bytes_equal(const esim_buf *a, const esim_buf *b)
{
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->data, b->data, a->len);
}

/* Run the esim-euicc program as a child: argv after the program name,
 * NULL-terminated; its stdout and stderr go to log (appended). */
static inline pid_t h_spawn_euicc(const char *const *args, const char *log)
{
	char prog[1024];
	snprintf(prog, sizeof prog, "%s/esim-euicc", test_bin_dir());
	const char *argv[32];
	size_t n = 0;
	argv[n++] = prog;
	for (; args[n - 1] != NULL && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Wait until a unix socket accepts an LPA session (the program is up), at
 * most timeout_ms; the session is returned open. */
static inline apdu_session *h_connect_retry(const char *sock, int timeout_ms)
{
	char spec[700];
	snprintf(spec, sizeof spec, "unix:%s", sock);
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		apdu_session *s = NULL;
		if (access(sock, F_OK) == 0 &&
		    apdu_session_open("socket", spec, NULL, &s) == ESIM_OK)
			return s;
		usleep(10000);
	}
	fail_msg("esim-euicc did not come up on %s", sock);
	return NULL;
}

/* ---- the SM-DP+ side, played by the test with the rsp builders ---- */

struct h_smdp {
	uint8_t *auth_der, *pb_der;
	size_t auth_len, pb_len;
	EVP_PKEY *auth_key, *pb_key;
	uint8_t ci_pkid_tlv[2 + 20];
	crypto_trust *trust; /* the CI, to verify what the eUICC signs */
	char oid[RSP_OID_TEXT_MAX];
	const char *address;
	/* session */
	rsp_txid txid;
	uint8_t server_challenge[16];
	uint8_t euicc_sig1[RSP_SIG_LEN];
	EVP_PKEY *euicc_pub;
	uint8_t smdp_sig2[RSP_SIG_LEN];
	uint8_t otpk[RSP_OTPK_LEN];
};

/* A private key file (PEM or DER). */
static inline void h_load_key(const char *path, EVP_PKEY **out)
{
	assert_esim(ESIM_OK, crypto_key_load_private_file(path, out));
}

/* An SM-DP+ with DPauth/DPpb certificates and keys in files, trusting ci. */
static inline void h_smdp_load(struct h_smdp *d, const char *auth_cert, const char *auth_key,
			       const char *pb_cert, const char *pb_key, const char *ci)
{
	memset(d, 0, sizeof *d);
	d->address = "smdp.example.com";
	d->auth_der = test_read(auth_cert, &d->auth_len);
	d->pb_der = test_read(pb_cert, &d->pb_len);
	h_load_key(auth_key, &d->auth_key);
	h_load_key(pb_key, &d->pb_key);
	crypto_cert *c = NULL;
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t len;
	assert_esim(ESIM_OK, crypto_cert_load_file(ci, &c));
	assert_esim(ESIM_OK, crypto_cert_ski(c, ski, &len));
	assert_int_equal(len, 20);
	d->ci_pkid_tlv[0] = 0x04;
	d->ci_pkid_tlv[1] = 20;
	memcpy(d->ci_pkid_tlv + 2, ski, 20);
	assert_esim(ESIM_OK, crypto_trust_new(&d->trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(d->trust, c));
	crypto_cert_free(c);
	assert_esim(ESIM_OK, crypto_cert_load(d->auth_der, d->auth_len, &c));
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, d->oid, sizeof d->oid));
	crypto_cert_free(c);
}

/* The SM-DP+ of DIR/<curve> of an esim-pki PKI. */
static inline void h_smdp_from_pki(struct h_smdp *d, const char *pki, const char *curve)
{
	char p[5][700];
	snprintf(p[0], 700, "%s/%s/dpauth.der", pki, curve);
	snprintf(p[1], 700, "%s/%s/dpauth.key.pem", pki, curve);
	snprintf(p[2], 700, "%s/%s/dppb.der", pki, curve);
	snprintf(p[3], 700, "%s/%s/dppb.key.pem", pki, curve);
	snprintf(p[4], 700, "%s/%s/ci.der", pki, curve);
	h_smdp_load(d, p[0], p[1], p[2], p[3], p[4]);
}

static inline void h_smdp_free(struct h_smdp *d)
{
	free(d->auth_der);
	free(d->pb_der);
	EVP_PKEY_free(d->auth_key);
	EVP_PKEY_free(d->pb_key);
	EVP_PKEY_free(d->euicc_pub);
	crypto_trust_free(d->trust);
	memset(d, 0, sizeof *d);
}

static inline void h_challenge(struct harness *h, uint8_t ch[16])
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(h, "BF2E00", &r);
	assert_int_equal(r.len, 21);
	memcpy(ch, r.data + 5, 16);
	esim_buf_free(&r);
}

enum { H_FLIP_SIG1 = 1, H_FLIP_SIG2 = 2 };

/* AuthenticateServerRequest for challenge ch, with a fresh transaction
 * unless keep_txid. *req: caller frees. */
static inline void h_auth_req(struct h_smdp *d, const uint8_t ch[16], unsigned flags,
			      bool keep_txid, uint8_t **req, size_t *len)
{
	if (!keep_txid)
		assert_esim(ESIM_OK, rsp_txid_random(&d->txid));
	for (size_t i = 0; i < 16; i++)
		d->server_challenge[i] = (uint8_t)rand();
	uint8_t *signed1 = NULL, sig[RSP_SIG_LEN], sig_tlv[RSP_SIG_TLV_LEN];
	size_t signed1_len = 0;
	assert_esim(ESIM_OK, rsp_server_signed1_build(&d->txid, ch, d->address, d->server_challenge,
						      d->auth_key, &signed1, &signed1_len, sig));
	if (flags & H_FLIP_SIG1)
		sig[7] ^= 0x01;
	rsp_sig_tlv(sig, sig_tlv);
	struct rsp_device_info dev = {.tac = {0x35, 0x29, 0x06, 0x11}};
	assert_esim(ESIM_OK,
		    rsp_auth_server_req_build(signed1, signed1_len, sig_tlv, sizeof sig_tlv,
					      d->ci_pkid_tlv, sizeof d->ci_pkid_tlv, d->auth_der,
					      d->auth_len, "MATCH-1", &dev, req, len));
	free(signed1);
}

/* GetEUICCChallenge + AuthenticateServer; on success the response is
 * verified as the SM-DP+ would and the session keeps the eUICC's key and
 * euiccSignature1. Returns 0 or the eUICC's AuthenticateErrorCode. */
static inline int64_t h_authenticate_req(struct harness *h, struct h_smdp *d, const uint8_t *req,
					 size_t len)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10(h, req, len, &r);
	struct rsp_auth_server_resp ar;
	memset(&ar, 0, sizeof ar);
	struct rsp_auth_expect ex = {
	    .trust = d->trust,
	    .txid = &d->txid,
	    .server_challenge = d->server_challenge,
	    .ci_pkid = d->ci_pkid_tlv + 2,
	    .ci_pkid_len = 20,
	};
	esim_err err = rsp_auth_server_resp_verify(r.data, r.len, &ex, &ar);
	int64_t code = 0;
	if (err == ESIM_E_RSP_EUICC_ERROR) {
		code = ar.error_code;
		assert_true(rsp_txid_equal(&ar.txid, &d->txid));
	} else {
		assert_esim(ESIM_OK, err);
		memcpy(d->euicc_sig1, ar.euicc_signature1, RSP_SIG_LEN);
		EVP_PKEY_free(d->euicc_pub);
		d->euicc_pub = ar.euicc_pub;
		ar.euicc_pub = NULL;
		assert_string_equal(ar.eid, H_EID);
	}
	rsp_auth_server_resp_clear(&ar);
	esim_buf_free(&r);
	return code;
}

static inline int64_t h_authenticate(struct harness *h, struct h_smdp *d)
{
	uint8_t ch[16], *req = NULL;
	size_t len = 0;
	h_challenge(h, ch);
	h_auth_req(d, ch, 0, false, &req, &len);
	int64_t code = h_authenticate_req(h, d, req, len);
	free(req);
	return code;
}

/* PrepareDownloadRequest; hash_cc NULL to leave it out. *req: caller frees. */
static inline void h_prepare_req(struct h_smdp *d, bool cc_required, const uint8_t *hash_cc,
				 const uint8_t *bound_otpk, unsigned flags, uint8_t **req,
				 size_t *len)
{
	uint8_t *signed2 = NULL, sig_tlv[RSP_SIG_TLV_LEN];
	size_t signed2_len = 0;
	assert_esim(ESIM_OK,
		    rsp_smdp_signed2_build(&d->txid, cc_required, bound_otpk, d->pb_key,
					   d->euicc_sig1, &signed2, &signed2_len, d->smdp_sig2));
	if (flags & H_FLIP_SIG2)
		d->smdp_sig2[3] ^= 0x80;
	rsp_sig_tlv(d->smdp_sig2, sig_tlv);
	assert_esim(ESIM_OK,
		    rsp_prepare_download_req_build(signed2, signed2_len, sig_tlv, sizeof sig_tlv,
						   hash_cc, d->pb_der, d->pb_len, req, len));
	free(signed2);
}

/* PrepareDownload; on success verified as the SM-DP+ would, otpk kept.
 * Returns 0 or the eUICC's DownloadErrorCode. */
static inline int64_t h_prepare_send(struct harness *h, struct h_smdp *d, const uint8_t *req,
				     size_t len, const uint8_t *hash_cc)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10(h, req, len, &r);
	struct rsp_prepare_download_resp pr;
	memset(&pr, 0, sizeof pr);
	esim_err err = rsp_prepare_download_resp_parse(r.data, r.len, &pr);
	if (err == ESIM_OK)
		err = rsp_prepare_download_resp_verify(r.data, r.len, d->euicc_pub, &d->txid,
						       d->smdp_sig2, hash_cc, &pr);
	int64_t code = 0;
	if (err == ESIM_E_RSP_EUICC_ERROR) {
		code = pr.error_code;
	} else {
		assert_esim(ESIM_OK, err);
		memcpy(d->otpk, pr.otpk, RSP_OTPK_LEN);
	}
	esim_buf_free(&r);
	return code;
}

static inline int64_t h_prepare(struct harness *h, struct h_smdp *d, bool cc_required,
				const uint8_t *hash_cc)
{
	uint8_t *req = NULL;
	size_t len = 0;
	h_prepare_req(d, cc_required, hash_cc, NULL, 0, &req, &len);
	int64_t code = h_prepare_send(h, d, req, len, hash_cc);
	free(req);
	return code;
}

/* StoreMetadataRequest for iccid (digits): SPN/name, a class (-1: absent),
 * PPRs (0: none) and notifications for enable|disable|delete to notif_addr
 * (NULL: none). *out: caller frees. */
static inline void h_metadata(const char *iccid, int cls, uint32_t ppr, const char *notif_addr,
			      uint8_t **out, size_t *len)
{
	struct rsp_metadata m;
	memset(&m, 0, sizeof m);
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, m.iccid));
	m.spn = (char *)"Test Operator";
	m.name = (char *)"Test Profile";
	if (cls >= 0) {
		m.has_class = true;
		m.profile_class = (enum rsp_profile_class)cls;
	}
	if (ppr != 0) {
		m.has_ppr = true;
		m.ppr = ppr;
	}
	struct rsp_notif_config nc = {RSP_PMO_ALL_LOCAL, (char *)notif_addr};
	if (notif_addr != NULL) {
		m.notif = &nc;
		m.n_notif = 1;
	}
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, out, len));
}

/* Feed a BPP to the card as the LPA does (rsp_bpp_split, digest 3.5) and
 * return the first non-empty response (the PIR) in *pir. tamper (may be
 * NULL) is called on each chunk before it is sent. Returns how many chunks
 * were answered with no data after the PIR (the rest dropped). */
typedef void (*h_tamper_fn)(uint8_t *chunk, size_t len, size_t index);
static inline size_t h_load_bpp(struct harness *h, const uint8_t *bpp, size_t len,
				h_tamper_fn tamper, esim_buf *pir)
{
	der_span *chunks = NULL;
	size_t n = 0, after = 0;
	assert_esim(ESIM_OK, rsp_bpp_split(bpp, len, &chunks, &n));
	pir->len = 0;
	esim_buf r = ESIM_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		uint8_t *c = malloc(chunks[i].len);
		memcpy(c, chunks[i].p, chunks[i].len);
		if (tamper != NULL)
			tamper(c, chunks[i].len, i);
		h_es10(h, c, chunks[i].len, &r);
		free(c);
		if (pir->len > 0) {
			assert_int_equal(r.len, 0);
			after++;
		} else if (r.len > 0) {
			assert_esim(ESIM_OK, esim_buf_append(pir, r.data, r.len));
		}
	}
	esim_buf_free(&r);
	free(chunks);
	return after;
}

/* Bind upp + metadata to the card's session (after PrepareDownload). */
static inline void h_build_bpp(struct h_smdp *d, const rsp_txid *txid, const uint8_t *meta,
			       size_t meta_len, const uint8_t *upp, size_t upp_len,
			       const struct rsp_bpp_ppk *ppk, uint8_t **out, size_t *len)
{
	static const uint8_t host_id[8] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
	uint8_t eid[16];
	assert_esim(ESIM_OK, rsp_eid_to_bcd(H_EID, eid));
	struct rsp_bpp_params bp = {
	    .dp_pb_key = d->pb_key,
	    .txid = txid,
	    .euicc_otpk = d->otpk,
	    .euicc_otpk_len = RSP_OTPK_LEN,
	    .eid = eid,
	    .host_id = host_id,
	    .host_id_len = sizeof host_id,
	    .metadata = meta,
	    .metadata_len = meta_len,
	    .upp = upp,
	    .upp_len = upp_len,
	    .ppk = ppk,
	};
	assert_esim(ESIM_OK, rsp_bpp_build(&bp, out, len));
}

/* A whole download of upp with metadata meta: authenticate, prepare, bind,
 * load; the PIR is verified as the SM-DP+ does and returned in *pir
 * (caller frees with rsp_pir_free). */
static inline void h_download(struct harness *h, struct h_smdp *d, const uint8_t *meta,
			      size_t meta_len, const uint8_t *upp, size_t upp_len,
			      h_tamper_fn tamper, struct rsp_pir *pir)
{
	assert_int_equal(h_authenticate(h, d), 0);
	assert_int_equal(h_prepare(h, d, false, NULL), 0);
	uint8_t *bpp = NULL;
	size_t bpp_len = 0;
	h_build_bpp(d, &d->txid, meta, meta_len, upp, upp_len, NULL, &bpp, &bpp_len);
	esim_buf r = ESIM_BUF_INIT;
	h_load_bpp(h, bpp, bpp_len, tamper, &r);
	assert_true(r.len > 0);
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, d->euicc_pub, d->oid, pir));
	assert_true(rsp_txid_equal(&pir->txid, &d->txid));
	free(bpp);
	esim_buf_free(&r);
}

/* Install a test profile with ICCID iccid; asserts success. */
static inline void h_install(struct harness *h, struct h_smdp *d, const char *iccid, int cls,
			     uint32_t ppr, const char *notif_addr)
{
	uint8_t *upp = NULL, *meta = NULL;
	size_t upp_len = 0, meta_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(iccid, &upp, &upp_len));
	h_metadata(iccid, cls, ppr, notif_addr, &meta, &meta_len);
	struct rsp_pir pir;
	h_download(h, d, meta, meta_len, upp, upp_len, NULL, &pir);
	assert_true(pir.success);
	rsp_pir_free(&pir);
	free(upp);
	free(meta);
}

/* ES10c command with an ICCID: tag { A0 { 5A iccid }, 81 refresh } for
 * enable/disable, tag { 5A iccid } for delete. Returns the result code. */
static inline int64_t h_profile_op(struct harness *h, uint32_t tag, const char *iccid)
{
	uint8_t bcd[10], *cmd = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, bcd));
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, tag);
	if (tag == 0xBF33) {
		der_add_octet_string(&b, 0x5A, bcd, 10);
	} else {
		der_builder_open(&b, 0xA0);
		der_add_octet_string(&b, 0x5A, bcd, 10);
		der_builder_close(&b);
		der_add_bool(&b, 0x81, false);
	}
	der_builder_close(&b);
	h_finish(&b, &cmd, &len);
	esim_buf r = ESIM_BUF_INIT;
	h_es10(h, cmd, len, &r);
	int64_t code = h_result(&r, tag);
	esim_buf_free(&r);
	free(cmd);
	return code;
}

#endif
