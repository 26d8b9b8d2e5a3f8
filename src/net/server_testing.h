/*
 * net_server's test hooks: private to the library and its unit tests (no
 * program includes this header; it is not part of include/esim/net.h).
 */
#ifndef ESIM_NET_SERVER_TESTING_H
#define ESIM_NET_SERVER_TESTING_H

#include <stdbool.h>

#include "esim/net.h"

/* While fail is true, the TLS setup of every new connection on listener
 * id fails as if SSL_new had returned NULL (out of memory), so that a
 * test can see that such a connection is closed unanswered and never
 * served in clear text. May be called while the server runs. */
void net_server_test_fail_tls_setup(net_server *srv, int id, bool fail);

#endif
