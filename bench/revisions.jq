# Proxies per revision, from a pod list: what `kubectl get pods -A -o json | jq` gives
# without the plugin (the revision in each pod's sidecar.istio.io/status annotation).
[.items[] | .metadata.annotations["sidecar.istio.io/status"] // empty | fromjson | .revision]
| group_by(.) | map({key: .[0], value: length}) | from_entries
