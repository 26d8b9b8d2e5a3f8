/*
 * Crash test of the virtual eUICC's durability (ARCHITECTURE.md: "every
 * install, enable, disable and delete commits atomically"). The real
 * esim-euicc program runs as a child on a unix socket; the test drives 200
 * profile installs and deletes through it (full downloads: authentication,
 * PrepareDownload, the BPP) and SIGKILLs it after random delays, i.e. at
 * random points of a download or a delete, including inside SQLite commits.
 * After every kill, before the restart, the database is opened and checked:
 * every profile is whole (its package present and a valid SAIP package
 * whose header ICCID matches the profile's and its metadata's), at most one
 * is enabled, every profile has the successful PIR of its install queued
 * (same ICCID and AID, so no profile exists without its notification or
 * the other way round), notification seqNumbers are unique, increasing and
 * not above the persistent counter. Then the program is restarted on the
 * same database and must answer GetProfilesInfo.
 */
#include <time.h>

#include "euicc_harness.h"

#include "esim/store.h"

#define OPS	 200
#define N_ICCIDS 8

static char iccids[N_ICCIDS][24];

struct killer {
	pid_t pid;
	int delay_us;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;
	usleep((useconds_t)k->delay_us);
	kill(k->pid, SIGKILL);
	return NULL;
}

static esim_err xfer(apdu_session *s, const uint8_t *cmd, size_t len, esim_buf *r)
{
	r->len = 0;
	return apdu_es10_transmit(s, cmd, len, r);
}

/* One download without assertions on the transport: an error return means
 * the card went away. */
static esim_err try_install(apdu_session *s, struct h_smdp *d, int which)
{
	esim_buf r = ESIM_BUF_INIT;
	uint8_t *req = NULL, *upp = NULL, *meta = NULL, *bpp = NULL;
	size_t len, ul, ml, bl;
	der_span *chunks = NULL;
	size_t n_chunks = 0;
	esim_err err = xfer(s, (const uint8_t *)"\xBF\x2E\x00", 3, &r);
	if (err != ESIM_OK)
		goto out;
	assert_int_equal(r.len, 21);
	uint8_t ch[16];
	memcpy(ch, r.data + 5, 16);
	h_auth_req(d, ch, 0, false, &req, &len);
	err = xfer(s, req, len, &r);
	free(req);
	req = NULL;
	if (err != ESIM_OK)
		goto out;
	struct rsp_auth_server_resp ar;
	memset(&ar, 0, sizeof ar);
	struct rsp_auth_expect ex = {
	    .trust = d->trust, .txid = &d->txid, .server_challenge = d->server_challenge};
	assert_esim(ESIM_OK, rsp_auth_server_resp_verify(r.data, r.len, &ex, &ar));
	memcpy(d->euicc_sig1, ar.euicc_signature1, RSP_SIG_LEN);
	EVP_PKEY_free(d->euicc_pub);
	d->euicc_pub = ar.euicc_pub;
	ar.euicc_pub = NULL;
	rsp_auth_server_resp_clear(&ar);

	h_prepare_req(d, false, NULL, NULL, 0, &req, &len);
	err = xfer(s, req, len, &r);
	if (err != ESIM_OK)
		goto out;
	struct rsp_prepare_download_resp pr;
	assert_esim(ESIM_OK, rsp_prepare_download_resp_verify(r.data, r.len, d->euicc_pub, &d->txid,
							      d->smdp_sig2, NULL, &pr));
	memcpy(d->otpk, pr.otpk, RSP_OTPK_LEN);

	assert_esim(ESIM_OK, rsp_saip_make_test_upp(iccids[which], &upp, &ul));
	h_metadata(iccids[which], 2, 0, NULL, &meta, &ml);
	h_build_bpp(d, &d->txid, meta, ml, upp, ul, NULL, &bpp, &bl);
	assert_esim(ESIM_OK, rsp_bpp_split(bpp, bl, &chunks, &n_chunks));
	for (size_t i = 0; i < n_chunks && err == ESIM_OK; i++) {
		err = xfer(s, chunks[i].p, chunks[i].len, &r);
		if (err == ESIM_OK && r.len > 0) {
			struct rsp_pir pir;
			assert_esim(ESIM_OK,
				    rsp_pir_verify(r.data, r.len, d->euicc_pub, d->oid, &pir));
			/* success, or 9 when our view of what is installed was stale */
			assert_true(pir.success || pir.error_reason == 9);
			rsp_pir_free(&pir);
			break;
		}
	}
out:
	free(req);
	free(upp);
	free(meta);
	free(bpp);
	free(chunks);
	esim_buf_free(&r);
	return err;
}

