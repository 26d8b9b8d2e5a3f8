/*
 * esim-pki: makes a private GSMA RSP test PKI (SGP.22 section 4.5) for labs
 * and for our own tests, so that nothing depends on the SGP.26 files (whose
 * TLS certificate expires) or on GSMA-issued certificates.
 *
 * `init` writes, per curve (nist = P-256, brp = brainpoolP256r1), a CI, an
 * EUM whose nameConstraints permit the EID's first 8 digits, the eUICC for
 * that EID, the SM-DP+ certificates (DPauth, DPpb, DPtls) and an operator's
 * ES2+ client certificate, plus a manifest.json and a README. The operator
 * certificate is signed by the CI of its curve: the SM-DP+ then needs only
 * the CI to authenticate its ES2+ clients (there is no GSMA role for it).
 *
 * `issue` issues any single certificate under any issuer (e.g. a new DPtls
 * under the SGP.26 CI), `verify` runs our SGP.22 chain check on files, and
 * `eid-check` computes SGP.29 check digits.
 *
 * Everything is issued in memory first and only then written, so a failure
 * while issuing writes nothing, and each file goes through a temporary name
 * and rename(), so no reader ever sees a half-written one. Private keys are
 * created 0600.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "esim/cert.h"
#include "esim/pki.h"
#include "esim/util.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define MAX_HOSTS      16
#define DEFAULT_DAYS   3650
#define MAX_DAYS       36500
#define CLOCK_SKEW_SEC 3600 /* notBefore an hour back: lab clocks drift */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: esim-pki <command> [args]\n"
		"       esim-pki --help | --version   this help | the version\n"
		"\n"
		"  init DIR --eid EID [--curve nist|brp|both] [--smdp-host HOST]...\n"
		"       [--smdp-oid OID] [--days N] [--operator NAME] [--force]\n"
		"      Write a private RSP test PKI into DIR/nist and/or DIR/brp: ci, eum,\n"
		"      euicc, dpauth, dppb, dptls and operator (.der, .pem, .key.pem),\n"
		"      DIR/manifest.json and DIR/README. The EUM permits the first 8 digits\n"
		"      of EID. DPtls names localhost, 127.0.0.1 and every --smdp-host.\n"
		"      --smdp-oid sets the SM-DP+ registeredID (default " CRYPTO_PKI_OID_SMDP ").\n"
		"      --days sets the validity (default %d; eUICC certificates never\n"
		"      expire). An existing PKI in DIR is kept unless --force.\n"
		"\n"
		"  issue ROLE --out PREFIX [--issuer-cert FILE --issuer-key FILE]\n"
		"       [--curve nist|brp] [--eid EID] [--host HOST]... [--oid OID]\n"
		"       [--cn CN] [--org ORG] [--country CC] [--days N]\n"
		"       [--not-before UNIXTIME] [--not-after UNIXTIME] [--force]\n"
		"      Issue one certificate: ROLE is ci (self-signed), eum, euicc, dptls,\n"
		"      dpauth, dppb, dstls, dsauth or operator; the issuer is any CI or EUM\n"
		"      certificate (PEM or DER) with its key, e.g. the SGP.26 test CI to\n"
		"      re-issue an expired DPtls. Writes PREFIX.der, .pem and .key.pem.\n"
		"      --not-before/--not-after make expired or future certificates.\n"
		"\n"
		"  verify CI-CERT CERT [INTERMEDIATE...]\n"
		"      Check CERT's chain to CI-CERT the SGP.22 way: signatures, CA rights,\n"
		"      the role in CERT's certificatePolicies, validity now and, for an\n"
		"      eUICC (give its EUM as intermediate), the EID against the EUM's\n"
		"      permitted prefix. A certificate without an RSP role (operator) is\n"
		"      checked for the CI's signature and validity only. Exit 1 when it\n"
		"      does not verify.\n"
		"\n"
		"  eid-check EID\n"
		"      Check the SGP.29 check digits of a 32-digit EID and print the\n"
		"      correct ones; given 30 digits, print the complete EID.\n"
		"\n"
		"exit status: 0 ok, 2 bad command line or invalid input (e.g. an EID with\n"
		"wrong check digits), 1 any other failure (I/O, an existing PKI).\n",
		DEFAULT_DAYS);
}

/* ---- EID ------------------------------------------------------------------ */

/* Explain what is wrong with eid on stderr; true when it is valid. */
static bool eid_explain(const char *eid)
{
	esim_err err = crypto_pki_eid_check(eid);
	if (err == ESIM_OK)
		return true;
	if (err == ESIM_E_CRYPTO_EID_FORMAT) {
		fprintf(stderr, "esim-pki: EID '%s' is not 32 decimal digits (%zu characters)\n",
			eid, strlen(eid));
		return false;
	}
	char check[3];
	if (crypto_pki_eid_check_digits(eid, check) == ESIM_OK)
		fprintf(stderr,
			"esim-pki: EID %s has wrong check digits '%s': SGP.29 requires "
			"EID mod 97 == 1, so they should be '%s' (EID %.30s%s)\n",
			eid, eid + CRYPTO_EID_DIGITS - 2, check, eid, check);
	return false;
}

