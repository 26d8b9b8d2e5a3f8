/*
 * esim-operator's languages, in process through op_http (no sockets): the
 * catalogue route with Accept-Language negotiation, the customer's stored
 * language (POST /api/me/lang, refused for anything but en/nl/fr/zh and
 * without the CSRF token), and the notices (e-mail in the maildir) written in
 * the language of the customer they go to. The catalogues are the portal's
 * (src/operator/web/i18n), found through ESIM_OPERATOR_WEB_DIR since the
 * test's web folder has none.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "esim/net.h"
#include "esim/operator.h"
#include "esim/util.h"
#include "operator/op_int.h"
#include "testutil.h"

struct fx {
	char *dir;
	char db[512], mail[600];
	op *o;
	char cookie[128];
	char csrf[80];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	f->dir = test_mkdtemp();
	snprintf(f->db, sizeof f->db, "%s/op.db", f->dir);
	snprintf(f->mail, sizeof f->mail, "%s/mail", f->dir);
	struct op_config cfg = {
	    .db = f->db, .web_dir = f->dir, .maildir = f->mail, .fast_hash = true};
	char dk[600];
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	cfg.data_key_file = dk;
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
	assert_esim(ESIM_OK, op_seed_demo(f->o));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	op_close(f->o);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* One request with optional Accept-Language; *out the JSON answer. */
static int call(struct fx *f, const char *method, const char *path, const char *query,
		const char *body, const char *accept_language, bool with_csrf, json_t **out)
{
	struct net_header h[3];
	size_t nh = 0;
	if (f->cookie[0])
		h[nh++] = (struct net_header){"Cookie", f->cookie};
	if (with_csrf && f->csrf[0])
		h[nh++] = (struct net_header){"X-CSRF-Token", f->csrf};
	if (accept_language)
		h[nh++] = (struct net_header){"Accept-Language", accept_language};
	net_request req = {.method = method,
			   .path = path,
			   .query = query,
			   .headers = h,
			   .n_headers = nh,
			   .body = (const uint8_t *)body,
			   .body_len = body ? strlen(body) : 0,
			   .peer_addr = "192.0.2.9"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, f->o));
	int st = resp.status;
	if (out)
		*out = resp.body.len
			   ? json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL)
			   : NULL;
	for (size_t i = 0; i < resp.n_headers; i++)
		if (!strcmp(resp.headers[i].name, "Set-Cookie") &&
		    !strncmp(resp.headers[i].value, "esim_session=", 13)) {
			size_t n = strcspn(resp.headers[i].value, ";");
			snprintf(f->cookie, sizeof f->cookie, "%.*s", (int)n,
				 resp.headers[i].value);
		}
	net_response_clear(&resp);
	return st;
}

static void login(struct fx *f, bool staff, const char *user, const char *pw)
{
	char b[256];
	snprintf(b, sizeof b, "{\"login\":\"%s\",\"password\":\"%s\"}", user, pw);
	json_t *j;
	f->cookie[0] = f->csrf[0] = '\0';
	assert_int_equal(200, call(f, "POST", staff ? "/api/staff/login" : "/api/login", NULL, b,
				   NULL, false, &j));
	snprintf(f->csrf, sizeof f->csrf, "%s", json_string_value(json_object_get(j, "csrf")));
	json_decref(j);
}

static int64_t submit_first_line(struct fx *f)
{
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/account", NULL, NULL, NULL, true, &j));
	long long line = (long long)json_integer_value(
	    json_object_get(json_array_get(json_object_get(j, "lines"), 0), "id"));
	json_decref(j);
	char b[600];
	snprintf(b, sizeof b,
		 "{\"line_id\":%lld,\"reason\":\"moving\",\"document_type\":\"passport\","
		 "\"document_number\":\"EP1\",\"document_copy\":\"iVBORw0KGgppZGVudGl0eQ==\","
		 "\"document_mime\":\"image/png\"}",
		 line);
	assert_int_equal(201, call(f, "POST", "/api/cases", NULL, b, NULL, true, &j));
	int64_t id = json_integer_value(json_object_get(json_object_get(j, "case"), "id"));
	json_decref(j);
	assert_true(id > 0);
	return id;
}

/* How many mails in the maildir contain every one of the NULL-ended
 * strings. */
static int mails_with(struct fx *f, ...)
{
	char dir[700];
	snprintf(dir, sizeof dir, "%s/new", f->mail);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[1000];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		uint8_t *raw = NULL;
		size_t len = 0;
		if (esim_read_file(p, 1 << 20, &raw, &len) != ESIM_OK)
			continue;
		char *text = realloc(raw, len + 1);
		assert_non_null(text);
		text[len] = '\0';
		bool all = true;
		va_list ap;
		va_start(ap, f);
		for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
			all = all && strstr(text, s) != NULL;
		va_end(ap);
		n += all;
		free(text);
	}
	closedir(d);
	return n;
}

