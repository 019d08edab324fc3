//! Data-plane pods that are not injected application sidecars, and pods that opted out:
//! given these pods, the model says what each is and what a restart would give it.

#[allow(unreachable_pub)] // helpers shared by test files; each file uses some
mod common;

use common::{AMBIENT, CANARY, OPT_OUTS, Objects, load};
use shared::model::mesh::expected_revision;
use shared::model::{
    Ambient, Expectation, Injection, NoSidecar, OutOfDateReason, PodRevision, Proxy, ProxyKind, ProxyState, Workload,
    pod_revision,
};

fn state<'a>(mesh: &'a shared::model::Mesh, pod: &str) -> &'a ProxyState {
    mesh.proxies
        .iter()
        .find(|p| p.proxy.pod == pod)
        .unwrap_or_else(|| panic!("{pod} is not a proxy"))
}

fn proxy_of(objects: &Objects, namespace: &str, pod: &str) -> Proxy {
    Proxy::from_pod(objects.pod(namespace, pod), &objects.replicaset_owners())
        .unwrap_or_else(|| panic!("{namespace}/{pod} has no proxy"))
}

// ---------------------------------------------------------------- opt-outs (injectRequired)

#[test]
fn pods_that_opted_out_get_no_sidecar_from_a_restart_even_in_labelled_namespaces() {
    let mesh = load(OPT_OUTS).mesh();
    for pod in [
        // istioctl's gateway: sidecar.istio.io/inject=false, its own proxy.
        "edge-ingressgateway-6b8d9c7f5-t4r2w",
        // kube-inject output pinned with the annotation, then with the label.
        "pdf-renderer-7f9c8b6d5-k2j4h",
        "metrics-agent-5c6d7e8f9-p9o8i",
        // kube-system is never injected, whatever its labels.
        "node-exporter-proxy-4b3c2d1e0-w3q2a",
    ] {
        let p = state(&mesh, pod);
        assert_eq!(p.expected_revision, None, "{pod}");
        assert!(p.out_of_date.is_empty(), "{pod}: {:?}", p.out_of_date);
    }
    // The label wins over the annotation: sidecar.istio.io/inject=true is injected.
    for pod in ["invoicer-8d9e7f6c5-u7y6t", "mailer-6e5d4c3b2-r5e4w"] {
        let p = state(&mesh, pod);
        assert_eq!(p.expected_revision.as_deref(), Some("1-28"), "{pod}");
        assert_eq!(
            p.out_of_date,
            [OutOfDateReason::Revision {
                injected: Some("1-27".into()),
                expected: "1-28".into()
            }]
        );
    }
    let restart: Vec<_> = mesh
        .out_of_date_workloads()
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.workload))
        .collect();
    assert_eq!(restart, ["reports/deployment/invoicer", "reports/deployment/mailer"]);
}

#[test]
fn the_verdict_says_why_a_restart_gives_no_sidecar() {
    let objects = load(OPT_OUTS);
    let mesh = objects.mesh();
    let expected = |pod: &str| state(&mesh, pod).expected.clone();
    let opted_out = |by: &str| Expectation::NoSidecar {
        reason: NoSidecar::OptedOut { by: by.into() },
    };
    assert_eq!(expected("pdf-renderer-7f9c8b6d5-k2j4h"), opted_out("annotation"));
    assert_eq!(expected("metrics-agent-5c6d7e8f9-p9o8i"), opted_out("label"));
    assert_eq!(
        expected("node-exporter-proxy-4b3c2d1e0-w3q2a"),
        Expectation::NoSidecar {
            reason: NoSidecar::IgnoredNamespace {
                namespace: "kube-system".into()
            }
        }
    );
    assert_eq!(expected("edge-ingressgateway-6b8d9c7f5-t4r2w"), Expectation::Installed);
    assert_eq!(
        expected("mailer-6e5d4c3b2-r5e4w"),
        Expectation::Injected {
            revision: "1-28".into(),
            tag: None,
            webhook: "istio-sidecar-injector-1-28/rev.namespace.sidecar-injector.istio.io".into()
        }
    );
    assert_eq!(
        expected("pdf-renderer-7f9c8b6d5-k2j4h").to_string(),
        "sidecar.istio.io/inject=false (annotation): a restart gives no sidecar"
    );
    assert!(!expected("pdf-renderer-7f9c8b6d5-k2j4h").restart_helps());
    assert!(expected("mailer-6e5d4c3b2-r5e4w").restart_helps());

    // hostNetwork pods are never injected either.
    let mut pod = objects.pod("reports", "mailer-6e5d4c3b2-r5e4w").clone();
    pod.spec.as_mut().unwrap().host_network = Some(true);
    let p = Proxy::from_pod(&pod, &objects.replicaset_owners()).unwrap();
    let ns = mesh.namespaces.get("reports");
    assert_eq!(expected_revision(&p, ns, &mesh.control_plane), None);
    assert_eq!(
        shared::model::expectation::expectation(&p, ns, &mesh.control_plane),
        Expectation::NoSidecar {
            reason: NoSidecar::HostNetwork
        }
    );
    // The plain pod is injected by 1-28's rev.namespace webhook.
    let plain = proxy_of(&objects, "reports", "mailer-6e5d4c3b2-r5e4w");
    assert_eq!(
        expected_revision(&plain, ns, &mesh.control_plane).as_deref(),
        Some("1-28")
    );
}