static int cmd_eid_check(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: esim-pki eid-check EID\n");
		return EXIT_USAGE;
	}
	const char *eid = argv[1];
	char check[3];
	size_t n = strlen(eid);
	if (n == CRYPTO_EID_DIGITS - 2) {
		char full[CRYPTO_EID_DIGITS + 1];
		if (crypto_pki_eid_complete(eid, full) == ESIM_OK) {
			printf("%s (check digits %s)\n", full, full + CRYPTO_EID_DIGITS - 2);
			return EXIT_OK;
		}
	}
	if (n != CRYPTO_EID_DIGITS || crypto_pki_eid_check_digits(eid, check) != ESIM_OK) {
		fprintf(stderr,
			"esim-pki: '%s' is neither a 32-digit EID nor a 30-digit EID prefix\n",
			eid);
		return EXIT_USAGE;
	}
	if (!eid_explain(eid))
		return EXIT_USAGE;
	printf("%s is valid (check digits %s)\n", eid, check);
	return EXIT_OK;
}

/* ---- small output helpers -------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static esim_err bprintf(esim_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ESIM_E_INTERNAL;
	esim_err err = esim_buf_reserve(b, (size_t)n + 1);
	if (err != ESIM_OK)
		return err;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return ESIM_OK;
}

/* A JSON string literal (quotes included). */
static esim_err json_str(esim_buf *b, const char *s)
{
	esim_err err = esim_buf_append_byte(b, '"');
	for (; err == ESIM_OK && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			err = bprintf(b, "\\%c", c);
		else if (c < 0x20)
			err = bprintf(b, "\\u%04x", c);
		else
			err = esim_buf_append_byte(b, c);
	}
	if (err == ESIM_OK)
		err = esim_buf_append_byte(b, '"');
	return err;
}

/* Write data to path via path.tmp + rename; mode applies to new files and,
 * for private keys (0600), is forced even if the file existed. */
static esim_err write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return ESIM_E_ARG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return ESIM_E_IO;
	esim_err err = ESIM_OK;
	if (mode == 0600 && fchmod(fd, mode) != 0)
		err = ESIM_E_IO;
	const uint8_t *p = data;
	while (err == ESIM_OK && len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = ESIM_E_IO;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) != 0 && err == ESIM_OK)
		err = ESIM_E_IO;
	if (err == ESIM_OK && rename(tmp, path) != 0)
		err = ESIM_E_IO;
	if (err != ESIM_OK)
		unlink(tmp);
	return err;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static esim_err make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0 || (errno == EEXIST && is_dir(path)))
		return ESIM_OK;
	return ESIM_E_IO;
}

/* ---- init -------------------------------------------------------------------- */

/* TLS host names, sorted into SubjectAltName dNSName and iPAddress. */
struct hosts {
	const char *dns[MAX_HOSTS];
	size_t n_dns;
	const char *ips[MAX_HOSTS];
	size_t n_ips;
};

struct init_opts {
	const char *dir;
	const char *eid;
	bool curves[2]; /* [0] nist, [1] brp */
	struct hosts hosts;
	const char *smdp_oid;
	long days;
	const char *operator_name;
	bool force;
};

static const char *const curve_dirs[2] = {"nist", "brp"};
static const crypto_curve curve_ids[2] = {CRYPTO_CURVE_P256, CRYPTO_CURVE_BRAINPOOLP256R1};

/* The certificates of one curve, in issuing order: each issuer comes first. */
enum { PKI_CI, PKI_EUM, PKI_EUICC, PKI_DPAUTH, PKI_DPPB, PKI_DPTLS, PKI_OPERATOR, PKI_N };

static const struct {
	const char *file;
	const char *role;
	crypto_issue_kind kind;
	int issuer; /* index, -1 = self */
} pki_items[PKI_N] = {
    [PKI_CI] = {"ci", "CI", CRYPTO_ISSUE_CI, -1},
    [PKI_EUM] = {"eum", "EUM", CRYPTO_ISSUE_EUM, PKI_CI},
    [PKI_EUICC] = {"euicc", "eUICC", CRYPTO_ISSUE_EUICC, PKI_EUM},
    [PKI_DPAUTH] = {"dpauth", "DPauth", CRYPTO_ISSUE_DP_AUTH, PKI_CI},
    [PKI_DPPB] = {"dppb", "DPpb", CRYPTO_ISSUE_DP_PB, PKI_CI},
    [PKI_DPTLS] = {"dptls", "DPtls", CRYPTO_ISSUE_DP_TLS, PKI_CI},
    [PKI_OPERATOR] = {"operator", "operator ES2+ client", CRYPTO_ISSUE_OPERATOR, PKI_CI},
};

static bool valid_host_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || (c == '*' && i == 0)))
			return false;
	}
	return true;
}

static bool valid_oid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 100 || s[0] == '.' || s[n - 1] == '.' || strchr(s, '.') == NULL ||
	    strstr(s, "..") != NULL)
		return false;
	if (!(s[0] >= '0' && s[0] <= '2') || s[1] != '.')
		return false;
	return strspn(s, "0123456789.") == n;
}

static bool host_listed(const char *const *list, size_t n, const char *h)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(list[i], h) == 0)
			return true;
	}
	return false;
}

