//! `kubectl mesh revisions` on the sandbox, run through the real kubectl: the seed's
//! canary upgrade before and after the namespace is relabelled, and an in-place upgrade.

use kubectl_mesh_e2e::{Sandbox, run, stdout};
use serde_json::{Value, json};

/// The fleetman app: seven Deployments of one pod each in `default`.
const APP_PROXIES: u64 = 7;

fn document(sandbox: &Sandbox, args: &[&str]) -> Value {
    let text = stdout(sandbox.plugin("revisions").args(["-o", "json"]).args(args));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn revision<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no revision {name} in {doc:#}"))
}

fn app_proxies(doc: &Value) -> Vec<&Value> {
    doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["namespace"] == "default")
        .collect()
}

#[test]
fn canary_before_and_after_the_namespace_moves_to_1_28() {
    let sandbox = Sandbox::fresh("canary");

    let doc = document(&sandbox, &[]);
    assert_eq!(doc["schemaVersion"], 1);
    assert_eq!(doc["kind"], "MeshRevisions");
    assert_eq!(doc["defaultRevision"], "1-27");
    let r27 = revision(&doc, "1-27");
    assert_eq!(r27["tags"], json!(["default"]));
    assert_eq!(r27["default"], true);
    assert_eq!(r27["version"], "1.27.4");
    assert_eq!(r27["ready"], true);
    assert_eq!(r27["namespaces"], json!(["default"]));
    assert_eq!(r27["proxies"], json!({"1.27.4": APP_PROXIES}));
    assert_eq!(r27["outOfDate"], 0);
    let r28 = revision(&doc, "1-28");
    assert_eq!(r28["version"], "1.28.3");
    assert_eq!(r28["ready"], true);
    assert_eq!(r28["tags"], json!([]));
    assert_eq!(r28["namespaces"], json!([]));
    // The 1-28 install took over both gateways (the seed's "riskiest action").
    assert_eq!(r28["proxies"], json!({"1.28.3": 2}));
    assert_eq!(doc["outOfDate"], 0);
    assert_eq!(doc["totalProxies"], APP_PROXIES + 2);
    let gateways: Vec<_> = doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["gateway"] == true)
        .map(|p| p["workload"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(gateways, ["istio-egressgateway", "istio-ingressgateway"]);
    let codes: Vec<_> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["GatewayVersion", "GatewayVersion"]);

    let (code, table, stderr) = run(sandbox.plugin("revisions").arg("--check"));
    assert_eq!(code, 0, "nothing is out of date yet: {stderr}");
    assert!(table.contains("All 9 proxies are up to date."), "{table}");
    println!("canary, before relabel:\n{table}");

    // STEP 2 of the seed.
    stdout(
        sandbox
            .kubectl()
            .args(["label", "ns", "default", "istio.io/rev=1-28", "--overwrite"]),
    );

    let doc = document(&sandbox, &[]);
    let r27 = revision(&doc, "1-27");
    assert_eq!(r27["namespaces"], json!([]));
    assert_eq!(r27["proxies"], json!({"1.27.4": APP_PROXIES}));
    assert_eq!(r27["outOfDate"], APP_PROXIES);
    assert_eq!(revision(&doc, "1-28")["namespaces"], json!(["default"]));
    assert_eq!(doc["outOfDate"], APP_PROXIES);
    let app = app_proxies(&doc);
    assert_eq!(app.len() as u64, APP_PROXIES);
    for p in app {
        assert_eq!(p["expectedRevision"], "1-28", "{p:#}");
        assert_eq!(
            p["outOfDate"],
            json!([{"kind": "revision", "injected": "1-27", "expected": "1-28"}]),
            "{p:#}"
        );
        assert_eq!(p["workload"]["kind"], "Deployment", "{p:#}");
    }

    // --check: the documented exit code, through kubectl unchanged, with the table still printed.
    let (code, table, stderr) = run(sandbox.plugin("revisions").arg("--check"));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        table.contains("7 of 9 proxies are out of date: restart them with `kubectl mesh roll --one-at-a-time`."),
        "{table}"
    );
    println!("canary, after relabel:\n{table}");
    let (code, json_text, _) = run(sandbox.plugin("revisions").args(["--check", "-o", "json"]));
    assert_eq!(code, 3);
    assert!(serde_json::from_str::<Value>(&json_text).is_ok(), "{json_text}");

    let (code, proxies, _) = run(sandbox.plugin("revisions").args(["--proxies", "-n", "default"]));
    assert_eq!(code, 0);
    let stale_rows = proxies
        .lines()
        .filter(|l| l.contains("out of date: injected by 1-27, a restart would get 1-28"))
        .count();
    assert_eq!(stale_rows as u64, APP_PROXIES, "{proxies}");
    println!("canary, --proxies -n default:\n{proxies}");
}

