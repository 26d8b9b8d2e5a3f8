/*
 * net: HTTP(S) for the SGP.22 interfaces that run over HTTPS/JSON — ES9+
 * (LPA <-> SM-DP+), ES11 (LPA <-> SM-DS) and ES2+ (operator <-> SM-DP+,
 * mutual TLS) — on one TLS stack, OpenSSL, with both SGP.22 curves.
 *
 *  - net_server: libevent 2.1 evhttp, TLS through bufferevent_openssl, one
 *    event loop per worker thread, one or more listeners each with its own
 *    TLS identity (P-256 or brainpoolP256r1) and optional client-certificate
 *    authentication. Handlers see a plain net_request and fill a plain
 *    net_response, so that SM-DP+ and operator code is testable without
 *    sockets. See docs/net.md for the threading model and limits.
 *  - net_client: HTTP/1.1 on OpenSSL and a TCP socket (src/net/client.c),
 *    one kept-alive connection per client, the server chain checked against
 *    the configured CIs only, host name checked.
 *  - net_json_*: jansson parsing with size and depth caps, and field getters
 *    whose errors name the field.
 *
 * Ownership is stated per function. Nothing here keeps global mutable
 * state beyond the one-time initialisation of libevent's threading.
 */
#ifndef ESIM_NET_H
#define ESIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "esim/err.h"
#include "esim/util.h"

#define NET_SHA256_LEN 32

/* SGP.22 HTTP header values (digest 5.1). */
#define NET_ADMIN_PROTOCOL    "gsma/rsp/v2.2.2"
#define NET_CONTENT_TYPE_JSON "application/json;charset=UTF-8"
#define NET_CONTENT_TYPE_ASN1 "application/x-gsma-rsp-asn1"
#define NET_USER_AGENT_LPA    "gsma-rsp-lpad"

/* One HTTP header (both pointers borrowed). */
struct net_header {
	const char *name;
	const char *value;
};

/* ======================================================================
 * Server
 * ====================================================================== */

/* What a handler sees. Every pointer is borrowed and valid only during
 * the handler call. Tests may build one by hand. */
typedef struct net_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* the URI path, without query ("/gsma/rsp2/es9plus/...") */
	const char *query;  /* the raw query string, or NULL */
	const struct net_header *headers;
	size_t n_headers;
	const uint8_t *body; /* may be NULL when body_len is 0 */
	size_t body_len;

	const char *peer_addr; /* textual peer IP address */
	uint16_t peer_port;
	int listener; /* id of the listener that accepted the connection */

	bool tls;		 /* the request came over TLS */
	bool tls_resumed;	 /* ... on a resumed TLS session */
	const char *tls_version; /* e.g. "TLSv1.2"; NULL without TLS */
	bool tcp_nodelay;	 /* TCP_NODELAY is on for the connection */

	/* The client certificate, present only on a listener that requires
	 * one (and then always verified: unknown certificates never reach a
	 * handler). */
	bool has_client_cert;
	const uint8_t *client_cert_der;
	size_t client_cert_der_len;
	uint8_t client_cert_sha256[NET_SHA256_LEN];
} net_request;

/* Case-insensitive header lookup: the first value, or NULL. */
const char *net_request_header(const net_request *req, const char *name);

/* What a handler fills. Owned by the server (or by the test that made it
 * with net_response_init); release with net_response_clear. */
typedef struct net_response {
	int status;	    /* 0 means "not set": answered with 500 */
	char *content_type; /* malloc'd, or NULL for none */
	struct net_response_hdr {
		char *name;
		char *value;
	} * headers; /* malloc'd array of malloc'd strings */
	size_t n_headers;
	esim_buf body;
} net_response;

void net_response_init(net_response *resp);
void net_response_clear(net_response *resp);
/* Set status and content type (content_type may be NULL). */
esim_err net_response_set(net_response *resp, int status, const char *content_type);
/* Add a header (copied). Names and values with CR/LF are refused. */
esim_err net_response_add_header(net_response *resp, const char *name, const char *value);
/* Append to the body (copied). */
esim_err net_response_append(net_response *resp, const void *data, size_t len);
/* status + Content-Type JSON + X-Admin-Protocol + the compact serialisation
 * of json (borrowed). */
esim_err net_response_json(net_response *resp, int status, const json_t *json);

