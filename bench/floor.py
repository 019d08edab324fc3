#!/usr/bin/env python3
"""The floor of a list read: every page of a list, in pages of 500, read off one
connection and discarded; only each page's continue token is looked at.

    bench/floor.py KUBECONFIG json|protobuf [PATH] [--gzip] [--per-namespace N]

PATH defaults to /api/v1/pods. --gzip sends Accept-Encoding: gzip and inflates what comes
back (as a client must). --per-namespace N lists the pods of each namespace instead, N
namespaces at a time, each on its own connection. Prints bytes read, pages and requests on
stderr.
"""
import base64
import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import urllib.parse
import zlib

ACCEPT = {
    "json": "application/json",
    "protobuf": "application/vnd.kubernetes.protobuf",
}


def context(kubeconfig):
    """An SSL context from the kubeconfig's embedded CA and client certificate."""
    text = open(kubeconfig).read()

    def field(name):
        return base64.b64decode(re.search(name + r":\s*(\S+)", text).group(1))

    server = re.search(r"server:\s*(\S+)", text).group(1)
    tmp = tempfile.mkdtemp()
    paths = {}
    for key, name in [("ca", "certificate-authority-data"), ("crt", "client-certificate-data"),
                      ("key", "client-key-data")]:
        paths[key] = os.path.join(tmp, key)
        with open(paths[key], "wb") as f:
            f.write(field(name))
    ctx = ssl.create_default_context(cafile=paths["ca"])
    ctx.load_cert_chain(paths["crt"], paths["key"])
    return urllib.parse.urlparse(server), ctx


def varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def fields(b):
    """The top-level fields of a protobuf message that begins in b (which may be cut short):
    (number, value) for length-delimited ones, as far as b goes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, i = varint(b, i)
            yield number, b[i:i + n]
            i += n
        elif wire == 0:
            _, i = varint(b, i)
        else:
            return


def continue_token(head, encoding):
    """The continue token, from the first bytes of a page (ListMeta comes first)."""
    if encoding == "json":
        m = re.search(rb'"continue":"([^"]*)"', head)
        return m.group(1).decode() if m else ""
    assert head[:4] == b"k8s\0", head[:16]
    for number, raw in fields(head[4:]):
        if number == 2:  # runtime.Unknown.raw: the PodList
            for n, meta in fields(raw):
                if n == 1:  # ListMeta
                    for k, v in fields(meta):
                        if k == 3:
                            return v.decode()
                    return ""
    return ""


def read_list(url, ctx, encoding, path, gzip, totals):
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
    token = None
    while token != "":
        query = {"limit": "500"}
        if token:
            query["continue"] = token
        headers = {"Accept": ACCEPT[encoding]}
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        conn.request("GET", path + "?" + urllib.parse.urlencode(query), headers=headers)
        r = conn.getresponse()
        if r.status != 200:
            sys.exit(f"{path}: HTTP {r.status}: {r.read()[:300]!r}")
        inflate = zlib.decompressobj(31) if r.getheader("Content-Encoding") == "gzip" else None
        head = b""
        size = 0
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            totals["wire"] += len(chunk)
            if inflate:
                chunk = inflate.decompress(chunk)
            size += len(chunk)
            if len(head) < 4096:
                head += chunk[:4096]
        totals["bytes"] += size
        totals["pages"] += 1
        token = continue_token(head, encoding)
    conn.close()


def main():
    args = sys.argv[1:]
    gzip = "--gzip" in args
    per_ns = 0
    if "--per-namespace" in args:
        i = args.index("--per-namespace")
        per_ns = int(args[i + 1])
        del args[i:i + 2]
    args = [a for a in args if a != "--gzip"]
    kubeconfig, encoding = args[0], args[1]
    path = args[2] if len(args) > 2 else "/api/v1/pods"
    url, ctx = context(kubeconfig)
    totals = {"bytes": 0, "wire": 0, "pages": 0}
    if not per_ns:
        read_list(url, ctx, encoding, path, gzip, totals)
    else:
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
        conn.request("GET", "/api/v1/namespaces", headers={"Accept": "application/json"})
        names = [n["metadata"]["name"] for n in json.loads(conn.getresponse().read())["items"]]
        totals["pages"] += 1
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not names:
                        return
                    ns = names.pop()
                read_list(url, ctx, encoding, f"/api/v1/namespaces/{ns}/pods", gzip, totals)

        threads = [threading.Thread(target=worker) for _ in range(per_ns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"{encoding}{' gzip' if gzip else ''}: {totals['bytes']} bytes ({totals['wire']} on the wire) "
          f"in {totals['pages']} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
