//! `kubectl mesh switchover` on two live clusters at once, through the real kubectl: the
//! seed's live cluster switchover (section 66). The old cluster is the canary sandbox (the
//! app on Istio 1.27), the new one the switchover-target sandbox (the same app on 1.28
//! only); each test then breaks the new cluster (or the old) the way a real switchover
//! goes wrong, and the check must say so.

use std::path::PathBuf;
use std::process::Command;

use kubectl_mesh_e2e::{FleetContext, Sandbox, fleet_kubeconfig, run, scratch_dir, stdout};
use serde_json::Value;

/// Both clusters and one kubeconfig naming them `old` and `new`.
struct Clusters {
    old: Sandbox,
    new: Sandbox,
    kubeconfig: PathBuf,
}

/// The address a cloud load balancer would give the new cluster's ingress gateway.
const EXTERNAL_IP: &str = "203.0.113.10";

impl Clusters {
    /// Both sandboxes reset; the new ingress gateway's Service given an external address,
    /// as a cloud's load-balancer controller writes it (the status subresource).
    fn up(test: &str) -> Clusters {
        let (old, new) = Sandbox::pair("canary", "switchover-target");
        stdout(new.kubectl().args([
            "patch",
            "service",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{EXTERNAL_IP}"}}]}}}}}}"#),
        ]));
        let dir = scratch_dir(test);
        let kubeconfig = fleet_kubeconfig(
            &dir.join("kubeconfig"),
            &[FleetContext::Admin("old", &old), FleetContext::Admin("new", &new)],
        );
        Clusters { old, new, kubeconfig }
    }

    /// `kubectl mesh switchover --from old --to new ARGS`.
    fn switchover(&self, args: &[&str]) -> Command {
        let mut cmd = self.old.plugin("switchover");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .args(["--from", "old", "--to", "new"])
            .args(args);
        cmd
    }

    /// The `-o json` document and the exit code.
    fn document(&self, args: &[&str]) -> (i32, Value) {
        let (code, out, err) = run(self.switchover(args).args(["-o", "json"]));
        let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr:\n{err}"));
        (code, doc)
    }
}

