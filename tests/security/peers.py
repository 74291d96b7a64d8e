"""The attacker's programs that sit where HAProxy's runtime API should be.

Each is stdlib-only Python source, run as the attacker with ``Attacker.start(CODE, ADDRESS,
...)``: ADDRESS is a Unix socket path or ``127.0.0.1:PORT``; it prints ``ready`` once it
listens, and serves every connection until killed.
"""

from __future__ import annotations

_LISTEN = """
import socket, sys, threading, time
address = sys.argv[1]
if address.startswith("/"):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(address)
else:
    host, port = address.rsplit(":", 1)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
server.listen(16)
print("ready", flush=True)

def serve_forever(handle):
    while True:
        client, _ = server.accept()
        threading.Thread(target=guarded, args=(handle, client), daemon=True).start()

def guarded(handle, client):
    try:
        with client:
            handle(client)
    except OSError:
        pass
"""

#: Answers ``prompt`` at once, then trickles one byte every 0.2 s, never a prompt: each
#: read gets data well within any timeout, so only a deadline per exchange ends it.
TRICKLE = (
    _LISTEN
    + """
def handle(client):
    client.recv(65536)
    client.sendall(b"\\n> ")
    while True:
        client.sendall(b"2")
        time.sleep(0.2)

serve_forever(handle)
"""
)

#: Answers ``prompt`` at once, then sends bytes as fast as it can, never a prompt.
FLOOD = (
    _LISTEN
    + """
def handle(client):
    client.recv(65536)
    client.sendall(b"\\n> ")
    block = b"A" * 65536
    while True:
        client.sendall(block)

serve_forever(handle)
"""
)

#: Plays HAProxy 2.6 well enough to be asked to load a renewed certificate: it lists
#: argv[3] in ``show ssl cert`` with another serial than the file's. Everything it receives
#: goes to the file argv[2] (what it would have stolen).
IMPOSTOR = (
    _LISTEN
    + """
loot = open(sys.argv[2], "ab", buffering=0)
listed = sys.argv[3]
NO_SLOT = "OCSP single response: Certificate ID does not match any certificate or issuer."

def answer(line):
    if line == "prompt":
        return None
    if line == "show version":
        return "2.6.12-1+deb12u4"
    if line == "show cli level":
        return "admin"
    if line.startswith("set ssl ocsp-response "):
        return NO_SLOT
    if line.startswith("show ssl ocsp-response"):
        return "Certificate ID does not match any certificate."
    if line == "show ssl cert":
        return "# filename\\n" + listed
    if line.startswith("show ssl cert "):
        return "Filename: " + listed + "\\nStatus: Used\\nSerial: 01"
    if line.startswith("set ssl cert "):
        return "Transaction created for certificate " + listed + "!"
    if line.startswith("commit ssl cert "):
        return "Committing " + listed + "\\nSuccess!"
    return "Unknown command."

def handle(client):
    buffer = b""
    payload = False
    while True:
        data = client.recv(65536)
        if not data:
            return
        loot.write(data)
        buffer += data
        while b"\\n" in buffer:
            raw, buffer = buffer.split(b"\\n", 1)
            line = raw.decode("utf-8", "replace")
            if payload:
                if line == "":
                    payload = False
                    client.sendall(("Transaction updated for certificate " + listed
                                    + "!\\n\\n> ").encode())
                continue
            if line.endswith(" <<"):
                payload = True
                continue
            reply = answer(line)
            client.sendall(b"\\n> " if reply is None else (reply + "\\n\\n> ").encode())

serve_forever(handle)
"""
)
