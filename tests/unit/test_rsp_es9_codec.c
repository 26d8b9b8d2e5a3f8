/*
 * Tests of the ES9+ / ES11 message codec (include/esim/rsp_es9.h,
 * src/rsp/es9_*.c): every structure of the ASN.1 binding and every
 * alternative of its CHOICEs, with the expected bytes worked out by hand
 * from SGP.22's RSPDefinitions (DEFINITIONS AUTOMATIC TAGS) and X.680's
 * tagging rules, never produced by our encoder: decode(expected) gives the
 * fields, encode(fields) gives exactly expected, and the message sent
 * through the JSON binding and back encodes to expected again. Then the JSON binding
 * (round trips, member names) and malformed input of both bindings,
 * refused with the error and the field named.
 *
 * The rules used in the derivations (X.680 25.3, 31.2.7):
 *  (a) A2: RemoteProfileProvisioningRequest/-Response ::= [2] CHOICE, an
 *      explicit tag around an untagged CHOICE, constructed context 2.
 *  (b) Each alternative carries its number from the module: [57] -> BF 39,
 *      [58] BF 3A, [59] BF 3B, [61] BF 3D, [64] BF 40, [65] BF 41.
 *  (c) A SEQUENCE with some tagged components is not automatically tagged:
 *      components keep the tags written (or their type's own tag).
 *  (d) A SEQUENCE / CHOICE with no tagged component gets [0], [1]... by
 *      position; implicit (the component type's outer tag is replaced),
 *      except when the component's type is an untagged CHOICE (explicit:
 *      the new tag wraps the CHOICE's encoding).
 * Fillers: the codec checks that a signed object is one DER element with
 * its tag, not what is inside, so small stand-ins are used for them.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_es9.h"
#include "testutil.h"

/* transactionId 01 02 in every message: 80 02 01 02 */
static const uint8_t TX[] = {0x01, 0x02};

static der_span span_hex(const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	return (der_span){p, n};
}

static void set_txid(rsp_txid *t)
{
	assert_esim(ESIM_OK, rsp_txid_set(t, TX, sizeof TX));
}

static void assert_span_hex(der_span s, const char *hex)
{
	size_t n;
	uint8_t *want = test_unhex(hex, &n);
	assert_int_equal(s.len, n);
	assert_memory_equal(s.p, want, n);
	free(want);
}

static void assert_txid(const rsp_txid *t)
{
	assert_int_equal(t->len, 2);
	assert_memory_equal(t->b, TX, 2);
}

/* encode(r) == hex, and decode(hex) gives back a request of the same fn */
static void check_request(const struct rsp_es9_request *r, const char *hex,
			  struct rsp_es9_request *dec)
{
	uint8_t *out = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, rsp_es9_request_to_asn1(r, &out, &len));
	size_t n;
	uint8_t *want = test_unhex(hex, &n);
	assert_int_equal(len, n);
	assert_memory_equal(out, want, n);
	free(out);
	const char *field = "unset";
	assert_esim(ESIM_OK, rsp_es9_request_from_asn1(want, n, dec, &field));
	assert_null(field);
	/* the same message through the JSON binding comes back to the same bytes */
	char *text = NULL;
	size_t tl = 0;
	struct rsp_es9_request j;
	assert_esim(ESIM_OK, rsp_es9_request_to_json(r, &text, &tl));
	assert_esim(ESIM_OK, rsp_es9_request_from_json(r->fn, (const uint8_t *)text, tl, &j, NULL));
	assert_esim(ESIM_OK, rsp_es9_request_to_asn1(&j, &out, &len));
	assert_int_equal(len, n);
	assert_memory_equal(out, want, n);
	free(out);
	free(text);
	rsp_es9_request_clear(&j);
	free(want);
	assert_int_equal(
	    dec->fn, r->fn == RSP_ES11_AUTHENTICATE_CLIENT ? RSP_ES9_AUTHENTICATE_CLIENT : r->fn);
}

static void check_response(const struct rsp_es9_response *r, const char *hex,
			   struct rsp_es9_response *dec)
{
	uint8_t *out = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, rsp_es9_response_to_asn1(r, &out, &len));
	size_t n;
	uint8_t *want = test_unhex(hex, &n);
	assert_int_equal(len, n);
	assert_memory_equal(out, want, n);
	free(out);
	const char *field = "unset";
	assert_esim(ESIM_OK, rsp_es9_response_from_asn1(want, n, dec, &field));
	assert_null(field);
	/* the same message through the JSON binding comes back to the same bytes */
	char *text = NULL;
	size_t tl = 0;
	struct rsp_es9_response j;
	assert_esim(ESIM_OK, rsp_es9_response_to_json(r, &text, &tl));
	assert_esim(ESIM_OK,
		    rsp_es9_response_from_json(r->fn, (const uint8_t *)text, tl, &j, NULL));
	assert_esim(ESIM_OK, rsp_es9_response_to_asn1(&j, &out, &len));
	assert_int_equal(len, n);
	assert_memory_equal(out, want, n);
	free(out);
	free(text);
	rsp_es9_response_clear(&j);
	free(want);
	assert_int_equal(dec->fn, r->fn);
	assert_int_equal(dec->status,
			 r->status == RSP_ES9_FAILED ? RSP_ES9_FAILED : RSP_ES9_SUCCESS);
}

/* ---- requests -------------------------------------------------------------------------- */

/*
 * InitiateAuthenticationRequest ::= [57] SEQUENCE { euiccChallenge [1]
 * Octet16, smdpAddress [3] UTF8String, euiccInfo1 EUICCInfo1 } where
 * EUICCInfo1 ::= [32] SEQUENCE. Rule (c): tags as written.
 *   81 10 000102..0F         euiccChallenge, [1] implicit OCTET STRING  18
 *   83 03 61 2E 62           smdpAddress "a.b", [3] implicit UTF8String  5
 *   BF 20 03 82 01 02        euiccInfo1, its own [32] (stand-in content) 6
 * content 29 = 0x1D -> BF 39 1D (32 bytes) -> A2 20.
 */
