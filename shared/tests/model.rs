//! The Istio model read from realistic API objects (the annotations and webhooks pkg/kube/inject and the istio-discovery chart write): given a
//! cluster in this state, the model sees these revisions, bindings and proxies.

#[allow(unreachable_pub)] // helpers shared by test files; each file uses some
mod common;

use std::collections::BTreeSet;

use common::{CANARY, INPLACE, Objects, load};
use shared::model::mesh::{expected_revision, out_of_date_reasons};
use shared::model::{Injection, OutOfDateReason, Proxy, ReplicaSetOwners, Target, Workload};

fn workload(kind: &str, name: &str) -> Workload {
    Workload {
        kind: kind.into(),
        name: name.into(),
    }
}

fn proxy_of(objects: &Objects, namespace: &str, pod: &str) -> Proxy {
    Proxy::from_pod(objects.pod(namespace, pod), &objects.replicaset_owners())
        .unwrap_or_else(|| panic!("{namespace}/{pod} has no proxy"))
}

fn revision(name: &str, tag: Option<&str>, by: &str) -> Injection {
    Injection::Revision {
        revision: name.into(),
        tag: tag.map(String::from),
        by: by.into(),
    }
}

fn codes(objects: &Objects) -> Vec<(String, String)> {
    objects
        .mesh()
        .warnings()
        .into_iter()
        .map(|w| (w.code, w.message))
        .collect()
}

// ---------------------------------------------------------------- control plane (§2–§4)

#[test]
fn canary_control_plane_has_two_revisions_and_two_tags() {
    let cp = load(CANARY).control_plane();
    assert_eq!(cp.revisions.keys().collect::<Vec<_>>(), ["1-27", "1-28"]);

    let r27 = &cp.revisions["1-27"];
    let istiod = r27.istiod.as_ref().expect("istiod-1-27");
    assert_eq!(
        (istiod.namespace.as_str(), istiod.name.as_str()),
        ("istio-system", "istiod-1-27")
    );
    assert_eq!(istiod.image, "docker.io/istio/pilot:1.27.4");
    assert_eq!(istiod.version.as_deref(), Some("1.27.4"));
    assert!(r27.ready());
    let injector = r27.injector.as_ref().expect("istio-sidecar-injector-1-27");
    assert_eq!(injector.configmap, "istio-sidecar-injector-1-27");
    assert_eq!(injector.hub.as_deref(), Some("docker.io/istio"));
    assert_eq!(injector.tag.as_deref(), Some("1.27.4"));
    assert_eq!(r27.webhook.as_deref(), Some("istio-sidecar-injector-1-27"));
    assert_eq!(r27.tags, ["default"]);
    assert!(r27.default, "the default tag makes 1-27 the default revision");
    assert_eq!(r27.version(), Some("1.27.4"));

    let r28 = &cp.revisions["1-28"];
    assert_eq!(r28.version(), Some("1.28.3"));
    assert_eq!(r28.injector.as_ref().and_then(|i| i.tag.as_deref()), Some("1.28.3"));
    assert_eq!(r28.webhook.as_deref(), Some("istio-sidecar-injector-1-28"));
    assert_eq!(r28.tags, ["prod"]);
    assert!(!r28.default);
    assert!(r28.ready());

    assert_eq!(cp.default_revision.as_deref(), Some("1-27"));
    assert_eq!(cp.tags.keys().collect::<Vec<_>>(), ["default", "prod"]);
    assert_eq!(cp.tags["default"].revision, "1-27");
    assert_eq!(cp.tags["default"].webhook, "istio-revision-tag-default");
    assert_eq!(cp.tags["prod"].revision, "1-28");
    assert_eq!(cp.tags["prod"].webhook, "istio-revision-tag-prod");
}

#[test]
fn a_name_in_istio_io_rev_resolves_to_a_revision_or_a_tag() {
    let cp = load(CANARY).control_plane();
    assert_eq!(cp.resolve("1-28"), Target::Revision("1-28"));
    assert_eq!(
        cp.resolve("prod"),
        Target::Tag {
            tag: "prod",
            revision: "1-28"
        }
    );
    assert_eq!(
        cp.resolve("default"),
        Target::Tag {
            tag: "default",
            revision: "1-27"
        }
    );
    assert_eq!(cp.resolve("1-26"), Target::Unknown);
    assert_eq!(cp.revision_of("prod").map(|r| r.name.as_str()), Some("1-28"));
    assert!(cp.revision_of("1-26").is_none());
}

