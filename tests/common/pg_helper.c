/*
 * Start and stop a private PostgreSQL server for the store tests (the
 * SM-DP+ and operator service's scale-out database). See pg_helper.h for
 * what is started and how it is cleaned up.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg_helper.h"

#define PG_DIR_PREFIX "/tmp/esimkit-pg."

/* atexit() takes no argument, so the servers to stop at exit are listed
 * here: test-only state, never in the library. */
static struct pg_env *live_envs[4];

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (strncmp(dir, PG_DIR_PREFIX, strlen(PG_DIR_PREFIX)) != 0)
		return;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	long pid = -1;
	if (f != NULL) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

/* Remove what a killed test run left: dirs whose owner process is gone
 * (and the server in it, should it still run). */
static void reap_stale(void)
{
	DIR *d = opendir("/tmp");
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "esimkit-pg.", 11) != 0)
			continue;
		char dir[300], path[340];
		snprintf(dir, sizeof dir, "/tmp/%.200s", e->d_name);
		snprintf(path, sizeof path, "%s/owner.pid", dir);
		long owner = read_pid(path);
		if (owner <= 0 || (kill((pid_t)owner, 0) == 0 || errno != ESRCH))
			continue;
		snprintf(path, sizeof path, "%s/data/postmaster.pid", dir);
		long pm = read_pid(path);
		if (pm > 0 && kill((pid_t)pm, SIGQUIT) == 0) {
			for (int i = 0; i < 50 && kill((pid_t)pm, 0) == 0; i++)
				sleep_ms(100);
		}
		rm_tree(dir);
	}
	closedir(d);
}

static int find_bindir(struct pg_env *env)
{
	const char *over = getenv("ESIM_PG_BINDIR");
	if (over != NULL && *over != '\0') {
		snprintf(env->bindir, sizeof env->bindir, "%s", over);
	} else {
		glob_t g;
		int best = -1;
		if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++) {
				int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
				if (v > best) {
					best = v;
					snprintf(env->bindir, sizeof env->bindir, "%.240s",
						 g.gl_pathv[i]);
					*strrchr(env->bindir, '/') = '\0';
				}
			}
			globfree(&g);
		}
		if (best < 0)
			return -1;
	}
	char p[300];
	snprintf(p, sizeof p, "%s/initdb", env->bindir);
	if (access(p, X_OK) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/postgres", env->bindir);
	return access(p, X_OK) == 0 ? 0 : -1;
}

/* fork + exec argv with output to logfile, as the unprivileged user when
 * we are root. The child asks for SIGQUIT (immediate shutdown) when we die. */
static pid_t spawn(const struct pg_env *env, char *const argv[], const char *logfile)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, 0);
		close(devnull);
	}
	if (env->drop) {
		if (setgroups(0, NULL) != 0 || setgid(env->run_gid) != 0 ||
		    setuid(env->run_uid) != 0) {
			perror("pg_helper: dropping privileges");
			_exit(127);
		}
	}
	/* After setuid, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGQUIT); /* immediate shutdown */
	if (getppid() != parent)
		_exit(1);
	execv(argv[0], argv);
	perror("pg_helper: exec");
	_exit(127);
}

static void print_log(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512];
	fprintf(stderr, "---- %s ----\n", path);
	while (fgets(line, sizeof line, f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

static int free_port(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	int rc = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
		*port = ntohs(a.sin_port);
		rc = 0;
	}
	close(fd);
	return rc;
}

/* --no-sync: initdb's closing fsync of a cluster that lives for one test
 * run buys nothing; the server itself runs with fsync on. */
static int run_initdb(struct pg_env *env)
{
	char prog[300], data[100], log[100];
	snprintf(prog, sizeof prog, "%s/initdb", env->bindir);
	snprintf(data, sizeof data, "%s/data", env->dir);
	snprintf(log, sizeof log, "%s/initdb.log", env->dir);
	char *const argv[] = {prog,   "-D", data,   "-A",	  "trust",     "-U",
			      "esim", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
	pid_t pid = spawn(env, argv, log);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "pg_helper: initdb failed\n");
		print_log(log);
		return -1;
	}
	return 0;
}

static void conninfo(const struct pg_env *env, const char *db, char *out, size_t n)
{
	snprintf(out, n, "host=127.0.0.1 port=%u user=esim dbname=%s connect_timeout=5",
		 (unsigned)env->port, db);
}