#define INIT_REQ                                                                                   \
	"A220BF391D"                                                                               \
	"8110000102030405060708090A0B0C0D0E0F"                                                     \
	"8303612E62"                                                                               \
	"BF2003820102"

static void test_initiate_request(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_INITIATE_AUTHENTICATION}, d;
	r.u.initiate.euicc_challenge = span_hex("000102030405060708090A0B0C0D0E0F");
	r.u.initiate.smdp_address = (der_span){(const uint8_t *)"a.b", 3};
	r.u.initiate.euicc_info1 = span_hex("BF2003820102");
	check_request(&r, INIT_REQ, &d);
	assert_span_hex(d.u.initiate.euicc_challenge, "000102030405060708090A0B0C0D0E0F");
	assert_span_hex(d.u.initiate.smdp_address, "612E62");
	assert_span_hex(d.u.initiate.euicc_info1, "BF2003820102");
	rsp_es9_request_clear(&d);
	free((void *)r.u.initiate.euicc_challenge.p);
	free((void *)r.u.initiate.euicc_info1.p);
}

/*
 * AuthenticateClientRequest ::= [59] SEQUENCE { transactionId [0]
 * TransactionId, authenticateServerResponse [56] AuthenticateServerResponse }.
 * Rule (c). AuthenticateServerResponse ::= [56] CHOICE is a tagged type,
 * so [56] on it is implicit and replaces [56] by [56]: BF 38 unchanged.
 *   80 02 01 02              transactionId                                4
 *   BF 38 02 A1 00           the eUICC's answer (stand-in)                5
 * content 9 -> BF 3B 09 (12) -> A2 0C.
 */
static void test_authenticate_request(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_AUTHENTICATE_CLIENT}, d;
	set_txid(&r.u.authenticate.txid);
	r.u.authenticate.authenticate_server_response = span_hex("BF3802A100");
	check_request(&r, "A20CBF3B0980020102BF3802A100", &d);
	assert_txid(&d.u.authenticate.txid);
	assert_span_hex(d.u.authenticate.authenticate_server_response, "BF3802A100");
	rsp_es9_request_clear(&d);
	/* the ES11 request is the same message */
	r.fn = RSP_ES11_AUTHENTICATE_CLIENT;
	check_request(&r, "A20CBF3B0980020102BF3802A100", &d);
	rsp_es9_request_clear(&d);
	free((void *)r.u.authenticate.authenticate_server_response.p);
}

/*
 * GetBoundProfilePackageRequest ::= [58] SEQUENCE { transactionId [0]
 * TransactionId, prepareDownloadResponse [33] PrepareDownloadResponse }.
 * Rule (c); [33] on the [33] CHOICE: BF 21 unchanged.
 *   80 02 01 02   BF 21 02 A1 00     content 9 -> BF 3A 09 -> A2 0C.
 */
static void test_get_bpp_request(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE}, d;
	set_txid(&r.u.get_bpp.txid);
	r.u.get_bpp.prepare_download_response = span_hex("BF2102A100");
	check_request(&r, "A20CBF3A0980020102BF2102A100", &d);
	assert_txid(&d.u.get_bpp.txid);
	assert_span_hex(d.u.get_bpp.prepare_download_response, "BF2102A100");
	rsp_es9_request_clear(&d);
	free((void *)r.u.get_bpp.prepare_download_response.p);
}

/*
 * CancelSessionRequestEs9 ::= [65] SEQUENCE { transactionId TransactionId,
 * cancelSessionResponse CancelSessionResponse }: no component tagged, so
 * rule (d): transactionId [0] implicit OCTET STRING -> 80; the second
 * component [1], and CancelSessionResponse ::= [65] CHOICE is a tagged
 * type (not an untagged CHOICE), so [1] is implicit: BF 41 is replaced by
 * A1 (constructed, as the [65] encoding was), the content unchanged.
 * The eUICC's answer BF 41 04 { A0 02 30 00 } (ok alternative, stand-in):
 *   80 02 01 02                      4
 *   A1 04 A0 02 30 00                6
 * content 10 -> BF 41 0A (13) -> A2 0D.
 * And its error alternative BF 41 03 { 81 01 01 } -> A1 03 81 01 01:
 * content 9 -> BF 41 09 -> A2 0C.
 */
static void test_cancel_request(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_CANCEL_SESSION}, d;
	set_txid(&r.u.cancel.txid);
	r.u.cancel.cancel_session_response = span_hex("BF4104A0023000");
	check_request(&r, "A20DBF410A80020102A104A0023000", &d);
	assert_txid(&d.u.cancel.txid);
	/* handed on as the eUICC made it: BF 41 again */
	assert_span_hex(d.u.cancel.cancel_session_response, "BF4104A0023000");
	rsp_es9_request_clear(&d);
	free((void *)r.u.cancel.cancel_session_response.p);

	r.u.cancel.cancel_session_response = span_hex("BF4103810101");
	check_request(&r, "A20CBF410980020102A103810101", &d);
	assert_span_hex(d.u.cancel.cancel_session_response, "BF4103810101");
	rsp_es9_request_clear(&d);
	free((void *)r.u.cancel.cancel_session_response.p);
}

/*
 * HandleNotification ::= [61] SEQUENCE { pendingNotification
 * PendingNotification }, PendingNotification ::= CHOICE {
 * profileInstallationResult [55] ..., otherSignedNotification
 * OtherSignedNotification }: rule (d), and the component's type is an
 * untagged CHOICE, so [0] is explicit: A0 wraps the alternative.
 *   PIR:   A0 06 { BF 37 03 BF 27 00 }        8 -> BF 3D 08 (11) -> A2 0B
 *   other: A0 05 { 30 03 BF 2F 00 }           7 -> BF 3D 07 (10) -> A2 0A
 */
