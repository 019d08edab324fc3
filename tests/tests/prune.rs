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
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "restart", "deployment", "-n", "default"]),
    );
    let deployments = stdout(
        sandbox
            .kubectl()
            .args(["get", "deployments", "-n", "default", "-o", "name"]),
    );
    for d in deployments.lines() {
        stdout(
            sandbox
                .kubectl()
                .args(["rollout", "status", d, "-n", "default", "--timeout=180s"]),
        );
    }
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
}
