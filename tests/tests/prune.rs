//! `kubectl mesh prune` on the sandbox, through the real kubectl: STEP 4 of the seed's
//! canary upgrade, refused while 1-27 is in use, then removing exactly 1-27 and nothing
//! that 1-28 still needs.

use std::collections::{BTreeMap, BTreeSet};

use kubectl_mesh_e2e::{Sandbox, run, stdout};
use serde_json::Value;

const KINDS: &str = "deployments,daemonsets,services,configmaps,secrets,serviceaccounts,rolebindings,roles,poddisruptionbudgets,horizontalpodautoscalers,mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings";

/// (kind, namespace, name) → (uid, resourceVersion, istio.io/rev label) of every object
/// of the kinds prune may delete.
fn objects(sandbox: &Sandbox) -> BTreeMap<(String, String, String), (String, String, String)> {
    let text = stdout(sandbox.kubectl().args(["get", KINDS, "-A", "-o", "json"]));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                (s(&o["kind"]), s(&m["namespace"]), s(&m["name"])),
                (s(&m["uid"]), s(&m["resourceVersion"]), s(&m["labels"]["istio.io/rev"])),
            )
        })
        .collect()
}

fn prune(sandbox: &Sandbox, args: &[&str]) -> (i32, String, String) {
    run(sandbox.plugin("prune").args(args))
}