#[test]
fn unrevisioned_install_is_revision_default_and_serves_injection_enabled() {
    let cp = load(INPLACE).control_plane();
    assert_eq!(cp.revisions.keys().collect::<Vec<_>>(), ["default"]);
    let r = &cp.revisions["default"];
    assert_eq!(r.istiod.as_ref().map(|i| i.name.as_str()), Some("istiod"));
    assert_eq!(r.version(), Some("1.28.3"));
    assert_eq!(
        r.injector.as_ref().map(|i| i.configmap.as_str()),
        Some("istio-sidecar-injector")
    );
    assert_eq!(r.webhook.as_deref(), Some("istio-sidecar-injector"));
    // istioctl also writes the default tag, pointing at revision "default"; the
    // revision wins when a label names both.
    assert_eq!(r.tags, ["default"]);
    assert_eq!(cp.resolve("default"), Target::Revision("default"));
    assert!(r.default);
    assert_eq!(cp.default_revision.as_deref(), Some("default"));
}

#[test]
fn the_injector_configmap_tag_stands_in_for_a_missing_istiod() {
    let mut objects = load(CANARY);
    objects
        .deployments
        .retain(|d| d.metadata.name.as_deref() != Some("istiod-1-28"));
    let cp = objects.control_plane();
    let r28 = &cp.revisions["1-28"];
    assert!(r28.istiod.is_none());
    assert!(!r28.ready());
    assert_eq!(r28.version(), Some("1.28.3"), "from the injector's global.tag");
}

// ---------------------------------------------------------------- namespaces (§2)

