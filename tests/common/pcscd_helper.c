/*
 * A private pcscd + vpcd for the PC/SC tests (see pcscd_helper.h for the
 * rules). Test code only: it prints to stderr and uses fixed system paths
 * of pcsc-lite 1.9 (/run/pcscd) and vsmartcard (libifdvpcd.so).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <PCSC/winscard.h>

#include "pcscd_helper.h"

#define PCSCD_BIN      "/usr/sbin/pcscd"
#define VPCD_DRIVER    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
#define PCSCD_SOCKET   "/run/pcscd/pcscd.comm"
#define PCSCD_PIDFILE  "/run/pcscd/pcscd.pid"
#define OUR_DIR_PREFIX "/tmp/esimkit-pcscd."
#define SKIP	       77

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool pcscd_socket_alive(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", PCSCD_SOCKET);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static pid_t pidfile_pid(void)
{
	FILE *f = fopen(PCSCD_PIDFILE, "r");
	long v = -1;
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v > 0 ? (pid_t)v : -1;
}

/* 1 when pid is a process whose command line names one of our config dirs. */
static int pid_is_ours(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, OUR_DIR_PREFIX) != NULL;
}

/* A live process; a zombie (killed, not yet reaped) counts as dead. */
static bool pid_alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void kill_and_wait(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 50 && pid_alive(pid); i++)
		sleep_ms(100);
	if (pid_alive(pid)) {
		kill(pid, SIGKILL);
		for (int i = 0; i < 50 && pid_alive(pid); i++)
			sleep_ms(100);
	}
}

static bool port_free(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static uint16_t pick_port_pair(void)
{
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int i = 0; i < 200; i++) {
		uint16_t p = (uint16_t)(41000 + (rand_r(&seed) % 10000) * 2);
		if (port_free(p) && port_free((uint16_t)(p + 1)))
			return p;
	}
	return 0;
}

/* Does PC/SC list a reader named exactly name? With card_state, also
 * report whether a card is present in it. */
static bool reader_listed(const char *name, bool *card_present)
{
	SCARDCONTEXT ctx;
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS)
		return false;
	char buf[4096];
	DWORD len = sizeof buf;
	bool found = false;
	if (SCardListReaders(ctx, NULL, buf, &len) == SCARD_S_SUCCESS) {
		for (const char *r = buf; *r != '\0' && r < buf + len; r += strlen(r) + 1)
			if (strcmp(r, name) == 0)
				found = true;
	}
	if (found && card_present != NULL) {
		SCARD_READERSTATE st = {.szReader = name, .dwCurrentState = SCARD_STATE_UNAWARE};
		*card_present = SCardGetStatusChange(ctx, 0, &st, 1) == SCARD_S_SUCCESS &&
				(st.dwEventState & SCARD_STATE_PRESENT);
	}
	SCardReleaseContext(ctx);
	return found;
}

