/*
 * The certificate parser's strictness (src/crypto/cert.c): certificates are
 * assembled field by field with the der builder and signed with a fresh key,
 * so that each field can be made wrong on its own, and every defect must
 * come back from crypto_cert_load (or the accessor that judges it) with its
 * own error. Also the time arithmetic at its edges, and PEM. Needs no
 * ../shared.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "esim/cert.h"
#include "esim/der.h"
#include "testutil.h"

#define EID	 "89049032123451234512345678901235"
#define KEY_ID	 "0102030405060708090A0B0C0D0E0F1011121314"
#define ECDSA256 "300A06082A8648CE3D040302"
#define ECDSA384 "300A06082A8648CE3D040303"
#define T_2024	 ((time_t)1704067200) /* 2024-01-01T00:00:00Z */
#define T_2050	 ((time_t)2524608000) /* 2050-01-01T00:00:00Z */

/* What differs from a good self-signed eUICC-like certificate. Hex strings
 * are whole TLVs; NULL keeps the default, "" leaves the field out. */
struct spec {
	const char *version, *serial, *inner_alg, *outer_alg, *issuer;
	const char *not_before, *not_after, *spki;
	const char *ski, *ku, *bc, *policies, *san, *eins; /* extnValue contents */
	const char *extra_ext;				   /* one more Extension TLV */
	bool ku_not_critical_but_false;			   /* critical BOOLEAN 00 */
	bool dup_ski;
	bool compressed_point, off_curve_point;
	unsigned sig_unused_bits;
};

/* What to do with the finished bytes. */
enum post { POST_NONE, POST_TRUNCATE, POST_TRAILING, POST_LONG_LENGTH, POST_INDEFINITE };

static EVP_PKEY *key;	   /* P-256, signs every certificate here */
static EVP_PKEY *bp_key;   /* brainpoolP256r1 */
static bool use_brainpool; /* build the SPKI from bp_key instead */

static int setup(void **state)
{
	(void)state;
	key = EVP_EC_gen("prime256v1");
	bp_key = EVP_EC_gen("brainpoolP256r1");
	return key && bp_key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(bp_key);
	return 0;
}

static void add_hex(der_builder *b, const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	assert_esim(ESIM_OK, der_add_raw(b, p, n));
	free(p);
}

static void add_ext(der_builder *b, const char *oid, bool critical, const char *value_hex)
{
	size_t n;
	uint8_t *v = test_unhex(value_hex, &n);
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	assert_esim(ESIM_OK, der_add_oid(b, DER_TAG_DEFAULT, oid));
	if (critical)
		assert_esim(ESIM_OK, der_add_bool(b, DER_TAG_DEFAULT, true));
	assert_esim(ESIM_OK, der_add_octet_string(b, DER_TAG_DEFAULT, v, n));
	assert_esim(ESIM_OK, der_builder_close(b));
	free(v);
}

static void add_spki(der_builder *b, const struct spec *s)
{
	uint8_t pt[CRYPTO_EC_POINT_LEN];
	EVP_PKEY *k = use_brainpool ? bp_key : key;

	if (s->spki) {
		add_hex(b, s->spki);
		return;
	}
	assert_esim(ESIM_OK, crypto_key_public_point(k, pt));
	if (s->off_curve_point)
		pt[64] ^= 0x01;
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	assert_esim(ESIM_OK, der_add_oid(b, DER_TAG_DEFAULT, "1.2.840.10045.2.1"));
	assert_esim(ESIM_OK,
		    der_add_oid(b, DER_TAG_DEFAULT,
				use_brainpool ? "1.3.36.3.3.2.8.1.1.7" : "1.2.840.10045.3.1.7"));
	assert_esim(ESIM_OK, der_builder_close(b));
	if (s->compressed_point) {
		pt[0] = (uint8_t)(0x02 | (pt[64] & 1));
		assert_esim(ESIM_OK, der_add_bit_string(b, DER_TAG_DEFAULT, pt, 33, 0));
	} else {
		assert_esim(ESIM_OK, der_add_bit_string(b, DER_TAG_DEFAULT, pt, sizeof pt, 0));
	}
	assert_esim(ESIM_OK, der_builder_close(b));
}

