/*
 * net_client: the HTTPS client of the LPA (ES9+, ES11) and of the operator
 * service (ES2+ toward the SM-DP+), on libcurl's OpenSSL build.
 *
 * SGP.22 (digest 5.1, 10.4) has the LPA check CERT.DPtls against the CIs it
 * trusts and the SM-DP+ host name. DPtls and DStls are signed by the CI
 * directly, so OpenSSL's ordinary chain building with the CIs as the only
 * trust anchors (CURLOPT_CAINFO / _BLOB; never the system store) is exactly
 * that check, and curl checks the host name. One easy handle per client is
 * reused, so the connection is kept alive and the TLS session is cached
 * for resumption. brainpoolP256r1 is added to the offered groups, since
 * OpenSSL's default list lacks it and a brainpool SM-DP+ needs it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "esim/net.h"

#define NET_CLIENT_CONNECT_MS	10000
#define NET_CLIENT_TIMEOUT_MS	60000
#define NET_CLIENT_MAX_RESPONSE (4u << 20)
#define NET_CLIENT_CURVES	"X25519:P-256:brainpoolP256r1:P-384"

struct net_client {
	CURL *easy;
	size_t max_response;
	char *user_agent;
	char errbuf[CURL_ERROR_SIZE];
	char message[CURL_ERROR_SIZE + 64];
	long connections;
	bool fresh;
	bool last_resumed;
	/* per-request state for the callbacks */
	struct net_client_response *cur;
	bool overflow;
};

static pthread_once_t net_curl_once = PTHREAD_ONCE_INIT;
static CURLcode net_curl_init_rc = CURLE_FAILED_INIT;

