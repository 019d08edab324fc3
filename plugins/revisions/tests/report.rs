//! `kubectl mesh revisions` on the canary fixture: the document scripts read and the
//! tables people read, from the same cluster state.

#[allow(unreachable_pub)]
#[path = "../../../shared/tests/common/mod.rs"]
mod common;

use kubectl_mesh_revisions::{Report, View};
use serde_json::{Value, json};
use shared::model::Mesh;
use shared::output::Paint;

const PLAIN: Paint = Paint { enabled: false };

fn canary() -> Report {
    Report::new(common::load(common::CANARY).mesh(), false)
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
    // As `istioctl tag list`: the namespaces labelled istio.io/rev=<tag>. legacy and web get
    // the default tag's sidecar through istio-injection=enabled: -o wide lists them (INJECTS).
    has_row(&out, "default 1-27 fleet");
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
    has_row(&wide, "TAG REVISION NAMESPACES WEBHOOK SERVICE INJECTS");
    has_row(
        &wide,
        "default 1-27 fleet istio-revision-tag-default - fleet,legacy,web",
    );
    has_row(&wide, "prod 1-28 payments istio-revision-tag-prod - payments");
    assert!(
        !wide.contains("COMPONENT"),
        "no ztunnel, istio-cni, waypoint or Gateway API gateway:\n{wide}"
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
    let narrowed = serde_json::to_value(Report::new(mesh, true)).unwrap();
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
    let report = Report::new(common::load(common::INPLACE).mesh(), false);
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

fn report_of(mesh: Mesh) -> (Report, Value) {
    let report = Report::new(mesh, false);
    let doc = serde_json::to_value(report.document()).unwrap();
    (report, doc)
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {list:#}"))
}

// ---------------------------------------------------------------- tags, Services included

#[test]
fn tags_are_listed_as_istioctl_tag_list_prints_them_service_only_tags_included() {
    let (report, doc) = report_of(common::load(common::TAG_SERVICES).mesh());
    // Sorted by revision, then tag (istioctl/pkg/tag/tag.go listTags).
    let out = report.render(View::Revisions, false, PLAIN);
    let tags: Vec<String> = rows(&out)
        .into_iter()
        .skip_while(|r| r != "TAG REVISION NAMESPACES")
        .take(4)
        .collect();
    assert_eq!(
        tags,
        [
            "TAG REVISION NAMESPACES",
            "default 1-27 fleet",
            "stable 1-27 analytics",
            "prod 1-28 payments"
        ],
        "{out}"
    );
    has_row(
        &out,
        "1-27 (default) default,stable 1.27.4 1/1 default,fleet,legacy +1 more 1.27.4: 10, override: 1 2",
    );
    let wide = report.render(View::Revisions, true, PLAIN);
    has_row(&wide, "stable 1-27 analytics - istiod-revision-tag-stable -");
    has_row(
        &wide,
        "prod 1-28 payments istio-revision-tag-prod istiod-revision-tag-prod payments",
    );

    assert_eq!(
        doc["tags"],
        json!([
            {"name": "default", "revision": "1-27", "webhook": "istio-revision-tag-default", "namespaces": ["fleet", "legacy", "web"]},
            {"name": "stable", "revision": "1-27", "webhook": "", "namespaces": [], "service": "istiod-revision-tag-stable"},
            {"name": "prod", "revision": "1-28", "webhook": "istio-revision-tag-prod", "namespaces": ["payments"], "service": "istiod-revision-tag-prod"}
        ])
    );
    assert_eq!(
        find(&doc["revisions"], "name", "1-27")["tags"],
        json!(["default", "stable"])
    );
    // No webhook serves the Service-only tag: analytics gets no sidecar.
    assert_eq!(
        find(&doc["namespaces"], "name", "analytics")["injection"]["kind"],
        "broken"
    );
}

// ---------------------------------------------------------------- ambient and Gateway API

#[test]
fn node_agents_waypoints_and_gateway_api_gateways_are_components_with_their_revision() {
    let (report, doc) = report_of(common::load(common::AMBIENT).mesh());
    // Sidecars, gateways and waypoints are proxies; ztunnel (2 pods) and istio-cni are not.
    assert_eq!(doc["totalProxies"], 4);
    let pods: Vec<_> = doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}/{}", p["kind"].as_str().unwrap(), p["pod"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pods,
        [
            "waypoint/waypoint-6d9f8c7b5-z2x4c",
            "gateway/public-istio-5f6a7b8c9-n3m2l",
            "sidecar/catalog-7d6c5b4a3-q1w2e",
            "gateway/storefront-gateway-istio-7b8c9d6f5-h6j7k"
        ]
    );
    let r28 = find(&doc["revisions"], "name", "1-28");
    assert_eq!(r28["proxies"], json!({"1.28.3": 3}));
    assert_eq!(r28["ambientNamespaces"], json!(["bookinfo", "mixed"]));
    assert_eq!(find(&doc["revisions"], "name", "1-27")["proxies"], json!({"1.27.4": 1}));

    let components: Vec<_> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["workload"]["name"].as_str().unwrap();
            format!(
                "{} {}/{name} {}",
                c["kind"].as_str().unwrap(),
                c["namespace"].as_str().unwrap(),
                c["revisions"]
            )
        })
        .collect();
    assert_eq!(
        components,
        [
            r#"ztunnel istio-system/ztunnel ["1-28"]"#,
            "cni istio-system/istio-cni-node []",
            r#"waypoint bookinfo/waypoint ["1-28"]"#,
            r#"gateway gateways/public-istio ["1-27"]"#,
            r#"gateway storefront/storefront-gateway-istio ["1-28"]"#,
        ]
    );
    let ztunnel = find(&doc["components"], "kind", "ztunnel");
    assert_eq!(ztunnel["workload"], json!({"kind": "DaemonSet", "name": "ztunnel"}));
    assert_eq!(ztunnel["versions"], json!({"1.28.2": 2}));
    assert_eq!(
        (ztunnel["pods"].as_u64(), ztunnel["ready"].as_u64()),
        (Some(2), Some(0))
    );
    let gateway = find(&doc["components"], "gatewayName", "storefront-gateway");
    assert_eq!(gateway["expectedRevision"], "1-28");

    // The fixture's pods carry no Ready condition: none is counted ready.
    let out = report.render(View::Revisions, false, PLAIN);
    has_row(&out, "COMPONENT NAMESPACE NAME REVISION VERSION PODS READY");
    has_row(&out, "ztunnel istio-system ztunnel 1-28 1.28.2 2 0/2");
    has_row(&out, "istio-cni istio-system istio-cni-node - 1.28.3 1 0/1");
    has_row(&out, "waypoint bookinfo waypoint 1-28 1.28.3 1 0/1");
    has_row(&out, "gateway gateways public 1-27 1.27.4 1 0/1");
    has_row(&out, "gateway storefront storefront-gateway 1-28 1.28.3 1 0/1");
    has_row(
        &out,
        "1-28 prod 1.28.3 1/1 shop,bookinfo (ambient),mixed (ambient) 1.28.3: 3 0",
    );
    assert!(out.contains("All 4 proxies are up to date."), "{out}");
    let wide = report.render(View::Revisions, true, PLAIN);
    has_row(
        &wide,
        "gateway storefront storefront-gateway 1-28 1.28.3 1 0/1 deployment/storefront-gateway-istio",
    );
    let proxies = report.render(View::Proxies, true, PLAIN);
    assert!(
        !proxies.contains("ztunnel") && !proxies.contains("istio-cni"),
        "{proxies}"
    );
    has_row(
        &proxies,
        "bookinfo deployment/waypoint waypoint-6d9f8c7b5-z2x4c 1-28 1.28.3 up to date docker.io/istio/proxyv2:1.28.3 waypoint 1-28",
    );
}