#define OR(v, d) ((v) ? (v) : (d))

static const char *name_hex(void)
{
	/* C=ES, serialNumber=EID, CN=eUICC */
	return "304A"
	       "310B3009060355040613024553"
	       "3129302706035504051320"
	       "3839303439303332313233343531323334353132333435363738393031323335"
	       "3110300E06035504030C0765554943432031";
}

static void build_tbs(der_builder *b, const struct spec *s)
{
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	if (OR(s->version, "A003020102")[0])
		add_hex(b, OR(s->version, "A003020102"));
	add_hex(b, OR(s->serial, "02021234"));
	add_hex(b, OR(s->inner_alg, ECDSA256));
	add_hex(b, OR(s->issuer, name_hex()));
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	add_hex(b, OR(s->not_before, "170D3234303130313030303030305A"));    /* 2024 UTC */
	add_hex(b, OR(s->not_after, "180F32303530303130313030303030305A")); /* 2050 Gen */
	assert_esim(ESIM_OK, der_builder_close(b));
	add_hex(b, name_hex());
	add_spki(b, s);
	assert_esim(ESIM_OK, der_builder_open(b, 0xA3));
	assert_esim(ESIM_OK, der_builder_open(b, DER_TAG_SEQUENCE));
	if (OR(s->ski, "0414" KEY_ID)[0])
		add_ext(b, "2.5.29.14", false, OR(s->ski, "0414" KEY_ID));
	add_ext(b, "2.5.29.35", false, "30168014" KEY_ID);
	if (s->ku_not_critical_but_false) {
		add_hex(b, "300E0603551D0F010100040403020780");
	} else if (OR(s->ku, "03020780")[0]) {
		add_ext(b, "2.5.29.15", true, OR(s->ku, "03020780"));
	}
	if (s->bc)
		add_ext(b, "2.5.29.19", true, s->bc);
	/* certificatePolicies: id-rspRole-euicc */
	add_ext(b, "2.5.29.32", true, OR(s->policies, "300B3009060767811201020101"));
	/* SAN registeredID 2.999.10 */
	add_ext(b, "2.5.29.17", false, OR(s->san, "3005880388370A"));
	if (s->eins)
		add_ext(b, "2.23.146.1.2.2.0", false, s->eins);
	if (s->dup_ski)
		add_ext(b, "2.5.29.14", false, "0414" KEY_ID);
	if (s->extra_ext)
		add_hex(b, s->extra_ext);
	assert_esim(ESIM_OK, der_builder_close(b));
	assert_esim(ESIM_OK, der_builder_close(b));
	assert_esim(ESIM_OK, der_builder_close(b));
}

/* The certificate per s, signed with key; caller frees. */
static uint8_t *build(const struct spec *s, enum post post, size_t *len)
{
	der_builder tb, cb;
	uint8_t *tbs, *out, sig[CRYPTO_DER_SIG_MAX + 1];
	size_t tbs_len, sig_len;

	der_builder_init(&tb);
	build_tbs(&tb, s);
	assert_esim(ESIM_OK, der_builder_finish(&tb, &tbs, &tbs_len));
	assert_esim(ESIM_OK, crypto_ecdsa_sign_der(key, tbs, tbs_len, sig, &sig_len));
	der_builder_init(&cb);
	assert_esim(ESIM_OK, der_builder_open(&cb, DER_TAG_SEQUENCE));
	assert_esim(ESIM_OK, der_add_raw(&cb, tbs, tbs_len));
	add_hex(&cb, OR(s->outer_alg, ECDSA256));
	if (s->sig_unused_bits) {
		sig[sig_len++] = 0x00; /* padding bits are zero: only the count is wrong */
		assert_esim(ESIM_OK, der_add_bit_string(&cb, DER_TAG_DEFAULT, sig, sig_len,
							s->sig_unused_bits));
	} else {
		assert_esim(ESIM_OK, der_add_bit_string(&cb, DER_TAG_DEFAULT, sig, sig_len, 0));
	}
	assert_esim(ESIM_OK, der_builder_close(&cb));
	assert_esim(ESIM_OK, der_builder_finish(&cb, &out, len));
	free(tbs);

	switch (post) {
	case POST_NONE:
		break;
	case POST_TRUNCATE:
		*len -= 1;
		break;
	case POST_TRAILING:
		out = realloc(out, *len + 1);
		assert_non_null(out);
		out[(*len)++] = 0x00;
		break;
	case POST_LONG_LENGTH: /* 30 82 hh ll -> 30 83 00 hh ll */
		assert_int_equal(out[1], 0x82);
		out = realloc(out, *len + 1);
		assert_non_null(out);
		memmove(out + 3, out + 2, *len - 2);
		out[1] = 0x83;
		out[2] = 0x00;
		*len += 1;
		break;
	case POST_INDEFINITE: /* 30 82 hh ll ... -> 30 80 ... 00 00 */
		assert_int_equal(out[1], 0x82);
		memmove(out + 2, out + 4, *len - 4);
		out[1] = 0x80;
		out[*len - 2] = 0x00;
		out[*len - 1] = 0x00;
		break;
	}
	return out;
}