/* Sort a host into the DNS or IP list (deduplicated). */
static int add_host(struct hosts *o, const char *h)
{
	unsigned char addr[16];
	bool ip = inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1;
	if (!ip && !valid_host_name(h)) {
		fprintf(stderr,
			"esim-pki: --smdp-host '%s' is neither a DNS name nor an IP address\n", h);
		return EXIT_USAGE;
	}
	const char **list = ip ? o->ips : o->dns;
	size_t *n = ip ? &o->n_ips : &o->n_dns;
	if (host_listed(list, *n, h))
		return EXIT_OK;
	if (*n >= MAX_HOSTS) {
		fprintf(stderr, "esim-pki: at most %d host names and %d IP addresses\n", MAX_HOSTS,
			MAX_HOSTS);
		return EXIT_USAGE;
	}
	list[(*n)++] = h;
	return EXIT_OK;
}

/* "--name VALUE" or "--name=VALUE"; *i advances past what was used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		return ""; /* reported by the caller as an empty value */
	return argv[++*i];
}

static int parse_init(int argc, char **argv, struct init_opts *o)
{
	memset(o, 0, sizeof *o);
	o->curves[0] = o->curves[1] = true;
	o->smdp_oid = CRYPTO_PKI_OID_SMDP;
	o->days = DEFAULT_DAYS;
	o->operator_name = "esimkit Test Operator";
	const char *v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		v = NULL;
		if (strcmp(a, "--force") == 0) {
			o->force = true;
		} else if ((v = opt_value(argc, argv, &i, "--eid")) != NULL) {
			o->eid = v;
		} else if ((v = opt_value(argc, argv, &i, "--curve")) != NULL) {
			o->curves[0] = strcmp(v, "nist") == 0 || strcmp(v, "both") == 0;
			o->curves[1] = strcmp(v, "brp") == 0 || strcmp(v, "both") == 0;
			if (!o->curves[0] && !o->curves[1]) {
				fprintf(stderr, "esim-pki: --curve must be nist, brp or both\n");
				return EXIT_USAGE;
			}
		} else if ((v = opt_value(argc, argv, &i, "--smdp-host")) != NULL) {
			int rc = add_host(&o->hosts, v);
			if (rc != EXIT_OK)
				return rc;
		} else if ((v = opt_value(argc, argv, &i, "--smdp-oid")) != NULL) {
			if (!valid_oid(v)) {
				fprintf(
				    stderr,
				    "esim-pki: --smdp-oid '%s' is not a dotted OID like 2.999.10\n",
				    v);
				return EXIT_USAGE;
			}
			o->smdp_oid = v;
		} else if ((v = opt_value(argc, argv, &i, "--days")) != NULL) {
			char *end = NULL;
			errno = 0;
			o->days = strtol(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' || o->days < 1 ||
			    o->days > MAX_DAYS) {
				fprintf(stderr, "esim-pki: --days must be 1..%d, not '%s'\n",
					MAX_DAYS, v);
				return EXIT_USAGE;
			}
		} else if ((v = opt_value(argc, argv, &i, "--operator")) != NULL) {
			size_t n = strlen(v);
			if (n == 0 || n > 64) {
				fprintf(stderr, "esim-pki: --operator needs a name of 1..64 "
						"characters\n");
				return EXIT_USAGE;
			}
			o->operator_name = v;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "esim-pki: unknown option '%s' for init\n", a);
			return EXIT_USAGE;
		} else if (o->dir == NULL) {
			o->dir = a;
		} else {
			fprintf(stderr, "esim-pki: unexpected argument '%s'\n", a);
			return EXIT_USAGE;
		}
		if (v != NULL && v[0] == '\0') {
			fprintf(stderr, "esim-pki: %s needs a non-empty value\n", a);
			return EXIT_USAGE;
		}
	}
	if (o->dir == NULL || o->dir[0] == '\0') {
		fprintf(stderr, "esim-pki: init needs a directory (esim-pki init DIR --eid EID)\n");
		return EXIT_USAGE;
	}
	if (o->eid == NULL) {
		fprintf(stderr, "esim-pki: init needs --eid (32 digits; 'esim-pki eid-check' "
				"completes a 30-digit prefix)\n");
		return EXIT_USAGE;
	}
	if (!eid_explain(o->eid))
		return EXIT_USAGE;
	/* the defaults of digest 10.3 / the task: always reachable locally */
	if (add_host(&o->hosts, "localhost") != EXIT_OK ||
	    add_host(&o->hosts, "127.0.0.1") != EXIT_OK)
		return EXIT_USAGE;
	return EXIT_OK;
}

struct curve_pki {
	struct crypto_issued item[PKI_N];
};

static void curve_pki_clear(struct curve_pki *c)
{
	for (int i = 0; i < PKI_N; i++)
		crypto_issued_clear(&c->item[i]);
}

