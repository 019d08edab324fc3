//! The strongest check of the model: ask the API server itself what a restart would give.
//!
//! For every workload that runs a proxy, a pod is created from its template with
//! `kubectl create --dry-run=server`: the API server runs the whole admission chain,
//! Istio's real MutatingWebhookConfigurations included (mutating webhooks run on dry-run),
//! and returns the pod a restart would make, persisting nothing. Its proxy (the revision in
//! `sidecar.istio.io/status`, else the `istio.io/rev` annotation, else `CA_ADDR`, and the
//! `istio-proxy` image) is compared with what `kubectl mesh revisions` predicts for each of
//! the workload's pods: `expectedRevision`, and the out-of-date verdict (out of date exactly
//! when the restart would give another revision or another image). Zero disagreements is
//! the bar, in every scenario and after each step of the upgrade.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use kubectl_mesh_e2e::{Sandbox, stdout};
use serde_json::{Value, json};

/// `(namespace, kind, name)` of a workload.
type Key = (String, String, String);

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The proxy container of a pod (classic or native sidecar, gateway, waypoint).
fn proxy_container(pod: &Value) -> Option<&Value> {
    let spec = &pod["spec"];
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|c| c["name"] == "istio-proxy")
}

/// Who serves this pod's proxy, read the way Istio writes it: the injector's status
/// annotation (pkg/kube/inject/webhook.go), else the `istio.io/rev` annotation (gateways
/// rendered by istiod), else the revision in the proxy's `CA_ADDR` (`CA_ADDRESS` for
/// ztunnel).
fn served_by(pod: &Value) -> Option<String> {
    let proxy = proxy_container(pod)?;
    let ann = &pod["metadata"]["annotations"];
    if let Some(status) = ann["sidecar.istio.io/status"].as_str() {
        return json_of(status)["revision"].as_str().map(str::to_owned);
    }
    if let Some(rev) = ann["istio.io/rev"].as_str() {
        return Some(rev.to_owned());
    }
    let ca = proxy["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "CA_ADDR" || e["name"] == "CA_ADDRESS")?["value"]
        .as_str()?;
    let host = ca.split('.').next()?;
    match host.strip_prefix("istiod-") {
        Some(rev) => Some(rev.to_owned()),
        None => (host == "istiod").then(|| "default".to_owned()),
    }
}

fn proxy_image(pod: &Value) -> Option<String> {
    proxy_container(pod)?["image"].as_str().map(str::to_owned)
}

/// Create a pod from the workload's template with `kubectl create --dry-run=server`: the
/// whole admission chain runs, Istio's webhooks included, and nothing is persisted.
fn create_from_template(sandbox: &Sandbox, workload: &Value) -> std::process::Output {
    let meta = &workload["metadata"];
    let template = &workload["spec"]["template"];
    let mut pod_meta = template["metadata"].clone();
    if !pod_meta.is_object() {
        pod_meta = json!({});
    }
    pod_meta["namespace"] = meta["namespace"].clone();
    pod_meta["generateName"] = json!(format!("{}-admission-", meta["name"].as_str().unwrap()));
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template["spec"]});
    let mut child = sandbox
        .kubectl()
        .args(["create", "--dry-run=server", "-o", "json", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl create");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pod.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The pod a restart of this workload would create, as the admission chain returns it.
fn admitted(sandbox: &Sandbox, workload: &Value) -> Value {
    let out = create_from_template(sandbox, workload);
    let meta = &workload["metadata"];
    assert!(
        out.status.success(),
        "the admission chain rejected a pod of {}/{}: {}",
        meta["namespace"],
        meta["name"],
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&String::from_utf8_lossy(&out.stdout))
}

/// Every Deployment, StatefulSet and DaemonSet in the cluster.
fn workloads(sandbox: &Sandbox) -> BTreeMap<Key, Value> {
    let list = json_of(&stdout(sandbox.kubectl().args([
        "get",
        "deployments,statefulsets,daemonsets",
        "-A",
        "-o",
        "json",
    ])));
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let m = &w["metadata"];
            let key = (
                m["namespace"].as_str().unwrap().to_owned(),
                w["kind"].as_str().unwrap().to_owned(),
                m["name"].as_str().unwrap().to_owned(),
            );
            (key, w.clone())
        })
        .collect()
}

