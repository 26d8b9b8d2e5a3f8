/*
 * No impostors (intake.c): staff open a termination for a customer who
 * phones or walks in only after the call-back verification: the code goes
 * to the contact details on file (never to staff), the customer reads it
 * back, and only a verified call-back of that staff member, for a line of
 * that customer, in time and once, opens the case. Without a call-back,
 * with another customer's, expired, after too many wrong codes, or by
 * another staff member: refused and audited. Notices and letters carry a
 * verification reference that "Was this really us?" confirms; a letter is
 * a printable page. Contracts: the notice period per line, and leased
 * equipment not yet received back keeps a case from approval. On SQLite
 * and PostgreSQL.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "op_portal_fixture.h"

extern char **environ;

/* The customer's inbox (the maildir the e-mail is delivered to): the
 * call-back code in the newest e-mail to them. The store no longer has it
 * (test_code_erased). */
static void read_code(struct fx *f, int64_t cust, char code[16])
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT login FROM op_customers WHERE id = ?1", &st));
	store_bind_int64(st, 1, cust);
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	char to[200];
	snprintf(to, sizeof to, "\nTo: %s\n", store_col_text(st, 0));
	store_finalize(st);
	store_close(s);
	char dir[700];
	snprintf(dir, sizeof dir, "%s/mail/new", f->dir);
	DIR *d = opendir(dir);
	assert_non_null(d);
	long long best = -1;
	code[0] = '\0';
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		long long at, id;
		if (sscanf(e->d_name, "%lld.%lld.", &at, &id) != 2 || id <= best)
			continue;
		char p[1000];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		size_t len = 0;
		uint8_t *b = test_read(p, &len);
		assert_non_null(b);
		char *t = strndup((const char *)b, len);
		free(b);
		const char *c = strstr(t, "staff member: ");
		if (strstr(t, to) && c) {
			best = id;
			snprintf(code, 16, "%.9s", c + strlen("staff member: "));
		}
		free(t);
	}
	closedir(d);
	assert_int_equal(9, strlen(code));
	assert_int_equal('-', code[4]);
}

/* The stored notices (e-mail and SMS rows) of customer that hold text. */
static int64_t stored_with(struct fx *f, int64_t cust, const char *text)
{
	char q[300];
	snprintf(q, sizeof q,
		 "SELECT COUNT(*) FROM op_notices WHERE customer_id = %lld AND"
		 " body LIKE '%%%s%%'",
		 (long long)cust, text);
	return qint(f, q);
}

static int64_t start(struct fx *f, int64_t cust)
{
	char b[64];
	snprintf(b, sizeof b, "{\"customer_id\":%lld}", (long long)cust);
	json_t *j;
	assert_int_equal(201, call(f, "POST", "/api/staff/intake/start", NULL, b, &j));
	/* the code never reaches staff */
	char *t = json_dumps(j, 0);
	assert_null(strstr(t, "code"));
	free(t);
	int64_t id = jint(j, "intake_id");
	json_decref(j);
	return id;
}

static int verify(struct fx *f, int64_t id, const char *code, json_t **out)
{
	char b[128];
	snprintf(b, sizeof b, "{\"intake_id\":%lld,\"code\":\"%s\"}", (long long)id, code);
	return call(f, "POST", "/api/staff/intake/verify", NULL, b, out);
}

/* POST /api/staff/intake/case; intake < 0: none given. */
static int open_case(struct fx *f, int64_t intake, int64_t line, json_t **out)
{
	char b[300], iv[40] = "";
	if (intake >= 0)
		snprintf(iv, sizeof iv, "\"intake_id\":%lld,", (long long)intake);
	snprintf(b, sizeof b,
		 "{%s\"line_id\":%lld,\"reason\":\"customer phoned: moving abroad\","
		 "\"document_type\":\"passport\",\"document_number\":\"EP123456\"}",
		 iv, (long long)line);
	return call(f, "POST", "/api/staff/intake/case", NULL, b, out);
}

static const char *err_of(json_t *j)
{
	static char e[40];
	snprintf(e, sizeof e, "%s", jstr(j, "error") ? jstr(j, "error") : "");
	json_decref(j);
	return e;
}

static int64_t cases(struct fx *f)
{
	return qint(f, "SELECT COUNT(*) FROM op_cases");
}

