//! Data-plane pods that are not injected application sidecars, and pods that opted out:
//! given these pods, the model says what each is and what a restart would give it.

#[allow(unreachable_pub)] // helpers shared by test files; each file uses some
mod common;

use common::{OPT_OUTS, Objects, load};
use shared::model::mesh::expected_revision;
use shared::model::{Expectation, NoSidecar, OutOfDateReason, Proxy, ProxyState};

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