static void net_curl_init(void)
{
	net_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

esim_err net_client_new(const struct net_client_config *cfg, net_client **out)
{
	*out = NULL;
	if (cfg == NULL || (cfg->ca_file == NULL) == (cfg->ca_pem == NULL) ||
	    (cfg->client_cert_file == NULL) != (cfg->client_key_file == NULL))
		return ESIM_E_ARG;
	pthread_once(&net_curl_once, net_curl_init);
	if (net_curl_init_rc != CURLE_OK)
		return ESIM_E_INTERNAL;
	net_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ESIM_E_NOMEM;
	c->max_response = cfg->max_response ? cfg->max_response : NET_CLIENT_MAX_RESPONSE;
	c->user_agent = strdup(cfg->user_agent ? cfg->user_agent : NET_USER_AGENT_LPA);
	c->easy = curl_easy_init();
	if (c->easy == NULL || c->user_agent == NULL) {
		net_client_free(c);
		return ESIM_E_NOMEM;
	}
	CURL *e = c->easy;
	long cto = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : NET_CLIENT_CONNECT_MS;
	long tto = cfg->timeout_ms ? cfg->timeout_ms : NET_CLIENT_TIMEOUT_MS;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e, opt, val);                                        \
	} while (0)
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: clients live in threads */
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
	SET(CURLOPT_TIMEOUT_MS, tto);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_EC_CURVES, NET_CLIENT_CURVES);
	SET(CURLOPT_SSL_SESSIONID_CACHE, 1L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
	SET(CURLOPT_CAPATH, NULL);
	if (cfg->ca_file != NULL) {
		SET(CURLOPT_CAINFO, cfg->ca_file);
	} else {
		struct curl_blob blob = {(void *)cfg->ca_pem, strlen(cfg->ca_pem), CURL_BLOB_COPY};
		SET(CURLOPT_CAINFO, NULL);
		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	if (cfg->client_cert_file != NULL) {
		SET(CURLOPT_SSLCERT, cfg->client_cert_file);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
		SET(CURLOPT_SSLKEY, cfg->client_key_file);
		SET(CURLOPT_SSLKEYTYPE, "PEM");
	}
#undef SET
	if (rc != CURLE_OK) {
		net_client_free(c);
		return rc == CURLE_OUT_OF_MEMORY ? ESIM_E_NOMEM : ESIM_E_UNSUPPORTED;
	}
	*out = c;
	return ESIM_OK;
}

void net_client_free(net_client *c)
{
	if (c == NULL)
		return;
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	free(c->user_agent);
	free(c);
}

void net_client_response_clear(struct net_client_response *r)
{
	esim_buf_wipe_free(&r->body);
	memset(r, 0, sizeof(*r));
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	net_client *c = arg;
	size_t n = size * nmemb;
	if (n > c->max_response - c->cur->body.len) {
		c->overflow = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (esim_buf_append(&c->cur->body, ptr, n) != ESIM_OK)
		return 0;
	return n;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	net_client *c = arg;
	size_t n = size * nitems;
	static const char ap[] = "X-Admin-Protocol:";
	/* The status line: the connection is live here, so its TLS state can
	 * be read (after the transfer curl no longer exposes it). */
	if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		const struct curl_tlssessioninfo *ti = NULL;
		if (curl_easy_getinfo(c->easy, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK &&
		    ti != NULL && ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals != NULL)
			c->last_resumed = SSL_session_reused((SSL *)ti->internals) == 1;
	}
	if (n > sizeof(ap) - 1 && strncasecmp(buf, ap, sizeof(ap) - 1) == 0)
		copy_header_value(c->cur->admin_protocol, sizeof(c->cur->admin_protocol),
				  buf + sizeof(ap) - 1, n - (sizeof(ap) - 1));
	return n;
}

static esim_err map_curl(net_client *c, CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return ESIM_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return ESIM_E_NET_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return ESIM_E_NET_TIMEOUT;
	case CURLE_PEER_FAILED_VERIFICATION: {
		/* OpenSSL's verify result tells a chain failure (e.g. 20, unable
		 * to get issuer) from a name failure, which curl finds itself
		 * after OpenSSL accepted the chain (leaving 0, or 1 in 7.88)
		 * and describes as a "host name" mismatch. */
		long vr = X509_V_OK;
		curl_easy_getinfo(c->easy, CURLINFO_SSL_VERIFYRESULT, &vr);
		if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH ||
		    ((vr == X509_V_OK || vr == X509_V_ERR_UNSPECIFIED) &&
		     strstr(c->errbuf, "host name") != NULL))
			return ESIM_E_NET_HOSTNAME;
		return ESIM_E_NET_UNTRUSTED_SERVER;
	}
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		return ESIM_E_ARG;
	case CURLE_SSL_CERTPROBLEM:
		return ESIM_E_NET_CLIENT_CERT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_USE_SSL_FAILED:
		return ESIM_E_NET_TLS;
	case CURLE_FILESIZE_EXCEEDED:
		return ESIM_E_NET_BODY_TOO_LARGE;
	case CURLE_WRITE_ERROR:
		return c->overflow ? ESIM_E_NET_BODY_TOO_LARGE : ESIM_E_NOMEM;
	case CURLE_OUT_OF_MEMORY:
		return ESIM_E_NOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return ESIM_E_NET_BAD_REQUEST;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	default:
		return ESIM_E_NET_IO;
	}
}

/* curl_easy_perform with SIGPIPE held off this thread: OpenSSL may write
 * to a socket the peer has reset, and CURLOPT_NOSIGNAL stops curl from
 * guarding that itself. A SIGPIPE raised meanwhile is consumed. */
static CURLcode perform_nosigpipe(CURL *e)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
	CURLcode rc = curl_easy_perform(e);
	if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		struct timespec zero = {0, 0};
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

