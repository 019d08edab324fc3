#!/usr/bin/env python3
"""Writes N injected pods as Istio's injector writes them, spread over namespaces, as
kubectl-ready YAML lists (one file per namespace). Half are injected by 1-27 and half by
1-28, in namespaces labelled istio.io/rev=1-28, so half are out of date. Pods use a
scheduler that does not exist: they stay Pending, which the model counts like Running,
and nothing else in the cluster spends CPU on them."""
import json
import os
import sys

total = int(sys.argv[1])
namespaces = int(sys.argv[2])
out = sys.argv[3]
os.makedirs(out, exist_ok=True)

per_ns = total // namespaces
for n in range(namespaces):
    ns = f"bench-{n:03d}"
    items = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"istio.io/rev": "1-28", "kubectl-mesh.bench": "true"}},
    }]
    for i in range(per_ns):
        rev, tag = ("1-27", "1.27.4") if i % 2 == 0 else ("1-28", "1.28.3")
        status = {"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                  "volumes": ["workload-socket", "istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
                  "imagePullSecrets": None, "revision": rev}
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"app-{i:05d}", "namespace": ns,
                "labels": {"app": f"app-{i % 50}", "security.istio.io/tlsMode": "istio",
                           "service.istio.io/canonical-name": f"app-{i % 50}",
                           "service.istio.io/canonical-revision": "v1"},
                "annotations": {"sidecar.istio.io/status": json.dumps(status), "istio.io/rev": rev,
                                "kubectl.kubernetes.io/default-container": "app"},
            },
            "spec": {
                "schedulerName": "kubectl-mesh-bench-unscheduled",
                "initContainers": [{"name": "istio-init", "image": f"docker.io/istio/proxyv2:{tag}",
                                    "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337"]}],
                "containers": [
                    {"name": "app", "image": "richardchesterwood/k8s-fleetman-webapp-angular:release2"},
                    {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{tag}",
                     "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                     "env": [{"name": "CA_ADDR", "value": f"istiod-{rev}.istio-system.svc:15012"},
                             {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}]},
                ],
            },
        })
    with open(os.path.join(out, f"{ns}.json"), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
