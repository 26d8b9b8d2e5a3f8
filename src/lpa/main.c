/*
 * esim: the LPA command line. main() only picks the command group; each
 * group parses its own arguments in its cmd_<group>.c.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpa/cli.h"
#include "lpa/lpa.h"
#include "esim/i18n.h"
#include "esim/util.h"

static const struct cli_command commands[] = {
    {"chip", N_("the eUICC: info, default-smdp, reset"), cmd_chip},
    {"profile", N_("profiles: list, enable, disable, delete, nickname, download, discover"),
     cmd_profile},
    {"notification", N_("pending notifications: list, process, remove"), cmd_notification},
    {"cancel", N_("disable + delete a profile, notify its SM-DP+, print a receipt"), cmd_cancel},
    {"der", N_("inspect BER-TLV / DER data (der dump FILE|-)"), cmd_der},
};

static void usage(FILE *out)
{
	fprintf(out, "%s", _("usage: esim [global options] <command> [args]\n\ncommands:\n"));
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, _(commands[i].summary));
	fputc('\n', out);
	lpa_usage_globals(out);
	fprintf(out, "%s", _("\n'esim <command> --help' lists the command's own options.\n"));
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, _("esim: unknown command '%s'\n"), argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}

/*
 * Global options may also come before the command (esim --json chip info):
 * they are moved after it, where the group parses them with the rest
 * (getopt permutes options and operands there). *out is a new argv array
 * (the strings are borrowed); NULL with a message for an option that is
 * not global or lacks its value.
 */
static char **hoist_globals(int argc, char **argv, int *out_argc)
{
	int n = 1;
	while (n < argc && strncmp(argv[n], "--", 2) == 0 && strcmp(argv[n], "--help") != 0) {
		bool value;
		if (!lpa_is_global_option(argv[n], &value)) {
			fprintf(stderr,
				"esim: '%s' is not a global option (command options go "
				"after the command)\n",
				argv[n]);
			return NULL;
		}
		if (value && ++n == argc) {
			fprintf(stderr, "esim: '%s' needs a value\n", argv[n - 1]);
			return NULL;
		}
		n++;
	}
	char **v = calloc((size_t)argc + 1, sizeof *v);
	if (v == NULL)
		return NULL;
	int k = 0;
	v[k++] = argv[0];
	for (int i = n; i < argc; i++)
		v[k++] = argv[i];
	for (int i = 1; i < n; i++)
		v[k++] = argv[i];
	*out_argc = k;
	return v;
}

int main(int argc, char **argv)
{
	esim_i18n_init("esim"); /* LANG / LC_MESSAGES: the messages' language */
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim");
		return 0;
	}
	int n_args = argc;
	char **args = hoist_globals(argc, argv, &n_args);
	if (args == NULL)
		return CLI_EXIT_USAGE;
	int rc = run(n_args, args);
	free(args);
	return rc;
}