static void test_notification_request(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_HANDLE_NOTIFICATION}, d;
	r.u.notify.pending_notification = span_hex("BF3703BF2700");
	check_request(&r, "A20BBF3D08A006BF3703BF2700", &d);
	assert_span_hex(d.u.notify.pending_notification, "BF3703BF2700");
	rsp_es9_request_clear(&d);
	free((void *)r.u.notify.pending_notification.p);

	r.u.notify.pending_notification = span_hex("3003BF2F00");
	check_request(&r, "A20ABF3D07A0053003BF2F00", &d);
	assert_span_hex(d.u.notify.pending_notification, "3003BF2F00");
	rsp_es9_request_clear(&d);
	free((void *)r.u.notify.pending_notification.p);
}

/* ---- responses ------------------------------------------------------------------------- */

/*
 * InitiateAuthenticationResponse ::= [57] CHOICE { initiateAuthenticationOk
 * InitiateAuthenticationOkEs9, initiateAuthenticationError INTEGER }: rule
 * (d) on the CHOICE: ok [0] implicit SEQUENCE -> A0, error [1] -> 81.
 * InitiateAuthenticationOkEs9 ::= SEQUENCE { transactionId [0],
 * serverSigned1 ServerSigned1 (30), serverSignature1 [APPLICATION 55]
 * (5F 37), euiccCiPKIdToBeUsed SubjectKeyIdentifier (04), serverCertificate
 * Certificate (30) }: rule (c).
 *   80 02 01 02 | 30 03 80 01 AA | 5F 37 02 11 22 | 04 02 33 44 | 30 02 05 00
 *   4 + 5 + 5 + 4 + 4 = 22 -> A0 16 (24) -> BF 39 18 (27) -> A2 1B.
 * Error invalidDpAddress(1): 81 01 01 -> BF 39 03 -> A2 06.
 */
static void test_initiate_response(void **state)
{
	(void)state;
	struct rsp_es9_response r = {.fn = RSP_ES9_INITIATE_AUTHENTICATION}, d;
	set_txid(&r.u.initiate.txid);
	r.u.initiate.server_signed1 = span_hex("30038001AA");
	r.u.initiate.server_signature1 = span_hex("5F37021122");
	r.u.initiate.euicc_ci_pkid = span_hex("04023344");
	r.u.initiate.server_certificate = span_hex("30020500");
	check_response(&r,
		       "A21BBF3918A016800201023003"
		       "8001AA5F37021122040233443002"
		       "0500",
		       &d);
	assert_txid(&d.u.initiate.txid);
	assert_span_hex(d.u.initiate.server_signed1, "30038001AA");
	assert_span_hex(d.u.initiate.server_signature1, "5F37021122");
	assert_span_hex(d.u.initiate.euicc_ci_pkid, "04023344");
	assert_span_hex(d.u.initiate.server_certificate, "30020500");
	rsp_es9_response_clear(&d);
	free((void *)r.u.initiate.server_signed1.p);
	free((void *)r.u.initiate.server_signature1.p);
	free((void *)r.u.initiate.euicc_ci_pkid.p);
	free((void *)r.u.initiate.server_certificate.p);

	struct rsp_es9_response e = {.fn = RSP_ES9_INITIATE_AUTHENTICATION,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.8.1",
				     .reason = "3.8"};
	check_response(&e, "A206BF3903810101", &d);
	assert_int_equal(d.error, 1);
	assert_string_equal(d.subject, "8.8.1");
	assert_string_equal(d.reason, "3.8");
	rsp_es9_response_clear(&d);
}

/*
 * AuthenticateClientResponseEs9 ::= [59] CHOICE { authenticateClientOk
 * AuthenticateClientOk, authenticateClientError INTEGER }: A0 / 81.
 * AuthenticateClientOk ::= SEQUENCE { transactionId [0], profileMetaData
 * [37] StoreMetadataRequest (BF 25), smdpSigned2 (30), smdpSignature2
 * [APPLICATION 55] (5F 37), smdpCertificate (30) }: rule (c).
 *   80 02 01 02 | BF 25 03 5A 01 98 | 30 03 80 01 BB | 5F 37 02 11 22 | 30 02 05 00
 *   4 + 6 + 5 + 5 + 4 = 24 -> A0 18 (26) -> BF 3B 1A (29) -> A2 1D.
 * Error invalidTransactionId(10): 81 01 0A -> BF 3B 03 -> A2 06.
 */
static void test_authenticate_response(void **state)
{
	(void)state;
	struct rsp_es9_response r = {.fn = RSP_ES9_AUTHENTICATE_CLIENT}, d;
	set_txid(&r.u.authenticate.txid);
	r.u.authenticate.profile_metadata = span_hex("BF25035A0198");
	r.u.authenticate.smdp_signed2 = span_hex("30038001BB");
	r.u.authenticate.smdp_signature2 = span_hex("5F37021122");
	r.u.authenticate.smdp_certificate = span_hex("30020500");
	check_response(&r, "A21DBF3B1AA01880020102BF25035A019830038001BB5F3702112230020500", &d);
	assert_txid(&d.u.authenticate.txid);
	assert_span_hex(d.u.authenticate.profile_metadata, "BF25035A0198");
	assert_span_hex(d.u.authenticate.smdp_signed2, "30038001BB");
	assert_span_hex(d.u.authenticate.smdp_signature2, "5F37021122");
	assert_span_hex(d.u.authenticate.smdp_certificate, "30020500");
	rsp_es9_response_clear(&d);
	free((void *)r.u.authenticate.profile_metadata.p);
	free((void *)r.u.authenticate.smdp_signed2.p);
	free((void *)r.u.authenticate.smdp_signature2.p);
	free((void *)r.u.authenticate.smdp_certificate.p);

	struct rsp_es9_response e = {.fn = RSP_ES9_AUTHENTICATE_CLIENT,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.10.1",
				     .reason = "3.9"};
	check_response(&e, "A206BF3B0381010A", &d);
	assert_int_equal(d.error, 10);
	assert_string_equal(d.subject, "8.10.1");
	rsp_es9_response_clear(&d);
}

