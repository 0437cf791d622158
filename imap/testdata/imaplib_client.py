"""Exercise the server with Python's imaplib: login, list, select, append,
fetch, store, search, expunge. Usage: imaplib_client.py host port user pass.
Exits non-zero with a message on the first unexpected answer."""
import imaplib
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


m = imaplib.IMAP4(host, port)
typ, caps = m.capability()
check(typ == "OK" and b"IMAP4rev1" in caps[0], "capability %r" % caps)
typ, _ = m.login(user, password)
check(typ == "OK", "login")
typ, boxes = m.list()
check(typ == "OK" and any(b'"INBOX"' in b or b" INBOX" in b for b in boxes), "list %r" % boxes)
typ, _ = m.create("Python")
check(typ == "OK", "create")
msg = b"From: py@example.net\r\nSubject: from python\r\n\r\nhello from imaplib\r\n"
typ, data = m.append("Python", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
check(typ == "OK" and b"APPENDUID" in data[0], "append %r" % data)
m.append("Python", None, None, b"Subject: second\r\n\r\nbye\r\n")
typ, data = m.select("Python")
check(typ == "OK" and data[0] == b"2", "select %r" % data)
typ, data = m.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[])")
check(typ == "OK" and data[0][1] == msg, "fetch %r" % data)
check(b"\\Flagged" in data[0][0], "flags %r" % data)
typ, data = m.search(None, "SUBJECT", '"from python"')
check(typ == "OK" and data[0] == b"1", "search %r" % data)
typ, data = m.uid("SEARCH", None, "ALL")
check(typ == "OK" and len(data[0].split()) == 2, "uid search %r" % data)
typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
check(typ == "OK" and b"\\Deleted" in data[0], "store %r" % data)
typ, data = m.expunge()
check(typ == "OK" and data[0] == b"2", "expunge %r" % data)
typ, data = m.status("Python", "(MESSAGES UIDNEXT)")
check(typ == "OK" and b"MESSAGES 1" in data[0], "status %r" % data)
m.close()
m.logout()
print("OK")