/* No call-back, or one the customer has not confirmed: no case. */
static void test_no_callback(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_reviewer(f);
	json_t *j;
	assert_int_equal(403, open_case(f, -1, 1, &j));
	assert_string_equal("no_callback", err_of(j));
	assert_int_equal(403, open_case(f, 999, 1, &j));
	assert_string_equal("no_such_intake", err_of(j));
	int64_t id = start(f, 1);
	assert_int_equal(403, open_case(f, id, 1, &j));
	assert_string_equal("not_verified", err_of(j));
	assert_int_equal(0, cases(f));
	assert_int_equal(3,
			 qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'intake.refused'"));
	/* customers cannot call these */
	login_jan(f);
	assert_int_equal(403, open_case(f, id, 1, NULL));
	assert_int_equal(
	    403, call(f, "POST", "/api/staff/intake/start", NULL, "{\"customer_id\":1}", NULL));
}

/* The whole way, and every step audited; the reference of the call-back
 * notice and of the final-invoice letter are genuine, the letter prints. */
static void test_callback_opens_case(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_jan(f);
	assert_int_equal(200,
			 call(f, "POST", "/api/invoices/pay", NULL, "{\"invoice_id\":1}", NULL));
	login_reviewer(f);
	int64_t id = start(f, 1);
	char code[16];
	read_code(f, 1, code);
	json_t *j;
	assert_int_equal(403, verify(f, id, "ZZZZ-ZZZZ", &j));
	assert_int_equal(2, jint(j, "attempts_left"));
	json_decref(j);
	/* read back in lower case without the dash: still the code */
	char typed[16];
	snprintf(typed, sizeof typed, "%.4s%s", code, code + 5);
	for (char *p = typed; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	assert_int_equal(200, verify(f, id, typed, &j));
	assert_string_equal("verified", jstr(j, "state"));
	json_decref(j);
	assert_int_equal(201, open_case(f, id, 1, &j));
	json_t *c = json_object_get(j, "case");
	assert_string_equal("submitted", jstr(c, "state"));
	assert_non_null(strstr(jstr(c, "reason"), "assisted intake"));
	json_decref(j);
	/* once only */
	assert_int_equal(409, open_case(f, id, 1, &j));
	assert_string_equal("already_used", err_of(j));
	assert_int_equal(1, cases(f));
	static const char *const steps[] = {"intake.start", "intake.mismatch", "intake.verified",
					    "intake.case", "intake.refused"};
	for (size_t i = 0; i < 5; i++) {
		char q[120];
		snprintf(q, sizeof q, "SELECT COUNT(*) FROM op_audit WHERE action = '%s'",
			 steps[i]);
		assert_int_equal(1, qint(f, q));
	}
	int64_t entries = 0, bad = 0;
	assert_esim(ESIM_OK, op_audit_verify(f->o, &entries, &bad));
	/* the call-back notice's reference checks out */
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(s, "SELECT notice_ref FROM op_intake WHERE id = ?1", &st));
	store_bind_int64(st, 1, id);
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	char ref[32], b[96];
	snprintf(ref, sizeof ref, "%s", store_col_text(st, 0));
	store_finalize(st);
	store_close(s);
	snprintf(b, sizeof b, "{\"reference\":\"%s\"}", ref);
	assert_int_equal(200, call(f, "POST", "/api/reference/check", NULL, b, &j));
	assert_true(json_is_true(json_object_get(j, "genuine")));
	assert_string_equal("email+sms", jstr(j, "channel"));
	json_decref(j);
	/* approved: Jan's line never had a profile, the case closes with the
	 * final invoice, sent as a letter */
	assert_int_equal(200,
			 call(f, "POST", "/api/staff/case/approve", NULL, "{\"case_id\":1}", NULL));
	int64_t letter = qint(f, "SELECT id FROM op_notices WHERE channel = 'letter'");
	assert_true(letter > 0);
	char q[40];
	snprintf(q, sizeof q, "id=%lld", (long long)letter);
	assert_int_equal(200, call(f, "GET", "/api/staff/letter", q, NULL, NULL));
	login_sofie(f);
	assert_int_equal(404, call(f, "GET", "/api/letter", q, NULL, NULL));
	login_jan(f);
	struct net_header h[2] = {{"Cookie", f->cookie}, {"X-CSRF-Token", f->csrf}};
	net_request req = {.method = "GET",
			   .path = "/api/letter",
			   .query = q,
			   .headers = h,
			   .n_headers = 2,
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, f->o));
	assert_int_equal(200, resp.status);
	char *page = strndup((const char *)resp.body.data, resp.body.len);
	net_response_clear(&resp);
	assert_non_null(strstr(page, "Final invoice"));
	char *r = strstr(page, "Verification reference: ");
	assert_non_null(r);
	snprintf(ref, sizeof ref, "%.12s", r + strlen("Verification reference: "));
	free(page);
	snprintf(b, sizeof b, "{\"reference\":\"%s\"}", ref);
	assert_int_equal(200, call(f, "POST", "/api/reference/check", NULL, b, &j));
	assert_true(json_is_true(json_object_get(j, "genuine")));
	assert_string_equal("letter", jstr(j, "channel"));
	json_decref(j);
}