/*
 * AuthenticateClientResponseEs11 ::= [64] CHOICE { authenticateClientOk
 * AuthenticateClientOkEs11, authenticateClientError INTEGER }: BF 40, A0 / 81.
 * AuthenticateClientOkEs11 ::= SEQUENCE { transactionId TransactionId,
 * eventEntries SEQUENCE OF EventEntries }: no tag, rule (d): 80, and [1]
 * implicit on the SEQUENCE OF -> A1. EventEntries ::= SEQUENCE { eventId
 * UTF8String, rspServerAddress UTF8String }: rule (d) -> 80, 81; each
 * entry is a universal SEQUENCE 30.
 * One event "e1" at "a.b":
 *   80 02 65 31 | 81 03 61 2E 62      9 -> 30 09 (11) -> A1 0B (13)
 *   80 02 01 02 + A1 0B ...           17 -> A0 11 (19) -> BF 40 13 (22) -> A2 16.
 * Error eventIdUnknown(6): 81 01 06 -> BF 40 03 -> A2 06.
 */
static void test_es11_response(void **state)
{
	(void)state;
	struct rsp_es11_event ev = {{(const uint8_t *)"e1", 2}, {(const uint8_t *)"a.b", 3}};
	struct rsp_es9_response r = {.fn = RSP_ES11_AUTHENTICATE_CLIENT}, d;
	set_txid(&r.u.es11.txid);
	r.u.es11.n_events = 1;
	r.u.es11.events = &ev;
	check_response(&r,
		       "A216BF4013A01180020102A10B300980026531"
		       "8103612E62",
		       &d);
	assert_txid(&d.u.es11.txid);
	assert_int_equal(d.u.es11.n_events, 1);
	assert_span_hex(d.u.es11.events[0].event_id, "6531");
	assert_span_hex(d.u.es11.events[0].rsp_server_address, "612E62");
	rsp_es9_response_clear(&d);

	/* no event: A1 00 -> A0 06 -> BF 40 08 -> A2 0B */
	r.u.es11.n_events = 0;
	check_response(&r, "A20BBF4008A00680020102A100", &d);
	assert_int_equal(d.u.es11.n_events, 0);
	rsp_es9_response_clear(&d);

	struct rsp_es9_response e = {.fn = RSP_ES11_AUTHENTICATE_CLIENT,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.9.5",
				     .reason = "3.9"};
	check_response(&e, "A206BF4003810106", &d);
	assert_int_equal(d.error, 6);
	assert_string_equal(d.subject, "8.9.5");
	rsp_es9_response_clear(&d);
}

/*
 * GetBoundProfilePackageResponse ::= [58] CHOICE { getBoundProfilePackageOk
 * GetBoundProfilePackageOk, getBoundProfilePackageError INTEGER }: A0 / 81.
 * GetBoundProfilePackageOk ::= SEQUENCE { transactionId [0],
 * boundProfilePackage [54] BoundProfilePackage (BF 36) }: rule (c).
 *   80 02 01 02 | BF 36 03 BF 23 00     10 -> A0 0A (12) -> BF 3A 0C (15) -> A2 0F.
 * Error invalidTransactionId(95 = 0x5F): 81 01 5F -> BF 3A 03 -> A2 06.
 */
static void test_get_bpp_response(void **state)
{
	(void)state;
	struct rsp_es9_response r = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE}, d;
	set_txid(&r.u.get_bpp.txid);
	r.u.get_bpp.bound_profile_package = span_hex("BF3603BF2300");
	check_response(&r, "A20FBF3A0CA00A80020102BF3603BF2300", &d);
	assert_txid(&d.u.get_bpp.txid);
	assert_span_hex(d.u.get_bpp.bound_profile_package, "BF3603BF2300");
	rsp_es9_response_clear(&d);
	free((void *)r.u.get_bpp.bound_profile_package.p);

	struct rsp_es9_response e = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.10.1",
				     .reason = "3.9"};
	check_response(&e, "A206BF3A0381015F", &d);
	assert_int_equal(d.error, 95);
	rsp_es9_response_clear(&d);
	/* confirmationCodeRefused(3) */
	struct rsp_es9_response cc = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
				      .status = RSP_ES9_FAILED,
				      .subject = "8.2.7",
				      .reason = "3.8"};
	check_response(&cc, "A206BF3A03810103", &d);
	assert_string_equal(d.reason, "3.8");
	rsp_es9_response_clear(&d);
}

/*
 * CancelSessionResponseEs9 ::= [65] CHOICE { cancelSessionOk
 * CancelSessionOk, cancelSessionError INTEGER }: A0 / 81, and
 * CancelSessionOk ::= SEQUENCE {} is empty.
 *   ok:    A0 00 -> BF 41 02 -> A2 05
 *   error euiccSignatureInvalid(2): 81 01 02 -> BF 41 03 -> A2 06
 */
static void test_cancel_response(void **state)
{
	(void)state;
	struct rsp_es9_response r = {.fn = RSP_ES9_CANCEL_SESSION}, d;
	check_response(&r, "A205BF4102A000", &d);
	rsp_es9_response_clear(&d);

	struct rsp_es9_response e = {.fn = RSP_ES9_CANCEL_SESSION,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.1",
				     .reason = "6.1"};
	check_response(&e, "A206BF4103810102", &d);
	assert_int_equal(d.error, 2);
	assert_string_equal(d.subject, "8.1");
	assert_string_equal(d.reason, "6.1");
	rsp_es9_response_clear(&d);
	/* a code the function does not name: undefinedError(127) = 81 01 7F */
	struct rsp_es9_response u = {.fn = RSP_ES9_CANCEL_SESSION,
				     .status = RSP_ES9_FAILED,
				     .subject = "1.2",
				     .reason = "1.1"};
	check_response(&u, "A206BF410381017F", &d);
	assert_int_equal(d.error, 127);
	assert_string_equal(d.subject, "");
	assert_non_null(strstr(d.message, "127"));
	rsp_es9_response_clear(&d);
}

/* ---- malformed ASN.1 --------------------------------------------------------------------- */

