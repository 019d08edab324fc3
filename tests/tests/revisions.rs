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
