/*
 * The LPA's side of the common mutual authentication and profile download
 * (SGP.22 3.1.2, 3.1.3; ES9+ 5.6, ES10b 5.7), as steps without I/O: the
 * esim program and the test / benchmark driver run the same code between
 * their own card and server transports.
 *
 * What the LPA checks here (SGP.22 3.1.2 step 8 and 3.1.3): that the
 * server signed, in serverSigned1, the transaction it named, our eUICC
 * challenge and the address we contacted, and that smdpSigned2 is for the
 * same transaction. The signatures themselves are the eUICC's to verify
 * (AuthenticateServer, PrepareDownload); every signed object is handed on
 * byte for byte.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "es9_codec.h"
#include "esim/rsp_es10.h"

esim_err rsp_es9_dl_init(struct rsp_es9_dl *s, const char *address)
{
	if (!s || !address || strlen(address) == 0 || strlen(address) > RSP_ES9_MAX_TEXT)
		return ESIM_E_ARG;
	memset(s, 0, sizeof *s);
	snprintf(s->address, sizeof s->address, "%s", address);
	return ESIM_OK;
}

void rsp_es9_dl_clear(struct rsp_es9_dl *s)
{
	if (!s)
		return;
	rsp_es9_response_clear(&s->auth);
	memset(s, 0, sizeof *s);
}

esim_err rsp_es9_dl_initiate(struct rsp_es9_dl *s, const uint8_t *challenge_resp, size_t cl,
			     const uint8_t *info1, size_t il, struct rsp_es9_request *out)
{
	if (!s || !out || (!info1 && il))
		return ESIM_E_ARG;
	esim_err err = rsp_challenge_parse(challenge_resp, cl, s->challenge);
	if (err != ESIM_OK)
		return err;
	memset(out, 0, sizeof *out);
	out->fn = RSP_ES9_INITIATE_AUTHENTICATION;
	out->u.initiate.euicc_challenge = (der_span){s->challenge, sizeof s->challenge};
	out->u.initiate.smdp_address = (der_span){(const uint8_t *)s->address, strlen(s->address)};
	out->u.initiate.euicc_info1 = (der_span){info1, il};
	return ESIM_OK;
}

esim_err rsp_es9_dl_authenticate_server(struct rsp_es9_dl *s, const struct rsp_es9_response *r,
					const char *matching_id, const struct rsp_device_info *dev,
					uint8_t **cmd, size_t *cmd_len)
{
	if (!s || !r || !cmd || !cmd_len || r->fn != RSP_ES9_INITIATE_AUTHENTICATION ||
	    r->status != RSP_ES9_SUCCESS)
		return ESIM_E_ARG;
	const der_span s1 = r->u.initiate.server_signed1;
	der_cursor c, in;
	der_span txid, ch, addr;
	der_cursor_init(&c, s1.p, s1.len);
	esim_err err = der_get_sequence(&c, DER_TAG_SEQUENCE, &in);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x80, &txid);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x81, &ch);
	if (err == ESIM_OK)
		err = der_get_utf8(&in, 0x83, &addr);
	if (err != ESIM_OK)
		return err == ESIM_E_DER_UNEXPECTED_TAG ? ESIM_E_RSP_BAD_STRUCTURE : err;
	size_t k = 0; /* what the server calls itself, for the LPA's message */
	for (size_t i = 0; i < addr.len && k < sizeof s->signed_address - 1; i++)
		s->signed_address[k++] =
		    addr.p[i] >= 0x20 && addr.p[i] < 0x7F ? (char)addr.p[i] : '?';
	s->signed_address[k] = '\0';
	rsp_txid signed_txid;
	if (rsp_txid_set(&signed_txid, txid.p, txid.len) != ESIM_OK ||
	    !rsp_txid_equal(&signed_txid, &r->u.initiate.txid))
		return ESIM_E_RSP_TXID_MISMATCH;
	if (ch.len != sizeof s->challenge || memcmp(ch.p, s->challenge, ch.len) != 0)
		return ESIM_E_RSP_CHALLENGE_MISMATCH;
	if (addr.len != strlen(s->address) ||
	    strncasecmp((const char *)addr.p, s->address, addr.len) != 0)
		return ESIM_E_RSP_ADDRESS_MISMATCH;
	s->txid = r->u.initiate.txid;
	return rsp_auth_server_req_build(
	    s1.p, s1.len, r->u.initiate.server_signature1.p, r->u.initiate.server_signature1.len,
	    r->u.initiate.euicc_ci_pkid.p, r->u.initiate.euicc_ci_pkid.len,
	    r->u.initiate.server_certificate.p, r->u.initiate.server_certificate.len, matching_id,
	    dev, cmd, cmd_len);
}