#[test]
fn canary_step_4_prunes_exactly_1_27_once_nothing_uses_it() {
    let sandbox = Sandbox::fresh("canary");
    let start = objects(&sandbox);

    // Unknown revision: bad input.
    let (code, _, err) = prune(&sandbox, &["1-26", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("revision 1-26 not found"), "{err}");

    // In use: refused, naming every user and the command that frees it.
    let (code, _, err) = prune(&sandbox, &["1-27", "--yes"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert!(err.contains("revision tag default points to 1-27"), "{err}");
    assert!(err.contains("kubectl mesh relabel --tag default --to 1-28"), "{err}");
    assert!(err.contains("namespace default is labelled istio.io/rev=1-27"), "{err}");
    assert!(err.contains("kubectl mesh relabel --from 1-27 --to 1-28 -A"), "{err}");
    assert!(
        err.contains("carry proxies injected by 1-27") && err.contains("kubectl mesh roll -n default"),
        "{err}"
    );
    assert_eq!(objects(&sandbox), start, "a refused prune deletes nothing");

    // Move the namespace and every pod.
    stdout(sandbox.plugin("relabel").args(["--from", "1-27", "--to", "1-28", "-A"]));
    sandbox.restart_all("default");
    // Still behind the default tag.
    let (code, _, err) = prune(&sandbox, &["1-27", "--yes"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("revision tag default points to 1-27"), "{err}");
    assert!(!err.contains("kubectl mesh roll"), "no pod runs 1-27 any more: {err}");

    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));

    // No terminal and no --yes: refused.
    let (code, _, err) = prune(&sandbox, &["1-27"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("pass --yes"), "{err}");

    let before = objects(&sandbox);
    let (code, plan_text, err) = prune(&sandbox, &["1-27", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(plan_text.contains("Dry run: nothing deleted."), "{plan_text}");
    println!("prune 1-27 --dry-run:\n{plan_text}");
    assert_eq!(objects(&sandbox), before);

    let (code, out, err) = prune(&sandbox, &["1-27", "--yes", "-o", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"], "deleted");
    let planned: BTreeSet<(String, String, String)> = doc["plan"]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != "Pod")
        .map(|i| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (s(&i["kind"]), s(&i["namespace"]), s(&i["name"]))
        })
        .collect();
    let after = objects(&sandbox);
    let gone: BTreeSet<_> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    assert_eq!(gone, planned, "exactly the planned objects are gone");
    assert!(planned.contains(&("Deployment".into(), "istio-system".into(), "istiod-1-27".into())));
    assert!(planned.contains(&(
        "MutatingWebhookConfiguration".into(),
        String::new(),
        "istio-sidecar-injector-1-27".into()
    )));
    for (k, (_, _, rev)) in &before {
        if !gone.contains(k) {
            assert_eq!(after.get(k).map(|v| &v.0), Some(&before[k].0), "{k:?} replaced");
        }
        if rev != "1-27" {
            assert!(!gone.contains(k), "{k:?} (istio.io/rev={rev}) deleted");
        }
    }
    for gw in ["istio-ingressgateway", "istio-egressgateway"] {
        for kind in ["Deployment", "Service"] {
            let k = (kind.to_string(), "istio-system".to_string(), gw.to_string());
            assert!(after.contains_key(&k), "{k:?} must stay");
        }
    }
    assert!(after.contains_key(&(
        "MutatingWebhookConfiguration".into(),
        String::new(),
        "istio-revision-tag-default".into()
    )));

    // Injection for istio-injection=enabled namespaces now comes from 1-28.
    stdout(sandbox.kubectl().args(["create", "namespace", "legacy"]));
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "legacy", "istio-injection=enabled"]),
    );
    stdout(
        sandbox
            .kubectl()
            .args(["run", "probe", "-n", "legacy", "--image=busybox", "--restart=Never"]),
    );
    let pod = stdout(
        sandbox
            .kubectl()
            .args(["get", "pod", "probe", "-n", "legacy", "-o", "json"]),
    );
    assert!(pod.contains(r#"\"revision\":\"1-28\""#), "{pod}");

    // 1-28 is now the only revision.
    let (code, _, err) = prune(&sandbox, &["1-28", "--yes"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("1-28 is the only control-plane revision"), "{err}");

    // Pruning 1-27 again: all its selector still selects are the PDBs 1-28's gateways use.
    let (code, out, err) = prune(&sandbox, &["1-27", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Nothing of revision 1-27 is left to delete."), "{out}");
    // Once 1-28 owns them, nothing of 1-27 is selected; relabel's records show it was there.
    stdout(sandbox.kubectl().args([
        "label",
        "pdb",
        "istio-ingressgateway",
        "istio-egressgateway",
        "-n",
        "istio-system",
        "istio.io/rev=1-28",
        "--overwrite",
    ]));
    let (code, out, err) = prune(&sandbox, &["1-27", "--yes"]);
    println!("prune 1-27 --yes, pruned before:\n{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Revision 1-27 is already pruned"), "{out}");
    assert!(out.contains("namespace/default (was istio.io/rev=1-27"), "{out}");
    let (code, _, err) = prune(&sandbox, &["1-26", "--yes"]);
    assert_eq!(code, 2, "never installed: {err}");
}

/// Apply a manifest through kubectl, from a file (the sandbox's kubectl reads no stdin).
fn apply(sandbox: &Sandbox, name: &str, yaml: &str) {
    let path = std::env::temp_dir().join(format!("kubectl-mesh-prune-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    let _ = std::fs::remove_file(&path);
}

/// What istiod 1-28's deployment controller renders for a Gateway API `Gateway` named
/// shop-gateway (istio-discovery/files/kube-gateway.yaml): the pods carry the revision only
/// as the istio.io/rev annotation and are not injected.
const GATEWAY_API_1_28: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-gateway-istio
  namespace: shop
  labels:
    gateway.istio.io/managed: istio.io-gateway-controller
    gateway.networking.k8s.io/gateway-class-name: istio
    gateway.networking.k8s.io/gateway-name: shop-gateway
spec:
  selector:
    matchLabels:
      gateway.networking.k8s.io/gateway-name: shop-gateway
  template:
    metadata:
      annotations:
        istio.io/rev: 1-28
        prometheus.io/path: /stats/prometheus
        prometheus.io/port: "15020"
        prometheus.io/scrape: "true"
      labels:
        gateway.istio.io/managed: istio.io-gateway-controller
        gateway.networking.k8s.io/gateway-class-name: istio
        gateway.networking.k8s.io/gateway-name: shop-gateway
        istio.io/dataplane-mode: none
        service.istio.io/canonical-name: shop-gateway-istio
        service.istio.io/canonical-revision: latest
        sidecar.istio.io/inject: "false"
    spec:
      containers:
      - name: istio-proxy
        image: docker.io/istio/proxyv2:1.28.3
        args: [proxy, router, --domain, $(POD_NAMESPACE).svc.cluster.local]
        env:
        - {name: PILOT_CERT_PROVIDER, value: istiod}
        - {name: CA_ADDR, value: istiod-1-28.istio-system.svc:15012}
"#;

#[test]
fn canary_1_28_is_refused_while_its_gateways_serve_unless_they_are_included() {
    let sandbox = Sandbox::fresh("canary");
    // istiod 1-28 also runs a Gateway API gateway.
    apply(&sandbox, "gateway-api", GATEWAY_API_1_28);
    stdout(sandbox.kubectl().args([
        "rollout",
        "status",
        "deployment/shop-gateway-istio",
        "-n",
        "shop",
        "--timeout=60s",
    ]));
    let start = objects(&sandbox);

    // 1-28 took over the gateways at its install: pruning it would delete them.
    let (code, _, err) = prune(&sandbox, &["1-28", "--yes"]);
    println!("prune 1-28 --yes:\n{err}");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert!(
        err.contains("gateway deployment/istio-ingressgateway -n istio-system runs on 1-28 with 1 live pod(s)")
            && err.contains("pruning deletes it with service/istio-ingressgateway (LoadBalancer)"),
        "{err}"
    );
    assert!(
        err.contains("gateway deployment/istio-egressgateway -n istio-system"),
        "{err}"
    );
    assert!(
        err.contains("istioctl install --revision 1-27") && err.contains("--include-gateways"),
        "{err}"
    );
    assert!(
        err.contains("Gateway API gateway shop-gateway in namespace shop runs on 1-28")
            && err.contains("kubectl label gateway shop-gateway -n shop istio.io/rev=1-27 --overwrite"),
        "{err}"
    );
    assert_eq!(objects(&sandbox), start, "a refused prune deletes nothing");

    // --include-gateways takes the revision's own gateways, never a Gateway API one.
    let (code, _, err) = prune(&sandbox, &["1-28", "--include-gateways", "--dry-run"]);
    assert_eq!(code, 4, "{err}");
    assert!(!err.contains("gateway deployment/istio-ingressgateway"), "{err}");
    assert!(err.contains("Gateway API gateway shop-gateway"), "{err}");

    stdout(sandbox.kubectl().args([
        "delete",
        "deployment/shop-gateway-istio",
        "-n",
        "shop",
        "--cascade=foreground",
        "--wait=true",
        "--timeout=60s",
    ]));
    let (code, out, err) = prune(&sandbox, &["1-28", "--include-gateways", "--dry-run", "-o", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let deleted: BTreeSet<(String, String)> = doc["plan"]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (kind, name) in [
        ("Deployment", "istio-ingressgateway"),
        ("Service", "istio-ingressgateway"),
        ("Deployment", "istio-egressgateway"),
        ("Deployment", "istiod-1-28"),
    ] {
        assert!(
            deleted.contains(&(kind.into(), name.into())),
            "{kind}/{name}: {deleted:?}"
        );
    }
    assert_eq!(
        objects(&sandbox).len(),
        start.len() - 1,
        "only the Gateway API Deployment went"
    );
}

#[test]
fn helm_default_revision_is_refused_while_its_validators_call_istiod() {
    let sandbox = Sandbox::fresh("helm-canary-from-default");
    // STEP 2 and 3: the app moves to 1-28.
    stdout(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    sandbox.restart_all("default");
    let start = objects(&sandbox);

    // istio-base's istiod-default-validator still calls `istiod` and is not the revision's
    // own (it follows the default tag).
    let (code, _, err) = prune(&sandbox, &["default", "--yes"]);
    println!("prune default --yes:\n{err}");
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("validatingwebhookconfiguration/istiod-default-validator still calls service istio-system/istiod: without it every create and update of an Istio resource is rejected, cluster-wide"),
        "{err}"
    );
    assert!(
        err.contains("kubectl mesh relabel --tag default --to 1-28")
            && err.contains(
                "helm upgrade istio-base istio/base -n istio-system --reuse-values --set defaultRevision=1-28"
            ),
        "{err}"
    );
    // istiod's own validator (Helm labels it with the revision but no component) calls only
    // this istiod: it is pruned with the revision, not a user of it.
    assert!(!err.contains("istio-validator-istio-system"), "{err}");
    assert!(
        !err.contains("carry proxies injected by default"),
        "the app moved: {err}"
    );
    assert_eq!(objects(&sandbox), start, "a refused prune deletes nothing");

    // The commands named free the revision.
    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    let (code, out, err) = prune(&sandbox, &["default", "--dry-run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Dry run: nothing deleted."), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("delete")
            && l.contains("ValidatingWebhookConfiguration")
            && l.contains("istio-validator-istio-system")),
        "{out}"
    );
}

#[test]
fn pods_in_a_namespace_that_selects_no_revision_are_freed_by_a_restart_not_by_roll() {
    let sandbox = Sandbox::fresh("canary");
    // The app's namespace opted out of injection after its pods were injected by 1-27.
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio-injection=disabled"]),
    );

    // roll has nothing to restart there: a restart gives no revision.
    let (code, out, err) = run(sandbox.plugin("roll").args(["-n", "default", "--dry-run"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Nothing to restart"), "{out}");

    let (code, _, err) = prune(&sandbox, &["1-27", "--yes"]);
    println!("prune 1-27 --yes:\n{err}");
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("namespace default is labelled istio-injection=disabled, so a restart removes their sidecar and `kubectl mesh roll` restarts nothing"),
        "{err}"
    );
    assert!(
        err.contains("kubectl rollout restart deployment/api-gateway deployment/position-simulator deployment/position-tracker deployment/staff-service deployment/staff-service-risky-version deployment/vehicle-telemetry deployment/webapp -n default"),
        "{err}"
    );
    assert!(
        err.contains("kubectl mesh relabel --to 1-28 -n default, then kubectl mesh roll -n default"),
        "{err}"
    );
    assert!(
        !err.contains("→ kubectl mesh roll -n default"),
        "roll alone frees nothing here: {err}"
    );

    // The command named frees it: the pods come back without a sidecar.
    sandbox.restart_all("default");
    let (code, _, err) = prune(&sandbox, &["1-27", "--yes"]);
    assert_eq!(code, 4, "still the default tag: {err}");
    assert!(!err.contains("carry proxies injected by 1-27"), "{err}");
}
