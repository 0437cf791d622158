"""Forward a voice message with CATENATE from Python's imaplib: the new
headers and a text part as TEXT, the audio part by URL, the closing
boundary as TEXT, sent with _simple_command and LITERAL+ literals (imaplib
sends one synchronizing literal per command only). Then fetch the audio of
the new message and compare its SHA-256.
Usage: catenate_client.py host port user pass uidvalidity uid audio-sha256.
Exits non-zero with a message on the first unexpected answer."""
import hashlib
import imaplib
import sys

host, port, user, password, uidvalidity, uid, want = sys.argv[1:8]
port = int(port)


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def literal(data):
    return b"{%d+}\r\n" % len(data) + data


m = imaplib.IMAP4(host, port)
typ, caps = m.capability()
check(typ == "OK" and b"CATENATE" in caps[0].split() and b"LITERAL+" in caps[0].split(), "capability %r" % caps)
check(m.login(user, password)[0] == "OK", "login")
check(m.create("Forwarded")[0] == "OK", "create")
head = (b"From: <%s@example.net>\r\nTo: <carol@example.net>\r\nSubject: Fwd: voice message\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=fwd\r\n\r\n"
        b"--fwd\r\nContent-Type: text/plain\r\n\r\nForwarded from Python.\r\n--fwd\r\n") % user.encode()
tail = b"\r\n--fwd--\r\n"
src = "/INBOX;UIDVALIDITY=%s/;UID=%s" % (uidvalidity, uid)
parts = (b"(TEXT " + literal(head) +
         b' URL "' + src.encode() + b'/;SECTION=1.MIME"' +
         b' URL "' + src.encode() + b'/;SECTION=1"' +
         b" TEXT " + literal(tail) + b")")
typ, data = m._simple_command("APPEND", "Forwarded", "(\\Seen)", "CATENATE", parts)
check(typ == "OK", "catenate %r %r" % (typ, data))
typ, data = m.select("Forwarded")
check(typ == "OK" and data[0] == b"1", "select %r" % data)
typ, data = m.fetch("1", "(BINARY.PEEK[2])")
check(typ == "OK" and isinstance(data[0], tuple), "fetch %r" % data[:1])
got = hashlib.sha256(data[0][1]).hexdigest()
check(got == want, "audio sha256 %s, want %s" % (got, want))
# A bad URL: NO [BADURL ...], nothing appended.
bad = src.replace("UID=%s" % uid, "UID=%d" % (int(uid) + 50))
try:
    typ, data = m._simple_command("APPEND", "Forwarded", "CATENATE", b'(URL "' + bad.encode() + b'")')
except imaplib.IMAP4.error as e:
    typ, data = "NO", [str(e).encode()]
check(typ == "NO" and (b"[BADURL " + bad.encode() + b"]") in data[0], "badurl %r %r" % (typ, data))
typ, data = m.status("Forwarded", "(MESSAGES)")
check(typ == "OK" and b"MESSAGES 1" in data[0], "status %r" % data)
m.logout()
print("OK")
