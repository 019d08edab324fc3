//! `kubectl mesh revisions` on the canary fixture: the document scripts read and the
//! tables people read, from the same cluster state.

#[allow(unreachable_pub)]
#[path = "../../../shared/tests/common/mod.rs"]
mod common;

use kubectl_mesh_revisions::{Report, View};
use serde_json::{Value, json};
use shared::output::Paint;

const PLAIN: Paint = Paint { enabled: false };

fn canary() -> Report {
    Report::new(&common::load(common::CANARY).mesh(), false)
}

/// A table line with its column padding collapsed, so a test does not depend on widths.
fn rows(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn has_row(text: &str, row: &str) {
    assert!(rows(text).iter().any(|r| r == row), "no row {row:?} in:\n{text}");
}

#[test]
#[allow(clippy::too_many_lines)]
fn json_document_of_the_canary_cluster() {
    let doc = serde_json::to_value(canary().document()).unwrap();
    assert_eq!(doc["schemaVersion"], 1);
    assert_eq!(doc["kind"], "MeshRevisions");
    assert_eq!(doc["defaultRevision"], "1-27");
    assert_eq!(doc["totalProxies"], 13);
    assert_eq!(doc["outOfDate"], 2);
    assert_eq!(doc["terminalPods"], 1);

    let revisions = doc["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "the completed Job's revision 1-26 gets no row");
    let r27 = &revisions[0];
    assert_eq!(r27["name"], "1-27");
    assert_eq!(r27["tags"], json!(["default"]));
    assert_eq!(r27["default"], true);
    assert_eq!(r27["version"], "1.27.4");
    assert_eq!(r27["ready"], true);
    assert_eq!(r27["installed"], true);
    assert_eq!(r27["istiod"]["name"], "istiod-1-27");
    assert_eq!(r27["istiod"]["readyReplicas"], 1);
    assert_eq!(r27["injector"]["hub"], "docker.io/istio");
    assert_eq!(r27["injector"]["tag"], "1.27.4");
    assert_eq!(r27["webhook"], "istio-sidecar-injector-1-27");
    assert_eq!(r27["namespaces"], json!(["default", "fleet", "legacy", "web"]));
    assert_eq!(r27["proxies"], json!({"1.27.4": 10, "override": 1}));
    assert_eq!(r27["outOfDate"], 2);
    let r28 = &revisions[1];
    assert_eq!(r28["name"], "1-28");
    assert_eq!(r28["tags"], json!(["prod"]));
    assert_eq!(r28["default"], false);
    assert_eq!(r28["version"], "1.28.3");
    assert_eq!(r28["namespaces"], json!(["payments"]));
    assert_eq!(r28["proxies"], json!({"1.28.3": 2}));
    assert_eq!(r28["outOfDate"], 0);

    assert_eq!(
        doc["tags"],
        json!([
            {"name": "default", "revision": "1-27", "webhook": "istio-revision-tag-default", "namespaces": ["fleet", "legacy", "web"]},
            {"name": "prod", "revision": "1-28", "webhook": "istio-revision-tag-prod", "namespaces": ["payments"]}
        ])
    );

    let namespaces: Vec<_> = doc["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    // kube-system has neither labels nor proxies.
    assert_eq!(
        namespaces,
        [
            "batch",
            "default",
            "fleet",
            "istio-system",
            "legacy",
            "orphan",
            "payments",
            "tools",
            "web"
        ]
    );
    let ns = |name: &str| -> Value {
        doc["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        ns("payments"),
        json!({
            "name": "payments", "revLabel": "prod", "injectionLabel": null,
            "injection": {"kind": "revision", "revision": "1-28", "tag": "prod", "by": "istio.io/rev"},
            "proxies": {"1-27": 2}, "outOfDate": 2
        })
    );
    assert_eq!(ns("batch")["injection"], json!({"kind": "disabled"}));
    assert_eq!(ns("tools")["injection"], json!({"kind": "notLabeled"}));
    assert_eq!(ns("orphan")["injection"]["kind"], "broken");
    assert_eq!(ns("legacy")["injection"]["by"], "istio-injection");

    let ledger = doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == "ledger-5c9f7d8b6-b2x8q")
        .unwrap();
    assert_eq!(ledger["namespace"], "payments");
    assert_eq!(ledger["workload"], json!({"kind": "Deployment", "name": "ledger"}));
    assert_eq!(ledger["revision"], "1-27");
    assert_eq!(ledger["version"], "1.27.4");
    assert_eq!(ledger["expectedRevision"], "1-28");
    assert_eq!(
        ledger["outOfDate"],
        json!([{"kind": "revision", "injected": "1-27", "expected": "1-28"}])
    );

    let codes: Vec<_> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "BothLabels",
            "DanglingLabel",
            "GatewayVersion",
            "GatewayVersion",
            "ProxyImageOverride"
        ]
    );
}

#[test]
fn yaml_is_the_same_document_as_json() {
    let report = canary();
    let yaml = serde_saphyr::to_string(&report.document()).unwrap();
    let from_yaml: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(from_yaml, serde_json::to_value(report.document()).unwrap());
}

#[test]
fn revisions_table() {
    let out = canary().render(View::Revisions, false, PLAIN);
    has_row(&out, "REVISION TAGS VERSION ISTIOD NAMESPACES PROXIES OUT OF DATE");
    has_row(
        &out,
        "1-27 (default) default 1.27.4 1/1 default,fleet,legacy +1 more 1.27.4: 10, override: 1 2",
    );
    has_row(&out, "1-28 prod 1.28.3 1/1 payments 1.28.3: 2 0");
    has_row(&out, "TAG REVISION NAMESPACES");
    has_row(&out, "default 1-27 fleet,legacy,web");
    has_row(&out, "prod 1-28 payments");
    assert!(out.contains("\nWarnings:\n"), "{out}");
    assert!(
        out.contains("  [BothLabels] namespace legacy has both istio-injection=enabled"),
        "{out}"
    );
    assert!(
        out.contains("  [DanglingLabel] namespace orphan: istio.io/rev=1-26"),
        "{out}"
    );
    assert!(
        out.contains(
            "2 of 13 proxies are out of date (1 completed/failed pods not counted): restart them with `kubectl mesh roll --one-at-a-time`."
        ),
        "{out}"
    );
    assert!(!out.contains('\u{1b}'), "no colour when painting is off");

    let wide = canary().render(View::Revisions, true, PLAIN);
    has_row(
        &wide,
        "1-27 (default) default 1.27.4 1/1 default,fleet,legacy,web 1.27.4: 10, override: 1 2 istio-system/istiod-1-27 docker.io/istio istio-sidecar-injector-1-27",
    );
    has_row(
        &wide,
        "1-28 prod 1.28.3 1/1 payments 1.28.3: 2 0 istio-system/istiod-1-28 docker.io/istio istio-sidecar-injector-1-28",
    );
}

#[test]
fn namespaces_table() {
    let out = canary().render(View::Namespaces, true, PLAIN);
    has_row(
        &out,
        "NAMESPACE ISTIO.IO/REV ISTIO-INJECTION INJECTOR PROXIES OUT OF DATE DECIDED BY",
    );
    has_row(&out, "default 1-27 - 1-27 1-27: 4 0 istio.io/rev");
    has_row(&out, "fleet default - 1-27 (tag default) 1-27: 1 0 istio.io/rev");
    has_row(&out, "legacy 1-28 enabled 1-27 (tag default) 1-27: 1 0 istio-injection");
    has_row(&out, "payments prod - 1-28 (tag prod) 1-27: 2 2 istio.io/rev");
    has_row(&out, "batch 1-27 disabled disabled - 0 istio-injection");
    has_row(
        &out,
        "orphan 1-26 - none 1-27: 1 0 istio.io/rev=1-26 names no revision and no tag",
    );
    has_row(&out, "tools - - - 1-27: 1 0 pod labels");
}

#[test]
fn proxies_table() {
    let out = canary().render(View::Proxies, true, PLAIN);
    has_row(
        &out,
        "payments deployment/ledger ledger-5c9f7d8b6-m4k7z 1-27 1.27.4 out of date: injected by 1-27, a restart would get 1-28 docker.io/istio/proxyv2:1.27.4 classic 1-28",
    );
    has_row(
        &out,
        "default deployment/webapp webapp-d688b487-kh22b 1-27 1.27.4 up to date docker.io/istio/proxyv2:1.27.4 native 1-27",
    );
    has_row(
        &out,
        "istio-system deployment/istio-ingressgateway istio-ingressgateway-579c6774b-nlgcs 1-28 1.28.3 up to date docker.io/istio/proxyv2:1.28.3 gateway 1-28",
    );
    has_row(
        &out,
        "default deployment/vehicle-telemetry vehicle-telemetry-64bb8b49-zwvv7 1-27 override up to date registry.example.com/mesh/proxyv2:1.26.1-fips classic 1-27",
    );
    has_row(
        &out,
        "web daemonset/log-shipper log-shipper-x7k2p 1-27 1.27.4 up to date docker.io/istio/proxyv2:1.27.4-distroless classic 1-27",
    );
    has_row(
        &out,
        "fleet statefulset/position-store position-store-0 1-27 1.27.4 up to date docker.io/istio/proxyv2:1.27.4 classic 1-27",
    );
    assert!(!out.contains("db-migrate"), "completed pods are counted apart:\n{out}");
}

#[test]
fn naming_namespaces_lists_each_even_without_labels_or_proxies() {
    let mesh = common::load(common::CANARY).mesh();
    let narrowed = serde_json::to_value(Report::new(&mesh, true)).unwrap();
    assert!(
        narrowed["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "kube-system")
    );
}

#[test]
fn in_place_cluster_counts_proxies_out_of_date_by_version() {
    let report = Report::new(&common::load(common::INPLACE).mesh(), false);
    let doc = serde_json::to_value(&report).unwrap();
    assert_eq!(doc["defaultRevision"], "default");
    assert_eq!(doc["revisions"][0]["proxies"], json!({"1.27.4": 2, "1.28.3": 2}));
    assert_eq!(doc["outOfDate"], 2);
    let out = report.render(View::Revisions, false, PLAIN);
    has_row(
        &out,
        "default (default) default 1.28.3 1/1 default 1.27.4: 2, 1.28.3: 2 2",
    );
    assert!(out.contains("2 of 4 proxies are out of date: restart them"), "{out}");
}
