/*
 * Helpers shared by the load generators in bench/ (bench_download,
 * bench_flood): starting a real `esim-smdp serve` of this build.
 */
#ifndef ESIM_BENCH_COMMON_H
#define ESIM_BENCH_COMMON_H

#include <sys/types.h>

#include "esim/err.h"

/* Start bin_dir/esim-smdp serve --config conf, its stderr into log (0600);
 * wait (up to 10 s) for its "ready" line and read the ES9+ port from its
 * "listening on" line. *pid is the child (0 when it died: see the log). */
esim_err bench_start_smdp(const char *bin_dir, const char *conf, const char *log, pid_t *pid,
			  unsigned *port);

#endif
