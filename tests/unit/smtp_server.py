#!/usr/bin/python3
"""A real SMTP server on loopback for test_operator_smtp: aiosmtpd (Debian's
python3-aiosmtpd) with STARTTLS required before anything else, AUTH PLAIN /
LOGIN required (only after STARTTLS) for one user and password, and every
accepted message written to OUT/N.eml (written to a temp name first, then
renamed). Exit 77 when aiosmtpd is not installed.

usage: smtp_server.py --port N --out DIR --ready FILE [--cert C --key K]
                      [--user U --password P] [--no-tls] [--login-only]
"""
import argparse
import os
import signal
import ssl
import sys
import threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:
    print("python3-aiosmtpd is not installed", file=sys.stderr)
    sys.exit(77)

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--ready", required=True)
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--no-tls", action="store_true")
ap.add_argument("--login-only", action="store_true")
a = ap.parse_args()

# a server started again on the same folder numbers on from what is there
lock = threading.Lock()
count = [len([n for n in os.listdir(a.out) if n.endswith(".eml")])]

# die with the test that started us, even if it is killed
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass


class Sink:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            count[0] += 1
            n = count[0]
        tmp = os.path.join(a.out, ".%d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-From: %s\r\nX-Envelope-To: %s\r\nX-Authenticated: %s\r\n"
                     % (envelope.mail_from, ",".join(envelope.rcpt_tos),
                        "yes" if session.authenticated else "no")).encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(a.out, "%d.eml" % n))
        return "250 OK stored as %d" % n


def check(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login == (a.user or "").encode()
          and auth_data.password == (a.password or "").encode())
    return AuthResult(success=ok, handled=False)


kw = {}
if not a.no_tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    kw.update(tls_context=ctx, require_starttls=True)
if a.user:
    kw.update(authenticator=check, auth_required=True, auth_require_tls=not a.no_tls)
    if a.login_only:
        kw.update(auth_exclude_mechanism=["PLAIN"])

ctl = Controller(Sink(), hostname="127.0.0.1", port=a.port, **kw)
ctl.start()
with open(a.ready + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(a.ready + ".tmp", a.ready)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
while not stop.wait(0.2):
    pass
ctl.stop()
