/*
 * esim_err: the one error space of libesim.
 *
 * Every function that can fail returns an esim_err; 0 (ESIM_OK) is success.
 * Codes are grouped by layer so that a caller (and a user reading a message)
 * can tell "the bytes were malformed" from "the signature did not verify"
 * from "the certificate has expired". esim_strerror() describes each code,
 * esim_errname() gives its symbol.
 *
 * The list below is the single source of both: X(name, value, text), where
 * value is "_" for "previous + 1". Layers append codes inside their own
 * block; never renumber, never reuse a code for a second meaning.
 */
#ifndef ESIM_ERR_H
#define ESIM_ERR_H

#define ESIM_ERR_LIST(X) \
	/* general (1..99) */ \
	X(ESIM_E_NOMEM, 1, "allocation failed") \
	X(ESIM_E_ARG, _, "invalid argument from the caller") \
	X(ESIM_E_IO, _, "file or socket I/O failed") \
	X(ESIM_E_TOO_LARGE, _, "input exceeds a size cap") \
	X(ESIM_E_BUF_SMALL, _, "output buffer too small") \
	X(ESIM_E_NOT_FOUND, _, "requested item does not exist") \
	X(ESIM_E_HEX, _, "malformed hexadecimal text") \
	X(ESIM_E_BASE64, _, "malformed base64 text") \
	X(ESIM_E_UNSUPPORTED, _, "valid but not supported here") \
	X(ESIM_E_INTERNAL, _, "a library below failed unexpectedly") \
	X(ESIM_E_SECRET_FILE, _, "a file holding a secret is not a regular file of this user, or is open to group or others") \
	/* der layer (100..199) */ \
	X(ESIM_E_DER_TRUNCATED_TAG, 100, "input ends inside a tag") \
	X(ESIM_E_DER_TAG_TOO_LONG, _, "tag longer than 4 bytes") \
	X(ESIM_E_DER_NONMINIMAL_TAG, _, "multi-byte tag not minimally encoded") \
	X(ESIM_E_DER_TRUNCATED_LENGTH, _, "input ends inside a length") \
	X(ESIM_E_DER_INDEFINITE_LENGTH, _, "0x80 length form (BER only)") \
	X(ESIM_E_DER_LENGTH_TOO_LONG, _, "more than 4 length bytes") \
	X(ESIM_E_DER_RESERVED_LENGTH, _, "0xFF length byte") \
	X(ESIM_E_DER_NONMINIMAL_LENGTH, _, "long form where short fits, or leading zero") \
	X(ESIM_E_DER_OVERRUN, _, "value runs past its parent / input") \
	X(ESIM_E_DER_TRAILING_DATA, _, "bytes left after the last element") \
	X(ESIM_E_DER_UNEXPECTED_TAG, _, "element has another tag than required") \
	X(ESIM_E_DER_CONSTRUCTED_EXPECTED, _, "primitive where constructed is required") \
	X(ESIM_E_DER_PRIMITIVE_EXPECTED, _, "constructed where primitive is required") \
	X(ESIM_E_DER_EMPTY_INTEGER, _, "INTEGER with no content bytes") \
	X(ESIM_E_DER_NONMINIMAL_INTEGER, _, "INTEGER with a redundant leading byte") \
	X(ESIM_E_DER_INTEGER_OVERFLOW, _, "INTEGER does not fit the C type") \
	X(ESIM_E_DER_NEGATIVE_INTEGER, _, "negative where unsigned is required") \
	X(ESIM_E_DER_BAD_BOOLEAN, _, "BOOLEAN not exactly one byte") \
	X(ESIM_E_DER_BAD_NULL, _, "NULL with content") \
	X(ESIM_E_DER_EMPTY_BITSTRING, _, "BIT STRING with no unused-bits byte") \
	X(ESIM_E_DER_BAD_UNUSED_BITS, _, "unused-bits count > 7, or > 0 when empty") \
	X(ESIM_E_DER_NONZERO_PADDING, _, "unused bits of a BIT STRING not zero") \
	X(ESIM_E_DER_BAD_UTF8, _, "UTF8String not valid UTF-8") \
	X(ESIM_E_DER_BAD_OID, _, "malformed OBJECT IDENTIFIER") \
	X(ESIM_E_DER_TOO_DEEP, _, "nesting deeper than the reader allows") \
	X(ESIM_E_DER_BAD_ENUMERATED, _, "ENUMERATED malformed") \
	X(ESIM_E_DER_BUILDER_STATE, _, "builder misuse (unbalanced open/close)") \
	/* crypto layer (200..299) */ \
	X(ESIM_E_CRYPTO_BAD_KEY, 200, "key malformed or of the wrong type") \
	X(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, _, "curve other than P-256 / brainpoolP256r1") \
	X(ESIM_E_CRYPTO_CURVE_MISMATCH, _, "two keys on different curves") \
	X(ESIM_E_CRYPTO_BAD_POINT, _, "public point not on the curve / bad encoding") \
	X(ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT, _, "signature bytes malformed") \
	X(ESIM_E_CRYPTO_SIGNATURE_INVALID, _, "signature does not verify") \
	X(ESIM_E_CRYPTO_MAC_INVALID, _, "MAC does not verify") \
	X(ESIM_E_CRYPTO_BAD_PADDING, _, "ISO 9797-1 method 2 padding wrong") \
	X(ESIM_E_CRYPTO_BAD_LENGTH, _, "ciphertext / key length wrong") \
	X(ESIM_E_CRYPTO_OPENSSL, _, "OpenSSL failed unexpectedly") \
	X(ESIM_E_CRYPTO_RANDOM, _, "random generator failed") \
	X(ESIM_E_CRYPTO_EID_FORMAT, _, "EID is not 32 decimal digits") \
	X(ESIM_E_CRYPTO_EID_CHECK_DIGITS, _, "EID check digits wrong (SGP.29: EID mod 97 must be 1)") \
	X(ESIM_E_CRYPTO_UNSUPPORTED_CRT, _, "BPP keyType / keyLen other than AES-128") \
	/* certificates (300..399) */ \
	X(ESIM_E_CERT_PARSE, 300, "not a DER or PEM X.509 certificate") \
	X(ESIM_E_CERT_EXPIRED, _, "notAfter is in the past") \
	X(ESIM_E_CERT_NOT_YET_VALID, _, "notBefore is in the future") \
	X(ESIM_E_CERT_NO_ROLE, _, "no GSMA RSP role policy OID") \
	X(ESIM_E_CERT_WRONG_ROLE, _, "role policy OID other than required") \
	X(ESIM_E_CERT_UNKNOWN_CI, _, "chain ends at a CI that is not trusted") \
	X(ESIM_E_CERT_BAD_SIGNATURE, _, "issuer's signature does not verify") \
	X(ESIM_E_CERT_MISSING_ISSUER, _, "an intermediate certificate is missing") \
	X(ESIM_E_CERT_NOT_CA, _, "issuer lacks CA:TRUE / keyCertSign") \
	X(ESIM_E_CERT_NO_SKI, _, "SubjectKeyIdentifier missing") \
	X(ESIM_E_CERT_NO_AKI, _, "AuthorityKeyIdentifier missing") \
	X(ESIM_E_CERT_NO_EID, _, "eUICC certificate without a valid EID") \
	X(ESIM_E_CERT_EID_OUT_OF_RANGE, _, "EID outside the EUM's permitted range") \
	X(ESIM_E_CERT_KEY_USAGE, _, "key usage does not allow the use") \
	X(ESIM_E_CERT_SIG_ALG, _, "certificate not signed with ecdsa-with-SHA256") \
	X(ESIM_E_CERT_VERSION, _, "certificate is not X.509 v3") \
	X(ESIM_E_CERT_SIG_ALG_MISMATCH, _, "signature algorithm inside tbsCertificate differs from the outer one") \
	X(ESIM_E_CERT_BAD_TIME, _, "validity time not in RFC 5280 form (YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ)") \
	X(ESIM_E_CERT_BAD_EXTENSION, _, "certificate extension malformed or present twice") \
	X(ESIM_E_CERT_UNKNOWN_CRITICAL, _, "certificate has a critical extension this implementation does not know (RFC 5280 4.2)") \
	/* apdu layer (400..499) */ \
	X(ESIM_E_APDU_MALFORMED, 400, "malformed APDU (too short, bad Lc/Le)") \
	X(ESIM_E_APDU_SW, _, "the card answered with an error status word") \
	X(ESIM_E_APDU_CLOSED, _, "the card transport was closed by the peer") \
	X(ESIM_E_APDU_TIMEOUT, _, "the card did not answer in time") \
	X(ESIM_E_APDU_NO_READER, _, "no matching smart card reader or card") \
	X(ESIM_E_APDU_PCSC, _, "a PC/SC call failed") \
	X(ESIM_E_APDU_NO_CHANNEL, _, "the card opened no logical channel") \
	X(ESIM_E_APDU_FRAME, _, "socket frame malformed or too large") \
	X(ESIM_E_APDU_DRIVER, _, "no APDU driver of that name") \
	/* store layer (500..599) */ \
	X(ESIM_E_STORE_OPEN, 500, "the database could not be opened") \
	X(ESIM_E_STORE_SQL, _, "a database statement failed") \
	X(ESIM_E_STORE_CONSTRAINT, _, "a database constraint (e.g. uniqueness) was violated") \
	X(ESIM_E_STORE_BUSY, _, "the database is locked by another writer, or the transaction lost a conflict (retry it)") \
	X(ESIM_E_STORE_MIGRATION, _, "the database schema is newer than this program or a migration failed") \
	X(ESIM_E_STORE_CORRUPT, _, "the database file is damaged") \
	X(ESIM_E_STORE_STATE, _, "store misuse (transaction or statement state)") \
	X(ESIM_E_STORE_CONNECTION, _, "the connection to the database server failed or was lost") \
	X(ESIM_E_STORE_SYNC, _, "the database could not flush a committed transaction to stable storage") \
	/* rsp layer (600..699) */ \
	X(ESIM_E_RSP_BAD_ICCID, 600, "ICCID not 18..20 digits (a 20th may be F) or bad BCD") \
	X(ESIM_E_RSP_BAD_EID, _, "EID not 32 decimal digits / 16 BCD bytes") \
	X(ESIM_E_RSP_BAD_TXID, _, "transactionId not 1..16 bytes") \
	X(ESIM_E_RSP_BAD_AID, _, "AID not 5..16 bytes") \
	X(ESIM_E_RSP_BAD_STRUCTURE, _, "SGP.22 message does not follow its ASN.1 structure") \
	X(ESIM_E_RSP_FIELD_SIZE, _, "SGP.22 field outside its size limit") \
	X(ESIM_E_RSP_DUPLICATE_FIELD, _, "SGP.22 field present twice") \
	X(ESIM_E_RSP_BAD_PMO, _, "profileManagementOperation wrong (not exactly one bit, or wrong kind)") \
	X(ESIM_E_RSP_BAD_SIGNATURE, _, "signature over the SGP.22 message does not verify") \
	X(ESIM_E_RSP_TXID_MISMATCH, _, "transactionId differs from the session's") \
	X(ESIM_E_RSP_CHALLENGE_MISMATCH, _, "serverChallenge differs from the session's") \
	X(ESIM_E_RSP_OID_MISMATCH, _, "SM-DP+ OID differs from the expected one") \
	X(ESIM_E_RSP_CI_MISMATCH, _, "eUICC chain ends at another CI than the one chosen") \
	X(ESIM_E_RSP_EUICC_ERROR, _, "the eUICC answered with an error result") \
	X(ESIM_E_RSP_UNKNOWN_NOTIFICATION, _, "pending notification is neither a PIR nor an other notification") \
	X(ESIM_E_RSP_CC_MISSING, _, "confirmation code required but hashCc absent") \
	X(ESIM_E_RSP_CC_MISMATCH, _, "hashCc does not match the confirmation code") \
	X(ESIM_E_RSP_BPP_STRUCTURE, _, "bound profile package malformed") \
	X(ESIM_E_RSP_SAIP_MALFORMED, _, "profile package is not a sequence of DER profile elements") \
	X(ESIM_E_RSP_SAIP_NO_HEADER, _, "profile package does not start with a ProfileHeader (A0)") \
	X(ESIM_E_RSP_SAIP_BAD_HEADER, _, "ProfileHeader malformed (version, ICCID, services)") \
	X(ESIM_E_RSP_SAIP_NO_MF, _, "profile package has no mf element (B0)") \
	X(ESIM_E_RSP_SAIP_NO_END, _, "profile package does not end with an end element (AA)") \
	X(ESIM_E_RSP_SAIP_MISPLACED, _, "header or end element in the wrong place") \
	X(ESIM_E_RSP_SAIP_BAD_PE_HEADER, _, "profile element without a valid PEHeader") \
	X(ESIM_E_RSP_SAIP_DUPLICATE_ID, _, "two profile elements share an identification number") \
	X(ESIM_E_RSP_SAIP_NO_EF_ICCID, _, "mf element has no EF.ICCID content to personalise") \
	X(ESIM_E_RSP_BAD_ACTIVATION_CODE, _, "activation code malformed (SGP.22 4.1: LPA:1$address$matchingId[$oid[$1]])") \
	X(ESIM_E_RSP_ADDRESS_MISMATCH, _, "the server signed another SM-DP+ address than the one contacted") \
	/* euicc (700..799) */ \
	X(ESIM_E_EUICC_BAD_COMMAND, 700, "malformed ES10 command (bad TLV or element)") \
	X(ESIM_E_EUICC_UNKNOWN_COMMAND, _, "unknown ES10 command tag") \
	X(ESIM_E_EUICC_IDENTITY, _, "eUICC identity inconsistent (certificate, key, EUM, EID)") \
	X(ESIM_E_EUICC_STATE, _, "stored eUICC state is inconsistent") \
	X(ESIM_E_EUICC_CONDITIONS, _, "ES10 command out of sequence (no download prepared)") \
	/* net layer (800..899) */ \
	X(ESIM_E_NET_CONNECT, 800, "could not connect to the server (name, refused, unreachable)") \
	X(ESIM_E_NET_TLS, _, "TLS handshake failed") \
	X(ESIM_E_NET_UNTRUSTED_SERVER, _, "server certificate does not chain to a trusted CI") \
	X(ESIM_E_NET_HOSTNAME, _, "server certificate does not match the host name") \
	X(ESIM_E_NET_TIMEOUT, _, "network operation timed out") \
	X(ESIM_E_NET_HTTP_STATUS, _, "HTTP status other than 2xx") \
	X(ESIM_E_NET_BODY_TOO_LARGE, _, "HTTP body exceeds its size cap") \
	X(ESIM_E_NET_BAD_REQUEST, _, "malformed HTTP request, URL or header") \
	X(ESIM_E_NET_IO, _, "connection failed while sending or receiving") \
	X(ESIM_E_NET_CLIENT_CERT, _, "client certificate or key unusable, missing or refused") \
	X(ESIM_E_NET_BIND, _, "could not listen on the address and port") \
	X(ESIM_E_NET_TLS_CONFIG, _, "TLS certificate chain or key unusable") \
	X(ESIM_E_NET_JSON, _, "body is not valid JSON") \
	X(ESIM_E_NET_JSON_FIELD, _, "JSON field missing or of the wrong type") \
	X(ESIM_E_NET_JSON_TOO_DEEP, _, "JSON nested deeper than allowed") \
	X(ESIM_E_NET_STATE, _, "server or client misuse (e.g. route added after start)") \
	/* smdp (900..999) */ \
	X(ESIM_E_SMDP_TRANSITION, 900, "profile is not in a state this transition starts from") \
	X(ESIM_E_SMDP_CONFIG, _, "SM-DP+ configuration unusable (identities, CIs, OID)") \
	X(ESIM_E_SMDP_CSV, _, "profile batch CSV malformed") \
	X(ESIM_E_SMDP_UNKNOWN, _, "unknown operator, profile type or order") \
	X(ESIM_E_SMDP_KEK, _, "SM-DP+ key-encryption key missing, unusable or not the one used") \
	/* operator (1000..1099) */ \
	X(ESIM_E_OP_AUTH, 1000, "operator: not logged in, bad credentials or session expired") \
	X(ESIM_E_OP_FORBIDDEN, _, "operator: the caller's role or ownership does not allow this") \
	X(ESIM_E_OP_STATE, _, "operator: the case or invoice is not in a state this step starts from") \
	X(ESIM_E_OP_LOCKED, _, "operator: too many failed logins, locked for a while") \
	X(ESIM_E_OP_AUDIT, _, "operator: audit log chain broken (edited, removed or truncated)") \
	X(ESIM_E_OP_RECORD, _, "operator: termination record malformed or its proof invalid") \
	X(ESIM_E_OP_CONFIG, _, "operator: configuration unusable") \
	/* end */