static crypto_cert *load_spec(const struct spec *s)
{
	size_t len;
	uint8_t *der = build(s, POST_NONE, &len);
	crypto_cert *c = NULL;
	assert_esim(ESIM_OK, crypto_cert_load(der, len, &c));
	free(der);
	return c;
}

static void test_good(void **state)
{
	(void)state;
	static const struct spec s = {0};
	crypto_cert *c = load_spec(&s);
	crypto_rsp_role role;
	crypto_curve curve;
	char eid[CRYPTO_EID_DIGITS + 1], rid[32];
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t n;

	assert_esim(ESIM_OK, crypto_cert_role(c, &role));
	assert_int_equal(role, CRYPTO_ROLE_EUICC);
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_string_equal(eid, EID);
	assert_esim(ESIM_OK, crypto_cert_curve(c, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_P256);
	assert_esim(ESIM_OK, crypto_cert_ski(c, id, &n));
	assert_int_equal(n, 20);
	assert_esim(ESIM_OK, crypto_cert_aki(c, id, &n));
	assert_int_equal(n, 20);
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, rid, sizeof rid));
	assert_string_equal(rid, "2.999.10");
	assert_esim(ESIM_OK, crypto_cert_check_digital_signature(c));
	assert_esim(ESIM_E_CERT_NOT_CA, crypto_cert_check_ca(c));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, c));
	assert_int_equal(EVP_PKEY_eq(crypto_cert_pubkey(c), key), 1);
	/* Validity is inclusive at both ends, to the second. */
	assert_esim(ESIM_OK, crypto_cert_check_time(c, T_2024));
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c, T_2024 - 1));
	assert_esim(ESIM_OK, crypto_cert_check_time(c, T_2050));
	assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c, T_2050 + 1));
	crypto_cert_free(c);
}

struct bad_case {
	const char *what;
	struct spec spec;
	enum post post;
	esim_err load; /* crypto_cert_load's answer */
};