/// The model's proxies, by workload.
fn predicted(sandbox: &Sandbox) -> BTreeMap<Key, Vec<Value>> {
    let doc = json_of(&stdout(sandbox.plugin("revisions").args(["-A", "-o", "json"])));
    let mut by: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
    for p in doc["proxies"].as_array().unwrap() {
        let key = (
            p["namespace"].as_str().unwrap().to_owned(),
            p["workload"]["kind"].as_str().unwrap().to_owned(),
            p["workload"]["name"].as_str().unwrap().to_owned(),
        );
        by.entry(key).or_default().push(p.clone());
    }
    by
}

/// What the model predicts a restart of the workload gives this pod: `(revision, image)`,
/// where `None` for the image means "whatever the injector writes" (judged by the
/// out-of-date verdict instead).
fn restart_prediction(p: &Value) -> (Option<String>, Option<String>) {
    let expected = &p["expected"];
    let own = || p["revision"].as_str().map(str::to_owned);
    match expected["kind"].as_str() {
        // The webhooks are asked again.
        Some("injected") => (expected["revision"].as_str().map(str::to_owned), None),
        Some("noSidecar") => (None, None),
        // Written into the template (istioctl's gateways, ztunnel, istio-cni) or rendered
        // by istiod (Gateway API gateways, waypoints): a restart keeps the proxy it has.
        _ => (own(), p["image"].as_str().map(str::to_owned)),
    }
}

/// Compare one workload's admitted pod with the model's proxies of it.
fn compare_workload(name: &str, pod: &Value, proxies: &[Value], disagreements: &mut Vec<String>) {
    let (rev, image) = (served_by(pod), proxy_image(pod));
    for p in proxies {
        let name = format!("{name} pod {}", p["pod"]);
        let kind = p["kind"].as_str().unwrap_or("sidecar");
        if matches!(kind, "ztunnel" | "cni") {
            // Node agents: the same image comes back, whatever the webhooks say.
            let images = ["containers", "initContainers"]
                .iter()
                .filter_map(|l| pod["spec"][l].as_array())
                .flatten()
                .filter_map(|c| c["image"].as_str())
                .collect::<Vec<_>>();
            if !images.contains(&p["image"].as_str().unwrap_or_default()) {
                disagreements.push(format!(
                    "{name}: {kind} image {} is not what a restart gives ({images:?})",
                    p["image"]
                ));
            }
            continue;
        }
        let (predicted_rev, predicted_image) = restart_prediction(p);
        if predicted_rev != rev {
            disagreements.push(format!(
                "{name}: model predicts revision {predicted_rev:?} ({}), the API server gives {rev:?}",
                p["expected"]
            ));
        }
        if let Some(predicted_image) = predicted_image
            && Some(&predicted_image) != image.as_ref()
        {
            disagreements.push(format!(
                "{name}: model predicts image {predicted_image}, the API server gives {image:?}"
            ));
        }
        // Out of date means "a restart gives a newer proxy". A restart that gives no
        // sidecar at all is predicted by `expected` (kind noSidecar, compared above), not
        // by this verdict.
        if p["expected"]["kind"] == "injected" {
            let out_of_date = p["outOfDate"].as_array().is_some_and(|r| !r.is_empty());
            let differs = p["revision"].as_str() != rev.as_deref() || p["image"].as_str() != image.as_deref();
            if out_of_date != differs {
                disagreements.push(format!(
                    "{name}: model says out of date = {out_of_date} ({}), but a restart gives revision {rev:?} image {image:?} for a proxy of {} {}",
                    p["outOfDate"], p["revision"], p["image"]
                ));
            }
        }
    }
}