#[test]
fn a_gateway_api_gateway_whose_tag_moved_shows_the_istiod_that_renders_it_now() {
    let mut objects = common::load(common::AMBIENT);
    // `istioctl tag set default --revision 1-28 --overwrite`.
    for w in &mut objects.webhooks {
        if w.metadata.name.as_deref() == Some("istio-revision-tag-default") {
            let labels = w.metadata.labels.as_mut().unwrap();
            labels.insert("istio.io/rev".into(), "1-28".into());
        }
    }
    let (report, _) = report_of(objects.mesh());
    let out = report.render(View::Revisions, false, PLAIN);
    has_row(&out, "gateway gateways public 1-27 -> 1-28 1.27.4 1 0/1");
}

#[test]
fn ambient_namespaces_show_the_ztunnel_and_the_waypoint_that_serve_them() {
    let (report, doc) = report_of(common::load(common::AMBIENT).mesh());
    let bookinfo = find(&doc["namespaces"], "name", "bookinfo");
    assert_eq!(bookinfo["dataplaneMode"], "ambient");
    assert_eq!(bookinfo["ambient"], json!({"revision": "1-28"}));
    assert_eq!(
        bookinfo["waypoint"],
        json!({"namespace": "bookinfo", "name": "waypoint", "revision": "1-28"})
    );
    assert_eq!(bookinfo["injection"], json!({"kind": "notLabeled"}));
    assert_eq!(bookinfo["proxies"], json!({"1-28": 1}));
    let shop = find(&doc["namespaces"], "name", "shop");
    assert!(
        shop.get("ambient").is_none() && shop.get("waypoint").is_none(),
        "{shop:#}"
    );
    // istio-system holds only node agents: not a namespace of the mesh's proxies.
    assert!(
        doc["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["name"] != "istio-system")
    );

    let out = report.render(View::Namespaces, false, PLAIN);
    has_row(
        &out,
        "NAMESPACE ISTIO.IO/REV ISTIO-INJECTION INJECTOR PROXIES OUT OF DATE ISTIO.IO/DATAPLANE-MODE ZTUNNEL WAYPOINT",
    );
    has_row(&out, "bookinfo - - - 1-28: 1 0 ambient 1-28 waypoint (1-28)");
    has_row(&out, "mixed 1-27 - 1-27 - 0 ambient 1-28 -");
    has_row(&out, "shop 1-28 - 1-28 1-28: 1 0 - - -");
    // IST0123: a sidecar label beside istio.io/dataplane-mode.
    assert!(
        out.contains("  [BothLabels] namespace mixed has istio.io/rev=1-27 and istio.io/dataplane-mode=ambient"),
        "{out}"
    );
}

// ---------------------------------------------------------------- restarts that would be rejected

/// The canary cluster with istiod-1-28 at 0 of 1 ready replicas.
fn canary_with_istiod_1_28_down() -> common::Objects {
    let mut objects = common::load(common::CANARY);
    let istiod = objects
        .deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some("istiod-1-28"))
        .unwrap();
    istiod.status.as_mut().unwrap().ready_replicas = Some(0);
    objects
}