/* A route handler. Returning an error other than ESIM_OK answers 500 with
 * an empty body (the response the handler filled is discarded). Handlers
 * run on a worker thread and may run concurrently with each other (on
 * other workers), so arg must be thread-safe. */
typedef esim_err (*net_handler)(const net_request *req, net_response *resp, void *arg);

typedef enum net_client_auth {
	NET_CLIENT_AUTH_NONE = 0, /* no client certificate asked for (ES9+) */
	NET_CLIENT_AUTH_REQUIRE,  /* mutual TLS: required and verified (ES2+) */
} net_client_auth;

struct net_listener_config {
	const char *address; /* "127.0.0.1", "::", "0.0.0.0"; NULL: 0.0.0.0 */
	uint16_t port;	     /* 0: an ephemeral port (see net_server_port) */
	bool tls;	     /* false: plain HTTP (for tests on loopback) */

	/* TLS identity, PEM files: the certificate chain (leaf first, then any
	 * intermediates; DPtls chains are CI -> DPtls, so usually one) and its
	 * private key, on P-256 or brainpoolP256r1. */
	const char *cert_chain_file;
	const char *key_file;

	/* Mutual TLS. With NET_CLIENT_AUTH_REQUIRE a client must present a
	 * certificate that is either pinned (SHA-256 of its DER, exact match,
	 * any issuer, self-signed allowed: SGP.22 ES2+ certificates are agreed
	 * bilaterally) or that chains to a CA in client_ca_file (PEM). The
	 * handshake fails otherwise. Arrays are copied. */
	net_client_auth client_auth;
	const uint8_t (*client_pins)[NET_SHA256_LEN];
	size_t n_client_pins;
	const char *client_ca_file;

	/* Connection caps. A connection over a cap is closed as soon as it is
	 * accepted (before any TLS), counted in net_server_stats and logged
	 * (rate-limited). Per address means per IPv4 address, or per IPv6 /64
	 * (one host or site usually holds a whole /64). 0: the default. */
	unsigned max_connections;	      /* open on this listener; 0: 1024 */
	unsigned max_connections_per_address; /* ... from one address; 0: 64 */

	/* Headers on every answer of this listener: its handlers' (unless the
	 * handler set that header itself) and the server's own (404, 405 for
	 * an unknown path or method, 400 for a malformed request, 413 for a
	 * body over the cap, 431, 500, 501). Names must be HTTP tokens and
	 * values free of control characters (ESIM_E_ARG otherwise). Copied. */
	const struct net_header *default_headers;
	size_t n_default_headers;
};

/* A log sink: one line without its newline, borrowed for the call. Called
 * from any worker thread, possibly at the same time: it must be
 * thread-safe. */
typedef void (*net_log_fn)(void *arg, const char *line);

struct net_server_config {
	unsigned threads;	    /* worker event loops; 0: 2 */
	size_t max_body;	    /* request body cap, bytes; 0: 1 MiB */
	size_t max_headers;	    /* request line + headers cap; 0: 16 KiB */
	unsigned timeout_ms;	    /* read/write/idle timeout; 0: 30 s */
	unsigned shutdown_grace_ms; /* time to flush in-flight replies; 0: 5 s */
	/* Whole-request deadline: the TLS handshake and the first request
	 * from accept, any later request from its first byte, up to the end
	 * of its body. A connection that has not delivered a complete request
	 * by then is closed, however steadily it trickles bytes (timeout_ms
	 * is per read and would never fire). The keep-alive wait between
	 * requests is timeout_ms, not this. 0: 10 s. */
	unsigned request_deadline_ms;
	/* Where the server's own lines go (accept errors, caps, deadlines):
	 * NULL: stderr. Each kind of line is rate-limited to log_per_second
	 * lines a second (0: 5); what is held back is summed up in one
	 * "suppressed K ..." line when that kind may log again, or at stop. */
	net_log_fn log;
	void *log_arg;
	unsigned log_per_second;
};

typedef struct net_server net_server;

/* Counters since start (monotonic, approximate while running). */
struct net_server_stats {
	unsigned long connections;    /* accepted TCP connections */
	unsigned long requests;	      /* requests dispatched to a route or refused with 404/405 */
	unsigned long handled;	      /* requests a handler answered */
	unsigned long tls_handshakes; /* completed server handshakes */
	unsigned long tls_resumed;    /* ... of which resumed a session */
	unsigned long refused_listener_cap; /* closed at accept: listener's cap reached */
	unsigned long refused_address_cap;  /* closed at accept: the address's cap reached */
	unsigned long deadline_closed;	    /* closed: request_deadline_ms passed */
	unsigned long accept_errors;	    /* accept() failures (each pauses accepting) */
	unsigned long log_suppressed;	    /* log lines held back by the rate limit */
	unsigned long setup_refused;	    /* closed unanswered: TLS could not be set up */
};