#[test]
fn inplace_app_proxies_are_out_of_date_by_version() {
    let sandbox = Sandbox::fresh("inplace");

    let doc = document(&sandbox, &[]);
    assert_eq!(doc["defaultRevision"], "default");
    let revisions: Vec<_> = doc["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(revisions, ["default"]);
    let r = revision(&doc, "default");
    assert_eq!(r["version"], "1.28.3");
    assert_eq!(r["ready"], true);
    assert_eq!(r["namespaces"], json!(["default"]));
    assert_eq!(r["outOfDate"], APP_PROXIES);
    assert_eq!(r["proxies"]["1.27.4"], APP_PROXIES);
    let app = app_proxies(&doc);
    assert_eq!(app.len() as u64, APP_PROXIES);
    for p in app {
        assert_eq!(p["revision"], "default", "{p:#}");
        assert_eq!(p["expectedRevision"], "default", "{p:#}");
        assert_eq!(
            p["outOfDate"],
            json!([{"kind": "version", "version": "1.27.4", "controlPlane": "1.28.3"}]),
            "{p:#}"
        );
    }

    let (code, table, stderr) = run(sandbox.plugin("revisions").arg("--check"));
    assert_eq!(code, 3, "{stderr}");
    assert!(table.contains("7 of "), "{table}");
    println!("inplace:\n{table}");
}

#[test]
fn a_namespace_that_does_not_exist_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    let (code, out, stderr) = run(sandbox.plugin("revisions").args(["-n", "no-such-namespace"]));
    assert_eq!(code, 2, "{out}");
    assert!(stderr.contains("namespace \"no-such-namespace\" not found"), "{stderr}");
}

/// A table line with its column padding collapsed.
fn rows(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn has_row(text: &str, row: &str) {
    assert!(rows(text).iter().any(|r| r == row), "no row {row:?} in:\n{text}");
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {list:#}"))
}

/// A tag that exists only as a Service, as the istiod chart writes it with
/// `revisionTags=[stable]` and no webhook (istio-discovery/templates/revision-tags-svc.yaml).
const STABLE_TAG_SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service",
 "metadata": {"name": "istiod-revision-tag-stable", "namespace": "istio-system",
   "labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": "1-27", "istio.io/tag": "stable"}},
 "spec": {"selector": {"app": "istiod", "istio.io/rev": "1-27"},
   "ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017},
             {"name": "grpc-xds", "port": 15010}, {"name": "https-dns", "port": 15012}]}}"#;

#[test]
fn istioctl_tags_are_listed_as_istioctl_tag_list_prints_them() {
    let sandbox = Sandbox::fresh("istioctl-tags");
    // A namespace on the prod tag, and a tag that exists only as a Service.
    stdout(sandbox.kubectl().args(["create", "namespace", "analytics"]));
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "analytics", "istio.io/rev=prod"]),
    );
    let path = kubectl_mesh_e2e::scratch_dir("revisions-tag-service").join("stable.json");
    std::fs::write(&path, STABLE_TAG_SERVICE).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&path));

    // What istioctl 1.28.3 `tag list` prints on this state, row for row.
    let (code, table, stderr) = run(sandbox.plugin("revisions").arg("-A"));
    assert_eq!(code, 0, "{stderr}");
    let tags: Vec<String> = rows(&table)
        .into_iter()
        .skip_while(|r| r != "TAG REVISION NAMESPACES")
        .take(4)
        .collect();
    assert_eq!(
        tags,
        [
            "TAG REVISION NAMESPACES",
            "prod 1-27 analytics",
            "stable 1-27 -",
            "default 1-28 -"
        ],
        "{table}"
    );
    has_row(&table, "1-27 prod,stable 1.27.4 1/1 analytics,default 1.27.4: 7 0");
    println!("istioctl-tags, with namespace analytics on prod and a Service-only tag:\n{table}");

    let doc = document(&sandbox, &["-A"]);
    assert_eq!(
        doc["tags"],
        json!([
            {"name": "prod", "revision": "1-27", "webhook": "istio-revision-tag-prod",
             "namespaces": ["analytics"], "service": "istiod-revision-tag-prod"},
            {"name": "stable", "revision": "1-27", "webhook": "", "namespaces": [],
             "service": "istiod-revision-tag-stable"},
            {"name": "default", "revision": "1-28", "webhook": "istio-revision-tag-default",
             "namespaces": [], "service": "istiod-revision-tag-default"}
        ])
    );
    assert_eq!(revision(&doc, "1-27")["tags"], json!(["prod", "stable"]));
    assert_eq!(revision(&doc, "1-28")["default"], true);
}

