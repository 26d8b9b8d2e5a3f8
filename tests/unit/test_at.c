/*
 * The "at" APDU driver (src/apdu/at.c) against a modem played by the test
 * on a pseudo-terminal: the test thread reads AT commands from the pty's
 * master side and answers AT+CCHO / AT+CGLA / AT+CCHC / AT+CSIM by
 * forwarding the APDUs to a real esim-euicc over its socket, as a modem
 * forwards them to its eUICC. Covers both modes (cgla, csim), the `esim`
 * program over --transport at, echo, and the failure cases: +CME ERROR,
 * a silent modem (timeout), a device that is not a modem, and a malformed
 * +CGLA answer.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#include <poll.h>
#include <stdatomic.h>

#include "euicc_harness.h"

enum modem_fault {
	FAULT_NONE = 0,
	FAULT_CCHO_CME, /* AT+CCHO answers +CME ERROR */
	FAULT_SILENT_CGLA,
	FAULT_MUTE,	/* answers nothing at all */
	FAULT_BAD_CGLA, /* length does not match the hex */
};

struct modem {
	int master;
	char slave[128];
	apdu_driver const *card_drv;
	void *card;
	pthread_t thr;
	atomic_bool stop;
	enum modem_fault fault;
	bool echo;
	bool bare_ccho; /* answer "<n>" instead of "+CCHO: <n>" */
	/* what was seen */
	int n_ccho, n_cgla, n_cchc, n_csim;
	char rx[70000];
	size_t rx_len;
};