static int take_lock(struct pcscd_env *env)
{
	env->lock_fd = open(PCSCD_HELPER_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (env->lock_fd < 0) {
		fprintf(stderr, "pcscd_helper: cannot open %s: %s\n", PCSCD_HELPER_LOCK,
			strerror(errno));
		return -1;
	}
	for (int i = 0; i < 3000; i++) {
		if (flock(env->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		sleep_ms(100);
	}
	fprintf(stderr, "pcscd_helper: another PC/SC test holds %s for too long\n",
		PCSCD_HELPER_LOCK);
	return -1;
}

static int use_foreign_daemon(struct pcscd_env *env)
{
	bool present = true;
	env->external = true;
	env->port = 35963;
	snprintf(env->reader, sizeof env->reader, "Virtual PCD 00 00");
	if (!reader_listed(env->reader, &present) || present) {
		snprintf(env->why, sizeof env->why,
			 "a pcscd not started by this test runs and offers no free "
			 "\"Virtual PCD 00 00\" reader; stop it to run this test");
		return SKIP;
	}
	return 0;
}

static int write_config(struct pcscd_env *env)
{
	char path[128];
	snprintf(env->dir, sizeof env->dir, OUR_DIR_PREFIX "XXXXXX");
	if (mkdtemp(env->dir) == NULL) {
		env->dir[0] = '\0';
		return -1;
	}
	snprintf(path, sizeof path, "%s/conf", env->dir);
	if (mkdir(path, 0755) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/conf/vpcd", env->dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
		"FRIENDLYNAME \"esimkit vpcd\"\nDEVICENAME   /dev/null:0x%04X\n"
		"LIBPATH      %s\nCHANNELID    0x%04X\n",
		env->port, VPCD_DRIVER, env->port);
	return fclose(f) == 0 ? 0 : -1;
}

static void dump_log(const struct pcscd_env *env)
{
	char path[128], line[512];
	snprintf(path, sizeof path, "%s/pcscd.log", env->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	fprintf(stderr, "--- %s ---\n", path);
	while (fgets(line, sizeof line, f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

static int spawn(struct pcscd_env *env)
{
	char conf[128], log[128];
	snprintf(conf, sizeof conf, "%s/conf", env->dir);
	snprintf(log, sizeof log, "%s/pcscd.log", env->dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* pcscd must not outlive a test that crashes */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(PCSCD_BIN, "pcscd", "-f", "-c", conf, (char *)NULL);
		_exit(127);
	}
	env->pid = pid;
	for (int i = 0; i < 200; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			env->pid = -1;
			fprintf(stderr, "pcscd_helper: pcscd exited at start (status %d)\n",
				status);
			dump_log(env);
			return -1;
		}
		if (pcscd_socket_alive() && reader_listed(env->reader, NULL))
			return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "pcscd_helper: pcscd did not offer %s within 10 s\n", env->reader);
	dump_log(env);
	return -1;
}

int pcscd_start(struct pcscd_env *env)
{
	memset(env, 0, sizeof *env);
	env->pid = -1;
	env->lock_fd = -1;
	if (access(PCSCD_BIN, X_OK) != 0 || access(VPCD_DRIVER, R_OK) != 0) {
		snprintf(env->why, sizeof env->why, "%s or %s is not installed", PCSCD_BIN,
			 VPCD_DRIVER);
		return SKIP;
	}
	if (take_lock(env) != 0)
		return -1;

	pid_t old = pidfile_pid();
	bool alive = old > 0 && pid_alive(old);
	if (alive && pid_is_ours(old)) {
		fprintf(stderr, "pcscd_helper: stopping pcscd %ld left by an earlier run\n",
			(long)old);
		kill_and_wait(old);
		alive = false;
	}
	if (alive || (old <= 0 && pcscd_socket_alive()))
		return use_foreign_daemon(env);
	/* a daemon killed hard leaves its files; pcscd refuses to start on them */
	unlink(PCSCD_SOCKET);
	unlink(PCSCD_PIDFILE);
	if (geteuid() != 0 && access("/run/pcscd", W_OK) != 0 && access("/run", W_OK) != 0) {
		snprintf(env->why, sizeof env->why,
			 "starting pcscd needs write access to /run/pcscd");
		return SKIP;
	}

	env->port = pick_port_pair();
	if (env->port == 0) {
		fprintf(stderr, "pcscd_helper: no free TCP port pair for vpcd\n");
		return -1;
	}
	snprintf(env->reader, sizeof env->reader, "esimkit vpcd 00 00");
	if (write_config(env) != 0) {
		fprintf(stderr, "pcscd_helper: cannot write the reader config: %s\n",
			strerror(errno));
		return -1;
	}
	return spawn(env);
}

int pcscd_wait_card(const struct pcscd_env *env, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 50) {
		bool present = false;
		if (reader_listed(env->reader, &present) && present)
			return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "pcscd_helper: no card in %s after %d ms\n", env->reader, timeout_ms);
	return -1;
}

void pcscd_stop(struct pcscd_env *env)
{
	if (env->pid > 0) {
		kill(env->pid, SIGTERM);
		int status;
		pid_t r = 0;
		for (int i = 0; i < 100 && (r = waitpid(env->pid, &status, WNOHANG)) == 0; i++)
			sleep_ms(50);
		if (r == 0) {
			kill(env->pid, SIGKILL);
			waitpid(env->pid, &status, 0);
		}
		env->pid = -1;
	}
	if (strncmp(env->dir, OUR_DIR_PREFIX, strlen(OUR_DIR_PREFIX)) == 0) {
		char path[128];
		snprintf(path, sizeof path, "%s/conf/vpcd", env->dir);
		unlink(path);
		snprintf(path, sizeof path, "%s/conf", env->dir);
		rmdir(path);
		snprintf(path, sizeof path, "%s/pcscd.log", env->dir);
		unlink(path);
		rmdir(env->dir);
		env->dir[0] = '\0';
	}
	if (env->lock_fd >= 0) {
		close(env->lock_fd);
		env->lock_fd = -1;
	}
}
