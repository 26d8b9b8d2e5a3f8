/*
 * bench_import: what `esim-smdp import` costs for one batch file at
 * operator scale (issue 13, point 4). It makes a test PKI and a KEK file,
 * registers an operator and a profile type whose template has an
 * akaParameter element (so every row's Ki / OPc is sealed), writes a CSV of
 * N profiles (ICCID with its Luhn digit, IMSI, Ki, OPc), then runs the real
 * `esim-smdp import` as a child and reports its wall time, rows per second
 * and peak RSS (getrusage of the child: ru_maxrss), on SQLite.
 *
 * Usage: bench_import [--rows N] [--dir DIR] [--keep]
 * Results and the commands are in docs/PERFORMANCE.md ("Batch import").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esim/der.h"
#include "esim/rsp.h"
#include "esim/rsp_saip.h"

#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "."
#endif

static int sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "bench_import: failed (%d): %s\n", rc, cmd);
	return rc;
}

/* The test package with an akaParameter (milenage, K and OPc zero). */
static int write_template(const char *path)
{
	uint8_t *base = NULL, *upp = NULL;
	size_t base_len = 0, len = 0;
	if (rsp_saip_make_test_upp("8900000000000000000", &base, &base_len) != ESIM_OK)
		return -1;
	der_builder b;
	der_builder_init(&b);
	der_cursor c;
	der_cursor_init(&c, base, base_len);
	der_element e;
	esim_err err;
	static const uint8_t zero[16] = {0};
	while (der_next_child(&c, &e, &err)) {
		if (e.tag == 0xAA) {
			der_builder_open(&b, 0xA4);
			der_builder_open(&b, 0xA0);
			der_add_int64(&b, 0x81, 51);
			der_builder_close(&b);
			der_builder_open(&b, 0xA1);
			der_builder_open(&b, 0xA1);
			der_add_int64(&b, 0x80, 1);
			der_add_octet_string(&b, 0x81, "\x00", 1);
			der_add_octet_string(&b, 0x82, zero, 16);
			der_add_octet_string(&b, 0x83, zero, 16);
			der_builder_close(&b);
			der_builder_close(&b);
			der_builder_close(&b);
		}
		der_add_raw(&b, e.tlv.p, e.tlv.len);
	}
	free(base);
	if (der_builder_finish(&b, &upp, &len) != ESIM_OK)
		return -1;
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(upp, 1, len, f) == len;
	ok = f && fclose(f) == 0 && ok;
	free(upp);
	printf("template: %zu bytes\n", len);
	return ok ? 0 : -1;
}

static void iccid(size_t i, char out[21])
{
	snprintf(out, 21, "8900011111%09zu", i % 1000000000u);
	out[19] = (char)('0' + rsp_iccid_luhn_digit(out, 19));
	out[20] = '\0';
}

static int write_csv(const char *path, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	static char buf[1 << 20];
	setvbuf(f, buf, _IOFBF, sizeof buf);
	fputs("iccid,imsi,ki,opc\n", f);
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 1; i <= n; i++) {
		char id[21];
		iccid(i, id);
		uint64_t k[4];
		for (int j = 0; j < 4; j++) { /* xorshift: distinct keys per row */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			k[j] = x;
		}
		fprintf(f, "%s,00101%010zu,%016llX%016llX,%016llX%016llX\n", id, i,
			(unsigned long long)k[0], (unsigned long long)k[1],
			(unsigned long long)k[2], (unsigned long long)k[3]);
	}
	return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	size_t rows = 100000;
	const char *dir_arg = NULL;
	int keep = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
			rows = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir_arg = argv[++i];
		else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else {
			fprintf(stderr, "usage: bench_import [--rows N] [--dir DIR] [--keep]\n");
			return 2;
		}
	}
	char dir[512], cmd[4096], conf[600], csv[600], tpl[600], kek[600];
	if (dir_arg) {
		snprintf(dir, sizeof dir, "%s", dir_arg);
		mkdir(dir, 0700);
	} else {
		snprintf(dir, sizeof dir, "/tmp/bench-import.XXXXXX");
		if (!mkdtemp(dir))
			return 1;
	}
	snprintf(conf, sizeof conf, "%s/smdp.conf", dir);
	snprintf(csv, sizeof csv, "%s/batch.csv", dir);
	snprintf(tpl, sizeof tpl, "%s/usim.der", dir);
	snprintf(kek, sizeof kek, "%s/kek", dir);
	snprintf(cmd, sizeof cmd,
		 "'%s/esim-pki' init '%s/pki' --curve nist"
		 " --eid 89049032123451234512345678901235 >/dev/null &&"
		 " umask 077 && head -c 32 /dev/urandom > '%s'",
		 BENCH_BIN_DIR, dir, kek);
	if (sh(cmd) != 0 || write_template(tpl) != 0)
		return 1;
	FILE *f = fopen(conf, "w");
	if (!f)
		return 1;
	fprintf(f,
		"db = sqlite:%s/smdp.db\nfqdn = bench.example\nkek-file = %s\n"
		"dpauth-cert-nist = %s/pki/nist/dpauth.der\n"
		"dpauth-key-nist = %s/pki/nist/dpauth.key.pem\n"
		"dppb-cert-nist = %s/pki/nist/dppb.der\ndppb-key-nist = %s/pki/nist/dppb.key.pem\n",
		dir, kek, dir, dir, dir, dir);
	fclose(f);
	snprintf(cmd, sizeof cmd,
		 "'%s/esim-smdp' add-operator --config '%s' BENCH '%s/pki/nist/operator.pem' &&"
		 " '%s/esim-smdp' add-type --config '%s' USIM BENCH '%s' esimkit bench",
		 BENCH_BIN_DIR, conf, dir, BENCH_BIN_DIR, conf, tpl);
	if (sh(cmd) != 0 || write_csv(csv, rows) != 0)
		return 1;
	struct stat st;
	stat(csv, &st);
	printf("batch: %zu rows, %.1f MiB\n", rows, (double)st.st_size / (1 << 20));
	fflush(stdout);

	char bin[600];
	snprintf(bin, sizeof bin, "%s/esim-smdp", BENCH_BIN_DIR);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid == 0) {
		execl(bin, bin, "import", "--config", conf, "USIM", csv, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_import: esim-smdp import failed\n");
		return 1;
	}
	stat(conf, &st);
	char db[700];
	snprintf(db, sizeof db, "%s/smdp.db", dir);
	stat(db, &st);
	printf("import: %.2f s, %.0f rows/s, peak RSS %ld KiB, user %.2f s, sys %.2f s,"
	       " database %.1f MiB\n",
	       s, (double)rows / s, ru.ru_maxrss,
	       (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
	       (double)st.st_size / (1 << 20));
	if (!keep && !dir_arg) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		sh(cmd);
	}
	return 0;
}