fn codes(doc: &Value) -> Vec<&str> {
    doc["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

fn messages(doc: &Value) -> String {
    doc["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_1_28_cluster_running_the_same_app_can_take_the_load() {
    let c = Clusters::up("ready");

    let (code, out, err) = run(&mut c.switchover(&[]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.starts_with("Switchover from old to new (namespaces: default): READY"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Ingress gateway istio-system/istio-ingressgateway: 1/1 ready, external address {EXTERNAL_IP}"
        )),
        "{out}"
    );

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 0);
    assert_eq!(doc["kind"], "MeshSwitchover");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["from"], "old");
    assert_eq!(doc["to"], "new");
    assert_eq!(doc["workloads"].as_array().unwrap().len(), kubectl_mesh_e2e::APPS.len());
    assert!(
        doc["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["parity"] == "same")
    );
    assert_eq!(doc["services"].as_array().unwrap().len(), 5);
    assert_eq!(doc["mesh"]["revisions"][0]["name"], "1-28");
    assert_eq!(doc["mesh"]["revisions"][0]["ready"], true);
    assert_eq!(doc["mesh"]["outOfDate"], 0);
    assert_eq!(doc["mesh"]["proxies"], 9, "seven sidecars and two gateways");

    // Without the load balancer's address the new cluster cannot take traffic.
    stdout(c.new.kubectl().args([
        "patch",
        "service",
        "istio-ingressgateway",
        "-n",
        "istio-system",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":null}}}"#,
    ]));
    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3);
    assert_eq!(codes(&doc), ["NoExternalAddress"]);
}

#[test]
fn a_deployment_missing_in_the_new_cluster_blocks() {
    let c = Clusters::up("missing");
    stdout(
        c.new
            .kubectl()
            .args(["delete", "deployment", "webapp", "-n", "default", "--wait=true"]),
    );

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(codes(&doc), ["Missing"]);
    assert_eq!(
        doc["reasons"][0]["message"],
        "deployment/webapp in default is in old but not in new"
    );
    let (code, out, _) = run(&mut c.switchover(&["-o", "name"]));
    assert_eq!((code, out.as_str()), (3, "deployment.apps/webapp\n"));
    let (_, table, _) = run(&mut c.switchover(&[]));
    assert!(
        table.contains("[Missing] deployment/webapp in default is in old but not in new"),
        "{table}"
    );
}

#[test]
fn a_different_image_in_the_new_cluster_blocks() {
    let c = Clusters::up("image");
    stdout(c.new.kubectl().args([
        "set",
        "image",
        "deployment/staff-service",
        "staff-service=richardchesterwood/k8s-fleetman-staff-service:release3",
        "-n",
        "default",
    ]));
    stdout(c.new.kubectl().args([
        "rollout",
        "status",
        "deployment/staff-service",
        "-n",
        "default",
        "--timeout=120s",
    ]));

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(codes(&doc), ["ImageDiffers"]);
    assert_eq!(
        doc["reasons"][0]["message"],
        "deployment/staff-service in default: container staff-service: richardchesterwood/k8s-fleetman-staff-service:release2 in old, richardchesterwood/k8s-fleetman-staff-service:release3 in new"
    );
}

#[test]
fn fewer_ready_replicas_in_the_new_cluster_block() {
    let c = Clusters::up("replicas");
    stdout(
        c.old
            .kubectl()
            .args(["scale", "deployment/webapp", "--replicas=3", "-n", "default"]),
    );
    stdout(c.old.kubectl().args([
        "rollout",
        "status",
        "deployment/webapp",
        "-n",
        "default",
        "--timeout=120s",
    ]));

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(codes(&doc), ["FewerReady"]);
    assert_eq!(
        doc["reasons"][0]["message"],
        "deployment/webapp in default: 1 ready in new, 3 in old"
    );

    // Scaled to match, the new cluster can take the load.
    stdout(
        c.new
            .kubectl()
            .args(["scale", "deployment/webapp", "--replicas=3", "-n", "default"]),
    );
    stdout(c.new.kubectl().args([
        "rollout",
        "status",
        "deployment/webapp",
        "-n",
        "default",
        "--timeout=120s",
    ]));
    let (code, doc) = c.document(&[]);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_proxy_still_out_of_date_in_the_new_cluster_blocks() {
    let c = Clusters::up("out-of-date");
    // An in-place patch of the new cluster's revision to 1.28.4 as `istioctl upgrade` writes
    // it (istiod's image, the injector's global.tag, the gateways' own proxyv2 image: they
    // are not injected), then every app workload restarted but position-tracker.
    let values = stdout(c.new.kubectl().args([
        "get",
        "configmap",
        "istio-sidecar-injector-1-28",
        "-n",
        "istio-system",
        "-o",
        "jsonpath={.data.values}",
    ]));
    let mut parsed: Value = serde_json::from_str(&values).expect("the injector's values are JSON");
    parsed["global"]["tag"] = "1.28.4".into();
    let patch = serde_json::json!({"data": {"values": parsed.to_string()}}).to_string();
    stdout(c.new.kubectl().args([
        "patch",
        "configmap",
        "istio-sidecar-injector-1-28",
        "-n",
        "istio-system",
        "--type=merge",
        "-p",
        &patch,
    ]));
    stdout(c.new.kubectl().args([
        "set",
        "image",
        "deployment/istiod-1-28",
        "discovery=docker.io/istio/pilot:1.28.4",
        "-n",
        "istio-system",
    ]));
    for d in kubectl_mesh_e2e::APPS.iter().filter(|d| **d != "position-tracker") {
        stdout(
            c.new
                .kubectl()
                .args(["rollout", "restart", &format!("deployment/{d}"), "-n", "default"]),
        );
    }
    for d in ["istio-ingressgateway", "istio-egressgateway"] {
        stdout(c.new.kubectl().args([
            "set",
            "image",
            &format!("deployment/{d}"),
            "istio-proxy=docker.io/istio/proxyv2:1.28.4",
            "-n",
            "istio-system",
        ]));
    }
    for (ns, list) in [
        (
            "istio-system",
            vec!["istiod-1-28", "istio-ingressgateway", "istio-egressgateway"],
        ),
        ("default", kubectl_mesh_e2e::APPS.to_vec()),
    ] {
        for d in list {
            stdout(c.new.kubectl().args([
                "rollout",
                "status",
                &format!("deployment/{d}"),
                "-n",
                ns,
                "--timeout=180s",
            ]));
        }
    }

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(codes(&doc), ["OutOfDate"], "{}", messages(&doc));
    assert_eq!(doc["mesh"]["outOfDate"], 1);
    let message = doc["reasons"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("deployment/position-tracker in default (new): 1 of 1 proxies out of date (proxy 1.28.3"),
        "{message}"
    );
    assert!(
        message.contains("kubectl mesh roll --context new -n default"),
        "{message}"
    );
}

/// A database as a StatefulSet with a volumeClaimTemplate, kept out of the mesh.
const DATABASE: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: default}
spec:
  replicas: 1
  serviceName: postgres
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres, sidecar.istio.io/inject: 'false'}}
    spec:
      containers: [{name: postgres, image: 'postgres:16'}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
";

#[test]
fn a_statefulset_with_a_volume_claim_template_blocks_until_acknowledged() {
    let c = Clusters::up("stateful");
    let dir = scratch_dir("stateful-manifest");
    let manifest = dir.join("postgres.yaml");
    std::fs::write(&manifest, DATABASE).unwrap();
    for s in [&c.old, &c.new] {
        stdout(s.kubectl().args(["apply", "-f"]).arg(&manifest));
    }

    let (code, doc) = c.document(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(codes(&doc), ["Stateful"]);
    assert_eq!(doc["stateful"][0]["name"], "postgres");
    assert_eq!(doc["stateful"][0]["cluster"], "both");
    assert_eq!(
        doc["stateful"][0]["why"],
        "makes a PersistentVolumeClaim per pod (volumeClaimTemplates data)"
    );
    assert!(
        messages(&doc).contains("--allow-stateful default/postgres"),
        "{}",
        messages(&doc)
    );

    let (code, doc) = c.document(&["--allow-stateful", "default/postgres"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["stateful"][0]["allowed"], true);

    // Acknowledging a workload that is not stateful is a mistake worth saying.
    let (code, _, err) = run(&mut c.switchover(&["--allow-stateful", "default/webapp"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--allow-stateful default/webapp: no stateful workload"),
        "{err}"
    );
    assert!(err.contains("stateful ones: default/postgres"), "{err}");
}

#[test]
fn an_unreachable_new_cluster_is_an_error_naming_it() {
    let (old, new) = Sandbox::pair("canary", "switchover-target");
    let dir = scratch_dir("unreachable");
    let kubeconfig = fleet_kubeconfig(
        &dir.join("kubeconfig"),
        &[FleetContext::Admin("old", &old), FleetContext::Unreachable("new", &new)],
    );
    let (code, out, err) = run(old.plugin("switchover").env("KUBECONFIG", &kubeconfig).args([
        "--from",
        "old",
        "--to",
        "new",
        "--request-timeout",
        "5s",
    ]));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("cannot read the new cluster (context new)"), "{err}");
    assert!(
        err.contains("cannot reach the Kubernetes API server at https://127.0.0.1:1"),
        "{err}"
    );

    // Usage errors come before any read.
    let (code, _, err) = run(old
        .plugin("switchover")
        .env("KUBECONFIG", &kubeconfig)
        .args(["--from", "old", "--to", "old"]));
    assert_eq!(code, 2, "{err}");
}

/// Binds `rbac/switchover.yaml` (its rules as given) to a new ServiceAccount in `sandbox`
/// and returns a token for it.
fn least_privilege_token(sandbox: &Sandbox, dir: &std::path::Path, side: &str, role: &Value) -> String {
    remove_least_privilege(sandbox);
    let role_file = dir.join(format!("{side}-role.json"));
    std::fs::write(&role_file, role.to_string()).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&role_file));
    // The ServiceAccount may be left from an earlier run (a reset keeps the namespace).
    let _ = run(sandbox
        .kubectl()
        .args(["create", "serviceaccount", "switchover-checker", "-n", "default"]));
    stdout(sandbox.kubectl().args([
        "create",
        "clusterrolebinding",
        "kubectl-mesh-switchover-test",
        "--clusterrole=kubectl-mesh-switchover",
        "--serviceaccount=default:switchover-checker",
    ]));
    sandbox.service_account_token("default", "switchover-checker")
}

/// Removes what `least_privilege_token` made (cluster-scoped objects outlive a reset).
fn remove_least_privilege(sandbox: &Sandbox) {
    stdout(sandbox.kubectl().args([
        "delete",
        "clusterrolebinding/kubectl-mesh-switchover-test",
        "clusterrole/kubectl-mesh-switchover",
        "--ignore-not-found",
    ]));
}

/// The role file as JSON, with `drop` (a resource name) taken out of every rule.
fn switchover_role(drop: Option<&str>) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rbac/switchover.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut role: Value = serde_saphyr::from_str(&text).expect("rbac/switchover.yaml parses");
    if let Some(gone) = drop {
        for rule in role["rules"].as_array_mut().unwrap() {
            rule["resources"].as_array_mut().unwrap().retain(|r| r != gone);
        }
        role["rules"]
            .as_array_mut()
            .unwrap()
            .retain(|r| !r["resources"].as_array().unwrap().is_empty());
    }
    role
}

#[test]
fn the_check_needs_no_more_than_its_role_in_both_clusters() {
    let c = Clusters::up("least-privilege");
    let (admin_code, admin_doc) = c.document(&[]);
    assert_eq!(admin_code, 0, "{admin_doc}");

    let dir = scratch_dir("least-privilege-sa");
    let role = switchover_role(None);
    let tokens = [
        least_privilege_token(&c.old, &dir, "old", &role),
        least_privilege_token(&c.new, &dir, "new", &role),
    ];
    let kubeconfig = fleet_kubeconfig(
        &dir.join("sa-kubeconfig"),
        &[
            FleetContext::Token("old", &c.old, &tokens[0]),
            FleetContext::Token("new", &c.new, &tokens[1]),
        ],
    );
    let as_role = |kubeconfig: &PathBuf| {
        let mut cmd = c.old.plugin("switchover");
        cmd.env("KUBECONFIG", kubeconfig)
            .args(["--from", "old", "--to", "new", "-o", "json"]);
        run(&mut cmd)
    };
    let (code, out, err) = as_role(&kubeconfig);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["ready"], admin_doc["ready"]);
    assert_eq!(doc["workloads"], admin_doc["workloads"]);
    assert_eq!(doc["services"], admin_doc["services"]);

    // Without listing Services in the new cluster the check cannot answer: exit 1, the
    // 403 named, and no verdict printed as if it were one.
    let narrowed = switchover_role(Some("services"));
    let file = dir.join("narrowed.json");
    std::fs::write(&file, narrowed.to_string()).unwrap();
    stdout(c.new.kubectl().args(["apply", "-f"]).arg(&file));
    let denied = (0..30).any(|_| {
        let (_, can, _) = run(c.new.kubectl().args([
            "auth",
            "can-i",
            "list",
            "services",
            "--as=system:serviceaccount:default:switchover-checker",
            "-A",
        ]));
        if can.trim() == "no" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        false
    });
    assert!(denied, "the narrowed role never took effect");
    let (code, out, err) = as_role(&kubeconfig);
    remove_least_privilege(&c.old);
    remove_least_privilege(&c.new);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "no verdict without the reads: {out}");
    assert!(err.contains("new cluster") && err.contains("services"), "{err}");
}