#[test]
fn gateway_api_and_ambient_components_are_listed_with_their_revision() {
    let sandbox = Sandbox::fresh("gateway-api");
    let doc = document(&sandbox, &["-A"]);
    // The waypoint and the Gateway API gateway are the revision's proxies; the four
    // ztunnel and four istio-cni pods (one per node) are components.
    assert_eq!(doc["totalProxies"], 2);
    assert_eq!(doc["outOfDate"], 0);
    let r = revision(&doc, "default");
    assert_eq!(r["proxies"], json!({"1.28.3": 2}));
    assert_eq!(r["namespaces"], json!([]));
    assert_eq!(r["ambientNamespaces"], json!(["default"]));
    let kinds: Vec<_> = doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["kind"].as_str().unwrap(), p["gatewayName"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, ["waypoint waypoint", "gateway gateway"]);

    let components = doc["components"].as_array().unwrap();
    assert_eq!(components.len(), 4, "{components:#?}");
    let ztunnel = find(&doc["components"], "kind", "ztunnel");
    assert_eq!(ztunnel["workload"], json!({"kind": "DaemonSet", "name": "ztunnel"}));
    assert_eq!(ztunnel["revisions"], json!(["default"]));
    assert_eq!(ztunnel["versions"], json!({"1.28.3": 4}));
    assert_eq!(
        (ztunnel["pods"].as_u64(), ztunnel["ready"].as_u64()),
        (Some(4), Some(4))
    );
    let cni = find(&doc["components"], "kind", "cni");
    assert_eq!(cni["workload"]["name"], "istio-cni-node");
    assert_eq!(cni["pods"], 4);
    let waypoint = find(&doc["components"], "kind", "waypoint");
    assert_eq!(waypoint["gatewayName"], "waypoint");
    assert_eq!(waypoint["expectedRevision"], "default");
    let gateway = find(&doc["components"], "kind", "gateway");
    assert_eq!(gateway["namespace"], "istio-ingress");
    assert_eq!(gateway["workload"]["name"], "gateway-istio");
    assert_eq!(gateway["expectedRevision"], "default");

    let default = find(&doc["namespaces"], "name", "default");
    assert_eq!(default["dataplaneMode"], "ambient");
    assert_eq!(default["ambient"], json!({"revision": "default"}));
    assert_eq!(
        default["waypoint"],
        json!({"namespace": "default", "name": "waypoint", "revision": "default"})
    );

    let (code, table, stderr) = run(sandbox.plugin("revisions").arg("-A"));
    assert_eq!(code, 0, "{stderr}");
    has_row(&table, "default (default) - 1.28.3 1/1 default (ambient) 1.28.3: 2 0");
    has_row(&table, "COMPONENT NAMESPACE NAME REVISION VERSION PODS READY");
    has_row(&table, "ztunnel istio-system ztunnel default 1.28.3 4 4/4");
    has_row(&table, "istio-cni istio-system istio-cni-node - 1.28.3 4 4/4");
    has_row(&table, "waypoint default waypoint default 1.28.3 1 1/1");
    has_row(&table, "gateway istio-ingress gateway default 1.28.3 1 1/1");
    assert!(table.contains("All 2 proxies are up to date."), "{table}");
    println!("gateway-api:\n{table}");

    let (code, table, stderr) = run(sandbox.plugin("revisions").args(["-A", "--namespaces"]));
    assert_eq!(code, 0, "{stderr}");
    has_row(&table, "default - - - default: 1 0 ambient default waypoint (default)");
    println!("gateway-api, --namespaces:\n{table}");
}

