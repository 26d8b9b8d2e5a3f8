/*
 * esim: the LPA command line. main() only picks the command group; each
 * group parses its own arguments in its cmd_<group>.c.
 */
#include <stdio.h>
#include <string.h>

#include "lpa/cli.h"

static const struct cli_command commands[] = {
    {"chip", "the eUICC: info, default-smdp, reset", cmd_chip},
    {"profile", "profiles: list, enable, disable, delete, nickname, download, discover",
     cmd_profile},
    {"notification", "pending notifications: list, process, remove", cmd_notification},
    {"cancel", "disable + delete a profile, notify its SM-DP+, print a receipt", cmd_cancel},
    {"der", "inspect BER-TLV / DER data (der dump FILE|-)", cmd_der},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: esim <command> [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
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
	fprintf(stderr, "esim: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
