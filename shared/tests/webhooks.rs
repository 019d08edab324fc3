//! Which revision injects what, decided by the webhooks' selectors as the API server
//! evaluates them, never by configuration names: given a cluster whose `default` tag was
//! moved off an unrevisioned install, the model sees what Istio does.

#[allow(unreachable_pub)] // helpers shared by test files; each file uses some
mod common;

use common::{DEFAULT_TAG_MOVED, Objects, TAG_SERVICES, load};
use shared::model::ControlPlane;
use shared::model::{Injection, InjectorWebhook, OutOfDateReason, Target};

fn revision(name: &str, tag: Option<&str>, by: &str) -> Injection {
    Injection::Revision {
        revision: name.into(),
        tag: tag.map(String::from),
        by: by.into(),
    }
}

fn expected(objects: &Objects, pod: &str) -> Option<String> {
    let mesh = objects.mesh();
    let p = mesh.proxies.iter().find(|p| p.proxy.pod == pod);
    p.unwrap_or_else(|| panic!("{pod}")).expected_revision.clone()
}

/// `istioctl tag remove default`: the tag's webhook and Service go, istio-sidecar-injector
/// stays deactivated.
fn remove_default_tag(objects: &mut Objects) {
    objects
        .webhooks
        .retain(|w| w.metadata.name.as_deref() != Some("istio-revision-tag-default"));
    objects
        .services
        .retain(|s| s.metadata.name.as_deref() != Some("istiod-revision-tag-default"));
}

#[test]
fn istio_io_rev_default_follows_the_default_tag_once_it_moved_off_the_unrevisioned_install() {
    let objects = load(DEFAULT_TAG_MOVED);
    let mesh = objects.mesh();
    let cp = &mesh.control_plane;
    // The tag's rev.namespace webhook matches istio.io/rev In [default]; the revision
    // named `default` is still installed, but its webhooks match nothing.
    assert_eq!(
        cp.resolve("default"),
        Target::Tag {
            tag: "default",
            revision: "1-28"
        }
    );
    assert_eq!(
        mesh.namespaces["fleet"].injection,
        revision("1-28", Some("default"), "istio.io/rev")
    );
    assert_eq!(
        mesh.namespaces["shop"].injection,
        revision("1-28", Some("default"), "istio-injection")
    );
    assert_eq!(
        mesh.namespaces["billing"].injection,
        revision("1-28", None, "istio.io/rev")
    );
    let using = |rev: &str| {
        mesh.namespaces_using(rev)
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(using("1-28"), ["billing", "fleet", "shop"]);
    assert!(using("default").is_empty());

    // Pods injected by `default` before the tag moved are out of date, until restarted.
    let tracker = mesh
        .proxies
        .iter()
        .find(|p| p.proxy.pod == "position-tracker-5d8c7b9f4-q7w2e")
        .unwrap();
    assert_eq!(tracker.expected_revision.as_deref(), Some("1-28"));
    assert_eq!(
        tracker.out_of_date,
        [OutOfDateReason::Revision {
            injected: Some("default".into()),
            expected: "1-28".into()
        }]
    );
    assert_eq!(expected(&objects, "toolbox-58b9c7d6f-x5z8v").as_deref(), Some("1-28"));
    assert_eq!(expected(&objects, "ledger-6f7d8c9b5-m3n4p").as_deref(), Some("1-28"));
    let stale: Vec<_> = mesh
        .out_of_date_workloads()
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.workload))
        .collect();
    assert_eq!(
        stale,
        [
            "fleet/deployment/position-tracker",
            "shop/deployment/cart",
            "tools/deployment/toolbox"
        ]
    );
}

