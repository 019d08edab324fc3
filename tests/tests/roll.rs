//! `kubectl mesh roll` on the sandbox: the seed's STEP 3 (restart the workloads, one at a
//! time, each gated on a healthy rollout) and what happens when something goes wrong.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubectl_mesh_e2e::{APPS, Sandbox, injected_by, proxy_image, run, stdout};
use serde_json::Value;

/// `kubectl mesh roll ARGS -o json`: exit code and the summary document.
fn roll_json(sandbox: &Sandbox, args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = run(sandbox.plugin("roll").args(args).args(["-o", "json"]));
    let doc = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("roll {args:?} printed no JSON ({e}), exit {code}:\n{out}\n{err}"));
    (code, doc, err)
}

fn relabel(sandbox: &Sandbox, ns: &str, rev: &str) {
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", ns, &format!("istio.io/rev={rev}"), "--overwrite"]),
    );
}

async fn pods(sandbox: &Sandbox, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(sandbox.client().await, ns);
    api.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Deployment name → metadata.generation: a restart bumps it, nothing else here does.
async fn generations(sandbox: &Sandbox, ns: &str) -> BTreeMap<String, i64> {
    let api: Api<Deployment> = Api::namespaced(sandbox.client().await, ns);
    api.list(&ListParams::default())
        .await
        .expect("list deployments")
        .items
        .into_iter()
        .map(|d| (d.metadata.name.unwrap_or_default(), d.metadata.generation.unwrap_or(0)))
        .collect()
}

fn names(doc: &Value) -> Vec<String> {
    doc["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .map(|w| w["workload"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn results(doc: &Value) -> Vec<(String, String)> {
    doc["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .map(|w| {
            (
                w["workload"]["name"].as_str().unwrap().to_owned(),
                w["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Set `global.tag` in the `values` of an injector ConfigMap in istio-system: the proxy
/// version that revision injects from now on (what `helm upgrade` or `istioctl install`
/// of a new release writes there, beside istiod's new image).
async fn set_injector_tag(sandbox: &Sandbox, configmap: &str, tag: &str) {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(sandbox.client().await, "istio-system");
    let mut cm = api.get(configmap).await.expect("injector configmap");
    let data = cm.data.as_mut().unwrap();
    let mut values: Value = serde_json::from_str(&data["values"]).unwrap();
    values["global"]["tag"] = tag.into();
    data.insert("values".into(), values.to_string());
    cm.metadata.managed_fields = None;
    api.replace(configmap, &Default::default(), &cm).await.unwrap();
}

/// Every pod of the namespace runs `version` injected by `revision`.
async fn all_on(sandbox: &Sandbox, ns: &str, revision: &str, version: &str) {
    for pod in pods(sandbox, ns).await {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert_eq!(injected_by(&pod).as_deref(), Some(revision), "{name}");
        assert_eq!(
            proxy_image(&pod).as_deref(),
            Some(format!("docker.io/istio/proxyv2:{version}").as_str()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn canary_roll_one_at_a_time_moves_every_app_to_1_28_without_overlap() {
    let sandbox = Sandbox::fresh("canary");

    // Before the relabel nothing in default is out of date.
    let (code, doc, _) = roll_json(&sandbox, &["-n", "default"]);
    assert_eq!(code, 0);
    assert!(names(&doc).is_empty(), "{doc}");

    relabel(&sandbox, "default", "1-28");
    let before = generations(&sandbox, "default").await;

    // --dry-run prints the order and changes nothing.
    let (code, doc, _) = roll_json(&sandbox, &["-n", "default", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(names(&doc), APPS, "applications in namespace/kind/name order");
    assert!(results(&doc).iter().all(|(_, r)| r == "notStarted"));
    let text = stdout(sandbox.plugin("roll").args(["-n", "default", "--dry-run"]));
    assert!(text.contains("Would restart 7 workloads"), "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    assert_eq!(
        generations(&sandbox, "default").await,
        before,
        "--dry-run restarted something"
    );
    all_on(&sandbox, "default", "1-27", "1.27.4").await;

    let (code, doc, err) = roll_json(&sandbox, &["-n", "default", "--one-at-a-time"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert_eq!(doc["summary"]["done"], 7, "{doc}");
    assert_eq!(names(&doc), APPS);
    all_on(&sandbox, "default", "1-28", "1.28.3").await;

    // One at a time: each rollout started after the previous one finished.
    // The times are fixed-width RFC 3339 (milliseconds, UTC): they compare as strings.
    let spans: Vec<(String, String)> = doc["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let t = |k: &str| w[k].as_str().unwrap_or_else(|| panic!("{k} in {w}")).to_owned();
            (t("started"), t("finished"))
        })
        .collect();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "rollouts overlapped: {pair:?}");
    }
    // Each restart is kubectl's, sent once: one generation more, the recorded restartedAt.
    let after = generations(&sandbox, "default").await;
    let api: Api<Deployment> = Api::namespaced(sandbox.client().await, "default");
    for w in doc["workloads"].as_array().unwrap() {
        let name = w["workload"]["name"].as_str().unwrap();
        assert_eq!(after[name], before[name] + 1, "{name} restarted more than once");
        let d = api.get(name).await.unwrap();
        let stamp =
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()["kubectl.kubernetes.io/restartedAt"]
                .clone();
        assert_eq!(Some(stamp.as_str()), w["restartedAt"].as_str());
    }

    // A second run finds nothing to do and restarts nothing.
    let (code, doc, _) = roll_json(&sandbox, &["-n", "default", "--one-at-a-time"]);
    assert_eq!(code, 0);
    assert!(names(&doc).is_empty(), "{doc}");
    assert_eq!(generations(&sandbox, "default").await, after);
}

/// Istio's recommended gateway: 1.28.3's `gateway` chart (`manifests/charts/gateway`,
/// stamped as the published chart), `helm template istio-ingressgateway -n istio-ingress`,
/// its ServiceAccount and Deployment. Its pods ask for the `gateway` injection template
/// and get their proxy from the injector (`image: auto`), so a restart updates them.
/// istioctl's gateways write their image into the Deployment instead
/// (`manifests/charts/gateways/istio-ingress/templates/deployment.yaml`), and a restart
/// keeps it. One change: the chart's port `http-envoy-prom` (15090) is left out, as the
/// sandbox's injector adds that port again instead of merging it as Istio's does.
const HELM_GATEWAY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: istio-ingress}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-ingressgateway
  namespace: istio-ingress
  labels:
    app.kubernetes.io/name: istio-ingressgateway
    app.kubernetes.io/managed-by: "Helm"
    app.kubernetes.io/instance: "istio-ingressgateway"
    app.kubernetes.io/part-of: "istio"
    app.kubernetes.io/version: "1.28.3"
    helm.sh/chart: gateway-1.28.3
    app: istio-ingressgateway
    istio: ingressgateway
    "istio.io/dataplane-mode": "none"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istio-ingressgateway
  namespace: istio-ingress
  labels:
    app.kubernetes.io/name: istio-ingressgateway
    app.kubernetes.io/managed-by: "Helm"
    app.kubernetes.io/instance: "istio-ingressgateway"
    app.kubernetes.io/part-of: "istio"
    app.kubernetes.io/version: "1.28.3"
    helm.sh/chart: gateway-1.28.3
    app: istio-ingressgateway
    istio: ingressgateway
    "istio.io/dataplane-mode": "none"
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
      istio: ingressgateway
  template:
    metadata:
      annotations:
        inject.istio.io/templates: gateway
        prometheus.io/path: /stats/prometheus
        prometheus.io/port: "15020"
        prometheus.io/scrape: "true"
        sidecar.istio.io/inject: "true"
      labels:
        sidecar.istio.io/inject: "true"
        app: istio-ingressgateway
        istio: ingressgateway
        app.kubernetes.io/name: istio-ingressgateway
        app.kubernetes.io/managed-by: "Helm"
        app.kubernetes.io/instance: "istio-ingressgateway"
        app.kubernetes.io/part-of: "istio"
        app.kubernetes.io/version: "1.28.3"
        helm.sh/chart: gateway-1.28.3
        "istio.io/dataplane-mode": "none"
    spec:
      serviceAccountName: istio-ingressgateway
      securityContext:
        sysctls:
        - name: net.ipv4.ip_unprivileged_port_start
          value: "0"
      containers:
        - name: istio-proxy
          image: auto
          securityContext:
            capabilities:
              drop:
              - ALL
            allowPrivilegeEscalation: false
            privileged: false
            readOnlyRootFilesystem: true
            runAsUser: 1337
            runAsGroup: 1337
            runAsNonRoot: true
          env:
          resources:
            limits:
              cpu: 2000m
              memory: 1024Mi
            requests:
              cpu: 100m
              memory: 128Mi
      terminationGracePeriodSeconds: 30
"#;

/// `kubectl apply` a manifest, then wait for the rollouts named (`deployment/x`) in `ns`.
fn apply(sandbox: &Sandbox, name: &str, manifest: &str, ns: &str, rollouts: &[&str]) {
    let path = std::env::temp_dir().join(format!("roll-{name}-{}.yaml", std::process::id()));
    std::fs::write(&path, manifest).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    let _ = std::fs::remove_file(&path);
    for w in rollouts {
        stdout(
            sandbox
                .kubectl()
                .args(["rollout", "status", w, "-n", ns, "--timeout=120s"]),
        );
    }
}

#[tokio::test]
async fn gateways_are_listed_and_restarted_only_when_asked() {
    let sandbox = Sandbox::fresh("inplace");
    // Beside istioctl's gateways, a gateway from Istio's gateway chart, injected (1.28.3).
    apply(
        &sandbox,
        "helm-gateway",
        HELM_GATEWAY,
        "istio-ingress",
        &["deployment/istio-ingressgateway"],
    );
    // The install already moved the gateways to 1.28.3; a patch release puts every proxy,
    // gateways included, out of date. A real upgrade (istioctl or Helm) writes both istiod's
    // image and the injector's `global.tag`, and the proxy version a restart gets is the
    // injector's.
    stdout(sandbox.kubectl().args([
        "set",
        "image",
        "deployment/istiod",
        "-n",
        "istio-system",
        "discovery=docker.io/istio/pilot:1.28.4",
    ]));
    set_injector_tag(&sandbox, "istio-sidecar-injector", "1.28.4").await;
    let (code, doc, _) = roll_json(&sandbox, &["-A", "--dry-run"]);
    assert_eq!(code, 0);
    let skipped: Vec<String> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["namespace"].as_str().unwrap(),
                s["workload"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(skipped.iter().any(|s| s.contains("ingressgateway")), "{doc}");
    assert!(names(&doc).iter().all(|n| !n.contains("gateway") || n == "api-gateway"));
    // istioctl's gateways are out of date too, but a restart keeps the image written in
    // their Deployments: listed as not restarted by roll, never planned.
    let not_restarted: Vec<String> = doc["notRestarted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}/{}",
                n["namespace"].as_str().unwrap(),
                n["workload"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        not_restarted,
        ["istio-system/istio-egressgateway", "istio-system/istio-ingressgateway"],
        "{doc}"
    );
    assert!(
        doc["notRestarted"][0]["reason"].as_str().unwrap().contains("istioctl"),
        "{doc}"
    );
    let (_, doc, _) = roll_json(&sandbox, &["-A", "--dry-run", "--include-gateways"]);
    let order = names(&doc);
    let first_gateway = order
        .iter()
        .position(|n| n.starts_with("istio-"))
        .expect("gateways planned");
    assert!(
        order[..first_gateway].len() >= APPS.len(),
        "applications come first: {order:?}"
    );
    assert_eq!(order[first_gateway..], ["istio-ingressgateway"], "{doc}");
    assert_eq!(doc["workloads"][first_gateway]["namespace"], "istio-ingress");
}

#[tokio::test]
async fn inplace_restarts_only_workloads_with_old_proxy_versions() {
    let sandbox = Sandbox::fresh("inplace");
    // webapp already restarted by hand: it runs 1.28.3 and must be left alone.
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
        "--timeout=60s",
    ]));
    let before = generations(&sandbox, "default").await;

    let (code, doc, err) = roll_json(&sandbox, &["-n", "default"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    let rolled = names(&doc);
    assert_eq!(rolled, APPS[..6], "every app but webapp");
    let after = generations(&sandbox, "default").await;
    assert_eq!(after["webapp"], before["webapp"], "webapp was restarted again");
    all_on(&sandbox, "default", "default", "1.28.3").await;
}

#[tokio::test]
async fn a_workload_whose_new_pods_never_become_ready_stops_the_roll() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    // position-tracker, third in the order, gets a template whose pods KWOK never makes
    // Ready: its rollout cannot finish.
    stdout(sandbox.kubectl().args([
        "patch",
        "deployment/position-tracker",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"spec":{"progressDeadlineSeconds":600,"template":{"metadata":{"annotations":{"kubectl-mesh.test/never-ready":"true"}}}}}"#,
    ]));
    let before = generations(&sandbox, "default").await;

    let (code, doc, _) = roll_json(&sandbox, &["-n", "default", "--timeout", "15s"]);
    assert_eq!(code, 6, "ROLLOUT_FAILED: {doc}");
    let r = results(&doc);
    assert_eq!(r[0], ("api-gateway".into(), "done".into()));
    assert_eq!(r[1], ("position-simulator".into(), "done".into()));
    assert_eq!(r[2], ("position-tracker".into(), "failed".into()));
    assert!(r[3..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");
    let message = doc["workloads"][2]["message"].as_str().unwrap();
    assert!(message.contains("did not finish its rollout within 15s"), "{message}");
    assert_eq!(
        (doc["summary"]["done"].clone(), doc["summary"]["notStarted"].clone()),
        (2.into(), 4.into())
    );
    let rollback: Vec<&str> = doc["rollback"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        rollback
            .iter()
            .any(|c| c.starts_with("kubectl mesh relabel -n default --to 1-27")),
        "{rollback:?}"
    );

    // Later workloads untouched: same generation, still on 1-27.
    let after = generations(&sandbox, "default").await;
    for name in &APPS[3..] {
        assert_eq!(after[*name], before[*name], "{name} was touched");
    }
    for pod in pods(&sandbox, "default").await {
        let app = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .cloned()
            .unwrap_or_default();
        if APPS[3..].contains(&app.as_str()) {
            assert_eq!(injected_by(&pod).as_deref(), Some("1-27"), "{app}");
        }
    }

    // The text summary says the same to a person.
    let (code, out, _) = run(sandbox.plugin("roll").args(["-n", "default", "--timeout", "5s"]));
    assert_eq!(code, 6);
    assert!(out.contains("The roll stopped"), "{out}");
    assert!(out.contains("kubectl mesh relabel -n default --to 1-27"), "{out}");
}

#[tokio::test]
async fn a_failing_exec_stops_the_roll_and_sees_the_workload_in_its_environment() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    let log = std::env::temp_dir().join(format!("roll-exec-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let hook = format!(
        r#"echo "$MESH_WORKLOAD_KIND $MESH_WORKLOAD_NAMESPACE $MESH_WORKLOAD_NAME $MESH_REVISION" >> {}; test "$MESH_WORKLOAD_NAME" != position-simulator"#,
        log.display()
    );
    let (code, doc, _) = roll_json(&sandbox, &["-n", "default", "--exec", &hook]);
    assert_eq!(code, 6, "{doc}");
    let r = results(&doc);
    assert_eq!(r[0].1, "done");
    assert_eq!(r[1].1, "failed");
    assert!(r[2..].iter().all(|(_, res)| res == "notStarted"));
    assert!(
        doc["workloads"][1]["message"]
            .as_str()
            .unwrap()
            .contains("exited with code 1")
    );
    let seen = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        seen,
        "Deployment default api-gateway 1-28\nDeployment default position-simulator 1-28\n"
    );
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn ctrl_c_stops_cleanly_with_130_and_a_rerun_completes() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    // The hook keeps the first workload busy long enough to be interrupted.
    let (out, seen, elapsed) = signal_mid_roll(
        &sandbox,
        &["-n", "default", "-o", "json", "--exec", "sleep 60"],
        "running --exec",
        "-INT",
    );
    assert!(
        seen.contains("default/deployment/api-gateway: running --exec"),
        "{seen}"
    );
    assert!(elapsed < Duration::from_secs(20), "Ctrl-C took {elapsed:?}");
    assert_eq!(out.status.code(), Some(130));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = results(&doc);
    assert_eq!(r[0].1, "interrupted");
    assert!(r[1..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");

    // The same command again carries on: api-gateway's rollout had finished, so it is no
    // longer out of date and only the other six are restarted.
    let (code, doc, err) = roll_json(&sandbox, &["-n", "default"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert_eq!(names(&doc), APPS[1..]);
    all_on(&sandbox, "default", "1-28", "1.28.3").await;
}

#[tokio::test]
async fn a_statefulset_and_a_daemonset_roll_like_deployments() {
    let sandbox = Sandbox::fresh("canary");
    let manifest = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: roll-kinds
  labels: {istio.io/rev: 1-27}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: roll-kinds}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: roll-kinds}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox:1.36}]
"#;
    let path = std::env::temp_dir().join(format!("roll-kinds-{}.yaml", std::process::id()));
    std::fs::write(&path, manifest).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    let _ = std::fs::remove_file(&path);
    for w in ["statefulset/db", "daemonset/agent"] {
        stdout(
            sandbox
                .kubectl()
                .args(["rollout", "status", w, "-n", "roll-kinds", "--timeout=120s"]),
        );
    }
    all_on(&sandbox, "roll-kinds", "1-27", "1.27.4").await;
    let nodes = pods(&sandbox, "roll-kinds").await.len() - 2;
    assert!(nodes >= 1);

    relabel(&sandbox, "roll-kinds", "1-28");
    let (code, doc, err) = roll_json(&sandbox, &["-n", "roll-kinds"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert_eq!(
        results(&doc),
        [
            ("agent".to_string(), "done".to_string()),
            ("db".to_string(), "done".to_string())
        ]
    );
    all_on(&sandbox, "roll-kinds", "1-28", "1.28.3").await;
    assert_eq!(pods(&sandbox, "roll-kinds").await.len(), nodes + 2);
}

#[tokio::test]
async fn bad_flags_are_refused_before_anything_changes() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    let before = generations(&sandbox, "default").await;
    for (args, needle) in [
        (vec!["--exclude", "pod/x"], "unknown kind"),
        (vec!["--revision", "9-99"], "no such revision"),
        (vec!["--max-parallel", "0"], "max-parallel"),
        (vec!["-l", "app in (("], "not a valid label selector"),
        (vec!["-n", "nope"], "namespace \"nope\" not found"),
    ] {
        let (code, _, err) = run(sandbox.plugin("roll").args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(generations(&sandbox, "default").await, before);

    // Filters narrow the plan (seen through --dry-run).
    let plan = |args: &[&str]| {
        let mut all = vec!["-n", "default", "--dry-run"];
        all.extend_from_slice(args);
        names(&roll_json(&sandbox, &all).1)
    };
    // -l selects workloads by their own labels, as `kubectl rollout restart -l` does: the
    // fleetman Deployments carry none until given one.
    assert!(plan(&["-l", "app=webapp"]).is_empty());
    stdout(
        sandbox
            .kubectl()
            .args(["label", "deployment/webapp", "-n", "default", "tier=front"]),
    );
    assert_eq!(plan(&["-l", "tier=front"]), ["webapp"]);
    assert_eq!(plan(&["--revision", "1-27"]).len(), 7);
    assert_eq!(plan(&["--revision", "default"]).len(), 7, "a tag names its revision");
    assert!(plan(&["--revision", "1-28"]).is_empty());
    let (_, doc, _) = roll_json(
        &sandbox,
        &[
            "-n",
            "default",
            "--dry-run",
            "--exclude",
            "deploy/webapp",
            "--exclude",
            "default/sts/none",
        ],
    );
    assert_eq!(names(&doc), APPS[..6]);
    assert_eq!(doc["skipped"][0]["reason"], "excluded (--exclude)");
    assert_eq!(generations(&sandbox, "default").await, before);
}

#[tokio::test]
async fn new_pods_on_the_wrong_revision_stop_the_roll() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    // Someone points the namespace back at 1-27 while the roll runs (here: the hook after
    // the first workload). The next restart brings 1-27 pods, and the roll must say so.
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let hook = format!(
        "test $MESH_WORKLOAD_NAME != api-gateway || kubectl --kubeconfig {kubeconfig} label namespace default istio.io/rev=1-27 --overwrite"
    );
    let (code, doc, _) = roll_json(&sandbox, &["-n", "default", "--exec", &hook]);
    assert_eq!(code, 6, "{doc}");
    let r = results(&doc);
    assert_eq!(r[0].1, "done");
    assert_eq!(r[1].1, "failed");
    assert!(r[2..].iter().all(|(_, res)| res == "notStarted"));
    let message = doc["workloads"][1]["message"].as_str().unwrap();
    assert!(message.contains("was injected by 1-27, expected 1-28"), "{message}");
    assert!(message.contains("relabel it first"), "{message}");
}

#[tokio::test]
async fn new_pods_with_the_wrong_proxy_version_stop_the_roll() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    // The version a restart gets is the one the injector's values name, and the plan reads
    // them: set before the roll, 1.28.2 would simply be what the plan expects. So the
    // injector changes while the roll runs (an upgrade racing it), after the first
    // workload: the next one's new pods run 1.28.2 where the plan promised 1.28.3.
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let hook = format!(
        r#"test $MESH_WORKLOAD_NAME != api-gateway || {{ kubectl --kubeconfig {kubeconfig} get configmap istio-sidecar-injector-1-28 -n istio-system -o jsonpath='{{.data.values}}' | sed -E 's/"tag": *"1[.]28[.]3"/"tag": "1.28.2"/' > values.json && kubectl --kubeconfig {kubeconfig} create configmap istio-sidecar-injector-1-28 -n istio-system --from-file=values=values.json --dry-run=client -o json | kubectl --kubeconfig {kubeconfig} patch configmap istio-sidecar-injector-1-28 -n istio-system --type=merge --patch-file=/dev/stdin; }}"#
    );
    let work = std::env::temp_dir().join(format!("roll-version-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let before = generations(&sandbox, "default").await;

    let (code, out, err) = run(sandbox
        .plugin("roll")
        .args(["-n", "default", "-o", "json", "--exec", &hook])
        .current_dir(&work));
    let _ = std::fs::remove_dir_all(&work);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(code, 6, "{doc}\n{err}");
    let r = results(&doc);
    assert_eq!(r[0].1, "done");
    // The assertions of the first workload hold for the first one restarted after the change.
    let r = &r[1..];
    assert_eq!(r[0].1, "failed");
    assert!(r[1..].iter().all(|(_, res)| res == "notStarted"));
    let message = doc["workloads"][1]["message"].as_str().unwrap();
    assert!(message.contains("runs proxy 1.28.2"), "{message}");
    assert!(message.contains("expected 1.28.3"), "{message}");
    let after = generations(&sandbox, "default").await;
    for name in &APPS[2..] {
        assert_eq!(after[*name], before[*name], "{name} was touched");
    }
}

/// The names and results of the workloads, and the message of the one at `i`.
fn message(doc: &Value, i: usize) -> String {
    doc["workloads"][i]["message"].as_str().unwrap_or_default().to_owned()
}

fn rollback_of(doc: &Value) -> Vec<String> {
    doc["rollback"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_revision_that_cannot_inject_is_refused_before_anything_or_midway() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    let scale = |n: &str| {
        stdout(sandbox.kubectl().args([
            "scale",
            "deployment/istiod-1-28",
            "-n",
            "istio-system",
            &format!("--replicas={n}"),
        ]))
    };
    // 1-28's istiod is gone: its webhook (failurePolicy Fail) would reject every new pod.
    scale("0");
    let before = generations(&sandbox, "default").await;
    let text = stdout(sandbox.plugin("roll").args(["-n", "default", "--dry-run"]));
    assert!(
        text.contains("warning: revision 1-28 cannot inject new pods now: its istiod Deployment istio-system/istiod-1-28 is scaled to 0"),
        "{text}"
    );
    let (code, doc, err) = roll_json(&sandbox, &["-n", "default"]);
    assert_eq!(code, 4, "refused before any restart: {doc}\n{err}");
    let r = results(&doc);
    assert_eq!(r[0], ("api-gateway".into(), "refused".into()));
    assert!(r[1..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");
    let m = message(&doc, 0);
    assert!(m.contains("revision 1-28 cannot inject new pods"), "{m}");
    assert!(m.contains("istio-system/istiod-1-28 is scaled to 0"), "{m}");
    assert!(rollback_of(&doc).is_empty(), "nothing changed: {doc}");
    assert_eq!(doc["summary"]["refused"], 1);
    assert_eq!(
        generations(&sandbox, "default").await,
        before,
        "something was restarted"
    );
    let (code, out, _) = run(sandbox.plugin("roll").args(["-n", "default"]));
    assert_eq!(code, 4);
    assert!(out.contains("Nothing was restarted."), "{out}");

    // Back up; then it goes away after the first workload: the roll stops there.
    scale("1");
    stdout(sandbox.kubectl().args([
        "rollout",
        "status",
        "deployment/istiod-1-28",
        "-n",
        "istio-system",
        "--timeout=60s",
    ]));
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let hook = format!(
        "test $MESH_WORKLOAD_NAME != api-gateway || kubectl --kubeconfig {kubeconfig} scale deployment/istiod-1-28 -n istio-system --replicas=0"
    );
    let (code, doc, err) = roll_json(&sandbox, &["-n", "default", "--exec", &hook]);
    assert_eq!(code, 6, "refused midway: {doc}\n{err}");
    let r = results(&doc);
    assert_eq!(r[0], ("api-gateway".into(), "done".into()));
    assert_eq!(r[1], ("position-simulator".into(), "refused".into()));
    assert!(r[2..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");
    assert!(message(&doc, 1).contains("is scaled to 0"), "{doc}");
    assert!(
        rollback_of(&doc)
            .iter()
            .any(|c| c.starts_with("kubectl mesh relabel -n default --to 1-27")),
        "{doc}"
    );
    let after = generations(&sandbox, "default").await;
    for name in &APPS[1..] {
        assert_eq!(after[*name], before[*name], "{name} was touched");
    }
}

#[tokio::test]
async fn new_pods_rejected_by_the_webhook_stop_the_roll_at_once() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    // istiod-1-28 runs and its injector ConfigMap is there, but its webhook's Service is
    // gone: the API server cannot call it and rejects every new pod (failurePolicy Fail).
    stdout(
        sandbox
            .kubectl()
            .args(["delete", "service", "istiod-1-28", "-n", "istio-system"]),
    );
    let before = generations(&sandbox, "default").await;
    let started = std::time::Instant::now();
    // The default --timeout (5m) is not waited out.
    let (code, doc, err) = roll_json(&sandbox, &["-n", "default"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code, 6, "{doc}\n{err}");
    let r = results(&doc);
    assert_eq!(r[0], ("api-gateway".into(), "failed".into()));
    assert!(r[1..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");
    let m = message(&doc, 0);
    assert!(m.contains("cannot create its new pods (ReplicaFailure)"), "{m}");
    assert!(m.contains("FailedCreate: "), "{m}");
    assert!(
        m.contains("sidecar-injector.istio.io"),
        "the admission error is quoted: {m}"
    );
    assert!(
        rollback_of(&doc)
            .iter()
            .any(|c| c.starts_with("kubectl mesh relabel -n default --to 1-27")),
        "{doc}"
    );
    let after = generations(&sandbox, "default").await;
    for name in &APPS[1..] {
        assert_eq!(after[*name], before[*name], "{name} was touched");
    }
    // The old pod still serves: the rejected rollout took nothing down.
    for pod in pods(&sandbox, "default").await {
        assert_eq!(injected_by(&pod).as_deref(), Some("1-27"));
    }
}

#[tokio::test]
async fn a_partitioned_statefulset_is_skipped_and_reported() {
    let sandbox = Sandbox::fresh("canary");
    let manifest = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: roll-partition
  labels: {istio.io/rev: 1-27}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: roll-partition}
spec:
  replicas: 3
  serviceName: db
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
"#;
    apply(&sandbox, "partition", manifest, "roll-partition", &["statefulset/db"]);
    relabel(&sandbox, "roll-partition", "1-28");
    let uids = |pods: Vec<Pod>| -> Vec<String> {
        let mut u: Vec<String> = pods.into_iter().filter_map(|p| p.metadata.uid).collect();
        u.sort();
        u
    };
    let before = uids(pods(&sandbox, "roll-partition").await);
    assert_eq!(before.len(), 3);

    let (code, doc, err) = roll_json(&sandbox, &["-n", "roll-partition"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert!(names(&doc).is_empty(), "{doc}");
    let reason = doc["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("partitioned"), "{reason}");
    assert!(
        reason.contains("pods below ordinal 2 keep their proxy; lower the partition or delete them"),
        "{reason}"
    );
    assert_eq!(
        uids(pods(&sandbox, "roll-partition").await),
        before,
        "pods were replaced"
    );
    all_on(&sandbox, "roll-partition", "1-27", "1.27.4").await;
}

/// Put revision `default` of the ambient install on 1.28.4 as a patch release would:
/// istiod's image and its injector's `global.tag`.
async fn upgrade_ambient_istiod(sandbox: &Sandbox) {
    stdout(sandbox.kubectl().args([
        "set",
        "image",
        "deployment/istiod",
        "-n",
        "istio-system",
        "discovery=docker.io/istio/pilot:1.28.4-distroless",
    ]));
    set_injector_tag(sandbox, "istio-sidecar-injector", "1.28.4").await;
}

#[tokio::test]
async fn gateway_api_gateways_waypoints_and_node_agents_are_never_planned() {
    let sandbox = Sandbox::fresh("gateway-api");
    upgrade_ambient_istiod(&sandbox).await;
    let never = ["ztunnel", "istio-cni-node", "gateway-istio", "waypoint"];
    for extra in [&[][..], &["--include-gateways"][..]] {
        let mut args = vec!["-A", "--dry-run"];
        args.extend_from_slice(extra);
        let (code, doc, err) = roll_json(&sandbox, &args);
        assert_eq!(code, 0, "{doc}\n{err}");
        let planned: Vec<String> = names(&doc)
            .into_iter()
            .chain(
                doc["skipped"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["workload"]["name"].as_str().unwrap().to_owned()),
            )
            .collect();
        assert!(
            planned.iter().all(|n| !never.contains(&n.as_str())),
            "{args:?}: {planned:?}"
        );
        // Out of date (their istiod injects 1.28.4 now), listed with the reason.
        let listed: Vec<(String, String, String)> = doc["notRestarted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["workload"]["name"].as_str().unwrap().to_owned(),
                    n["kind"].as_str().unwrap().to_owned(),
                    n["expected"]["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("waypoint".to_string(), "waypoint".to_string(), "rendered".to_string()),
                (
                    "gateway-istio".to_string(),
                    "gateway".to_string(),
                    "rendered".to_string()
                ),
            ],
            "{args:?}: {doc}"
        );
        for n in doc["notRestarted"].as_array().unwrap() {
            let reason = n["reason"].as_str().unwrap();
            assert!(reason.contains("istiod default renders"), "{reason}");
            assert!(reason.contains("re-renders its Deployment"), "{reason}");
        }
    }
    let text = stdout(sandbox.plugin("roll").args(["-A", "--dry-run"]));
    assert!(text.contains("not restarted by roll"), "{text}");
    assert!(text.contains("waypoint"), "{text}");
    assert!(!text.contains("ztunnel"), "never out of date here: {text}");
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_143_and_a_rerun_completes() {
    let sandbox = Sandbox::fresh("canary");
    relabel(&sandbox, "default", "1-28");
    let (out, seen, elapsed) = signal_mid_roll(
        &sandbox,
        &["-n", "default", "-o", "json", "--pause", "3s"],
        "pausing",
        "-TERM",
    );
    assert!(
        seen.contains("default/deployment/api-gateway: done, pausing 3s (--pause)"),
        "{seen}"
    );
    assert!(elapsed < Duration::from_secs(20), "SIGTERM took {elapsed:?}");
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stdout));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = results(&doc);
    assert_eq!(r[0], ("api-gateway".into(), "done".into()));
    assert!(r[1..].iter().all(|(_, res)| res == "notStarted"), "{r:?}");
    assert_eq!(
        (doc["summary"]["done"].clone(), doc["summary"]["notStarted"].clone()),
        (1.into(), 6.into())
    );
    assert_eq!(doc["stoppedBy"], "SIGTERM");

    // The same command again restarts only the rest.
    let (code, doc, err) = roll_json(&sandbox, &["-n", "default"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert_eq!(names(&doc), APPS[1..]);
    all_on(&sandbox, "default", "1-28", "1.28.3").await;
}

/// Start `kubectl mesh roll ARGS`, wait for a progress line containing `wait_for` on
/// stderr, send `signal` (`-INT`, `-TERM`) to the plugin, and wait for it to end: its
/// output, the progress seen, and how long it took to stop after the signal.
fn signal_mid_roll(
    sandbox: &Sandbox,
    args: &[&str],
    wait_for: &str,
    signal: &str,
) -> (std::process::Output, String, Duration) {
    let mut child = sandbox
        .plugin("roll")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roll");
    let pid = child.id();
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in err_lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(wait_for) {
            break;
        }
    }
    let started = std::time::Instant::now();
    stdout(Command::new("kill").args([signal, &pid.to_string()]));
    let out = child.wait_with_output().unwrap();
    (out, seen, started.elapsed())
}

/// Four workloads injected by 1-27, each restarted differently: Recreate (down to 0), one
/// StatefulSet pod with a budget wanting it (down to 0, budget breached), two replicas
/// that surge (never down), four that may lose half (a percentage, rounded down).
const AVAILABILITY_MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: roll-avail
  labels: {istio.io/rev: 1-27}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: recreate, namespace: roll-avail}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: recreate}}
  template:
    metadata: {labels: {app: recreate}}
    spec:
      containers: [{name: app, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: single, namespace: roll-avail}
spec:
  replicas: 1
  serviceName: single
  selector: {matchLabels: {app: single}}
  template:
    metadata: {labels: {app: single}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: single, namespace: roll-avail}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: single}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: surge, namespace: roll-avail}
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0}}
  selector: {matchLabels: {app: surge}}
  template:
    metadata: {labels: {app: surge}}
    spec:
      containers: [{name: app, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: percent, namespace: roll-avail}
spec:
  replicas: 4
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 50%}}
  selector: {matchLabels: {app: percent}}
  template:
    metadata: {labels: {app: percent}}
    spec:
      containers: [{name: app, image: busybox:1.36}]
"#;

/// Pod UIDs by their `app` label.
async fn uids_by_app(sandbox: &Sandbox, ns: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods(sandbox, ns).await {
        let app = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .cloned()
            .unwrap_or_default();
        out.entry(app).or_default().push(p.metadata.uid.unwrap_or_default());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn restarts_that_would_take_a_workload_down_are_held_back_unless_allowed() {
    let sandbox = Sandbox::fresh("canary");
    apply(
        &sandbox,
        "availability",
        AVAILABILITY_MANIFEST,
        "roll-avail",
        &[
            "deployment/recreate",
            "statefulset/single",
            "deployment/surge",
            "deployment/percent",
        ],
    );
    all_on(&sandbox, "roll-avail", "1-27", "1.27.4").await;
    relabel(&sandbox, "roll-avail", "1-28");

    // The plan says what each restart does to the ready pods.
    let text = stdout(sandbox.plugin("roll").args(["-n", "roll-avail", "--dry-run"]));
    println!("{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("deployment/{name} ")) || l.contains(&format!("statefulset/{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_owned()
    };
    assert!(text.lines().nth(1).unwrap().contains("AVAILABILITY"), "{text}");
    assert!(row("percent").trim_end().ends_with("4→2 of 4"), "{text}");
    assert!(row("surge").trim_end().ends_with("2→2 of 2"), "{text}");
    assert!(
        row("recreate").contains("its restart takes it to 0 ready pods (1→0, Recreate)"),
        "{text}"
    );
    assert!(
        row("recreate").contains("--allow-downtime deployment/recreate"),
        "{text}"
    );
    assert!(
        row("single").contains("breaches PodDisruptionBudget single (minAvailable 1"),
        "{text}"
    );
    let (code, doc, _) = roll_json(&sandbox, &["-n", "roll-avail", "--dry-run"]);
    assert_eq!(code, 0, "--dry-run: {doc}");
    assert_eq!(doc["workloads"][0]["availability"]["lowest"], 2, "{doc}");
    assert_eq!(doc["skipped"][0]["cause"], "availability", "{doc}");
    assert_eq!(doc["skipped"][0]["availability"]["strategy"], "Recreate", "{doc}");

    // Without the flag: the two safe ones are restarted, the others left alone.
    let before = uids_by_app(&sandbox, "roll-avail").await;
    let (code, doc, err) = roll_json(&sandbox, &["-n", "roll-avail"]);
    assert_eq!(code, 7, "held back for availability: {doc}\n{err}");
    assert_eq!(
        results(&doc),
        [
            ("percent".to_string(), "done".to_string()),
            ("surge".to_string(), "done".to_string())
        ]
    );
    let held: Vec<(&str, &str)> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["workload"]["name"].as_str().unwrap(), s["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(held, [("recreate", "availability"), ("single", "availability")]);
    let after = uids_by_app(&sandbox, "roll-avail").await;
    for app in ["recreate", "single"] {
        assert_eq!(after[app], before[app], "{app}'s pods were replaced");
    }
    for app in ["percent", "surge"] {
        assert!(
            after[app].iter().all(|u| !before[app].contains(u)),
            "{app} kept old pods"
        );
    }
    // The lowest ready count seen during each restart kept the plan's promise.
    for w in doc["workloads"].as_array().unwrap() {
        let (lowest, promised) = (
            w["lowestReady"].as_i64().unwrap(),
            w["availability"]["lowest"].as_i64().unwrap(),
        );
        println!("{}: lowest ready {lowest}, promised {promised}", w["workload"]["name"]);
        assert!(lowest >= promised, "{w}");
    }

    // With --allow-downtime the others are restarted too.
    let (code, doc, err) = roll_json(&sandbox, &["-n", "roll-avail", "--allow-downtime"]);
    assert_eq!(code, 0, "{doc}\n{err}");
    assert_eq!(
        results(&doc),
        [
            ("recreate".to_string(), "done".to_string()),
            ("single".to_string(), "done".to_string())
        ]
    );
    assert_eq!(doc["workloads"][0]["availability"]["downtimeAllowed"], true, "{doc}");
    all_on(&sandbox, "roll-avail", "1-28", "1.28.3").await;
}