static void test_rejected(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
	    {"truncated", {0}, POST_TRUNCATE, ESIM_E_CERT_PARSE},
	    {"trailing byte", {0}, POST_TRAILING, ESIM_E_CERT_PARSE},
	    {"non-minimal outer length", {0}, POST_LONG_LENGTH, ESIM_E_CERT_PARSE},
	    {"indefinite outer length", {0}, POST_INDEFINITE, ESIM_E_CERT_PARSE},
	    {"v1: version left out", {.version = ""}, 0, ESIM_E_CERT_VERSION},
	    {"v2", {.version = "A003020101"}, 0, ESIM_E_CERT_VERSION},
	    {"v1 written out (not DER)", {.version = "A003020100"}, 0, ESIM_E_CERT_VERSION},
	    {"version not an INTEGER", {.version = "A0030101FF"}, 0, ESIM_E_CERT_PARSE},
	    {"serial not minimal", {.serial = "0203000001"}, 0, ESIM_E_CERT_PARSE},
	    {"serial empty", {.serial = "0200"}, 0, ESIM_E_CERT_PARSE},
	    {"inner SHA-384, outer SHA-256",
	     {.inner_alg = ECDSA384},
	     0,
	     ESIM_E_CERT_SIG_ALG_MISMATCH},
	    {"inner SHA-256, outer SHA-384",
	     {.outer_alg = ECDSA384},
	     0,
	     ESIM_E_CERT_SIG_ALG_MISMATCH},
	    {"inner with NULL parameters, outer without",
	     {.inner_alg = "300C06082A8648CE3D0403020500"},
	     0,
	     ESIM_E_CERT_SIG_ALG_MISMATCH},
	    {"algorithm with two parameters",
	     {.inner_alg = "300E06082A8648CE3D04030205000500",
	      .outer_alg = "300E06082A8648CE3D04030205000500"},
	     0,
	     ESIM_E_CERT_PARSE},
	    {"issuer with an empty RDN", {.issuer = "30023100"}, 0, ESIM_E_CERT_PARSE},
	    {"issuer attribute without value",
	     {.issuer = "30093107300506035504"
			"06"},
	     0,
	     ESIM_E_CERT_PARSE},
	    {"UTCTime without seconds",
	     {.not_before = "170B323430313031303030305A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"UTCTime with an offset",
	     {.not_before = "17113234303130313030303030302B30313030"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"UTCTime without Z",
	     {.not_before = "170D323430313031303030303030"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"GeneralizedTime with a fraction",
	     {.not_after = "181132303530303130313030303030302E355A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"month 13", {.not_before = "170D3234313330313030303030305A"}, 0, ESIM_E_CERT_BAD_TIME},
	    {"30 February",
	     {.not_before = "170D3234303233303030303030305A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"29 February 2023",
	     {.not_before = "170D3233303232393030303030305A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"hour 24", {.not_before = "170D3234303130313234303030305A"}, 0, ESIM_E_CERT_BAD_TIME},
	    {"second 60",
	     {.not_before = "170D3234303130313030303036305A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"digit that is not one",
	     {.not_before = "170D32343031303130303030303A5A"},
	     0,
	     ESIM_E_CERT_BAD_TIME},
	    {"time as PrintableString",
	     {.not_before = "130D3234303130313030303030305A"},
	     0,
	     ESIM_E_CERT_PARSE},
	    {"point off the curve", {.off_curve_point = true}, 0, ESIM_E_CRYPTO_BAD_POINT},
	    {"critical extension not known (RFC 5280 4.2)",
	     {.extra_ext = "300E06052B060104010101FF04020500"},
	     0,
	     ESIM_E_CERT_UNKNOWN_CRITICAL},
	    {"point at infinity (the octet 00)",
	     {.spki = "3019301306072A8648CE3D020106082A8648CE3D03010703020000"},
	     0,
	     ESIM_E_CRYPTO_BAD_POINT},
	    {"SPKI key with unused bits",
	     {.spki = "301A301306072A8648CE3D020106082A8648CE3D030107030301FF00"},
	     0,
	     ESIM_E_CERT_PARSE},
	    {"SKI twice", {.dup_ski = true}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"critical written as FALSE",
	     {.ku_not_critical_but_false = true},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"SKI not an OCTET STRING", {.ski = "0201FF"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"SKI with trailing bytes", {.ski = "0401AA00"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"keyUsage padding bits set", {.ku = "03020781"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"basicConstraints cA FALSE written out",
	     {.bc = "3003010100"},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"basicConstraints negative pathLen",
	     {.bc = "30060101FF0201FF"},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"policies not a SEQUENCE", {.policies = "0500"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"policy without OID", {.policies = "30023000"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"SAN with an unknown GeneralName",
	     {.san = "3003890100"},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"SAN registeredID not an OID", {.san = "3003880180"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"permitted EINs not a SEQUENCE", {.eins = "1302383900"}, 0, ESIM_E_CERT_BAD_EXTENSION},
	    {"extension without extnValue",
	     {.extra_ext = "30050603551D25"},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"extKeyUsage with a non-OID",
	     {.extra_ext = "300C0603551D250405300302012A"},
	     0,
	     ESIM_E_CERT_BAD_EXTENSION},
	    {"signature BIT STRING with unused bits", {.sig_unused_bits = 1}, 0, ESIM_E_CERT_PARSE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bad_case *bc = &cases[i];
		size_t len;
		uint8_t *der;
		crypto_cert *c = (crypto_cert *)&len;

		print_message("  %s\n", bc->what);
		der = build(&bc->spec, bc->post, &len);
		assert_esim(bc->load, crypto_cert_load(der, len, &c));
		assert_null(c);
		free(der);
	}
}

/* Defects the parser leaves to the accessors and the chain check, each
 * with the error that judges it there (as before the parser was ours). */
static void test_accessor_errors(void **state)
{
	(void)state;
	crypto_cert *c, *good;
	crypto_curve curve;
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t n;
	char buf[8];

	good = load_spec(&(struct spec){0});
	/* Signed with SHA-384, consistently: loads; not an RSP signature. */
	c = load_spec(&(struct spec){.inner_alg = ECDSA384, .outer_alg = ECDSA384});
	assert_esim(ESIM_E_CERT_SIG_ALG, crypto_cert_verify_signed_by(c, good));
	crypto_cert_free(c);
	/* ecdsa-with-SHA256 with NULL parameters (RFC 5758: absent). */
	c = load_spec(&(struct spec){.inner_alg = "300C06082A8648CE3D0403020500",
				     .outer_alg = "300C06082A8648CE3D0403020500"});
	assert_esim(ESIM_E_CERT_SIG_ALG, crypto_cert_verify_signed_by(c, good));
	crypto_cert_free(c);
	/* secp256k1 names the key: loads, no EVP_PKEY, the curve says why. */
	c = load_spec(&(struct spec){
	    .spki = "3056301006072A8648CE3D020106052B8104000A034200"
		    "04AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"});
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_cert_curve(c, &curve));
	assert_null(crypto_cert_pubkey(c));
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_cert_verify_signed_by(good, c));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, good)); /* key signed it */
	crypto_cert_free(c);
	/* Explicit curve parameters instead of a name. */
	c = load_spec(&(struct spec){.spki = "3013300B06072A8648CE3D02013000030400000000"});
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_cert_curve(c, &curve));
	crypto_cert_free(c);
	/* Not an EC key at all (rsaEncryption). */
	c = load_spec(&(struct spec){.spki = "3012300D06092A864886F70D0101010500030100"});
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_cert_curve(c, &curve));
	crypto_cert_free(c);
	/* No SKI, an empty SKI, an SKI longer than any key id. */
	c = load_spec(&(struct spec){.ski = ""});
	assert_esim(ESIM_E_CERT_NO_SKI, crypto_cert_ski(c, id, &n));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.ski = "0400"});
	assert_esim(ESIM_E_CERT_NO_SKI, crypto_cert_ski(c, id, &n));
	crypto_cert_free(c);
	c = load_spec(
	    &(struct spec){.ski = "0429" KEY_ID KEY_ID "AA"}); /* 41 bytes: the PKIDs are 20 */
	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_ski(c, id, &n));
	crypto_cert_free(c);
	/* No keyUsage: no digital signature. */
	c = load_spec(&(struct spec){.ku = ""});
	assert_esim(ESIM_E_CERT_KEY_USAGE, crypto_cert_check_digital_signature(c));
	crypto_cert_free(c);
	/* CA rights need both basicConstraints cA and keyCertSign. */
	c = load_spec(&(struct spec){.bc = "30030101FF", .ku = "03020204"});
	assert_esim(ESIM_OK, crypto_cert_check_ca(c));
	assert_esim(ESIM_E_CERT_KEY_USAGE, crypto_cert_check_digital_signature(c));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.bc = "3000", .ku = "03020204"});
	assert_esim(ESIM_E_CERT_NOT_CA, crypto_cert_check_ca(c));
	crypto_cert_free(c);
	/* A policy outside id-rspRole, and an empty policy list. */
	c = load_spec(&(struct spec){.policies = "300A3008060667811201020A"});
	assert_esim(ESIM_E_CERT_NO_ROLE, crypto_cert_role(c, &(crypto_rsp_role){0}));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.policies = "3000"});
	assert_esim(ESIM_E_CERT_NO_ROLE, crypto_cert_role(c, &(crypto_rsp_role){0}));
	crypto_cert_free(c);
	/* SAN without registeredID; a buffer too small for it. */
	c = load_spec(&(struct spec){.san = "3006820461626364"});
	assert_esim(ESIM_E_NOT_FOUND, crypto_cert_registered_id(c, buf, sizeof buf));
	crypto_cert_free(c);
	assert_esim(ESIM_E_BUF_SMALL, crypto_cert_registered_id(good, buf, 4));
	assert_string_equal(buf, "");
	/* permitted EINs: only PrintableString prefixes count. */
	c = load_spec(&(struct spec){.eins = "300C0C0438393034130438393034"});
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(c, EID));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE,
		    crypto_cert_eid_permitted(c, "89149032123451234512345678901235"));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.eins = "30060C0438393034"});
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, crypto_cert_eid_permitted(c, EID));
	crypto_cert_free(c);
	/* An extension we do not know is skipped when it is not critical
	 * (a critical one is refused: test_rejected). */
	c = load_spec(&(struct spec){.extra_ext = "300B06052B0601040104020500"});
	assert_non_null(c);
	crypto_cert_free(c);
	crypto_cert_free(good);
}