// ---------------------------------------------------------------- ztunnel and istio-cni

#[test]
fn ztunnel_and_istio_cni_are_node_agents_never_sidecars_and_never_restarted() {
    let objects = load(AMBIENT);
    let mesh = objects.mesh();
    for pod in ["ztunnel-8kq2x", "ztunnel-c7m4p"] {
        let z = state(&mesh, pod);
        assert_eq!(z.proxy.kind, ProxyKind::Ztunnel, "{pod}");
        assert!(!z.proxy.gateway);
        assert_eq!(z.proxy.image, "docker.io/istio/ztunnel:1.28.2");
        assert_eq!(z.proxy.version.as_deref(), Some("1.28.2"));
        assert_eq!(z.proxy.revision.as_deref(), Some("1-28"));
        assert_eq!(
            z.proxy.workload,
            Workload {
                kind: "DaemonSet".into(),
                name: "ztunnel".into()
            }
        );
        // Older than istiod-1-28 (1.28.3), but ztunnel is upgraded by its own chart.
        assert!(z.out_of_date.is_empty(), "{:?}", z.out_of_date);
        assert_eq!(z.expected, Expectation::Installed);
    }
    let cni = state(&mesh, "istio-cni-node-5xw9r");
    assert_eq!(cni.proxy.kind, ProxyKind::Cni);
    assert_eq!(cni.proxy.version.as_deref(), Some("1.28.3"));
    assert_eq!(cni.proxy.workload.to_string(), "daemonset/istio-cni-node");
    assert!(!cni.is_out_of_date());
    // An ambient application pod has no proxy of its own.
    assert!(mesh.proxies.iter().all(|p| !p.proxy.pod.starts_with("productpage")));

    assert!(
        mesh.out_of_date_workloads()
            .iter()
            .all(|w| !["ztunnel", "istio-cni-node"].contains(&w.workload.name.as_str()))
    );
    // The revision's proxies are its sidecars, gateways and waypoints; node agents apart.
    assert_eq!(
        mesh.versions_of("1-28").into_iter().collect::<Vec<_>>(),
        [("1.28.3".to_string(), 3)]
    );
    let ztunnels = mesh.components(ProxyKind::Ztunnel);
    assert_eq!(ztunnels.len(), 1);
    assert_eq!(ztunnels[0].pods, 2);
    assert_eq!(
        ztunnels[0].versions.iter().collect::<Vec<_>>(),
        [(&"1.28.2".to_string(), &2)]
    );
    assert_eq!(ztunnels[0].revisions.iter().collect::<Vec<_>>(), ["1-28"]);
    assert_eq!(mesh.components(ProxyKind::Cni)[0].workload.name, "istio-cni-node");
}

// ---------------------------------------------------------------- Gateway API gateways and waypoints

#[test]
fn gateway_api_gateways_and_waypoints_follow_their_gateway_not_the_namespace() {
    let objects = load(AMBIENT);
    let mesh = objects.mesh();
    // storefront is labelled istio.io/rev=1-27; its Gateway says prod (1-28), and 1-28 rendered it.
    let gw = state(&mesh, "storefront-gateway-istio-7b8c9d6f5-h6j7k");
    assert_eq!(gw.proxy.kind, ProxyKind::Gateway);
    assert!(gw.proxy.gateway && !gw.proxy.injected);
    assert_eq!(gw.proxy.gateway_name.as_deref(), Some("storefront-gateway"));
    assert_eq!(gw.proxy.revision.as_deref(), Some("1-28"));
    assert_eq!(gw.expected_revision.as_deref(), Some("1-28"));
    assert_eq!(
        gw.expected,
        Expectation::Rendered {
            revision: "1-28".into()
        }
    );
    assert!(gw.out_of_date.is_empty(), "{:?}", gw.out_of_date);

    let wp = state(&mesh, "waypoint-6d9f8c7b5-z2x4c");
    assert_eq!(wp.proxy.kind, ProxyKind::Waypoint);
    assert!(wp.proxy.gateway && wp.proxy.rendered_by_istiod());
    assert_eq!(wp.expected_revision.as_deref(), Some("1-28"));
    assert!(!wp.is_out_of_date());

    // An unlabelled Gateway in an unlabelled namespace belongs to the `default` tag's revision.
    let public = state(&mesh, "public-istio-5f6a7b8c9-n3m2l");
    assert_eq!(public.expected_revision.as_deref(), Some("1-27"));
    assert!(!public.is_out_of_date());

    // The one rule for a pod's revision reads the rendered istio.io/rev annotation.
    assert_eq!(
        objects
            .pod("storefront", "storefront-gateway-istio-7b8c9d6f5-h6j7k")
            .istio_revision()
            .as_deref(),
        Some("1-28")
    );
}