#[test]
fn a_deactivated_injector_matches_nothing() {
    let mut objects = load(DEFAULT_TAG_MOVED);
    let cp = objects.control_plane();
    assert_eq!(cp.default_revision.as_deref(), Some("1-28"));
    assert!(cp.revisions["1-28"].default);
    assert!(
        !cp.revisions["default"].default,
        "istio-sidecar-injector is deactivated"
    );

    // Without the tag, nothing serves istio-injection=enabled, istio.io/rev=default or
    // sidecar.istio.io/inject=true: the deactivated injector's webhooks still carry the
    // default webhooks' names but select nothing.
    remove_default_tag(&mut objects);
    let mesh = objects.mesh();
    assert_eq!(mesh.control_plane.default_revision, None);
    for ns in ["shop", "fleet"] {
        assert!(
            matches!(&mesh.namespaces[ns].injection, Injection::Broken { .. }),
            "{ns}: {:?}",
            mesh.namespaces[ns].injection
        );
    }
    match &mesh.namespaces["fleet"].injection {
        Injection::Broken { reason } => assert!(reason.contains("istio.io/rev=default"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(mesh.control_plane.resolve("1-28"), Target::Revision("1-28"));
    assert_eq!(expected(&objects, "toolbox-58b9c7d6f-x5z8v"), None);
    assert_eq!(expected(&objects, "cart-7c9f8d6b5-h2k4m"), None);
    assert_eq!(expected(&objects, "ledger-6f7d8c9b5-m3n4p").as_deref(), Some("1-28"));
}

#[test]
fn each_injector_webhook_is_read_with_its_selectors_in_call_order() {
    let cp = load(DEFAULT_TAG_MOVED).control_plane();
    let r = &cp.revisions["default"];
    assert_eq!(r.webhook.as_deref(), Some("istio-sidecar-injector"));
    assert!(r.deactivated);
    assert!(!cp.revisions["1-28"].deactivated);
    // Configurations sorted by name, webhooks in their order, as the API server calls them.
    let order: Vec<_> = cp
        .webhooks
        .iter()
        .map(|w| format!("{} {} -> {}", w.configuration, w.name, w.revision))
        .collect();
    assert_eq!(
        order,
        [
            "istio-revision-tag-default rev.namespace.sidecar-injector.istio.io -> 1-28",
            "istio-revision-tag-default rev.object.sidecar-injector.istio.io -> 1-28",
            "istio-revision-tag-default namespace.sidecar-injector.istio.io -> 1-28",
            "istio-revision-tag-default object.sidecar-injector.istio.io -> 1-28",
            "istio-sidecar-injector rev.namespace.sidecar-injector.istio.io -> default",
            "istio-sidecar-injector rev.object.sidecar-injector.istio.io -> default",
            "istio-sidecar-injector namespace.sidecar-injector.istio.io -> default",
            "istio-sidecar-injector object.sidecar-injector.istio.io -> default",
            "istio-sidecar-injector-1-28 rev.namespace.sidecar-injector.istio.io -> 1-28",
            "istio-sidecar-injector-1-28 rev.object.sidecar-injector.istio.io -> 1-28",
        ]
    );
    assert!(
        cp.webhooks
            .iter()
            .filter(|w| w.configuration == "istio-sidecar-injector")
            .all(InjectorWebhook::deactivated)
    );
    assert_eq!(cp.tags["default"].webhook, "istio-revision-tag-default");
    assert_eq!(
        cp.tags["default"].service.as_deref(),
        Some("istiod-revision-tag-default")
    );
}

#[test]
fn an_injector_left_active_beside_the_moved_tag_conflicts_and_the_last_one_called_wins() {
    let mut objects = load(DEFAULT_TAG_MOVED);
    // A Helm user re-enabled the unrevisioned chart's webhooks (helm upgrade of istiod with
    // no revision rewrites mutatingwebhook.yaml without istioctl's never-match selectors).
    let fresh = load(&["inplace.yaml"]);
    let active = fresh
        .webhooks
        .iter()
        .find(|w| w.metadata.name.as_deref() == Some("istio-sidecar-injector"))
        .unwrap()
        .clone();
    for w in &mut objects.webhooks {
        if w.metadata.name.as_deref() == Some("istio-sidecar-injector") {
            *w = active.clone();
        }
    }
    let mesh = objects.mesh();
    // Both the tag (1-28) and istio-sidecar-injector (default) match; the API server calls
    // istio-revision-tag-default first, then istio-sidecar-injector re-injects.
    assert_eq!(mesh.namespaces["shop"].injectors, ["1-28", "default"]);
    assert_eq!(mesh.namespaces["shop"].injection.revision(), Some("default"));
    let warnings = mesh.warnings();
    assert!(
        warnings.iter().any(|w| w.code == "InjectorConflict"
            && w.message
                .starts_with("namespace shop: the webhooks of revisions 1-28, default all inject")),
        "{warnings:#?}"
    );
}

// ---------------------------------------------------------------- tags as `istioctl tag list` shows them

#[test]
fn tags_are_listed_as_istioctl_tag_list_prints_them_tag_services_included() {
    let objects = load(TAG_SERVICES);
    let mesh = objects.mesh();
    let cp = &mesh.control_plane;
    assert_eq!(cp.tags.keys().collect::<Vec<_>>(), ["default", "prod", "stable"]);
    let stable = &cp.tags["stable"];
    assert_eq!(stable.revision, "1-27");
    assert_eq!(stable.webhook, "", "a tag that exists only as a Service");
    assert_eq!(stable.service.as_deref(), Some("istiod-revision-tag-stable"));
    assert_eq!(cp.tags["prod"].webhook, "istio-revision-tag-prod");
    assert_eq!(cp.tags["prod"].service.as_deref(), Some("istiod-revision-tag-prod"));
    assert_eq!(cp.tags["default"].service, None);
    assert_eq!(cp.revisions["1-27"].tags, ["default", "stable"]);

    // TAG REVISION NAMESPACES, sorted by revision then tag; the namespaces are those
    // labelled istio.io/rev=<tag> (not legacy and web, which the default tag serves
    // through istio-injection=enabled).
    let rows: Vec<_> = mesh
        .tag_list()
        .into_iter()
        .map(|t| (t.tag, t.revision, t.namespaces))
        .collect();
    let row = |t: &str, r: &str, ns: &[&str]| {
        (
            t.to_string(),
            r.to_string(),
            ns.iter().map(ToString::to_string).collect(),
        )
    };
    assert_eq!(
        rows,
        [
            row("default", "1-27", &["fleet"]),
            row("stable", "1-27", &["analytics"]),
            row("prod", "1-28", &["payments"]),
        ]
    );
    // No webhook serves a Service-only tag; istiod's gateway controller does count it.
    match &mesh.namespaces["analytics"].injection {
        Injection::Broken { reason } => assert!(reason.contains("exists only as a Service"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cp.gateway_controllers(Some("stable")), ["1-27"]);
    assert_eq!(
        cp.resolve("stable"),
        Target::Tag {
            tag: "stable",
            revision: "1-27"
        }
    );

    // Without Services, as before.
    let plain = ControlPlane::from_objects(&objects.deployments, &objects.configmaps, &objects.webhooks);
    assert_eq!(plain.tags.keys().collect::<Vec<_>>(), ["default", "prod"]);
}
