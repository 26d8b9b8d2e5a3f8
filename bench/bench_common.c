/*
 * Helpers shared by the load generators in bench/: a real esim-smdp
 * started the way an operator starts it, its readiness read from its log.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "esim/util.h"

esim_err bench_start_smdp(const char *bin_dir, const char *conf, const char *log, pid_t *pid,
			  unsigned *port)
{
	char prog[1024];
	snprintf(prog, sizeof prog, "%s/esim-smdp", bin_dir);
	pid_t p = fork();
	if (p < 0)
		return ESIM_E_IO;
	if (p == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execl(prog, prog, "serve", "--config", conf, (char *)NULL);
		_exit(127);
	}
	*pid = p;
	*port = 0;
	for (int i = 0; i < 1000; i++) {
		uint8_t *text = NULL;
		size_t len = 0;
		if (esim_read_file(log, 1u << 20, &text, &len) == ESIM_OK) {
			char *s = strndup((const char *)text, len);
			free(text);
			const char *l = s ? strstr(s, "listening on ") : NULL;
			const char *c = l ? strchr(l, ':') : NULL;
			/* the JSON log line (the default) or the text one */
			bool ready = s && (strstr(s, "\"msg\":\"ready\"") != NULL ||
					   strstr(s, "esim-smdp: ready") != NULL);
			if (c)
				*port = (unsigned)strtoul(c + 1, NULL, 10);
			free(s);
			if (ready && *port)
				return ESIM_OK;
		}
		int st;
		if (waitpid(p, &st, WNOHANG) == p) {
			fprintf(stderr, "bench: esim-smdp exited; see %s\n", log);
			*pid = 0;
			return ESIM_E_IO;
		}
		usleep(10000);
	}
	return ESIM_E_NET_TIMEOUT;
}