/* cfg may be NULL for the defaults. *out: free with net_server_free. */
esim_err net_server_new(const struct net_server_config *cfg, net_server **out);
/* Bind and listen now (so the port is known and connections queue up
 * before start). Loads the TLS identity: ESIM_E_NET_TLS_CONFIG when the
 * chain or key is unusable or they do not match, ESIM_E_NET_BIND when the
 * address cannot be bound. *id (may be NULL) is the listener's id. Only
 * before net_server_start. */
esim_err net_server_add_listener(net_server *srv, const struct net_listener_config *lc, int *id);
/* What the last failed net_server_add_listener (or net_server_reload_tls)
 * failed on, with the address or file and the reason ("cannot listen on
 * 0.0.0.0:443 (Address already in use): ..."); "" when it gave none.
 * Borrowed, valid until the next call. */
const char *net_server_errmsg(const net_server *srv);
/* The bound port of listener id (0 when no such listener). */
uint16_t net_server_port(const net_server *srv, int id);
/* Route method + exact path to fn on listener id, or on every listener
 * when id is -1. A path with routes but not for the method gets 405, an
 * unknown path 404. Only before net_server_start. method and path are
 * copied; arg is borrowed. */
esim_err net_server_add_route(net_server *srv, int id, const char *method, const char *path,
			      net_handler fn, void *arg);
/* Start the worker threads. */
esim_err net_server_start(net_server *srv);
/* Re-read every TLS listener's certificate chain and private key (and
 * client CA file) from the paths given to net_server_add_listener, e.g. on
 * SIGHUP after a renewal. All or nothing: when one does not load, no
 * listener changes, the error is ESIM_E_NET_TLS_CONFIG (or ESIM_E_NOMEM)
 * and *bad_id (may be NULL) is that listener's id. New connections get the
 * new identity; connections already open keep theirs. Before or after
 * start, from any one thread at a time (not during net_server_free). */
esim_err net_server_reload_tls(net_server *srv, int *bad_id);
/* Graceful stop: stop accepting, let replies in flight be written (up to
 * shutdown_grace_ms), close connections, join the workers. Idempotent. */
void net_server_stop(net_server *srv);
/* Stops (if running) and frees. NULL is fine. */
void net_server_free(net_server *srv);
void net_server_get_stats(const net_server *srv, struct net_server_stats *out);

/* ======================================================================
 * Client
 * ====================================================================== */

typedef struct net_client net_client;

struct net_client_config {
	/* Trusted CIs for the server's TLS chain (CERT.DPtls / CERT.DStls ->
	 * CI), as a PEM bundle file, or as PEM text in memory; exactly one.
	 * The system's CA store is never used. */
	const char *ca_file;
	const char *ca_pem;
	/* Host name verification is always on. */

	/* Optional client certificate and key (PEM files) for ES2+. */
	const char *client_cert_file;
	const char *client_key_file;

	unsigned connect_timeout_ms; /* 0: 10 s */
	unsigned timeout_ms;	     /* whole request; 0: 60 s */
	size_t max_response;	     /* response body cap; 0: 4 MiB */
	const char *user_agent;	     /* NULL: NET_USER_AGENT_LPA */
};

/* *out: free with net_client_free. Not thread-safe: one client per thread.
 * The client keeps one connection alive across requests. */
esim_err net_client_new(const struct net_client_config *cfg, net_client **out);
void net_client_free(net_client *c);

struct net_client_response {
	long status;
	esim_buf body;		 /* free with net_client_response_clear */
	char content_type[128];	 /* "" when absent */
	char admin_protocol[64]; /* X-Admin-Protocol, "" when absent */
};

void net_client_response_clear(struct net_client_response *r);