static esim_err issue_curve(const struct init_opts *o, crypto_curve curve, time_t now,
			    struct curve_pki *c)
{
	time_t not_after = now + (time_t)o->days * 86400;
	for (int i = 0; i < PKI_N; i++) {
		struct crypto_issue_params p = {
		    .kind = pki_items[i].kind,
		    .curve = curve,
		    .not_before = now - CLOCK_SKEW_SEC,
		    .not_after = not_after,
		    .eid = o->eid,
		};
		int iss = pki_items[i].issuer;
		if (iss >= 0) {
			p.issuer_der = c->item[iss].der;
			p.issuer_der_len = c->item[iss].der_len;
			p.issuer_key = c->item[iss].key;
		}
		switch (i) {
		case PKI_EUICC:
			p.not_after = CRYPTO_PKI_NOT_AFTER_NEVER;
			break;
		case PKI_DPAUTH:
		case PKI_DPPB:
			p.registered_id = o->smdp_oid;
			break;
		case PKI_DPTLS:
			p.registered_id = o->smdp_oid;
			p.dns_names = o->hosts.dns;
			p.n_dns_names = o->hosts.n_dns;
			p.ip_addrs = o->hosts.ips;
			p.n_ip_addrs = o->hosts.n_ips;
			break;
		case PKI_OPERATOR:
			p.org = o->operator_name;
			p.common_name = o->operator_name;
			break;
		default:
			break;
		}
		esim_err err = crypto_issue(&p, &c->item[i]);
		if (err != ESIM_OK) {
			fprintf(stderr, "esim-pki: issuing the %s %s certificate failed: %s\n",
				curve_dirs[curve == CRYPTO_CURVE_P256 ? 0 : 1], pki_items[i].role,
				esim_strerror(err));
			return err;
		}
	}
	return ESIM_OK;
}

/* dir/name.ext (or dir.ext when name is NULL) into buf; ESIM_E_ARG when it
 * does not fit. */
static esim_err path_join(char *buf, size_t n, const char *dir, const char *name, const char *ext)
{
	int len =
	    name ? snprintf(buf, n, "%s/%s%s", dir, name, ext) : snprintf(buf, n, "%s%s", dir, ext);
	return len < 0 || (size_t)len >= n ? ESIM_E_ARG : ESIM_OK;
}

/* prefix.der, prefix.pem and prefix.key.pem (0600). */
static esim_err write_item(const char *prefix, const struct crypto_issued *it)
{
	char path[4096];
	esim_buf pem = ESIM_BUF_INIT;
	esim_buf key = ESIM_BUF_INIT;
	esim_err err;
	if ((err = path_join(path, sizeof path, prefix, NULL, ".der")) != ESIM_OK ||
	    (err = write_file(path, it->der, it->der_len, 0644)) != ESIM_OK)
		goto out;
	if ((err = path_join(path, sizeof path, prefix, NULL, ".pem")) != ESIM_OK ||
	    (err = crypto_pki_cert_pem(it->der, it->der_len, &pem)) != ESIM_OK ||
	    (err = write_file(path, pem.data, pem.len, 0644)) != ESIM_OK)
		goto out;
	if ((err = path_join(path, sizeof path, prefix, NULL, ".key.pem")) != ESIM_OK ||
	    (err = crypto_pki_key_pem(it->key, &key)) != ESIM_OK ||
	    (err = write_file(path, key.data, key.len, 0600)) != ESIM_OK)
		goto out;
out:
	if (err != ESIM_OK)
		fprintf(stderr, "esim-pki: writing %s.* failed: %s%s%s\n", prefix,
			esim_strerror(err), err == ESIM_E_IO ? ": " : "",
			err == ESIM_E_IO ? strerror(errno) : "");
	esim_buf_free(&pem);
	esim_buf_wipe_free(&key);
	return err;
}

static esim_err manifest_files(esim_buf *b, const struct init_opts *o, const struct curve_pki *pkis,
			       bool *first)
{
	static const char *const exts[3] = {"der", "pem", "key.pem"};
	esim_err err = ESIM_OK;
	for (int c = 0; c < 2; c++) {
		if (!o->curves[c])
			continue;
		for (int i = 0; i < PKI_N && err == ESIM_OK; i++) {
			char *ski = esim_hex_encode(pkis[c].item[i].ski, CRYPTO_PKI_SKI_LEN, true);
			if (ski == NULL)
				return ESIM_E_NOMEM;
			for (int e = 0; e < 3 && err == ESIM_OK; e++) {
				err = bprintf(b,
					      "%s\n    {\"file\": \"%s/%s.%s\", \"type\": \"%s\", "
					      "\"role\": ",
					      *first ? "" : ",", curve_dirs[c], pki_items[i].file,
					      exts[e], e == 2 ? "private-key" : "certificate");
				*first = false;
				if (err == ESIM_OK)
					err = json_str(b, pki_items[i].role);
				if (err == ESIM_OK)
					err = bprintf(b, ", \"curve\": \"%s\", \"ski\": \"%s\"",
						      curve_dirs[c], ski);
				if (err == ESIM_OK && i == PKI_EUICC)
					err = bprintf(b, ", \"eid\": \"%s\"", o->eid);
				if (err == ESIM_OK)
					err = esim_buf_append_byte(b, '}');
			}
			free(ski);
		}
	}
	return err;
}

