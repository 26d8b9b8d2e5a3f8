/*
 * The release this libesim was built from, for every program's --version
 * and for programs linked against the shared library (issue 17). Not an
 * SGP.22 item: SGP.22 section 5.7.8 (GetEuiccInfo) carries the eUICC's own
 * versions, which are the card's business, not the software's.
 *
 * ESIM_VERSION comes from CMake's project(VERSION ...), set on this file
 * only so that a new release recompiles one object.
 */
#include <stdio.h>

#include "esim/util.h"

#ifndef ESIM_VERSION
#define ESIM_VERSION "unknown"
#endif

const char *esim_version(void)
{
	return ESIM_VERSION;
}

void esim_print_version(const char *program)
{
	printf("%s %s\n", program, ESIM_VERSION);
	fflush(stdout);
}