#[test]
fn a_restart_into_a_revision_whose_istiod_is_not_ready_is_called_rejected_not_a_move() {
    let (report, doc) = report_of(canary_with_istiod_1_28_down().mesh());
    let out = report.render(View::Proxies, true, PLAIN);
    has_row(
        &out,
        "payments deployment/ledger ledger-5c9f7d8b6-m4k7z 1-27 1.27.4 out of date: injected by 1-27, a restart would be rejected: revision 1-28's istiod is not ready (0/1) docker.io/istio/proxyv2:1.27.4 classic 1-28",
    );
    assert!(!out.contains("a restart would get"), "{out}");
    assert!(
        out.contains(
            "2 of 13 proxies are out of date (1 completed/failed pods not counted): a restart would be rejected: revision 1-28's istiod is not ready (0/1). Fix that first, then `kubectl mesh roll`."
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "  [RestartRejected] revision 1-28's istiod is not ready (0/1): a restart of the 2 out-of-date pods it would inject (namespace payments) would be rejected, as its injector webhook has failurePolicy Fail; fix that before `kubectl mesh roll`"
        ),
        "{out}"
    );
    let ledger = find(&doc["proxies"], "pod", "ledger-5c9f7d8b6-m4k7z");
    assert_eq!(ledger["restartRejected"], "revision 1-28's istiod is not ready (0/1)");
    // The reason itself is unchanged for scripts.
    assert_eq!(
        ledger["outOfDate"],
        json!([{"kind": "revision", "injected": "1-27", "expected": "1-28"}])
    );
    assert!(
        find(&doc["proxies"], "pod", "webapp-d688b487-kh22b")
            .get("restartRejected")
            .is_none()
    );

    // Without its injector ConfigMap, istiod-1-28 injects nothing either.
    let mut objects = common::load(common::CANARY);
    objects
        .configmaps
        .retain(|c| c.metadata.name.as_deref() != Some("istio-sidecar-injector-1-28"));
    let (report, _) = report_of(objects.mesh());
    let out = report.render(View::Proxies, false, PLAIN);
    assert!(
        out.contains(
            "out of date: injected by 1-27, a restart would be rejected: revision 1-28 has no injector ConfigMap (istio-sidecar-injector-1-28)"
        ),
        "{out}"
    );
}