static esim_err req_from_hex(const char *hex, const char **field)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	struct rsp_es9_request d;
	esim_err err = rsp_es9_request_from_asn1(p, n, &d, field);
	rsp_es9_request_clear(&d);
	free(p);
	return err;
}

static esim_err resp_from_hex(const char *hex, const char **field)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	struct rsp_es9_response d;
	esim_err err = rsp_es9_response_from_asn1(p, n, &d, field);
	rsp_es9_response_clear(&d);
	free(p);
	return err;
}

static void test_asn1_malformed(void **state)
{
	(void)state;
	const char *f = NULL;
	/* the eUICC's BF41 carried as is inside CancelSessionRequestEs9: the
	 * tag the old server wanted, wrong by rule (d) */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20EBF410B80020102BF4104A0023000", &f));
	assert_string_equal(f, "cancelSessionResponse");
	/* the PIR without the explicit [0] */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A209BF3D06BF3703BF2700", &f));
	assert_string_equal(f, "pendingNotification");
	/* A0 holding something that is neither BF37 nor 30 */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20ABF3D07A005BF2F02A100", &f));
	assert_string_equal(f, "pendingNotification");
	/* two notifications in the A0 */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20CBF3D09A0073003BF2F003000", &f));
	assert_string_equal(f, "pendingNotification");
	/* transactionId of 17 bytes */
	assert_esim(ESIM_E_RSP_BAD_TXID,
		    req_from_hex("A21BBF3B188011000102030405060708090A0B0C0D0E0F10BF3802A100", &f));
	assert_string_equal(f, "transactionId");
	/* challenge of 15 bytes */
	assert_esim(ESIM_E_RSP_FIELD_SIZE,
		    req_from_hex("A21FBF391C810F000102030405060708090A0B0C0D0E8303612E62"
				 "BF2003820102",
				 &f));
	assert_string_equal(f, "euiccChallenge");
	/* euiccInfo1 missing */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A21ABF3917811000010203040506070809"
							   "0A0B0C0D0E0F8303612E62",
							   &f));
	assert_string_equal(f, "euiccInfo1");
	/* not A2, an unknown function, bytes after the envelope, a response
	 * alternative sent as a request (BF40) */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A30CBF3B0980020102BF3802A100", &f));
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20CBF3C0980020102BF3802A100", &f));
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20CBF3B0980020102BF3802A10000", &f));
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, req_from_hex("A20CBF400980020102BF3802A100", &f));
	/* truncated */
	assert_true(req_from_hex("A20CBF3B0980020102BF38", &f) != ESIM_OK);
	assert_true(req_from_hex("", &f) != ESIM_OK);

	/* responses: a CHOICE alternative that does not exist ([2] 82) */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, resp_from_hex("A206BF4103820101", &f));
	/* the error INTEGER empty / the ok part missing its transactionId */
	assert_true(resp_from_hex("A205BF41028100", &f) != ESIM_OK);
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, resp_from_hex("A20BBF3A08A006BF3603BF2300", &f));
	assert_string_equal(f, "transactionId");
	/* handleNotification has no response alternative; BF3D is refused */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, resp_from_hex("A205BF3D02A000", &f));
	/* ES11: an event without rspServerAddress; eventEntries not A1 */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, resp_from_hex("A211BF400EA00C80020102A10630048002"
							    "6531",
							    &f));
	assert_string_equal(f, "rspServerAddress");
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, resp_from_hex("A20BBF4008A006800201023000", &f));
	assert_string_equal(f, "eventEntries");
}

/* ---- JSON ------------------------------------------------------------------------------- */

static void test_json_requests(void **state)
{
	(void)state;
	struct rsp_es9_request r = {.fn = RSP_ES9_CANCEL_SESSION}, d;
	set_txid(&r.u.cancel.txid);
	r.u.cancel.cancel_session_response = span_hex("BF4104A0023000");
	char *text = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, rsp_es9_request_to_json(&r, &text, &len));
	/* base64 of BF 41 04 A0 02 30 00 = "v0EEoAIwAA==" */
	assert_string_equal(
	    text, "{\"transactionId\":\"0102\",\"cancelSessionResponse\":\"v0EEoAIwAA==\"}");
	const char *f = "unset";
	assert_esim(ESIM_OK, rsp_es9_request_from_json(RSP_ES9_CANCEL_SESSION,
						       (const uint8_t *)text, len, &d, &f));
	assert_null(f);
	assert_txid(&d.u.cancel.txid);
	assert_span_hex(d.u.cancel.cancel_session_response, "BF4104A0023000");
	rsp_es9_request_clear(&d);
	free(text);
	free((void *)r.u.cancel.cancel_session_response.p);

	struct rsp_es9_request i = {.fn = RSP_ES9_INITIATE_AUTHENTICATION};
	i.u.initiate.euicc_challenge = span_hex("000102030405060708090A0B0C0D0E0F");
	i.u.initiate.smdp_address = (der_span){(const uint8_t *)"a.b", 3};
	i.u.initiate.euicc_info1 = span_hex("BF2003820102");
	assert_esim(ESIM_OK, rsp_es9_request_to_json(&i, &text, &len));
	assert_string_equal(text, "{\"euiccChallenge\":\"AAECAwQFBgcICQoLDA0ODw==\","
				  "\"euiccInfo1\":\"vyADggEC\",\"smdpAddress\":\"a.b\"}");
	assert_esim(ESIM_OK, rsp_es9_request_from_json(RSP_ES9_INITIATE_AUTHENTICATION,
						       (const uint8_t *)text, len, &d, &f));
	assert_span_hex(d.u.initiate.smdp_address, "612E62");
	assert_span_hex(d.u.initiate.euicc_challenge, "000102030405060708090A0B0C0D0E0F");
	rsp_es9_request_clear(&d);
	free(text);
	free((void *)i.u.initiate.euicc_challenge.p);
	free((void *)i.u.initiate.euicc_info1.p);
}