/* The call-back code is in the customer's mailbox, not in the store: once
 * the e-mail is delivered, its stored copy and the SMS row say "****-****"
 * (the rest of the text and the reference stay); the code still verifies. */
static void test_code_erased(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_reviewer(f);
	int64_t id = start(f, 1);
	char code[16];
	read_code(f, 1, code);
	assert_int_equal(0, stored_with(f, 1, code));
	char bare[16];
	snprintf(bare, sizeof bare, "%.4s%s", code, code + 5);
	assert_int_equal(0, stored_with(f, 1, bare));
	assert_int_equal(2, stored_with(f, 1, "staff member: ****-**** (valid 10"));
	assert_int_equal(2, stored_with(f, 1, "Verification reference: OP-"));
	assert_int_equal(2, qint(f, "SELECT COUNT(*) FROM op_notices n JOIN op_intake i ON"
				    " i.notice_ref = n.reference"));
	/* nor in the audit log */
	char q[200];
	snprintf(q, sizeof q, "SELECT COUNT(*) FROM op_audit WHERE data LIKE '%%%s%%'", code);
	assert_int_equal(0, qint(f, q));
	json_t *j;
	assert_int_equal(200, verify(f, id, code, &j));
	assert_string_equal("verified", jstr(j, "state"));
	json_decref(j);
}

static bool missing_smtp;
static char smtp_why[200];

/* The same through the SMTP outbox (mail.c), with a real server on loopback
 * (smtp_server.py, as test_operator_smtp): the e-mail waiting in the outbox
 * keeps the code (it is what will be sent), the SMS row has lost it; once
 * delivered, no stored copy holds it, the delivered message does. */
