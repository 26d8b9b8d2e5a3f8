/*
 * The `esim` command line: one file per command group (cmd_<group>.c), each
 * exporting one entry point that main.c dispatches to by name.
 */
#ifndef ESIM_LPA_CLI_H
#define ESIM_LPA_CLI_H

/* Exit codes, stable and documented in docs/usage.md. */
enum cli_exit {
	CLI_OK = 0,
	CLI_EXIT_FAILURE = 1, /* anything not covered below */
	CLI_EXIT_USAGE = 2,   /* bad command line or malformed user input */
	CLI_EXIT_CARD = 3,    /* the eUICC refused or answered with an error */
	CLI_EXIT_SERVER = 4,  /* the SM-DP+ / SM-DS answered with an error */
	CLI_EXIT_NETWORK = 5, /* the server could not be reached / TLS failed */
	CLI_EXIT_DATA = 6,    /* an input file or message is malformed */
};

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the group name */
};

int cmd_der(int argc, char **argv);
int cmd_chip(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_notification(int argc, char **argv);
int cmd_cancel(int argc, char **argv);

#endif