static void test_json_responses(void **state)
{
	(void)state;
	struct rsp_es11_event ev[2] = {{{(const uint8_t *)"e1", 2}, {(const uint8_t *)"a.b", 3}},
				       {{(const uint8_t *)"e2", 2}, {(const uint8_t *)"c.d", 3}}};
	struct rsp_es9_response r = {.fn = RSP_ES11_AUTHENTICATE_CLIENT}, d;
	set_txid(&r.u.es11.txid);
	r.u.es11.n_events = 2;
	r.u.es11.events = ev;
	char *text = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, rsp_es9_response_to_json(&r, &text, &len));
	assert_string_equal(text, "{\"header\":{\"functionExecutionStatus\":{\"status\":"
				  "\"Executed-Success\"}},\"transactionId\":\"0102\","
				  "\"eventEntries\":[{\"eventId\":\"e1\",\"rspServerAddress\":"
				  "\"a.b\"},{\"eventId\":\"e2\",\"rspServerAddress\":\"c.d\"}]}");
	const char *f;
	assert_esim(ESIM_OK, rsp_es9_response_from_json(RSP_ES11_AUTHENTICATE_CLIENT,
							(const uint8_t *)text, len, &d, &f));
	assert_int_equal(d.status, RSP_ES9_SUCCESS);
	assert_int_equal(d.u.es11.n_events, 2);
	assert_span_hex(d.u.es11.events[1].rsp_server_address, "632E64");
	rsp_es9_response_clear(&d);
	free(text);

	/* a Failed answer: header only, the ASN.1 error derived */
	struct rsp_es9_response e = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
				     .status = RSP_ES9_FAILED,
				     .subject = "8.2.7",
				     .reason = "6.4",
				     .message = "too many"};
	assert_esim(ESIM_OK, rsp_es9_response_to_json(&e, &text, &len));
	assert_string_equal(text, "{\"header\":{\"functionExecutionStatus\":{\"status\":\"Failed\","
				  "\"statusCodeData\":{\"subjectCode\":\"8.2.7\",\"reasonCode\":"
				  "\"6.4\",\"message\":\"too many\"}}}}");
	assert_esim(ESIM_OK, rsp_es9_response_from_json(RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
							(const uint8_t *)text, len, &d, &f));
	assert_int_equal(d.status, RSP_ES9_FAILED);
	assert_int_equal(d.error, 4); /* confirmationCodeRetriesExceeded */
	assert_string_equal(d.message, "too many");
	rsp_es9_response_clear(&d);
	free(text);

	/* the ASN.1 error decoded, re-encoded in JSON: subject and reason */
	struct rsp_es9_response a = {
	    .fn = RSP_ES9_AUTHENTICATE_CLIENT, .status = RSP_ES9_FAILED, .error = 6};
	assert_esim(ESIM_OK, rsp_es9_response_to_json(&a, &text, &len));
	assert_non_null(strstr(text, "\"subjectCode\":\"8.2.6\",\"reasonCode\":\"3.8\""));
	free(text);

	/* a getBoundProfilePackage success, its BPP back byte for byte */
	struct rsp_es9_response b = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE};
	set_txid(&b.u.get_bpp.txid);
	b.u.get_bpp.bound_profile_package = span_hex("BF3603BF2300");
	assert_esim(ESIM_OK, rsp_es9_response_to_json(&b, &text, &len));
	assert_esim(ESIM_OK, rsp_es9_response_from_json(RSP_ES9_GET_BOUND_PROFILE_PACKAGE,
							(const uint8_t *)text, len, &d, &f));
	assert_span_hex(d.u.get_bpp.bound_profile_package, "BF3603BF2300");
	rsp_es9_response_clear(&d);
	free(text);
	free((void *)b.u.get_bpp.bound_profile_package.p);
}

static esim_err jreq(enum rsp_es9_fn fn, const char *text, const char **f)
{
	struct rsp_es9_request d;
	esim_err err = rsp_es9_request_from_json(fn, (const uint8_t *)text, strlen(text), &d, f);
	rsp_es9_request_clear(&d);
	return err;
}

static esim_err jresp(enum rsp_es9_fn fn, const char *text, const char **f)
{
	struct rsp_es9_response d;
	esim_err err = rsp_es9_response_from_json(fn, (const uint8_t *)text, strlen(text), &d, f);
	rsp_es9_response_clear(&d);
	return err;
}

