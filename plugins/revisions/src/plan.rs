//! What `revisions` shows, worked out from the model: one row per revision, tag, namespace,
//! proxy and data-plane component. Pure, so it is tested without a cluster.
//!
//! What counts as a proxy of a revision: its injected sidecars, its gateways (injected,
//! installed by istioctl, or rendered by its istiod for a Gateway API Gateway) and its
//! waypoints, all Envoy proxies that its istiod configures (`Mesh::proxies_of`). ztunnel and
//! istio-cni are node agents installed by their own charts: they are listed as
//! components, never counted as proxies, and never out of date here.

mod components;
mod restart;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::model::{
    Ambient, Injection, InjectorConfig, Istiod, Mesh, NamespaceBinding, ProxyKind, ProxyState, Revision, Tag, Warning,
};

pub(crate) use components::ComponentRow;
use restart::Rejections;

/// The body of the `-o json|yaml` document (documented in README.md); `schemaVersion` and
/// `kind` come from `shared::output::Envelope`. The tables show the same data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub default_revision: Option<String>,
    pub revisions: Vec<RevisionRow>,
    /// Sorted as `istioctl tag list` sorts them: by revision, then tag.
    pub tags: Vec<TagRow>,
    pub namespaces: Vec<NamespaceRow>,
    /// Live proxies: sidecars, gateways and waypoints.
    pub proxies: Vec<ProxyRow>,
    /// ztunnel, istio-cni, waypoints and Gateway API gateways, one per workload.
    pub components: Vec<ComponentRow>,
    /// Live proxies (`proxies`), node agents not counted.
    pub total_proxies: usize,
    pub out_of_date: usize,
    /// Succeeded/Failed injected pods, counted apart.
    pub terminal_pods: usize,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    pub name: String,
    pub tags: Vec<String>,
    pub default: bool,
    /// The version its proxies should run (istiod's image tag).
    pub version: Option<String>,
    pub istiod: Option<Istiod>,
    pub ready: bool,
    pub injector: Option<InjectorConfig>,
    pub webhook: Option<String>,
    /// False for a revision seen only on proxies: its control plane is gone.
    pub installed: bool,
    /// Namespaces whose new pods it injects.
    pub namespaces: Vec<String>,
    /// Ambient namespaces whose traffic its ztunnel carries.
    pub ambient_namespaces: Vec<String>,
    /// Live proxies by version (`override` for a proxyImage override).
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

/// A tag, as `istioctl tag list` lists it, with what it is made of.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRow {
    pub name: String,
    pub revision: String,
    /// Its MutatingWebhookConfiguration, empty for a tag that exists only as a Service.
    pub webhook: String,
    /// Namespaces whose new pods its webhook injects (for `default`, the
    /// `istio-injection=enabled` ones too).
    pub namespaces: Vec<String>,
    /// Its Service `istiod-revision-tag-<tag>`, written from 1.28.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Namespaces labelled `istio.io/rev=<tag>`: the NAMESPACES of `istioctl tag list`
    /// (istioctl/pkg/tag/util.go GetNamespacesWithTag). Shown in the table only.
    #[serde(skip)]
    pub labelled: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRow {
    pub name: String,
    pub rev_label: Option<String>,
    pub injection_label: Option<String>,
    pub injection: Injection,
    /// The `istio.io/dataplane-mode` label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_mode: Option<String>,
    /// Set for an ambient namespace: the revision of the ztunnel carrying its traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Ambient>,
    /// The waypoint its `istio.io/use-waypoint` label names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<WaypointRef>,
    /// Live proxies by revision.
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

/// A waypoint named by `istio.io/use-waypoint` (and `istio.io/use-waypoint-namespace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaypointRef {
    pub namespace: String,
    pub name: String,
    /// The revision whose istiod renders it; `None` when no such waypoint was read.
    pub revision: Option<String>,
}

/// A live proxy, and why a restart of it would be rejected, if it would.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyRow {
    #[serde(flatten)]
    pub state: ProxyState,
    /// Out of date, and the revision a restart gives it cannot inject the new pod
    /// (`revision 1-28's istiod is not ready (0/1)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_rejected: Option<String>,
}

