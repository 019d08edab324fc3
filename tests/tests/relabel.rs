//! `kubectl mesh relabel` on the sandbox, through the real kubectl: STEP 2 of the seed's
//! canary upgrade, its rollback (`--undo`), and the refusals that leave the cluster as it was.

use std::process::Stdio;

use kubectl_mesh_e2e::{Sandbox, injected_by, run, stdout};
use serde_json::Value;

fn json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let text = stdout(sandbox.kubectl().args(args).args(["-o", "json"]));
    serde_json::from_str(&text).unwrap()
}

fn labels(ns: &Value) -> Value {
    ns["metadata"]["labels"].clone()
}

/// Every namespace's metadata as the API server holds it (resourceVersion included), so
/// "unchanged" means not written at all.
fn namespaces(sandbox: &Sandbox) -> Vec<Value> {
    json(sandbox, &["get", "namespaces"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"].clone())
        .collect()
}

/// pod name → revision that injected it, in `default`.
fn app_pods(sandbox: &Sandbox) -> Vec<(String, String)> {
    let mut out: Vec<_> = json(sandbox, &["get", "pods", "-n", "default"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let status: Value = serde_json::from_str(
                p["metadata"]["annotations"]["sidecar.istio.io/status"]
                    .as_str()
                    .unwrap_or("{}"),
            )
            .unwrap();
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                status["revision"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn canary_step_2_moves_default_to_1_28_and_undo_restores_exactly() {
    let sandbox = Sandbox::fresh("canary");
    // Make the namespace carry both labels, as in istio/istio#43621, so relabel has an
    // istio-injection to remove and --undo one to restore.
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio-injection=enabled"]),
    );
    let before = labels(&json(&sandbox, &["get", "namespace", "default"]));
    let pods_before = app_pods(&sandbox);
    assert!(pods_before.iter().all(|(_, r)| r == "1-27"), "{pods_before:?}");

    let out = stdout(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert!(
        out.contains("namespace/default relabeled: istio.io/rev=1-27,istio-injection=enabled → istio.io/rev=1-28"),
        "{out}"
    );
    assert!(out.contains("removed istio-injection=enabled"), "{out}");
    assert!(out.contains("kubectl mesh roll -n default"), "{out}");
    let ns = json(&sandbox, &["get", "namespace", "default"]);
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "1-28");
    assert!(ns["metadata"]["labels"]["istio-injection"].is_null(), "{ns}");
    let remembered = ns["metadata"]["annotations"]["kubectl-mesh.io/relabel-previous"]
        .as_str()
        .unwrap();
    assert!(remembered.contains("\"istio-injection\":\"enabled\""), "{remembered}");

    // Pods change only when restarted.
    assert_eq!(app_pods(&sandbox), pods_before);

    // Idempotent: nothing is written the second time.
    let rv = ns["metadata"]["resourceVersion"].clone();
    let again = stdout(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert!(
        again.contains("namespace/default unchanged: already istio.io/rev=1-28"),
        "{again}"
    );
    assert_eq!(
        json(&sandbox, &["get", "namespace", "default"])["metadata"]["resourceVersion"],
        rv
    );

    // A pod restarted by plain kubectl gets 1-28.
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "restart", "deployment/webapp", "-n", "default"]),
    );
    stdout(sandbox.kubectl().args([
        "rollout",
        "status",
        "deployment/webapp",
        "-n",
        "default",
        "--timeout=120s",
    ]));
    let after_restart = app_pods(&sandbox);
    let webapp: Vec<_> = after_restart.iter().filter(|(n, _)| n.starts_with("webapp-")).collect();
    assert!(
        !webapp.is_empty() && webapp.iter().all(|(_, r)| r == "1-28"),
        "{after_restart:?}"
    );
    assert!(
        after_restart
            .iter()
            .filter(|(n, _)| !n.starts_with("webapp-"))
            .all(|(_, r)| r == "1-27"),
        "{after_restart:?}"
    );

    // Rollback: exactly the labels that were there, and no annotation left.
    let undo = stdout(sandbox.plugin("relabel").args(["--undo", "-n", "default"]));
    assert!(undo.contains("namespace/default relabeled"), "{undo}");
    let ns = json(&sandbox, &["get", "namespace", "default"]);
    assert_eq!(labels(&ns), before);
    assert!(
        ns["metadata"]["annotations"]["kubectl-mesh.io/relabel-previous"].is_null(),
        "{ns}"
    );
}

#[test]
fn refusals_and_dry_runs_leave_the_namespaces_unchanged() {
    let sandbox = Sandbox::fresh("canary");
    let before = namespaces(&sandbox);

    let (code, _, err) = run(sandbox.plugin("relabel").args(["--to", "1-30", "-n", "default"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("1-30 is neither a revision nor a tag"), "{err}");

    let (code, out, err) =
        run(sandbox
            .plugin("relabel")
            .args(["--from", "1-27", "--to", "1-28", "-A", "--dry-run=server"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("namespace/default relabeled (server dry run)"), "{out}");
    let (code, out, _) = run(sandbox
        .plugin("relabel")
        .args(["--to", "1-28", "-A", "--dry-run", "-o", "json"]));
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["dryRun"], "client");

    // istiod 1-28 not ready: refused, unless --force (checked with a dry run).
    stdout(
        sandbox
            .kubectl()
            .args(["scale", "deployment/istiod-1-28", "-n", "istio-system", "--replicas=0"]),
    );
    let (code, _, err) = run(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("is not ready") && err.contains("--force"), "{err}");
    let (code, _, err) =
        run(sandbox
            .plugin("relabel")
            .args(["--to", "1-28", "-n", "default", "--force", "--dry-run=server"]));
    assert_eq!(code, 0, "{err}");

    assert_eq!(namespaces(&sandbox), before, "refusals and dry runs write nothing");
}

#[test]
fn a_concurrent_edit_is_not_lost() {
    let sandbox = Sandbox::fresh("canary");
    // Relabel reads, then waits before writing; meanwhile someone else labels the namespace.
    let child = sandbox
        .plugin("relabel")
        .args(["--to", "1-28", "-n", "default"])
        .env("KUBECTL_MESH_TEST_PAUSE_BEFORE_WRITE_MS", "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    stdout(sandbox.kubectl().args(["label", "namespace", "default", "team=fleet"]));
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("changed concurrently; read again 1 time(s)"), "{text}");
    let l = labels(&json(&sandbox, &["get", "namespace", "default"]));
    assert_eq!(l["istio.io/rev"], "1-28");
    assert_eq!(l["team"], "fleet", "the concurrent edit survives");
}

#[test]
fn moving_the_default_tag_and_back() {
    let sandbox = Sandbox::fresh("canary");
    stdout(sandbox.kubectl().args(["create", "namespace", "legacy"]));
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "legacy", "istio-injection=enabled"]),
    );

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    assert!(out.contains("revision tag default moved: 1-27 → 1-28"), "{out}");
    assert!(out.contains("legacy (istio-injection=enabled)"), "{out}");
    let mwc = json(
        &sandbox,
        &["get", "mutatingwebhookconfiguration", "istio-revision-tag-default"],
    );
    assert_eq!(mwc["metadata"]["labels"]["istio.io/rev"], "1-28");
    let vwc = json(
        &sandbox,
        &["get", "validatingwebhookconfiguration", "istiod-default-validator"],
    );
    assert_eq!(vwc["metadata"]["labels"]["istio.io/rev"], "1-28");

    // A new pod in an istio-injection=enabled namespace now gets 1-28.
    stdout(
        sandbox
            .kubectl()
            .args(["run", "probe", "-n", "legacy", "--image=busybox", "--restart=Never"]),
    );
    let pod = json(&sandbox, &["get", "pod", "probe", "-n", "legacy"]);
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
        .as_str()
        .unwrap_or("");
    assert!(status.contains("\"revision\":\"1-28\""), "{pod}");

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--undo"]));
    assert!(out.contains("revision tag default moved: 1-28 → 1-27"), "{out}");
    let mwc = json(
        &sandbox,
        &["get", "mutatingwebhookconfiguration", "istio-revision-tag-default"],
    );
    assert_eq!(mwc["metadata"]["labels"]["istio.io/rev"], "1-27");
}

// ------------------------------------------------------------ revision tags as istioctl writes them

/// Run `kubectl create --dry-run=server` of a plain pod in `namespace`: the revision whose
/// injector the API server called (the `revision` of `sidecar.istio.io/status`), if any.
fn injector_of_new_pod(sandbox: &Sandbox, namespace: &str) -> Option<String> {
    let file = std::env::temp_dir().join(format!("relabel-probe-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {generateName: probe-}\nspec: {containers: [{name: app, image: busybox}]}\n",
    )
    .unwrap();
    let out = stdout(
        sandbox
            .kubectl()
            .args(["create", "--dry-run=server", "-o", "json", "-n", namespace, "-f"])
            .arg(&file),
    );
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_str(&out).unwrap();
    injected_by(&pod)
}

/// A webhook without what the API server fills in and the CA bundle (which the sandbox's
/// injector writes, and the saved state drops).
fn comparable_webhook(mut w: Value) -> Value {
    let o = w.as_object_mut().unwrap();
    for k in ["matchPolicy", "timeoutSeconds"] {
        o.remove(k);
    }
    for s in ["namespaceSelector", "objectSelector"] {
        if o.get(s) == Some(&serde_json::json!({})) {
            o.remove(s);
        }
    }
    let cc = o.get_mut("clientConfig").unwrap().as_object_mut().unwrap();
    cc.remove("caBundle");
    if let Some(svc) = cc.get_mut("service").and_then(Value::as_object_mut)
        && svc.get("port") == Some(&serde_json::json!(443))
    {
        svc.remove("port");
    }
    for r in o.get_mut("rules").and_then(Value::as_array_mut).into_iter().flatten() {
        r.as_object_mut().unwrap().remove("scope");
    }
    w
}

/// What `istioctl tag set` decides of an object: its labels, its annotations (but relabel's
/// own), and its webhooks, or a Service's selector and ports. A Service's chart version
/// labels are left out: the saved istioctl was built from source, whose charts say 1.0.0.
fn decided(o: &Value) -> Value {
    let mut labels = o["metadata"]["labels"].clone();
    let mut annotations = o["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove("kubectl-mesh.io/relabel-previous");
    }
    if annotations == serde_json::json!({}) {
        annotations = Value::Null;
    }
    if o["kind"] == "Service" {
        let l = labels.as_object_mut().unwrap();
        l.remove("app.kubernetes.io/version");
        l.remove("helm.sh/chart");
        let ports: Vec<Value> = o["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| serde_json::json!({"name": p["name"], "port": p["port"], "targetPort": p["targetPort"]}))
            .collect();
        return serde_json::json!({"labels": labels, "annotations": annotations, "selector": o["spec"]["selector"], "ports": ports});
    }
    let hooks: Vec<Value> = o["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(comparable_webhook)
        .collect();
    serde_json::json!({"labels": labels, "annotations": annotations, "webhooks": hooks})
}

/// The webhook configurations and tag Services now, each by `kind/name`.
fn webhook_state(sandbox: &Sandbox) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for args in [
        &["get", "mutatingwebhookconfigurations,validatingwebhookconfigurations"][..],
        &["get", "services", "-n", "istio-system", "-l", "istio.io/tag"][..],
    ] {
        for o in json(sandbox, args)["items"].as_array().unwrap() {
            out.insert(
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o.clone(),
            );
        }
    }
    out
}

/// Every object `istioctl tag set` left in `tests/sandbox/istio/istioctl-tags/<file>` is in
/// the cluster as istioctl decided it.
fn assert_as_istioctl(sandbox: &Sandbox, file: &str) {
    let path = kubectl_mesh_e2e::sandbox_dir().join("istio/istioctl-tags").join(file);
    let saved: Vec<Value> = serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let now = webhook_state(sandbox);
    for o in &saved {
        let key = format!(
            "{}/{}",
            o["kind"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap()
        );
        let ours = now
            .get(&key)
            .unwrap_or_else(|| panic!("{key} missing; istioctl made it ({file})"));
        assert_eq!(
            decided(ours),
            decided(o),
            "{key} differs from what istioctl wrote ({file})"
        );
    }
    assert_eq!(now.len(), saved.len(), "{:?}: istioctl left exactly these", now.keys());
}

/// What a relabel may not change: every webhook configuration and tag Service, as written.
fn unchanged_state(sandbox: &Sandbox) -> std::collections::BTreeMap<String, Value> {
    webhook_state(sandbox)
        .into_iter()
        .map(|(k, mut o)| {
            let m = o["metadata"].as_object_mut().unwrap();
            for f in [
                "resourceVersion",
                "generation",
                "managedFields",
                "uid",
                "creationTimestamp",
            ] {
                m.remove(f);
            }
            (k, o)
        })
        .collect()
}

#[test]
fn moving_default_off_an_unrevisioned_helm_install_deactivates_its_injector_and_undo_restores_it() {
    let sandbox = Sandbox::fresh("helm-canary-from-default");
    // Helm's unrevisioned istiod injects `default` (istio-injection=enabled).
    assert_eq!(injector_of_new_pod(&sandbox, "default").as_deref(), Some("default"));
    let before = unchanged_state(&sandbox);

    let out = stdout(
        sandbox
            .plugin("relabel")
            .args(["--tag", "default", "--to", "1-28", "--dry-run=server"]),
    );
    assert!(
        out.contains("mutatingwebhookconfiguration/istio-sidecar-injector deactivated (server dry run)"),
        "{out}"
    );
    assert_eq!(unchanged_state(&sandbox), before, "a dry run writes nothing");

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    assert!(out.contains("revision tag default created: → 1-28"), "{out}");
    assert!(
        out.contains("mutatingwebhookconfiguration/istio-sidecar-injector deactivated"),
        "{out}"
    );
    assert!(out.contains("default (istio-injection=enabled)"), "{out}");
    // Only the new tag injects istio-injection=enabled namespaces now: 1-28's sidecar.
    assert_eq!(injector_of_new_pod(&sandbox, "default").as_deref(), Some("1-28"));
    // Exactly what `istioctl tag set default --revision 1-28` wrote on this scenario.
    assert_as_istioctl(&sandbox, "from-default-default-1-28.yaml");

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--undo"]));
    assert!(out.contains("revision tag default removed"), "{out}");
    assert!(
        out.contains("mutatingwebhookconfiguration/istio-sidecar-injector restored"),
        "{out}"
    );
    assert_eq!(injector_of_new_pod(&sandbox, "default").as_deref(), Some("default"));
    assert_eq!(
        unchanged_state(&sandbox),
        before,
        "the injector, validator and Services as they were"
    );
}

#[test]
#[allow(clippy::too_many_lines)]
fn tags_are_written_as_istioctl_writes_them_and_removed_as_it_removes_them() {
    let sandbox = Sandbox::fresh("canary");
    let out = stdout(sandbox.plugin("relabel").args(["--tag", "prod", "--to", "1-27"]));
    assert!(out.contains("revision tag prod created: → 1-27"), "{out}");
    assert!(
        out.contains("service/istiod-revision-tag-prod -n istio-system created"),
        "{out}"
    );
    let prod = json(
        &sandbox,
        &["get", "mutatingwebhookconfiguration", "istio-revision-tag-prod"],
    );
    let labels = prod["metadata"]["labels"].as_object().unwrap();
    assert!(
        labels.keys().all(|k| !k.contains("operator.istio.io")),
        "user-managed: istioctl uninstall --revision 1-27 must leave it: {labels:?}"
    );
    assert_as_istioctl(&sandbox, "canary-1-prod.yaml");

    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    assert_as_istioctl(&sandbox, "canary-2-default-1-28.yaml");

    // A hand-made injector that also serves istio-injection=enabled: istioctl's analysis
    // (IST0139) refuses the tag that would overlap it, and nothing is written.
    let file = std::env::temp_dir().join(format!("relabel-stray-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: legacy-injector}
webhooks:
- name: namespace.sidecar-injector.istio.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  clientConfig: {service: {name: istiod-1-27, namespace: istio-system, path: /inject}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  namespaceSelector: {matchExpressions: [{key: istio-injection, operator: In, values: [enabled]}]}
"#,
    )
    .unwrap();
    stdout(sandbox.kubectl().arg("create").arg("-f").arg(&file));
    let before = unchanged_state(&sandbox);
    let (code, _, err) = run(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-27"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("Error [IST0139] (MutatingWebhookConfiguration istio-revision-tag-default) Webhook overlaps with others: [legacy-injector/namespace.sidecar-injector.istio.io]"),
        "{err}"
    );
    assert_eq!(unchanged_state(&sandbox), before, "refused: nothing written");
    stdout(
        sandbox
            .kubectl()
            .args(["delete", "mutatingwebhookconfiguration", "legacy-injector"]),
    );

    // istioctl tag remove: refused while a namespace uses the tag.
    stdout(sandbox.kubectl().args(["create", "namespace", "shop"]));
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "shop", "istio.io/rev=prod"]),
    );
    let (code, _, err) = run(sandbox.plugin("relabel").args(["--tag", "prod", "--remove"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("shop (istio.io/rev=prod)") && err.contains("--force"),
        "{err}"
    );
    let before = unchanged_state(&sandbox);
    let out = stdout(
        sandbox
            .plugin("relabel")
            .args(["--tag", "prod", "--remove", "--force", "--dry-run=server"]),
    );
    assert!(
        out.contains("mutatingwebhookconfiguration/istio-revision-tag-prod deleted (server dry run)"),
        "{out}"
    );
    assert_eq!(unchanged_state(&sandbox), before, "a dry run deletes nothing");
    stdout(sandbox.kubectl().args(["label", "namespace", "shop", "istio.io/rev-"]));
    let out = stdout(sandbox.plugin("relabel").args(["--tag", "prod", "--remove"]));
    assert!(
        out.contains("revision tag prod removed (pointed to revision 1-27)"),
        "{out}"
    );
    assert!(
        out.contains("service/istiod-revision-tag-prod -n istio-system deleted"),
        "{out}"
    );
    let now = webhook_state(&sandbox);
    assert!(
        !now.contains_key("MutatingWebhookConfiguration/istio-revision-tag-prod")
            && !now.contains_key("Service/istiod-revision-tag-prod"),
        "{:?}",
        now.keys()
    );
    let (code, _, err) = run(sandbox.plugin("relabel").args(["--tag", "prod", "--remove"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("cannot find MutatingWebhookConfiguration or Service for tag"),
        "{err}"
    );

    // A tag the last relabel created: --undo removes it.
    stdout(sandbox.plugin("relabel").args(["--tag", "next", "--to", "1-28"]));
    let out = stdout(sandbox.plugin("relabel").args(["--tag", "next", "--undo"]));
    assert!(out.contains("revision tag next removed"), "{out}");
    assert!(
        !webhook_state(&sandbox).contains_key("MutatingWebhookConfiguration/istio-revision-tag-next"),
        "removed"
    );
}

#[test]
fn tags_made_by_istioctl_are_left_as_they_are_or_removed_as_istioctl_removes_them() {
    let sandbox = Sandbox::fresh("istioctl-tags");
    let before = unchanged_state(&sandbox);
    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    assert!(
        out.contains("revision tag default unchanged: already points to revision 1-28"),
        "{out}"
    );
    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--undo"]));
    assert!(out.contains("nothing to undo"), "{out}");
    assert_eq!(unchanged_state(&sandbox), before, "nothing written");

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "prod", "--remove"]));
    assert!(
        out.contains("revision tag prod removed (pointed to revision 1-27)"),
        "{out}"
    );
    let mut expected = before;
    expected.remove("MutatingWebhookConfiguration/istio-revision-tag-prod");
    expected.remove("Service/istiod-revision-tag-prod");
    assert_eq!(
        unchanged_state(&sandbox),
        expected,
        "only the tag's configuration and Service deleted"
    );
}