static esim_err try_delete(apdu_session *s, int which)
{
	uint8_t cmd[15] = {0xBF, 0x33, 0x0C, 0x5A, 0x0A};
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccids[which], cmd + 5));
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = xfer(s, cmd, sizeof cmd, &r);
	esim_buf_free(&r);
	return err;
}

/* Which of our ICCIDs the card lists (GetProfilesInfo over APDUs). */
static void installed_set(apdu_session *s, bool installed[N_ICCIDS])
{
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, xfer(s, (const uint8_t *)"\xBF\x2D\x03\x5C\x01\x5A", 6, &r));
	memset(installed, 0, N_ICCIDS * sizeof installed[0]);
	der_cursor c, v, list, info;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2D, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	while (!der_cursor_empty(&list)) {
		der_span iccid;
		assert_esim(ESIM_OK, der_get_element(&list, 0xE3, &info));
		assert_esim(ESIM_OK, der_get_octet_string(&info, 0x5A, &iccid));
		bool known = false;
		for (int i = 0; i < N_ICCIDS; i++) {
			uint8_t bcd[10];
			assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccids[i], bcd));
			if (iccid.len == 10 && memcmp(bcd, iccid.p, 10) == 0)
				installed[i] = known = true;
		}
		assert_true(known);
	}
	esim_buf_free(&r);
}

struct pir_seen {
	uint8_t iccid[10];
	uint8_t aid[16];
};

/* The database as the killed program left it. */
static void check_db(const char *db)
{
	store *st = NULL;
	assert_esim(ESIM_OK, store_open(db, &st));
	store_stmt *q = NULL;
	bool row;
	int64_t counter = -1;
	assert_esim(ESIM_OK,
		    store_prepare(st, "SELECT value FROM counters WHERE name = 'seq'", &q));
	assert_esim(ESIM_OK, store_step(q, &row));
	assert_true(row);
	counter = store_col_int64(q, 0);
	store_finalize(q);

	/* notifications: unique, increasing, well formed; collect the PIRs */
	struct pir_seen pirs[OPS + 16];
	size_t n_pirs = 0;
	int64_t last = 0;
	assert_esim(ESIM_OK, store_prepare(
				 st, "SELECT seq, meta, data FROM notifications ORDER BY seq", &q));
	for (;;) {
		assert_esim(ESIM_OK, store_step(q, &row));
		if (!row)
			break;
		int64_t seq = store_col_int64(q, 0);
		assert_true(seq > last && seq <= counter);
		last = seq;
		size_t ml, dl;
		const uint8_t *m = store_col_blob(q, 1, &ml);
		const uint8_t *d = store_col_blob(q, 2, &dl);
		struct rsp_notif_metadata nm;
		assert_esim(ESIM_OK, rsp_notif_metadata_decode(m, ml, &nm));
		assert_int_equal(nm.seq, (uint64_t)seq);
		rsp_notif_metadata_free(&nm);
		struct rsp_pir pir;
		assert_esim(ESIM_OK, rsp_pir_parse(d, dl, &pir));
		assert_int_equal(pir.meta.seq, (uint64_t)seq);
		if (pir.success) {
			assert_true(n_pirs < sizeof pirs / sizeof pirs[0]);
			memcpy(pirs[n_pirs].iccid, pir.meta.iccid, 10);
			memcpy(pirs[n_pirs].aid, pir.aid, 16);
			n_pirs++;
		}
		rsp_pir_free(&pir);
	}
	store_finalize(q);

	/* profiles: whole, consistent, each with its PIR */
	int enabled = 0;
	assert_esim(ESIM_OK,
		    store_prepare(st, "SELECT iccid, aid, state, metadata, upp FROM profiles", &q));
	for (;;) {
		assert_esim(ESIM_OK, store_step(q, &row));
		if (!row)
			break;
		size_t il, al, ml, ul;
		const uint8_t *iccid = store_col_blob(q, 0, &il);
		const uint8_t *aid = store_col_blob(q, 1, &al);
		enabled += (int)store_col_int64(q, 2);
		const uint8_t *meta = store_col_blob(q, 3, &ml);
		const uint8_t *upp = store_col_blob(q, 4, &ul);
		assert_int_equal(il, 10);
		assert_int_equal(al, 16);
		struct rsp_saip_info info;
		assert_esim(ESIM_OK, rsp_saip_check(upp, ul, &info));
		uint8_t hdr[10];
		assert_esim(ESIM_OK, rsp_iccid_to_bcd(info.iccid, hdr));
		assert_memory_equal(hdr, iccid, 10);
		struct rsp_metadata md;
		assert_esim(ESIM_OK, rsp_metadata_decode(meta, ml, &md));
		assert_memory_equal(md.iccid, iccid, 10);
		rsp_metadata_free(&md);
		bool has_pir = false;
		for (size_t i = 0; i < n_pirs; i++)
			if (memcmp(pirs[i].iccid, iccid, 10) == 0 &&
			    memcmp(pirs[i].aid, aid, 16) == 0)
				has_pir = true;
		assert_true(has_pir);
	}
	store_finalize(q);
	assert_true(enabled <= 1);
	store_close(st);
}