impl Report {
    /// `narrowed`: the user named namespaces, so every one of them is listed even without
    /// labels or proxies.
    /// The mesh is taken: its proxies move into the report rather than being copied.
    pub fn new(mesh: Mesh, narrowed: bool) -> Report {
        let rejections = Rejections::new(&mesh);
        let components = components::rows(&mesh);
        let mut by_namespace = proxies_by_namespace(&mesh);
        let mut warnings = mesh.warnings();
        warnings.extend(rejections.warnings());
        warnings.sort();
        let namespaces = mesh
            .namespaces
            .values()
            .map(|n| namespace_row(n, by_namespace.remove(n.name.as_str()).unwrap_or_default(), &components))
            .filter(|n| narrowed || n.in_the_mesh())
            .collect();
        let (revisions, tags) = (revision_rows(&mesh), tag_rows(&mesh));
        let out_of_date = mesh.out_of_date_count();
        let terminal_pods = mesh.terminal.len();
        let proxies: Vec<ProxyRow> = mesh
            .proxies
            .into_iter()
            .filter(|p| !p.proxy.kind.is_node_agent())
            .map(|p| ProxyRow {
                restart_rejected: rejections.of(&p).map(String::from),
                state: p,
            })
            .collect();
        Report {
            default_revision: mesh.control_plane.default_revision,
            revisions,
            tags,
            namespaces,
            total_proxies: proxies.len(),
            proxies,
            components,
            out_of_date,
            terminal_pods,
            warnings,
        }
    }
}

/// The live proxies of every revision: ztunnel and istio-cni apart.
fn proxies(mesh: &Mesh) -> impl Iterator<Item = &ProxyState> {
    mesh.proxies.iter().filter(|p| !p.proxy.kind.is_node_agent())
}

/// Every installed revision, and every revision a live proxy names even when its control
/// plane is gone, sorted by name.
fn revision_rows(mesh: &Mesh) -> Vec<RevisionRow> {
    let mut names: BTreeSet<&str> = mesh.control_plane.revisions.keys().map(String::as_str).collect();
    names.extend(proxies(mesh).filter_map(|p| p.proxy.revision.as_deref()));
    names.into_iter().map(|name| revision_row(mesh, name)).collect()
}

fn revision_row(mesh: &Mesh, name: &str) -> RevisionRow {
    let rev = mesh.control_plane.revisions.get(name);
    RevisionRow {
        name: name.to_string(),
        tags: rev.map(|r| r.tags.clone()).unwrap_or_default(),
        default: rev.is_some_and(|r| r.default),
        version: rev.and_then(|r| r.version().map(String::from)),
        istiod: rev.and_then(|r| r.istiod.clone()),
        ready: rev.is_some_and(Revision::ready),
        injector: rev.and_then(|r| r.injector.clone()),
        webhook: rev.and_then(|r| r.webhook.clone()),
        installed: rev.is_some(),
        namespaces: mesh.namespaces_using(name).iter().map(|n| n.name.clone()).collect(),
        ambient_namespaces: mesh
            .ambient_namespaces()
            .iter()
            .filter(|n| n.ambient.as_ref().and_then(|a| a.revision.as_deref()) == Some(name))
            .map(|n| n.name.clone())
            .collect(),
        proxies: mesh.versions_of(name),
        out_of_date: mesh.proxies_of(name).filter(|p| p.is_out_of_date()).count(),
    }
}

/// The tags in `istioctl tag list`'s order (istioctl/pkg/tag/tag.go listTags), tags that
/// exist only as a Service included.
fn tag_rows(mesh: &Mesh) -> Vec<TagRow> {
    mesh.tag_list()
        .into_iter()
        .filter_map(|listing| {
            let tag = mesh.control_plane.tags.get(&listing.tag)?;
            Some(tag_row(mesh, tag, listing.namespaces))
        })
        .collect()
}

fn tag_row(mesh: &Mesh, tag: &Tag, labelled: Vec<String>) -> TagRow {
    TagRow {
        name: tag.name.clone(),
        revision: tag.revision.clone(),
        webhook: tag.webhook.clone(),
        namespaces: mesh
            .namespaces
            .values()
            .filter(|n| matches!(&n.injection, Injection::Revision { tag: Some(t), .. } if *t == tag.name))
            .map(|n| n.name.clone())
            .collect(),
        service: tag.service.clone(),
        labelled,
    }
}