static void test_negotiate(void **state)
{
	(void)state;
	assert_string_equal("fr", op_lang_negotiate("fr-BE,fr;q=0.9,en;q=0.5"));
	assert_string_equal("nl", op_lang_negotiate("de-DE, nl-BE;q=0.8, en;q=0.7"));
	assert_string_equal("zh", op_lang_negotiate("zh-CN,zh;q=0.9"));
	assert_string_equal("en", op_lang_negotiate("en-GB,en;q=0.9,nl;q=0.1"));
	/* q=0 means "not this one"; unknown only, empty, NULL: English */
	assert_string_equal("en", op_lang_negotiate("nl;q=0, de"));
	assert_string_equal("en", op_lang_negotiate("de-AT,it"));
	assert_string_equal("en", op_lang_negotiate(""));
	assert_string_equal("en", op_lang_negotiate(NULL));
	assert_string_equal("nl", op_lang_negotiate("en;q=0.2,NL;q=0.4"));
}

static void test_catalogue_route(void **state)
{
	struct fx *f = *state;
	json_t *j;
	assert_int_equal(
	    200, call(f, "GET", "/api/i18n", NULL, NULL, "nl-BE,nl;q=0.9,en;q=0.8", false, &j));
	assert_string_equal("nl", json_string_value(json_object_get(j, "lang")));
	assert_string_equal("Aanmelden", json_string_value(json_object_get(
					     json_object_get(j, "messages"), "nav.login")));
	json_decref(j);
	/* an explicit choice wins over the header */
	assert_int_equal(200, call(f, "GET", "/api/i18n", "lang=zh", NULL, "fr-BE", false, &j));
	assert_string_equal("zh", json_string_value(json_object_get(j, "lang")));
	assert_string_equal("登录", json_string_value(json_object_get(
					json_object_get(j, "messages"), "nav.login")));
	json_decref(j);
	assert_int_equal(400, call(f, "GET", "/api/i18n", "lang=de", NULL, NULL, false, &j));
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "en, nl, fr, zh"));
	json_decref(j);
}

static void test_stored_language_and_notices(void **state)
{
	struct fx *f = *state;
	json_t *j;
	/* Jan chooses Dutch: a wrong code and a missing CSRF token are refused
	 * and change nothing */
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	assert_int_equal(200, call(f, "GET", "/api/me", NULL, NULL, NULL, false, &j));
	assert_true(json_is_null(json_object_get(j, "lang")));
	json_decref(j);
	assert_int_equal(
	    400, call(f, "POST", "/api/me/lang", NULL, "{\"lang\":\"de\"}", NULL, true, &j));
	assert_string_equal("bad_request", json_string_value(json_object_get(j, "error")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "lang"));
	json_decref(j);
	assert_int_equal(400,
			 call(f, "POST", "/api/me/lang", NULL, "{\"lang\":7}", NULL, true, NULL));
	assert_int_equal(
	    403, call(f, "POST", "/api/me/lang", NULL, "{\"lang\":\"nl\"}", NULL, false, NULL));
	assert_int_equal(200, call(f, "GET", "/api/me", NULL, NULL, NULL, false, &j));
	assert_true(json_is_null(json_object_get(j, "lang")));
	json_decref(j);
	assert_int_equal(
	    200, call(f, "POST", "/api/me/lang", NULL, "{\"lang\":\"nl\"}", NULL, true, NULL));
	assert_int_equal(200, call(f, "GET", "/api/me", NULL, NULL, NULL, false, &j));
	assert_string_equal("nl", json_string_value(json_object_get(j, "lang")));
	json_decref(j);
	int64_t jan_case = submit_first_line(f);
	char subj[96];
	snprintf(subj, sizeof subj, "Subject: Uw opzeggingsdossier %lld: Ingediend",
		 (long long)jan_case);
	assert_int_equal(1, mails_with(f, subj, "We hebben uw aanvraag om deze lijn op te zeggen",
				       "Verificatiereferentie: OP-", "Waren wij dit echt?", NULL));
	assert_int_equal(0, mails_with(f, "Subject: Your termination case", NULL));

	/* Sofie never chose: her notice is English */
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
	int64_t sofie_case = submit_first_line(f);
	snprintf(subj, sizeof subj, "Subject: Your termination case %lld: Submitted",
		 (long long)sofie_case);
	assert_int_equal(1, mails_with(f, subj, "Verification reference: OP-", NULL));
	/* then Chinese: the staff's next step reaches her in Chinese, with the
	 * reviewer's note */
	assert_int_equal(
	    200, call(f, "POST", "/api/me/lang", NULL, "{\"lang\":\"zh\"}", NULL, true, NULL));
	login(f, true, "reviewer", "review-demo-2026");
	char b[128];
	snprintf(b, sizeof b, "{\"case_id\":%lld,\"message\":\"Photo page, please.\"}",
		 (long long)sofie_case);
	assert_int_equal(
	    200, call(f, "POST", "/api/staff/case/request-info", NULL, b, NULL, true, NULL));
	snprintf(subj, sizeof subj, "Subject: 您的终止案件 %lld：需要更多信息",
		 (long long)sofie_case);
	assert_int_equal(1, mails_with(f, subj, "我们需要更多信息来处理您的申请",
				       "备注：Photo page, please.", "核验编号：OP-", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_negotiate),
	    cmocka_unit_test_setup_teardown(test_catalogue_route, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stored_language_and_notices, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