static void test_crash_during_installs_and_deletes(void **state)
{
	(void)state;
	unsigned seed = (unsigned)time(NULL);
	srand(seed);
	printf("crash test seed %u\n", seed);
	for (int i = 0; i < N_ICCIDS; i++)
		snprintf(iccids[i], sizeof iccids[i], "8900012345678901%04d", i * 11 + 3);

	char *dir = test_mkdtemp();
	char pki[600], db[600], sock[600], log[600];
	snprintf(pki, sizeof pki, "%s/pki", dir);
	snprintf(db, sizeof db, "%s/card.db", dir);
	snprintf(sock, sizeof sock, "%s/card.sock", dir);
	snprintf(log, sizeof log, "%s/euicc.log", dir);
	h_pki_init(pki, H_EID);
	struct h_smdp dp;
	h_smdp_from_pki(&dp, pki, "nist");
	char listen[700];
	snprintf(listen, sizeof listen, "unix:%s", sock);
	const char *args[] = {"--db",  db,  "--pki", pki, "--listen", listen, "--max-notifications",
			      "50000", NULL};

	int ops = 0, kills = 0, completed = 0;
	time_t start = time(NULL);
	while (ops < OPS) {
		pid_t pid = h_spawn_euicc(args, log);
		apdu_session *s = h_connect_retry(sock, 10000);
		bool installed[N_ICCIDS];
		installed_set(s, installed); /* the restarted card answers */
		struct killer k = {pid, 1000 + rand() % 60000};
		pthread_t thr;
		assert_int_equal(pthread_create(&thr, NULL, kill_later, &k), 0);
		for (;;) {
			int which = rand() % N_ICCIDS;
			esim_err err;
			if (installed[which]) {
				err = try_delete(s, which);
				installed[which] = err != ESIM_OK;
			} else {
				err = try_install(s, &dp, which);
				installed[which] = err == ESIM_OK;
			}
			ops++;
			if (err != ESIM_OK)
				break; /* killed */
			completed++;
		}
		pthread_join(thr, NULL);
		apdu_session_close(s);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		kills++;
		unlink(sock); /* the killed program could not remove it */
		check_db(db);
		assert_true(time(NULL) - start < 120);
	}
	/* a last clean start: the card answers and the state is consistent */
	pid_t pid = h_spawn_euicc(args, log);
	apdu_session *s = h_connect_retry(sock, 10000);
	bool installed[N_ICCIDS];
	installed_set(s, installed);
	apdu_session_close(s);
	kill(pid, SIGTERM);
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_db(db);
	printf("crash test: %d operations (%d completed), %d kills, %lds\n", ops, completed, kills,
	       (long)(time(NULL) - start));
	assert_true(completed > 0);
	h_smdp_free(&dp);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_during_installs_and_deletes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