/// `istio.io/use-waypoint`: the waypoint a namespace's traffic goes through; `none` means
/// none (pilot/pkg/serviceregistry/kube/controller/ambient/waypoints.go getUseWaypoint).
const USE_WAYPOINT: &str = "istio.io/use-waypoint";
/// `istio.io/use-waypoint-namespace`: the waypoint's namespace, when not the namespace's own.
const USE_WAYPOINT_NAMESPACE: &str = "istio.io/use-waypoint-namespace";

/// A namespace's proxies counted by revision, and how many are out of date.
#[derive(Default)]
struct NamespaceCount {
    by_revision: BTreeMap<String, usize>,
    out_of_date: usize,
}

/// Every namespace's [`NamespaceCount`], in one pass over the proxies (not one pass per
/// namespace: 500 namespaces of 30,000 pods made that 15 million comparisons).
fn proxies_by_namespace(mesh: &Mesh) -> BTreeMap<&str, NamespaceCount> {
    let mut counts: BTreeMap<&str, NamespaceCount> = BTreeMap::new();
    for p in proxies(mesh) {
        let count = counts.entry(p.proxy.namespace.as_str()).or_default();
        let revision = p.proxy.revision.as_deref().unwrap_or("unknown");
        match count.by_revision.get_mut(revision) {
            Some(n) => *n += 1,
            None => {
                count.by_revision.insert(revision.to_string(), 1);
            }
        }
        count.out_of_date += usize::from(p.is_out_of_date());
    }
    counts
}

fn namespace_row(ns: &NamespaceBinding, count: NamespaceCount, components: &[ComponentRow]) -> NamespaceRow {
    let NamespaceCount {
        by_revision: proxies,
        out_of_date,
    } = count;
    NamespaceRow {
        name: ns.name.clone(),
        rev_label: ns.rev_label.clone(),
        injection_label: ns.injection_label.clone(),
        injection: ns.injection.clone(),
        dataplane_mode: ns.dataplane_mode.clone(),
        ambient: ns.ambient.clone(),
        waypoint: waypoint_of(ns, components),
        proxies,
        out_of_date,
    }
}

/// The waypoint a namespace uses, and the revision rendering it when it was read.
fn waypoint_of(ns: &NamespaceBinding, components: &[ComponentRow]) -> Option<WaypointRef> {
    let name = ns.labels.get(USE_WAYPOINT).filter(|n| *n != "none")?;
    let namespace = ns.labels.get(USE_WAYPOINT_NAMESPACE).unwrap_or(&ns.name);
    let rendered = components
        .iter()
        .map(|c| &c.component)
        .find(|c| c.kind == ProxyKind::Waypoint && c.namespace == *namespace && c.gateway_name.as_ref() == Some(name));
    Some(WaypointRef {
        namespace: namespace.clone(),
        name: name.clone(),
        revision: rendered.and_then(|c| {
            c.expected_revision
                .clone()
                .or_else(|| c.revisions.iter().next().cloned())
        }),
    })
}