static void test_code_erased_smtp(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	if (system("/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null") != 0) {
		snprintf(smtp_why, sizeof smtp_why, "python3-aiosmtpd is not installed");
		missing_smtp = true;
		skip();
	}
	/* a free port on loopback */
	int so = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(0, bind(so, (struct sockaddr *)&sa, sizeof sa));
	socklen_t sl = sizeof sa;
	getsockname(so, (struct sockaddr *)&sa, &sl);
	close(so);
	char port[16], script[700], out[700], ready[700], cert[700], key[700];
	snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
	snprintf(script, sizeof script, "%s/tests/unit/smtp_server.py", test_source_dir());
	snprintf(out, sizeof out, "%s/inbox", f->dir);
	mkdir(out, 0700);
	snprintf(ready, sizeof ready, "%s/smtp.ready", f->dir);
	snprintf(cert, sizeof cert, "%s/dptls.pem", f->pki);
	snprintf(key, sizeof key, "%s/dptls.key.pem", f->pki);
	char *argv[] = {"/usr/bin/python3", script,	  "--port",	port,	     "--out", out,
			"--ready",	    ready,	  "--cert",	cert,	     "--key", key,
			"--user",	    "care-relay", "--password", "s3cret pw", NULL};
	pid_t pid;
	assert_int_equal(0, posix_spawn(&pid, argv[0], NULL, NULL, argv, environ));
	for (int i = 0; i < 200 && access(ready, F_OK) != 0; i++)
		usleep(50000);
	assert_int_equal(0, access(ready, F_OK));
	/* the handle again, delivering through the server */
	op_charging_free(f->ch);
	f->ch = NULL;
	op_close(f->o);
	char pwf[700], dk[700], okey[700], ocert[700], ca[700];
	snprintf(pwf, sizeof pwf, "%s/smtp.pw", f->dir);
	FILE *fp = fopen(pwf, "w");
	fputs("s3cret pw\n", fp);
	fclose(fp);
	chmod(pwf, 0600);
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	snprintf(okey, sizeof okey, "%s/operator.key.pem", f->pki);
	snprintf(ocert, sizeof ocert, "%s/operator.pem", f->pki);
	snprintf(ca, sizeof ca, "%s/ci.pem", f->pki);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.key_file = okey,
				.cert_file = ocert,
				.data_key_file = dk,
				.smtp_host = "127.0.0.1",
				.smtp_port = (uint16_t)atoi(port),
				.smtp_user = "care-relay",
				.smtp_password_file = pwf,
				.smtp_from = "care@operator.example",
				.smtp_ca = ca,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
	struct op_charging_config cc = {.client_cert_file = ocert};
	assert_esim(ESIM_OK, op_charging_new(f->o, &cc, &f->ch));

	login_reviewer(f);
	int64_t id = start(f, 1);
	/* waiting in the outbox: the e-mail row is what will be sent */
	assert_int_equal(1, stored_with(f, 1, "staff member: ****-**** (valid 10"));
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_notices n JOIN op_intake i ON"
				    " i.notice_ref = n.reference WHERE n.channel = 'email' AND"
				    " n.sent = 0 AND n.body NOT LIKE '%****-****%'"));
	size_t sent = 0, failed = 9;
	assert_esim(ESIM_OK, op_mail_deliver(f->o, &sent, &failed));
	assert_true(sent >= 1);
	assert_int_equal(0, failed);
	assert_int_equal(2, stored_with(f, 1, "staff member: ****-**** (valid 10"));
	/* the code as delivered: the newest message in the server's folder */
	char code[16] = "";
	for (int n = 1;; n++) {
		char p[800];
		snprintf(p, sizeof p, "%s/%d.eml", out, n);
		if (access(p, F_OK) != 0)
			break;
		size_t len = 0;
		uint8_t *b = test_read(p, &len);
		char *t = strndup((const char *)b, len);
		free(b);
		const char *c = strstr(t, "staff member: ");
		if (c)
			snprintf(code, sizeof code, "%.9s", c + strlen("staff member: "));
		free(t);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	assert_int_equal(9, strlen(code));
	assert_int_equal(0, stored_with(f, 1, code));
	json_t *j;
	assert_int_equal(200, verify(f, id, code, &j));
	json_decref(j);
}

/* Another customer's call-back opens nothing on this customer's line; one
 * customer's code does not verify another's call-back. */
static void test_other_customers_callback(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_reviewer(f);
	int64_t sofie = start(f, 2);
	char sc[16];
	read_code(f, 2, sc);
	int64_t jan = start(f, 1);
	json_t *j;
	assert_int_equal(403, verify(f, jan, sc, &j));
	assert_string_equal("code_mismatch", err_of(j));
	assert_int_equal(200, verify(f, sofie, sc, NULL));
	assert_int_equal(403, open_case(f, sofie, 1, &j)); /* line 1 is Jan's */
	assert_string_equal("other_customer", err_of(j));
	assert_int_equal(0, cases(f));
	/* her own line: fine */
	assert_int_equal(201, open_case(f, sofie, 2, NULL));
}

/* Expired, too many wrong codes, too late to use, another staff member. */
static void test_limits(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_reviewer(f);
	char code[16];
	json_t *j;
	int64_t a = start(f, 1);
	read_code(f, 1, code);
	f->clock += 601;
	assert_int_equal(409, verify(f, a, code, &j));
	assert_string_equal("expired", err_of(j));
	int64_t b = start(f, 1);
	read_code(f, 1, code);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(403, verify(f, b, "AAAA-AAAA", &j));
		assert_int_equal(2 - i, jint(j, "attempts_left"));
		json_decref(j);
	}
	assert_int_equal(409, verify(f, b, code, &j));
	assert_string_equal("failed", err_of(j));
	int64_t c = start(f, 1);
	read_code(f, 1, code);
	login(f, true, "admin", "admin-demo-2026");
	assert_int_equal(403, verify(f, c, code, &j));
	assert_string_equal("other_staff", err_of(j));
	login_reviewer(f);
	assert_int_equal(200, verify(f, c, code, NULL));
	login(f, true, "admin", "admin-demo-2026");
	assert_int_equal(403, open_case(f, c, 1, &j));
	assert_string_equal("other_staff", err_of(j));
	login_reviewer(f);
	f->clock += 31 * 60;
	login_reviewer(f); /* the session outlived too */
	assert_int_equal(409, open_case(f, c, 1, &j));
	assert_string_equal("expired", err_of(j));
	assert_int_equal(0, cases(f));
	assert_int_equal(3, qint(f, "SELECT COUNT(*) FROM op_intake WHERE state IN ('expired',"
				    " 'failed', 'verified')"));
}