#[test]
fn a_restart_into_a_revision_whose_istiod_is_not_ready_is_called_rejected() {
    let sandbox = Sandbox::fresh("canary");
    stdout(
        sandbox
            .kubectl()
            .args(["label", "ns", "default", "istio.io/rev=1-28", "--overwrite"]),
    );
    // istiod-1-28 replaced by a pod that never becomes ready.
    stdout(sandbox.kubectl().args([
        "patch",
        "deployment",
        "istiod-1-28",
        "-n",
        "istio-system",
        "--type",
        "merge",
        "-p",
        r#"{"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null},
            "template": {"metadata": {"annotations": {"kubectl-mesh.test/never-ready": "true"}}}}}"#,
    ]));
    let status = "{.status.readyReplicas}/{.status.updatedReplicas}/{.status.observedGeneration}";
    let mut last = String::new();
    for _ in 0..60 {
        last = stdout(sandbox.kubectl().args([
            "get",
            "deployment",
            "istiod-1-28",
            "-n",
            "istio-system",
            "-o",
            &format!("jsonpath={status}"),
        ]));
        if last == "/1/2" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(last, "/1/2", "istiod-1-28 never went unready");

    let (code, table, stderr) = run(sandbox.plugin("revisions").args(["--proxies", "-n", "default"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!table.contains("a restart would get"), "{table}");
    let rejected = table
        .lines()
        .filter(|l| {
            l.contains(
                "out of date: injected by 1-27, a restart would be rejected: revision 1-28's istiod is not ready (0/1)",
            )
        })
        .count();
    assert_eq!(rejected as u64, APP_PROXIES, "{table}");
    assert!(
        table.contains("[RestartRejected] revision 1-28's istiod is not ready (0/1): a restart of the 7 out-of-date pods it would inject (namespace default) would be rejected"),
        "{table}"
    );
    assert!(
        table.contains(
            "7 of 7 proxies are out of date: a restart would be rejected: revision 1-28's istiod is not ready (0/1). Fix that first, then `kubectl mesh roll`."
        ),
        "{table}"
    );
    println!("canary, istiod-1-28 down, --proxies -n default:\n{table}");
    let doc = document(&sandbox, &["-n", "default"]);
    for p in app_proxies(&doc) {
        assert_eq!(
            p["restartRejected"], "revision 1-28's istiod is not ready (0/1)",
            "{p:#}"
        );
    }

    // And so it is: the restarted webapp's new pod is refused by 1-28's webhook.
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "restart", "deployment/webapp", "-n", "default"]),
    );
    let mut events = String::new();
    for _ in 0..30 {
        events = stdout(sandbox.kubectl().args([
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[*].message}",
        ]));
        if events.contains("sidecar-injector.istio.io") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert!(
        events.contains("failed calling webhook \"rev.namespace.sidecar-injector.istio.io\""),
        "{events}"
    );
}

/// The fleet view over both sandboxes: the canary cluster as `old`, the 1.28-only
/// switchover target as `new`.
mod fleet {
    use kubectl_mesh_e2e::{FleetContext, Sandbox, fleet_kubeconfig, run, scratch_dir, stdout};
    use serde_json::Value;

    fn fleet(sandbox: &Sandbox, kubeconfig: &std::path::Path, args: &[&str]) -> (i32, String, String) {
        run(sandbox
            .plugin("revisions")
            .env("KUBECONFIG", kubeconfig)
            .env("NO_COLOR", "1")
            .args(args))
    }