static esim_err write_manifest(const struct init_opts *o, const struct curve_pki *pkis, time_t now)
{
	esim_buf b = ESIM_BUF_INIT;
	char created[32];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	esim_err err =
	    bprintf(&b,
		    "{\n  \"generator\": \"esim-pki\",\n  \"created\": \"%s\",\n"
		    "  \"eid\": \"%s\",\n  \"ein\": \"%.*s\",\n"
		    "  \"smdp_oid\": \"%s\",\n  \"validity_days\": %ld,\n"
		    "  \"operator\": ",
		    created, o->eid, CRYPTO_PKI_EIN_DIGITS, o->eid, o->smdp_oid, o->days);
	if (err == ESIM_OK)
		err = json_str(&b, o->operator_name);
	if (err == ESIM_OK)
		err = bprintf(&b, ",\n  \"smdp_hosts\": [");
	const struct hosts *h = &o->hosts;
	for (size_t i = 0; err == ESIM_OK && i < h->n_dns + h->n_ips; i++) {
		err = bprintf(&b, "%s", i ? ", " : "");
		if (err == ESIM_OK)
			err = json_str(&b, i < h->n_dns ? h->dns[i] : h->ips[i - h->n_dns]);
	}
	bool first = true;
	if (err == ESIM_OK)
		err = bprintf(&b, "],\n  \"files\": [");
	if (err == ESIM_OK)
		err = manifest_files(&b, o, pkis, &first);
	if (err == ESIM_OK)
		err = bprintf(&b, "\n  ]\n}\n");
	char path[4096];
	if (err == ESIM_OK)
		err = path_join(path, sizeof path, o->dir, "manifest.json", "");
	if (err == ESIM_OK)
		err = write_file(path, b.data, b.len, 0644);
	if (err != ESIM_OK)
		fprintf(stderr, "esim-pki: writing into %s failed: %s\n", o->dir,
			esim_strerror(err));
	esim_buf_free(&b);
	return err;
}

static esim_err write_readme(const struct init_opts *o)
{
	esim_buf b = ESIM_BUF_INIT;
	esim_err err = bprintf(
	    &b,
	    "esimkit private RSP test PKI (made by esim-pki)\n"
	    "==============================================\n\n"
	    "EID %s, EUM permitted prefix (EIN) %.*s, SM-DP+ OID %s.\n\n"
	    "nist/ holds NIST P-256 keys, brp/ brainpoolP256r1 keys. In each:\n\n"
	    "  ci        self-signed CI (policy 2.23.146.1.2.1.0, SAN rid " CRYPTO_PKI_OID_CI ")\n"
	    "  eum       EUM, signed by ci (CA, pathlen 0, nameConstraints serialNumber = EIN)\n"
	    "  euicc     eUICC, signed by eum (subject serialNumber = EID; never expires)\n"
	    "  dpauth    SM-DP+ authentication, signed by ci (serverSignature1)\n"
	    "  dppb      SM-DP+ profile binding, signed by ci (smdpSignature2)\n"
	    "  dptls     SM-DP+ TLS server, signed by ci (EKU serverAuth + clientAuth)\n"
	    "  operator  operator's ES2+ TLS client (%s), signed by ci (EKU clientAuth);\n"
	    "            an SM-DP+ that trusts ci for ES2+ clients accepts it\n\n"
	    "Each as NAME.der, NAME.pem and NAME.key.pem (unencrypted PKCS#8, mode 0600).\n"
	    "manifest.json lists every file with its role, curve and SKI.\n\n"
	    "These are test keys: production eUICCs and phones reject anything not under\n"
	    "the GSMA CI. Stock path validation of the eUICC chain fails by design\n"
	    "(the EUM's nameConstraints are checked the SGP.22 way, as an EID prefix);\n"
	    "the DPtls chain validates normally:\n"
	    "  openssl verify -CAfile nist/ci.pem nist/dptls.pem\n",
	    o->eid, CRYPTO_PKI_EIN_DIGITS, o->eid, o->smdp_oid, o->operator_name);
	char path[4096];
	if (err == ESIM_OK)
		err = path_join(path, sizeof path, o->dir, "README", "");
	if (err == ESIM_OK)
		err = write_file(path, b.data, b.len, 0644);
	if (err != ESIM_OK)
		fprintf(stderr, "esim-pki: writing into %s failed: %s\n", o->dir,
			esim_strerror(err));
	esim_buf_free(&b);
	return err;
}

/* An existing PKI: anything init would write. */
static const char *existing_pki(const struct init_opts *o, char *buf, size_t n)
{
	static const char *const marks[] = {"manifest.json", "nist", "brp"};
	for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
		if (path_join(buf, n, o->dir, marks[i], "") == ESIM_OK && exists(buf))
			return buf;
	}
	return NULL;
}

static int write_all(const struct init_opts *o, const struct curve_pki *pkis, time_t now)
{
	if (make_dir(o->dir) != ESIM_OK) {
		fprintf(stderr, "esim-pki: cannot create directory %s: %s\n", o->dir,
			strerror(errno));
		return EXIT_FAIL;
	}
	for (int c = 0; c < 2; c++) {
		if (!o->curves[c])
			continue;
		char dir[4096];
		if (path_join(dir, sizeof dir, o->dir, curve_dirs[c], "") != ESIM_OK ||
		    make_dir(dir) != ESIM_OK) {
			fprintf(stderr, "esim-pki: cannot create directory %s: %s\n", dir,
				strerror(errno));
			return EXIT_FAIL;
		}
		for (int i = 0; i < PKI_N; i++) {
			char prefix[4096];
			if (path_join(prefix, sizeof prefix, dir, pki_items[i].file, "") !=
				ESIM_OK ||
			    write_item(prefix, &pkis[c].item[i]) != ESIM_OK)
				return EXIT_FAIL;
		}
	}
	if (write_manifest(o, pkis, now) != ESIM_OK || write_readme(o) != ESIM_OK)
		return EXIT_FAIL;
	return EXIT_OK;
}