static json_t *queue_checks(struct fx *f)
{
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/staff/queue", NULL, NULL, &j));
	json_t *k =
	    json_incref(json_object_get(json_array_get(json_object_get(j, "cases"), 0), "checks"));
	json_decref(j);
	return k;
}

/* The notice period is the contract's; leased equipment due keeps the
 * case from being ready to approve, and from approval, until received. */
static void test_contract_and_equipment(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	assert_esim(ESIM_E_ARG, op_set_contract(f->o, 2, 400, "prorated"));
	assert_esim(ESIM_E_ARG, op_set_contract(f->o, 2, 60, "whenever"));
	assert_esim(ESIM_OK, op_set_contract(f->o, 2, 60, "prorated"));
	int64_t eq = 0;
	assert_esim(ESIM_OK, op_add_equipment(f->o, 2, "Set-top box (leased)", "2026-12-31",
					      "RET-2026-0042", &eq));
	login_sofie(f);
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/lines/precheck", "id=2", NULL, &j));
	assert_int_equal(60, jint(j, "notice_period_days"));
	assert_string_equal("2026-11-20", jstr(j, "earliest_end"));
	json_t *items = json_object_get(j, "leased_equipment");
	assert_int_equal(2, json_array_size(items));
	assert_string_equal("RET-2026-0042", jstr(json_array_get(items, 1), "return_ref"));
	assert_false(json_is_true(json_object_get(json_array_get(items, 1), "received")));
	json_decref(j);
	assert_int_equal(201,
			 call(f, "POST", "/api/cases", NULL,
			      "{\"line_id\":2,\"reason\":\"moving\",\"document_type\":\"id_card\","
			      "\"document_number\":\"592\",\"document_copy\":"
			      "\"JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK\"}",
			      NULL));
	login_reviewer(f);
	json_t *k = queue_checks(f);
	assert_false(json_is_true(json_object_get(k, "can_approve")));
	assert_string_equal("equipment_due",
			    json_string_value(json_array_get(json_object_get(k, "blocking"), 0)));
	assert_int_equal(60, jint(k, "notice_period_days"));
	json_decref(k);
	assert_int_equal(409,
			 call(f, "POST", "/api/staff/case/approve", NULL, "{\"case_id\":1}", &j));
	assert_string_equal("equipment_due", jstr(j, "message"));
	json_decref(j);
	char b[120];
	snprintf(b, sizeof b, "{\"equipment_id\":%lld,\"return_ref\":\"RET-2026-9999\"}",
		 (long long)eq);
	assert_int_equal(409, call(f, "POST", "/api/staff/equipment/received", NULL, b, NULL));
	snprintf(b, sizeof b, "{\"equipment_id\":%lld,\"return_ref\":\"RET-2026-0042\"}",
		 (long long)eq);
	assert_int_equal(200, call(f, "POST", "/api/staff/equipment/received", NULL, b, NULL));
	assert_int_equal(409, call(f, "POST", "/api/staff/equipment/received", NULL, b, NULL));
	k = queue_checks(f);
	assert_true(json_is_true(json_object_get(k, "can_approve")));
	json_decref(k);
	assert_int_equal(
	    1, qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'equipment.received'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_no_callback),
	    BOTH(test_callback_opens_case),
	    BOTH(test_code_erased),
	    BOTH(test_code_erased_smtp),
	    BOTH(test_other_customers_callback),
	    BOTH(test_limits),
	    BOTH(test_contract_and_equipment),
	};
	int rc = fixture_main(tests, sizeof tests / sizeof tests[0]);
	/* a skipped SMTP case is a skip of the run (a failure under CI=true) */
	if (rc == 0 && missing_smtp)
		rc = test_component_missing_status("python3-aiosmtpd", smtp_why);
	return rc;
}