/* Start postgres at a free port; 1 when the port was taken meanwhile. */
static int run_server(struct pg_env *env)
{
	char prog[300], data[100], log[100], port[16], sockdir[100];
	if (free_port(&env->port) != 0)
		return -1;
	snprintf(prog, sizeof prog, "%s/postgres", env->bindir);
	snprintf(data, sizeof data, "%s/data", env->dir);
	snprintf(log, sizeof log, "%s/postgres.log", env->dir);
	snprintf(port, sizeof port, "%u", (unsigned)env->port);
	snprintf(sockdir, sizeof sockdir, "unix_socket_directories=%s", env->dir);
	char *const argv[] = {prog,
			      "-D",
			      data,
			      "-p",
			      port,
			      "-c",
			      "listen_addresses=127.0.0.1",
			      "-c",
			      sockdir,
			      "-c",
			      "fsync=on",
			      "-c",
			      "synchronous_commit=on",
			      "-c",
			      "full_page_writes=on",
			      "-c",
			      "max_connections=40",
			      "-c",
			      "shared_buffers=16MB",
			      NULL};
	env->pid = spawn(env, argv, log);
	if (env->pid < 0)
		return -1;
	char ci[160];
	conninfo(env, "postgres", ci, sizeof ci);
	for (int i = 0; i < 600; i++) { /* up to 60 s */
		int status;
		if (waitpid(env->pid, &status, WNOHANG) == env->pid) {
			env->pid = -1;
			FILE *f = fopen(log, "r");
			char line[512];
			int taken = 0;
			while (f != NULL && fgets(line, sizeof line, f) != NULL)
				taken |= strstr(line, "could not bind") != NULL ||
					 strstr(line, "Address already in use") != NULL;
			if (f != NULL)
				fclose(f);
			if (taken) {
				remove(log);
				return 1;
			}
			fprintf(stderr, "pg_helper: postgres exited at start\n");
			print_log(log);
			return -1;
		}
		if (PQping(ci) == PQPING_OK)
			return 0;
		sleep_ms(100);
	}
	fprintf(stderr, "pg_helper: postgres did not accept connections in 60 s\n");
	print_log(log);
	return -1;
}

static void stop_at_exit(void)
{
	for (size_t i = 0; i < sizeof live_envs / sizeof live_envs[0]; i++) {
		if (live_envs[i] != NULL)
			pg_stop(live_envs[i]);
	}
}

static void track(struct pg_env *env, bool on)
{
	static bool registered;
	for (size_t i = 0; i < sizeof live_envs / sizeof live_envs[0]; i++) {
		if (on && live_envs[i] == NULL) {
			live_envs[i] = env;
			break;
		}
		if (!on && live_envs[i] == env)
			live_envs[i] = NULL;
	}
	if (on && !registered) {
		atexit(stop_at_exit);
		registered = true;
	}
}

int pg_start(struct pg_env *env)
{
	memset(env, 0, sizeof *env);
	env->pid = -1;
	if (find_bindir(env) != 0) {
		snprintf(env->why, sizeof env->why,
			 "no initdb and postgres in %.200s (set ESIM_PG_BINDIR or install "
			 "postgresql)",
			 getenv("ESIM_PG_BINDIR") != NULL ? env->bindir
							  : "/usr/lib/postgresql/*/bin");
		return 77;
	}
	if (geteuid() == 0) {
		const struct passwd *pw = getpwnam("postgres");
		if (pw == NULL)
			pw = getpwnam("nobody");
		if (pw == NULL || pw->pw_uid == 0) {
			fprintf(stderr,
				"pg_helper: running as root and no user to run postgres as\n");
			return -1;
		}
		env->drop = true;
		env->run_uid = pw->pw_uid;
		env->run_gid = pw->pw_gid;
	}
	reap_stale();
	snprintf(env->dir, sizeof env->dir, "%sXXXXXX", PG_DIR_PREFIX);
	if (mkdtemp(env->dir) == NULL) {
		env->dir[0] = '\0';
		perror("pg_helper: mkdtemp");
		return -1;
	}
	track(env, true);
	char path[120];
	snprintf(path, sizeof path, "%s/owner.pid", env->dir);
	FILE *f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f, "%ld\n", (long)getpid());
		fclose(f);
	}
	if (env->drop && chown(env->dir, env->run_uid, env->run_gid) != 0) {
		perror("pg_helper: chown");
		return -1;
	}
	if (run_initdb(env) != 0)
		return -1;
	int rc = 1;
	for (int tries = 0; rc == 1 && tries < 5; tries++)
		rc = run_server(env);
	return rc == 0 ? 0 : -1;
}

int pg_create_db(struct pg_env *env, char *url, size_t n)
{
	char ci[160], sql[64], name[32];
	snprintf(name, sizeof name, "t%u", env->next_db++);
	conninfo(env, "postgres", ci, sizeof ci);
	PGconn *c = PQconnectdb(ci);
	int rc = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
		PGresult *r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			rc = 0;
		else
			fprintf(stderr, "pg_helper: %s", PQresultErrorMessage(r));
		PQclear(r);
	} else {
		fprintf(stderr, "pg_helper: %s", PQerrorMessage(c));
	}
	PQfinish(c);
	if (rc == 0)
		snprintf(url, n, "postgresql://esim@127.0.0.1:%u/%s", (unsigned)env->port, name);
	return rc;
}

void pg_stop(struct pg_env *env)
{
	if (env->pid > 0) {
		/* Immediate shutdown: the data is thrown away, so the shutdown
		 * checkpoint (seconds of fsync) would buy nothing. */
		kill(env->pid, SIGQUIT);
		int status;
		bool gone = false;
		for (int i = 0; i < 300 && !gone; i++) { /* up to 30 s */
			gone = waitpid(env->pid, &status, WNOHANG) == env->pid;
			if (!gone)
				sleep_ms(100);
		}
		if (!gone) {
			kill(env->pid, SIGKILL);
			waitpid(env->pid, &status, 0);
		}
		env->pid = -1;
	}
	if (env->dir[0] != '\0') {
		rm_tree(env->dir);
		env->dir[0] = '\0';
	}
	track(env, false);
}