#[test]
fn every_namespace_gets_the_injector_istio_would_call() {
    let objects = load(CANARY);
    let mesh = objects.mesh();
    let injection = |ns: &str| mesh.namespaces[ns].injection.clone();
    assert_eq!(injection("default"), revision("1-27", None, "istio.io/rev"));
    // istio.io/rev may name a tag: the namespace follows the tag's revision.
    assert_eq!(injection("fleet"), revision("1-27", Some("default"), "istio.io/rev"));
    assert_eq!(injection("payments"), revision("1-28", Some("prod"), "istio.io/rev"));
    // Both labels: only the default injector's webhook matches, istio.io/rev=1-28 is ignored.
    assert_eq!(
        injection("legacy"),
        revision("1-27", Some("default"), "istio-injection")
    );
    assert!(mesh.namespaces["legacy"].has_both_labels());
    assert_eq!(injection("web"), revision("1-27", Some("default"), "istio-injection"));
    // disabled turns injection off whatever istio.io/rev says.
    assert_eq!(injection("batch"), Injection::Disabled);
    assert_eq!(injection("tools"), Injection::NotLabeled);
    assert_eq!(injection("istio-system"), Injection::NotLabeled);
    match injection("orphan") {
        Injection::Broken { reason } => assert!(reason.contains("istio.io/rev=1-26"), "{reason}"),
        other => panic!("orphan: {other:?}"),
    }

    let using = |rev: &str| {
        mesh.namespaces_using(rev)
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(using("1-27"), ["default", "fleet", "legacy", "web"]);
    assert_eq!(using("1-28"), ["payments"]);
}

#[test]
fn injection_enabled_without_a_default_revision_is_broken() {
    let mut objects = load(CANARY);
    // `istioctl tag remove default` on a cluster of revisioned installs only.
    objects
        .webhooks
        .retain(|w| w.metadata.name.as_deref() != Some("istio-revision-tag-default"));
    let mesh = objects.mesh();
    assert_eq!(mesh.control_plane.default_revision, None);
    for ns in ["web", "legacy"] {
        match &mesh.namespaces[ns].injection {
            Injection::Broken { reason } => {
                assert!(reason.contains("istio-injection=enabled"), "{ns}: {reason}");
                assert!(reason.contains("no default revision"), "{ns}: {reason}");
            }
            other => panic!("{ns}: {other:?}"),
        }
    }
    // A namespace bound through the removed tag is broken as well.
    assert!(matches!(mesh.namespaces["fleet"].injection, Injection::Broken { .. }));
    assert_eq!(mesh.namespaces["default"].injection.revision(), Some("1-27"));
}

#[test]
fn an_unknown_injection_value_matches_no_webhook() {
    let mut objects = load(CANARY);
    objects.label_namespace("tools", "istio-injection", Some("true"));
    match &objects.mesh().namespaces["tools"].injection {
        Injection::Broken { reason } => assert!(reason.contains("istio-injection=true"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- proxies (§1)

#[test]
fn classic_sidecar_of_a_deployment() {
    let objects = load(CANARY);
    let p = proxy_of(&objects, "default", "api-gateway-64d5b6b4cb-sh4ws");
    assert_eq!(p.revision.as_deref(), Some("1-27"));
    assert_eq!(p.image, "docker.io/istio/proxyv2:1.27.4");
    assert_eq!(p.version.as_deref(), Some("1.27.4"));
    assert_eq!(p.variant, None);
    assert!(!p.native && !p.gateway && !p.image_override && !p.terminal);
    assert_eq!(p.phase, "Running");
    // Through its ReplicaSet to the Deployment, as `kubectl rollout restart` addresses it.
    assert_eq!(p.workload, workload("Deployment", "api-gateway"));
    assert_eq!(p.workload.to_string(), "deployment/api-gateway");
    assert!(p.workload.restartable());
}

#[test]
fn native_sidecar_is_found_among_init_containers() {
    let objects = load(CANARY);
    let p = proxy_of(&objects, "default", "webapp-d688b487-kh22b");
    assert!(p.native);
    assert_eq!(p.revision.as_deref(), Some("1-27"));
    assert_eq!(p.version.as_deref(), Some("1.27.4"));
    assert_eq!(p.workload, workload("Deployment", "webapp"));
}

#[test]
fn gateway_pods_are_marked_and_owned_by_their_deployment() {
    // The ingress gateway is injected with the `gateway` template (istio/gateway chart);
    // the egress gateway is istioctl's: not injected, its own container runs `proxy router`.
    let objects = load(CANARY);
    for (pod, deployment) in [
        ("istio-ingressgateway-579c6774b-nlgcs", "istio-ingressgateway"),
        ("istio-egressgateway-748b694b4-qfdw6", "istio-egressgateway"),
    ] {
        let p = proxy_of(&objects, "istio-system", pod);
        assert!(p.gateway, "{pod}");
        assert_eq!(p.phase, "Running");
        assert!(!p.native, "{pod}");
        assert_eq!(p.revision.as_deref(), Some("1-28"));
        assert_eq!(p.version.as_deref(), Some("1.28.3"));
        assert_eq!(p.workload, workload("Deployment", deployment));
    }
}

#[test]
fn owners_statefulset_daemonset_bare_pod_and_job() {
    let objects = load(CANARY);
    let sts = proxy_of(&objects, "fleet", "position-store-0");
    assert_eq!(sts.workload, workload("StatefulSet", "position-store"));
    assert!(sts.workload.restartable());

    let ds = proxy_of(&objects, "web", "log-shipper-x7k2p");
    assert_eq!(ds.workload, workload("DaemonSet", "log-shipper"));
    assert!(ds.workload.restartable());

    let bare = proxy_of(&objects, "default", "debug-shell");
    assert_eq!(bare.workload, workload("Pod", "debug-shell"));
    assert!(!bare.workload.restartable());

    let job = proxy_of(&objects, "default", "db-migrate-29112020-x8k2w");
    assert_eq!(job.workload, workload("Job", "db-migrate-29112020"));
    assert!(!job.workload.restartable());
}

#[test]
fn a_replicaset_not_read_is_the_workload_itself() {
    let objects = load(CANARY);
    let p = Proxy::from_pod(
        objects.pod("default", "api-gateway-64d5b6b4cb-sh4ws"),
        &ReplicaSetOwners::new(),
    )
    .unwrap();
    assert_eq!(p.workload, workload("ReplicaSet", "api-gateway-64d5b6b4cb"));
    assert!(!p.workload.restartable());
}

#[test]
fn distroless_variant_is_not_part_of_the_version() {
    let objects = load(CANARY);
    let p = proxy_of(&objects, "web", "log-shipper-x7k2p");
    assert_eq!(p.version.as_deref(), Some("1.27.4"));
    assert_eq!(p.variant.as_deref(), Some("distroless"));
}

#[test]
fn proxy_image_override_has_no_version() {
    let objects = load(CANARY);
    let p = proxy_of(&objects, "default", "vehicle-telemetry-64bb8b49-zwvv7");
    assert!(p.image_override);
    assert_eq!(p.image, "registry.example.com/mesh/proxyv2:1.26.1-fips");
    assert_eq!(p.version, None, "the tag of an override says nothing about Istio");
    assert_eq!(p.revision.as_deref(), Some("1-27"));
}

#[test]
fn completed_job_pod_is_terminal() {
    let objects = load(CANARY);
    let p = proxy_of(&objects, "default", "db-migrate-29112020-x8k2w");
    assert!(p.terminal);
    assert_eq!(p.phase, "Succeeded");
    assert_eq!(p.revision.as_deref(), Some("1-26"));
    assert_eq!(p.version.as_deref(), Some("1.26.2"));
}

#[test]
fn pods_without_istio_proxy_are_not_proxies() {
    let objects = load(CANARY);
    let owners = objects.replicaset_owners();
    for (ns, pod) in [
        ("default", "redis-7d8f9c6b5-q2w4e"),
        ("istio-system", "istiod-1-27-67b7b86877-qg4mr"),
    ] {
        assert!(Proxy::from_pod(objects.pod(ns, pod), &owners).is_none(), "{ns}/{pod}");
    }
    // Injected pods, plus the istioctl egress gateway whose own container is istio-proxy.
    let injected = objects
        .pods
        .iter()
        .filter(|p| {
            p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("sidecar.istio.io/status"))
        })
        .count();
    assert_eq!(injected, 13);
    assert_eq!(objects.proxies().len(), injected + 1);
}

#[test]
fn revision_from_the_rev_annotation_or_ca_addr_when_the_status_is_missing() {
    let objects = load(CANARY);
    let owners = objects.replicaset_owners();
    let mut pod = objects.pod("payments", "ledger-5c9f7d8b6-b2x8q").clone();
    let annotations = pod.metadata.annotations.as_mut().unwrap();
    annotations.remove("sidecar.istio.io/status");
    annotations.insert("istio.io/rev".into(), "1-27".into());
    assert_eq!(
        Proxy::from_pod(&pod, &owners).unwrap().revision.as_deref(),
        Some("1-27")
    );
    // Neither annotation: the proxy's CA_ADDR names istiod-1-27.
    pod.metadata.annotations.as_mut().unwrap().remove("istio.io/rev");
    assert_eq!(
        Proxy::from_pod(&pod, &owners).unwrap().revision.as_deref(),
        Some("1-27")
    );

    // An unrevisioned istiod is `istiod.istio-system.svc`: revision "default".
    let inplace = load(INPLACE);
    let mut pod = inplace.pod("default", "api-gateway-64d5b6b4cb-sh4ws").clone();
    pod.metadata.annotations = None;
    assert_eq!(
        Proxy::from_pod(&pod, &inplace.replicaset_owners())
            .unwrap()
            .revision
            .as_deref(),
        Some("default")
    );
}

// ---------------------------------------------------------------- staleness

#[test]
fn canary_cluster_as_found_only_the_moved_tag_leaves_proxies_behind() {
    let mesh = load(CANARY).mesh();
    assert_eq!(mesh.proxies.len(), 13);
    assert_eq!(mesh.terminal.len(), 1);
    let stale: Vec<_> = mesh
        .proxies
        .iter()
        .filter(|p| p.is_out_of_date())
        .map(|p| format!("{}/{}", p.proxy.namespace, p.proxy.pod))
        .collect();
    assert_eq!(
        stale,
        ["payments/ledger-5c9f7d8b6-b2x8q", "payments/ledger-5c9f7d8b6-m4k7z"]
    );
    assert_eq!(mesh.out_of_date_count(), 2);
    let ledger = mesh
        .proxies
        .iter()
        .find(|p| p.proxy.pod == "ledger-5c9f7d8b6-b2x8q")
        .unwrap();
    assert_eq!(ledger.expected_revision.as_deref(), Some("1-28"));
    assert_eq!(
        ledger.out_of_date,
        [OutOfDateReason::Revision {
            injected: Some("1-27".into()),
            expected: "1-28".into()
        }]
    );
    assert_eq!(
        ledger.out_of_date[0].to_string(),
        "injected by 1-27, a restart would get 1-28"
    );

    let expected = |pod: &str| {
        mesh.proxies
            .iter()
            .find(|p| p.proxy.pod == pod)
            .unwrap_or_else(|| panic!("{pod}"))
            .expected_revision
            .clone()
    };
    // Unlabelled istio-system: the gateway's own istio.io/rev label decides.
    assert_eq!(
        expected("istio-ingressgateway-579c6774b-nlgcs").as_deref(),
        Some("1-28")
    );
    // istioctl's gateway is never injected (sidecar.istio.io/inject=false): no injector to compare with.
    assert_eq!(expected("istio-egressgateway-748b694b4-qfdw6"), None);
    // Unlabelled namespace, sidecar.istio.io/inject=true on the pod: the default revision.
    assert_eq!(expected("toolbox-6b7c8d9e5-p3r5t").as_deref(), Some("1-27"));
    // Both labels: the default revision, not istio.io/rev=1-28.
    assert_eq!(expected("staff-service-dbf6cb866-79jht").as_deref(), Some("1-27"));
    // A namespace labelled with a revision that does not exist: a restart gets no sidecar.
    assert_eq!(expected("legacy-api-7f6d5c4b3-k9m8n"), None);

    // The override is not judged by its image tag (1.26.1-fips against istiod 1.27.4).
    let telemetry = mesh
        .proxies
        .iter()
        .find(|p| p.proxy.pod == "vehicle-telemetry-64bb8b49-zwvv7")
        .unwrap();
    assert!(!telemetry.is_out_of_date(), "{:?}", telemetry.out_of_date);

    assert_eq!(
        mesh.versions_of("1-27").into_iter().collect::<Vec<_>>(),
        [("1.27.4".to_string(), 10), ("override".to_string(), 1)]
    );
    assert_eq!(
        mesh.versions_of("1-28").into_iter().collect::<Vec<_>>(),
        [("1.28.3".to_string(), 2)]
    );
    assert_eq!(
        mesh.versions_of("1-26").len(),
        0,
        "the completed Job pod is not counted"
    );
}

#[test]
fn canary_relabel_makes_every_proxy_of_the_namespace_out_of_date() {
    let mut objects = load(CANARY);
    // Step 2 of the seed: `kubectl label ns default istio.io/rev=1-28 --overwrite`.
    objects.label_namespace("default", "istio.io/rev", Some("1-28"));
    let mesh = objects.mesh();
    assert_eq!(mesh.namespaces["default"].injection.revision(), Some("1-28"));

    let stale_default: Vec<_> = mesh
        .proxies
        .iter()
        .filter(|p| p.proxy.namespace == "default" && p.is_out_of_date())
        .map(|p| p.proxy.pod.as_str())
        .collect();
    assert_eq!(
        stale_default,
        [
            "api-gateway-64d5b6b4cb-sh4ws",
            "debug-shell",
            "vehicle-telemetry-64bb8b49-zwvv7",
            "webapp-d688b487-kh22b"
        ]
    );
    for p in mesh.proxies.iter().filter(|p| p.proxy.namespace == "default") {
        assert_eq!(
            p.out_of_date,
            [OutOfDateReason::Revision {
                injected: Some("1-27".into()),
                expected: "1-28".into()
            }],
            "{}",
            p.proxy.pod
        );
    }
    assert_eq!(mesh.out_of_date_count(), 6);
    // The completed Job pod keeps its old revision and is never out of date.
    assert_eq!(mesh.terminal.len(), 1);
    assert!(mesh.proxies.iter().all(|p| p.proxy.pod != "db-migrate-29112020-x8k2w"));
    assert!(out_of_date_reasons(&mesh.terminal[0], Some("1-28"), &mesh.control_plane).is_empty());

    // Grouped by workload, sorted by namespace, kind, name.
    let stale = mesh.out_of_date_workloads();
    let order: Vec<_> = stale
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.workload))
        .collect();
    assert_eq!(
        order,
        [
            "default/deployment/api-gateway",
            "default/deployment/vehicle-telemetry",
            "default/deployment/webapp",
            "default/pod/debug-shell",
            "payments/deployment/ledger"
        ]
    );
    let ledger = stale.last().unwrap();
    assert_eq!((ledger.pods, ledger.out_of_date_pods), (2, 2));
    assert!(!ledger.gateway);
    for w in &stale {
        assert_eq!(w.from_revisions, BTreeSet::from(["1-27".to_string()]), "{}", w.workload);
        assert_eq!(w.to_revision.as_deref(), Some("1-28"), "{}", w.workload);
        assert_eq!(w.to_version.as_deref(), Some("1.28.3"), "{}", w.workload);
        assert_eq!(
            w.reasons,
            BTreeSet::from(["injected by 1-27, a restart would get 1-28".to_string()])
        );
    }
}

#[test]
fn in_place_upgrade_leaves_older_proxies_of_the_same_revision_behind() {
    let mesh = load(INPLACE).mesh();
    assert_eq!(
        mesh.namespaces["default"].injection,
        revision("default", Some("default"), "istio-injection")
    );
    let state = |pod: &str| {
        mesh.proxies
            .iter()
            .find(|p| p.proxy.pod == pod)
            .unwrap_or_else(|| panic!("{pod}"))
    };
    for pod in ["api-gateway-64d5b6b4cb-sh4ws", "position-tracker-676dd958cf-hsrp6"] {
        let p = state(pod);
        assert_eq!(p.proxy.revision.as_deref(), Some("default"));
        assert_eq!(p.expected_revision.as_deref(), Some("default"));
        assert_eq!(
            p.out_of_date,
            [OutOfDateReason::Version {
                version: "1.27.4".into(),
                control_plane: "1.28.3".into()
            }],
            "{pod}"
        );
        assert_eq!(
            p.out_of_date[0].to_string(),
            "proxy 1.27.4, its control plane runs 1.28.3"
        );
    }
    assert!(state("position-tracker-676dd958cf-hsrp6").proxy.native);
    assert!(!state("webapp-5f8c9d7b4-t6w2n").is_out_of_date());
    assert!(!state("istio-ingressgateway-6c8d9f7b5-r8v4k").is_out_of_date());

    let stale = mesh.out_of_date_workloads();
    assert_eq!(
        stale.iter().map(|w| w.workload.name.as_str()).collect::<Vec<_>>(),
        ["api-gateway", "position-tracker"]
    );
    assert_eq!(stale[0].to_revision.as_deref(), Some("default"));
    assert_eq!(stale[0].to_version.as_deref(), Some("1.28.3"));
    assert_eq!(stale[0].from_revisions, BTreeSet::from(["default".to_string()]));
}

#[test]
fn a_proxy_image_override_is_never_out_of_date_by_version() {
    let objects = load(INPLACE);
    let mut pod = objects.pod("default", "api-gateway-64d5b6b4cb-sh4ws").clone();
    pod.metadata.annotations.as_mut().unwrap().insert(
        "sidecar.istio.io/proxyImage".into(),
        "docker.io/istio/proxyv2:1.27.4".into(),
    );
    let p = Proxy::from_pod(&pod, &objects.replicaset_owners()).unwrap();
    let cp = objects.control_plane();
    assert!(out_of_date_reasons(&p, Some("default"), &cp).is_empty());
    // Without the override the same image is out of date.
    let plain = Proxy {
        image_override: false,
        version: Some("1.27.4".into()),
        ..p
    };
    assert_eq!(out_of_date_reasons(&plain, Some("default"), &cp).len(), 1);
}

#[test]
fn uninstalling_a_revision_still_in_use_leaves_proxies_without_control_plane() {
    let mut objects = load(CANARY);
    // What `istioctl uninstall --revision 1-27` removes (operator/pkg/uninstall/prune.go), tag included.
    objects
        .deployments
        .retain(|d| d.metadata.name.as_deref() != Some("istiod-1-27"));
    objects
        .configmaps
        .retain(|c| !c.metadata.name.as_deref().unwrap_or("").ends_with("-1-27"));
    objects.webhooks.retain(|w| {
        !matches!(
            w.metadata.name.as_deref(),
            Some("istio-sidecar-injector-1-27" | "istio-revision-tag-default")
        )
    });
    let mesh = objects.mesh();
    assert!(matches!(mesh.namespaces["default"].injection, Injection::Broken { .. }));
    let api = mesh
        .proxies
        .iter()
        .find(|p| p.proxy.pod == "api-gateway-64d5b6b4cb-sh4ws")
        .unwrap();
    assert_eq!(api.expected_revision, None);
    assert_eq!(
        api.out_of_date,
        [OutOfDateReason::NoControlPlane {
            revision: "1-27".into()
        }]
    );
    // The ledger pods were already out of date for their namespace; that reason stands.
    let ledger = mesh
        .proxies
        .iter()
        .find(|p| p.proxy.pod == "ledger-5c9f7d8b6-b2x8q")
        .unwrap();
    assert!(matches!(ledger.out_of_date[..], [OutOfDateReason::Revision { .. }]));
}

#[test]
fn expected_revision_follows_pod_labels_only_in_unlabelled_namespaces() {
    let objects = load(CANARY);
    let mesh = objects.mesh();
    let cp = &mesh.control_plane;
    let mut p = proxy_of(&objects, "tools", "toolbox-6b7c8d9e5-p3r5t");
    let tools = mesh.namespaces.get("tools");
    assert_eq!(expected_revision(&p, tools, cp).as_deref(), Some("1-27"));
    p.rev_label = Some("prod".into());
    assert_eq!(expected_revision(&p, tools, cp).as_deref(), Some("1-28"));
    // A namespace's istio.io/rev beats the pod's.
    assert_eq!(
        expected_revision(&p, mesh.namespaces.get("default"), cp).as_deref(),
        Some("1-27")
    );
    p.rev_label = None;
    p.inject_label = Some("false".into());
    assert_eq!(expected_revision(&p, tools, cp), None);
    assert_eq!(expected_revision(&p, mesh.namespaces.get("batch"), cp), None);
}

// ---------------------------------------------------------------- warnings

#[test]
fn warnings_before_an_upgrade() {
    let warnings = codes(&load(CANARY));
    let list: Vec<_> = warnings.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        list,
        [
            "BothLabels",
            "DanglingLabel",
            "GatewayVersion",
            "GatewayVersion",
            "ProxyImageOverride"
        ],
        "{warnings:#?}"
    );
    let message = |code: &str, needle: &str| {
        warnings
            .iter()
            .filter(|(c, _)| c == code)
            .any(|(_, m)| m.contains(needle))
    };
    assert!(message(
        "BothLabels",
        "namespace legacy has both istio-injection=enabled and istio.io/rev=1-28"
    ));
    assert!(
        !message("BothLabels", "batch"),
        "istio-injection=disabled is a clear intent"
    );
    assert!(message(
        "DanglingLabel",
        "namespace orphan: istio.io/rev=1-26 names no revision and no tag"
    ));
    assert!(message(
        "GatewayVersion",
        "gateway istio-system/istio-ingressgateway runs 1.28.3 (revision 1-28)"
    ));
    assert!(message("GatewayVersion", "istio-system/istio-egressgateway"));
    assert!(message(
        "ProxyImageOverride",
        "default/vehicle-telemetry sets sidecar.istio.io/proxyImage=registry.example.com/mesh/proxyv2:1.26.1-fips"
    ));
}

#[test]
fn gateways_on_the_version_of_application_proxies_raise_nothing() {
    let warnings = codes(&load(INPLACE));
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn istiod_not_ready_missing_or_mid_rollout() {
    let mut objects = load(CANARY);
    let d = objects
        .deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some("istiod-1-28"))
        .unwrap();
    d.status.as_mut().unwrap().ready_replicas = Some(0);
    let warnings = codes(&objects);
    assert!(
        warnings
            .iter()
            .any(|(c, m)| c == "IstiodNotReady" && m == "istio-system/istiod-1-28 is not ready (0/1 replicas ready)"),
        "{warnings:#?}"
    );

    // A new spec the controller has not observed yet: the old status says nothing.
    let mut objects = load(INPLACE);
    let d = &mut objects.deployments[0];
    d.metadata.generation = Some(3);
    assert!(!objects.control_plane().revisions["default"].ready());
    assert!(codes(&objects).iter().any(|(c, _)| c == "IstiodNotReady"));

    let mut objects = load(CANARY);
    objects
        .deployments
        .retain(|d| d.metadata.name.as_deref() != Some("istiod-1-28"));
    assert!(
        codes(&objects)
            .iter()
            .any(|(c, m)| c == "IstiodNotReady" && m == "revision 1-28 has no istiod Deployment")
    );
}

#[test]
fn a_tag_pointing_at_a_removed_revision_dangles() {
    let mut objects = load(CANARY);
    objects.deployments.retain(|d| {
        d.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("istio.io/rev"))
            .is_none_or(|r| r != "1-28")
    });
    objects
        .configmaps
        .retain(|c| c.metadata.name.as_deref() != Some("istio-sidecar-injector-1-28"));
    objects
        .webhooks
        .retain(|w| w.metadata.name.as_deref() != Some("istio-sidecar-injector-1-28"));
    let warnings = codes(&objects);
    assert!(
        warnings
            .iter()
            .any(|(c, m)| c == "DanglingTag" && m == "tag prod points to revision 1-28, which does not exist"),
        "{warnings:#?}"
    );
}
