#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets whose seeds are small, hand-made
messages (tests/fuzz/corpus/<target>/). Run from anywhere; files are
overwritten. The SAIP seeds come from rsp_saip_make_test_upp (our own
minimal profile), the DER card answers from the unit tests' encodings; no
GSMA test data is copied."""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# activation codes (SGP.22 4.1)
for name, ac in {
    "plain": "LPA:1$smdp.example.com$MATCH-1234",
    "port_oid": "LPA:1$smdp.example.com:8443$ABC-DEF$1.3.6.1.4.1.31746$1",
    "bare": "1$127.0.0.1$X",
    "empty_oid_cc": "LPA:1$rsp.test$mid$$1",
    "newline": "LPA:1$a.b$c\n",
}.items():
    put("fuzz_rsp_activation_code", name, ac)

# modem replies for fuzz_apdu_at: [flags] then replies split by NUL, one per
# command: MANAGE CHANNEL is local in cgla mode, so the first reply answers
# AT+CCHO, then AT+CGLA for SELECT, STORE DATA, GET RESPONSE, then AT+CCHC.
cgla = [b"\r\n1\r\n\r\nOK\r\n",
        b'\r\n+CGLA: 4,"9000"\r\n\r\nOK\r\n',
        b'\r\n+CGLA: 10,"BF3E006110"\r\n\r\nOK\r\n',
        b'\r\n+CGLA: 40,"BF3E125A108904903212345123451234567890"\r\n\r\nOK\r\n',
        b"\r\nOK\r\n"]
put("fuzz_apdu_at", "cgla", bytes([0x08]) + b"\0".join(cgla))
put("fuzz_apdu_at", "cgla_echo_split", bytes([0x02]) + b"\0".join(
    [b'AT+CCHO="A0000005591010FFFFFFFF8900000100"\r\r\n+CCHO: 2\r\nOK\r\n'] + cgla[1:]))
csim = [b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n',
        b'\r\n+CSIM: 4,"9000"\r\n\r\nOK\r\n',
        b'\r\n+CSIM: 4,"6110"\r\nOK\r\n',
        b'+CSIM: 4,"6A82"\r\nOK\r\n',
        b"ERROR\r\n"]
put("fuzz_apdu_at", "csim", bytes([0x0F]) + b"\0".join(csim))
put("fuzz_apdu_at", "cme_error", bytes([0x00]) + b"+CME ERROR: 4\r\n\0ERROR\r\n")


def frame(b):
    return len(b).to_bytes(2, "big") + b


# socket frames for fuzz_apdu_frame: power on, ATR, SELECT, STORE DATA
select = bytes.fromhex("00A4040010A0000005591010FFFFFFFF8900000100")
store = bytes.fromhex("80E2910003BF3E00")
put("fuzz_apdu_frame", "session", frame(b"\x01") + frame(b"\x04") + frame(select)
    + frame(store) + frame(bytes.fromhex("00C0000000")) + frame(b"\x00"))
put("fuzz_apdu_frame", "truncated", frame(b"\x04") + b"\x00\x10\x80")
put("fuzz_apdu_frame", "reset_channel", frame(b"\x02") + frame(bytes.fromhex("0070000001"))
    + frame(bytes.fromhex("01A4040010A0000005591010FFFFFFFF8900000100")))

# card answers for fuzz_lpa_es10: [which] + DER
es10 = {
    0: ["BF2D03810101",
        "BF2D2EA02CE32A5A0A989209012143658709F59F7010A0000005591010FFFFFFFF8900001000"
        "9F700101950102910474657374"],
    1: ["BF3E125A1089049032123451234512345678901235"],
    2: ["BF3C1180087270732E74657374810573642E6473"],
    3: ["BF20208203020300A90C0414F54172BDF98A95D65CBEB88A38A1C11D800A85C3AA0C0414F54172BD"
        "F98A95D65CBEB88A38A1C11D800A85C3"],
    5: ["BF2E1280100123456789ABCDEF0123456789ABCDEF"],
    6: ["BF2803810101", "BF2819A017BF2F14800101810207805A0A98001032547698103214"],
    7: ["BF2B0381010 1".replace(" ", "")],
    9: ["BF3806A1048001FF"],
    12: ["BF3708BF2705BF2F02800101"],
    13: ["BF3103800100", "BF3303800101"],
}
for which, items in es10.items():
    for i, h in enumerate(items):
        put("fuzz_lpa_es10", "%02d_%d" % (which, i), bytes([which]) + bytes.fromhex(h))

# ES2+ requests for fuzz_smdp_es2: [function] + JSON (SGP.22 5.3)
hdr = '"header":{"functionRequesterIdentifier":"fuzzop","functionCallIdentifier":"c1"}'
es2 = {
    "0_download": (0, '{%s,"eid":"89049032123451234512345678901235","profileType":"fuzztype"}' % hdr),
    "0_download_iccid": (0, '{%s,"iccid":"8944476500000000017"}' % hdr),
    "1_confirm": (1, '{%s,"iccid":"8944476500000000017","eid":"89049032123451234512345678901235",'
                  '"matchingId":"ABC-123","confirmationCode":"","smdsAddress":"","releaseFlag":true}' % hdr),
    "2_cancel": (2, '{%s,"iccid":"8944476500000000017","matchingId":"ABC-123",'
                 '"finalProfileStatusIndicator":"Available"}' % hdr),
    "3_release": (3, '{%s,"iccid":"8944476500000000017"}' % hdr),
    "4_unknown": (4, '{}'),
    "8_no_cert": (8, '{%s,"profileType":"fuzztype"}' % hdr),
}
for name, (fn, body) in es2.items():
    put("fuzz_smdp_es2", name, bytes([fn]) + body.encode())

# portal requests for fuzz_op_http: [route][flags] [cookie \0] query \0 body
# (route numbers: the table in fuzz_op_http.c; flags 1 Jan, 2 reviewer, 3 admin)
PDF = "JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK"  # "%PDF-1.4\n%identity copy\n%%EOF\n"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg=="
http = {
    "00_login": (0, 0, "", '{"login":"jan.peeters@example.be","password":"jan-demo-2026"}'),
    "00_login_bad": (0, 0x10, "", '{"login":"jan.peeters@example.be","password":"x"}'),
    "01_staff_login": (1, 0, "", '{"login":"admin","password":"admin-demo-2026"}'),
    "02_logout": (2, 1, "", ""),
    "03_me": (3, 2, "", ""),
    "04_account": (4, 1, "", ""),
    "05_pay": (5, 1, "", '{"invoice_id":1}'),
    "06_precheck": (6, 1, "id=1", ""),
    "07_submit_pdf": (7, 1, "", '{"line_id":1,"reason":"moving abroad","document_type":"id_card",'
                      '"document_number":"BE123","document_copy":"%s","document_mime":"application/pdf"}' % PDF),
    "07_submit_png": (7, 1, "", '{"line_id":1,"reason":"r","document_type":"passport",'
                      '"document_number":"P1","document_copy":"%s"}' % PNG),
    "08_cases": (8, 1, "", ""),
    "09_case": (9, 1, "id=1", ""),
    "10_respond": (10, 1, "", '{"case_id":1,"message":"here it is","document_copy":"%s"}' % PDF),
    "11_record": (11, 1, "x=1&id=1", ""),
    "12_record_html": (12, 1, "id=1", ""),
    "13_reference": (13, 0, "", '{"reference":"OP-ABCD-EFGH"}'),
    "14_queue": (14, 2, "", ""),
    "15_staff_case": (15, 2, "id=1", ""),
    "16_document": (16, 2, "id=1", ""),
    "17_document_view": (17, 3, "id=1", ""),
    "18_take": (18, 2, "", '{"case_id":1}'),
    "19_approve": (19, 3, "", '{"case_id":1,"note":"identity checked"}'),
    "20_reject": (20, 2, "", '{"case_id":1,"reason":"document unreadable"}'),
    "21_request_info": (21, 2, "", '{"case_id":1,"message":"please send a clearer copy"}'),
    "22_settings": (22, 3, "", ""),
    "23_settings_set": (23, 3, "", '{"final_invoice_policy":"waive","deletion_reminder_seconds":3600}'),
    "24_index": (24, 0, "", ""),
    "26_static": (26, 0, "app.js", ""),
    "26_static_dotdot": (26, 0, "../op.c", ""),
    "85_wrong_method": (0x85, 1, "", "{}"),
    "no_csrf": (5, 1 | 4, "", '{"invoice_id":1}'),
}
for name, (route, flags, query, body) in http.items():
    put("fuzz_op_http", name, bytes([route, flags]) + query.encode() + b"\0" + body.encode())
put("fuzz_op_http", "cookie_input", bytes([3, 8]) + b"a=b; esim_session=" + b"0" * 64 + b"\0\0")

# ES9+ / ES11 answers for fuzz_lpa_es9: [function] + JSON body; the session
# of the harness: transaction 01..10, challenge C0..CF, smdp.example.com
import base64


def tlv(tag, body):
    t = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    n = len(body)
    ln = bytes([n]) if n < 0x80 else (bytes([0x81, n]) if n < 0x100 else bytes([0x82]) + n.to_bytes(2, "big"))
    return t + ln + body


TX = bytes(range(1, 17))
b64 = lambda b: base64.b64encode(b).decode()
OK = '"header":{"functionExecutionStatus":{"status":"Executed-Success"}}'
signed1 = tlv(0x30, tlv(0x80, TX) + tlv(0x81, bytes(range(0xC0, 0xD0))) + tlv(0x83, b"smdp.example.com"))
signed2 = tlv(0x30, tlv(0x80, TX) + tlv(0x01, b"\x00"))
meta = tlv(0xBF25, tlv(0x5A, bytes.fromhex("98230000000000000071")) + tlv(0x91, b"Fuzz") + tlv(0x92, b"Profile")
           + tlv(0x95, b"\x02"))
bpp = tlv(0xBF36, tlv(0xBF23, tlv(0x82, b"\x01")) + tlv(0xA0, tlv(0x87, b"\x00" * 8)) + tlv(0xA3, tlv(0x86, b"\x11" * 16)))
es9 = {
    "0_initiate": (0, '{%s,"transactionId":"%s","serverSigned1":"%s","serverSignature1":"%s",'
                   '"euiccCiPKIdToBeUsed":"%s","serverCertificate":"%s"}'
                   % (OK, TX.hex().upper(), b64(signed1), b64(tlv(0x5F37, b"\x00" * 64)),
                      b64(tlv(0x04, b"\x11" * 20)), b64(tlv(0x30, b"")))),
    "1_authenticate_client": (1, '{%s,"transactionId":"%s","profileMetadata":"%s","smdpSigned2":"%s",'
                              '"smdpSignature2":"%s","smdpCertificate":"%s"}'
                              % (OK, TX.hex().upper(), b64(meta), b64(signed2), b64(tlv(0x5F37, b"\x00" * 64)),
                                 b64(tlv(0x30, b"")))),
    "2_bpp": (2, '{%s,"transactionId":"%s","boundProfilePackage":"%s"}' % (OK, TX.hex().upper(), b64(bpp))),
    "3_events": (3, '{%s,"transactionId":"%s","eventEntries":[{"eventId":"EVT-1","rspServerAddress":'
                 '"smdp.example.com"},{"eventId":"EVT-2","rspServerAddress":"other.example.com"}]}'
                 % (OK, TX.hex().upper())),
    "3_events_not_list": (3, '{%s,"eventEntries":{"eventId":"EVT-1"}}' % OK),
    "4_notification": (4, '{%s}' % OK),
    "5_failed": (5, '{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":'
                 '{"subjectCode":"8.2.1","reasonCode":"3.8","message":"no such session"}}}}'),
    "0_warning": (0, '{"header":{"functionExecutionStatus":{"status":"Executed-WithWarning"}}}'),
}
# Long base64 members (>= 512 characters) take the LPA's fast parse
# (lpa_es9_parse); these put it next to what it must not get wrong:
# whitespace around the colon, a duplicate key, an escaped key, a long value
# nested below the top level, and a value that is not all base64.
big = b64(bpp + b"\x00" * 600)
es9.update({
    "2_bpp_long": (2, '{%s,"transactionId":"%s","boundProfilePackage":"%s"}' % (OK, TX.hex().upper(), big)),
    "2_bpp_long_spaced": (2, '{ %s , "transactionId" : "%s" ,\n "boundProfilePackage" :\t"%s" }'
                          % (OK, TX.hex().upper(), big)),
    "2_bpp_long_dup": (2, '{%s,"boundProfilePackage":"%s","boundProfilePackage":"%s"}' % (OK, big, big)),
    "2_bpp_long_escaped_key": (2, '{%s,"boundProfile\\u0050ackage":"%s"}' % (OK, big)),
    "2_bpp_long_nested": (2, '{%s,"x":{"boundProfilePackage":"%s"},"y":["%s"]}' % (OK, big, big)),
    "2_bpp_long_not_b64": (2, '{%s,"boundProfilePackage":"%s\\n%s"}' % (OK, big, big)),
})
for name, (fn, body) in es9.items():
    put("fuzz_lpa_es9", name, bytes([fn]) + body.encode())