esim_err net_client_request(net_client *c, const char *method, const char *url,
			    const struct net_header *headers, size_t n_headers, const uint8_t *body,
			    size_t body_len, struct net_client_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	c->errbuf[0] = '\0';
	c->message[0] = '\0';
	if (method == NULL || url == NULL || (body == NULL && body_len != 0))
		return ESIM_E_ARG;
	CURL *e = c->easy;
	struct curl_slist *list = NULL;
	esim_err err = ESIM_OK;
	char line[1024];
	/* curl would otherwise wait for "100 Continue" on larger bodies. */
	list = curl_slist_append(list, "Expect:");
	for (size_t i = 0; i < n_headers && list != NULL; i++) {
		if (strpbrk(headers[i].name, "\r\n:") != NULL ||
		    strpbrk(headers[i].value, "\r\n") != NULL) {
			curl_slist_free_all(list);
			return ESIM_E_NET_BAD_REQUEST;
		}
		int k = snprintf(line, sizeof(line), "%s: %s", headers[i].name, headers[i].value);
		if (k < 0 || (size_t)k >= sizeof(line)) {
			curl_slist_free_all(list);
			return ESIM_E_NET_BAD_REQUEST;
		}
		struct curl_slist *nl = curl_slist_append(list, line);
		if (nl == NULL) {
			curl_slist_free_all(list);
			list = NULL;
		} else {
			list = nl;
		}
	}
	if (list == NULL)
		return ESIM_E_NOMEM;

	c->cur = resp;
	c->overflow = false;
	c->last_resumed = false;
	CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, c->fresh ? 1L : 0L);
	if (rc == CURLE_OK) {
		if (strcmp(method, "GET") == 0) {
			rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		} else {
			rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
			if (rc == CURLE_OK)
				rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
						      (curl_off_t)body_len);
			if (rc == CURLE_OK)
				rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS,
						      body != NULL ? (const char *)body : "");
		}
	}
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(
		    e, CURLOPT_CUSTOMREQUEST,
		    strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? NULL : method);
	if (rc == CURLE_OK)
		rc = perform_nosigpipe(e);
	c->fresh = false;
	err = map_curl(c, rc);

	long conns = 0;
	if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
		c->connections += conns;
	if (err == ESIM_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
		char *ct = NULL;
		if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
			copy_header_value(resp->content_type, sizeof(resp->content_type), ct,
					  strlen(ct));
		if (resp->status >= 400)
			err = ESIM_E_NET_HTTP_STATUS;
	} else {
		esim_buf_wipe_free(&resp->body);
	}
	if (err != ESIM_OK) {
		if (err == ESIM_E_NET_HTTP_STATUS)
			snprintf(c->message, sizeof(c->message), "HTTP status %ld", resp->status);
		else
			snprintf(c->message, sizeof(c->message), "%s",
				 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	}
	/* Do not leave pointers to this call's data in the handle. */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
	c->cur = NULL;
	curl_slist_free_all(list);
	return err;
}

esim_err net_client_post_json(net_client *c, const char *url, const char *json, size_t len,
			      struct net_client_response *resp)
{
	const struct net_header h[] = {
	    {"Content-Type", NET_CONTENT_TYPE_JSON},
	    {"X-Admin-Protocol", NET_ADMIN_PROTOCOL},
	    {"Accept", "application/json"},
	};
	return net_client_request(c, "POST", url, h, sizeof(h) / sizeof(h[0]),
				  (const uint8_t *)json, len, resp);
}

const char *net_client_errmsg(const net_client *c)
{
	return c->message;
}

long net_client_connections(const net_client *c)
{
	return c->connections;
}

bool net_client_last_resumed(const net_client *c)
{
	return c->last_resumed;
}

void net_client_fresh_connect(net_client *c)
{
	c->fresh = true;
}

bool net_error_is_transient(esim_err err, long http_status)
{
	switch (err) {
	case ESIM_E_NET_CONNECT:
	case ESIM_E_NET_TIMEOUT:
	case ESIM_E_NET_IO:
		return true;
	case ESIM_E_NET_HTTP_STATUS:
		return http_status >= 500 && http_status <= 599;
	default:
		return false;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

esim_err net_client_post_json_retry(net_client *c, const char *url, const char *json, size_t len,
				    const struct net_retry *policy,
				    struct net_client_response *resp, unsigned *attempts)
{
	unsigned max = 1, backoff = 200, cap = 5000;
	if (policy != NULL && policy->safe_to_repeat) {
		max = policy->max_attempts ? policy->max_attempts : 3;
		backoff = policy->initial_backoff_ms ? policy->initial_backoff_ms : 200;
		cap = policy->max_backoff_ms ? policy->max_backoff_ms : 5000;
	}
	esim_err err = ESIM_OK;
	unsigned n = 0;
	for (;;) {
		n++;
		err = net_client_post_json(c, url, json, len, resp);
		if (err == ESIM_OK || n >= max || !net_error_is_transient(err, resp->status))
			break;
		net_client_response_clear(resp);
		sleep_ms(backoff);
		backoff = backoff > cap / 2 ? cap : backoff * 2;
	}
	if (attempts != NULL)
		*attempts = n;
	return err;
}