static int cmd_init(int argc, char **argv)
{
	struct init_opts o;
	int rc = parse_init(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	char found[4096];
	if (!o.force && existing_pki(&o, found, sizeof found) != NULL) {
		fprintf(stderr,
			"esim-pki: %s already holds a PKI (found %s); not overwriting it "
			"without --force\n",
			o.dir, found);
		return EXIT_FAIL;
	}
	if (strlen(o.dir) > 3000) {
		fprintf(stderr, "esim-pki: directory name too long\n");
		return EXIT_USAGE;
	}

	time_t now = time(NULL);
	struct curve_pki pkis[2];
	memset(pkis, 0, sizeof pkis);
	rc = EXIT_OK;
	for (int c = 0; c < 2 && rc == EXIT_OK; c++) {
		if (o.curves[c] && issue_curve(&o, curve_ids[c], now, &pkis[c]) != ESIM_OK)
			rc = EXIT_FAIL;
	}
	if (rc == EXIT_OK)
		rc = write_all(&o, pkis, now);
	if (rc == EXIT_OK) {
		printf("esim-pki: wrote a %s RSP test PKI for EID %s to %s\n",
		       o.curves[0] && o.curves[1] ? "NIST P-256 + brainpoolP256r1"
		       : o.curves[0]		  ? "NIST P-256"
						  : "brainpoolP256r1",
		       o.eid, o.dir);
	}
	for (int c = 0; c < 2; c++)
		curve_pki_clear(&pkis[c]);
	return rc;
}

/* ---- issue -------------------------------------------------------------------- */

static const struct {
	const char *name;
	crypto_issue_kind kind;
} issue_kinds[] = {
    {"ci", CRYPTO_ISSUE_CI},
    {"eum", CRYPTO_ISSUE_EUM},
    {"euicc", CRYPTO_ISSUE_EUICC},
    {"dptls", CRYPTO_ISSUE_DP_TLS},
    {"dpauth", CRYPTO_ISSUE_DP_AUTH},
    {"dppb", CRYPTO_ISSUE_DP_PB},
    {"dstls", CRYPTO_ISSUE_DS_TLS},
    {"dsauth", CRYPTO_ISSUE_DS_AUTH},
    {"operator", CRYPTO_ISSUE_OPERATOR},
};

struct issue_opts {
	struct crypto_issue_params p;
	const char *out;
	const char *issuer_cert;
	const char *issuer_key;
	struct hosts hosts;
	bool have_days, have_nb, have_na, force;
	long days;
};

static bool parse_time(const char *v, time_t *out)
{
	char *end = NULL;
	errno = 0;
	long long t = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return false;
	*out = (time_t)t;
	return true;
}

static int parse_issue(int argc, char **argv, struct issue_opts *o)
{
	memset(o, 0, sizeof *o);
	if (argc < 2) {
		fprintf(stderr, "esim-pki: issue needs a role (esim-pki --help)\n");
		return EXIT_USAGE;
	}
	size_t k = 0;
	while (k < sizeof issue_kinds / sizeof issue_kinds[0] &&
	       strcmp(argv[1], issue_kinds[k].name) != 0)
		k++;
	if (k == sizeof issue_kinds / sizeof issue_kinds[0]) {
		fprintf(stderr,
			"esim-pki: unknown role '%s' (ci, eum, euicc, dptls, dpauth, dppb, dstls, "
			"dsauth, operator)\n",
			argv[1]);
		return EXIT_USAGE;
	}
	o->p.kind = issue_kinds[k].kind;
	o->p.curve = CRYPTO_CURVE_P256;
	const char *v;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		v = NULL;
		if (strcmp(a, "--force") == 0) {
			o->force = true;
		} else if ((v = opt_value(argc, argv, &i, "--out")) != NULL) {
			o->out = v;
		} else if ((v = opt_value(argc, argv, &i, "--issuer-cert")) != NULL) {
			o->issuer_cert = v;
		} else if ((v = opt_value(argc, argv, &i, "--issuer-key")) != NULL) {
			o->issuer_key = v;
		} else if ((v = opt_value(argc, argv, &i, "--curve")) != NULL) {
			if (strcmp(v, "nist") == 0) {
				o->p.curve = CRYPTO_CURVE_P256;
			} else if (strcmp(v, "brp") == 0) {
				o->p.curve = CRYPTO_CURVE_BRAINPOOLP256R1;
			} else {
				fprintf(stderr, "esim-pki: --curve must be nist or brp\n");
				return EXIT_USAGE;
			}
		} else if ((v = opt_value(argc, argv, &i, "--eid")) != NULL) {
			o->p.eid = v;
		} else if ((v = opt_value(argc, argv, &i, "--host")) != NULL) {
			int rc = add_host(&o->hosts, v);
			if (rc != EXIT_OK)
				return rc;
		} else if ((v = opt_value(argc, argv, &i, "--oid")) != NULL) {
			if (!valid_oid(v)) {
				fprintf(stderr, "esim-pki: --oid '%s' is not a dotted OID\n", v);
				return EXIT_USAGE;
			}
			o->p.registered_id = v;
		} else if ((v = opt_value(argc, argv, &i, "--cn")) != NULL) {
			o->p.common_name = v;
		} else if ((v = opt_value(argc, argv, &i, "--org")) != NULL) {
			o->p.org = v;
		} else if ((v = opt_value(argc, argv, &i, "--country")) != NULL) {
			o->p.country = v;
		} else if ((v = opt_value(argc, argv, &i, "--days")) != NULL) {
			char *end = NULL;
			errno = 0;
			o->days = strtol(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' || o->days < 1 ||
			    o->days > MAX_DAYS) {
				fprintf(stderr, "esim-pki: --days must be 1..%d, not '%s'\n",
					MAX_DAYS, v);
				return EXIT_USAGE;
			}
			o->have_days = true;
		} else if ((v = opt_value(argc, argv, &i, "--not-before")) != NULL) {
			if (!parse_time(v, &o->p.not_before)) {
				fprintf(stderr,
					"esim-pki: --not-before takes seconds since 1970\n");
				return EXIT_USAGE;
			}
			o->have_nb = true;
		} else if ((v = opt_value(argc, argv, &i, "--not-after")) != NULL) {
			if (!parse_time(v, &o->p.not_after)) {
				fprintf(stderr, "esim-pki: --not-after takes seconds since 1970\n");
				return EXIT_USAGE;
			}
			o->have_na = true;
		} else {
			fprintf(stderr, "esim-pki: unknown argument '%s' for issue\n", a);
			return EXIT_USAGE;
		}
		if (v != NULL && v[0] == '\0') {
			fprintf(stderr, "esim-pki: %s needs a non-empty value\n", a);
			return EXIT_USAGE;
		}
	}
	if (o->out == NULL) {
		fprintf(stderr, "esim-pki: issue needs --out PREFIX\n");
		return EXIT_USAGE;
	}
	bool self = o->p.kind == CRYPTO_ISSUE_CI;
	if (self != (o->issuer_cert == NULL) || self != (o->issuer_key == NULL)) {
		fprintf(stderr,
			self ? "esim-pki: a CI is self-signed: no --issuer-cert/--issuer-key\n"
			     : "esim-pki: issue needs --issuer-cert and --issuer-key\n");
		return EXIT_USAGE;
	}
	if (o->have_days && o->have_na) {
		fprintf(stderr, "esim-pki: give --days or --not-after, not both\n");
		return EXIT_USAGE;
	}
	if ((o->p.kind == CRYPTO_ISSUE_EUICC || o->p.kind == CRYPTO_ISSUE_EUM) &&
	    (o->p.eid == NULL || !eid_explain(o->p.eid))) {
		if (o->p.eid == NULL)
			fprintf(stderr, "esim-pki: an %s certificate needs --eid\n", argv[1]);
		return EXIT_USAGE;
	}
	o->p.dns_names = o->hosts.dns;
	o->p.n_dns_names = o->hosts.n_dns;
	o->p.ip_addrs = o->hosts.ips;
	o->p.n_ip_addrs = o->hosts.n_ips;
	return EXIT_OK;
}