static void test_json_malformed(void **state)
{
	(void)state;
	const char *f = NULL;
	enum rsp_es9_fn C = RSP_ES9_CANCEL_SESSION;
	assert_esim(ESIM_E_NOT_FOUND, jreq(C, "{\"transactionId\":\"0102\"}", &f));
	assert_string_equal(f, "cancelSessionResponse");
	assert_esim(ESIM_E_NOT_FOUND, jreq(C, "{\"cancelSessionResponse\":\"v0EEoAIwAA==\"}", &f));
	assert_string_equal(f, "transactionId");
	assert_esim(
	    ESIM_E_RSP_BAD_STRUCTURE,
	    jreq(C, "{\"transactionId\":12,\"cancelSessionResponse\":\"v0EEoAIwAA==\"}", &f));
	assert_string_equal(f, "transactionId");
	assert_esim(ESIM_E_HEX, jreq(C,
				     "{\"transactionId\":\"01G2\",\"cancelSessionResponse\":"
				     "\"v0EEoAIwAA==\"}",
				     &f));
	assert_esim(ESIM_E_BASE64, jreq(C,
					"{\"transactionId\":\"0102\",\"cancelSessionResponse\":"
					"\"v0EEoAIwAA=\"}",
					&f));
	assert_string_equal(f, "cancelSessionResponse");
	/* a TLV of another tag (30 00 = "MAA=") where BF41 belongs */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE,
		    jreq(C, "{\"transactionId\":\"0102\",\"cancelSessionResponse\":\"MAA=\"}", &f));
	assert_string_equal(f, "cancelSessionResponse");
	/* two elements where one belongs (30 00 30 00 = "MAAwAA==") */
	assert_esim(ESIM_E_DER_TRAILING_DATA, jreq(RSP_ES9_HANDLE_NOTIFICATION,
						   "{\"pendingNotification\":\"MAAwAA==\"}", &f));
	/* duplicate member, not an object, not JSON, too deep */
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE,
		    jreq(RSP_ES9_HANDLE_NOTIFICATION,
			 "{\"pendingNotification\":\"MAA=\",\"pendingNotification\":\"MAA=\"}",
			 &f));
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, jreq(C, "[1]", &f));
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, jreq(C, "{\"transactionId\":", &f));
	char deep[64];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, jreq(C, deep, &f));
	/* euiccChallenge of 15 bytes */
	assert_esim(ESIM_E_RSP_FIELD_SIZE,
		    jreq(RSP_ES9_INITIATE_AUTHENTICATION,
			 "{\"euiccChallenge\":\"AAECAwQFBgcICQoLDA0O\",\"euiccInfo1\":\"vyADggEC\","
			 "\"smdpAddress\":\"a.b\"}",
			 &f));
	assert_string_equal(f, "euiccChallenge");

	/* answers: no header; an unknown status; a subject code too long */
	assert_esim(ESIM_E_NOT_FOUND, jresp(C, "{\"transactionId\":\"0102\"}", &f));
	assert_string_equal(f, "header");
	assert_esim(
	    ESIM_E_RSP_BAD_STRUCTURE,
	    jresp(C, "{\"header\":{\"functionExecutionStatus\":{\"status\":\"Done\"}}}", &f));
	assert_string_equal(f, "status");
	assert_esim(ESIM_E_RSP_FIELD_SIZE,
		    jresp(C,
			  "{\"header\":{\"functionExecutionStatus\":{\"status\":\"Failed\","
			  "\"statusCodeData\":{\"subjectCode\":\"8.1.1.1.1.1.1.1.1\"}}}}",
			  &f));
	assert_string_equal(f, "subjectCode");
	/* ES11: an entry without eventId; more entries than the cap */
	assert_esim(
	    ESIM_E_NOT_FOUND,
	    jresp(RSP_ES11_AUTHENTICATE_CLIENT,
		  "{\"header\":{\"functionExecutionStatus\":{\"status\":\"Executed-Success\"}},"
		  "\"transactionId\":\"0102\",\"eventEntries\":[{\"rspServerAddress\":\"a\"}]}",
		  &f));
	assert_string_equal(f, "eventId");
	char big[8192];
	size_t o = (size_t)snprintf(big, sizeof big,
				    "{\"header\":{\"functionExecutionStatus\":{\"status\":"
				    "\"Executed-Success\"}},\"transactionId\":\"0102\","
				    "\"eventEntries\":[");
	for (unsigned i = 0; i <= RSP_ES9_MAX_EVENTS; i++)
		o += (size_t)snprintf(big + o, sizeof big - o,
				      "%s{\"eventId\":\"e\",\"rspServerAddress\":\"a\"}",
				      i ? "," : "");
	snprintf(big + o, sizeof big - o, "]}");
	assert_esim(ESIM_E_RSP_FIELD_SIZE, jresp(RSP_ES11_AUTHENTICATE_CLIENT, big, &f));
	assert_string_equal(f, "eventEntries");
}

/* ---- the LPA's download steps (rsp_es9_dl_*) ------------------------------------------ */

#define CHAL "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"

/* An initiateAuthentication answer whose serverSigned1 names signed_txid
 * (2 bytes), the challenge chal (16) and the address addr (12 bytes):
 * 30 36 { 80 02 txid, 81 10 chal, 83 0C addr, 84 10 00.. }: 4 + 18 + 14 + 18 = 54 */
static void init_answer(struct rsp_es9_response *r, const char *signed_txid, const char *chal,
			const char *addr)
{
	memset(r, 0, sizeof *r);
	r->fn = RSP_ES9_INITIATE_AUTHENTICATION;
	set_txid(&r->u.initiate.txid);
	char hex[200];
	char addr_hex[25];
	for (size_t i = 0; i < 12; i++)
		snprintf(addr_hex + 2 * i, 3, "%02X", (unsigned char)addr[i]);
	snprintf(hex, sizeof hex, "30368002%s8110%s830C%s8410%s", signed_txid, chal, addr_hex,
		 "00000000000000000000000000000000");
	r->u.initiate.server_signed1 = span_hex(hex);
	r->u.initiate.server_signature1 = span_hex("5F37021122");
	r->u.initiate.euicc_ci_pkid = span_hex("04023344");
	r->u.initiate.server_certificate = span_hex("30020500");
}

static void free_init_answer(struct rsp_es9_response *r)
{
	free((void *)r->u.initiate.server_signed1.p);
	free((void *)r->u.initiate.server_signature1.p);
	free((void *)r->u.initiate.euicc_ci_pkid.p);
	free((void *)r->u.initiate.server_certificate.p);
}

static esim_err auth_server(struct rsp_es9_dl *s, const struct rsp_es9_response *r)
{
	struct rsp_device_info dev = {.tac = {1, 2, 3, 4}};
	uint8_t *cmd = NULL;
	size_t len = 0;
	esim_err err = rsp_es9_dl_authenticate_server(s, r, "MID", &dev, &cmd, &len);
	if (err == ESIM_OK) {
		assert_true(len > 2 && cmd[0] == 0xBF && cmd[1] == 0x38);
		free(cmd);
	} else {
		assert_null(cmd);
	}
	return err;
}

