/*
 * `esim der`: look inside BER-TLV / DER data, e.g. an ES10 response saved
 * from a card, a bound profile package from an SM-DP+, or a SAIP profile
 * package. Malformed data is reported with the error and the byte offset,
 * after the part of the tree that did parse.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/i18n.h"
#include "esim/der.h"
#include "lpa/cli.h"

#define DER_INPUT_MAX (64u << 20)

static void usage(FILE *out)
{
	fprintf(out,
		_("usage: esim der dump [options] FILE|-\n"
		  "\n"
		  "Print the TLV tree of DER data (a file, or standard input for -).\n"
		  "\n"
		  "options:\n"
		  "  --hex             the input is hex text (whitespace and ':' ignored)\n"
		  "  --full            print every value byte (default: the first 64)\n"
		  "  --names=KIND      tag name hints: sgp22 (default), saip, none\n"
		  "  --max-depth=N     nesting levels to descend (default %d, max %d)\n"),
		DER_DEFAULT_MAX_DEPTH, DER_MAX_DEPTH_LIMIT);
}

/* Decode hex text in place of data (whitespace and colons skipped). */
static esim_err unhex_text(const uint8_t *text, size_t len, uint8_t **out, size_t *out_len)
{
	char *clean = malloc(len + 1);
	if (clean == NULL)
		return ESIM_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (isspace(text[i]) || text[i] == ':')
			continue;
		if (text[i] == '\0') {
			free(clean);
			return ESIM_E_HEX;
		}
		clean[n++] = (char)text[i];
	}
	clean[n] = '\0';
	esim_err err = esim_hex_decode(clean, out, out_len);
	free(clean);
	return err;
}

static int dump(int argc, char **argv)
{
	der_dump_opts opts = {.names = DER_NAMES_SGP22};
	bool hex = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--hex") == 0) {
			hex = true;
		} else if (strcmp(a, "--full") == 0) {
			opts.full = true;
		} else if (strcmp(a, "--names=sgp22") == 0) {
			opts.names = DER_NAMES_SGP22;
		} else if (strcmp(a, "--names=saip") == 0) {
			opts.names = DER_NAMES_SAIP;
		} else if (strcmp(a, "--names=none") == 0) {
			opts.names = DER_NAMES_NONE;
		} else if (strncmp(a, "--max-depth=", 12) == 0) {
			char *end;
			long v = strtol(a + 12, &end, 10);
			if (*end != '\0' || end == a + 12 || v < 1 || v > DER_MAX_DEPTH_LIMIT) {
				fprintf(stderr, _("esim der dump: bad --max-depth '%s'\n"), a + 12);
				return CLI_EXIT_USAGE;
			}
			opts.max_depth = (unsigned)v;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CLI_OK;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, _("esim der dump: unknown option '%s'\n"), a);
			usage(stderr);
			return CLI_EXIT_USAGE;
		} else if (path == NULL) {
			path = a;
		} else {
			fprintf(stderr, "%s\n", _("esim der dump: more than one input"));
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}

	uint8_t *data = NULL;
	size_t len = 0;
	esim_err err = esim_read_file(path, DER_INPUT_MAX, &data, &len);
	if (err != ESIM_OK) {
		fprintf(stderr, _("esim der dump: cannot read %s: %s\n"), path,
			esim_strerror_local(err));
		return err == ESIM_E_TOO_LARGE ? CLI_EXIT_DATA : CLI_EXIT_FAILURE;
	}
	if (hex) {
		uint8_t *bin = NULL;
		size_t bin_len = 0;
		err = unhex_text(data, len, &bin, &bin_len);
		free(data);
		if (err != ESIM_OK) {
			fprintf(stderr, "esim der dump: %s: %s\n", path, esim_strerror_local(err));
			return err == ESIM_E_NOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_DATA;
		}
		data = bin;
		len = bin_len;
	}

	size_t off = 0;
	err = der_dump(stdout, data, len, &opts, &off);
	free(data);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s\n", _("esim der dump: writing the output failed"));
		return CLI_EXIT_FAILURE;
	}
	if (err != ESIM_OK) {
		fprintf(stderr,
			_("esim der dump: %s: malformed data: %s (%s) at byte offset %zu\n"), path,
			esim_strerror_local(err), esim_errname(err), off);
		return CLI_EXIT_DATA;
	}
	return CLI_OK;
}

int cmd_der(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_OK;
	}
	if (strcmp(argv[1], "dump") == 0)
		return dump(argc - 1, argv + 1);
	fprintf(stderr, _("esim der: unknown subcommand '%s'\n"), argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