impl NamespaceRow {
    /// An injection or dataplane label, or a proxy: worth a row when the whole mesh is shown.
    fn in_the_mesh(&self) -> bool {
        self.rev_label.is_some()
            || self.injection_label.is_some()
            || self.dataplane_mode.is_some()
            || self.waypoint.is_some()
            || !self.proxies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use shared::model::{ControlPlane, InjectorWebhook, Proxy, Workload};

    /// Revision 1-27 (tag `prod`, the default) is installed; 1-26 is gone but one proxy
    /// still carries it.
    fn mesh() -> Mesh {
        let mut cp = ControlPlane::default();
        cp.revisions.insert(
            "1-27".into(),
            Revision {
                name: "1-27".into(),
                istiod: Some(Istiod {
                    namespace: "istio-system".into(),
                    name: "istiod-1-27".into(),
                    image: "docker.io/istio/pilot:1.27.4".into(),
                    version: Some("1.27.4".into()),
                    replicas: 1,
                    ready_replicas: 1,
                    updated_replicas: 1,
                }),
                injector: None,
                webhook: Some("istio-sidecar-injector-1-27".into()),
                tags: vec!["prod".into()],
                default: true,
                deactivated: false,
            },
        );
        cp.tags.insert(
            "prod".into(),
            Tag {
                name: "prod".into(),
                revision: "1-27".into(),
                webhook: "istio-revision-tag-prod".into(),
                service: None,
            },
        );
        cp.default_revision = Some("1-27".into());
        // The revision's and the tag's `rev.namespace` webhooks (mutatingwebhook.yaml,
        // revision-tags-mwc.yaml): namespaces are bound by the webhooks that match them.
        cp.webhooks = vec![
            rev_namespace_webhook("istio-revision-tag-prod", "1-27", Some("prod")),
            rev_namespace_webhook("istio-sidecar-injector-1-27", "1-27", None),
        ];
        let namespaces = vec![
            NamespaceBinding::new("web", Some("prod"), None, &cp),
            NamespaceBinding::new("shop", Some("1-27"), None, &cp),
            NamespaceBinding::new("quiet", None, None, &cp),
        ];
        let proxies = vec![
            proxy("web", "web-1", "1-27", "1.27.4"),
            proxy("web", "web-2", "1-26", "1.26.2"),
            proxy("shop", "cart-1", "1-27", "1.27.4"),
        ];
        Mesh::new(cp, namespaces, proxies)
    }

    /// `rev.namespace.sidecar-injector.istio.io`: namespaces labelled `istio.io/rev=<tag or
    /// revision>`.
    fn rev_namespace_webhook(configuration: &str, revision: &str, tag: Option<&str>) -> InjectorWebhook {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [
                {"key": "istio.io/rev", "operator": "In", "values": [tag.unwrap_or(revision)]},
                {"key": "istio-injection", "operator": "DoesNotExist"},
            ]
        }))
        .unwrap();
        InjectorWebhook {
            configuration: configuration.into(),
            name: "rev.namespace.sidecar-injector.istio.io".into(),
            revision: revision.into(),
            tag: tag.map(String::from),
            namespace_selector: Some(selector),
            object_selector: None,
        }
    }

    fn proxy(namespace: &str, pod: &str, revision: &str, version: &str) -> Proxy {
        Proxy {
            namespace: namespace.into(),
            pod: pod.into(),
            workload: Workload {
                kind: "Deployment".into(),
                name: pod.into(),
            },
            revision: Some(revision.into()),
            image: format!("docker.io/istio/proxyv2:{version}"),
            version: Some(version.into()),
            variant: None,
            image_override: false,
            native: false,
            gateway: false,
            kind: ProxyKind::Sidecar,
            injected: true,
            gateway_name: None,
            phase: "Running".into(),
            ready: true,
            terminal: false,
            rev_label: None,
            inject_label: None,
            inject_annotation: None,
            host_network: false,
        }
    }

    #[test]
    fn a_revision_seen_only_on_proxies_gets_a_row_marked_not_installed() {
        let report = Report::new(mesh(), false);
        let names: Vec<_> = report.revisions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["1-26", "1-27"]);
        let gone = &report.revisions[0];
        assert!(!gone.installed && !gone.ready && gone.istiod.is_none());
        assert_eq!(gone.proxies, BTreeMap::from([("1.26.2".to_string(), 1)]));
        assert_eq!(gone.out_of_date, 1);
        let live = &report.revisions[1];
        assert!(live.installed && live.ready && live.default);
        assert_eq!(live.version.as_deref(), Some("1.27.4"));
        assert_eq!(live.namespaces, ["shop", "web"]);
        assert_eq!(live.out_of_date, 0);
    }

    #[test]
    fn a_tag_lists_only_the_namespaces_that_name_it() {
        let report = Report::new(mesh(), false);
        assert_eq!(report.tags.len(), 1);
        assert_eq!(report.tags[0].revision, "1-27");
        assert_eq!(report.tags[0].namespaces, ["web"]);
        assert_eq!(report.tags[0].labelled, ["web"]);
    }

    #[test]
    fn namespaces_count_proxies_by_revision_and_hide_the_unlabelled_empty_ones() {
        let report = Report::new(mesh(), false);
        let names: Vec<_> = report.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["shop", "web"]);
        let web = &report.namespaces[1];
        assert_eq!(
            web.proxies,
            BTreeMap::from([("1-26".to_string(), 1), ("1-27".to_string(), 1)])
        );
        assert_eq!(web.out_of_date, 1);
        let narrowed = Report::new(mesh(), true);
        assert!(narrowed.namespaces.iter().any(|n| n.name == "quiet"));
    }

    #[test]
    fn totals_come_from_the_model() {
        let report = Report::new(mesh(), false);
        assert_eq!(report.default_revision.as_deref(), Some("1-27"));
        assert_eq!(
            (report.total_proxies, report.out_of_date, report.terminal_pods),
            (3, 1, 0)
        );
    }
}