/* One request. headers (may be NULL) are added as given; body may be NULL
 * for none. On a transport failure the error names its kind
 * (ESIM_E_NET_CONNECT, _TLS, _UNTRUSTED_SERVER, _HOSTNAME, _TIMEOUT,
 * _BODY_TOO_LARGE, _IO, _CLIENT_CERT, _BAD_REQUEST; ESIM_E_ARG for a CA
 * file or text without a usable certificate) and net_client_errmsg() names
 * what failed ("connect to HOST:PORT refused", "TLS verify failed: ...").
 * A response with an HTTP status of 400 or more returns
 * ESIM_E_NET_HTTP_STATUS with *resp filled. *resp is always initialised;
 * clear it with net_client_response_clear. Keep-alive and the one re-send
 * on a connection found dead: docs/net.md. */
esim_err net_client_request(net_client *c, const char *method, const char *url,
			    const struct net_header *headers, size_t n_headers, const uint8_t *body,
			    size_t body_len, struct net_client_response *resp);

/* POST a JSON text with the SGP.22 headers (Content-Type
 * application/json;charset=UTF-8, X-Admin-Protocol, User-Agent). */
esim_err net_client_post_json(net_client *c, const char *url, const char *json, size_t len,
			      struct net_client_response *resp);

/* Send id as X-Request-Id (include/esim/log.h) on every request from now
 * on, unless the request gives its own; NULL stops it. ESIM_E_ARG for an
 * id esim_request_id_valid() refuses. */
esim_err net_client_set_request_id(net_client *c, const char *id);

/* What the last request failed on ("" after a success; "HTTP status N"
 * for ESIM_E_NET_HTTP_STATUS). Borrowed, valid until the next call. */
const char *net_client_errmsg(const net_client *c);
/* Connections opened by this client so far (keep-alive shows as 1). */
long net_client_connections(const net_client *c);
/* True when the last request's TLS session was resumed. */
bool net_client_last_resumed(const net_client *c);
/* Force the next request onto a new connection (the TLS session cache is
 * kept, so the new connection resumes). */
void net_client_fresh_connect(net_client *c);

/* Retry policy. The caller decides whether a step is safe to repeat
 * (SGP.22: e.g. HandleNotification may be re-sent, AuthenticateClient may
 * not): when safe_to_repeat is false exactly one attempt is made. */
struct net_retry {
	bool safe_to_repeat;
	unsigned max_attempts;	     /* total attempts, >= 1; 0: 3 */
	unsigned initial_backoff_ms; /* doubled after each failure; 0: 200 */
	unsigned max_backoff_ms;     /* 0: 5000 */
};

/* True for the errors a retry may help (connect failure, timeout, I/O,
 * HTTP 5xx): never for TLS or certificate failures or 4xx. */
bool net_error_is_transient(esim_err err, long http_status);

/* net_client_post_json with retries per policy. *attempts (may be NULL)
 * is the number of attempts made. */
esim_err net_client_post_json_retry(net_client *c, const char *url, const char *json, size_t len,
				    const struct net_retry *policy,
				    struct net_client_response *resp, unsigned *attempts);

/* ======================================================================
 * JSON helpers (jansson)
 * ====================================================================== */

/* Where a JSON error was found: the field name (or "" for the document)
 * and jansson's text. */
struct net_json_error {
	char field[64];
	char text[160];
};

/* Parse a body of at most max_len bytes, nested at most max_depth deep
 * (objects and arrays), into *out (caller json_decref's). Depth is checked
 * before jansson sees the text. ESIM_E_NET_BODY_TOO_LARGE,
 * ESIM_E_NET_JSON_TOO_DEEP, ESIM_E_NET_JSON. err may be NULL. */
esim_err net_json_parse(const uint8_t *body, size_t len, size_t max_len, size_t max_depth,
			json_t **out, struct net_json_error *err);

/* Field getters on an object; ESIM_E_NET_JSON_FIELD (field named in err)
 * when missing or of another type. Returned pointers are borrowed from
 * obj. */
esim_err net_json_get_object(const json_t *obj, const char *field, json_t **out,
			     struct net_json_error *err);
esim_err net_json_get_string(const json_t *obj, const char *field, const char **out,
			     struct net_json_error *err);
/* A base64 string field decoded (whitespace allowed) into *out (malloc'd,
 * caller frees), at most max decoded bytes (ESIM_E_NET_BODY_TOO_LARGE).
 * Bad base64 is ESIM_E_BASE64 with the field named. */
esim_err net_json_get_base64(const json_t *obj, const char *field, size_t max, uint8_t **out,
			     size_t *out_len, struct net_json_error *err);
/* Set field to the base64 of data (no line breaks). */
esim_err net_json_set_base64(json_t *obj, const char *field, const uint8_t *data, size_t len);

#endif