#[test]
fn a_partly_ready_istiod_answers_so_the_restart_is_not_called_rejected() {
    let mut objects = common::load(common::CANARY);
    let istiod = objects
        .deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some("istiod-1-28"))
        .unwrap();
    istiod.spec.as_mut().unwrap().replicas = Some(2);
    let (report, doc) = report_of(objects.mesh());
    let out = report.render(View::Proxies, false, PLAIN);
    assert!(out.contains("injected by 1-27, a restart would get 1-28"), "{out}");
    assert!(
        out.contains("restart them with `kubectl mesh roll --one-at-a-time`."),
        "{out}"
    );
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["code"] != "RestartRejected")
    );

    // No istiod at all: a remote cluster whose webhooks call an istiod elsewhere; nothing
    // says it would not answer.
    let mut remote = common::load(common::CANARY);
    remote
        .deployments
        .retain(|d| !d.metadata.name.as_deref().unwrap_or("").starts_with("istiod"));
    let (_, doc) = report_of(remote.mesh());
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["code"] != "RestartRejected")
    );
    assert!(
        doc["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("restartRejected").is_none())
    );
}

// ---------------------------------------------------------------- injector conflicts

#[test]
fn an_injector_conflict_is_a_warning() {
    let mut objects = common::load(common::DEFAULT_TAG_MOVED);
    // The unrevisioned webhooks re-enabled beside the moved default tag (see the model's test).
    let active = common::load(common::INPLACE)
        .webhooks
        .into_iter()
        .find(|w| w.metadata.name.as_deref() == Some("istio-sidecar-injector"))
        .unwrap();
    for w in &mut objects.webhooks {
        if w.metadata.name.as_deref() == Some("istio-sidecar-injector") {
            *w = active.clone();
        }
    }
    let (report, doc) = report_of(objects.mesh());
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "InjectorConflict"),
        "{doc:#}"
    );
    let out = report.render(View::Revisions, false, PLAIN);
    assert!(
        out.contains(
            "  [InjectorConflict] namespace shop: the webhooks of revisions 1-28, default all inject new pods"
        ),
        "{out}"
    );
}

#[test]
fn name_output_and_no_headers_are_for_scripts() {
    let report = canary();
    let names = report.names(View::Revisions);
    assert!(names.lines().all(|l| l.starts_with("revision/")), "{names}");
    assert!(names.lines().any(|l| l == "revision/1-27"), "{names}");
    let namespaces = report.names(View::Namespaces);
    assert!(namespaces.lines().any(|l| l == "namespace/default"), "{namespaces}");
    let pods = report.names(View::Proxies);
    assert!(
        !pods.is_empty() && pods.lines().all(|l| l.starts_with("pod/")),
        "{pods}"
    );

    let rows = report.rows(View::Revisions, false, PLAIN);
    assert!(!rows.contains("REVISION") && !rows.contains("TAG"), "{rows}");
    assert!(!rows.contains("Warnings") && !rows.contains("proxies are"), "{rows}");
    assert_eq!(rows.lines().count(), report.revisions.len(), "{rows}");
}