/// Compare every workload's admitted pod with the model; returns how many pods were
/// compared and every disagreement, in words.
fn compare(sandbox: &Sandbox, state: &str) -> (usize, Vec<String>) {
    let workloads = workloads(sandbox);
    let predicted = predicted(sandbox);
    let mut compared = 0;
    let mut disagreements = vec![];
    for (key, proxies) in &predicted {
        let Some(workload) = workloads.get(key) else {
            continue; // bare pods, Jobs: nothing to restart
        };
        let pod = admitted(sandbox, workload);
        compared += proxies.len();
        let name = format!("{state}: {}/{}/{}", key.0, key.1, key.2);
        compare_workload(&name, &pod, proxies, &mut disagreements);
    }
    println!("{state}: {compared} pods of {} workloads compared", predicted.len());
    (compared, disagreements)
}

fn label(sandbox: &Sandbox, args: &[&str]) {
    stdout(sandbox.kubectl().arg("label").args(args).arg("--overwrite"));
}

fn assert_agrees(results: &[(usize, Vec<String>)]) {
    let all: Vec<&String> = results.iter().flat_map(|(_, d)| d).collect();
    assert!(
        all.is_empty(),
        "{} disagreements between the model and the admission chain:\n{}",
        all.len(),
        all.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
    );
    assert!(results.iter().all(|(n, _)| *n > 0), "nothing was compared: {results:?}");
}

#[test]
fn canary_agrees_with_the_admission_chain_at_every_step() {
    let sandbox = Sandbox::fresh("canary");
    let mut results = vec![compare(&sandbox, "canary")];
    // STEP 2: the namespace moves to the new revision; every app proxy is now out of date.
    label(&sandbox, &["namespace", "default", "istio.io/rev=1-28"]);
    results.push(compare(&sandbox, "canary, default labelled 1-28"));
    // Labelled with both labels: istio-injection wins (IST0123), the default tag's 1-27.
    label(&sandbox, &["namespace", "default", "istio-injection=enabled"]);
    results.push(compare(&sandbox, "canary, both labels"));
    // Injection disabled: a restart gives no sidecar at all.
    label(&sandbox, &["namespace", "default", "istio-injection=disabled"]);
    results.push(compare(&sandbox, "canary, injection disabled"));
    assert_agrees(&results);
}

#[test]
fn inplace_agrees_with_the_admission_chain() {
    let sandbox = Sandbox::fresh("inplace");
    let results = vec![compare(&sandbox, "inplace")];
    assert_agrees(&results);
}

/// Scenarios whose first state is compared as loaded.
fn scenario_agrees(name: &str) {
    let sandbox = Sandbox::fresh(name);
    assert_agrees(&[compare(&sandbox, name)]);
}

#[test]
fn helm_canary_agrees_with_the_admission_chain() {
    scenario_agrees("helm-canary");
}

#[test]
fn helm_canary_from_default_agrees_with_the_admission_chain() {
    let sandbox = Sandbox::fresh("helm-canary-from-default");
    let mut results = vec![compare(&sandbox, "helm-canary-from-default")];
    // The namespace moves to the new revision: istio.io/rev replaces istio-injection.
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio-injection-", "istio.io/rev=1-28"]),
    );
    results.push(compare(&sandbox, "helm-canary-from-default, default labelled 1-28"));
    assert_agrees(&results);
}

#[test]
fn helm_inplace_agrees_with_the_admission_chain() {
    scenario_agrees("helm-inplace");
}

#[test]
fn istioctl_tags_agree_with_the_admission_chain() {
    scenario_agrees("istioctl-tags");
}

#[test]
fn istioctl_tags_from_default_agree_with_the_admission_chain() {
    scenario_agrees("istioctl-tags-from-default");
}

#[test]
fn gateway_api_and_ambient_agree_with_the_admission_chain() {
    scenario_agrees("gateway-api");
}