    fn rows(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn names(cluster: &Value) -> Vec<&str> {
        cluster["revisions"]["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn two_clusters_in_one_table_and_one_document() {
        let (old, new) = Sandbox::pair("canary", "switchover-target");
        let dir = scratch_dir("fleet-two");
        let kubeconfig = fleet_kubeconfig(
            &dir.join("kubeconfig"),
            &[FleetContext::Admin("old", &old), FleetContext::Admin("new", &new)],
        );

        let (code, out, err) = fleet(&old, &kubeconfig, &["--context", "old", "--context", "new"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let rows = rows(&out);
        assert_eq!(rows[0], "CLUSTER REVISION TAGS VERSION ISTIOD PROXIES OUT OF DATE");
        assert!(
            rows.contains(&"old 1-27 (default) default 1.27.4 1/1 1.27.4: 7 0".to_string()),
            "{out}"
        );
        assert!(rows.contains(&"old 1-28 - 1.28.3 1/1 1.28.3: 2 0".to_string()), "{out}");
        assert!(rows.contains(&"new 1-28 - 1.28.3 1/1 1.28.3: 9 0".to_string()), "{out}");
        assert!(
            rows.contains(&"2 of 2 clusters read: no proxy is out of date.".to_string()),
            "{out}"
        );

        let (code, out, _) = fleet(&old, &kubeconfig, &["--all-contexts", "-o", "json"]);
        assert_eq!(code, 0);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["kind"], "MeshFleet");
        assert_eq!(doc["schemaVersion"], 1);
        assert_eq!(doc["failed"], 0);
        assert_eq!(doc["clusters"][0]["context"], "old");
        assert_eq!(doc["clusters"][0]["revisions"]["kind"], "MeshRevisions");
        assert_eq!(names(&doc["clusters"][0]), ["1-27", "1-28"]);
        assert_eq!(doc["clusters"][1]["context"], "new");
        assert_eq!(names(&doc["clusters"][1]), ["1-28"]);
        assert_eq!(doc["clusters"][1]["revisions"]["totalProxies"], 9);

        // Each cluster's document is what the single-cluster view prints for it.
        let single: Value =
            serde_json::from_str(&stdout(old.plugin("revisions").env("KUBECONFIG", &kubeconfig).args([
                "--context",
                "new",
                "-o",
                "json",
            ])))
            .unwrap();
        assert_eq!(doc["clusters"][1]["revisions"], single);

        // The same context twice is read twice, in the order given.
        let (code, out, _) = fleet(
            &old,
            &kubeconfig,
            &["--context", "new", "--context", "new", "-o", "name"],
        );
        assert_eq!((code, out.as_str()), (0, "new/revision/1-28\nnew/revision/1-28\n"));
    }

    #[test]
    fn a_cluster_that_cannot_be_read_gets_its_row_and_exit_5() {
        let (old, new) = Sandbox::pair("canary", "switchover-target");
        let dir = scratch_dir("fleet-partial");
        // A listener that accepts connections and never answers: only the timeout ends it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_url = format!("https://{}", silent.local_addr().unwrap());
        let kubeconfig = fleet_kubeconfig(
            &dir.join("kubeconfig"),
            &[
                FleetContext::Admin("old", &old),
                FleetContext::Unreachable("gone", &new),
                FleetContext::Token("stranger", &new, "not-a-token"),
                FleetContext::Server("silent", &new, &silent_url),
                FleetContext::Admin("new", &new),
            ],
        );

        let (code, out, err) = fleet(&old, &kubeconfig, &["--all-contexts", "--request-timeout", "3s"]);
        assert_eq!(code, 5, "{out}\n{err}");
        let rows = rows(&out);
        assert!(rows.contains(&"gone error: Unreachable - - - - -".to_string()), "{out}");
        assert!(
            rows.contains(&"stranger error: Unauthorized - - - - -".to_string()),
            "{out}"
        );
        assert!(rows.contains(&"silent error: Timeout - - - - -".to_string()), "{out}");
        assert!(rows.contains(&"new 1-28 - 1.28.3 1/1 1.28.3: 9 0".to_string()), "{out}");
        assert!(
            out.contains("[Unreachable] gone: cannot reach the Kubernetes API server at https://127.0.0.1:1"),
            "{out}"
        );
        assert!(
            rows.contains(&"2 of 5 clusters read (3 could not be read): no proxy is out of date.".to_string()),
            "{out}"
        );

        let (code, out, _) = fleet(
            &old,
            &kubeconfig,
            &["--context", "gone", "--context", "new", "-o", "json"],
        );
        assert_eq!(code, 5);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["clusters"][0]["error"]["reason"], "Unreachable");
        assert!(doc["clusters"][0].get("revisions").is_none());
        assert_eq!(names(&doc["clusters"][1]), ["1-28"]);

        // Nothing read at all is an error, not a partial view.
        let (code, _, _) = fleet(&old, &kubeconfig, &["--context", "gone", "--context", "stranger"]);
        assert_eq!(code, 1);
        drop(silent);
    }

    #[test]
    fn check_exits_3_when_any_cluster_has_out_of_date_proxies() {
        let (old, new) = Sandbox::pair("canary", "switchover-target");
        let dir = scratch_dir("fleet-check");
        let kubeconfig = fleet_kubeconfig(
            &dir.join("kubeconfig"),
            &[FleetContext::Admin("old", &old), FleetContext::Admin("new", &new)],
        );
        let (code, _, _) = fleet(&old, &kubeconfig, &["--all-contexts", "--check"]);
        assert_eq!(code, 0);

        // The seed's canary step 2 on the old cluster: default now selects 1-28, its pods
        // still run 1-27 proxies.
        stdout(
            old.kubectl()
                .args(["label", "namespace", "default", "istio.io/rev=1-28", "--overwrite"]),
        );
        let (code, out, err) = fleet(&old, &kubeconfig, &["--all-contexts", "--check"]);
        assert_eq!(code, 3, "{out}\n{err}");
        assert!(
            rows(&out).contains(&"old 1-27 (default) default 1.27.4 1/1 1.27.4: 7 7".to_string()),
            "{out}"
        );
        assert!(
            rows(&out).contains(
                &"2 of 2 clusters read: 7 proxies out of date; see `kubectl mesh revisions --context CLUSTER`."
                    .to_string()
            ),
            "{out}"
        );
        let (code, out, _) = fleet(&old, &kubeconfig, &["--all-contexts", "-o", "json"]);
        assert_eq!(
            code, 0,
            "without --check, out-of-date proxies are reported, not an exit code"
        );
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["outOfDate"], 7);
    }
}