static void test_keys_and_times(void **state)
{
	(void)state;
	crypto_cert *c;
	crypto_curve curve;

	/* A compressed point is a valid X.509 encoding: same key. */
	c = load_spec(&(struct spec){.compressed_point = true});
	assert_int_equal(EVP_PKEY_eq(crypto_cert_pubkey(c), key), 1);
	crypto_cert_free(c);
	/* brainpoolP256r1 */
	use_brainpool = true;
	c = load_spec(&(struct spec){0});
	use_brainpool = false;
	assert_esim(ESIM_OK, crypto_cert_curve(c, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_BRAINPOOLP256R1);
	assert_int_equal(EVP_PKEY_eq(crypto_cert_pubkey(c), bp_key), 1);
	crypto_cert_free(c);
	/* UTCTime 50 is 1950, 49 is 2049; leap days; GeneralizedTime 9999. */
	c = load_spec(&(struct spec){.not_before = "170D3530303130313030303030305A",
				     .not_after = "170D3439313233313233353935395A"});
	assert_esim(ESIM_OK, crypto_cert_check_time(c, (time_t)-631152000)); /* 1950 */
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c, (time_t)-631152001));
	assert_esim(ESIM_OK, crypto_cert_check_time(c, (time_t)2524607999)); /* 2049 end */
	assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c, (time_t)2524608000));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.not_before = "170D3234303232393132303030305A",
				     .not_after = "180F39393939313233313233353935395A"});
	assert_esim(ESIM_OK, crypto_cert_check_time(c, (time_t)1709208000)); /* 2024-02-29 12:00 */
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c, (time_t)1709207999));
	crypto_cert_free(c);
	c = load_spec(&(struct spec){.not_before = "180F32303030303232393030303030305A"});
	assert_esim(ESIM_OK, crypto_cert_check_time(c, (time_t)951782400)); /* 2000-02-29 */
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c, (time_t)951782399));
	crypto_cert_free(c);
}

/* crypto_cert_to_x509 hands out a new X509 of the same bytes. */
static void test_to_x509(void **state)
{
	(void)state;
	crypto_cert *c = load_spec(&(struct spec){0});
	X509 *x = NULL;
	unsigned char *der = NULL;
	size_t len;
	const uint8_t *mine = crypto_cert_der(c, &len);

	assert_esim(ESIM_OK, crypto_cert_to_x509(c, &x));
	assert_int_equal(i2d_X509(x, &der), (int)len);
	assert_memory_equal(der, mine, len);
	OPENSSL_free(der);
	X509_free(x);
	assert_esim(ESIM_E_ARG, crypto_cert_to_x509(NULL, &x));
	crypto_cert_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_rejected),
	    cmocka_unit_test(test_accessor_errors),
	    cmocka_unit_test(test_keys_and_times),
	    cmocka_unit_test(test_to_x509),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