static void test_download_steps(void **state)
{
	(void)state;
	struct rsp_es9_dl s;
	assert_esim(ESIM_OK, rsp_es9_dl_init(&s, "smdp.example"));
	/* GetEUICCChallenge's answer BF2E 12 { 80 10 challenge } */
	der_span ch = span_hex("BF2E128010" CHAL), info1 = span_hex("BF2003820102");
	struct rsp_es9_request rq;
	assert_esim(ESIM_OK, rsp_es9_dl_initiate(&s, ch.p, ch.len, info1.p, info1.len, &rq));
	assert_int_equal(rq.fn, RSP_ES9_INITIATE_AUTHENTICATION);
	assert_span_hex(rq.u.initiate.euicc_challenge, CHAL);
	assert_span_hex(rq.u.initiate.smdp_address, "736D64702E6578616D706C65");

	/* the server signed our transaction, challenge and address (its case aside) */
	struct rsp_es9_response r;
	init_answer(&r, "0102", CHAL, "SMDP.example");
	assert_esim(ESIM_OK, auth_server(&s, &r));
	assert_txid(&s.txid);
	free_init_answer(&r);
	/* another transaction inside serverSigned1 than the answer names */
	init_answer(&r, "0103", CHAL, "smdp.example");
	assert_esim(ESIM_E_RSP_TXID_MISMATCH, auth_server(&s, &r));
	free_init_answer(&r);
	/* another eUICC challenge */
	init_answer(&r, "0102", "C0C1C2C3C4C5C6C7C8C9CACBCCCDCE00", "smdp.example");
	assert_esim(ESIM_E_RSP_CHALLENGE_MISMATCH, auth_server(&s, &r));
	free_init_answer(&r);
	/* another address: named for the user */
	init_answer(&r, "0102", CHAL, "evil.example");
	assert_esim(ESIM_E_RSP_ADDRESS_MISMATCH, auth_server(&s, &r));
	assert_string_equal(s.signed_address, "evil.example");
	free_init_answer(&r);

	/* authenticateClient's answer: smdpSigned2 = 30 07 { 80 02 01 02, 01 01 FF } */
	struct rsp_es9_response a = {.fn = RSP_ES9_AUTHENTICATE_CLIENT};
	set_txid(&a.u.authenticate.txid);
	a.u.authenticate.profile_metadata = span_hex("BF25035A0198");
	/* first for another transaction (01 03 inside): refused, s unchanged */
	a.u.authenticate.smdp_signed2 = span_hex("3007800201030101FF");
	a.u.authenticate.smdp_signature2 = span_hex("5F37021122");
	a.u.authenticate.smdp_certificate = span_hex("30020500");
	uint8_t *own[4] = {(uint8_t *)a.u.authenticate.profile_metadata.p,
			   (uint8_t *)a.u.authenticate.smdp_signed2.p,
			   (uint8_t *)a.u.authenticate.smdp_signature2.p,
			   (uint8_t *)a.u.authenticate.smdp_certificate.p};
	assert_esim(ESIM_E_RSP_TXID_MISMATCH, rsp_es9_dl_accept_authenticate(&s, &a));
	assert_false(s.cc_required);
	uint8_t *cmd = NULL;
	size_t len = 0;
	assert_esim(ESIM_E_ARG, rsp_es9_dl_prepare_download(&s, NULL, &cmd, &len));
	/* the answer itself for another transaction */
	struct rsp_es9_response other = a;
	other.u.authenticate.txid.b[1] = 0x03;
	assert_esim(ESIM_E_RSP_TXID_MISMATCH, rsp_es9_dl_accept_authenticate(&s, &other));
	/* ours: kept (moved into s), ccRequiredFlag read */
	a.u.authenticate.smdp_signed2 = span_hex("3007800201020101FF");
	uint8_t *signed2 = (uint8_t *)a.u.authenticate.smdp_signed2.p;
	assert_esim(ESIM_OK, rsp_es9_dl_accept_authenticate(&s, &a));
	assert_true(s.cc_required);
	assert_false(s.bound_otpk);
	assert_null(a.u.authenticate.smdp_signed2.p);
	/* PrepareDownload carries hashCc = SHA-256(SHA-256(cc) | txid) */
	uint8_t hash[32];
	assert_esim(ESIM_OK, rsp_hash_cc("1234", 4, &s.txid, hash));
	assert_esim(ESIM_OK, rsp_es9_dl_prepare_download(&s, "1234", &cmd, &len));
	bool found = false;
	for (size_t i = 0; i + 32 <= len; i++)
		found = found || memcmp(cmd + i, hash, 32) == 0;
	assert_true(found);
	assert_true(cmd[0] == 0xBF && cmd[1] == 0x21);
	free(cmd);
	/* the getBoundProfilePackage request names the session's transaction */
	assert_esim(ESIM_OK, rsp_es9_dl_get_bpp(&s, info1.p, info1.len, &rq));
	assert_txid(&rq.u.get_bpp.txid);
	/* its answer for another transaction is refused */
	struct rsp_es9_response b = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE};
	assert_esim(ESIM_OK, rsp_txid_set(&b.u.get_bpp.txid, (const uint8_t *)"\x01\x03", 2));
	assert_esim(ESIM_E_RSP_TXID_MISMATCH, rsp_es9_dl_check_txid(&s, &b));
	set_txid(&b.u.get_bpp.txid);
	assert_esim(ESIM_OK, rsp_es9_dl_check_txid(&s, &b));
	rsp_es9_dl_clear(&s);
	/* the answer moved into s had no own_ (its bytes are this test's):
	 * rsp_es9_dl_clear left them to their owner */
	free(signed2);
	for (size_t i = 0; i < 4; i++)
		free(own[i]);
	free((void *)ch.p);
	free((void *)info1.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_initiate_request),
	    cmocka_unit_test(test_authenticate_request),
	    cmocka_unit_test(test_get_bpp_request),
	    cmocka_unit_test(test_cancel_request),
	    cmocka_unit_test(test_notification_request),
	    cmocka_unit_test(test_initiate_response),
	    cmocka_unit_test(test_authenticate_response),
	    cmocka_unit_test(test_es11_response),
	    cmocka_unit_test(test_get_bpp_response),
	    cmocka_unit_test(test_cancel_response),
	    cmocka_unit_test(test_asn1_malformed),
	    cmocka_unit_test(test_json_requests),
	    cmocka_unit_test(test_json_responses),
	    cmocka_unit_test(test_json_malformed),
	    cmocka_unit_test(test_download_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
