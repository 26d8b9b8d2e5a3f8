/*
 * A throwaway PostgreSQL server for one test program, so that the store
 * layer's PostgreSQL backend is tested against the real thing.
 *
 * pg_start():
 *   - finds initdb and postgres in $ESIM_PG_BINDIR or the newest
 *     /usr/lib/postgresql/<version>/bin (Debian's layout); returns 77
 *     with the reason in env->why when there are none: the caller passes
 *     it to test_component_missing() (testutil.h), which skips, or fails
 *     under CI=true;
 *   - makes a temp dir /tmp/esimkit-pg.XXXXXX, runs
 *     `initdb -A trust -U esim -E UTF8 --locale=C --no-sync` in it, and starts
 *     `postgres` as a child listening on 127.0.0.1 only, at a free port,
 *     with its unix socket in the temp dir and fsync on (the server is
 *     configured for durability as in production; only trust auth and the
 *     small limits are test settings);
 *   - PostgreSQL refuses to run as root: when the test runs as root (as in
 *     CI), initdb and postgres run as the `postgres` user that Debian's
 *     postgresql package creates (or `nobody` when it is missing), with the
 *     temp dir handed to that user;
 *   - waits until the server accepts connections.
 * Cleanup: pg_stop() stops the server (immediate shutdown: the data is
 * thrown away) and removes the temp dir; it is also registered with atexit,
 * so a test that fails or exits early leaves nothing behind; the server is
 * asked to stop when the test process dies (PR_SET_PDEATHSIG); and
 * pg_start() removes temp dirs that a killed test run left (their owner
 * process is gone).
 */
#ifndef ESIM_PG_HELPER_H
#define ESIM_PG_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pg_env {
	pid_t pid; /* the postmaster, our child; -1 when not running */
	uint16_t port;
	char dir[64];	  /* temp dir: data/, the socket, logs */
	char bindir[256]; /* where initdb and postgres are */
	bool drop;	  /* run the server as run_uid/run_gid (we are root) */
	uid_t run_uid;
	gid_t run_gid;
	unsigned next_db; /* for pg_create_db names */
	char why[300];	  /* after 77: why PostgreSQL cannot be used here */
};

/* 0 when the server runs; 77 when PostgreSQL is not installed (reason in
 * env->why; nothing printed); -1 on failure (message and log on stderr). Call pg_stop() after 0 or
 * -1. */
int pg_start(struct pg_env *env);
/* Create a fresh, empty database and write its postgresql:// URL to url.
 * 0 or -1. */
int pg_create_db(struct pg_env *env, char *url, size_t n);
/* Stop the server, remove the temp dir. Safe to call twice. */
void pg_stop(struct pg_env *env);

#endif
