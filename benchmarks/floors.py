"""The reference processes ("floors"), run as a plain script so they import almost nothing.

python benchmarks/floors.py noop DIR STATE       # stat the certificates, load the state
python benchmarks/floors.py nginx CONFS DIR STAPLES STATE  # and stat each site file, list
python benchmarks/floors.py http URL REQUESTS J  # POST the pre-built requests, J threads
python benchmarks/floors.py kube URL CA TOKEN NS KEY  # list the TLS Secrets, decode them
"""

from __future__ import annotations

import sys


def noop(directory: str, state: str) -> None:
    """What a no-op refresh cannot avoid: list the files, stat each cert, load the state."""
    import json
    import os

    count = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".pem"):
                entry.stat()
                count += 1
    with open(state, "rb") as f:
        json.load(f)
    assert count


def nginx(confs: str, directory: str, staples: str, state: str) -> None:
    """What a no-op refresh of an nginx configuration cannot avoid besides ``noop``: know
    that no configuration file changed (stat each one: a site per file is common) and
    find each staple file (list the directory they are in)."""
    import os

    count = 0
    with os.scandir(confs) as entries:
        for entry in entries:
            os.stat(entry.path)
            count += 1
    with os.scandir(staples) as entries:
        names = {entry.name: entry.inode() for entry in entries}
    noop(directory, state)
    assert count and names


def http(url: str, requests_file: str, jobs: int) -> None:
    """The same requests ocsptool sends, POSTed by a minimal thread pool with keep-alive."""
    import http.client
    import threading
    import urllib.parse

    with open(requests_file, "rb") as f:
        data = f.read()
    bodies = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        bodies.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    parts = urllib.parse.urlsplit(url)
    lock = threading.Lock()
    todo = iter(bodies)

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        headers = {"Content-Type": "application/ocsp-request"}
        while True:
            with lock:
                body = next(todo, None)
            if body is None:
                break
            connection.request("POST", parts.path, body, headers)
            response = connection.getresponse()
            if response.status != 200 or not response.read():
                raise SystemExit(f"HTTP {response.status}")
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def kube(url: str, ca_file: str, token_file: str, namespace: str, key: str) -> None:
    """What a no-op refresh of TLS Secrets cannot avoid: list them in pages of 250 (as
    the client does) over one TLS connection, parse each page, decode each Secret's
    tls.crt and staple. Standard library only."""
    import base64
    import http.client
    import json
    import ssl
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, context=context, timeout=60
    )
    with open(token_file) as f:
        token = f.read().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    params = {"limit": "250", "fieldSelector": "type=kubernetes.io/tls"}
    count = 0
    while True:
        query = urllib.parse.urlencode(params)
        connection.request("GET", f"/api/v1/namespaces/{namespace}/secrets?{query}", None, headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}")
        page = json.loads(body)
        for item in page["items"]:
            data = item["data"]
            base64.b64decode(data["tls.crt"])
            base64.b64decode(data.get(key, ""))
            count += 1
        more = page["metadata"].get("continue")
        if not more:
            break
        params["continue"] = more
    connection.close()
    assert count


if __name__ == "__main__":
    if sys.argv[1] == "noop":
        noop(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "nginx":
        nginx(*sys.argv[2:6])
    elif sys.argv[1] == "http":
        http(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "kube":
        kube(*sys.argv[2:7])
    else:
        raise SystemExit(f"unknown floor {sys.argv[1]!r}")