static esim_err with_txid(const struct rsp_es9_dl *s, enum rsp_es9_fn fn, const uint8_t *p,
			  size_t len, struct rsp_es9_request *out)
{
	if (!s || !out || (!p && len) || s->txid.len == 0)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	out->fn = fn;
	der_span v = {p, len};
	switch (fn) {
	case RSP_ES9_GET_BOUND_PROFILE_PACKAGE:
		out->u.get_bpp.txid = s->txid;
		out->u.get_bpp.prepare_download_response = v;
		break;
	case RSP_ES9_CANCEL_SESSION:
		out->u.cancel.txid = s->txid;
		out->u.cancel.cancel_session_response = v;
		break;
	default:
		out->u.authenticate.txid = s->txid;
		out->u.authenticate.authenticate_server_response = v;
		break;
	}
	return ESIM_OK;
}

esim_err rsp_es9_dl_authenticate_client(const struct rsp_es9_dl *s, const uint8_t *asr,
					size_t asr_len, struct rsp_es9_request *out)
{
	return with_txid(s, RSP_ES9_AUTHENTICATE_CLIENT, asr, asr_len, out);
}

esim_err rsp_es9_dl_get_bpp(const struct rsp_es9_dl *s, const uint8_t *pdr, size_t pdr_len,
			    struct rsp_es9_request *out)
{
	return with_txid(s, RSP_ES9_GET_BOUND_PROFILE_PACKAGE, pdr, pdr_len, out);
}

esim_err rsp_es9_dl_cancel(const struct rsp_es9_dl *s, const uint8_t *csr, size_t csr_len,
			   struct rsp_es9_request *out)
{
	return with_txid(s, RSP_ES9_CANCEL_SESSION, csr, csr_len, out);
}

void rsp_es9_dl_notification(const uint8_t *p, size_t len, struct rsp_es9_request *out)
{
	memset(out, 0, sizeof *out);
	out->fn = RSP_ES9_HANDLE_NOTIFICATION;
	out->u.notify.pending_notification = (der_span){p, len};
}

esim_err rsp_es9_dl_check_txid(const struct rsp_es9_dl *s, const struct rsp_es9_response *r)
{
	if (!s || !r || r->status != RSP_ES9_SUCCESS)
		return ESIM_E_ARG;
	rsp_txid *t = es9__response_txid((struct rsp_es9_response *)r);
	if (!t)
		return ESIM_OK; /* cancelSession's answer names no transaction */
	return rsp_txid_equal(t, &s->txid) ? ESIM_OK : ESIM_E_RSP_TXID_MISMATCH;
}

esim_err rsp_es9_dl_accept_authenticate(struct rsp_es9_dl *s, struct rsp_es9_response *r)
{
	if (!s || !r || r->fn != RSP_ES9_AUTHENTICATE_CLIENT || r->status != RSP_ES9_SUCCESS)
		return ESIM_E_ARG;
	esim_err err = rsp_es9_dl_check_txid(s, r);
	if (err != ESIM_OK)
		return err;
	der_cursor c, in;
	der_span txid;
	bool cc = false, otpk = false;
	der_cursor_init(&c, r->u.authenticate.smdp_signed2.p, r->u.authenticate.smdp_signed2.len);
	err = der_get_sequence(&c, DER_TAG_SEQUENCE, &in);
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x80, &txid);
	if (err == ESIM_OK)
		err = der_get_bool(&in, DER_TAG_BOOLEAN, &cc);
	if (err == ESIM_OK)
		err = der_get_optional(&in, 0x5F49, &otpk, NULL);
	if (err != ESIM_OK)
		return err == ESIM_E_DER_UNEXPECTED_TAG ? ESIM_E_RSP_BAD_STRUCTURE : err;
	rsp_txid t;
	if (rsp_txid_set(&t, txid.p, txid.len) != ESIM_OK || !rsp_txid_equal(&t, &s->txid))
		return ESIM_E_RSP_TXID_MISMATCH;
	rsp_es9_response_clear(&s->auth);
	s->auth = *r;
	memset(r, 0, sizeof *r);
	r->fn = RSP_ES9_AUTHENTICATE_CLIENT;
	s->cc_required = cc;
	s->bound_otpk = otpk;
	return ESIM_OK;
}

esim_err rsp_es9_dl_prepare_download(const struct rsp_es9_dl *s, const char *cc, uint8_t **cmd,
				     size_t *cmd_len)
{
	if (!s || !cmd || !cmd_len || s->auth.fn != RSP_ES9_AUTHENTICATE_CLIENT ||
	    s->auth.u.authenticate.smdp_signed2.len == 0)
		return ESIM_E_ARG;
	uint8_t hash[32];
	esim_err err = ESIM_OK;
	if (cc && (err = rsp_hash_cc(cc, strlen(cc), &s->txid, hash)) != ESIM_OK)
		return err;
	const der_span s2 = s->auth.u.authenticate.smdp_signed2,
		       sig2 = s->auth.u.authenticate.smdp_signature2,
		       cert = s->auth.u.authenticate.smdp_certificate;
	err = rsp_prepare_download_req_build(s2.p, s2.len, sig2.p, sig2.len, cc ? hash : NULL,
					     cert.p, cert.len, cmd, cmd_len);
	esim_wipe(hash, sizeof hash);
	return err;
}
