/*
 * Tests of the net layer's pieces that need no socket: base64 (the binary
 * fields of every SGP.22 JSON body), the capped JSON parser and its field
 * getters, and the request/response objects handlers work on.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "esim/net.h"

/* RFC 4648 section 10 vectors. */
static const struct {
	const char *plain;
	const char *b64;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_base64_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char *enc = NULL;
		size_t n = strlen(rfc4648[i].plain);
		assert_esim(ESIM_OK,
			    esim_base64_encode((const uint8_t *)rfc4648[i].plain, n, &enc));
		assert_string_equal(enc, rfc4648[i].b64);
		free(enc);
		uint8_t *dec = NULL;
		size_t dlen = 99;
		assert_esim(ESIM_OK, esim_base64_decode(rfc4648[i].b64, strlen(rfc4648[i].b64),
							&dec, &dlen));
		assert_non_null(dec);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, rfc4648[i].plain, n);
		free(dec);
	}
}

static void test_base64_binary_roundtrip_no_linebreaks(void **state)
{
	(void)state;
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	char *enc = NULL;
	assert_esim(ESIM_OK, esim_base64_encode(data, sizeof(data), &enc));
	assert_int_equal(strlen(enc), 400);
	assert_null(strpbrk(enc, "\r\n "));
	uint8_t *dec;
	size_t dlen;
	assert_esim(ESIM_OK, esim_base64_decode(enc, strlen(enc), &dec, &dlen));
	assert_int_equal(dlen, sizeof(data));
	assert_memory_equal(dec, data, sizeof(data));
	free(dec);
	free(enc);
}

static void test_base64_whitespace_accepted(void **state)
{
	(void)state;
	const char *t = " Zm9v\r\nYmE=\n\t";
	uint8_t *dec;
	size_t dlen;
	assert_esim(ESIM_OK, esim_base64_decode(t, strlen(t), &dec, &dlen));
	assert_int_equal(dlen, 5);
	assert_memory_equal(dec, "fooba", 5);
	free(dec);
}

static void test_base64_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
	    "Zm9v!mFy", /* bad character */
	    "Zm9vYmF",	/* missing padding */
	    "Zg=",	/* short padding */
	    "Zg===",	/* too much padding */
	    "=Zm9",	/* padding first */
	    "Zg==Zg==", /* data after padding */
	    "Zh==",	/* non-zero trailing bits */
	    "Zm9=",	/* non-zero trailing bits, 2 bytes */
	    "Zm9vY",	/* dangling symbol */
	    "Zm9v-_",	/* base64url alphabet */
	    "====",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *dec = (uint8_t *)"x";
		size_t dlen = 7;
		esim_err e = esim_base64_decode(bad[i], strlen(bad[i]), &dec, &dlen);
		if (e != ESIM_E_BASE64)
			fail_msg("\"%s\" gave %s", bad[i], esim_errname(e));
		assert_null(dec);
		assert_int_equal(dlen, 0);
	}
}

static void test_json_parse_caps(void **state)
{
	(void)state;
	json_t *j = NULL;
	struct net_json_error je;
	const char *ok = "{\"a\":{\"b\":[1,2,{\"c\":\"[[[[\"}]}}";
	assert_esim(ESIM_OK, net_json_parse((const uint8_t *)ok, strlen(ok), 1024, 4, &j, &je));
	assert_non_null(j);
	json_decref(j);
	/* Depth 4 text under a cap of 3; brackets inside the string do not count. */
	assert_esim(ESIM_E_NET_JSON_TOO_DEEP,
		    net_json_parse((const uint8_t *)ok, strlen(ok), 1024, 3, &j, &je));
	assert_null(j);
	assert_esim(ESIM_E_NET_BODY_TOO_LARGE,
		    net_json_parse((const uint8_t *)ok, strlen(ok), 10, 8, &j, &je));
	char deep[2001];
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 1000);
	deep[2000] = '\0';
	assert_esim(ESIM_E_NET_JSON_TOO_DEEP,
		    net_json_parse((const uint8_t *)deep, 2000, 4096, 32, &j, &je));
	const char *bad = "{\"a\":}";
	assert_esim(ESIM_E_NET_JSON,
		    net_json_parse((const uint8_t *)bad, strlen(bad), 1024, 8, &j, &je));
	assert_true(strlen(je.text) > 0);
	const char *dup = "{\"a\":1,\"a\":2}";
	assert_esim(ESIM_E_NET_JSON,
		    net_json_parse((const uint8_t *)dup, strlen(dup), 1024, 8, &j, &je));
}