#[test]
fn a_gateway_whose_revision_moved_waits_for_istiod_not_for_a_restart() {
    let mut objects = load(AMBIENT);
    // `istioctl tag set default --revision 1-28 --overwrite`.
    for w in &mut objects.webhooks {
        if w.metadata.name.as_deref() == Some("istio-revision-tag-default") {
            let labels = w.metadata.labels.as_mut().unwrap();
            labels.insert("istio.io/rev".into(), "1-28".into());
        }
    }
    let mesh = objects.mesh();
    let public = state(&mesh, "public-istio-5f6a7b8c9-n3m2l");
    assert_eq!(public.expected_revision.as_deref(), Some("1-28"));
    assert_eq!(
        public.out_of_date,
        [OutOfDateReason::Revision {
            injected: Some("1-27".into()),
            expected: "1-28".into()
        }]
    );
    // istiod-1-28 re-renders its Deployment; restarting it would bring back 1-27's pods.
    assert!(!public.restart_fixes());
    assert!(
        mesh.out_of_date_workloads()
            .iter()
            .all(|w| w.workload.name != "public-istio")
    );
}

// ---------------------------------------------------------------- ambient namespaces

#[test]
fn ambient_namespaces_are_served_by_the_ztunnel_revision_and_waypoints_by_theirs() {
    let mesh = load(AMBIENT).mesh();
    let bookinfo = &mesh.namespaces["bookinfo"];
    assert_eq!(bookinfo.dataplane_mode.as_deref(), Some("ambient"));
    assert_eq!(
        bookinfo.ambient,
        Some(Ambient {
            revision: Some("1-28".into())
        })
    );
    assert_eq!(bookinfo.injection, Injection::NotLabeled);
    assert_eq!(
        mesh.ambient_namespaces()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["bookinfo", "mixed"]
    );
    assert_eq!(mesh.namespaces["shop"].ambient, None);

    let waypoints = mesh.components(ProxyKind::Waypoint);
    assert_eq!(waypoints.len(), 1);
    let w = &waypoints[0];
    assert_eq!(
        (w.namespace.as_str(), w.workload.to_string()),
        ("bookinfo", "deployment/waypoint".into())
    );
    assert_eq!(w.gateway_name.as_deref(), Some("waypoint"));
    assert_eq!(w.revisions.iter().collect::<Vec<_>>(), ["1-28"]);
    assert_eq!(w.expected_revision.as_deref(), Some("1-28"));

    // istio.io/dataplane-mode beside a sidecar label is IST0123 too.
    let warnings = mesh.warnings();
    let both: Vec<_> = warnings.iter().filter(|w| w.code == "BothLabels").collect();
    assert_eq!(both.len(), 1, "{warnings:#?}");
    assert!(
        both[0]
            .message
            .starts_with("namespace mixed has istio.io/rev=1-27 and istio.io/dataplane-mode=ambient"),
        "{}",
        both[0].message
    );
}

// ---------------------------------------------------------------- the revision of a pod

#[test]
fn one_rule_gives_the_revision_of_every_kind_of_pod() {
    let ambient = load(AMBIENT);
    let canary = load(CANARY);
    // 1. The injector's status annotation.
    assert_eq!(
        pod_revision(canary.pod("default", "api-gateway-64d5b6b4cb-sh4ws")).as_deref(),
        Some("1-27")
    );
    // 2. The istio.io/rev annotation istiod renders into Gateway API gateways and waypoints.
    for (ns, pod) in [
        ("bookinfo", "waypoint-6d9f8c7b5-z2x4c"),
        ("gateways", "public-istio-5f6a7b8c9-n3m2l"),
    ] {
        let p = ambient.pod(ns, pod);
        assert!(
            p.metadata
                .annotations
                .as_ref()
                .unwrap()
                .get("sidecar.istio.io/status")
                .is_none()
        );
        assert_eq!(p.istio_revision(), pod_revision(p));
    }
    assert_eq!(
        ambient
            .pod("gateways", "public-istio-5f6a7b8c9-n3m2l")
            .istio_revision()
            .as_deref(),
        Some("1-27")
    );
    // 3. The istiod the proxy talks to: ztunnel's CA_ADDRESS once its annotation is gone.
    let mut z = ambient.pod("istio-system", "ztunnel-8kq2x").clone();
    z.metadata.annotations.as_mut().unwrap().remove("istio.io/rev");
    assert_eq!(z.istio_revision().as_deref(), Some("1-28"));
    // 4. A control-plane pod's own label.
    assert_eq!(
        canary
            .pod("istio-system", "istiod-1-27-67b7b86877-qg4mr")
            .istio_revision()
            .as_deref(),
        Some("1-27")
    );
    // An application's istio.io/rev label asks for injection; it says nothing it runs.
    let mut asks = canary.pod("default", "redis-7d8f9c6b5-q2w4e").clone();
    let labels = asks.metadata.labels.get_or_insert_with(Default::default);
    labels.insert("istio.io/rev".into(), "1-27".into());
    assert_eq!(asks.istio_revision(), None);
    assert_eq!(
        ambient.pod("istio-system", "istio-cni-node-5xw9r").istio_revision(),
        None
    );
}
