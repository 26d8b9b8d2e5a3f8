/*
 * Start and stop a private pcscd with vsmartcard's vpcd driver, for tests
 * that reach a (virtual) card through real PC/SC.
 *
 * pcscd is one daemon per machine (its socket /run/pcscd/pcscd.comm is fixed),
 * so tests that use it are serialised with an flock on PCSCD_HELPER_LOCK for
 * the whole time between pcscd_start() and pcscd_stop(). pcscd_start():
 *   - takes the lock (waits up to 5 minutes for other PC/SC tests);
 *   - kills a pcscd left over by an earlier, crashed run of these tests
 *     (recognised by its config dir /tmp/esimkit-pcscd.*), and removes
 *     stale /run/pcscd files with no live daemon behind them;
 *   - starts /usr/sbin/pcscd -f -c DIR as its child, DIR holding one vpcd
 *     reader "esimkit vpcd" on two free TCP ports P and P+1 (vpcd opens two
 *     slots per reader: "esimkit vpcd 00 00" on P, "... 00 01" on P+1);
 *   - or, when a pcscd that is not ours already runs (a developer's system
 *     daemon), uses its stock vpcd reader ("Virtual PCD", port 35963) if it
 *     has one with no card in it, and skips otherwise.
 * The card side then connects to 127.0.0.1:env->port (euicc_serve_vpcd), and
 * pcscd_wait_card() waits until PC/SC sees the card in env->reader.
 */
#ifndef ESIM_PCSCD_HELPER_H
#define ESIM_PCSCD_HELPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PCSCD_HELPER_LOCK "/tmp/esimkit-pcscd.lock"

struct pcscd_env {
	pid_t pid;	 /* our pcscd child; -1 when a foreign daemon is used */
	int lock_fd;	 /* the flock held until pcscd_stop */
	uint16_t port;	 /* vpcd port the virtual card connects to */
	char reader[64]; /* full PC/SC name of the reader the card appears in */
	char dir[64];	 /* temp dir with the reader config and pcscd.log */
	bool external;	 /* a pcscd not started by us is used */
	char why[200];	 /* after 77: why PC/SC cannot be tested here */
};

/* 0 when pcscd runs with a vpcd reader on env->port; 77 when PC/SC cannot
 * be tested here (not root, pcscd or the vpcd driver missing, a foreign
 * daemon without a free vpcd reader), with the reason in env->why for
 * test_component_missing() (testutil.h: skip, or fail under CI=true);
 * -1 on failure (message on stderr). On 0 or -1, call pcscd_stop(). */
int pcscd_start(struct pcscd_env *env);
/* Wait until PC/SC reports a card in env->reader: 0, or -1 after timeout_ms. */
int pcscd_wait_card(const struct pcscd_env *env, int timeout_ms);
/* Stop our pcscd (SIGTERM, then SIGKILL), remove the temp dir, drop the
 * lock. Safe to call twice and after a failed start. */
void pcscd_stop(struct pcscd_env *env);

#endif