/* A block that starts at a new number needs its ESIM_ERR__VAL_<n> below. */
#define ESIM_ERR__ENUM_(name, value, text) name ESIM_ERR__VAL_##value,
#define ESIM_ERR__VAL__
#define ESIM_ERR__VAL_1 = 1
#define ESIM_ERR__VAL_100 = 100
#define ESIM_ERR__VAL_200 = 200
#define ESIM_ERR__VAL_300 = 300
#define ESIM_ERR__VAL_400 = 400
#define ESIM_ERR__VAL_500 = 500
#define ESIM_ERR__VAL_600 = 600
#define ESIM_ERR__VAL_700 = 700
#define ESIM_ERR__VAL_800 = 800
#define ESIM_ERR__VAL_900 = 900
#define ESIM_ERR__VAL_1000 = 1000

typedef enum esim_err {
	ESIM_OK = 0,
	ESIM_ERR_LIST(ESIM_ERR__ENUM_)
	ESIM_E__LAST
} esim_err;

/* A static, human-readable description of err; never NULL. */
const char *esim_strerror(esim_err err);

/* The symbolic name of err, e.g. "ESIM_E_DER_OVERRUN"; never NULL. */
const char *esim_errname(esim_err err);

/*
 * esim_errctx: the detail of a failure that its code alone cannot carry:
 * which path, address or reader, the system's reason (strerror) and what
 * to do about it. The caller owns one (on its stack or in its context; no
 * global state) and passes it down; the function that fails writes one
 * sentence into it, e.g. "cannot connect to unix:/run/e.sock (No such file
 * or directory): is esim-euicc running?". Every setter accepts NULL (the
 * caller wants no detail). Never put a secret in it: it is shown to users
 * and logged.
 */
#define ESIM_ERRCTX_MAX 512
typedef struct esim_errctx {
	/* the English detail (logs, --json), then from ESIM_ERRCTX_MAX on the
	 * same in the user's language; one member, so that {{0}} clears it */
	char text[2 * ESIM_ERRCTX_MAX];
} esim_errctx;

/* Replace the detail with the formatted text (truncated to fit). */
void esim_errctx_set(esim_errctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empty the detail. */
void esim_errctx_clear(esim_errctx *ctx);
/* The detail, or "" when none was set (or ctx is NULL); never NULL. */
const char *esim_errctx_text(const esim_errctx *ctx);
/*
 * The user's language (docs/i18n.md): the detail, and esim_strerror's text,
 * from the "esim" message catalogue when the program bound one
 * (esim_i18n_init), else the English; never NULL. For what a person reads
 * on a terminal only: logs and machine-read output keep the English.
 */
const char *esim_errctx_local(const esim_errctx *ctx);
const char *esim_strerror_local(esim_err err);

#endif