/* Read the issuer: certificate (PEM or DER) and key. */
static int load_issuer(struct issue_opts *o, crypto_cert **cert, EVP_PKEY **key)
{
	esim_err err = crypto_cert_load_file(o->issuer_cert, cert);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-pki: cannot read issuer certificate %s: %s\n", o->issuer_cert,
			esim_strerror(err));
		return err == ESIM_E_IO ? EXIT_FAIL : EXIT_USAGE;
	}
	err = crypto_key_load_private_file(o->issuer_key, key);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-pki: cannot read issuer key %s: %s\n", o->issuer_key,
			esim_strerror(err));
		return err == ESIM_E_IO ? EXIT_FAIL : EXIT_USAGE;
	}
	o->p.issuer_der = crypto_cert_der(*cert, &o->p.issuer_der_len);
	o->p.issuer_key = *key;
	return EXIT_OK;
}

static int cmd_issue(int argc, char **argv)
{
	struct issue_opts o;
	int rc = parse_issue(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	char path[4096];
	if (path_join(path, sizeof path, o.out, NULL, ".der") != ESIM_OK) {
		fprintf(stderr, "esim-pki: --out too long\n");
		return EXIT_USAGE;
	}
	if (!o.force && exists(path)) {
		fprintf(stderr, "esim-pki: %s exists; not overwriting it without --force\n", path);
		return EXIT_FAIL;
	}
	time_t now = time(NULL);
	if (!o.have_nb)
		o.p.not_before = now - CLOCK_SKEW_SEC;
	if (!o.have_na) {
		if (o.p.kind == CRYPTO_ISSUE_EUICC && !o.have_days)
			o.p.not_after = CRYPTO_PKI_NOT_AFTER_NEVER;
		else
			o.p.not_after = now + (time_t)(o.have_days ? o.days : DEFAULT_DAYS) * 86400;
	}

	crypto_cert *issuer = NULL;
	EVP_PKEY *issuer_key = NULL;
	struct crypto_issued out = {0};
	if (o.p.kind != CRYPTO_ISSUE_CI)
		rc = load_issuer(&o, &issuer, &issuer_key);
	if (rc == EXIT_OK) {
		esim_err err = crypto_issue(&o.p, &out);
		if (err != ESIM_OK) {
			if (err == ESIM_E_CRYPTO_BAD_KEY)
				fprintf(stderr, "esim-pki: %s is not the key of %s\n", o.issuer_key,
					o.issuer_cert);
			else
				fprintf(stderr, "esim-pki: issuing failed: %s\n",
					esim_strerror(err));
			rc = err == ESIM_E_NOMEM || err == ESIM_E_CRYPTO_OPENSSL ||
				     err == ESIM_E_CRYPTO_RANDOM
				 ? EXIT_FAIL
				 : EXIT_USAGE;
		}
	}
	if (rc == EXIT_OK && write_item(o.out, &out) != ESIM_OK)
		rc = EXIT_FAIL;
	if (rc == EXIT_OK) {
		char *ski = esim_hex_encode(out.ski, sizeof out.ski, true);
		printf("esim-pki: wrote %s.der, %s.pem, %s.key.pem (SKI %s)\n", o.out, o.out, o.out,
		       ski ? ski : "?");
		free(ski);
	}
	crypto_issued_clear(&out);
	EVP_PKEY_free(issuer_key);
	crypto_cert_free(issuer);
	return rc;
}

/* ---- verify ------------------------------------------------------------------- */

/* esim-pki verify CI CERT [INTERMEDIATE...]: the SGP.22 chain check of the
 * certificate layer (role from the leaf's policy, validity now, EID range for
 * eUICCs), for scripts and for people checking a PKI by hand. */
static int cmd_verify(int argc, char **argv)
{
	enum { MAX_INTER = 4 };
	if (argc < 3 || argc > 3 + MAX_INTER) {
		fprintf(stderr, "usage: esim-pki verify CI-CERT CERT [INTERMEDIATE...]\n");
		return EXIT_USAGE;
	}
	crypto_trust *trust = NULL;
	crypto_cert *leaf = NULL;
	crypto_cert *inter[MAX_INTER] = {NULL};
	size_t n_inter = 0;
	int rc = EXIT_USAGE;
	esim_err err = crypto_trust_new(&trust);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-pki: %s\n", esim_strerror(err));
		return EXIT_FAIL;
	}
	if ((err = crypto_trust_add_ci_file(trust, argv[1])) != ESIM_OK) {
		fprintf(stderr, "esim-pki: %s is not a usable CI certificate: %s\n", argv[1],
			esim_strerror(err));
		goto out;
	}
	if ((err = crypto_cert_load_file(argv[2], &leaf)) != ESIM_OK) {
		fprintf(stderr, "esim-pki: cannot read %s: %s\n", argv[2], esim_strerror(err));
		goto out;
	}
	for (int i = 3; i < argc; i++, n_inter++) {
		if ((err = crypto_cert_load_file(argv[i], &inter[n_inter])) != ESIM_OK) {
			fprintf(stderr, "esim-pki: cannot read %s: %s\n", argv[i],
				esim_strerror(err));
			goto out;
		}
	}
	crypto_rsp_role role;
	struct crypto_chain_opts opts = {.check_time = true, .now = time(NULL)};
	if (crypto_cert_role(leaf, &role) == ESIM_OK) {
		err = crypto_chain_verify(trust, leaf, (const crypto_cert *const *)inter, n_inter,
					  role, &opts, NULL);
	} else {
		/* no RSP role (e.g. the operator's ES2+ client certificate): only
		 * the CI's signature and the validity period */
		role = CRYPTO_ROLE_NONE;
		err = crypto_cert_verify_signed_by(leaf, crypto_trust_get(trust, 0));
		if (err == ESIM_OK)
			err = crypto_cert_check_time(leaf, opts.now);
	}
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-pki: %s (%s) does not verify: %s (%s)\n", argv[2],
			crypto_rsp_role_name(role), esim_strerror(err), esim_errname(err));
		rc = EXIT_FAIL;
		goto out;
	}
	char eid[CRYPTO_EID_DIGITS + 1];
	if (role == CRYPTO_ROLE_EUICC && crypto_cert_eid(leaf, eid) == ESIM_OK)
		printf("%s: OK (%s, EID %s)\n", argv[2], crypto_rsp_role_name(role), eid);
	else
		printf("%s: OK (%s)\n", argv[2], crypto_rsp_role_name(role));
	rc = EXIT_OK;
out:
	for (size_t i = 0; i < MAX_INTER; i++)
		crypto_cert_free(inter[i]);
	crypto_cert_free(leaf);
	crypto_trust_free(trust);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim-pki");
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		}
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if (strcmp(cmd, "eid-check") == 0)
		return cmd_eid_check(argc - 1, argv + 1);
	if (strcmp(cmd, "issue") == 0)
		return cmd_issue(argc - 1, argv + 1);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	fprintf(stderr, "esim-pki: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