static void m_send(struct modem *m, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(m->master, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Forward one APDU (hex) to the card; the response as hex (caller frees). */
static char *m_card(struct modem *m, const char *hex)
{
	size_t len;
	uint8_t *apdu = test_unhex(hex, &len);
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = m->card_drv->transmit(m->card, apdu, len, &r);
	free(apdu);
	char *out = err == ESIM_OK ? esim_hex_encode(r.data, r.len, true) : NULL;
	esim_buf_free(&r);
	return out;
}

static void m_reply_apdu(struct modem *m, const char *verb, const char *hex)
{
	char *resp = m_card(m, hex);
	if (resp == NULL) {
		m_send(m, "\r\nERROR\r\n");
		return;
	}
	char *line = malloc(strlen(resp) + 64);
	size_t n = strlen(resp) + (m->fault == FAULT_BAD_CGLA ? 2 : 0);
	sprintf(line, "\r\n+%s: %zu,\"%s\"\r\n\r\nOK\r\n", verb, n, resp);
	m_send(m, line);
	free(line);
	free(resp);
}

static void m_line(struct modem *m, char *line)
{
	if (m->fault == FAULT_MUTE)
		return;
	if (m->echo) {
		m_send(m, line);
		m_send(m, "\r\n");
	}
	if (strcmp(line, "AT") == 0 || strcmp(line, "ATE0") == 0) {
		m_send(m, "\r\nOK\r\n");
	} else if (strncmp(line, "AT+CCHO=\"", 9) == 0) {
		m->n_ccho++;
		if (m->fault == FAULT_CCHO_CME) {
			m_send(m, "\r\n+CME ERROR: 3\r\n");
			return;
		}
		char *aid = line + 9;
		aid[strcspn(aid, "\"")] = '\0';
		char *r = m_card(m, "0070000001");
		int ch = r != NULL && strlen(r) == 6
			     ? (int)strtol((char[3]){r[0], r[1], 0}, NULL, 16)
			     : -1;
		free(r);
		char sel[128];
		snprintf(sel, sizeof sel, "%02X A4 04 00 %02zX %s",
			 (unsigned)apdu_cla(0, (uint8_t)ch), strlen(aid) / 2, aid);
		/* remove spaces */
		char compact[128];
		size_t k = 0;
		for (char *p = sel; *p; p++)
			if (*p != ' ')
				compact[k++] = *p;
		compact[k] = '\0';
		r = ch > 0 ? m_card(m, compact) : NULL;
		bool ok = r != NULL && strlen(r) >= 4 && strcmp(r + strlen(r) - 4, "9000") == 0;
		free(r);
		char out[64];
		if (!ok)
			snprintf(out, sizeof out, "\r\n+CME ERROR: 4\r\n");
		else if (m->bare_ccho)
			snprintf(out, sizeof out, "\r\n%d\r\n\r\nOK\r\n", ch);
		else
			snprintf(out, sizeof out, "\r\n+CCHO: %d\r\n\r\nOK\r\n", ch);
		m_send(m, out);
	} else if (strncmp(line, "AT+CGLA=", 8) == 0) {
		m->n_cgla++;
		if (m->fault == FAULT_SILENT_CGLA)
			return;
		char *hex = strchr(line, '"');
		assert_non_null(hex);
		hex++;
		hex[strcspn(hex, "\"")] = '\0';
		/* the CLA must address the channel of the session id */
		int sid = atoi(line + 8);
		size_t len;
		uint8_t *apdu = test_unhex(hex, &len);
		uint8_t cla = apdu[0];
		free(apdu);
		int ch = (cla & 0x40) ? 4 + (cla & 0x0F) : (cla & 0x03);
		if (ch != sid) {
			m_send(m, "\r\n+CME ERROR: 21\r\n");
			return;
		}
		m_reply_apdu(m, "CGLA", hex);
	} else if (strncmp(line, "AT+CCHC=", 8) == 0) {
		m->n_cchc++;
		char close_apdu[16];
		snprintf(close_apdu, sizeof close_apdu, "007080%02X00", atoi(line + 8));
		free(m_card(m, close_apdu));
		m_send(m, "\r\nOK\r\n");
	} else if (strncmp(line, "AT+CSIM=", 8) == 0) {
		m->n_csim++;
		char *hex = strchr(line, '"');
		assert_non_null(hex);
		hex++;
		hex[strcspn(hex, "\"")] = '\0';
		m_reply_apdu(m, "CSIM", hex);
	} else {
		m_send(m, "\r\nERROR\r\n");
	}
}

static void *modem_main(void *arg)
{
	struct modem *m = arg;
	while (!atomic_load(&m->stop)) {
		struct pollfd p = {.fd = m->master, .events = POLLIN};
		int r = poll(&p, 1, 50);
		if (r <= 0)
			continue;
		if (p.revents & (POLLHUP | POLLERR)) {
			if (!(p.revents & POLLIN)) {
				usleep(10000); /* no slave open right now */
				continue;
			}
		}
		ssize_t got = read(m->master, m->rx + m->rx_len, sizeof m->rx - m->rx_len - 1);
		if (got <= 0) {
			usleep(10000);
			continue;
		}
		m->rx_len += (size_t)got;
		for (;;) {
			char *cr = memchr(m->rx, '\r', m->rx_len);
			if (cr == NULL)
				break;
			*cr = '\0';
			char *line = m->rx;
			while (*line == '\n')
				line++;
			if (*line != '\0')
				m_line(m, line);
			size_t used = (size_t)(cr - m->rx) + 1;
			memmove(m->rx, m->rx + used, m->rx_len - used);
			m->rx_len -= used;
		}
	}
	return NULL;
}

struct fixture {
	char *dir;
	char sock[600];
	pid_t euicc;
	struct modem m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = test_mkdtemp();
	char pki[600], db[600], log[600], listen[720];
	assert_true(strlen(f->dir) < 500);
	snprintf(pki, sizeof pki, "%s/pki", f->dir);
	snprintf(db, sizeof db, "%s/card.db", f->dir);
	snprintf(log, sizeof log, "%s/euicc.log", f->dir);
	snprintf(f->sock, sizeof f->sock, "%s/card.sock", f->dir);
	snprintf(listen, sizeof listen, "unix:%s", f->sock);
	h_pki_init(pki, H_EID);
	const char *args[] = {"--db", db, "--pki", pki, "--listen", listen, NULL};
	f->euicc = h_spawn_euicc(args, log);
	/* wait for the socket, then hold the card as the modem does */
	apdu_session *probe = h_connect_retry(f->sock, 20000);
	apdu_session_close(probe);
	f->m.card_drv = apdu_driver_find("socket");
	assert_esim(ESIM_OK, f->m.card_drv->open(listen, &f->m.card));
	f->m.master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(f->m.master >= 0);
	assert_int_equal(grantpt(f->m.master), 0);
	assert_int_equal(unlockpt(f->m.master), 0);
	snprintf(f->m.slave, sizeof f->m.slave, "%s", ptsname(f->m.master));
	*state = f;
	return 0;
}

static void start_modem(struct fixture *f)
{
	assert_int_equal(pthread_create(&f->m.thr, NULL, modem_main, &f->m), 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	atomic_store(&f->m.stop, true);
	pthread_join(f->m.thr, NULL);
	f->m.card_drv->close(f->m.card);
	close(f->m.master);
	kill(f->euicc, SIGTERM);
	waitpid(f->euicc, NULL, 0);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void get_eid(apdu_session *s)
{
	const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, get_eid, sizeof get_eid, &r));
	size_t n;
	uint8_t *want = test_unhex("BF3E125A10" H_EID, &n);
	assert_int_equal(r.len, n);
	assert_memory_equal(r.data, want, n);
	free(want);
	esim_buf_free(&r);
}

static void test_cgla_mode(void **state)
{
	struct fixture *f = *state;
	f->m.echo = true; /* the driver must skip echoed commands */
	start_modem(f);
	apdu_session *s = NULL;
	assert_esim(ESIM_OK, apdu_session_open("at", f->m.slave, NULL, &s));
	assert_int_equal(apdu_session_channel(s), 1);
	get_eid(s);
	/* a response longer than one short APDU: GetEUICCInfo2 via GET RESPONSE */
	const uint8_t info2[] = {0xBF, 0x22, 0x00};
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, info2, sizeof info2, &r));
	assert_true(r.len > 40);
	assert_int_equal(r.data[0], 0xBF);
	assert_int_equal(r.data[1], 0x22);
	esim_buf_free(&r);
	apdu_session_close(s);
	assert_int_equal(f->m.n_ccho, 1);
	assert_true(f->m.n_cgla >= 2);
	assert_int_equal(f->m.n_cchc, 1);
}