/// Every webhook configuration's service, and whether it is still there: `(configuration,
/// service)` of each one whose service is gone.
fn dangling_webhook_services(sandbox: &Sandbox) -> Vec<(String, String)> {
    let services = json_of(&stdout(sandbox.kubectl().args(["get", "services", "-A", "-o", "json"])));
    let exists = |ns: &str, name: &str| {
        services["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metadata"]["namespace"] == ns && s["metadata"]["name"] == name)
    };
    let configs = json_of(&stdout(sandbox.kubectl().args([
        "get",
        "mutatingwebhookconfigurations,validatingwebhookconfigurations",
        "-o",
        "json",
    ])));
    let mut gone = vec![];
    for c in configs["items"].as_array().unwrap() {
        for w in c["webhooks"].as_array().into_iter().flatten() {
            let s = &w["clientConfig"]["service"];
            let (Some(ns), Some(name)) = (s["namespace"].as_str(), s["name"].as_str()) else {
                continue;
            };
            if !exists(ns, name) {
                gone.push((
                    c["metadata"]["name"].as_str().unwrap().to_owned(),
                    format!("{ns}/{name}"),
                ));
            }
        }
    }
    gone.sort();
    gone.dedup();
    gone
}

/// Every workload's template still admits (the webhooks that select it answer).
fn rejected_templates(sandbox: &Sandbox) -> Vec<String> {
    let mut rejected = vec![];
    for ((ns, kind, name), w) in workloads(sandbox) {
        let out = create_from_template(sandbox, &w);
        if !out.status.success() {
            rejected.push(format!(
                "{ns}/{kind}/{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    rejected
}

/// `kubectl mesh <step> <args>`, which must succeed.
fn mesh(sandbox: &Sandbox, step: &str, args: &[&str]) -> String {
    stdout(sandbox.plugin(step).args(args))
}

/// The whole upgrade of one scenario with the suite, then prune of the old revision:
/// nothing still running may lose its injector or its validator.
fn upgrade_and_prune(scenario: &str, old: &str, new: &str, tags: &[&str]) {
    let sandbox = Sandbox::fresh(scenario);
    for tag in tags {
        mesh(&sandbox, "relabel", &["--tag", tag, "--to", new]);
    }
    // Namespaces labelled with the old revision itself (not through a tag) move too.
    let (code, out, err) = kubectl_mesh_e2e::run(sandbox.plugin("relabel").args(["--from", old, "--to", new, "-A"]));
    assert!(code == 0, "relabel --from {old}: {code}\n{out}\n{err}");
    mesh(&sandbox, "roll", &["-A"]);
    let pruned = mesh(&sandbox, "prune", &[old, "--yes"]);
    println!("{scenario}: prune {old}:\n{pruned}");
    let rejected = rejected_templates(&sandbox);
    assert!(
        rejected.is_empty(),
        "{scenario}: after prune, templates are rejected:\n{rejected:#?}"
    );
    let gone = dangling_webhook_services(&sandbox);
    assert!(
        gone.is_empty(),
        "{scenario}: after prune, webhooks call services that are gone: {gone:?}"
    );
    // And the model still agrees with the admission chain about what is left.
    assert_agrees(&[compare(&sandbox, &format!("{scenario} after prune {old}"))]);
}

#[test]
fn canary_prune_leaves_every_pod_admitted_and_every_webhook_served() {
    upgrade_and_prune("canary", "1-27", "1-28", &["default"]);
}

#[test]
fn helm_canary_prune_leaves_every_pod_admitted_and_every_webhook_served() {
    upgrade_and_prune("helm-canary", "1-27", "1-28", &["default"]);
}

#[test]
fn helm_canary_from_default_prune_leaves_every_pod_admitted_and_every_webhook_served() {
    upgrade_and_prune("helm-canary-from-default", "default", "1-28", &["default"]);
}

#[test]
fn istioctl_tags_prune_leaves_every_pod_admitted_and_every_webhook_served() {
    upgrade_and_prune("istioctl-tags", "1-27", "1-28", &["prod"]);
}
