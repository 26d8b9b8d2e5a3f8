#!/usr/bin/env python3
# The operator's side of the ES2+ HandleDownloadProgressInfo callbacks in
# tests/scale/smdp_failover.sh: an HTTPS listener on loopback that records,
# per request, the arrival time, functionCallIdentifier, ICCID and
# notificationPointId (one tab-separated line each) and answers
# Executed-Success. Counting only: it trusts nothing it receives.
# Usage: cb_receiver.py CERT KEY PORT_FILE LOG_FILE
import http.server
import json
import ssl
import sys
import threading
import time

cert, key, port_file, log_file = sys.argv[1:5]
lock = threading.Lock()
log = open(log_file, "a", buffering=1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        try:
            j = json.loads(body)
            fcid = j["header"]["functionCallIdentifier"]
            line = "%.3f\t%s\t%s\t%s\n" % (time.time(), fcid, j.get("iccid", ""),
                                            j.get("notificationPointId", ""))
        except (ValueError, KeyError, TypeError):
            line = "%.3f\tBAD\t\t\n" % time.time()
        with lock:
            log.write(line)
        out = json.dumps({"header": {"functionExecutionStatus":
                                     {"status": "Executed-Success"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
