#!/usr/bin/env python3
"""The floor of a one-at-a-time restart: for each Deployment of a namespace in turn, the
restart patch (`kubectl.kubernetes.io/restartedAt`, as `kubectl rollout restart` sends
it), then a watch from the patched object's resourceVersion until kubectl would call the
rollout done. Nothing else is read or checked: what remains is the rollouts' own time
(the controllers, the injector, the scheduler), which no client can shorten.

    bench/roll-floor.py KUBECONFIG NAMESPACE

Prints each Deployment's rollout time on stderr, and the sum.
"""
import datetime
import json
import sys
import time
import urllib.parse

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from floor import context  # noqa: E402

import http.client  # noqa: E402


def request(conn, method, path, body=None, content_type=None):
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)


def done(d):
    """kubectl's rollout status for a Deployment (DeploymentStatusViewer)."""
    spec, status = d.get("spec", {}), d.get("status", {})
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    return updated >= want and status.get("replicas", 0) <= updated and status.get("availableReplicas", 0) >= updated


def roll(url, ctx, conn, ns, name, stamp):
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    patched = request(conn, "PATCH", f"{base}/{name}", json.dumps(patch), "application/merge-patch+json")
    # The same stamp again changes nothing: no new generation, and no event would come.
    if done(patched):
        return
    query = urllib.parse.urlencode({"watch": "1", "fieldSelector": f"metadata.name={name}",
                                    "resourceVersion": patched["metadata"]["resourceVersion"]})
    watch = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
    watch.request("GET", f"{base}?{query}", headers={"Accept": "application/json"})
    r = watch.getresponse()
    if r.status != 200:
        sys.exit(f"watch {name}: HTTP {r.status}")
    while True:
        line = r.readline()
        if not line:
            sys.exit(f"watch {name} ended before the rollout did")
        event = json.loads(line)
        if event["type"] in ("ADDED", "MODIFIED") and done(event["object"]):
            break
    watch.close()


def main():
    kubeconfig, ns = sys.argv[1], sys.argv[2]
    url, ctx = context(kubeconfig)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
    names = sorted(d["metadata"]["name"] for d in
                   request(conn, "GET", f"/apis/apps/v1/namespaces/{ns}/deployments")["items"])
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    total = 0.0
    for name in names:
        start = time.monotonic()
        roll(url, ctx, conn, ns, name, stamp)
        took = time.monotonic() - start
        total += took
        print(f"{name} {took * 1000:.0f} ms", file=sys.stderr)
    print(f"{len(names)} rollouts, {total:.2f} s in all, {total / max(len(names), 1) * 1000:.0f} ms each",
          file=sys.stderr)


main()