static void test_json_fields_named(void **state)
{
	(void)state;
	const char *t = "{\"transactionId\":\"0A1B\",\"header\":{},\"n\":5,"
			"\"serverSigned1\":\"Zm9v\\nYmFy\",\"bad\":\"Zm9v!\"}";
	json_t *j;
	struct net_json_error je;
	assert_esim(ESIM_OK, net_json_parse((const uint8_t *)t, strlen(t), 4096, 8, &j, &je));
	const char *s;
	assert_esim(ESIM_OK, net_json_get_string(j, "transactionId", &s, &je));
	assert_string_equal(s, "0A1B");
	json_t *h;
	assert_esim(ESIM_OK, net_json_get_object(j, "header", &h, &je));
	assert_esim(ESIM_E_NET_JSON_FIELD, net_json_get_string(j, "euiccChallenge", &s, &je));
	assert_string_equal(je.field, "euiccChallenge");
	assert_esim(ESIM_E_NET_JSON_FIELD, net_json_get_string(j, "n", &s, &je));
	assert_string_equal(je.field, "n");
	assert_esim(ESIM_E_NET_JSON_FIELD, net_json_get_object(j, "transactionId", &h, &je));
	uint8_t *b;
	size_t bl;
	assert_esim(ESIM_OK, net_json_get_base64(j, "serverSigned1", 64, &b, &bl, &je));
	assert_int_equal(bl, 6);
	assert_memory_equal(b, "foobar", 6);
	free(b);
	assert_esim(ESIM_E_NET_BODY_TOO_LARGE,
		    net_json_get_base64(j, "serverSigned1", 5, &b, &bl, &je));
	assert_string_equal(je.field, "serverSigned1");
	assert_esim(ESIM_E_BASE64, net_json_get_base64(j, "bad", 64, &b, &bl, &je));
	assert_string_equal(je.field, "bad");
	assert_esim(ESIM_OK, net_json_set_base64(j, "out", (const uint8_t *)"fo", 2));
	assert_esim(ESIM_OK, net_json_get_string(j, "out", &s, &je));
	assert_string_equal(s, "Zm8=");
	json_decref(j);
}

/* A handler is a plain function over plain structs: run one without any
 * server, as SM-DP+ tests will. */
static esim_err hello_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)arg;
	const char *xa = net_request_header(req, "x-admin-protocol");
	json_t *j =
	    json_pack("{s:s, s:I}", "proto", xa ? xa : "", "len", (json_int_t)req->body_len);
	if (j == NULL)
		return ESIM_E_NOMEM;
	esim_err e = net_response_json(resp, 200, j);
	json_decref(j);
	return e;
}

static void test_handler_without_server(void **state)
{
	(void)state;
	const struct net_header hdrs[] = {{"Content-Type", "application/json"},
					  {"X-Admin-Protocol", "gsma/rsp/v2.5.0"}};
	net_request req = {.method = "POST",
			   .path = "/gsma/rsp2/es9plus/initiateAuthentication",
			   .headers = hdrs,
			   .n_headers = 2,
			   .body = (const uint8_t *)"{}",
			   .body_len = 2};
	assert_null(net_request_header(&req, "Accept"));
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, hello_handler(&req, &resp, NULL));
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, NET_CONTENT_TYPE_JSON);
	assert_int_equal(resp.n_headers, 1);
	assert_string_equal(resp.headers[0].name, "X-Admin-Protocol");
	const char *want = "{\"proto\":\"gsma/rsp/v2.5.0\",\"len\":2}";
	assert_int_equal(resp.body.len, strlen(want));
	assert_memory_equal(resp.body.data, want, strlen(want));
	/* Header injection is refused. */
	assert_esim(ESIM_E_ARG, net_response_add_header(&resp, "X-A", "v\r\nSet-Cookie: x"));
	assert_esim(ESIM_E_ARG, net_response_add_header(&resp, "X-A:", "v"));
	assert_esim(ESIM_E_ARG, net_response_set(&resp, 99, NULL));
	assert_int_equal(resp.n_headers, 1);
	net_response_clear(&resp);
	assert_int_equal(resp.status, 0);
	assert_null(resp.body.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_rfc4648),
	    cmocka_unit_test(test_base64_binary_roundtrip_no_linebreaks),
	    cmocka_unit_test(test_base64_whitespace_accepted),
	    cmocka_unit_test(test_base64_rejects),
	    cmocka_unit_test(test_json_parse_caps),
	    cmocka_unit_test(test_json_fields_named),
	    cmocka_unit_test(test_handler_without_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
