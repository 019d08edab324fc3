#!/usr/bin/env python3
"""Writes a fixture: the objects of a `kubectl get -o json` list on stdin, as
the API server holds them minus what it fills in itself (uid,
resourceVersion, timestamps, managedFields, status, cluster IPs, node ports),
in a stable order, after a header comment.

    kubectl get KINDS -A -l SELECTOR -o json | save.py HEADER [--release NAME] [--expect MANIFEST] [--no-ca-bundle]

--release NAME keeps only the objects Helm wrote for release NAME (annotation
meta.helm.sh/release-name); --expect MANIFEST (the output of `helm get
manifest NAME`) fails unless every object of that manifest but its CRDs was
saved, so no kind is forgotten. --no-ca-bundle drops the webhooks' caBundle
(the sandbox injector's CA, which it writes in again as istiod would). Labels and annotations stay as written
(Helm's app.kubernetes.io/managed-by, meta.helm.sh/release-name included).
Used by generate-helm, generate-tags and generate-gateways.
"""
import argparse
import json
import sys

import yaml

ORDER = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap",
         "Secret", "ResourceQuota", "NetworkPolicy", "Service", "Deployment", "DaemonSet", "PodDisruptionBudget",
         "HorizontalPodAutoscaler", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


def strip(o, no_ca_bundle=False):
    m = o["metadata"]
    for f in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"]:
        m.pop(f, None)
    ann = m.get("annotations", {})
    ann.pop("deployment.kubernetes.io/revision", None)
    ann.pop("deprecated.daemonset.template.generation", None)
    if not ann:
        m.pop("annotations", None)
    o.pop("status", None)
    if o["kind"] == "Service":
        s = o["spec"]
        for f in ["clusterIP", "clusterIPs", "healthCheckNodePort"]:
            s.pop(f, None)
        for p in s.get("ports", []):
            p.pop("nodePort", None)
    if no_ca_bundle:
        for w in o.get("webhooks", []):
            w.get("clientConfig", {}).pop("caBundle", None)
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("header")
    ap.add_argument("--release")
    ap.add_argument("--expect")
    ap.add_argument("--no-ca-bundle", action="store_true")
    args = ap.parse_args()
    items = json.load(sys.stdin)["items"]
    if args.release:
        items = [o for o in items
                 if o["metadata"].get("annotations", {}).get("meta.helm.sh/release-name") == args.release]
    items.sort(key=lambda o: (ORDER.index(o["kind"]) if o["kind"] in ORDER else len(ORDER), o["kind"],
                              o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    if args.expect:
        with open(args.expect) as f:
            want = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(f)
                    if d and d["kind"] != "CustomResourceDefinition"}
        have = {(o["kind"], o["metadata"]["name"]) for o in items}
        if want - have:
            sys.exit("save.py: not saved (add the kind to KINDS): %s" % sorted(want - have))
    out = [yaml.safe_dump(strip(o, args.no_ca_bundle), sort_keys=False, default_flow_style=False, width=1000) for o in items]
    print(args.header.rstrip())
    print("---\n" + "---\n".join(out), end="")


main()