static void test_csim_mode(void **state)
{
	struct fixture *f = *state;
	start_modem(f);
	char spec[200];
	snprintf(spec, sizeof spec, "%s,mode=csim,baud=115200", f->m.slave);
	apdu_session *s = NULL;
	assert_esim(ESIM_OK, apdu_session_open("at", spec, NULL, &s));
	get_eid(s);
	apdu_session_close(s);
	assert_int_equal(f->m.n_ccho, 0);
	assert_int_equal(f->m.n_cgla, 0);
	assert_true(f->m.n_csim >= 3); /* MANAGE CHANNEL, SELECT, STORE DATA... */
}

static void test_bare_ccho_and_small_mss(void **state)
{
	struct fixture *f = *state;
	f->m.bare_ccho = true;
	start_modem(f);
	struct apdu_session_opts o = {.mss = 16};
	apdu_session *s = NULL;
	assert_esim(ESIM_OK, apdu_session_open("at", f->m.slave, &o, &s));
	get_eid(s);
	apdu_session_close(s);
}

/* the esim program over --transport at */
static void test_esim_chip_info(void **state)
{
	struct fixture *f = *state;
	start_modem(f);
	char cmd[1200], out[600];
	snprintf(out, sizeof out, "%s/out.json", f->dir);
	snprintf(cmd, sizeof cmd, "'%s/esim' chip info --transport at --device '%s' --json > '%s'",
		 test_bin_dir(), f->m.slave, out);
	assert_int_equal(system(cmd), 0);
	size_t len;
	uint8_t *text = test_read(out, &len);
	char *s = strndup((char *)text, len);
	assert_non_null(strstr(s, "\"eid\": \"" H_EID "\""));
	assert_non_null(strstr(s, "\"ok\": true"));
	free(s);
	free(text);
	/* the same through ESIM_TRANSPORT / ESIM_DEVICE */
	snprintf(cmd, sizeof cmd, "ESIM_TRANSPORT=at ESIM_DEVICE='%s' '%s/esim' chip info > '%s'",
		 f->m.slave, test_bin_dir(), out);
	assert_int_equal(system(cmd), 0);
	text = test_read(out, &len);
	s = strndup((char *)text, len);
	assert_non_null(strstr(s, H_EID));
	free(s);
	free(text);
}

static void test_cme_error(void **state)
{
	struct fixture *f = *state;
	f->m.fault = FAULT_CCHO_CME;
	start_modem(f);
	apdu_session *s = NULL;
	assert_esim(ESIM_E_APDU_SW, apdu_session_open("at", f->m.slave, NULL, &s));
	assert_null(s);
	assert_int_equal(f->m.n_ccho, 1);
	/* the esim program names the failure and exits with the card code */
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "'%s/esim' chip info --transport at --device '%s' 2>/dev/null",
		 test_bin_dir(), f->m.slave);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	f->m.fault = FAULT_SILENT_CGLA;
	start_modem(f);
	char spec[200];
	snprintf(spec, sizeof spec, "%s,timeout=300", f->m.slave);
	apdu_session *s = NULL;
	assert_esim(ESIM_OK, apdu_session_open("at", spec, NULL, &s));
	const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_E_APDU_TIMEOUT, apdu_es10_transmit(s, get_eid, sizeof get_eid, &r));
	esim_buf_free(&r);
	apdu_session_close(s);
}

static void test_not_a_modem(void **state)
{
	struct fixture *f = *state;
	f->m.fault = FAULT_MUTE;
	start_modem(f);
	char spec[200];
	snprintf(spec, sizeof spec, "%s,timeout=200", f->m.slave);
	apdu_session *s = NULL;
	assert_esim(ESIM_E_APDU_NO_READER, apdu_session_open("at", spec, NULL, &s));
	assert_esim(ESIM_E_APDU_NO_READER,
		    apdu_session_open("at", "/nonexistent/ttyUSB9", NULL, &s));
	assert_esim(ESIM_E_ARG, apdu_session_open("at", "/dev/null,baud=12", NULL, &s));
	assert_esim(ESIM_E_ARG, apdu_session_open("at", "/dev/null,mode=qmi", NULL, &s));
}

static void test_malformed_answer(void **state)
{
	struct fixture *f = *state;
	f->m.fault = FAULT_BAD_CGLA;
	start_modem(f);
	apdu_session *s = NULL;
	/* SELECT goes through CCHO; the first CGLA answer is malformed */
	assert_esim(ESIM_OK, apdu_session_open("at", f->m.slave, NULL, &s));
	const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_E_APDU_FRAME, apdu_es10_transmit(s, get_eid, sizeof get_eid, &r));
	esim_buf_free(&r);
	apdu_session_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cgla_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_csim_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bare_ccho_and_small_mss, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_esim_chip_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cme_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_modem, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_answer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
